{{/* The chart's name. */}}
{{- define "inventory.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name; the canary adds "-canary", so it stays under 56. */}}
{{- define "inventory.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 56 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 56 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 56 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "inventory.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels that select this release's pods, of either track. */}}
{{- define "inventory.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inventory.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "inventory.labels" -}}
helm.sh/chart: {{ include "inventory.chart" . }}
{{ include "inventory.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "inventory.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "inventory.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
INVENTORY_NAMESPACE: the value, else the release name if it is a valid
namespace, else the server's default.
*/}}
{{- define "inventory.namespace" -}}
{{- if .Values.inventoryNamespace }}
{{- .Values.inventoryNamespace }}
{{- else if regexMatch "^[a-z][a-z0-9-]{0,39}$" .Release.Name }}
{{- .Release.Name }}
{{- else }}
{{- "inventory" }}
{{- end }}
{{- end }}

{{- define "inventory.secretName" -}}
{{- default (include "inventory.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/*
The Redis credentials the pod reads from the Secret: none, password or
usernamePassword. With secrets.existingSecret, lock.redis.auth says which
keys it holds; the chart-made Secret holds the secrets.values given.
*/}}
{{- define "inventory.redisAuth" -}}
{{- $v := .Values }}
{{- if $v.secrets.existingSecret }}{{ $v.lock.redis.auth }}
{{- else if $v.secrets.values.redisUsername }}usernamePassword
{{- else if $v.secrets.values.redisPassword }}password
{{- else }}none
{{- end }}
{{- end }}

{{/* The etcd credentials the pod reads from the Secret: none or usernamePassword (as inventory.redisAuth). */}}
{{- define "inventory.etcdAuth" -}}
{{- $v := .Values }}
{{- if $v.secrets.existingSecret }}{{ $v.lock.etcd.auth }}
{{- else if or $v.secrets.values.etcdUsername $v.secrets.values.etcdPassword }}usernamePassword
{{- else }}none
{{- end }}
{{- end }}

{{/*
The CAs the pod trusts beside the system's, by backend in use (redis, etcd,
kafka) whose caSecret names a Secret: its key, mounted read-only as ca.pem
in a directory of its own, which that backend's INVENTORY_*_CA_FILE names.
A JSON object (read it with fromJson) of
{"<backend>": {"volume", "secret", "key", "file"}}, so the setting, the
mount and the volume cannot disagree.
*/}}
{{- define "inventory.caSecrets" -}}
{{- $v := .Values }}
{{- $in := dict }}
{{- if eq $v.lock.backend "redsync" }}{{ $_ := set $in "redis" $v.lock.redis.caSecret }}{{ end }}
{{- if eq $v.lock.backend "etcd" }}{{ $_ := set $in "etcd" $v.lock.etcd.caSecret }}{{ end }}
{{- if eq $v.broker.type "kafka" }}{{ $_ := set $in "kafka" $v.broker.kafka.caSecret }}{{ end }}
{{- $out := dict }}
{{- range $backend, $ca := $in }}
{{- if $ca.name }}
{{- $_ := set $out $backend (dict "volume" (printf "%s-ca" $backend) "secret" $ca.name "key" $ca.key "file" (printf "/etc/inventory/%s-ca/ca.pem" $backend)) }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* The grace period: drain, then shutdown, then a margin; one sum, so they cannot disagree. */}}
{{- define "inventory.terminationGracePeriodSeconds" -}}
{{- add .Values.server.drainSeconds .Values.server.shutdownTimeoutSeconds .Values.server.terminationMarginSeconds }}
{{- end }}

{{/* Refuses values that would render a release that cannot work. */}}
{{- define "inventory.validate" -}}
{{- $v := .Values }}
{{- if and (eq $v.lock.backend "local") (or (gt (int $v.replicaCount) 1) $v.autoscaling.enabled $v.canary.enabled) }}
{{- fail "lock.backend local serializes writers within one process only: use redsync or etcd with several replicas, autoscaling or a canary" }}
{{- end }}
{{- if and (eq $v.lock.backend "redsync") (empty $v.lock.redis.addrs) }}
{{- fail "lock.backend redsync needs lock.redis.addrs (host:port of each Redis)" }}
{{- end }}
{{- if and (eq $v.lock.backend "etcd") (empty $v.lock.etcd.endpoints) }}
{{- fail "lock.backend etcd needs lock.etcd.endpoints" }}
{{- end }}
{{- if not $v.secrets.existingSecret }}
{{- if not $v.secrets.values.databaseDSN }}
{{- fail "the database DSN: set secrets.existingSecret (a Secret with key secrets.keys.databaseDSN) or secrets.values.databaseDSN" }}
{{- end }}
{{- if and (not $v.auth.allowAnonymous) (not $v.secrets.values.authTokens) }}
{{- fail "bearer tokens: set secrets.values.authTokens (or secrets.existingSecret), or auth.allowAnonymous=true on a private network" }}
{{- end }}
{{- if and (eq $v.broker.type "nats") (not $v.secrets.values.natsURL) }}
{{- fail "broker.type nats needs secrets.values.natsURL (or secrets.existingSecret)" }}
{{- end }}
{{- if and (eq $v.broker.type "rabbitmq") (not $v.secrets.values.rabbitmqURL) }}
{{- fail "broker.type rabbitmq needs secrets.values.rabbitmqURL (or secrets.existingSecret)" }}
{{- end }}
{{- end }}
{{- if not $v.secrets.existingSecret }}
{{- $s := $v.secrets.values }}
{{- if and $s.redisUsername (not $s.redisPassword) }}
{{- fail "secrets.values.redisUsername needs secrets.values.redisPassword (Redis ACL users have one)" }}
{{- end }}
{{- if ne (empty $s.etcdUsername) (empty $s.etcdPassword) }}
{{- fail "secrets.values.etcdUsername and secrets.values.etcdPassword go together" }}
{{- end }}
{{- if and (ne $v.lock.redis.auth "none") (ne $v.lock.redis.auth (include "inventory.redisAuth" .)) }}
{{- fail (printf "lock.redis.auth is %s, but the chart-made Secret's credentials (secrets.values.redisUsername, redisPassword) make it %s" $v.lock.redis.auth (include "inventory.redisAuth" .)) }}
{{- end }}
{{- if and (ne $v.lock.etcd.auth "none") (ne $v.lock.etcd.auth (include "inventory.etcdAuth" .)) }}
{{- fail "lock.etcd.auth is usernamePassword: set secrets.values.etcdUsername and etcdPassword (or secrets.existingSecret)" }}
{{- end }}
{{- end }}
{{- if and $v.lock.redis.caSecret.name (not $v.lock.redis.tls) }}
{{- fail "lock.redis.caSecret needs lock.redis.tls=true (INVENTORY_REDIS_CA_FILE needs INVENTORY_REDIS_TLS)" }}
{{- end }}
{{- if eq $v.lock.backend "etcd" }}
{{- $https := 0 }}
{{- range $v.lock.etcd.endpoints }}{{ if hasPrefix "https://" . }}{{ $https = add1 $https }}{{ end }}{{ end }}
{{- if and $https (ne $https (len $v.lock.etcd.endpoints)) }}
{{- fail "lock.etcd.endpoints: https:// and plain endpoints mixed; use https:// for every member or none" }}
{{- end }}
{{- if and $v.lock.etcd.caSecret.name (not $https) }}
{{- fail "lock.etcd.caSecret needs https:// lock.etcd.endpoints (they turn TLS on)" }}
{{- end }}
{{- end }}
{{- if eq $v.broker.type "kafka" }}
{{- $k := $v.broker.kafka }}
{{- if empty $k.brokers }}
{{- fail "broker.type kafka needs broker.kafka.brokers (host:port of the seed brokers)" }}
{{- end }}
{{- if not $v.secrets.existingSecret }}
{{- $s := $v.secrets.values }}
{{- if and $k.saslMechanism (not (and $s.kafkaUsername $s.kafkaPassword)) }}
{{- fail (printf "broker.kafka.saslMechanism %s needs secrets.values.kafkaUsername and secrets.values.kafkaPassword (or secrets.existingSecret)" $k.saslMechanism) }}
{{- end }}
{{- if and (not $k.saslMechanism) (or $s.kafkaUsername $s.kafkaPassword) }}
{{- fail "secrets.values.kafkaUsername and kafkaPassword need broker.kafka.saslMechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), or leave them empty" }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $v.broker.kafka.caSecret.name (not $v.broker.kafka.tls) }}
{{- fail "broker.kafka.caSecret needs broker.kafka.tls=true (INVENTORY_KAFKA_CA_FILE needs INVENTORY_KAFKA_TLS)" }}
{{- end }}
{{- if and $v.autoscaling.enabled (lt (int $v.autoscaling.maxReplicas) (int $v.autoscaling.minReplicas)) }}
{{- fail "autoscaling.maxReplicas must be at least autoscaling.minReplicas" }}
{{- end }}
{{- if and $v.server.grpcPort (eq (int $v.server.grpcPort) (int $v.server.port)) }}
{{- fail "server.grpcPort must differ from server.port (0 turns grpc-go's own port off)" }}
{{- end }}
{{- end }}

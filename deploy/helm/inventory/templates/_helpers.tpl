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
{{- if and $v.autoscaling.enabled (lt (int $v.autoscaling.maxReplicas) (int $v.autoscaling.minReplicas)) }}
{{- fail "autoscaling.maxReplicas must be at least autoscaling.minReplicas" }}
{{- end }}
{{- if and $v.server.grpcPort (eq (int $v.server.grpcPort) (int $v.server.port)) }}
{{- fail "server.grpcPort must differ from server.port (0 turns grpc-go's own port off)" }}
{{- end }}
{{- end }}

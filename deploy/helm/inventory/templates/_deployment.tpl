{{/*
A Deployment of one track (stable or canary); both run the same pod apart
from the image tag and the replica count.
Call with (dict "root" $ "track" "stable"|"canary").
*/}}
{{- define "inventory.deployment" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $track := .track }}
{{- $name := include "inventory.fullname" $root }}
{{- if eq $track "canary" }}{{ $name = printf "%s-canary" $name }}{{ end }}
{{- $tag := $v.image.tag | default $root.Chart.AppVersion }}
{{- if eq $track "canary" }}{{ $tag = $v.canary.image.tag | default $tag }}{{ end }}
{{- $secret := include "inventory.secretName" $root }}
{{- $redisAuth := include "inventory.redisAuth" $root }}
{{- $etcdAuth := include "inventory.etcdAuth" $root }}
{{- $cas := include "inventory.caSecrets" $root | fromJson }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "inventory.labels" $root | nindent 4 }}
    track: {{ $track }}
spec:
  {{- if eq $track "canary" }}
  replicas: {{ $v.canary.replicaCount }}
  {{- else if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "inventory.selectorLabels" $root | nindent 6 }}
      track: {{ $track }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  template:
    metadata:
      labels:
        {{- include "inventory.selectorLabels" $root | nindent 8 }}
        track: {{ $track }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        # A changed Secret or rules file made by the chart rolls the pods.
        checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "inventory.serviceAccountName" $root }}
      # The server never calls the Kubernetes API.
      automountServiceAccountToken: false
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      # The pre-stop drain, then INVENTORY_SHUTDOWN_TIMEOUT, then a margin.
      terminationGracePeriodSeconds: {{ include "inventory.terminationGracePeriodSeconds" $root }}
      securityContext:
        # The image's user: distroless "nonroot".
        runAsUser: 65532
        runAsGroup: 65532
        runAsNonRoot: true
        fsGroup: 65532
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: inventory
          image: "{{ $v.image.repository }}:{{ $tag }}"
          imagePullPolicy: {{ $v.image.pullPolicy }}
          ports:
            - name: http
              containerPort: {{ $v.server.port }}
              protocol: TCP
            {{- if $v.server.grpcPort }}
            - name: grpc
              containerPort: {{ $v.server.grpcPort }}
              protocol: TCP
            {{- end }}
          env:
            - name: INVENTORY_ADDR
              value: ":{{ $v.server.port }}"
            {{- if $v.server.grpcPort }}
            - name: INVENTORY_GRPC_ADDR
              value: ":{{ $v.server.grpcPort }}"
            {{- end }}
            - name: INVENTORY_NAMESPACE
              value: {{ include "inventory.namespace" $root | quote }}
            - name: INVENTORY_DB_DRIVER
              value: postgres
            - name: INVENTORY_DB_DSN
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: {{ $v.secrets.keys.databaseDSN }}
            - name: INVENTORY_DB_MAX_CONNS
              value: {{ $v.database.maxConns | quote }}
            - name: INVENTORY_LOCK_BACKEND
              value: {{ $v.lock.backend }}
            {{- if eq $v.lock.backend "redsync" }}
            - name: INVENTORY_REDIS_MODE
              value: {{ $v.lock.redis.mode }}
            - name: INVENTORY_REDIS_ADDRS
              value: {{ join "," $v.lock.redis.addrs | quote }}
            {{- if eq $redisAuth "usernamePassword" }}
            - name: INVENTORY_REDIS_USERNAME
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: {{ $v.secrets.keys.redisUsername }}
            {{- end }}
            {{- if ne $redisAuth "none" }}
            - name: INVENTORY_REDIS_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: {{ $v.secrets.keys.redisPassword }}
            {{- end }}
            - name: INVENTORY_REDIS_TLS
              value: {{ $v.lock.redis.tls | quote }}
            {{- with index $cas "redis" }}
            - name: INVENTORY_REDIS_CA_FILE
              value: {{ .file }}
            {{- end }}
            {{- else if eq $v.lock.backend "etcd" }}
            - name: INVENTORY_ETCD_ENDPOINTS
              value: {{ join "," $v.lock.etcd.endpoints | quote }}
            {{- if eq $etcdAuth "usernamePassword" }}
            - name: INVENTORY_ETCD_USERNAME
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: {{ $v.secrets.keys.etcdUsername }}
            - name: INVENTORY_ETCD_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: {{ $v.secrets.keys.etcdPassword }}
            {{- end }}
            {{- with index $cas "etcd" }}
            - name: INVENTORY_ETCD_CA_FILE
              value: {{ .file }}
            {{- end }}
            {{- end }}
            - name: INVENTORY_BROKER
              value: {{ $v.broker.type }}
            {{- if ne $v.broker.type "none" }}
            - name: INVENTORY_BROKER_COMMANDS
              value: {{ $v.broker.commands | quote }}
            {{- end }}
            {{- if eq $v.broker.type "nats" }}
            - name: INVENTORY_NATS_URL
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: {{ $v.secrets.keys.natsURL }}
            {{- else if eq $v.broker.type "rabbitmq" }}
            - name: INVENTORY_RABBITMQ_URL
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: {{ $v.secrets.keys.rabbitmqURL }}
            {{- else if eq $v.broker.type "kafka" }}
            - name: INVENTORY_KAFKA_BROKERS
              value: {{ join "," $v.broker.kafka.brokers | quote }}
            {{- with $v.broker.kafka.saslMechanism }}
            - name: INVENTORY_KAFKA_SASL_MECHANISM
              value: {{ . }}
            - name: INVENTORY_KAFKA_USERNAME
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: {{ $v.secrets.keys.kafkaUsername }}
            - name: INVENTORY_KAFKA_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: {{ $v.secrets.keys.kafkaPassword }}
            {{- end }}
            - name: INVENTORY_KAFKA_TLS
              value: {{ $v.broker.kafka.tls | quote }}
            {{- with index $cas "kafka" }}
            - name: INVENTORY_KAFKA_CA_FILE
              value: {{ .file }}
            {{- end }}
            - name: INVENTORY_KAFKA_PARTITIONS
              value: {{ $v.broker.kafka.partitions | quote }}
            - name: INVENTORY_KAFKA_REPLICATION_FACTOR
              value: {{ $v.broker.kafka.replicationFactor | quote }}
            {{- end }}
            {{- if $v.auth.allowAnonymous }}
            - name: INVENTORY_ALLOW_ANONYMOUS
              value: "true"
            {{- end }}
            {{- if or $v.secrets.existingSecret $v.secrets.values.authTokens }}
            - name: INVENTORY_AUTH_TOKENS
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: {{ $v.secrets.keys.authTokens }}
                  optional: {{ $v.auth.allowAnonymous }}
            {{- end }}
            {{- if $v.flowRules }}
            - name: INVENTORY_FLOW_RULES
              value: /etc/inventory/flow/rules.yaml
            {{- end }}
            {{- with $v.tracing.otlpEndpoint }}
            - name: INVENTORY_OTLP_ENDPOINT
              value: {{ . | quote }}
            {{- end }}
            # The pre-stop sleep drains: Kubernetes takes a terminating pod out
            # of its Services itself, so the server stops accepting at SIGTERM.
            - name: INVENTORY_SHUTDOWN_DRAIN
              value: "0s"
            - name: INVENTORY_SHUTDOWN_TIMEOUT
              value: "{{ $v.server.shutdownTimeoutSeconds }}s"
            - name: INVENTORY_LOG_LEVEL
              value: {{ $v.server.logLevel }}
            {{- if and $v.resources.limits $v.resources.limits.memory }}
            - name: GOMEMLIMIT
              valueFrom:
                resourceFieldRef:
                  containerName: inventory
                  resource: limits.memory
            {{- end }}
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: OTEL_SERVICE_NAME
              value: {{ include "inventory.name" $root }}
            - name: OTEL_RESOURCE_ATTRIBUTES
              value: "service.instance.id=$(POD_NAME),k8s.pod.name=$(POD_NAME),k8s.namespace.name={{ $root.Release.Namespace }},deployment.track={{ $track }}"
            {{- range $k, $val := $v.server.env }}
            - name: {{ $k }}
              value: {{ $val | quote }}
            {{- end }}
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ $v.probes.startup.periodSeconds }}
            failureThreshold: {{ $v.probes.startup.failureThreshold }}
            timeoutSeconds: 2
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ $v.probes.liveness.periodSeconds }}
            failureThreshold: {{ $v.probes.liveness.failureThreshold }}
            timeoutSeconds: 2
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: {{ $v.probes.readiness.periodSeconds }}
            failureThreshold: {{ $v.probes.readiness.failureThreshold }}
            # /readyz gives its checks 2s.
            timeoutSeconds: 3
          lifecycle:
            preStop:
              sleep:
                seconds: {{ $v.server.drainSeconds }}
          {{- with $v.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $v.flowRules }}
            # A directory, not a subPath: the kubelet then updates the file
            # in place and the server applies it without a restart.
            - name: flow-rules
              mountPath: /etc/inventory/flow
              readOnly: true
            {{- end }}
            {{- range $cas }}
            - name: {{ .volume }}
              mountPath: {{ dir .file }}
              readOnly: true
            {{- end }}
      volumes:
        # Nothing is written on PostgreSQL; a scratch /tmp for libraries that
        # expect one, on a read-only root.
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- if $v.flowRules }}
        - name: flow-rules
          configMap:
            name: {{ include "inventory.fullname" $root }}-flow-rules
        {{- end }}
        {{- range $cas }}
        # {{ .file }}: the CA Secret's key.
        - name: {{ .volume }}
          secret:
            secretName: {{ .secret }}
            defaultMode: 0444
            items:
              - key: {{ .key }}
                path: {{ base .file }}
        {{- end }}
      {{- if $v.topologySpread.enabled }}
      topologySpreadConstraints:
        {{- range $key := list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
        - topologyKey: {{ $key }}
          maxSkew: {{ $v.topologySpread.maxSkew }}
          whenUnsatisfiable: {{ $v.topologySpread.whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- include "inventory.selectorLabels" $root | nindent 14 }}
              track: {{ $track }}
          matchLabelKeys:
            - pod-template-hash
        {{- end }}
      {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}

{{/*
Names and labels.
*/}}
{{- define "neo4j-pool-sidecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "neo4j-pool-sidecar.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "neo4j-pool-sidecar.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "neo4j-pool-sidecar.labels" -}}
helm.sh/chart: {{ include "neo4j-pool-sidecar.chart" . }}
app.kubernetes.io/name: {{ include "neo4j-pool-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
neo4j-pool-sidecar.podLabels: put these on every pod that carries the sidecar; the metrics Service
and the PodMonitor select pods by them.
*/}}
{{- define "neo4j-pool-sidecar.podLabels" -}}
neo4j-pool-sidecar/scrape: {{ include "neo4j-pool-sidecar.fullname" . }}
{{- end }}

{{- define "neo4j-pool-sidecar.configMapName" -}}
{{- printf "%s-config" (include "neo4j-pool-sidecar.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "neo4j-pool-sidecar.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Where the Secret's password file is mounted in the sidecar container. */}}
{{- define "neo4j-pool-sidecar.passwordFile" -}}
/var/run/secrets/neo4j-pool-sidecar/password
{{- end }}

{{/*
The configuration file: values.config with the chart-owned settings applied. A password in values is
refused: it comes from the existing Secret only.
*/}}
{{- define "neo4j-pool-sidecar.configFile" -}}
{{- $config := deepCopy (default dict .Values.config) }}
{{- $neo4j := default dict $config.neo4j }}
{{- if or (hasKey $neo4j "password") (hasKey $neo4j "passwordFile") }}
{{- fail "config.neo4j.password and config.neo4j.passwordFile are set by the chart from neo4jCredentials.existingSecret; do not put a password in values" }}
{{- end }}
{{- $_ := set $neo4j "passwordFile" (include "neo4j-pool-sidecar.passwordFile" .) }}
{{- $_ = set $config "neo4j" $neo4j }}
{{- $http := default dict $config.http }}
{{- $_ = set $http "port" (int .Values.ports.metrics) }}
{{- $_ = set $config "http" $http }}
{{- /* Helm drops a key whose value is null, so a level nulled in values (no alert at that severity)
     arrives here missing; write the null back, or the sidecar would apply its default level. */}}
{{- $alerts := default dict $config.alerts }}
{{- range $key, $threshold := (default dict $alerts.thresholds) }}
{{- range $severity := list "warning" "critical" }}
{{- if not (hasKey $threshold $severity) }}
{{- $_ := set $threshold $severity nil }}
{{- end }}
{{- end }}
{{- end }}
{{- $proxy := default dict $config.proxy }}
{{- $_ = set $proxy "port" (int .Values.ports.bolt) }}
{{- $_ = set $config "proxy" $proxy }}
{{- toYaml $config }}
{{- end }}

{{/* True ("true") when the sidecar runs as a native sidecar in this cluster. */}}
{{- define "neo4j-pool-sidecar.native" -}}
{{- if eq .Values.sidecarMode "native" }}true
{{- else if eq .Values.sidecarMode "regular" }}false
{{- else if eq .Values.sidecarMode "auto" }}{{ semverCompare ">=1.29-0" .Capabilities.KubeVersion.Version }}
{{- else }}{{ fail (printf "sidecarMode must be auto, native or regular, not %q" .Values.sidecarMode) }}
{{- end }}
{{- end }}

{{/*
neo4j-pool-sidecar.container: the sidecar container, one list item. Include it under `containers:`
(regular) or `initContainers:` (native: it then carries restartPolicy: Always when
"neo4j-pool-sidecar.native" says so). Most users include "neo4j-pool-sidecar.sidecar" instead.
*/}}
{{- define "neo4j-pool-sidecar.container" -}}
- name: neo4j-pool-sidecar
  image: {{ include "neo4j-pool-sidecar.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if eq (include "neo4j-pool-sidecar.native" .) "true" }}
  restartPolicy: Always
  {{- end }}
  args:
    - run
    - --config
    - /etc/neo4j-pool-sidecar/config.yaml
  env:
    - name: NEO4J_PASSWORD_FILE
      value: {{ include "neo4j-pool-sidecar.passwordFile" . }}
    # The image sets these for `docker run`; environment variables win over the config file, so the
    # chart repeats its own values here to keep the probes, Service and listener on one port.
    - name: SIDECAR__HTTP__HOST
      value: {{ (default dict .Values.config.http).host | default "0.0.0.0" | quote }}
    - name: SIDECAR__HTTP__PORT
      value: {{ .Values.ports.metrics | quote }}
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: sidecar-metrics
      containerPort: {{ .Values.ports.metrics }}
      protocol: TCP
    {{- if .Values.config.proxy.enabled }}
    - name: sidecar-bolt
      containerPort: {{ .Values.ports.bolt }}
      protocol: TCP
    {{- end }}
  {{- with .Values.startupProbe }}
  startupProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.livenessProbe }}
  livenessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.readinessProbe }}
  readinessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: neo4j-pool-sidecar-config
      mountPath: /etc/neo4j-pool-sidecar
      readOnly: true
    - name: neo4j-pool-sidecar-credentials
      mountPath: /var/run/secrets/neo4j-pool-sidecar
      readOnly: true
    - name: neo4j-pool-sidecar-tmp
      mountPath: /tmp
{{- end }}

{{/*
neo4j-pool-sidecar.volumes: the volumes the container mounts, list items for the pod's `volumes:`.
*/}}
{{- define "neo4j-pool-sidecar.volumes" -}}
- name: neo4j-pool-sidecar-config
  configMap:
    name: {{ include "neo4j-pool-sidecar.configMapName" . }}
- name: neo4j-pool-sidecar-credentials
  secret:
    secretName: {{ required "neo4jCredentials.existingSecret: the name of a Secret holding the Neo4j password" .Values.neo4jCredentials.existingSecret }}
    items:
      - key: {{ .Values.neo4jCredentials.passwordKey }}
        path: password
- name: neo4j-pool-sidecar-tmp
  emptyDir:
    medium: Memory
    sizeLimit: 16Mi
{{- end }}

{{/*
neo4j-pool-sidecar.podAnnotations: restarts pods when the sidecar's configuration changes.
*/}}
{{- define "neo4j-pool-sidecar.podAnnotations" -}}
checksum/neo4j-pool-sidecar-config: {{ include "neo4j-pool-sidecar.configFile" . | sha256sum }}
{{- end }}

{{/*
What a pod template includes (docs/kubernetes.md has the full example):
  initContainers: "neo4j-pool-sidecar.initContainers"   the sidecar when it runs natively, else nothing
  containers:     "neo4j-pool-sidecar.regularContainer" the sidecar when it runs as a regular container
  volumes:        "neo4j-pool-sidecar.volumes"
  labels:         "neo4j-pool-sidecar.podLabels";  annotations: "neo4j-pool-sidecar.podAnnotations"
*/}}
{{- define "neo4j-pool-sidecar.initContainers" -}}
{{- if eq (include "neo4j-pool-sidecar.native" .) "true" }}
{{ include "neo4j-pool-sidecar.container" . }}
{{- end }}
{{- end }}

{{- define "neo4j-pool-sidecar.regularContainer" -}}
{{- if ne (include "neo4j-pool-sidecar.native" .) "true" }}
{{ include "neo4j-pool-sidecar.container" . }}
{{- end }}
{{- end }}

{{- define "neo4j-pool-sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "neo4j-pool-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

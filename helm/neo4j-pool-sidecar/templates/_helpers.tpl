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
neo4j-pool-sidecar.terminationGracePeriodSeconds: seconds a pod with the sidecar needs to stop
cleanly. On SIGTERM the proxy gives client connections proxy.shutdownGraceMs to finish in-flight
queries and transactions, then the sidecar closes its driver and flushes StatsD (a few seconds more);
Kubernetes kills whatever still runs after terminationGracePeriodSeconds, so it must cover both.
Never below Kubernetes' own default of 30. Put it in your worker pod's spec beside the sidecar.
*/}}
{{- define "neo4j-pool-sidecar.terminationGracePeriodSeconds" -}}
{{- $proxy := default dict (default dict .Values.config).proxy }}
{{- $graceMs := $proxy.shutdownGraceMs | default 10000 | int }}
{{- $seconds := add (div (add $graceMs 999) 1000) 5 }}
{{- max 30 $seconds }}
{{- end }}

{{/* Where the admin token Secret's file is mounted, when adminToken.existingSecret is set. */}}
{{- define "neo4j-pool-sidecar.adminTokenFile" -}}
/var/run/secrets/neo4j-pool-sidecar-admin/token
{{- end }}

{{/*
The configuration file: values.config with the chart-owned settings applied. A password in values is
refused: it comes from the existing Secret only. Takes (dict "root" $ "role" "sidecar"|"census"):
the census instance runs the census with the proxy off; beside workers the census is off while the
census instance runs it (census.enabled), so the server-wide listing happens once per fleet.
*/}}
{{- define "neo4j-pool-sidecar.configFileFor" -}}
{{- $root := .root -}}
{{- $config := deepCopy (default dict $root.Values.config) }}
{{- $neo4j := default dict $config.neo4j }}
{{- if or (hasKey $neo4j "password") (hasKey $neo4j "passwordFile") }}
{{- fail "config.neo4j.password and config.neo4j.passwordFile are set by the chart from neo4jCredentials.existingSecret; do not put a password in values" }}
{{- end }}
{{- $_ := set $neo4j "passwordFile" (include "neo4j-pool-sidecar.passwordFile" $root) }}
{{- $_ = set $config "neo4j" $neo4j }}
{{- $http := default dict $config.http }}
{{- $_ = set $http "port" (int $root.Values.ports.metrics) }}
{{- if hasKey $http "adminTokenFile" }}
{{- fail "config.http.adminTokenFile is set by the chart from adminToken.existingSecret; do not set it in values" }}
{{- end }}
{{- if (default dict $root.Values.adminToken).existingSecret }}
{{- $_ = set $http "adminTokenFile" (include "neo4j-pool-sidecar.adminTokenFile" $root) }}
{{- end }}
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
{{- $_ = set $proxy "port" (int $root.Values.ports.bolt) }}
{{- $probes := default dict $config.probes }}
{{- $census := default dict $probes.census }}
{{- if eq .role "census" }}
{{- $_ = set $proxy "enabled" false }}
{{- $_ = set $census "enabled" true }}
{{- else if $root.Values.census.enabled }}
{{- $_ = set $census "enabled" false }}
{{- end }}
{{- $_ = set $config "proxy" $proxy }}
{{- if or $census (hasKey $config "probes") }}
{{- $_ = set $probes "census" $census }}
{{- $_ = set $config "probes" $probes }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* The configuration file of the sidecars beside workers. */}}
{{- define "neo4j-pool-sidecar.configFile" -}}
{{- include "neo4j-pool-sidecar.configFileFor" (dict "root" . "role" "sidecar") }}
{{- end }}

{{- define "neo4j-pool-sidecar.censusName" -}}
{{- printf "%s-census" (include "neo4j-pool-sidecar.fullname" .) | trunc 63 | trimSuffix "-" }}
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
{{- include "neo4j-pool-sidecar.containerFor" (dict "root" . "native" (eq (include "neo4j-pool-sidecar.native" .) "true") "proxy" .Values.config.proxy.enabled "resources" .Values.resources) }}
{{- end }}

{{/* The container itself; takes (dict "root" $ "native" bool "proxy" bool "resources" map). */}}
{{- define "neo4j-pool-sidecar.containerFor" -}}
{{- $root := .root -}}
- name: neo4j-pool-sidecar
  image: {{ include "neo4j-pool-sidecar.image" $root | quote }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  {{- if .native }}
  restartPolicy: Always
  {{- end }}
  args:
    - run
    - --config
    - /etc/neo4j-pool-sidecar/config.yaml
  env:
    - name: NEO4J_PASSWORD_FILE
      value: {{ include "neo4j-pool-sidecar.passwordFile" $root }}
    # The image sets these for `docker run`; environment variables win over the config file, so the
    # chart repeats its own values here to keep the probes, Service and listener on one port.
    - name: SIDECAR__HTTP__HOST
      value: {{ (default dict $root.Values.config.http).host | default "0.0.0.0" | quote }}
    - name: SIDECAR__HTTP__PORT
      value: {{ $root.Values.ports.metrics | quote }}
    {{- with $root.Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: sidecar-metrics
      containerPort: {{ $root.Values.ports.metrics }}
      protocol: TCP
    {{- if .proxy }}
    - name: sidecar-bolt
      containerPort: {{ $root.Values.ports.bolt }}
      protocol: TCP
    {{- end }}
  {{- with $root.Values.startupProbe }}
  startupProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.livenessProbe }}
  livenessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.readinessProbe }}
  readinessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  resources:
    {{- toYaml .resources | nindent 4 }}
  securityContext:
    {{- toYaml $root.Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: neo4j-pool-sidecar-config
      mountPath: /etc/neo4j-pool-sidecar
      readOnly: true
    - name: neo4j-pool-sidecar-credentials
      mountPath: /var/run/secrets/neo4j-pool-sidecar
      readOnly: true
    {{- if (default dict $root.Values.adminToken).existingSecret }}
    - name: neo4j-pool-sidecar-admin-token
      mountPath: /var/run/secrets/neo4j-pool-sidecar-admin
      readOnly: true
    {{- end }}
    - name: neo4j-pool-sidecar-tmp
      mountPath: /tmp
{{- end }}

{{/*
neo4j-pool-sidecar.volumes: the volumes the container mounts, list items for the pod's `volumes:`.
*/}}
{{- define "neo4j-pool-sidecar.volumes" -}}
{{- include "neo4j-pool-sidecar.volumesFor" (dict "root" . "configMap" (include "neo4j-pool-sidecar.configMapName" .)) }}
{{- end }}

{{/* The volumes with the config file from another ConfigMap; takes (dict "root" $ "configMap" name). */}}
{{- define "neo4j-pool-sidecar.volumesFor" -}}
- name: neo4j-pool-sidecar-config
  configMap:
    name: {{ .configMap }}
- name: neo4j-pool-sidecar-credentials
  secret:
    secretName: {{ required "neo4jCredentials.existingSecret: the name of a Secret holding the Neo4j password" .root.Values.neo4jCredentials.existingSecret }}
    items:
      - key: {{ .root.Values.neo4jCredentials.passwordKey }}
        path: password
{{- with (default dict .root.Values.adminToken) }}
{{- if .existingSecret }}
- name: neo4j-pool-sidecar-admin-token
  secret:
    secretName: {{ .existingSecret }}
    items:
      - key: {{ .tokenKey | default "token" }}
        path: token
{{- end }}
{{- end }}
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

{{/*
Prometheus's template functions for the threshold levels written into alert descriptions, the way
src/alerts/template.ts writes them: Go's %.4g with SI prefixes (humanize), durations (humanizeDuration)
and percentages (humanizePercentage). Each takes a number and returns text.
*/}}
{{- define "neo4j-pool-sidecar.smallScaled" -}}
{{- $scaled := float64 . }}
{{- $prefix := "" }}
{{- range $candidate := list "m" "u" "n" "p" "f" "a" "z" "y" }}
{{- if lt $scaled 1.0 }}
{{- $prefix = $candidate }}
{{- $scaled = mulf $scaled 1000 }}
{{- end }}
{{- end }}
{{- printf "%.4g%s" $scaled $prefix }}
{{- end }}

{{- define "neo4j-pool-sidecar.humanize" -}}
{{- $value := float64 . }}
{{- if eq $value 0.0 }}0
{{- else if ge $value 1.0 }}
{{- $scaled := $value }}
{{- $prefix := "" }}
{{- range $candidate := list "k" "M" "G" "T" "P" "E" "Z" "Y" }}
{{- if ge $scaled 1000.0 }}
{{- $prefix = $candidate }}
{{- $scaled = divf $scaled 1000 }}
{{- end }}
{{- end }}
{{- printf "%.4g%s" $scaled $prefix }}
{{- else }}
{{- include "neo4j-pool-sidecar.smallScaled" $value }}
{{- end }}
{{- end }}

{{- define "neo4j-pool-sidecar.humanizeDuration" -}}
{{- $value := float64 . }}
{{- if eq $value 0.0 }}0s
{{- else if ge $value 1.0 }}
{{- $whole := int64 (floor $value) }}
{{- $seconds := mod $whole 60 }}
{{- $minutes := mod (div $whole 60) 60 }}
{{- $hours := mod (div $whole 3600) 24 }}
{{- $days := div $whole 86400 }}
{{- if ne $days 0 }}{{ printf "%dd %dh %dm %ds" $days $hours $minutes $seconds }}
{{- else if ne $hours 0 }}{{ printf "%dh %dm %ds" $hours $minutes $seconds }}
{{- else if ne $minutes 0 }}{{ printf "%dm %ds" $minutes $seconds }}
{{- else }}{{ printf "%.4gs" $value }}
{{- end }}
{{- else }}
{{- include "neo4j-pool-sidecar.smallScaled" $value }}s
{{- end }}
{{- end }}

{{- define "neo4j-pool-sidecar.formatLevel" -}}
{{- $unit := index . 0 }}
{{- $level := float64 (index . 1) }}
{{- if eq $unit "seconds" }}{{ include "neo4j-pool-sidecar.humanizeDuration" $level }}
{{- else if eq $unit "ratio" }}{{ printf "%.4g%%" (mulf $level 100) }}
{{- else if eq $unit "count" }}{{ include "neo4j-pool-sidecar.humanize" $level }}
{{- else if eq $unit "perSecond" }}{{ include "neo4j-pool-sidecar.humanize" $level }}/s
{{- else }}{{ fail (printf "unknown level unit %q in files/alert-definitions.yaml" $unit) }}
{{- end }}
{{- end }}

{{/* A level as a PromQL number literal: integers without a decimal point. */}}
{{- define "neo4j-pool-sidecar.promqlNumber" -}}
{{- $level := float64 . }}
{{- if eq $level (floor $level) }}{{ printf "%d" (int64 $level) }}
{{- else }}{{ printf "%v" $level }}
{{- end }}
{{- end }}

{{/*
The rule file's `groups`, as YAML: the same rules `neo4j-pool-sidecar rules` prints for
.Values.config.alerts. The alert definitions (names, expressions, texts) are generated from the
sidecar's source into files/alert-definitions.yaml; only the levels, windows and selector come from values.
*/}}
{{- define "neo4j-pool-sidecar.ruleGroups" -}}
{{- $catalogue := .Files.Get "files/alert-definitions.yaml" | fromYaml }}
{{- $alerts := .Values.config.alerts }}
{{- $prom := $alerts.prometheus }}
{{- $selector := trim (default "" $prom.selector) }}
{{- $rules := list }}
{{- range $definition := $catalogue.definitions }}
{{- $threshold := index $alerts.thresholds $definition.key }}
{{- if not $threshold }}{{ fail (printf "config.alerts.thresholds.%s is missing" $definition.key) }}{{ end }}
{{- if $threshold.enabled }}
{{- $window := default "" $threshold.window }}
{{- $expression := $definition.expression }}
{{- $allowance := default "" $definition.allowance }}
{{- if eq $selector "" }}
{{- $expression = $expression | replace (printf ", %s}" $catalogue.selectorPlaceholder) "}" | replace (printf "{%s}" $catalogue.selectorPlaceholder) "" }}
{{- $allowance = $allowance | replace (printf ", %s}" $catalogue.selectorPlaceholder) "}" | replace (printf "{%s}" $catalogue.selectorPlaceholder) "" }}
{{- else }}
{{- $expression = $expression | replace $catalogue.selectorPlaceholder $selector }}
{{- $allowance = $allowance | replace $catalogue.selectorPlaceholder $selector }}
{{- end }}
{{- $expression = $expression | replace $catalogue.windowPlaceholder $window }}
{{- $allowance = $allowance | replace $catalogue.windowPlaceholder $window }}
{{- /* A per-instance allowance on top of the level (ProbeDown: each probe's own interval). */}}
{{- $levelPrefix := ternary "" (printf "(%s) + " $allowance) (eq $allowance "") }}
{{- range $severity := list "warning" "critical" }}
{{- $level := index $threshold $severity }}
{{- if not (kindIs "invalid" $level) }}
{{- $levelText := include "neo4j-pool-sidecar.formatLevel" (list $definition.unit $level) }}
{{- $description := $definition.description | replace "{{threshold}}" $levelText | replace "{{window}}" $window }}
{{- $labels := merge (dict "severity" $severity) (deepCopy (default dict $prom.labels)) }}
{{- $rule := dict "alert" (printf "%s%s" $prom.namePrefix $definition.nameSuffix) "expr" (printf "(%s) >= %s%s" $expression $levelPrefix (include "neo4j-pool-sidecar.promqlNumber" $level)) "for" $threshold.for "labels" $labels "annotations" (dict "summary" $definition.summary "description" $description "runbook_url" (replace "%s" $definition.anchor $prom.runbookUrlTemplate)) }}
{{- $rules = append $rules $rule }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml (list (dict "name" $prom.groupName "rules" $rules)) }}
{{- end }}

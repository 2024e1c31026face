{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "driftwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object-name prefix: the release name when it already contains the chart name ("driftwatch"). */}}
{{- define "driftwatch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "driftwatch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "driftwatch.labels" -}}
helm.sh/chart: {{ include "driftwatch.chart" . }}
{{ include "driftwatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: driftwatch
{{- end }}

{{- define "driftwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "driftwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "driftwatch.operator.selectorLabels" -}}
{{ include "driftwatch.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "driftwatch.redis.selectorLabels" -}}
{{ include "driftwatch.selectorLabels" . }}
app.kubernetes.io/component: redis
{{- end }}

{{- define "driftwatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-operator" (include "driftwatch.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* image reference: repository[:tag][@digest] */}}
{{- define "driftwatch.image" -}}
{{- $repo := .repository }}
{{- if .digest }}
{{- printf "%s@%s" $repo .digest }}
{{- else }}
{{- printf "%s:%s" $repo .tag }}
{{- end }}
{{- end }}

{{- define "driftwatch.operatorImage" -}}
{{- include "driftwatch.image" (dict "repository" .Values.image.repository "tag" (default .Chart.AppVersion .Values.image.tag) "digest" .Values.image.digest) }}
{{- end }}

{{/* The sidecar defaults to the operator's image (one image, several entry points). */}}
{{- define "driftwatch.sidecarImage" -}}
{{- if .Values.sidecar.image.repository }}
{{- include "driftwatch.image" (dict "repository" .Values.sidecar.image.repository "tag" (default .Chart.AppVersion (default .Values.image.tag .Values.sidecar.image.tag)) "digest" "") }}
{{- else if .Values.sidecar.image.tag }}
{{- include "driftwatch.image" (dict "repository" .Values.image.repository "tag" .Values.sidecar.image.tag "digest" "") }}
{{- else }}
{{- include "driftwatch.operatorImage" . }}
{{- end }}
{{- end }}

{{- define "driftwatch.webhookServiceName" -}}
{{- printf "%s-webhook" (include "driftwatch.fullname" .) }}
{{- end }}

{{- define "driftwatch.webhookConfigurationName" -}}
{{- printf "%s-sidecar-injector" (include "driftwatch.fullname" .) }}
{{- end }}

{{- define "driftwatch.webhookCertSecret" -}}
{{- printf "%s-webhook-tls" (include "driftwatch.fullname" .) }}
{{- end }}

{{- define "driftwatch.redisServiceName" -}}
{{- printf "%s-redis" (include "driftwatch.fullname" .) }}
{{- end }}

{{/*
Monitoring labels: the common labels, monitoring.additionalLabels (e.g. kube-prometheus-stack's
`release`), then the object's own additionalLabels. Call with (list $ .Values.monitoring.podMonitor).
*/}}
{{- define "driftwatch.monitoringLabels" -}}
{{- $root := index . 0 }}
{{- $own := index . 1 }}
{{- $labels := merge (deepCopy ($own.additionalLabels | default dict)) (deepCopy ($root.Values.monitoring.additionalLabels | default dict)) }}
{{- include "driftwatch.labels" $root }}
{{- range $k, $v := $labels }}
{{ $k }}: {{ $v | quote }}
{{- end }}
{{- end }}

{{/*
The operator's RBAC, read from files/operator-rbac.yaml — a generated copy of the single source
deploy/rbac/operator-rbac.yaml. Returns a YAML list of {kind, suffix, rules, aggregationRule, binding} for every
Role/ClusterRole in the file but those annotated driftwatch.io/chart: omit (what the chart does itself);
ServiceAccounts and bindings in the file are ignored (the chart binds its own ServiceAccount), and
binding is the role's driftwatch.io/binding annotation ("per-namespace": RoleBindings in the watched
namespaces when operator.watchNamespaces is set; "by-users": installed unbound). suffix: the role's name without its leading "driftwatch-". The rules are used
as they are, except that resourceNames naming DriftWatch's own objects ("driftwatch-...") follow the
release's object names ("<fullname>-..."); for the release name "driftwatch" that changes nothing.
*/}}
{{- define "driftwatch.rbacRoles" -}}
{{- $fullname := include "driftwatch.fullname" . }}
{{- $content := .Files.Get "files/operator-rbac.yaml" }}
{{- if not $content }}
{{- fail "files/operator-rbac.yaml is missing: run scripts/gen-manifests.sh (it copies deploy/rbac/operator-rbac.yaml)" }}
{{- end }}
{{- $roles := list }}
{{- range $doc := regexSplit "(?m)^---[ \\t]*$" $content -1 }}
{{- $obj := fromYaml $doc }}
{{- if hasKey $obj "Error" }}
{{- fail (printf "files/operator-rbac.yaml does not parse: %s" $obj.Error) }}
{{- end }}
{{- $annotations := (($obj.metadata | default dict).annotations | default dict) }}
{{- if and (has ($obj.kind | default "") (list "ClusterRole" "Role")) (ne (index $annotations "driftwatch.io/chart" | default "") "omit") }}
{{- $suffix := $obj.metadata.name | trimPrefix "driftwatch" | trimPrefix "-" | default "operator" }}
{{- $rules := list }}
{{- range $rule := ($obj.rules | default list) }}
{{- if $rule.resourceNames }}
{{- $names := list }}
{{- range $n := $rule.resourceNames }}
{{- $names = append $names (ternary (printf "%s-%s" $fullname (trimPrefix "driftwatch-" $n)) $n (hasPrefix "driftwatch-" $n)) }}
{{- end }}
{{- $rule = set (deepCopy $rule) "resourceNames" $names }}
{{- end }}
{{- $rules = append $rules $rule }}
{{- end }}
{{- $binding := index $annotations "driftwatch.io/binding" | default "" }}
{{- $roles = append $roles (dict "kind" $obj.kind "suffix" $suffix "rules" $rules "aggregationRule" $obj.aggregationRule "binding" $binding) }}
{{- end }}
{{- end }}
{{- if not $roles }}
{{- fail "files/operator-rbac.yaml contains no Role or ClusterRole" }}
{{- end }}
{{- toYaml $roles }}
{{- end }}

{{/*
The admission policy of files/operator-rbac.yaml (ValidatingAdmissionPolicy + its binding), for this
release: named <fullname>-operator-writes, matching the chart's ServiceAccount. Returns a YAML list.
*/}}
{{- define "driftwatch.admissionPolicy" -}}
{{- $fullname := include "driftwatch.fullname" . }}
{{- $user := printf "system:serviceaccount:%s:%s" .Release.Namespace (include "driftwatch.serviceAccountName" .) }}
{{- $out := list }}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" (.Files.Get "files/operator-rbac.yaml") -1 }}
{{- $obj := fromYaml $doc }}
{{- if has ($obj.kind | default "") (list "ValidatingAdmissionPolicy" "ValidatingAdmissionPolicyBinding") }}
{{- $text := toYaml $obj | replace "system:serviceaccount:driftwatch:driftwatch-operator" $user | replace "driftwatch-operator-writes" (printf "%s-operator-writes" $fullname) }}
{{- $out = append $out (fromYaml $text) }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
A scrape endpoint's settings (ServiceMonitor endpoints[], PodMonitor podMetricsEndpoints[]) from a
values block with interval, scrapeTimeout, honorLabels, relabelings and metricRelabelings.
*/}}
{{- define "driftwatch.scrapeEndpoint" -}}
interval: {{ .interval }}
scrapeTimeout: {{ .scrapeTimeout }}
honorLabels: {{ .honorLabels }}
{{- with .relabelings }}
relabelings:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .metricRelabelings }}
metricRelabelings:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

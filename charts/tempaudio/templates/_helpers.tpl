{{/* Chart name. */}}
{{- define "tempaudio.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; components append -service / -operator / -cleanup. */}}
{{- define "tempaudio.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tempaudio.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tempaudio.labels" -}}
helm.sh/chart: {{ include "tempaudio.chart" . }}
{{ include "tempaudio.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tempaudio
{{- end }}

{{- define "tempaudio.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tempaudio.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tempaudio.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Service component. */}}
{{- define "tempaudio.service.fullname" -}}
{{- printf "%s-service" (include "tempaudio.fullname" .) }}
{{- end }}
{{- define "tempaudio.service.selectorLabels" -}}
{{ include "tempaudio.selectorLabels" . }}
app.kubernetes.io/component: service
{{- end }}
{{- define "tempaudio.service.labels" -}}
{{ include "tempaudio.labels" . }}
app.kubernetes.io/component: service
{{- end }}
{{- define "tempaudio.service.serviceAccountName" -}}
{{- if .Values.service.serviceAccount.create }}
{{- default (include "tempaudio.service.fullname" .) .Values.service.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.service.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Operator component. */}}
{{- define "tempaudio.operator.fullname" -}}
{{- printf "%s-operator" (include "tempaudio.fullname" .) }}
{{- end }}
{{- define "tempaudio.operator.selectorLabels" -}}
{{ include "tempaudio.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}
{{- define "tempaudio.operator.labels" -}}
{{ include "tempaudio.labels" . }}
app.kubernetes.io/component: operator
{{- end }}
{{- define "tempaudio.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "tempaudio.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Cleanup Jobs' ServiceAccount. */}}
{{- define "tempaudio.cleanup.serviceAccountName" -}}
{{- if .Values.cleanup.serviceAccount.create }}
{{- default (printf "%s-cleanup" (include "tempaudio.fullname" .)) .Values.cleanup.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.cleanup.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tempaudio.policyName" -}}
{{- default (include "tempaudio.fullname" .) .Values.policy.name }}
{{- end }}

{{/* Container security context shared by every tempaudio container. */}}
{{- define "tempaudio.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
capabilities:
  drop: ["ALL"]
{{- end }}

{{- define "tempaudio.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Namespaces the operator watches in namespaced mode: watchNamespaces, plus the release
namespace when the chart creates the default policy there. Empty: all namespaces.
*/}}
{{- define "tempaudio.operator.watchNamespaces" -}}
{{- $namespaces := .Values.operator.watchNamespaces }}
{{- if and $namespaces .Values.policy.create }}
{{- $namespaces = append $namespaces .Release.Namespace }}
{{- end }}
{{- toJson ($namespaces | uniq) }}
{{- end }}

{{/*
Namespaces whose TempAudioPolicies the service serves (comma-separated): policyNamespaces,
or the release namespace.
*/}}
{{- define "tempaudio.service.policyNamespaces" -}}
{{- join "," (.Values.service.policyNamespaces | default (list .Release.Namespace)) }}
{{- end }}

{{/* The policy a request without "policy" gets: defaultPolicy, or the chart's own policy. */}}
{{- define "tempaudio.service.defaultPolicy" -}}
{{- if .Values.service.defaultPolicy }}
{{- .Values.service.defaultPolicy }}
{{- else if .Values.policy.create }}
{{- printf "%s/%s" .Release.Namespace (include "tempaudio.policyName" .) }}
{{- end }}
{{- end }}

{{/*
service.openaiVoices as TEMPAUDIO_OPENAI_VOICES: name=voice pairs, sorted, comma-separated.
*/}}
{{- define "tempaudio.service.openaiVoices" -}}
{{- $pairs := list -}}
{{- range $name, $voice := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $name $voice) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end }}

{{/* Names and labels shared by every template. */}}

{{- define "headwater.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "<release>-headwater", or just the release name when it already contains the chart name. */}}
{{- define "headwater.fullname" -}}
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

{{- define "headwater.selectorLabels" -}}
app.kubernetes.io/name: {{ include "headwater.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "headwater.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "headwater.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: headwater
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "headwater.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "headwater.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "headwater.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "true" when watchNamespaces holds a glob: the operator then watches cluster-wide. */}}
{{- define "headwater.hasGlobs" -}}
{{- range .Values.watchNamespaces }}{{ if regexMatch "[*?\\[]" . }}true{{ end }}{{ end }}
{{- end }}

{{/* "true" when the namespaced rules must be bound cluster-wide (all namespaces, or globs). */}}
{{- define "headwater.clusterwide" -}}
{{- if or (not .Values.watchNamespaces) (include "headwater.hasGlobs" .) }}true{{ end }}
{{- end }}

{{/* "true" when Kopf peering (one active replica, the others standing by) is on. */}}
{{- define "headwater.peering" -}}
{{- if gt (int .Values.replicas) 1 }}true{{ end }}
{{- end }}

{{- define "headwater.peeringName" -}}
{{- include "headwater.fullname" . }}
{{- end }}

{{/* The operator's RBAC rule sets, generated from operator/headwater/rbac.py. */}}
{{- define "headwater.rules" -}}
{{- $all := .Files.Get "files/rbac.yaml" | fromYaml }}
{{- toYaml (index $all .set) }}
{{- end }}

{{/* key=value,key=value from a map (sorted), for env vars that carry labels. */}}
{{- define "headwater.kvlist" -}}
{{- $out := list -}}
{{- range $k := keys . | sortAlpha -}}
{{- $out = append $out (printf "%s=%s" $k (index $ $k)) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

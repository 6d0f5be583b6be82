{{/* Names and labels. The RayService name stays short: KubeRay derives cluster, pod and service names from it. */}}
{{- define "petit.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" }}
{{- end }}

{{- define "petit.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "petit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "petit.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "petit.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "petit.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "petit.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* Service accounts. */}}
{{- define "petit.rayServiceAccount" -}}
{{ include "petit.fullname" . }}-ray
{{- end }}

{{- define "petit.autoscalerName" -}}
{{ include "petit.fullname" . }}-autoscaler
{{- end }}

{{/* The Secret with the Ray token (key auth_token): the user's, or the one the chart creates. */}}
{{- define "petit.rayTokenSecret" -}}
{{ .Values.ray.auth.existingSecret | default (printf "%s-ray-token" (include "petit.fullname" .)) }}
{{- end }}

{{/* "true" when the autoscaler reads the Kubernetes API (fleet.autoscaler.gpu_source.kind: kubernetes), else "". */}}
{{- define "petit.autoscaler.readsKubernetes" -}}
{{- $src := (.Values.fleet.autoscaler | default dict).gpu_source | default dict }}
{{- if and .Values.autoscaler.enabled (eq ($src.kind | default "fixed") "kubernetes") }}true{{ end }}
{{- end }}

{{/* Per-model facts with FleetConfig's defaults (hasKey: 0 is a real value). */}}
{{- define "petit.model.gpus" -}}
{{- $r := default dict .resources }}{{ if hasKey $r "gpus" }}{{ $r.gpus }}{{ else }}0{{ end }}
{{- end }}

{{- define "petit.model.cpus" -}}
{{- $r := default dict .resources }}{{ if hasKey $r "cpus" }}{{ $r.cpus }}{{ else }}1{{ end }}
{{- end }}

{{- define "petit.model.min" -}}
{{- $r := default dict .replicas }}{{ if hasKey $r "min" }}{{ $r.min }}{{ else }}1{{ end }}
{{- end }}

{{- define "petit.model.max" -}}
{{- $r := default dict .replicas }}{{ if hasKey $r "max" }}{{ $r.max }}{{ else }}1{{ end }}
{{- end }}

{{/* Replicas at deploy time: replicas.initial, else max(min, 1) (Replicas.start). */}}
{{- define "petit.model.start" -}}
{{- $r := default dict .replicas }}
{{- if and (hasKey $r "initial") (ne (toString $r.initial) "<nil>") }}{{ $r.initial }}{{ else }}{{ max 1 (int (include "petit.model.min" .)) }}{{ end }}
{{- end }}

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

{{/* Tenants' store. "true" when the fleet's tenants keep their counters in Redis, else "". */}}
{{- define "petit.tenantStore.redis" -}}
{{- $ts := .Values.fleet.tenant_store | default dict }}
{{- if and .Values.fleet.tenants (eq ($ts.kind | default "memory") "redis") }}true{{ end }}
{{- end }}

{{/* "true" when the chart runs that Redis (no tenantStore.redis.existingSecret), else "". */}}
{{- define "petit.tenantStore.inChart" -}}
{{- if and (include "petit.tenantStore.redis" .) (not .Values.tenantStore.redis.existingSecret) }}true{{ end }}
{{- end }}

{{- define "petit.tenantRedisName" -}}
{{ include "petit.fullname" . }}-tenant-redis
{{- end }}

{{/* The Secret with the chart's Redis password: the user's, or the one the chart creates. */}}
{{- define "petit.tenantRedisPasswordSecret" -}}
{{ .Values.tenantStore.redis.auth.existingSecret | default (include "petit.tenantRedisName" .) }}
{{- end }}

{{/*
The store's URL in the variable the fleet names (tenant_store.redis_url_env), from a
Secret: the user's URL, or the chart's Redis with its password expanded by the kubelet
($(VAR) of an earlier variable), so no password is in the pod spec or the values.
*/}}
{{- define "petit.tenantStore.env" -}}
{{- if include "petit.tenantStore.redis" . }}
{{- $r := .Values.tenantStore.redis }}
{{- $urlEnv := (.Values.fleet.tenant_store | default dict).redis_url_env | default "PETIT_REDIS_URL" }}
{{- if $r.existingSecret }}
- name: {{ $urlEnv }}
  valueFrom:
    secretKeyRef:
      name: {{ $r.existingSecret }}
      key: {{ $r.key }}
{{- else }}
- name: PETIT_TENANT_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "petit.tenantRedisPasswordSecret" . }}
      key: {{ $r.auth.key }}
- name: {{ $urlEnv }}
  value: {{ printf "redis://:$(PETIT_TENANT_REDIS_PASSWORD)@%s:6379/0" (include "petit.tenantRedisName" .) | quote }}
{{- end }}
{{- end }}
{{- end }}

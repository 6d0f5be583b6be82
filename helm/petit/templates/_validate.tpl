{{/*
Checks values.schema.json cannot express; each fails the render with a message
saying what to change. Included once, from rayservice.yaml.
*/}}
{{- define "petit.validate" -}}
{{- $groupNames := list }}
{{- range .Values.workerGroups }}
{{- if has .name $groupNames }}
{{- fail (printf "workerGroups: the name %q appears twice" .name) }}
{{- end }}
{{- $groupNames = append $groupNames .name }}
{{- if or (gt (int .minReplicas) (int .replicas)) (gt (int .replicas) (int .maxReplicas)) }}
{{- fail (printf "workerGroups[%s]: need minReplicas <= replicas <= maxReplicas (got %v, %v, %v)" .name .minReplicas .replicas .maxReplicas) }}
{{- end }}
{{- end }}
{{- range .Values.fleet.models }}
{{- include "petit.validateModel" (dict "model" . "groups" $.Values.workerGroups) }}
{{- end }}
{{- $ingressCpus := float64 .Values.serve.ingress.cpus }}
{{- $room := ge (float64 .Values.ray.head.rayCpus) $ingressCpus }}
{{- range .Values.workerGroups }}
{{- if ge (float64 .cpus) $ingressCpus }}{{ $room = true }}{{ end }}
{{- end }}
{{- if not $room }}
{{- fail (printf "serve.ingress.cpus (%v) fits neither the head (ray.head.rayCpus) nor any worker group" .Values.serve.ingress.cpus) }}
{{- end }}
{{- include "petit.validateSecurity" . }}
{{- include "petit.validateTenantStore" . }}
{{- end }}

{{/* The tenants' store on Kubernetes: a shared one, or a reference that something uses. */}}
{{- define "petit.validateTenantStore" -}}
{{- $kind := (.Values.fleet.tenant_store | default dict).kind | default "memory" }}
{{- if and .Values.fleet.tenants (eq $kind "sqlite") }}
{{- fail "fleet.tenant_store.kind is sqlite, a file of one node: on Kubernetes the ingress replicas run on any Ray pod, whose files are neither shared nor kept, so spend would be counted per pod and lost at restart. Use kind redis (the chart runs one unless tenantStore.redis.existingSecret names yours) or memory" }}
{{- end }}
{{- if and .Values.tenantStore.redis.existingSecret (ne $kind "redis") }}
{{- fail (printf "tenantStore.redis.existingSecret is set but fleet.tenant_store.kind is %s, so nothing would use that Redis: set fleet.tenant_store.kind: redis, or leave tenantStore.redis.existingSecret empty" $kind) }}
{{- end }}
{{- end }}

{{/* The closed-by-default parts: each switch that needs a second value says which. */}}
{{- define "petit.validateSecurity" -}}
{{- $np := .Values.networkPolicy }}
{{- if and $np.enabled (not $np.kuberayOperatorNamespace) }}
{{- fail "networkPolicy.kuberayOperatorNamespace is required: the namespace of the KubeRay operator, which calls the Ray dashboard (kubectl get pods -A -l app.kubernetes.io/name=kuberay-operator); or set networkPolicy.enabled=false" }}
{{- end }}
{{- if and $np.enabled .Values.monitoring.serviceMonitor.enabled (not $np.metricsFrom) }}
{{- fail "monitoring.serviceMonitor is on but networkPolicy.metricsFrom is empty, so the NetworkPolicy keeps Prometheus out: list Prometheus's pods or namespace in networkPolicy.metricsFrom" }}
{{- end }}
{{- $ft := .Values.ray.gcsFaultTolerance }}
{{- if and $ft.enabled (not $ft.redisAddress) }}
{{- fail "ray.gcsFaultTolerance.enabled needs ray.gcsFaultTolerance.redisAddress (host:port of a Redis the head can reach)" }}
{{- end }}
{{- end }}

{{/* A model needs a group of its kind (CPU or GPU) with at least its GPUs and CPUs. */}}
{{- define "petit.validateModel" -}}
{{- $m := .model }}
{{- $gpus := float64 (include "petit.model.gpus" $m) }}
{{- $cpus := float64 (include "petit.model.cpus" $m) }}
{{- if gt (int (include "petit.model.min" $m)) (int (include "petit.model.max" $m)) }}
{{- fail (printf "fleet.models[id=%s].replicas: min must be <= max" $m.id) }}
{{- end }}
{{- $src := default dict $m.source }}
{{- if ne (len (keys $src)) 1 }}
{{- fail (printf "fleet.models[id=%s].source: set exactly one of packaged, path, hf" $m.id) }}
{{- end }}
{{- $fits := false }}
{{- range .groups }}
{{- $g := float64 .gpus }}
{{- if and (eq (eq $g 0.0) (eq $gpus 0.0)) (ge $g $gpus) (ge (float64 .cpus) $cpus) }}
{{- $fits = true }}
{{- end }}
{{- end }}
{{- if not $fits }}
{{- $kind := ternary "a CPU group (gpus: 0)" (printf "a GPU group with gpus >= %v" $gpus) (eq $gpus 0.0) }}
{{- fail (printf "fleet.models[id=%s] (gpus: %v, cpus: %v) has no worker group that can hold a replica: add %s and cpus >= %v to workerGroups, or regenerate them with `petit helm-values`" $m.id $gpus $cpus $kind $cpus) }}
{{- end }}
{{- end }}

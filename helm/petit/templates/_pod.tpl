{{/* Pod and container security, volumes and env shared by the chart's pods. */}}
{{- define "petit.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.security.runAsUser }}
runAsGroup: {{ .Values.security.runAsGroup }}
fsGroup: {{ .Values.security.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "petit.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .Values.security.readOnlyRootFilesystem }}
capabilities:
  drop: [ALL]
{{- end }}

{{/* Ray writes its session dir under /tmp; vLLM/torch/triton caches go under HOME=/tmp; the object store uses /dev/shm. */}}
{{- define "petit.ray.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.ray.tmpSizeLimit }}
- name: shared-mem
  emptyDir:
    medium: Memory
{{- if eq .Values.modelCache.type "emptyDir" }}
- name: model-cache
  emptyDir:
    sizeLimit: {{ .Values.modelCache.sizeLimit }}
{{- else if eq .Values.modelCache.type "pvc" }}
- name: model-cache
  persistentVolumeClaim:
    claimName: {{ required "modelCache.existingClaim is required when modelCache.type is pvc" .Values.modelCache.existingClaim }}
{{- end }}
{{- end }}

{{- define "petit.ray.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: shared-mem
  mountPath: /dev/shm
{{- if ne .Values.modelCache.type "image" }}
- name: model-cache
  mountPath: {{ .Values.modelCache.path }}
{{- end }}
{{- end }}

{{- define "petit.secretEnv" -}}
{{- with .Values.secrets.apiKeys.existingSecret }}
- name: PETIT_API_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.secrets.apiKeys.key }}
{{- end }}
{{- with .Values.secrets.hfToken.existingSecret }}
- name: HF_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.secrets.hfToken.key }}
{{- end }}
{{- end }}

{{/* Ray token authentication: every Ray container and the autoscaler's Ray Client. */}}
{{- define "petit.ray.authEnv" -}}
{{- if .Values.ray.auth.enabled }}
- name: RAY_AUTH_MODE
  value: token
- name: RAY_AUTH_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "petit.rayTokenSecret" . }}
      key: auth_token
{{- end }}
{{- end }}

{{- define "petit.ray.env" -}}
- name: HOME
  value: /tmp
{{- include "petit.ray.authEnv" . }}
- name: PETIT_CACHE_DIR
  value: {{ .Values.modelCache.path | quote }}
- name: HF_HOME
  value: {{ printf "%s/huggingface" .Values.modelCache.path | quote }}
{{- include "petit.secretEnv" . }}
{{- include "petit.tenantStore.env" . }}
{{- $lean := true }}
{{- with (.Values.fleet.ray | default dict) }}{{- if hasKey . "lean_request_path" }}{{- $lean = .lean_request_path }}{{- end }}{{- end }}
{{- if $lean }}
{{- /* Ray Serve's lean request path (serving/runner.py LEAN_SERVE_ENV): fleet.ray.lean_request_path */}}
- name: RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD
  value: "0"
- name: RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP
  value: "0"
- name: RAY_SERVE_USE_GRPC_BY_DEFAULT
  value: "1"
- name: RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE
  value: "1000"
- name: RAY_SERVE_LOG_TO_STDERR
  value: "0"
{{- end }}
{{- $haproxy := true }}
{{- with (.Values.fleet.ray | default dict) }}{{- if hasKey . "http_ingress" }}{{- $haproxy = eq .http_ingress "haproxy" }}{{- end }}{{- end }}
{{- if $haproxy }}
{{- /* Ray Serve's HAProxy ingress on the Serve port (serving/runner.py HAPROXY_SERVE_ENV): fleet.ray.http_ingress */}}
- name: RAY_SERVE_ENABLE_HA_PROXY
  value: "1"
{{- end }}
{{- end }}

{{/* Container ports of every Ray node: Ray's metrics export; the head adds its own. */}}
{{- define "petit.ray.metricsPort" -}}
- name: metrics
  containerPort: 8080
  protocol: TCP
{{- end }}

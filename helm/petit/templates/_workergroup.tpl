{{/*
One worker group: identical pods with nvidia.com/gpu requests == limits ==
rayStartParams.num-gpus, CPUs and memory likewise (Guaranteed QoS).
Called with (dict "group" <workerGroups item> "root" $).
*/}}
{{- define "petit.workerGroup" -}}
{{- $g := .group }}
{{- $root := .root }}
{{- $w := $root.Values.ray.workers }}
{{- $gpus := int $g.gpus }}
{{- $nodeSelector := mergeOverwrite (dict) (deepCopy $w.nodeSelector) (ternary (deepCopy $w.gpuNodeSelector) (dict) (gt $gpus 0)) (deepCopy (default dict $g.nodeSelector)) -}}
- groupName: {{ $g.name }}
  replicas: {{ $g.replicas }}
  minReplicas: {{ $g.minReplicas }}
  maxReplicas: {{ $g.maxReplicas }}
  rayStartParams:
    num-cpus: {{ $g.cpus | quote }}
    num-gpus: {{ $gpus | quote }}
    {{- with $g.rayResources }}
    resources: {{ printf "%q" (toJson .) | quote }}  {{- /* KubeRay: a quoted JSON string, as on the ray start command line */}}
    {{- end }}
  template:
    metadata:
      labels:
        {{- include "petit.selectorLabels" $root | nindent 8 }}
        app.kubernetes.io/component: ray-worker
        petit/worker-group: {{ $g.name }}
    spec:
      serviceAccountName: {{ include "petit.rayServiceAccount" $root }}
      automountServiceAccountToken: false
      securityContext:
        {{- include "petit.podSecurityContext" $root | nindent 8 }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- $tolerations := concat $w.tolerations (default list $g.tolerations) }}
      {{- if gt $gpus 0 }}
      {{- $tolerations = concat (list (dict "key" "nvidia.com/gpu" "operator" "Exists" "effect" "NoSchedule")) $w.gpuTolerations $tolerations }}
      {{- end }}
      {{- with $tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: ray-worker
          image: {{ include "petit.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          securityContext:
            {{- include "petit.containerSecurityContext" $root | nindent 12 }}
          ports:
            # Serve proxies run on every node; the API Service reaches them by name.
            - {name: serve, containerPort: 8000, protocol: TCP}
            {{- include "petit.ray.metricsPort" $root | nindent 12 }}
          env:
            {{- include "petit.ray.env" $root | nindent 12 }}
          resources:
            requests:
              {{- include "petit.workerResources" $g | nindent 14 }}
            limits:
              {{- include "petit.workerResources" $g | nindent 14 }}
          volumeMounts:
            {{- include "petit.ray.volumeMounts" $root | nindent 12 }}
      volumes:
        {{- include "petit.ray.volumes" $root | nindent 8 }}
{{- end }}

{{- define "petit.workerResources" -}}
cpu: {{ .cpus | quote }}
memory: {{ printf "%vGi" .memoryGib }}
{{- if gt (int .gpus) 0 }}
nvidia.com/gpu: {{ int .gpus | quote }}
{{- end }}
{{- end }}

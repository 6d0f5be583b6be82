{{/*
The Ray Serve config of the RayService: one application, the fleet as its only
argument (the same mapping as the fleet file), one deployment per model.
*/}}
{{- define "petit.serveConfig" -}}
applications:
  - name: petit
    route_prefix: /
    import_path: serving.app:build_app_from_args
    args:
      fleet:
        {{- toYaml .Values.fleet | nindent 8 }}
    deployments:
      - name: PetitIngress
        num_replicas: {{ .Values.serve.ingress.replicas }}
        ray_actor_options:
          num_cpus: {{ .Values.serve.ingress.cpus }}
          num_gpus: 0
      {{- range .Values.fleet.models }}
      {{- /* No num_replicas: each model deployment's replica count belongs to Serve's
             autoscaling-policy hook (serving/control/serve_policy.py), which starts at
             replicas.initial and follows Petit's autoscaler. */}}
      - name: model-{{ .id }}
        ray_actor_options:
          num_gpus: {{ include "petit.model.gpus" . }}
          num_cpus: {{ include "petit.model.cpus" . }}
          {{- with (.resources | default dict).custom }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
      {{- end }}
{{- end }}

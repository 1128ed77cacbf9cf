{{/*
Names. The ConfigMap name is fixed ("analysis-facility-settings") because the subcharts' values refer to it
and values cannot be templated: one release of this chart per namespace.
*/}}
{{- define "af.settingsName" -}}analysis-facility-settings{{- end }}

{{/* Labels common to every object of this chart. */}}
{{- define "af.labels" -}}
app.kubernetes.io/name: analysis-facility
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The facility settings as handed to hub_config: the values' `settings` with platform forced to kubernetes.
*/}}
{{- define "af.settings" -}}
{{- $s := deepCopy .Values.settings -}}
{{- $_ := set $s "platform" "kubernetes" -}}
{{- toYaml $s -}}
{{- end }}

{{/* Pod selectors of the dask-gateway chart's components and of the clusters its controller starts. */}}
{{- define "af.gatewaySelector" -}}
app.kubernetes.io/name: dask-gateway
app.kubernetes.io/component: {{ . }}
{{- end }}

{{/* Pod selector of the dashboard guard (templates/dashboard-guard.yaml). */}}
{{- define "af.guardSelector" -}}
app.kubernetes.io/name: analysis-facility
app.kubernetes.io/component: dashboard-guard
{{- end }}

{{/*
Egress to the Kubernetes API server, for pods that watch or change objects (traefik's kubernetescrd provider,
the gateway's KubeBackend). Policies see the API server at the `kubernetes` Service's port 443 or, after the
Service's address is translated (most CNIs), at the control plane's 6443; without
networkPolicy.kubeApiServer.cidrs any address is allowed on these ports.
*/}}
{{- define "af.kubeApiEgress" -}}
- ports:
    - port: 443
      protocol: TCP
    - port: 6443
      protocol: TCP
  {{- with .Values.networkPolicy.kubeApiServer.cidrs }}
  to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
{{- end }}

{{/* "true" when the chart deploys the facility's ServiceX service (settings.servicex.facility), else empty. */}}
{{- define "af.servicexEnabled" -}}
{{- if (.Values.settings.servicex | default dict).facility }}true{{ end }}
{{- end }}

{{/* Pod selector of the ServiceX service (templates/servicex.yaml). */}}
{{- define "af.servicexSelector" -}}
app.kubernetes.io/name: analysis-facility
app.kubernetes.io/component: servicex
{{- end }}

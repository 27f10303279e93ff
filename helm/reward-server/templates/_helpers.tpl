{{/*
Names and labels (the `helm create` conventions).
*/}}
{{- define "reward-server.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "reward-server.fullname" -}}
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

{{- define "reward-server.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "reward-server.labels" -}}
helm.sh/chart: {{ include "reward-server.chart" . }}
{{ include "reward-server.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: reward-server
{{- end }}

{{- define "reward-server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "reward-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "reward-server.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "reward-server.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "reward-server.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Paths inside the container. The volumes of deployment.yaml mount here.
*/}}
{{- define "reward-server.configDir" -}}/etc/reward-server/config{{- end }}
{{- define "reward-server.authDir" -}}/etc/reward-server/auth{{- end }}
{{- define "reward-server.tlsDir" -}}/etc/reward-server/tls{{- end }}
{{- define "reward-server.clientCADir" -}}/etc/reward-server/client-ca{{- end }}

{{/* The directory bare plugin names resolve to. */}}
{{- define "reward-server.pluginDir" -}}
{{- if eq .Values.plugins.source "image" }}{{ .Values.plugins.imageDir }}{{ else }}{{ .Values.plugins.pulledDir }}{{ end }}
{{- end }}

{{- define "reward-server.configMapName" -}}
{{- default (printf "%s-rewards" (include "reward-server.fullname" .)) .Values.rewards.existingConfigMap }}
{{- end }}

{{- define "reward-server.authSecretName" -}}
{{- default (printf "%s-auth" (include "reward-server.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/*
The token of the chart-created Secret, base64-encoded: auth.token when given; else the token the
release's Secret already holds, so `helm upgrade` keeps it; else a new random one (48 letters and
digits, about 285 bits). Called with (dict "root" $ "existing" <the Secret lookup returned>): lookup
needs the cluster, and returns nothing in offline renders (helm template, --dry-run=client, Argo
CD), which therefore make a new token every time.
*/}}
{{- define "reward-server.authTokenB64" -}}
{{- $auth := .root.Values.auth }}
{{- $kept := dig "data" $auth.secretKey "" (.existing | default dict) }}
{{- if $auth.token }}
{{- $auth.token | b64enc }}
{{- else if $kept }}
{{- $kept }}
{{- else }}
{{- randAlphaNum 48 | b64enc }}
{{- end }}
{{- end }}

{{/* http or https: what the probes, the ServiceMonitor and NOTES.txt use. */}}
{{- define "reward-server.httpScheme" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end }}
{{- end }}

{{/*
Graceful scale-in: the grace period is derived from drain.timeoutSeconds, so the kubelet never
kills a pod that is still finishing accepted requests:
  terminationGracePeriodSeconds = preStop sleep + drain timeout + margin
*/}}
{{- define "reward-server.preStopSleepSeconds" -}}
{{- if eq .Values.drain.preStop "sleep" }}{{ .Values.drain.preStopSleepSeconds | int }}{{ else }}0{{ end }}
{{- end }}

{{- define "reward-server.terminationGracePeriodSeconds" -}}
{{- add (include "reward-server.preStopSleepSeconds" . | int) (.Values.drain.timeoutSeconds | int) (.Values.drain.marginSeconds | int) }}
{{- end }}

{{/*
Cross-value checks the schema cannot express; each fails with the values it names.
*/}}
{{- define "reward-server.validate" -}}
{{- if and (eq .Values.drain.preStop "sleep") (gt (.Values.drain.preStopSleepSeconds | int) 0) (not (semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version)) }}
{{- fail (printf "drain.preStop=sleep needs Kubernetes >= 1.30 (the sleep lifecycle action), this cluster is %s: set drain.preStop=none" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and (not .Values.rewards.existingConfigMap) (regexMatch "(?m)^\\s*plugin_dir\\s*=" .Values.rewards.config) }}
{{- fail "rewards.config must not set plugin_dir: the chart sets it from plugins.source (use plugins.imageDir / plugins.pulledDir)" }}
{{- end }}
{{- if and (not .Values.rewards.existingConfigMap) (not (regexMatch "(?m)^\\s*\\[rewards\\." .Values.rewards.config)) }}
{{- fail "rewards.config defines no rewards: add a [rewards.NAME] table (or set rewards.existingConfigMap)" }}
{{- end }}
{{- end }}

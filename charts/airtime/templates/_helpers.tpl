{{/*
Expand the name of the chart.
*/}}
{{- define "airtime.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name, truncated at 63 characters because some Kubernetes
name fields are limited to that (by the DNS naming spec). If the release name contains the
chart name it is used as the full name.
*/}}
{{- define "airtime.fullname" -}}
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

{{/*
Chart name and version as used by the chart label.
*/}}
{{- define "airtime.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "airtime.labels" -}}
helm.sh/chart: {{ include "airtime.chart" . }}
{{ include "airtime.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: airtime
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels.
*/}}
{{- define "airtime.selectorLabels" -}}
app.kubernetes.io/name: {{ include "airtime.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels and selector labels of one component: call with (dict "ctx" $ "component" "server").
*/}}
{{- define "airtime.componentLabels" -}}
{{ include "airtime.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "airtime.componentSelectorLabels" -}}
{{ include "airtime.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The image tag (appVersion when image.tag is empty) and the full image reference.
*/}}
{{- define "airtime.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "airtime.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "airtime.imageTag" .) }}
{{- end }}

{{/*
ServiceAccount names.
*/}}
{{- define "airtime.serverServiceAccountName" -}}
{{- if .Values.server.serviceAccount.create }}
{{- default (printf "%s-server" (include "airtime.fullname" .)) .Values.server.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.server.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "airtime.workflowServiceAccountName" -}}
{{- if .Values.workflow.serviceAccount.create }}
{{- default (printf "%s-workflow" (include "airtime.fullname" .)) .Values.workflow.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.workflow.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Names of the ConfigMaps and Secrets the server and the workflow share.
*/}}
{{- define "airtime.settingsConfigMapName" -}}
{{- printf "%s-settings" (include "airtime.fullname" .) }}
{{- end }}

{{- define "airtime.artifactRepositoryName" -}}
{{- .Values.workflow.artifactRepository.configMapName }}
{{- end }}

{{- define "airtime.tokensSecretName" -}}
{{- default (printf "%s-tokens" (include "airtime.fullname" .)) .Values.tokens.existingSecret }}
{{- end }}

{{/*
The server pod's terminationGracePeriodSeconds: its preStop sleep, its drain budget and 5 s
for the process to exit, so the kubelet's SIGKILL never comes before the drain is over
(values.yaml, server.shutdown).
*/}}
{{- define "airtime.serverGracePeriodSeconds" -}}
{{- add (int .Values.server.shutdown.preStopSeconds) (int .Values.server.shutdown.drainSeconds) 5 }}
{{- end }}

{{/*
Expand the name of the chart.
*/}}
{{- define "weavergen-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "weavergen-operator.fullname" -}}
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
Create chart name and version as used by the chart label.
*/}}
{{- define "weavergen-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels
*/}}
{{- define "weavergen-operator.labels" -}}
helm.sh/chart: {{ include "weavergen-operator.chart" . }}
{{ include "weavergen-operator.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels
*/}}
{{- define "weavergen-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "weavergen-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The operator's ServiceAccount name.
*/}}
{{- define "weavergen-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "weavergen-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image, tag defaulting to the chart's appVersion.
*/}}
{{- define "weavergen-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Namespaces that get the phase Jobs' ServiceAccount, Role and RoleBinding.
*/}}
{{- define "weavergen-operator.phaseNamespaces" -}}
{{- toJson (default .Values.watchNamespaces .Values.phase.namespaces) }}
{{- end }}

{{/*
The Collector's selector labels: a name of its own, so the operator's Deployment and Service
never select the Collector's pods.
*/}}
{{- define "weavergen-operator.collectorSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-collector" (include "weavergen-operator.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: collector
{{- end }}

{{/*
The Collector's labels.
*/}}
{{- define "weavergen-operator.collectorLabels" -}}
helm.sh/chart: {{ include "weavergen-operator.chart" . }}
{{ include "weavergen-operator.collectorSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.collector.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Whether charters are sharded across replicas (a StatefulSet), and the shards' OTLP/gRPC
endpoints as a JSON list, in ordinal order: the operator's WEAVERGEN_SHARD_ENDPOINTS and the
Collector's static resolver are both rendered from it, so their strings (the ring's input)
are the same.
*/}}
{{- define "weavergen-operator.sharded" -}}
{{- if gt (int .Values.sharding.shards) 1 }}true{{ end }}
{{- end }}

{{- define "weavergen-operator.shardsService" -}}
{{- printf "%s-shards" (include "weavergen-operator.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{- define "weavergen-operator.shardEndpoints" -}}
{{- $fullname := include "weavergen-operator.fullname" . }}
{{- $service := include "weavergen-operator.shardsService" . }}
{{- $domain := ternary (printf ".%s" .Values.sharding.clusterDomain) "" (ne .Values.sharding.clusterDomain "") }}
{{- $endpoints := list }}
{{- range $k := until (int .Values.sharding.shards) }}
{{- $endpoints = append $endpoints (printf "%s-%d.%s.%s.svc%s:%d" $fullname $k $service $.Release.Namespace $domain (int $.Values.sharding.grpcPort)) }}
{{- end }}
{{- toJson $endpoints }}
{{- end }}

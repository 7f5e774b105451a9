{{/* Chart name, truncated to the DNS label limit. */}}
{{- define "cas-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified release name. */}}
{{- define "cas-gateway.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "cas-gateway.operatorName" -}}
{{- printf "%s-operator" (include "cas-gateway.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cas-gateway.gatewayName" -}}
{{- printf "%s-gateway" (include "cas-gateway.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The operator's xDS Service, as Envoy and the sidecars resolve it. */}}
{{- define "cas-gateway.xdsHost" -}}
{{- printf "%s-xds.%s.svc" (include "cas-gateway.operatorName" .) .Release.Namespace -}}
{{- end -}}

{{- define "cas-gateway.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "cas-gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "cas-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cas-gateway
{{- end -}}

{{- define "cas-gateway.operatorSelector" -}}
app.kubernetes.io/name: {{ include "cas-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "cas-gateway.gatewaySelector" -}}
app.kubernetes.io/name: {{ include "cas-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{/* Restricted Pod Security Standard, for every container. */}}
{{- define "cas-gateway.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "cas-gateway.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Directory flags for the sidecar and the mail proxy (CSV from the ConfigMap, or LDAP). */}}
{{- define "cas-gateway.directoryArgs" -}}
{{- $d := .Values.mailboxDirectory -}}
{{- if $d.ldap.url }}
- --directory={{ $d.ldap.url }}
{{- with $d.ldap.baseDN }}
- --ldap-base-dn={{ . }}
{{- end }}
{{- with $d.ldap.bindDN }}
- --ldap-bind-dn={{ . }}
{{- end }}
{{- if $d.ldap.passwordSecretName }}
- --ldap-password-file=/etc/cas-gateway/ldap/password
{{- end }}
{{- with $d.ldap.maxInFlight }}
- --directory-max-in-flight={{ int . }}
{{- end }}
{{- else if $d.configMap }}
- --directory=/etc/cas-gateway/directory/{{ $d.key }}
{{- else }}
{{- fail "set mailboxDirectory.configMap (a Get-Mailbox CSV in a ConfigMap) or mailboxDirectory.ldap.url: the sidecar and mail proxy need a mailbox directory" }}
{{- end }}
{{- end -}}

{{/* Volume mounts for the directory (CSV ConfigMap, LDAP password). */}}
{{- define "cas-gateway.directoryMounts" -}}
{{- if and .Values.mailboxDirectory.configMap (not .Values.mailboxDirectory.ldap.url) }}
- name: directory
  mountPath: /etc/cas-gateway/directory
  readOnly: true
{{- end }}
{{- if and .Values.mailboxDirectory.ldap.url .Values.mailboxDirectory.ldap.passwordSecretName }}
- name: ldap-password
  mountPath: /etc/cas-gateway/ldap
  readOnly: true
{{- end }}
{{- end -}}

{{/*
Envoy's listeners, space-separated: smtp and submission only with gateway.smtp.enabled (no listener,
port or Service port for a protocol nobody asked for). With --smtp the operator builds both, so the
chart publishes both: every listener Envoy binds has its container port and Service port.
*/}}
{{- define "cas-gateway.listenerNames" -}}
{{- $names := list "https" "http" "imaps" "pop3s" "imap4" "pop3" -}}
{{- if .Values.gateway.smtp.enabled }}{{ $names = concat $names (list "smtp" "submission") }}{{ end -}}
{{- join " " $names -}}
{{- end }}

{{- /* ADS over mutual TLS: the Secrets holding the operator's server certificate and the gateway pods' client certificate (tls.crt, tls.key, ca.crt). */ -}}
{{- define "cas-gateway.xdsServerSecret" -}}
{{- .Values.xds.tls.serverSecretName | default (printf "%s-xds-server" (include "cas-gateway.operatorName" .)) -}}
{{- end -}}
{{- define "cas-gateway.xdsClientSecret" -}}
{{- .Values.xds.tls.clientSecretName | default (printf "%s-xds-client" (include "cas-gateway.gatewayName" .)) -}}
{{- end -}}
{{- define "cas-gateway.xdsClientArgs" -}}
{{- if .Values.xds.tls.enabled }}
- --xds-ca=/etc/cas-gateway/xds-tls/ca.crt
- --xds-cert=/etc/cas-gateway/xds-tls/tls.crt
- --xds-key=/etc/cas-gateway/xds-tls/tls.key
- --xds-server-name={{ include "cas-gateway.xdsHost" . }}
{{- end }}
{{- end -}}
{{- define "cas-gateway.xdsTlsMount" -}}
{{- if .Values.xds.tls.enabled }}
- name: xds-tls
  mountPath: /etc/cas-gateway/xds-tls
  readOnly: true
{{- end }}
{{- end -}}

{{- /* The CA bundle that validates the Exchange servers' certificates (upstreamTls). */ -}}
{{- define "cas-gateway.upstreamCaConfigMap" -}}
{{- .Values.upstreamTls.configMapName | default (printf "%s-upstream-ca" (include "cas-gateway.fullname" .)) -}}
{{- end -}}
{{- define "cas-gateway.upstreamCaMount" -}}
{{- if or .Values.upstreamTls.caBundle .Values.upstreamTls.configMapName }}
- name: upstream-ca
  mountPath: /etc/cas-gateway/upstream-ca
  readOnly: true
{{- end }}
{{- end -}}
{{- define "cas-gateway.upstreamCaVolume" -}}
{{- if or .Values.upstreamTls.caBundle .Values.upstreamTls.configMapName }}
- name: upstream-ca
  configMap:
    name: {{ include "cas-gateway.upstreamCaConfigMap" . }}
{{- end }}
{{- end -}}

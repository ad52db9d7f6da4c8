{{/* Names, labels and the pieces every mailfleet pod shares. */}}

{{- define "mailfleet.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mailfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels; call with (dict "ctx" $ "component" "smtp-in"). */}}
{{- define "mailfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mailfleet.labels" -}}
{{ include "mailfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: mailfleet
helm.sh/chart: {{ include "mailfleet.chart" .ctx }}
{{- end -}}

{{- define "mailfleet.image" -}}
{{- printf "%s/%s:%s" .ctx.Values.image.registry .name (default .ctx.Chart.AppVersion .ctx.Values.image.tag) -}}
{{- end -}}

{{- define "mailfleet.natsURL" -}}
{{- if .Values.nats.enabled -}}
{{- printf "nats://%s-nats:4222" (include "mailfleet.fullname" .) -}}
{{- else -}}
{{- required "nats.url is required when nats.enabled is false" .Values.nats.url -}}
{{- end -}}
{{- end -}}

{{- define "mailfleet.redisURL" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s-redis:6379" (include "mailfleet.fullname" .) -}}
{{- else -}}
{{- required "redis.url is required when redis.enabled is false" .Values.redis.url -}}
{{- end -}}
{{- end -}}

{{- define "mailfleet.tlsSecret" -}}
{{- if .Values.tls.existingSecret -}}
{{- .Values.tls.existingSecret -}}
{{- else if .Values.tls.crt -}}
{{- printf "%s-tls" (include "mailfleet.fullname" .) -}}
{{- else -}}
{{- fail "a TLS certificate is required: set tls.existingSecret (e.g. from cert-manager) or tls.crt and tls.key" -}}
{{- end -}}
{{- end -}}

{{- define "mailfleet.credentialsSecret" -}}
{{- if .Values.credentials.existingSecret -}}
{{- .Values.credentials.existingSecret -}}
{{- else if or .Values.credentials.adminpasswd .Values.credentials.passwordsInit -}}
{{- printf "%s-credentials" (include "mailfleet.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "mailfleet.dkimSecret" -}}
{{- if .Values.dkim.existingSecret -}}
{{- .Values.dkim.existingSecret -}}
{{- else if .Values.dkim.keys -}}
{{- printf "%s-dkim" (include "mailfleet.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "mailfleet.sharedClaim" -}}
{{- default (printf "%s-shared" (include "mailfleet.fullname" .)) .Values.shared.existingClaim -}}
{{- end -}}

{{/*
The pod spec of a mailfleet service.  Call with (dict "ctx" $ "component"
"smtp-in" "values" .Values.smtpIn "ports" (list ...) "tls" true "dkim" false
"dataVolume" "emptyDir"|"claim").
*/}}
{{- define "mailfleet.podSpec" -}}
{{- $ctx := .ctx -}}
{{- $full := include "mailfleet.fullname" $ctx -}}
{{- with $ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml $ctx.Values.podSecurityContext | nindent 2 }}
# SIGTERM drains (stop accepting, finish sessions); leave time for it.
terminationGracePeriodSeconds: 30
initContainers:
  # The first domains.conf goes to the shared volume once; afterwards the web
  # admin and the CLI own it.  mv -n: several pods may race, one wins.
  - name: seed-domains
    image: {{ include "mailfleet.image" (dict "ctx" $ctx "name" "cli") }}
    imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
    command:
      - sh
      - -c
      - >-
        mkdir -p /var/lib/mailfleet/shared/blobs &&
        if [ ! -f /var/lib/mailfleet/shared/domains.conf ]; then
        cp /etc/mailfleet/domains.conf.seed /var/lib/mailfleet/shared/.domains.conf.$HOSTNAME &&
        mv -n /var/lib/mailfleet/shared/.domains.conf.$HOSTNAME /var/lib/mailfleet/shared/domains.conf;
        rm -f /var/lib/mailfleet/shared/.domains.conf.$HOSTNAME; fi
    securityContext:
      {{- toYaml $ctx.Values.securityContext | nindent 6 }}
    resources:
      requests: {cpu: 10m, memory: 16Mi}
      limits: {memory: 64Mi}
    volumeMounts:
      - {name: config, mountPath: /etc/mailfleet, readOnly: true}
      - {name: shared, mountPath: /var/lib/mailfleet/shared}
containers:
  - name: {{ .component }}
    image: {{ include "mailfleet.image" (dict "ctx" $ctx "name" .component) }}
    imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
    env:
      - name: MAILFLEET_CONFIG
        value: /etc/mailfleet/mailfleet.conf
    ports:
      - {name: metrics, containerPort: 9090, protocol: TCP}
      {{- range .ports }}
      - {name: {{ .name }}, containerPort: {{ .port }}, protocol: TCP}
      {{- end }}
    livenessProbe:
      httpGet: {path: /healthz, port: metrics}
      initialDelaySeconds: 5
      periodSeconds: 15
      timeoutSeconds: 5
      failureThreshold: 4
    readinessProbe:
      httpGet: {path: /readyz, port: metrics}
      periodSeconds: 5
      timeoutSeconds: 5
      failureThreshold: 2
    resources:
      {{- toYaml .values.resources | nindent 6 }}
    securityContext:
      {{- toYaml $ctx.Values.securityContext | nindent 6 }}
    volumeMounts:
      - {name: config, mountPath: /etc/mailfleet, readOnly: true}
      - {name: shared, mountPath: /var/lib/mailfleet/shared}
      - {name: data, mountPath: /var/lib/mailfleet/data}
      - {name: tmp, mountPath: /tmp}
      {{- if .tls }}
      - {name: tls, mountPath: /etc/mailfleet/tls, readOnly: true}
      {{- end }}
      {{- if .dkim }}
      - {name: dkim, mountPath: /etc/mailfleet/dkim, readOnly: true}
      {{- end }}
volumes:
  - name: config
    projected:
      sources:
        - configMap:
            name: {{ $full }}-config
        {{- $creds := include "mailfleet.credentialsSecret" $ctx }}
        {{- if $creds }}
        - secret:
            name: {{ $creds }}
            items:
              - {key: adminpasswd, path: adminpasswd}
              - {key: passwords.init, path: passwords.init}
        {{- end }}
  - name: shared
    persistentVolumeClaim:
      claimName: {{ include "mailfleet.sharedClaim" $ctx }}
  - name: tmp
    emptyDir: {sizeLimit: 64Mi}
  {{- if eq .dataVolume "emptyDir" }}
  - name: data
    emptyDir: {}
  {{- end }}
  {{- if .tls }}
  - name: tls
    secret:
      secretName: {{ include "mailfleet.tlsSecret" $ctx }}
      defaultMode: 0440
  {{- end }}
  {{- if .dkim }}
  - name: dkim
    secret:
      secretName: {{ required "DKIM keys are required: set dkim.existingSecret or dkim.keys" (include "mailfleet.dkimSecret" $ctx) }}
      defaultMode: 0440
  {{- end }}
{{- with $ctx.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $ctx.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $ctx.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod template metadata; the config checksum restarts pods on changes. */}}
{{- define "mailfleet.podMeta" -}}
metadata:
  labels:
    {{- include "mailfleet.labels" . | nindent 4 }}
  annotations:
    checksum/config: {{ include (print .ctx.Template.BasePath "/configmap.yaml") .ctx | sha256sum }}
    {{- with .ctx.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

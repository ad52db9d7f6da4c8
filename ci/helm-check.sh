#!/bin/bash
# Checks the Helm chart without helm (Debian has no helm binary): renders
# helm/mailfleet with ci/helmrender (Go text/template + sprig, Helm's engine
# and functions) for several sets of values and checks the manifests
# (valid YAML, required fields, labels and selectors, probes, resources,
# securityContext, references between objects, the DKIM secret only in
# dnsauth), and loads the rendered mailfleet.conf and domains.conf with
# `mailfleet config check`.  Also checks that the checker fails on broken
# manifests and that the chart refuses to render without a TLS certificate.
#
# Usage: BUILD=build ci/helm-check.sh   (needs build/bin/mailfleet for the
# config check; installs golang-go and sprig from Debian when missing)
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
CHART="$ROOT/helm/mailfleet"
PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok: $*"; }
bad() { FAILED=$((FAILED + 1)); echo "FAIL: $*" >&2; }
TMP=$(mktemp -d /tmp/mf-helm-check.XXXXXX)
trap 'rm -rf "$TMP"; echo "$PASSED passed, $FAILED failed"; [ "$FAILED" -eq 0 ]' EXIT

# --- the renderer -------------------------------------------------------------
missing=""
for p in golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v2-dev; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
	$SUDO apt-get update -q >/dev/null
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null ||
		{ bad "cannot install$missing"; exit 1; }
fi
# Debian ships Go libraries for GOPATH builds under /usr/share/gocode, without
# the /v3 major-version directories that sprig's imports name: add them.
GP="$BUILD/gopath"
for m in sprig semver; do
	mkdir -p "$GP/src/github.com/Masterminds/$m"
	ln -sfn "/usr/share/gocode/src/github.com/Masterminds/$m" "$GP/src/github.com/Masterminds/$m/v3"
done
mkdir -p "$BUILD/tools"
RENDER="$BUILD/tools/helmrender"
(cd "$ROOT/ci/helmrender" && GO111MODULE=off GOPATH="$GP:/usr/share/gocode" \
	GOCACHE="$BUILD/gocache" GOFLAGS= go build -o "$RENDER" .) || { bad "ci/helmrender does not build"; exit 1; }
ok "helmrender built"

# --- the checker fails where it must -------------------------------------------
if "$RENDER" -check-only "$ROOT/ci/helm/bad-manifests.yaml" -only-in the-dkim=dnsauth >"$TMP/bad.out" 2>&1; then
	bad "the checker accepts ci/helm/bad-manifests.yaml"
else
	n=0
	for want in "does not match the pod labels" "no livenessProbe" "no readinessProbe" \
		"runAsNonRoot" "runAsUser" "readOnlyRootFilesystem" "capabilities.drop" "resources.requests" \
		"may be mounted only into dnsauth" "externalTrafficPolicy: Local" "is not a port name"; do
		grep -qF "$want" "$TMP/bad.out" && n=$((n + 1)) || bad "the checker missed: $want"
	done
	[ "$n" -eq 11 ] && ok "the checker reports each of 11 broken rules"
fi
if "$RENDER" -chart "$CHART" -o "$TMP/default.yaml" 2>"$TMP/default.err"; then
	bad "the chart renders without a TLS certificate"
elif grep -q "a TLS certificate is required" "$TMP/default.err"; then
	ok "without a TLS certificate the chart refuses to render, saying why"
else
	bad "rendering without TLS failed for another reason: $(cat "$TMP/default.err")"
fi

# --- the chart, with secrets from outside and with everything on -------------------
if "$RENDER" -chart "$CHART" -f "$ROOT/ci/helm/values-test.yaml" -o "$TMP/test.yaml" -check \
	-only-in mail-dkim=dnsauth -external Secret/mail-tls -external Secret/mail-dkim \
	-external Secret/mail-credentials 2>"$TMP/test.err"; then
	ok "values-test.yaml: $(tail -1 "$TMP/test.err" | sed 's/^helmrender: //')"
else
	bad "values-test.yaml: $(cat "$TMP/test.err")"
fi
if "$RENDER" -chart "$CHART" -f "$ROOT/ci/helm/values-full.yaml" -name mf -namespace mail \
	-o "$TMP/full.yaml" -check -only-in mf-mailfleet-dkim=dnsauth \
	-external PersistentVolumeClaim/mail-shared 2>"$TMP/full.err"; then
	ok "values-full.yaml (HPA, ServiceMonitor, PrometheusRule, Ingress, PROXY protocol, external NATS/Redis): $(tail -1 "$TMP/full.err" | sed 's/^helmrender: //')"
else
	bad "values-full.yaml: $(cat "$TMP/full.err")"
fi
for k in HorizontalPodAutoscaler ServiceMonitor PrometheusRule Ingress; do
	grep -q "^kind: $k$" "$TMP/full.yaml" || bad "values-full.yaml renders no $k"
done
grep -q 'listen 0.0.0.0:2525 starttls proxy$' "$TMP/full.yaml" || bad "proxyProtocol does not reach smtp-in's listen line"
[ "$(grep -c '^kind: StatefulSet$' "$TMP/test.yaml")" = 5 ] || bad "want 5 StatefulSets (imap, queue, reports, nats, redis)"
[ "$(grep -c '^kind: Deployment$' "$TMP/test.yaml")" = 5 ] || bad "want 5 Deployments (smtp-in, submission, delivery, dnsauth, web)"

# --- the rendered configuration loads ------------------------------------------------
# Extract mailfleet.conf and domains.conf.seed from the ConfigMap, move their
# absolute paths under $TMP, give them a certificate and DKIM keys, check.
CLI="$BUILD/bin/mailfleet"
if [ ! -x "$CLI" ]; then
	bad "$CLI is not built: cannot check the rendered configuration"
else
	R="$TMP/root"
	mkdir -p "$R/etc/tls" "$R/etc/dkim" "$R/var/shared" "$R/var/data"
	awk -v out="$R" '
		/^# Source: mailfleet\/templates\/configmap.yaml/ { inmap = 1 }
		/^---/ { inmap = 0; file = "" }
		inmap && /^  mailfleet.conf: \|/ { file = out "/etc/mailfleet.conf"; next }
		inmap && /^  domains.conf.seed: \|/ { file = out "/var/shared/domains.conf"; next }
		inmap && file != "" && /^  [^ ]/ { file = "" }
		inmap && file != "" { sub(/^    /, ""); print > file }
	' "$TMP/test.yaml"
	sed -i "s#/etc/mailfleet/#$R/etc/#g; s#/var/lib/mailfleet/#$R/var/#g" "$R/etc/mailfleet.conf" "$R/var/shared/domains.conf"
	"$CLI" quickstart --dir "$TMP/qs" --domain example.test --hostname mail.example.test >/dev/null 2>&1 ||
		bad "quickstart (for keys) failed"
	cp "$TMP/qs/config/tls/cert.pem" "$R/etc/tls/tls.crt"
	cp "$TMP/qs/config/tls/key.pem" "$R/etc/tls/tls.key"
	cp "$TMP"/qs/config/dkim/*a.pem "$R/etc/dkim/example.test-2026a.pem"
	cp "$TMP"/qs/config/dkim/*b.pem "$R/etc/dkim/example.test-2026b.pem"
	if "$CLI" config check -c "$R/etc/mailfleet.conf" >"$TMP/cc.out" 2>&1; then
		ok "the chart's mailfleet.conf and domains.conf pass mailfleet config check"
	else
		bad "the chart's configuration fails mailfleet config check: $(cat "$TMP/cc.out")"
	fi
fi
[ "$FAILED" -eq 0 ]

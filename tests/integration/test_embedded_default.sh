#!/bin/bash
# make run's embedded default: starts, every service healthy, ready and
# exporting valid metrics, listeners answer "not available yet", SIGTERM stops
# every process with status 0 within 10 s, and a second run reuses the data.
. "$(dirname "$0")/lib/common.sh"

RUN="$TMP/run"
SERVICES="smtp-in submission imap queue delivery dnsauth reports web"
for p in 1025 1587 1465 1143 1993 1080 1081 1082 1083 1084 1085 1086 1087 1088 14222 16379; do
	if bash -c "echo > /dev/tcp/127.0.0.1/$p" 2>/dev/null; then
		fail "port $p is in use (is 'make run' running?); this test needs the embedded default's ports"
	fi
done

start_run() {
	(cd "$ROOT" && RUN_DIR="$RUN" BUILD="$BUILD" MAILFLEET_PASSWORD=test-pass-1 \
		exec deploy/local/run.sh) >"$TMP/run.out" 2>&1 &
	RUN_PID=$!; PIDS_TO_KILL="$PIDS_TO_KILL $RUN_PID"
	wait_for 90 grep -q '^mailfleet ready$' "$TMP/run.out" || {
		cat "$TMP/run.out"; fail "no 'mailfleet ready' within 90 s"; }
	ok "mailfleet ready"
}

stop_run() {
	kill -TERM "$RUN_PID"
	local start=$(date +%s)
	wait "$RUN_PID"; local rc=$?
	local took=$(( $(date +%s) - start ))
	[ "$rc" -eq 0 ] || { cat "$TMP/run.out"; fail "run.sh exited $rc after SIGTERM"; }
	[ "$took" -le 12 ] || fail "stopping took ${took}s"
	for s in $SERVICES; do
		grep -q "^mailfleet: $s exited 0$" "$RUN/log/exits" || {
			cat "$RUN/log/exits" "$TMP/run.out"; fail "$s did not exit 0"; }
	done
	ok "SIGTERM: all eight services exited 0 in ${took}s"
	for p in 1025 1081 1088 14222 16379; do
		bash -c "echo > /dev/tcp/127.0.0.1/$p" 2>/dev/null && fail "port $p still open"
	done
	ok "ports closed"
}

start_run
grep -q '^mailfleet: account mail@localhost password test-pass-1$' "$TMP/run.out" \
	|| fail "account credentials not printed"
grep -q '^mailfleet: admin password [A-Za-z0-9-]\{20,\}$' "$TMP/run.out" \
	|| fail "admin password not printed"
ok "credentials printed"

port=1081
for s in $SERVICES; do
	base="http://127.0.0.1:$port"
	[ "$(http_body "$base/healthz")" = ok ] || fail "$s /healthz"
	[ "$(http_code "$base/readyz")" = 200 ] || fail "$s /readyz: $(http_body "$base/readyz")"
	curl -s "$base/metrics" >"$TMP/metrics-$s.txt" || fail "$s /metrics"
	promtool check metrics <"$TMP/metrics-$s.txt" >"$TMP/promtool-$s.txt" 2>&1 \
		|| { cat "$TMP/promtool-$s.txt"; fail "$s metrics do not pass promtool"; }
	metric_svc=$(echo "$s" | tr - _)
	grep -q "^mailfleet_${metric_svc}_build_info{version=\"[0-9.]*\"} 1$" "$TMP/metrics-$s.txt" \
		|| fail "$s: no mailfleet_${metric_svc}_build_info 1"
	grep -q "^mailfleet_${metric_svc}_nats_connected 1$" "$TMP/metrics-$s.txt" \
		|| fail "$s: not connected to NATS per metrics"
	[ "$(http_code "$base/nope")" = 404 ] || fail "$s: unknown path is not 404"
	ok "$s: /healthz /readyz /metrics (promtool ok)"
	port=$((port + 1))
done

# Listeners answer, and say plainly that the service is not there yet.
greeting=$(timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/1025; head -n 1 <&3')
case "$greeting" in "220 localhost ESMTP"*) ok "SMTP 1025: $greeting" ;;
	*) fail "SMTP 1025 answered: $greeting" ;; esac
greeting=$(timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/1143; head -n 1 <&3')
case "$greeting" in "* OK "*) ok "IMAP 1143: $greeting" ;;
	*) fail "IMAP 1143 answered: $greeting" ;; esac
greeting=$(timeout 5 openssl s_client -connect 127.0.0.1:1993 -quiet -ign_eof </dev/null 2>/dev/null | head -n 1)
case "$greeting" in "* OK "*) ok "IMAPS 1993 over TLS: $greeting" ;;
	*) fail "IMAPS 1993 answered: $greeting" ;; esac
greeting=$(timeout 5 openssl s_client -connect 127.0.0.1:1465 -quiet -ign_eof </dev/null 2>/dev/null | head -n 1)
case "$greeting" in "220 "*) ok "submissions 1465 over TLS: $greeting" ;;
	*) fail "submissions 1465 answered: $greeting" ;; esac
[ "$(http_code http://127.0.0.1:1080/)" = 503 ] || fail "web 1080 is not 503"
ok "web 1080: 503 not available yet"

stop_run

# Second run: the configuration and passwords are reused, not regenerated.
cp "$RUN/config/adminpasswd" "$TMP/adminpasswd.first"
start_run
cmp -s "$RUN/config/adminpasswd" "$TMP/adminpasswd.first" || fail "admin password regenerated"
grep -q 'password test-pass-1$' "$TMP/run.out" || fail "second run lost the password"
ok "second run reuses the data"
stop_run

echo "$CHECKS checks passed"

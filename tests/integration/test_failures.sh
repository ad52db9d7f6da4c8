#!/bin/bash
# Bad input and failing dependencies: a broken config refuses to start with
# file:line: field, NATS or Redis down keeps /healthz 200 and /readyz 503
# naming the dependency until it comes back, and a port in use is named.
. "$(dirname "$0")/lib/common.sh"

"$BIN/mailfleet" quickstart --local --dir "$TMP/q" >/dev/null || fail "quickstart"
CONF="$TMP/q/config/mailfleet.conf"
"$BIN/mailfleet" config check -c "$CONF" | grep -qx 'config ok' || fail "fresh config does not check"
ok "quickstart config checks"

# --- a broken config file -----------------------------------------------
cp "$CONF" "$TMP/broken.conf"
cp "$TMP/q/config/domains.conf" "$TMP/domains.conf"
sed -i 's|^data-dir .*|data-dir '"$TMP/q/data"'|; s|cert tls/|cert '"$TMP/q/config"'/tls/|; s|key tls/|key '"$TMP/q/config"'/tls/|' "$TMP/broken.conf"
line=$(grep -n '^    admin 127.0.0.1:1084' "$TMP/broken.conf" | cut -d: -f1)
sed -i "${line}s/.*/    admin 127.0.0.1:notaport/" "$TMP/broken.conf"
out=$("$BIN/mailfleet" config check -c "$TMP/broken.conf" 2>&1); rc=$?
[ "$rc" -ne 0 ] || fail "config check accepted a bad port"
echo "$out" | grep -q "broken.conf:$line: queue.admin: " || fail "config check said: $out"
ok "config check: $out"
out=$(timeout 10 "$BIN/mailfleet-queue" -c "$TMP/broken.conf" 2>&1); rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "queue started with a broken config (rc $rc)"
echo "$out" | grep -q "broken.conf:$line: queue.admin: " || fail "queue said: $out"
ok "service refuses a broken config, naming file:line: field"

# --- NATS and Redis down at start, then up ------------------------------
NATS_PORT=$(free_port); REDIS_PORT=$(free_port); ADMIN_PORT=$(free_port)
export MAILFLEET_NATS_URL="nats://127.0.0.1:$NATS_PORT"
export MAILFLEET_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export MAILFLEET_SMTP_IN_ADMIN="127.0.0.1:$ADMIN_PORT"
SMTP_PORT=$(free_port)
export MAILFLEET_SMTP_IN_LISTEN="127.0.0.1:$SMTP_PORT starttls"
"$BIN/mailfleet-smtp-in" -c "$CONF" 2>"$TMP/smtp-in.log" &
SVC_PID=$!; PIDS_TO_KILL="$PIDS_TO_KILL $SVC_PID"
base="http://127.0.0.1:$ADMIN_PORT"
wait_for 10 curl -sf "$base/healthz" || fail "no /healthz with dependencies down"
[ "$(http_code "$base/readyz")" = 503 ] || fail "/readyz not 503 with NATS and Redis down"
body=$(http_body "$base/readyz")
echo "$body" | grep -q '^nats: ' || fail "/readyz does not name nats: $body"
echo "$body" | grep -q '^redis: ' || fail "/readyz does not name redis: $body"
ok "dependencies down: /healthz 200, /readyz 503: $(echo $body)"

start_nats "$NATS_PORT" "$TMP/nats"
wait_for 15 bash -c "! curl -s $base/readyz | grep -q '^nats: '" || fail "NATS back but /readyz still names it"
[ "$(http_code "$base/readyz")" = 503 ] || fail "ready although Redis is down"
start_redis "$REDIS_PORT" "$TMP/redis"
wait_for 15 curl -sf "$base/readyz" || fail "not ready after NATS and Redis came back: $(http_body "$base/readyz")"
ok "ready without a restart once NATS and Redis are back"

# Redis goes away while running: not ready, still healthy, then back.
kill -TERM "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null
wait_for 15 bash -c "curl -s $base/readyz | grep -q '^redis: '" || fail "Redis gone but still ready"
[ "$(http_code "$base/healthz")" = 200 ] || fail "/healthz not 200 while Redis is down"
start_redis "$REDIS_PORT" "$TMP/redis"
wait_for 15 curl -sf "$base/readyz" || fail "not ready after Redis restarted"
ok "Redis restart: not ready while down, ready again after"

# --- a port already in use ----------------------------------------------
out=$(MAILFLEET_SUBMISSION_ADMIN="127.0.0.1:$ADMIN_PORT" timeout 10 "$BIN/mailfleet-submission" -c "$CONF" 2>&1); rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "submission started on a used admin port (rc $rc)"
echo "$out" | grep -q "submission: admin listen 127.0.0.1:$ADMIN_PORT: address already in use" \
	|| fail "port in use: $out"
ok "admin port in use: named"
SUB_ADMIN=$(free_port)
out=$(MAILFLEET_SUBMISSION_ADMIN="127.0.0.1:$SUB_ADMIN" MAILFLEET_SUBMISSION_LISTEN="127.0.0.1:$SMTP_PORT starttls" \
	timeout 10 "$BIN/mailfleet-submission" -c "$CONF" 2>&1); rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "submission started on a used port (rc $rc)"
echo "$out" | grep -q "submission: listen 127.0.0.1:$SMTP_PORT: address already in use" \
	|| fail "port in use: $out"
ok "listener port in use: named"

# --- SIGTERM drains and exits 0 -----------------------------------------
kill -TERM "$SVC_PID"; wait "$SVC_PID"; rc=$?
[ "$rc" -eq 0 ] || fail "smtp-in exited $rc after SIGTERM"
grep -q 'm=stopped' "$TMP/smtp-in.log" || fail "no 'stopped' log line"
ok "smtp-in: SIGTERM, exit 0"
echo "$CHECKS checks passed"

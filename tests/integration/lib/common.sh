# Helpers for integration tests (sourced).  Everything runs on 127.0.0.1 in a
# temporary directory; every process started here is stopped by PID on exit.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN="$BUILD/bin"
TMP=$(mktemp -d /tmp/mf-integ-XXXXXX)
CHECKS=0
PIDS_TO_KILL=""

# TERM first and wait: run.sh then stops the services, redis and nats it
# started (they run in their own sessions and would outlive a KILL).
cleanup() {
	local p n
	for p in $PIDS_TO_KILL; do kill -TERM "$p" 2>/dev/null; done
	for n in $(seq 1 75); do
		local alive=""
		for p in $PIDS_TO_KILL; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ -z "$alive" ] && break
		sleep 0.2
	done
	for p in $PIDS_TO_KILL; do kill -KILL "$p" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { CHECKS=$((CHECKS + 1)); echo "ok: $*"; }

# A TCP port nobody listens on right now.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for SECONDS COMMAND...: retries COMMAND until it succeeds.
wait_for() {
	local secs=$1; shift
	local end=$(( $(date +%s) + secs ))
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$end" ] && return 1
		sleep 0.2
	done
}

http_code() { curl -s -o /dev/null -w '%{http_code}' "$1"; }
http_body() { curl -s "$1"; }

start_nats() { # PORT DIR
	nats-server -a 127.0.0.1 -p "$1" -js -sd "$2" -l "$2.log" &
	NATS_PID=$!; PIDS_TO_KILL="$PIDS_TO_KILL $NATS_PID"
	wait_for 10 bash -c "echo > /dev/tcp/127.0.0.1/$1" || fail "nats-server did not start"
}
start_redis() { # PORT DIR
	mkdir -p "$2"
	redis-server --bind 127.0.0.1 --port "$1" --dir "$2" --save '' --appendonly no \
		--logfile "$2/redis.log" &
	REDIS_PID=$!; PIDS_TO_KILL="$PIDS_TO_KILL $REDIS_PID"
	wait_for 10 redis-cli -p "$1" ping || fail "redis-server did not start"
}

# The embedded default in $TMP/run, every port moved by MF_TEST_PORT_OFFSET
# (default 0), so that a developer's `make run` and the tests can coexist.
# Sets RUN, CONF, the client ports P_SMTP P_SUB P_SUBS P_IMAP P_IMAPS P_WEB,
# admin_port SERVICE, and PASSWORD (the account mail@localhost's password).
OFF=${MF_TEST_PORT_OFFSET:-0}
P_SMTP=$((1025 + OFF)); P_SUB=$((1587 + OFF)); P_SUBS=$((1465 + OFF))
P_IMAP=$((1143 + OFF)); P_IMAPS=$((1993 + OFF)); P_WEB=$((1080 + OFF))
PASSWORD=test-pass-1
admin_port() {
	local i=1
	for s in smtp-in submission imap queue delivery dnsauth reports web; do
		[ "$s" = "$1" ] && { echo $((1080 + i + OFF)); return; }
		i=$((i + 1))
	done
}
start_embedded() {
	RUN="$TMP/run"; CONF="$RUN/config/mailfleet.conf"
	(cd "$ROOT" && RUN_DIR="$RUN" BUILD="$BUILD" MAILFLEET_PASSWORD=$PASSWORD \
		MAILFLEET_PORT_OFFSET=$OFF exec deploy/local/run.sh) >"$TMP/run.out" 2>&1 &
	RUN_PID=$!; PIDS_TO_KILL="$PIDS_TO_KILL $RUN_PID"
	wait_for 90 grep -q '^mailfleet ready$' "$TMP/run.out" || {
		cat "$TMP/run.out"; fail "no 'mailfleet ready' within 90 s"; }
}
# Stops it; fails unless every service exited 0.
stop_embedded() {
	kill -TERM "$RUN_PID"; wait "$RUN_PID"; local rc=$?
	[ "$rc" -eq 0 ] || { tail -50 "$TMP/run.out"; fail "embedded default exited $rc"; }
}

#!/bin/bash
# The embedded default (`make run`): everything on one machine, on loopback.
#
# First run writes a configuration into $RUN_DIR (mailfleet quickstart --local);
# every run starts nats-server (JetStream) and redis-server with data in
# $RUN_DIR, then the eight services, waits until each /readyz answers, prints
# the ports and credentials and "mailfleet ready".  Ctrl-C (or SIGTERM) stops
# the services first, then redis and nats, and exits 0 when all stopped cleanly.
set -u

RUN_DIR=${RUN_DIR:-./run}
BUILD=${BUILD:-build}
NATS_PORT=${MAILFLEET_NATS_PORT:-14222}
REDIS_PORT=${MAILFLEET_REDIS_PORT:-16379}
READY_TIMEOUT=${MAILFLEET_READY_TIMEOUT:-60}
SERVICES="smtp-in submission imap queue delivery dnsauth reports web"

mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
BIN=$(cd "$BUILD/bin" && pwd)
CONF="$RUN_DIR/config/mailfleet.conf"
LOG="$RUN_DIR/log"
mkdir -p "$LOG" "$RUN_DIR/nats" "$RUN_DIR/redis"

say() { echo "mailfleet: $*"; }

if [ ! -f "$CONF" ]; then
	"$BIN/mailfleet" quickstart --local --dir "$RUN_DIR" >/dev/null || exit 1
fi
"$BIN/mailfleet" config check -c "$CONF" >/dev/null || exit 1

# Admin port of each service, from the configuration.
admin_port() {
	awk -v s="$1" '$1 == s && $2 == "{" { inside = 1; next }
		inside && $1 == "}" { inside = 0 }
		inside && $1 == "admin" { n = split($2, a, ":"); print a[n]; exit }' "$CONF"
}

declare -A PIDS
NATS_PID=""
REDIS_PID=""
stopping=0

stop_all() {
	[ "$stopping" -eq 1 ] && return
	stopping=1
	say "stopping"
	local rc=${1:-0} s pid status
	for s in $SERVICES; do
		pid=${PIDS[$s]:-}
		[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
	done
	for s in $SERVICES; do
		pid=${PIDS[$s]:-}
		[ -z "$pid" ] && continue
		wait "$pid"
		status=$?
		echo "mailfleet: $s exited $status" | tee -a "$LOG/exits"
		[ "$status" -ne 0 ] && rc=1
	done
	[ -n "$REDIS_PID" ] && kill -TERM "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID"
	[ -n "$NATS_PID" ] && kill -TERM "$NATS_PID" 2>/dev/null && wait "$NATS_PID"
	say "stopped"
	exit $rc
}
trap stop_all INT TERM

: >"$LOG/exits"
setsid nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$RUN_DIR/nats" \
	-l "$LOG/nats.log" &
NATS_PID=$!
setsid redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$RUN_DIR/redis" \
	--save 60 1 --appendonly no --logfile "$LOG/redis.log" &
REDIS_PID=$!

for s in $SERVICES; do
	setsid "$BIN/mailfleet-$s" -c "$CONF" &
	PIDS[$s]=$!
done

# Wait until every service is ready; give up if one of them exits.
deadline=$(( $(date +%s) + READY_TIMEOUT ))
pending="$SERVICES"
while [ -n "$pending" ]; do
	still=""
	for s in $pending; do
		if ! kill -0 "${PIDS[$s]}" 2>/dev/null; then
			wait "${PIDS[$s]}"
			say "$s exited with status $? during start-up; see the log lines above"
			PIDS[$s]=""
			stop_all 1
		fi
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(admin_port "$s")/readyz")
		[ "$code" = 200 ] || still="$still $s"
	done
	pending=$still
	[ -z "$pending" ] && break
	if [ "$(date +%s)" -ge "$deadline" ]; then
		say "not ready after ${READY_TIMEOUT}s:$pending"
		stop_all 1
	fi
	sleep 0.3
done

creds="$RUN_DIR/config/credentials.txt"
cat <<EOF
mailfleet: SMTP 127.0.0.1:1025 (STARTTLS)   submission 127.0.0.1:1587 (STARTTLS), 127.0.0.1:1465 (TLS)
mailfleet: IMAP 127.0.0.1:1143 (STARTTLS), 127.0.0.1:1993 (TLS)   web http://127.0.0.1:1080/
mailfleet: metrics and health: http://127.0.0.1:1081..1088/{metrics,healthz,readyz}
mailfleet: account $(awk '$1 == "account" { print $2 }' "$creds") password $(awk '$1 == "password" { print $2 }' "$creds")
mailfleet: admin password $(awk '$1 == "admin-password" { print $2 }' "$creds")
mailfleet: data in $RUN_DIR (config/, data/, log/); Ctrl-C stops everything
mailfleet ready
EOF

# Stay in the foreground until a signal arrives or a service dies.
while :; do
	for s in $SERVICES; do
		if ! kill -0 "${PIDS[$s]}" 2>/dev/null; then
			wait "${PIDS[$s]}"
			say "$s exited unexpectedly with status $?"
			PIDS[$s]=""
			stop_all 1
		fi
	done
	sleep 1 &
	wait $!
done

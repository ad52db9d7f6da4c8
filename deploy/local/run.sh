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
	# MAILFLEET_PORT_OFFSET moves every port (tests run beside `make run`).
	"$BIN/mailfleet" quickstart --local --dir "$RUN_DIR" \
		--port-offset "${MAILFLEET_PORT_OFFSET:-0}" >/dev/null || exit 1
fi
"$BIN/mailfleet" config check -c "$CONF" >/dev/null || exit 1

# Admin port of each service, from the configuration.
admin_port() { conf_port admin "$1"; }

# Ports from the configuration: "key host:port" lines or URLs.
conf_port() { # KEY [SERVICE]
	awk -v k="$1" -v s="${2:-}" '
		s != "" && $1 == s && $2 == "{" { inside = 1; next }
		inside && $1 == "}" { inside = 0 }
		(s == "" || inside) && $1 == k { n = split($2, a, ":"); print a[n]; exit }' "$CONF"
}
NATS_PORT=$(conf_port nats-url)
REDIS_PORT=$(conf_port redis-url)
p_smtp=$(conf_port listen smtp-in)
p_sub=$(awk '$1 == "submission" { i = 1 } i && $1 == "listen" { n = split($2, a, ":"); printf "%s ", a[n] } i && $1 == "}" { exit }' "$CONF")
p_imap=$(awk '$1 == "imap" { i = 1 } i && $1 == "listen" { n = split($2, a, ":"); printf "%s ", a[n] } i && $1 == "}" { exit }' "$CONF")
p_web=$(conf_port listen web)

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
mailfleet: SMTP 127.0.0.1:$p_smtp (STARTTLS)   submission 127.0.0.1 ports $p_sub(STARTTLS, TLS)
mailfleet: IMAP 127.0.0.1 ports $p_imap(STARTTLS, TLS)   web http://127.0.0.1:$p_web/
mailfleet: metrics and health: http://127.0.0.1:$(admin_port smtp-in)..$(admin_port web)/{metrics,healthz,readyz}
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

#!/bin/sh
# mailfleet-entrypoint: starts one mailfleet service in its container, or
# runs the CLI.
#
#   mailfleet-entrypoint init        first start: runs the quickstart when the
#                                    config volume is empty, else does nothing
#   mailfleet-entrypoint cli ARGS    runs `mailfleet ARGS`
#   mailfleet-entrypoint SERVICE     waits for the configuration, then execs
#                                    mailfleet-SERVICE (PID 1: SIGTERM reaches
#                                    it directly and drains it)
#
# Environment: MAILFLEET_HOME (/var/lib/mailfleet), MAILFLEET_CONFIG,
# MAILFLEET_DOMAIN and MAILFLEET_HOSTNAME (for init), MAILFLEET_CONFIG_WAIT
# (seconds a service waits for the quickstart; default 300), and, for tests
# with host networking only, MAILFLEET_ADMIN_PORT_RANGE=LOW-HIGH: the service
# takes the first admin port in the range that nobody answers on, so that
# replicas sharing the host's network do not collide.
set -eu

HOME_DIR=${MAILFLEET_HOME:-/var/lib/mailfleet}
CONF=${MAILFLEET_CONFIG:-$HOME_DIR/config/mailfleet.conf}
say() { echo "mailfleet-entrypoint: $*" >&2; }

[ $# -ge 1 ] || { say "usage: mailfleet-entrypoint init|cli ARGS|SERVICE [ARGS]"; exit 2; }
what=$1
shift

case "$what" in
init)
	if [ -f "$CONF" ]; then
		say "configuration present in $(dirname "$CONF"); nothing to do"
		exec mailfleet config check -c "$CONF"
	fi
	if [ -z "${MAILFLEET_DOMAIN:-}" ] || [ -z "${MAILFLEET_HOSTNAME:-}" ]; then
		say "empty config volume: set MAILFLEET_DOMAIN and MAILFLEET_HOSTNAME (deploy/.env)"
		exit 2
	fi
	# quickstart writes config/ and data/ under the directory, mailfleet.conf
	# last, so a half-written configuration is never taken as complete.
	mailfleet quickstart --dir "$HOME_DIR" "$@"
	exec mailfleet config check -c "$CONF"
	;;
cli)
	exec mailfleet "$@"
	;;
smtp-in|submission|imap|queue|delivery|dnsauth|reports|web)
	;;
*)
	say "unknown service $what"
	exit 2
	;;
esac

# Services start together with init on a fresh volume: wait for it.
wait_s=${MAILFLEET_CONFIG_WAIT:-300}
waited=0
while [ ! -f "$CONF" ]; do
	if [ "$waited" -ge "$wait_s" ]; then
		say "no configuration at $CONF after ${wait_s}s (did the init container run?)"
		exit 1
	fi
	[ $((waited % 10)) -eq 0 ] && say "waiting for $CONF (written by the init container)"
	sleep 1
	waited=$((waited + 1))
done

if [ -n "${MAILFLEET_ADMIN_PORT_RANGE:-}" ]; then
	lo=${MAILFLEET_ADMIN_PORT_RANGE%-*}
	hi=${MAILFLEET_ADMIN_PORT_RANGE#*-}
	port=$lo
	# Free means refused: anything else (an answer, a timeout) is taken.
	while :; do
		out=$(mailfleet probe --timeout 1 "http://127.0.0.1:$port/healthz" 2>&1 || true)
		case "$out" in *"Connection refused"*) break ;; esac
		port=$((port + 1))
		[ "$port" -le "$hi" ] || { say "no free admin port in $MAILFLEET_ADMIN_PORT_RANGE"; exit 1; }
	done
	var=MAILFLEET_$(echo "$what" | tr 'a-z-' 'A-Z_')_ADMIN
	export "$var=127.0.0.1:$port"
	echo "$port" >/tmp/mailfleet-admin-port
	say "admin port $port"
fi

exec "mailfleet-$what" -c "$CONF" "$@"

#!/bin/bash
# Run-time changes without restarts: `mailfleet reload` (config.v1.changed)
# makes every service reload domains.conf, a broken domains.conf is refused
# and the old one kept, SIGHUP reloads one service, and `mailfleet loglevel`
# changes log levels of one service or all.
. "$(dirname "$0")/lib/common.sh"

SERVICES="smtp-in submission imap queue delivery dnsauth reports web"
start_embedded
ok "embedded default ready"

reloads() { # SERVICE RESULT: the value of config_reloads_total{result=RESULT}
	local m=$(echo "$1" | tr - _)
	curl -s "http://127.0.0.1:$(admin_port "$1")/metrics" |
		awk -v n="mailfleet_${m}_config_reloads_total{result=\"$2\"}" '$1 == n { print $2 }'
}

# A valid change, announced with `mailfleet reload`.
sed -i 's/^    address mail@localhost$/    address mail@localhost\n    address postmaster@localhost/' "$RUN/config/domains.conf"
"$BIN/mailfleet" config check -c "$CONF" >/dev/null || fail "edited domains.conf does not check"
"$BIN/mailfleet" reload -c "$CONF" | grep -qx 'reload sent' || fail "mailfleet reload"
for s in $SERVICES; do
	wait_for 10 test "$(reloads "$s" ok)" = 1 || fail "$s did not reload (ok=$(reloads "$s" ok))"
done
ok "all eight services reloaded domains.conf"

# A broken file: refused, logged, counted, and the services stay ready.
echo "account broken {" >>"$RUN/config/domains.conf"
"$BIN/mailfleet" reload -c "$CONF" >/dev/null || fail "mailfleet reload (broken)"
for s in $SERVICES; do
	wait_for 10 test "$(reloads "$s" error)" = 1 || fail "$s did not count the failed reload"
	[ "$(http_code "http://127.0.0.1:$(admin_port "$s")/readyz")" = 200 ] || fail "$s not ready after a bad reload"
done
grep -q 'm="domains.conf reload failed; keeping the previous one" pkg=queue' "$TMP/run.out" \
	|| fail "failed reload not logged"
ok "broken domains.conf refused, previous kept, services ready"
sed -i '$d' "$RUN/config/domains.conf"

# SIGHUP reloads one service.
pid=$(pgrep -f "mailfleet-reports -c $CONF")
kill -HUP "$pid"
wait_for 10 test "$(reloads reports ok)" = 2 || fail "SIGHUP did not reload reports"
[ "$(reloads queue ok)" = 1 ] || fail "SIGHUP to reports reloaded queue"
ok "SIGHUP reloads one service"

# Log levels at run time: one service, then all.
"$BIN/mailfleet" loglevel nonsense -c "$CONF" 2>/dev/null && fail "bad log level accepted"
"$BIN/mailfleet" loglevel debug --service queue -c "$CONF" >/dev/null || fail "loglevel queue"
wait_for 10 grep -q 'm="log levels changed" pkg=queue spec=debug' "$TMP/run.out" || fail "queue did not change level"
grep -q 'm="log levels changed" pkg=imap' "$TMP/run.out" && fail "imap changed level too"
"$BIN/mailfleet" loglevel info -c "$CONF" >/dev/null || fail "loglevel all"
for s in $SERVICES; do
	wait_for 10 grep -q "m=\"log levels changed\" pkg=$s spec=info" "$TMP/run.out" || fail "$s did not change level"
done
ok "log levels changed at run time, per service and for all"

stop_embedded
ok "stopped cleanly"
echo "$CHECKS checks passed"

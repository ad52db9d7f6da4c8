#!/bin/bash
# IMAP serving (issue 3): mailfleet's imap (the embedded default) and Dovecot
# (Debian's dovecot-imapd, a throwaway instance on loopback with Maildir and
# its default settings apart from connection limits), one after the other,
# with the same data and the same load client (tests/tools/mf-bench-imap):
#   1. seeding: CONNS users get MESSAGES messages each (2..8 KiB), appended
#      over IMAP, one connection per user in parallel;
#   2. the mix: CONNS concurrent clients (client i is user i) run SELECT,
#      FETCH (a whole message; envelopes of 20), STORE, SEARCH and APPEND
#      for SECONDS; ops/s and p50/p99 latency, overall and per command;
#   3. memory: IDLE connections of one user sitting in IDLE; RSS and PSS per
#      connection = (with them - without them) / IDLE.
# Prints the figures for both, the ratio, and the load generator's CPU
# share.  Needs root (Dovecot's privilege separation).  Nothing is deleted
# between runs; each server has its own directories.
#
#   BENCH_QUICK=1 (5 clients x 50 messages, 5 s, 100 idle connections),
#   BENCH_SETTLE=SECS, BENCH_IMAP_CONNS, BENCH_IMAP_MESSAGES (per user),
#   BENCH_IMAP_SECONDS, BENCH_IMAP_IDLE,
#   MF_BENCH_PORT_OFFSET (ports of the embedded default; default 0).
export MF_TEST_PORT_OFFSET=${MF_BENCH_PORT_OFFSET:-${MF_TEST_PORT_OFFSET:-0}}
. "$(dirname "$0")/../integration/lib/common.sh"
. "$ROOT/tests/bench/lib.sh"

if [ "$BENCH_QUICK" = 1 ]; then
	CONNS=${BENCH_IMAP_CONNS:-5}; MESSAGES=${BENCH_IMAP_MESSAGES:-50}
	SECS=${BENCH_IMAP_SECONDS:-5}; IDLE=${BENCH_IMAP_IDLE:-100}
else
	CONNS=${BENCH_IMAP_CONNS:-20}; MESSAGES=${BENCH_IMAP_MESSAGES:-250}
	SECS=${BENCH_IMAP_SECONDS:-30}; IDLE=${BENCH_IMAP_IDLE:-1000}
fi
CLIENT=${BENCH_IMAP_CLIENT:-$BUILD/tools/mf-bench-imap}
BENCH_PASS=bench-pass-1
# Room for the idle connections, the mix and stragglers.
CONN_LIMIT=$((IDLE + CONNS + 100))

[ "$(id -u)" -eq 0 ] || fail "needs root to run a private Dovecot instance"
for b in "$CLIENT" /usr/sbin/dovecot; do
	[ -x "$b" ] || fail "$b missing (make $BUILD/tools/mf-bench-imap; apt install dovecot-imapd)"
done
# One descriptor per connection in the client and in the servers.
ulimit -n 65536 2>/dev/null || ulimit -n 16384 2>/dev/null || true
chmod 755 "$TMP"   # Dovecot's users must reach their directories

say "IMAP: $CONNS users x $MESSAGES messages (2..8 KiB), $CONNS concurrent clients for ${SECS}s" \
	"(select 10%, fetch message 25%, fetch envelopes of 20 15%, store 20%, search 20%, append 10%)," \
	"no TLS; then $IDLE idle connections in IDLE; $NCPU CPUs"

declare -A R
# run_server NAME PORT USERFMT PIDS-COMMAND: seeds, runs the mix, measures
# idle connections; fills R[NAME.*].
run_server() {
	local name=$1 port=$2 userfmt=$3 pids_cmd=$4 out="$TMP/$1"
	local before during idle_pid

	bench_settle "seeding $name"
	bench_timed "$out.seed" "$CLIENT" populate -c "$CONNS" -m "$MESSAGES" -u "$userfmt" \
		-p "$BENCH_PASS" 127.0.0.1 "$port"
	[ "$B_RC" -eq 0 ] || { cat "$out.seed"; fail "$name: seeding failed"; }
	R[$name.seed]=$(awk -v n=$((CONNS * MESSAGES)) -v w="$B_WALL" \
		'BEGIN { r = 0; if (w > 0) r = n / w; printf "%.1f", r }')
	say "$name: seeded $((CONNS * MESSAGES)) messages, ${R[$name.seed]} appends/s"

	bench_timed "$out.mix" "$CLIENT" mix -c "$CONNS" -d "$SECS" -u "$userfmt" \
		-p "$BENCH_PASS" 127.0.0.1 "$port"
	[ "$B_RC" -eq 0 ] || { cat "$out.mix"; fail "$name: the mix had errors"; }
	head -1 "$out.mix" >"$out.mix1"
	R[$name.ops]=$(bench_kv "$out.mix1" ops_per_s)
	R[$name.p50]=$(bench_kv "$out.mix1" p50_ms)
	R[$name.p99]=$(bench_kv "$out.mix1" p99_ms)
	R[$name.gen]=$(bench_gen_share)
	local op
	for op in select fetch_body fetch_headers store search append; do
		grep "^op=$op " "$out.mix" >"$out.op"
		R[$name.$op.p50]=$(bench_kv "$out.op" p50_ms)
		R[$name.$op.p99]=$(bench_kv "$out.op" p99_ms)
	done
	say "$name: ${R[$name.ops]} ops/s, p50 ${R[$name.p50]} ms, p99 ${R[$name.p99]} ms"
	say "$name: ${R[$name.gen]}"

	# Idle connections: the client holds them until its input ends.
	sleep 2   # sessions of the mix log out
	# shellcheck disable=SC2046
	before=$(bench_mem $($pids_cmd))
	rm -f "$TMP/idle.in"; mkfifo "$TMP/idle.in"
	"$CLIENT" idle -c "$IDLE" -u "$userfmt" -p "$BENCH_PASS" 127.0.0.1 "$port" \
		<"$TMP/idle.in" >"$out.idle" 2>&1 &
	idle_pid=$!
	exec 7>"$TMP/idle.in"
	wait_for 600 grep -q ' ready$' "$out.idle" || { exec 7>&-; cat "$out.idle"; fail "$name: idle connections"; }
	grep -q "^idle=$IDLE ready" "$out.idle" || { exec 7>&-; cat "$out.idle"; fail "$name: not every idle connection opened"; }
	sleep 3   # let the sessions settle into IDLE
	# shellcheck disable=SC2046
	during=$(bench_mem $($pids_cmd))
	exec 7>&-
	wait "$idle_pid" || { cat "$out.idle"; fail "$name: the idle client failed"; }
	read -r "R[$name.idle_rss]" "R[$name.idle_pss]" "R[$name.base_rss]" "R[$name.base_pss]" <<<"$(echo "$before $during" |
		awk -v n="$IDLE" '{ printf "%.1f %.1f %.1f %.1f", ($3 - $1) / n, ($4 - $2) / n, $1 / 1024, $2 / 1024 }')"
	say "$name: $IDLE idle connections: ${R[$name.idle_rss]} kB RSS, ${R[$name.idle_pss]} kB PSS per connection" \
		"(without them: ${R[$name.base_rss]} MiB RSS, ${R[$name.base_pss]} MiB PSS)"
}

# --- mailfleet -------------------------------------------------------------------
# The embedded default with connection limits raised for the idle test and
# DNS pointed at a closed loopback port (IMAP needs none; nothing leaves the
# machine).
RUN="$TMP/run"; CONF="$RUN/config/mailfleet.conf"
"$BIN/mailfleet" quickstart --local --dir "$RUN" --port-offset "$OFF" >/dev/null || fail "quickstart"
sed -i "s/^\( *\)resolver recursive.*/\1resolver forward 127.0.0.1@$(free_port)/" "$CONF"
sed -i "s/^\( *allow-plaintext-auth yes\)\$/\1\n    max-connections-per-account $CONN_LIMIT/" "$CONF"
grep -q "max-connections-per-account" "$CONF" || fail "could not raise the per-account limit"
cat >>"$CONF" <<EOC
limits {
    max-connections $CONN_LIMIT
    max-connections-per-ip $CONN_LIMIT
}
EOC
"$BIN/mailfleet" config check -c "$CONF" >"$TMP/check.out" 2>&1 || { cat "$TMP/check.out"; fail "config check"; }
start_embedded
MF() { "$BIN/mailfleet" "$@" -c "$CONF"; }
for i in $(seq 0 $((CONNS - 1))); do
	MF account add "bench$i" "bench$i@localhost" >"$TMP/account.out" 2>&1 ||
		{ cat "$TMP/account.out"; fail "account add bench$i"; }
	echo "$BENCH_PASS" | MF account password "bench$i" >"$TMP/account.out" 2>&1 ||
		{ cat "$TMP/account.out"; fail "account password bench$i"; }
done
mf_pids() { bench_children "$RUN_PID" sleep; }
run_server mailfleet "$P_IMAP" "bench{n}@localhost" mf_pids
stop_embedded

# --- Dovecot ---------------------------------------------------------------------
# Dovecot's defaults (one imap process per session, mail_fsync optimized),
# limits raised for the idle connections (BENCHMARKING.md), passwords in
# PLAIN (logins are outside the measured mix).
DC="$TMP/dovecot"
DPORT=$(free_port)
mkdir -p "$DC/run" "$DC/state" "$DC/mail" "$DC/home"
chown -R dovecot:dovecot "$DC/mail" "$DC/home"
for i in $(seq 0 $((CONNS - 1))); do
	printf 'bench%s@localhost:{PLAIN}%s::::::\n' "$i" "$BENCH_PASS"
done >"$DC/passwd"
cat >"$DC/dovecot.conf" <<EOC
protocols = imap
listen = 127.0.0.1
base_dir = $DC/run
state_dir = $DC/state
log_path = $DC/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:$DC/mail/%u
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
default_process_limit = $CONN_LIMIT
default_client_limit = $((CONN_LIMIT * 3))
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DC/passwd
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=$DC/home/%u
}
protocol imap {
  mail_max_userip_connections = $CONN_LIMIT
}
service imap {
  process_limit = $CONN_LIMIT
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DPORT
  }
  inet_listener imaps {
    port = 0
  }
}
EOC
/usr/sbin/dovecot -c "$DC/dovecot.conf" >"$TMP/dovecot-start.out" 2>&1 ||
	{ cat "$TMP/dovecot-start.out" "$DC/dovecot.log" 2>/dev/null; fail "dovecot did not start"; }
wait_for 10 test -s "$DC/run/master.pid" || fail "dovecot wrote no master.pid"
DC_PID=$(cat "$DC/run/master.pid")
PIDS_TO_KILL="$PIDS_TO_KILL $DC_PID"
wait_for 20 bash -c "echo > /dev/tcp/127.0.0.1/$DPORT" || { cat "$DC/dovecot.log"; fail "dovecot does not listen"; }
dc_pids() { bench_tree "$DC_PID"; }
run_server dovecot "$DPORT" "bench{n}@localhost" dc_pids
kill -TERM "$DC_PID"
wait_for 20 bash -c "! kill -0 $DC_PID" || fail "dovecot did not stop"

# --- report ------------------------------------------------------------------------
row() { printf 'bench: %-34s %12s %12s %8s\n' "$1" "$2" "$3" "$4"; }
rrow() { row "$1" "${R[mailfleet.$2]}" "${R[dovecot.$2]}" "$(bench_ratio "${R[mailfleet.$2]}" "${R[dovecot.$2]}")"; }
echo
say "IMAP: mailfleet imap vs Dovecot ($CONNS clients, ${SECS}s mix, $IDLE idle connections)"
row "" mailfleet dovecot ratio
rrow "ops/s (mix)" ops
rrow "latency p50 ms" p50
rrow "latency p99 ms" p99
for op in select fetch_body fetch_headers store search append; do
	rrow "  $op p50 ms" "$op.p50"
	rrow "  $op p99 ms" "$op.p99"
done
rrow "seeding appends/s" seed
rrow "RSS kB per idle connection" idle_rss
rrow "PSS kB per idle connection" idle_pss
rrow "RSS MiB without idle connections" base_rss
rrow "PSS MiB without idle connections" base_pss
say "ratio = mailfleet / dovecot (throughput: higher is better; latency, memory: lower is better)"
say "memory: mailfleet = its eight services + nats-server + redis-server; dovecot = master and its children"
for k in mailfleet dovecot; do say "$k mix: ${R[$k.gen]}"; done
echo "bench_imap: done"

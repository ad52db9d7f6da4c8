#!/bin/bash
# IMAP serving (issue 3): mailfleet's imap (the embedded default) and Dovecot
# (Debian's dovecot-imapd, a throwaway instance on loopback with Maildir and
# its default settings apart from connection limits), one after the other,
# with the same data and the same load client (tests/tools/mf-bench-imap):
# MESSAGES messages of 4 KiB appended over IMAP to a "Bench" mailbox, then
# CONNS concurrent connections running a select/fetch/store/search/append
# mix for SECONDS, then IDLE connections held open to measure memory per
# idle connection.  Prints ops/s and p50/p99 latency for both, the ratio,
# the load generator's CPU share, and RSS per idle connection.  Needs root
# (Dovecot's privilege separation).
#
#   BENCH_QUICK=1 (200 messages, 5 s, 200 idle connections),
#   BENCH_IMAP_MESSAGES, BENCH_IMAP_CONNS, BENCH_IMAP_SECONDS, BENCH_IMAP_IDLE,
#   MF_BENCH_PORT_OFFSET (ports of the embedded default; default 0).
export MF_TEST_PORT_OFFSET=${MF_BENCH_PORT_OFFSET:-${MF_TEST_PORT_OFFSET:-0}}
. "$(dirname "$0")/../integration/lib/common.sh"
. "$ROOT/tests/bench/lib.sh"

if [ "$BENCH_QUICK" = 1 ]; then
	MESSAGES=${BENCH_IMAP_MESSAGES:-200}; SECS=${BENCH_IMAP_SECONDS:-5}; IDLE=${BENCH_IMAP_IDLE:-200}
else
	MESSAGES=${BENCH_IMAP_MESSAGES:-2000}; SECS=${BENCH_IMAP_SECONDS:-30}; IDLE=${BENCH_IMAP_IDLE:-1000}
fi
CONNS=${BENCH_IMAP_CONNS:-20}
SIZE=4096
CLIENT="$BUILD/tools/mf-bench-imap"
USER=mail@localhost

[ "$(id -u)" -eq 0 ] || fail "needs root to run a private Dovecot instance"
for b in "$CLIENT" /usr/sbin/dovecot; do
	[ -x "$b" ] || fail "$b missing (make $BUILD/tools/mf-bench-imap; apt install dovecot-imapd)"
done
ulimit -n 65536 2>/dev/null || ulimit -n 16384 2>/dev/null || true
chmod 755 "$TMP"   # Dovecot's users must reach their directories

say "IMAP: $MESSAGES messages of $SIZE bytes, $CONNS connections for ${SECS}s" \
	"(fetch headers 40%, fetch message 20%, store 15%, search 15%, append 10%), no TLS," \
	"then $IDLE idle connections; $NCPU CPUs"

declare -A R
# run_server NAME PORT PIDS-COMMAND...: seeds, loads, idles; fills R[NAME.*].
run_server() {
	local name=$1 port=$2; shift 2
	local out="$TMP/$name"
	"$CLIENT" -p "$port" -u "$USER" -w "$PASSWORD" -m Bench seed -n "$MESSAGES" -s "$SIZE" \
		>"$out.seed" 2>&1 || { cat "$out.seed"; fail "$name: seeding"; }
	R[$name.seed]=$(bench_kv "$out.seed" appends_per_s)
	bench_timed "$out.load" "$CLIENT" -p "$port" -u "$USER" -w "$PASSWORD" -m Bench \
		load -c "$CONNS" -d "$SECS" -n "$MESSAGES"
	[ "$B_RC" -eq 0 ] || { cat "$out.load"; fail "$name: load client exited $B_RC"; }
	for k in ops_per_s p50_ms p99_ms fetch_hdr_p50_ms fetch_all_p50_ms store_p50_ms \
		search_flags_p50_ms search_subject_p50_ms append_p50_ms append_p99_ms; do
		R[$name.$k]=$(bench_kv "$out.load" "$k")
	done
	R[$name.gen]=$(bench_gen_share)
	# Memory: the server's processes before and while IDLE connections are open.
	local before during pids
	pids=$("$@")
	# shellcheck disable=SC2086
	before=$(bench_mem $pids)
	"$CLIENT" -p "$port" -u "$USER" -w "$PASSWORD" -m Bench idle -c "$IDLE" -t 5 \
		>"$out.idle" 2>&1 &
	local idle_pid=$!
	wait_for 300 grep -q idle_ready "$out.idle" || { cat "$out.idle"; fail "$name: idle connections"; }
	sleep 2
	pids=$("$@")
	# shellcheck disable=SC2086
	during=$(bench_mem $pids)
	wait "$idle_pid" || { cat "$out.idle"; fail "$name: idle client failed"; }
	R[$name.idle_kb]=$(echo "$before $during" | awk -v n="$IDLE" '{ printf "%.1f", ($3 - $1) / n }')
	R[$name.idle_pss_kb]=$(echo "$before $during" | awk -v n="$IDLE" '{ printf "%.1f", ($4 - $2) / n }')
	say "$name: ${R[$name.ops_per_s]} ops/s, p50 ${R[$name.p50_ms]} ms, p99 ${R[$name.p99_ms]} ms" \
		"(fetch headers ${R[$name.fetch_hdr_p50_ms]}, fetch message ${R[$name.fetch_all_p50_ms]}," \
		"store ${R[$name.store_p50_ms]}, search flags ${R[$name.search_flags_p50_ms]}," \
		"search subject ${R[$name.search_subject_p50_ms]}, append ${R[$name.append_p50_ms]}" \
		"p50 ms; append p99 ${R[$name.append_p99_ms]} ms); seeding ${R[$name.seed]} appends/s"
	say "$name: ${R[$name.gen]}"
	say "$name: $IDLE idle connections: ${R[$name.idle_kb]} kB RSS (${R[$name.idle_pss_kb]} kB PSS) per connection"
}

# --- mailfleet ---------------------------------------------------------------
start_embedded
stop_embedded
# Room for the idle connections: process, per-IP and per-account limits.
cat >>"$CONF" <<EOC

limits {
    max-connections $((IDLE + CONNS + 100))
    max-connections-per-ip $((IDLE + CONNS + 100))
}
EOC
sed -i "s/^\\(    allow-plaintext-auth yes\\)\$/\\1\\n    max-connections-per-account $((IDLE + CONNS + 100))/" "$CONF"
grep -q "max-connections-per-account" "$CONF" || fail "could not raise the per-account limit"
start_embedded
mf_pids() {
	local p
	for p in $(bench_tree "$RUN_PID"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = mailfleet-imap ] && echo "$p"
	done
}
run_server mailfleet "$P_IMAP" mf_pids
stop_embedded

# --- Dovecot -----------------------------------------------------------------
DC="$TMP/dovecot"
DPORT=$(free_port)
mkdir -p "$DC/run" "$DC/state" "$DC/mail" "$DC/home"
chown -R dovecot:dovecot "$DC/mail" "$DC/home"
printf '%s:{PLAIN}%s::::::\n' "$USER" "$PASSWORD" >"$DC/passwd"
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
default_process_limit = $((IDLE + CONNS + 100))
default_client_limit = $((IDLE + CONNS + 100))
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DC/passwd
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=$DC/home/%u
}
protocol imap {
  mail_max_userip_connections = $((IDLE + CONNS + 100))
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
/usr/sbin/dovecot -c "$DC/dovecot.conf" || { cat "$DC/dovecot.log" 2>/dev/null; fail "dovecot did not start"; }
DC_PID=$(cat "$DC/run/master.pid")
PIDS_TO_KILL="$PIDS_TO_KILL $DC_PID"
wait_for 20 bash -c "echo > /dev/tcp/127.0.0.1/$DPORT" || fail "dovecot does not listen"
dc_pids() { bench_tree "$DC_PID"; }
run_server dovecot "$DPORT" dc_pids
kill -TERM "$DC_PID"

say "mailfleet/dovecot: ops/s $(bench_ratio "${R[mailfleet.ops_per_s]}" "${R[dovecot.ops_per_s]}")," \
	"p50 $(bench_ratio "${R[mailfleet.p50_ms]}" "${R[dovecot.p50_ms]}")," \
	"p99 $(bench_ratio "${R[mailfleet.p99_ms]}" "${R[dovecot.p99_ms]}")," \
	"RSS per idle connection $(bench_ratio "${R[mailfleet.idle_kb]}" "${R[dovecot.idle_kb]}")"

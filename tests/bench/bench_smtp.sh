#!/bin/bash
# SMTP receiving (issue 4): mailfleet's smtp-in (the embedded default) and
# Postfix's smtpd (a throwaway instance delivering to a local Maildir with
# its default durability), one after the other in the same run, each driven
# by Postfix's smtp-source and by our own client (tests/tools/mf-bench-smtp,
# which measures the accept latency): 10 KiB messages, 20 concurrent
# connections, one message per connection, 5,000 messages per run.
# Prints messages/s and accept latency for both and the ratio, the load
# generator's CPU share, peak RSS/PSS, and the disk's rate of durable new
# files as the physical bound.  Every run goes to a fresh mailbox; nothing is
# deleted between runs.  Needs root (postfix start).
#
#   BENCH_QUICK=1 (500 messages, no settling), BENCH_SETTLE=SECS,
#   BENCH_SMTP_MESSAGES, BENCH_SMTP_CONNS, BENCH_SMTP_SIZE,
#   MF_BENCH_PORT_OFFSET (ports of the embedded default; default 0).
export MF_TEST_PORT_OFFSET=${MF_BENCH_PORT_OFFSET:-${MF_TEST_PORT_OFFSET:-0}}
. "$(dirname "$0")/../integration/lib/common.sh"
. "$ROOT/tests/integration/lib/dnslab.sh"
. "$ROOT/tests/bench/lib.sh"

if [ "$BENCH_QUICK" = 1 ]; then
	MESSAGES=${BENCH_SMTP_MESSAGES:-500}; FSYNC_N=300
else
	MESSAGES=${BENCH_SMTP_MESSAGES:-5000}; FSYNC_N=3000
fi
CONNS=${BENCH_SMTP_CONNS:-20}
SIZE=${BENCH_SMTP_SIZE:-10240}
SMTP_SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
CLIENT=${BENCH_SMTP_CLIENT:-$BUILD/tools/mf-bench-smtp}
FSYNC=${BENCH_FSYNC_PROBE:-$BUILD/tools/mf-bench-fsync}
# Arrival of accepted mail in the mailboxes (Postfix delivers after the 250).
ARRIVAL_TIMEOUT=${BENCH_ARRIVAL_TIMEOUT:-900}

[ "$(id -u)" -eq 0 ] || fail "needs root to run a private Postfix instance"
for b in "$SMTP_SOURCE" "$CLIENT" "$FSYNC" /usr/sbin/postfix; do
	[ -x "$b" ] || fail "$b missing (make $BUILD/tools/mf-bench-smtp $BUILD/tools/mf-bench-fsync; apt install postfix)"
done
chmod 755 "$TMP"   # Postfix's users must reach their directories

say "SMTP receiving: $MESSAGES messages of $SIZE bytes, $CONNS concurrent connections," \
	"one message per connection, no TLS; $NCPU CPUs"

# --- the disk's bound --------------------------------------------------------
mkdir -p "$TMP/fsync-probe"
bench_settle "the fsync probe"
"$FSYNC" -n "$FSYNC_N" -s "$SIZE" "$TMP/fsync-probe" >"$TMP/fsync.out" 2>&1 ||
	{ cat "$TMP/fsync.out"; fail "fsync probe"; }
FSYNC_RATE=$(bench_kv "$TMP/fsync.out" files_per_s)
say "disk: $FSYNC_RATE durable new files/s ($SIZE bytes, fsync, rename, fsync dir; $FSYNC_N files)"

# run_load NAME TOOL PORT RCPT: one timed run; sets R_<figures> and prints it.
declare -A R
run_load() {
	local name=$1 tool=$2 port=$3 rcpt=$4 out="$TMP/load-$1.out"
	bench_settle "$name"
	if [ "$tool" = smtp-source ]; then
		bench_timed "$out" "$SMTP_SOURCE" -4 -l "$SIZE" -m "$MESSAGES" -s "$CONNS" \
			-M bench.test -f bench@bench.test -t "$rcpt" "127.0.0.1:$port"
		if [ "$B_RC" -ne 0 ]; then cat "$out"; fail "$name: smtp-source exited $B_RC"; fi
		R[$name.rate]=$(awk -v n="$MESSAGES" -v w="$B_WALL" 'BEGIN { r = 0; if (w > 0) r = n / w; printf "%.1f", r }')
	else
		bench_timed "$out" "$CLIENT" -c "$CONNS" -n "$MESSAGES" -s "$SIZE" \
			-f bench@bench.test -t "$rcpt" -H bench.test -i "$name" 127.0.0.1 "$port"
		if [ "$B_RC" -ne 0 ]; then head -20 "$out"; fail "$name: not every message was accepted"; fi
		R[$name.rate]=$(bench_kv "$out" msgs_per_s)
		R[$name.p50]=$(bench_kv "$out" accept_p50_ms)
		R[$name.p99]=$(bench_kv "$out" accept_p99_ms)
		R[$name.max]=$(bench_kv "$out" accept_max_ms)
		R[$name.sp99]=$(bench_kv "$out" session_p99_ms)
	fi
	R[$name.gen]=$(bench_gen_share)
	say "$name: ${R[$name.rate]} msgs/s; $(bench_gen_share)"
}

# --- mailfleet -----------------------------------------------------------------
# The embedded default, with rate limits off (one client IP sends
# everything), DNS from a lab on loopback (nothing leaves the machine), and
# two fresh accounts: one per run.
dnslab_start "$TMP/lab" >"$TMP/dnslab.out" 2>&1 || { cat "$TMP/dnslab.out"; fail "DNS lab"; }
RUN="$TMP/run"; CONF="$RUN/config/mailfleet.conf"
"$BIN/mailfleet" quickstart --local --dir "$RUN" --port-offset "$OFF" >/dev/null || fail "quickstart"
sed -i "s/^\( *\)resolver recursive.*/\1resolver forward 127.0.0.1@$LAB_UNBOUND_PORT/" "$CONF"
cat >>"$CONF" <<EOC
limits {
    max-connections-per-ip $((CONNS * 4))
}
ratelimit {
    smtp-in-connections none
    smtp-in-messages none
}
EOC
"$BIN/mailfleet" config check -c "$CONF" >"$TMP/check.out" 2>&1 || { cat "$TMP/check.out"; fail "config check"; }
start_embedded
MF() { "$BIN/mailfleet" "$@" -c "$CONF"; }
BENCH_PASS=bench-pass-1
for a in bench1 bench2; do
	MF account add "$a" "$a@localhost" >"$TMP/account.out" 2>&1 || { cat "$TMP/account.out"; fail "account add $a"; }
	echo "$BENCH_PASS" | MF account password "$a" >"$TMP/account.out" 2>&1 ||
		{ cat "$TMP/account.out"; fail "account password $a"; }
done

mf_count() { # ACCOUNT: messages in its Inbox, over IMAP
	python3 - "$P_IMAP" "$1@localhost" "$BENCH_PASS" <<'PY'
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login(sys.argv[2], sys.argv[3])
typ, data = m.status("INBOX", "(MESSAGES)")
print(data[0].decode().split("MESSAGES")[1].strip(" )"))
m.logout()
PY
}
mf_pids() {
	bench_children "$RUN_PID" sleep
}
mf_arrived() { # ACCOUNT
	local n
	n=$(mf_count "$1" 2>/dev/null) || return 1
	[ "$n" -ge "$MESSAGES" ]
}

for run in "smtp-source bench1" "client bench2"; do
	read -r tool acct <<<"$run"
	bench_mem_sampler "$TMP/mem-mf-$tool" mf_pids
	run_load "mailfleet-$tool" "$tool" "$P_SMTP" "$acct@localhost"
	R[mailfleet-$tool.mem]=$(bench_mem_sampler_stop "$TMP/mem-mf-$tool")
	wait_for 60 mf_arrived "$acct" ||
		fail "mailfleet-$tool: $(mf_count "$acct") of $MESSAGES messages in $acct's Inbox"
	n=$(mf_count "$acct")
	[ "$n" -eq "$MESSAGES" ] || fail "mailfleet-$tool: $n messages in $acct's Inbox, sent $MESSAGES"
done
# shellcheck disable=SC2046
read -r rss pss <<<"$(bench_mem $(mf_pids))"
R[mailfleet.idle]="$(awk -v r="$rss" -v p="$pss" 'BEGIN { printf "%.1f %.1f", r / 1024, p / 1024 }')"
say "mailfleet: every accepted message is in its Inbox"
stop_embedded
dnslab_stop_nsd 2>/dev/null

# --- Postfix -------------------------------------------------------------------
# A private instance on loopback: smtpd on a free port, local(8) delivering
# through aliases to one Maildir per run, as the default_privs user (the
# alias database belongs to root).  Durability as shipped: the queue file is
# fsynced before the 250, the Maildir file before the delivery counts.
PF="$TMP/postfix"; mkdir -p "$PF/queue" "$PF/data" "$PF/mail"
PF_PORT=$(free_port)
PF_USER=$(postconf -h default_privs 2>/dev/null || echo nobody)
cat >"$PF/main.cf" <<EOC
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = pf.test
mydomain = pf.test
myorigin = pf.test
mydestination = pf.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
smtp_dns_support_level = disabled
biff = no
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
alias_maps = hash:$PF/aliases
alias_database = hash:$PF/aliases
EOC
cat >"$PF/master.cf" <<EOC
127.0.0.1:$PF_PORT inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
proxywrite unix - - n - 1 proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
EOC
for a in bench1 bench2; do
	mkdir -p "$PF/mail/$a"
	echo "$a: $PF/mail/$a/" >>"$PF/aliases"
done
chown -R "$PF_USER" "$PF/mail"
postalias -c "$PF" "$PF/aliases" || fail "postalias"
postfix -c "$PF" check >"$TMP/postfix-check.out" 2>&1 || { cat "$TMP/postfix-check.out"; fail "postfix check"; }
chown postfix "$PF/data"
postfix -c "$PF" start >"$TMP/postfix-start.out" 2>&1 ||
	{ cat "$TMP/postfix-start.out"; cat "$PF/maillog" 2>/dev/null; fail "postfix start"; }
pf_stop() { postfix -c "$PF" stop >/dev/null 2>&1; }
trap 'pf_stop; cleanup' EXIT
wait_for 20 bash -c "echo > /dev/tcp/127.0.0.1/$PF_PORT" || { cat "$PF/maillog"; fail "Postfix smtpd does not listen"; }
pf_pids() {
	local m
	m=$(tr -d ' ' <"$PF/queue/pid/master.pid" 2>/dev/null) || return 0
	bench_tree "$m"
}
pf_count() { # ALIAS: delivered files in its Maildir
	find "$PF/mail/$1/new" "$PF/mail/$1/cur" -type f 2>/dev/null | wc -l
}
pf_arrived() { [ "$(pf_count "$1")" -ge "$MESSAGES" ]; }

for run in "smtp-source bench1" "client bench2"; do
	read -r tool acct <<<"$run"
	bench_mem_sampler "$TMP/mem-pf-$tool" pf_pids
	run_load "postfix-$tool" "$tool" "$PF_PORT" "$acct@pf.test"
	R[postfix-$tool.mem]=$(bench_mem_sampler_stop "$TMP/mem-pf-$tool")
	# local(8) delivers after the 250: wait for the queue to drain so the
	# next run starts from the same state.
	wait_for "$ARRIVAL_TIMEOUT" pf_arrived "$acct" ||
		{ tail -5 "$PF/maillog"; fail "postfix-$tool: $(pf_count "$acct") of $MESSAGES messages delivered"; }
	n=$(pf_count "$acct")
	[ "$n" -eq "$MESSAGES" ] || fail "postfix-$tool: $n messages delivered, sent $MESSAGES"
done
# shellcheck disable=SC2046
read -r rss pss <<<"$(bench_mem $(pf_pids))"
R[postfix.idle]="$(awk -v r="$rss" -v p="$pss" 'BEGIN { printf "%.1f %.1f", r / 1024, p / 1024 }')"
say "postfix: every accepted message is in its Maildir"
pf_stop

# --- report ----------------------------------------------------------------------
row() { # LABEL MF PF RATIO-NOTE
	printf 'bench: %-34s %12s %12s %8s\n' "$1" "$2" "$3" "$4"
}
echo
say "SMTP receiving: mailfleet smtp-in vs Postfix smtpd ($MESSAGES x $SIZE bytes, $CONNS connections)"
row "" mailfleet postfix ratio
row "msgs/s (smtp-source)" "${R[mailfleet-smtp-source.rate]}" "${R[postfix-smtp-source.rate]}" \
	"$(bench_ratio "${R[mailfleet-smtp-source.rate]}" "${R[postfix-smtp-source.rate]}")"
row "msgs/s (mf-bench-smtp)" "${R[mailfleet-client.rate]}" "${R[postfix-client.rate]}" \
	"$(bench_ratio "${R[mailfleet-client.rate]}" "${R[postfix-client.rate]}")"
row "accept latency p50 ms" "${R[mailfleet-client.p50]}" "${R[postfix-client.p50]}" \
	"$(bench_ratio "${R[mailfleet-client.p50]}" "${R[postfix-client.p50]}")"
row "accept latency p99 ms" "${R[mailfleet-client.p99]}" "${R[postfix-client.p99]}" \
	"$(bench_ratio "${R[mailfleet-client.p99]}" "${R[postfix-client.p99]}")"
row "accept latency max ms" "${R[mailfleet-client.max]}" "${R[postfix-client.max]}" \
	"$(bench_ratio "${R[mailfleet-client.max]}" "${R[postfix-client.max]}")"
row "session (connect..250) p99 ms" "${R[mailfleet-client.sp99]}" "${R[postfix-client.sp99]}" \
	"$(bench_ratio "${R[mailfleet-client.sp99]}" "${R[postfix-client.sp99]}")"
read -r mr mp <<<"${R[mailfleet-client.mem]}"
read -r pr pp <<<"${R[postfix-client.mem]}"
row "peak RSS MiB under load" "$mr" "$pr" "$(bench_ratio "$mr" "$pr")"
row "peak PSS MiB under load" "$mp" "$pp" "$(bench_ratio "$mp" "$pp")"
read -r mr mp <<<"${R[mailfleet.idle]}"
read -r pr pp <<<"${R[postfix.idle]}"
row "RSS MiB after the runs" "$mr" "$pr" "$(bench_ratio "$mr" "$pr")"
row "PSS MiB after the runs" "$mp" "$pp" "$(bench_ratio "$mp" "$pp")"
say "ratio = mailfleet / postfix (throughput: higher is better; latency, memory: lower is better)"
say "physical bound: $FSYNC_RATE durable new files/s on this disk"
say "memory: mailfleet = its eight services + nats-server + redis-server; postfix = master and its children"
for k in mailfleet-smtp-source mailfleet-client postfix-smtp-source postfix-client; do
	say "$k: ${R[$k.gen]}"
done
echo "bench_smtp: done"

#!/bin/bash
# Delivery (issue 6): deliveries/s from a full queue to Postfix's smtp-sink,
# for mailfleet's queue with 1 and then 2 delivery worker processes, and for
# Postfix's own queue manager and smtp client (a throwaway instance with
# relayhost = the same sink and its default concurrency), one after the
# other in the same run.  Prints deliveries/s for each, the ratio to
# Postfix, the scaling factor from 1 to 2 workers, and the CPU the servers
# and the sink used.
#
# What is timed, on both sides: N messages of SIZE bytes, one recipient
# each, already in the queue and held; the clock starts at the release
# (`mailfleet queue release --all`; `postsuper -H ALL` + `postqueue -f`) and
# stops when smtp-sink has received the N-th message (it exits then: -M N).
# Afterwards each queue must be empty: every message went out exactly once
# (a duplicate would have ended the sink early and left one queued).
# Filling the queues is not timed: ours through queue.v1.add
# (tests/tools/mf-bench-enqueue, the submission path's call), Postfix's
# through its smtpd (smtp-source), held by a HOLD restriction.
#
# mailfleet: nats-server, redis-server, the queue and the delivery workers
# (default threads per worker unless BENCH_DELIVERY_THREADS), the route
# "to-domain bench.test transport sink" of domains.conf.  Nothing is
# deleted between runs (the queue's retired rows and blobs stay as the
# queue leaves them).  Needs root (postfix start).
#
#   BENCH_QUICK=1 (300 messages, no settling), BENCH_SETTLE=SECS,
#   BENCH_DELIVERY_MESSAGES, BENCH_DELIVERY_SIZE, BENCH_DELIVERY_THREADS.
. "$(dirname "$0")/../integration/lib/common.sh"
. "$ROOT/tests/bench/lib.sh"

if [ "$BENCH_QUICK" = 1 ]; then
	MESSAGES=${BENCH_DELIVERY_MESSAGES:-300}
else
	MESSAGES=${BENCH_DELIVERY_MESSAGES:-5000}
fi
SIZE=${BENCH_DELIVERY_SIZE:-10240}
THREADS=${BENCH_DELIVERY_THREADS:-}
SMTP_SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
SMTP_SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
ENQUEUE=$BUILD/tools/mf-bench-enqueue
MF="$BIN/mailfleet"
# The longest a run may take before it counts as broken.
RUN_TIMEOUT=${BENCH_DELIVERY_TIMEOUT:-900}

[ "$(id -u)" -eq 0 ] || fail "needs root to run a private Postfix instance"
for b in "$SMTP_SINK" "$SMTP_SOURCE" "$ENQUEUE" "$MF" "$BIN/mailfleet-queue" \
	"$BIN/mailfleet-delivery" /usr/sbin/postfix; do
	[ -x "$b" ] || fail "$b missing (make all $BUILD/tools/mf-bench-enqueue; apt install postfix)"
done
chmod 755 "$TMP"   # Postfix's and the sink's users must reach their directories
SINK_USER=$(postconf -h default_privs 2>/dev/null || echo nobody)

say "delivery: $MESSAGES messages of $SIZE bytes, one recipient each, from a full queue to" \
	"smtp-sink on loopback, no TLS; $NCPU CPUs"

SINK_P=$(free_port)
# start_sink NAME: smtp-sink with running counters (-c: "sess=N quit=N
# mesg=N" after every ".", before its 250), in $TMP/sink-NAME.out.  Not
# -M: the sink would exit on the N-th "." before that message's 250, and
# the sender would have to retry it.
start_sink() {
	"$SMTP_SINK" -4 -u "$SINK_USER" -c "127.0.0.1:$SINK_P" 256 >"$TMP/sink-$1.out" 2>&1 &
	SINK_PID=$!
	PIDS_TO_KILL="$PIDS_TO_KILL $SINK_PID"
	wait_for 10 bash -c "echo > /dev/tcp/127.0.0.1/$SINK_P" || fail "smtp-sink does not listen"
}
stop_sink() {
	kill -TERM "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null
}
# Messages the sink has received so far.
sink_count() { # NAME
	tail -c 100 "$TMP/sink-$1.out" 2>/dev/null | tr '\r' '\n' | awk -F'mesg=' 'NF > 1 { n = $2 + 0 } END { print n + 0 }'
}
# SMTP sessions the sink has seen (Postfix's smtp client reuses
# connections when a backlog builds; ours opens one per job).
sink_sessions() { # NAME
	tail -c 100 "$TMP/sink-$1.out" 2>/dev/null | tr '\r' '\n' | awk '/sess=/ { split($1, a, "="); n = a[2] } END { print n + 0 }'
}
# The timed part's end: waits until the sink has MESSAGES (exported for
# the bash -c of bench_timed); 1 on timeout.
export -f sink_count
export TMP MESSAGES RUN_TIMEOUT
# shellcheck disable=SC2016
WAIT_SINK='end=$(( $(date +%s) + RUN_TIMEOUT ))
	while [ "$(sink_count "$SINK_NAME")" -lt "$MESSAGES" ]; do
		[ "$(date +%s)" -ge "$end" ] && exit 1
		sleep 0.02
	done'

declare -A R
# finish NAME CPU0 SINKCPU0 PIDS...: the figures of the run that just ended.
finish() {
	local name=$1 cpu0=$2 scpu0=$3 cpu1; shift 3
	cpu1=$(bench_cpu_of "$@")
	R[$name.rate]=$(awk -v n="$MESSAGES" -v w="$B_WALL" 'BEGIN { r = 0; if (w > 0) r = n / w; printf "%.1f", r }')
	R[$name.cpu]=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')
	R[$name.cpu_per_k]=$(awk -v c="${R[$name.cpu]}" -v n="$MESSAGES" 'BEGIN { printf "%.2f", 1000 * c / n }')
	R[$name.sink]=$(awk -v a="$scpu0" -v b="$(bench_cpu_of "$SINK_PID")" 'BEGIN { printf "%.2f", b - a }')
	R[$name.busy]=$(awk -v b="$B_BUSY" -v w="$B_WALL" -v n="$NCPU" 'BEGIN { if (w > 0) printf "%.0f", 100 * b / (w * n) }')
	say "$name: ${R[$name.rate]} deliveries/s (${B_WALL}s); servers CPU ${R[$name.cpu]}s" \
		"(${R[$name.cpu_per_k]}s per 1000), smtp-sink CPU ${R[$name.sink]}s, machine busy ${R[$name.busy]}%"
}

# --- the message ------------------------------------------------------------------
awk -v size="$SIZE" 'BEGIN {
	printf "From: Bench <mail@mail.test>\r\nTo: <rcpt@bench.test>\r\nSubject: delivery benchmark\r\n"
	printf "Date: Sun, 22 Nov 2026 16:00:00 +0000\r\nMessage-ID: <bench@mail.test>\r\n\r\n"
	b = 150
	while (b < size) { printf "%s\r\n", "La de da de da 1. La de da de da 2. La de da de da 3. La de da de da 4."; b += 74 }
}' >"$TMP/msg.eml"

# --- mailfleet ------------------------------------------------------------------------
NATS_P=$(free_port); REDIS_P=$(free_port)
CONF_DIR="$TMP/mf/config"; DATA="$TMP/mf/data"
mkdir -p "$CONF_DIR" "$DATA" "$TMP/log"
CONF="$CONF_DIR/mailfleet.conf"
cat >"$CONF" <<EOC
hostname mail.test
data-dir $DATA
nats-url nats://127.0.0.1:$NATS_P
redis-url redis://127.0.0.1:$REDIS_P
log-level info
queue {
    admin 127.0.0.1:$(free_port)
}
delivery {
    admin 127.0.0.1:$(free_port)
${THREADS:+    threads $THREADS}
}
EOC
cat >"$CONF_DIR/domains.conf" <<EOC
domain mail.test {
}
account mail {
    domain mail.test
    address mail@mail.test
}
transport sink {
    smtp 127.0.0.1:$SINK_P
}
route to-domain bench.test transport sink
EOC
"$MF" config check -c "$CONF" >"$TMP/check.out" 2>&1 || { cat "$TMP/check.out"; fail "config check"; }
start_nats "$NATS_P" "$TMP/nats"
start_redis "$REDIS_P" "$TMP/redis"
"$BIN/mailfleet-queue" -c "$CONF" >>"$TMP/log/queue.log" 2>&1 &
QUEUE_PID=$!; PIDS_TO_KILL="$PIDS_TO_KILL $QUEUE_PID"
wait_for 10 grep -q 'm=started' "$TMP/log/queue.log" || { cat "$TMP/log/queue.log"; fail "queue did not start"; }
wait_for 10 "$MF" queue holdrule list -c "$CONF" || fail "queue does not answer"
# Everything added from now on is held until the timed release.
"$MF" queue holdrule add -c "$CONF" >"$TMP/holdrule.out" 2>&1 || { cat "$TMP/holdrule.out"; fail "holdrule add"; }

# Messages in the queue (up to 1000: only "none" matters); a queue that
# does not answer counts as not empty.
queued() {
	local out
	out=$("$MF" queue list --all --limit 1000 -c "$CONF" 2>&1) || { echo "unknown ($out)"; return; }
	grep -c 'to=<' <<<"$out"
}
queue_empty() { [ "$(queued)" = 0 ]; }

declare -a WORKERS
run_mailfleet() { # WORKERS
	local n=$1 name="mailfleet-$1w" i cpu0 pids
	WORKERS=()
	for i in $(seq 1 "$n"); do
		MAILFLEET_DELIVERY_ADMIN=127.0.0.1:$(free_port) \
			"$BIN/mailfleet-delivery" -c "$CONF" >>"$TMP/log/delivery-$n-$i.log" 2>&1 &
		WORKERS+=("$!"); PIDS_TO_KILL="$PIDS_TO_KILL $!"
		wait_for 10 grep -q 'connected to nats' "$TMP/log/delivery-$n-$i.log" ||
			{ cat "$TMP/log/delivery-$n-$i.log"; fail "delivery worker $i did not start"; }
	done
	"$ENQUEUE" -c "$CONF" -n "$MESSAGES" -f mail@mail.test -t rcpt@bench.test -a mail \
		-m "$TMP/msg.eml" >"$TMP/enqueue-$n.out" 2>&1 || { cat "$TMP/enqueue-$n.out"; fail "$name: enqueue"; }
	say "$name: queued $MESSAGES held messages ($(bench_kv "$TMP/enqueue-$n.out" msgs_per_s) adds/s, not timed)"
	start_sink "$name"
	bench_settle "$name"
	pids="$QUEUE_PID $NATS_PID $REDIS_PID ${WORKERS[*]}"
	# shellcheck disable=SC2086
	cpu0=$(bench_cpu_of $pids)
	scpu0=$(bench_cpu_of "$SINK_PID")
	# Per component too, to see where the CPU went.
	local -A part0
	part0[queue]=$(bench_cpu_of "$QUEUE_PID"); part0[delivery]=$(bench_cpu_of "${WORKERS[@]}")
	part0[nats-server]=$(bench_cpu_of "$NATS_PID"); part0[redis-server]=$(bench_cpu_of "$REDIS_PID")
	export SINK_NAME=$name
	# shellcheck disable=SC2016
	bench_timed "$TMP/release-$n.out" bash -c '"$1" queue release --all -c "$2" >/dev/null || exit 1
		'"$WAIT_SINK" release "$MF" "$CONF"
	[ "$B_RC" -eq 0 ] || { cat "$TMP/release-$n.out"; tail -c 100 "$TMP/sink-$name.out"; echo
		tail -20 "$TMP/log/delivery-$n-1.log"; fail "$name: $(sink_count "$name") of $MESSAGES messages reached the sink"; }
	# shellcheck disable=SC2086
	finish "$name" "$cpu0" "$scpu0" $pids
	say "$name: CPU by component:" \
		"queue $(awk -v a="${part0[queue]}" -v b="$(bench_cpu_of "$QUEUE_PID")" 'BEGIN { printf "%.2f", b - a }')s," \
		"delivery $(awk -v a="${part0[delivery]}" -v b="$(bench_cpu_of "${WORKERS[@]}")" 'BEGIN { printf "%.2f", b - a }')s," \
		"nats-server $(awk -v a="${part0[nats-server]}" -v b="$(bench_cpu_of "$NATS_PID")" 'BEGIN { printf "%.2f", b - a }')s," \
		"redis-server $(awk -v a="${part0[redis-server]}" -v b="$(bench_cpu_of "$REDIS_PID")" 'BEGIN { printf "%.2f", b - a }')s"
	wait_for 30 queue_empty || fail "$name: $(queued) messages still queued after the sink got $MESSAGES"
	# A duplicate would still be on its way; Postfix's cached connections
	# close after 2 s (smtp_connection_cache_time_limit), and the sink
	# counts a session when it ends.
	sleep 3
	[ "$(sink_count "$name")" -eq "$MESSAGES" ] ||
		fail "$name: the sink got $(sink_count "$name") messages, $MESSAGES were queued"
	# Minus the probe that saw it listen.
	R[$name.sess]=$(( $(sink_sessions "$name") - 1 ))
	stop_sink
	for i in $(seq 1 "$n"); do
		R[$name.w$i]=$(grep -c 'm=delivered' "$TMP/log/delivery-$n-$i.log")
	done
	for p in "${WORKERS[@]}"; do kill -TERM "$p"; done
	for p in "${WORKERS[@]}"; do wait "$p" 2>/dev/null; done
}
run_mailfleet 1
run_mailfleet 2
say "mailfleet: every message reached the sink once; 2 workers shared the load (${R[mailfleet-2w.w1]} + ${R[mailfleet-2w.w2]} deliveries logged)"
THREADS_SHOWN=${THREADS:-4 (default)}
kill -TERM "$QUEUE_PID"; wait "$QUEUE_PID" 2>/dev/null

# --- Postfix ----------------------------------------------------------------------------
# A private instance on loopback: smtpd (only to fill the queue, everything
# it accepts held), qmgr and smtp with Postfix's default concurrency
# (initial 5, up to 20 per destination), relayhost = the sink.  Durability
# as shipped.
PF="$TMP/postfix"; mkdir -p "$PF/queue" "$PF/data"
PF_PORT=$(free_port)
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
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$SINK_P
smtp_dns_support_level = disabled
biff = no
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
smtpd_client_restrictions = check_client_access static:HOLD
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
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
EOC
postfix -c "$PF" check >"$TMP/postfix-check.out" 2>&1 || { cat "$TMP/postfix-check.out" "$PF/maillog" 2>/dev/null; fail "postfix check"; }
chown postfix "$PF/data"
postfix -c "$PF" start >"$TMP/postfix-start.out" 2>&1 ||
	{ cat "$TMP/postfix-start.out"; cat "$PF/maillog" 2>/dev/null; fail "postfix start"; }
pf_stop() { postfix -c "$PF" stop >/dev/null 2>&1; }
trap 'pf_stop; cleanup' EXIT
wait_for 20 bash -c "echo > /dev/tcp/127.0.0.1/$PF_PORT" || { cat "$PF/maillog"; fail "Postfix smtpd does not listen"; }
PF_MASTER=$(tr -d ' ' <"$PF/queue/pid/master.pid")
pf_held() { find "$PF/queue/hold" -type f 2>/dev/null | wc -l; }
pf_queued() { find "$PF/queue/incoming" "$PF/queue/active" "$PF/queue/deferred" "$PF/queue/hold" \
	"$PF/queue/maildrop" -type f 2>/dev/null | wc -l; }
pf_empty() { [ "$(pf_queued)" -eq 0 ]; }

"$SMTP_SOURCE" -4 -l "$SIZE" -m "$MESSAGES" -s 20 -M pf.test -f mail@pf.test -t rcpt@bench.test \
	"127.0.0.1:$PF_PORT" >"$TMP/pf-fill.out" 2>&1 || { cat "$TMP/pf-fill.out"; fail "filling Postfix's queue"; }
wait_for 60 bash -c "[ \$(find '$PF/queue/hold' -type f | wc -l) -ge $MESSAGES ]" ||
	{ tail -5 "$PF/maillog"; fail "postfix: $(pf_held) of $MESSAGES messages held"; }
say "postfix: queued $MESSAGES held messages (not timed)"
start_sink postfix
bench_settle postfix
# shellcheck disable=SC2046
cpu0=$(bench_cpu_of $(bench_tree "$PF_MASTER"))
scpu0=$(bench_cpu_of "$SINK_PID")
export SINK_NAME=postfix
# shellcheck disable=SC2016
bench_timed "$TMP/release-pf.out" bash -c 'postsuper -c "$1" -H ALL >/dev/null 2>&1 &&
	postqueue -c "$1" -f || exit 1
	'"$WAIT_SINK" release "$PF"
[ "$B_RC" -eq 0 ] || { cat "$TMP/release-pf.out"; tail -c 100 "$TMP/sink-postfix.out"; echo; tail -20 "$PF/maillog"
	fail "postfix: $(sink_count postfix) of $MESSAGES messages reached the sink"; }
# The smtp processes live on after the run (max_idle), so the tree now
# holds every process that worked on it.
# shellcheck disable=SC2046
finish postfix "$cpu0" "$scpu0" $(bench_tree "$PF_MASTER")
wait_for 30 pf_empty || fail "postfix: $(pf_queued) messages still queued after the sink got $MESSAGES"
sleep 3
[ "$(sink_count postfix)" -eq "$MESSAGES" ] ||
	fail "postfix: the sink got $(sink_count postfix) messages, $MESSAGES were queued"
R[postfix.sess]=$(( $(sink_sessions postfix) - 1 ))
stop_sink
R[postfix.smtp]=$(bench_procs | awk -v m="$PF_MASTER" '$2 == m && $3 == "smtp"' | wc -l)
say "postfix: every message reached the sink once (${R[postfix.sess]} SMTP sessions, ${R[postfix.smtp]} smtp processes)"
pf_stop

# --- report -----------------------------------------------------------------------------
row() { printf 'bench: %-38s %12s %12s %12s\n' "$1" "$2" "$3" "$4"; }
echo
say "delivery: queue -> smtp-sink, $MESSAGES x $SIZE bytes; mailfleet threads per worker: $THREADS_SHOWN;" \
	"postfix: default concurrency"
row "" "mailfleet 1w" "mailfleet 2w" postfix
row "deliveries/s" "${R[mailfleet-1w.rate]}" "${R[mailfleet-2w.rate]}" "${R[postfix.rate]}"
row "servers' CPU s per 1000 deliveries" "${R[mailfleet-1w.cpu_per_k]}" "${R[mailfleet-2w.cpu_per_k]}" "${R[postfix.cpu_per_k]}"
row "SMTP sessions at the sink" "${R[mailfleet-1w.sess]}" "${R[mailfleet-2w.sess]}" "${R[postfix.sess]}"
row "smtp-sink CPU s" "${R[mailfleet-1w.sink]}" "${R[mailfleet-2w.sink]}" "${R[postfix.sink]}"
row "machine busy %" "${R[mailfleet-1w.busy]}" "${R[mailfleet-2w.busy]}" "${R[postfix.busy]}"
say "ratio to postfix (deliveries/s): 1 worker $(bench_ratio "${R[mailfleet-1w.rate]}" "${R[postfix.rate]}")," \
	"2 workers $(bench_ratio "${R[mailfleet-2w.rate]}" "${R[postfix.rate]}") (higher is better)"
say "scaling from 1 to 2 delivery workers: x$(bench_ratio "${R[mailfleet-2w.rate]}" "${R[mailfleet-1w.rate]}")" \
	"($NCPU CPUs shared by the servers, the sink and the rest of the machine)"
say "servers' CPU: mailfleet = queue + delivery workers + nats-server + redis-server; postfix = master and its children"
echo "bench_delivery: done"

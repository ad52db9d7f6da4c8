# Shared set-up for test_queue.sh and test_delivery.sh (sourced after
# lib/common.sh): nats, redis, the queue, delivery workers, a stand-in for
# the account store (mf-store-sink, which keeps what the queue delivers:
# DSNs and the embedded default's loop-back) and a receiving SMTP server
# (python3-aiosmtpd) on 127.0.0.1.  Routes in domains.conf point
# example.org at the receiving server directly (a "smtp" transport, no
# DNS), example.net at the embedded default's "local" transport.  Tests may
# change ROUTES (domains.conf route lines) or QUEUE_BACKOFF_MS after
# sourcing this: the files are written again by start_queue/start_worker.
TOOLS="$BUILD/tools"
show_logs() { tail -n 30 "$TMP"/log/*.log >&2; }
trap 'rc=$?; [ $rc -ne 0 ] && show_logs; cleanup' EXIT
NATS_P=$(free_port); REDIS_P=$(free_port); RECV_P=$(free_port); RECV_TLS_P=$(free_port)
QUEUE_ADMIN=$(free_port)
CONF_DIR="$TMP/config"; DATA="$TMP/data"; OUT="$TMP/recv"; SINK="$TMP/sink"
mkdir -p "$CONF_DIR" "$DATA" "$OUT" "$SINK" "$TMP/log"
CONF="$CONF_DIR/mailfleet.conf"
DELIVERY_ADMIN=$(free_port)
write_conf() {
	cat >"$CONF" <<CONF
hostname mail.test
data-dir $DATA
nats-url nats://127.0.0.1:$NATS_P
redis-url redis://127.0.0.1:$REDIS_P
log-level info
queue {
    admin 127.0.0.1:$QUEUE_ADMIN
    lease 60s
    test-first-backoff ${QUEUE_BACKOFF_MS:-1500}ms
}
delivery {
    admin 127.0.0.1:$DELIVERY_ADMIN
    threads 2
    ack-wait 5s
    test-smtp-port $RECV_P
}
${EXTRA_CONF:-}
CONF
	cat >"$CONF_DIR/domains.conf" <<CONF
domain mail.test {
}
account mail {
    domain mail.test
    address mail@mail.test
}
transport recv {
    smtp 127.0.0.1:$RECV_P
}
transport recvtls {
    smtp 127.0.0.1:$RECV_TLS_P
}
$ROUTES
CONF
}
ROUTES="route to-domain example.org transport recv
route to-domain example.net transport local
route to-domain tls.example.org transport recvtls"
write_conf
MF="$BIN/mailfleet"

start_nats "$NATS_P" "$TMP/nats"
start_redis "$REDIS_P" "$TMP/redis"
/usr/bin/python3 "$ROOT/tests/integration/delivery/smtp_receiver.py" "$RECV_P" "$OUT" \
	>"$TMP/log/receiver.log" 2>&1 &
PIDS_TO_KILL="$PIDS_TO_KILL $!"
wait_for 10 grep -q ready "$TMP/log/receiver.log" || fail "receiver did not start"
# A second receiving server that offers STARTTLS.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
	-keyout "$TMP/recv-key.pem" -out "$TMP/recv-cert.pem" >/dev/null 2>&1 || fail "openssl"
/usr/bin/python3 "$ROOT/tests/integration/delivery/smtp_receiver.py" "$RECV_TLS_P" "$OUT" \
	"$TMP/recv-cert.pem" "$TMP/recv-key.pem" >"$TMP/log/receiver-tls.log" 2>&1 &
PIDS_TO_KILL="$PIDS_TO_KILL $!"
wait_for 10 grep -q ready "$TMP/log/receiver-tls.log" || fail "TLS receiver did not start"
"$TOOLS/mf-store-sink" -c "$CONF" "$SINK" >"$TMP/log/sink.log" 2>&1 &
PIDS_TO_KILL="$PIDS_TO_KILL $!"
wait_for 10 grep -q ready "$TMP/log/sink.log" || { cat "$TMP/log/sink.log"; fail "store sink did not start"; }

start_queue() {
	write_conf
	"$BIN/mailfleet-queue" -c "$CONF" >>"$TMP/log/queue.log" 2>&1 &
	QUEUE_PID=$!; PIDS_TO_KILL="$PIDS_TO_KILL $QUEUE_PID"
	wait_for 10 grep -q 'm=started' "$TMP/log/queue.log" || fail "queue did not start"
	# The bus connects in the background: wait until the queue answers.
	wait_for 10 "$MF" queue holdrule list -c "$CONF" || fail "queue does not answer"
}
# start_worker N: delivery worker number N (log $TMP/log/delivery-N.log),
# PID in WORKER_PID[N].
declare -A WORKER_PID
start_worker() {
	write_conf
	MAILFLEET_DELIVERY_ADMIN=127.0.0.1:$(free_port) \
		"$BIN/mailfleet-delivery" -c "$CONF" >>"$TMP/log/delivery-$1.log" 2>&1 &
	WORKER_PID[$1]=$!; PIDS_TO_KILL="$PIDS_TO_KILL $!"
	wait_for 10 grep -q 'm=started' "$TMP/log/delivery-$1.log" || fail "delivery $1 did not start"
	wait_for 10 grep -q 'connected to nats' "$TMP/log/delivery-$1.log" || fail "delivery $1: no nats"
}
queue_add() { "$TOOLS/mf-queue-add" -c "$CONF" --account mail --from mail@mail.test "$@"; }
# Files of the receiving server that were delivered to ADDRESS.
received_for() { grep -l "^X-Rcpt: $1" "$OUT"/msg-*.eml 2>/dev/null; }
received_count() { received_for "$1" | wc -l; }
# For wait_for (which runs a command, so expansions must happen inside):
has_received() { [ "$(received_count "$1")" -ge "${2:-1}" ]; }
has_sink() { [ "$(sink_with "$1" | wc -l)" -ge "${2:-1}" ]; }
# Messages the store stand-in got whose text matches a pattern.
sink_with() { grep -l -- "$1" "$SINK"/*.eml 2>/dev/null; }
queue_empty_for() { ! "$MF" queue list -c "$CONF" --all | grep -q "to=<$1>"; }

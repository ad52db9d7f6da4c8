#!/bin/bash
# Delivery workers against a receiving SMTP server on loopback: retries
# after 451, a 550 turned into a DSN with the full reply in the sender's
# mailbox, suppression after a hard failure, two workers draining one queue
# exactly once, and a worker killed with -9 mid-transaction whose job is
# delivered after the ack wait by the other worker.
# The receiving server is reached through a route (transport
# smtp:127.0.0.1:PORT), not through MX records.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/delivery/setup.sh"

start_queue
start_worker 1
start_worker 2

# --- 451 then 250: a real retry after the (shortened) backoff -----------------
queue_add --to tempthen1@example.org >/dev/null || fail "queue add"
wait_for 30 has_received tempthen1@example.org || fail "tempthen1 not delivered after retry"
grep -q '^tempthen1@example.org 451$' "$OUT/rcpt.log" || fail "no 451 first"
[ "$(grep -c '^tempthen1@example.org' "$OUT/rcpt.log")" -eq 2 ] || fail "expected exactly 2 RCPTs for tempthen1"
wait_for 10 queue_empty_for tempthen1@example.org || fail "tempthen1 still queued"
ok "451 then 250: delivered on the second attempt"

# --- opportunistic STARTTLS -----------------------------------------------------
queue_add --to secure@tls.example.org >/dev/null || fail "queue add"
wait_for 20 has_received secure@tls.example.org || fail "not delivered to the STARTTLS server"
grep -q '^X-TLS: yes' $(received_for secure@tls.example.org) || fail "not sent over TLS"
grep -q 'X-TLS: no' $(received_for tempthen1@example.org) || fail "plain server marked TLS"
wait_for 10 queue_empty_for secure@tls.example.org || fail "still queued"
grep -q 'm=delivered.*rcpt=secure@tls.example.org.*tls=TLSv1.[23]' "$TMP"/log/delivery-*.log ||
	fail "TLS version not reported"
ok "STARTTLS offered: used (opportunistic), TLS version in the result"

# --- 550 -> failure DSN with the full multi-line reply ------------------------
queue_add --to fail550a@example.org --to ok1@example.org --ret FULL >/dev/null || fail "queue add"
wait_for 20 has_sink 'Final-Recipient: rfc822; fail550a@example.org' || fail "no DSN for fail550a"
dsn=$(sink_with 'Final-Recipient: rfc822; fail550a@example.org')
grep -q '^Diagnostic-Code: smtp; 550-5.1.1 The mailbox fail550a@example.org does not exist here.' $dsn || fail "Diagnostic-Code lacks the first reply line"
grep -q '^ 550 5.1.1 Please check the address and try again.' $dsn || fail "Diagnostic-Code lacks the second reply line"
grep -q '^Status: 5.1.1' $dsn || fail "DSN status"
grep -q '^Action: failed' $dsn || fail "DSN action"
grep -q 'multipart/report; report-type=delivery-status' $dsn || fail "DSN content type"
grep -q '^Content-Type: message/rfc822' $dsn || fail "RET=FULL: original not included"
grep -q 'rcpt0=<mail@mail.test>' $dsn || fail "DSN not delivered to the sender"
grep -q 'account=mail from=<>' $dsn || fail "DSN not from the null sender into account mail"
grep -q 'ok1@example.org' $dsn && grep -q 'Final-Recipient: rfc822; ok1' $dsn && fail "DSN lists the delivered recipient"
f=$(received_for ok1@example.org); [ -n "$f" ] || fail "ok1 not delivered"
ok "550: failure DSN in the sender's account with the full two-line reply; the other recipient delivered"

# --- suppression ----------------------------------------------------------------
"$MF" suppression list -c "$CONF" --account mail | grep -q 'address=fail550a@example.org automatic' ||
	fail "fail550a not on the suppression list"
n=$(grep -c '^fail550a@example.org' "$OUT/rcpt.log")
ndsn=$(sink_with 'Final-Recipient: rfc822; fail550a@example.org' | wc -l)
queue_add --to fail550a@example.org >/dev/null || fail "queue add"
wait_for 20 has_sink 'Final-Recipient: rfc822; fail550a@example.org' $((ndsn + 1)) ||
	fail "no DSN for a suppressed recipient"
sleep 1
[ "$(grep -c '^fail550a@example.org' "$OUT/rcpt.log")" -eq "$n" ] || fail "suppressed recipient was tried"
sink_with 'suppression list' >/dev/null || fail "DSN does not say why"
"$MF" suppression remove -c "$CONF" mail fail550a@example.org | grep -q removed || fail "suppression remove"
"$MF" suppression add -c "$CONF" mail manual@example.org "asked to" >/dev/null || fail "suppression add"
"$MF" suppression list -c "$CONF" | grep -q 'address=manual@example.org manual' || fail "manual suppression"
ok "suppression: automatic after 5.1.1, immediate DSN without an attempt, list/add/remove"

# --- two workers, one queue, every message exactly once -------------------------
for i in $(seq 1 30); do
	queue_add --to "many$i@example.org" >/dev/null || fail "queue add $i"
done
for i in $(seq 1 30); do
	wait_for 30 has_received "many$i@example.org" || fail "many$i not delivered"
done
sleep 2
for i in $(seq 1 30); do
	[ "$(received_count "many$i@example.org")" -eq 1 ] || fail "many$i delivered $(received_count "many$i@example.org") times"
done
w1=$(grep -c 'm=delivered.*rcpt=many' "$TMP/log/delivery-1.log")
w2=$(grep -c 'm=delivered.*rcpt=many' "$TMP/log/delivery-2.log")
[ "$w1" -gt 0 ] && [ "$w2" -gt 0 ] || fail "one worker did everything ($w1/$w2)"
ok "two workers: 30 messages, each delivered exactly once ($w1 + $w2)"

# --- kill -9 a worker mid-transaction --------------------------------------------
queue_add --to slow1@example.org >/dev/null || fail "queue add"
wait_for 20 test -f "$OUT/slow-started" || fail "slow transaction did not start"
victim=""
for n in 1 2; do
	grep -q 'm=delivering.*rcpt=slow1@example.org\|m=delivering.*rcpts=1.*slow1' "$TMP/log/delivery-$n.log" && victim=$n
done
[ -n "$victim" ] || victim=$(grep -l 'slow1' "$TMP"/log/delivery-*.log | head -1 | sed 's/.*delivery-\([0-9]\).log/\1/')
[ -n "$victim" ] || fail "cannot tell which worker has the slow job"
kill -9 "${WORKER_PID[$victim]}"
wait_for 40 has_received slow1@example.org || fail "slow1 not delivered after the worker was killed"
sleep 2
[ "$(received_count slow1@example.org)" -eq 1 ] || fail "slow1 delivered more than once"
wait_for 10 queue_empty_for slow1@example.org || fail "slow1 still queued"
ok "kill -9 of worker $victim mid-DATA: delivered once by the other worker after the ack wait"

echo "test_delivery: $CHECKS checks passed"

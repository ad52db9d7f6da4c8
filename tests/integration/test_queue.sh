#!/bin/bash
# The queue's admin side and the embedded default's simulated results:
# hold rules holding new and existing mail and release delivering it,
# fail sending a DSN, drop, reschedule / transport / requiretls, list with
# pagination, a queue restart losing nothing, and the "local" transport
# (deliver back to the sender; x550 / temperror localparts simulate
# failures).  DSNs and loop-back deliveries land in mf-store-sink.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/delivery/setup.sh"

QUEUE_BACKOFF_MS=500   # retries after 0.5, 1, 2, 4, 8 s
start_queue
start_worker 1
Q() { "$MF" queue "$1" -c "$CONF" "${@:2}"; }

# --- hold rule: new messages held; release delivers ---------------------------
Q holdrule add --to-domain example.org | grep -q 'hold rule 1 added' || fail "holdrule add"
Q holdrule list | grep -q '^1 account=\* from-domain=\* to-domain=example.org' || fail "holdrule list"
queue_add --to held1@example.org >/dev/null || fail "queue add"
queue_add --to held2@example.org >/dev/null || fail "queue add"
sleep 2
[ "$(received_count held1@example.org)" -eq 0 ] || fail "held message was delivered"
Q list --held yes | grep -q 'to=<held1@example.org>.* held' || fail "held1 not listed as held"
Q holdrule remove 1 >/dev/null || fail "holdrule remove"
Q holdrule list | grep -q . && fail "hold rule still listed"
Q release --to-domain example.org --id 1 | grep -q '1 message changed' || fail "release of one"
wait_for 20 has_received held1@example.org || fail "released message not delivered"
[ "$(received_count held2@example.org)" -eq 0 ] || fail "held2 delivered without release"
ok "hold rule holds new mail; release by id delivers"

# An empty rule pauses everything, including what is queued already.
Q holdrule add | grep -q '1 queued message now held' && fail "held2 was already held; nothing new to hold"
Q holdrule list | grep -q 'account=\* from-domain=\* to-domain=\*' || fail "empty hold rule"
queue_add --to held3@example.net >/dev/null || fail "queue add"
sleep 1.5
Q list --held yes | grep -q 'to=<held3@example.net>' || fail "empty rule did not hold"
ok "an empty hold rule holds everything"

# --- fail: a DSN goes to the sender -----------------------------------------------
Q fail --id 2 | grep -q '1 message changed' || fail "fail"
wait_for 20 has_sink 'Final-Recipient: rfc822; held2@example.org' || fail "no DSN after fail"
dsn=$(sink_with 'Final-Recipient: rfc822; held2@example.org')
grep -q '^Action: failed' $dsn || fail "fail DSN action"
grep -q "administrator" $dsn || fail "fail DSN does not say why"
Q list | grep -q 'held2@example.org' && fail "failed message still queued"
ok "fail: message retired and a DSN delivered to the sender's account"

# --- drop, reschedule, transport, requiretls, pagination ---------------------------
Q drop --to-domain example.net | grep -q '1 message changed' || fail "drop"
Q list | grep -q held3 && fail "dropped message still queued"
sleep 1
has_sink 'held3@example.net' && fail "drop sent a DSN"
for i in 1 2 3 4 5; do queue_add --to "page$i@example.org" >/dev/null || fail "queue add"; done
Q list --limit 2 | grep -q '^more: --after' || fail "pagination: no next page"
after=$(Q list --limit 2 | sed -n 's/^more: --after //p')
Q list --limit 2 --after "$after" | grep -c 'to=<page' | grep -q '^2$' || fail "second page"
Q requiretls --to-domain example.org yes | grep -q '5 messages changed' || fail "requiretls"
p3=$(Q list | sed -n 's/^\([0-9]*\) .*to=<page3@example.org>.*/\1/p')
Q transport --id "$p3" local | grep -q '1 message changed' || fail "transport"
Q list --transport local | grep -q 'to=<page3@example.org>' || fail "transport filter"
Q requiretls --to-domain example.org --id 4 --id 5 --id 6 --id 7 no | grep -q '4 messages changed' || fail "requiretls no"
Q reschedule --to-domain example.org --in 3600 | grep -q '5 messages changed' || fail "reschedule"
Q hold --all | grep -q 'changed' || fail "hold --all"
Q hold 2>/dev/null && fail "an operation without filters must be refused"
ok "drop without DSN; list pagination; requiretls, transport, reschedule, hold --all"

# --- restart: the database is the truth --------------------------------------------
before=$(Q list | grep -c '^[0-9]')
kill -TERM "$QUEUE_PID"; wait "$QUEUE_PID" 2>/dev/null
start_queue
after=$(Q list | grep -c '^[0-9]'); [ "$after" -eq "$before" ] || { Q list; fail "queue lost messages over a restart ($before before, $after after)"; }
Q holdrule remove 2 >/dev/null || fail "holdrule remove"
Q release --all >/dev/null || fail "release all"
Q reschedule --all --now >/dev/null || fail "reschedule now"
for i in 1 2 4; do wait_for 20 has_received "page$i@example.org" || fail "page$i not delivered after restart"; done
ok "restart keeps $before messages; released afterwards, they are delivered"

# page5 kept REQUIRETLS; the receiving server has no STARTTLS.
wait_for 20 has_sink 'Final-Recipient: rfc822; page5@example.org' || fail "REQUIRETLS message not bounced"
grep -q '^Status: 5.7.30' $(sink_with 'Final-Recipient: rfc822; page5@example.org') || fail "REQUIRETLS status"
[ "$(received_count page5@example.org)" -eq 0 ] || fail "REQUIRETLS message sent in the clear"
ok "REQUIRETLS: not sent without TLS; DSN with 5.7.30"

# --- the embedded default's local transport ------------------------------------
# page3 has transport "local": back into the sender's account.
wait_for 20 has_sink 'rcpt0=<mail@mail.test>.*' || true
wait_for 20 grep -lq 'To: <page3@example.org>' "$SINK"/*.eml || fail "local transport did not deliver to the sender"
grep -l 'To: <page3@example.org>' "$SINK"/*.eml | xargs grep -q 'from=<mail@mail.test> rcpts=1 rcpt0=<mail@mail.test>' ||
	fail "local transport: not delivered to the sender's own address"
queue_add --to someone-x550@example.net >/dev/null || fail "queue add"
wait_for 20 has_sink 'Final-Recipient: rfc822; someone-x550@example.net' || fail "x550 gave no DSN"
grep -q '^Diagnostic-Code: smtp; 550 5.0.0 simulated error' $(sink_with 'Final-Recipient: rfc822; someone-x550@example.net') ||
	fail "x550 DSN lacks the simulated reply"
queue_add --to a-temperror@example.net >/dev/null || fail "queue add"
wait_for 20 bash -c "'$MF' queue list -c '$CONF' | grep -q 'to=<a-temperror@example.net> attempts=[1-9]'" ||
	fail "temperror was not retried"
Q list | grep -A1 'a-temperror' | grep -q '451 4.0.0' || fail "temperror result not recorded"
ok "local transport: back to the sender; x550 bounces with a DSN; temperror stays queued"

# --- delayed DSN after the 5th failure, failure DSN after the last attempt ---------
queue_add --to slowly-temperror@example.net --max-attempts 6 >/dev/null || fail "queue add"
wait_for 30 has_sink 'Final-Recipient: rfc822; slowly-temperror@example.net' || fail "no delayed DSN"
d=$(sink_with 'Final-Recipient: rfc822; slowly-temperror@example.net')
grep -q '^Action: delayed' $d || fail "first DSN is not a delayed one"
grep -q '^Will-Retry-Until: ' $d || fail "delayed DSN without Will-Retry-Until"
wait_for 30 has_sink 'Final-Recipient: rfc822; slowly-temperror@example.net' 2 || fail "no failure DSN"
grep -l 'Final-Recipient: rfc822; slowly-temperror@example.net' "$SINK"/*.eml | xargs grep -l '^Action: failed' |
	xargs grep -q '^Diagnostic-Code: smtp; 451 4.0.0 simulated error' || fail "failure DSN after the last attempt"
Q list | grep -q slowly-temperror && fail "still queued after max attempts"
ok "delayed DSN after the 5th failure; failure DSN after the 6th (max-attempts 6)"

metrics=$(curl -s "http://127.0.0.1:$QUEUE_ADMIN/metrics")
echo "$metrics" | grep -q '^mailfleet_queue_added_total [1-9]' || fail "added counter"
echo "$metrics" | grep -q '^mailfleet_queue_dsn_total [1-9]' || fail "dsn counter"
echo "$metrics" | grep -q '^mailfleet_queue_queued_recipients [0-9]' || fail "queued gauge"
ok "queue metrics"

echo "test_queue: $CHECKS checks passed"

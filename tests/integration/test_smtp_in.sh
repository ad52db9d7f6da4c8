#!/bin/bash
# smtp-in end to end: nats, redis, smtp-in and a store on loopback, driven
# by swaks and raw clients (smtp_in/smtp_raw.py).  The store is
# tests/tools/mf-fake-store, which keeps what it is asked to deliver as
# files, so every check looks at exactly what reached the store.
. "$(dirname "$0")/lib/common.sh"
RAW="$ROOT/tests/integration/smtp_in/smtp_raw.py"
RUN="$TMP/run"; CONF="$RUN/config/mailfleet.conf"; DOMAINS="$RUN/config/domains.conf"
OUT="$TMP/store"; mkdir -p "$OUT"

"$BIN/mailfleet" quickstart --local --dir "$RUN" --port-offset "$OFF" >/dev/null ||
	fail "quickstart"
# A small size limit for the oversize test; a second account and a list.
cat >>"$CONF" <<'EOC'
limits {
    max-message-size 1M
}
ratelimit {
    redis-down deny
    smtp-in-connections 1000/1m
    smtp-in-messages 1000/1m
}
EOC
cat >>"$DOMAINS" <<'EOC'
account other {
    domain localhost
    address other@localhost
}
account small {
    domain localhost
    address small@localhost
    quota 1K
}
alias team@localhost {
    member mail@localhost
    member other@localhost
    post-public yes
}
alias closed@localhost {
    member other@localhost
    post-public no
}
EOC
"$BIN/mailfleet" config check -c "$CONF" >/dev/null || fail "config check"
conf_port() { awk -v k="$1" -v s="${2:-}" '
	s != "" && $1 == s && $2 == "{" { inside = 1; next }
	inside && $1 == "}" { inside = 0 }
	(s == "" || inside) && $1 == k { n = split($2, a, ":"); print a[n]; exit }' "$CONF"; }
NATS_PORT=$(conf_port nats-url); REDIS_PORT=$(conf_port redis-url)
SMTP=$(conf_port listen smtp-in); ADMIN=$(conf_port admin smtp-in)
# A second listener that expects a PROXY protocol header.
PROXY_PORT=$(free_port)
sed -i "/^smtp-in {/a\\    listen 127.0.0.1:$PROXY_PORT plain proxy" "$CONF"
# No dnsauth here (this test looks at smtp-in and the store alone): sender
# verification off.  test_smtp_in_auth.sh tests it with dnsauth and the DNS lab.
sed -i "/^smtp-in {/a\\    verify no" "$CONF"
"$BIN/mailfleet" config check -c "$CONF" >/dev/null || fail "config check (proxy)"
start_nats "$NATS_PORT" "$TMP/nats"
start_redis "$REDIS_PORT" "$TMP/redis"
"$BUILD/tools/mf-fake-store" "nats://127.0.0.1:$NATS_PORT" "$RUN/data/blobs" "$OUT" \
	>"$TMP/store.log" 2>&1 &
STORE_PID=$!; PIDS_TO_KILL="$PIDS_TO_KILL $STORE_PID"
"$BIN/mailfleet-smtp-in" -c "$CONF" >"$TMP/smtp-in.log" 2>&1 &
SMTPIN_PID=$!; PIDS_TO_KILL="$PIDS_TO_KILL $SMTPIN_PID"
wait_for 20 curl -sf "http://127.0.0.1:$ADMIN/readyz" || {
	cat "$TMP/smtp-in.log"; fail "smtp-in not ready"; }
wait_for 10 grep -q "fake store ready" "$TMP/store.log" || fail "fake store not ready"

count() { ls "$OUT" | grep -c "^$1\..*\.eml$"; }
last_eml() { ls -t "$OUT"/$1.*.eml | head -1; }
swaks_q() { swaks --server 127.0.0.1 --port "$SMTP" --helo client.example "$@" 2>&1; }

# 1. plain
out=$(swaks_q --from sender@example.com --to mail@localhost \
	--header "Subject: plain test" --body "plain body line")
echo "$out" | grep -q "^<-  250 2.0.0 message delivered" || { echo "$out"; fail "plain: no 250"; }
[ "$(count mail)" -eq 1 ] || fail "plain: store got $(count mail) messages"
eml=$(last_eml mail)
head -1 "$eml" | grep -q "^Return-Path: <sender@example.com>" || fail "plain: Return-Path"
sed -n 2p "$eml" | grep -q "^Delivered-To: mail@localhost" || fail "plain: Delivered-To"
sed -n 3p "$eml" | grep -q "^Received: from client.example (\[127.0.0.1\])" || fail "plain: Received"
grep -q $'with ESMTP\r$' "$eml" || fail "plain: with ESMTP"
grep -q "plain body line" "$eml" || fail "plain: body"
msgid=$(grep -o "id [0-9a-f]\{24\}" "$eml" | head -1 | cut -d' ' -f2)
grep -q "msgid=$msgid" "$TMP/smtp-in.log" || fail "plain: message id not in the logs"
ok "plain delivery with Return-Path, Delivered-To, Received and id $msgid in the logs"

# 2. STARTTLS
# (python: swaks --tls needs Net::SSLeay, which Debian 12 does not install with swaks)
python3 "$RAW" "$SMTP" starttls || fail "starttls"
grep -q "with ESMTPS (TLSv1.[23] " "$(last_eml mail)" || fail "starttls: Received lacks TLS"
ok "STARTTLS delivery, Received says ESMTPS with the TLS version and cipher"

# 3. pipelining
out=$(swaks_q --pipeline --from sender@example.com --to mail@localhost --body "pipelined")
echo "$out" | grep -q "250 2.0.0 message delivered" || { echo "$out"; fail "pipelining"; }
ok "PIPELINING"

# 4. SMTPUTF8, 5. BDAT, DSN, STARTTLS injection, smuggling, RCPTMAX, oversize
before=$(count mail)
python3 "$RAW" "$SMTP" utf8 || fail "SMTPUTF8"
grep -q "with UTF8SMTP" "$(last_eml mail)" || fail "utf8: Received protocol"
grep -q "^Return-Path: <jöe@xn--bcher-kva.example>" "$(last_eml mail)" || fail "utf8: Return-Path"
ok "SMTPUTF8 sender, UTF8SMTP in Received; UTF-8 address without SMTPUTF8 refused"
python3 "$RAW" "$SMTP" bdat || fail "BDAT"
grep -q "^.leading dot stays" "$(last_eml mail)" || fail "bdat: content"
grep -q "^first chunk" "$(last_eml mail)" || fail "bdat: first chunk"
ok "BDAT chunks, LAST, DATA refused inside BDAT, refused chunk skipped"
python3 "$RAW" "$SMTP" dsn || fail "DSN"
meta=$(ls -t "$OUT"/mail.*.meta | head -1)
grep -q "^envid env+id$" "$meta" && grep -q "^ret HDRS$" "$meta" && grep -q "^notify 6$" "$meta" &&
	grep -q "^orcpt rfc822;mail@localhost$" "$meta" || { cat "$meta"; fail "DSN fields not stored"; }
ok "DSN ENVID/RET/NOTIFY/ORCPT reach the store"
n=$(count mail)
python3 "$RAW" "$SMTP" smuggle || fail "smuggling"
[ "$(count mail)" -eq "$n" ] || fail "smuggling: something was delivered"
ok "smuggling: <LF>.<LF> and friends do not end DATA; bare LF/CR refused with 550 5.6.0"
python3 "$RAW" "$SMTP" starttls-inject || fail "STARTTLS injection"
ok "STARTTLS: pipelined command before the handshake discarded; REQUIRETLS only under TLS"
python3 "$RAW" "$SMTP" rcptmax || fail "RCPTMAX"
ok "101st recipient gets 452 4.5.3"
python3 "$RAW" "$SMTP" oversize || fail "oversize"
[ -z "$(find "$RUN/data/blobs/incoming" -type f 2>/dev/null)" ] || fail "incoming blobs left"
ok "SIZE and real size over the limit: 552 5.3.4; no incoming blob left"

# 6. unknown recipient, relaying, members-only list
out=$(swaks_q --from sender@example.com --to nobody@localhost)
echo "$out" | grep -q "^<\*\* 550 5.1.1" || { echo "$out"; fail "unknown recipient"; }
ok "unknown recipient: 550 5.1.1"
out=$(swaks_q --from sender@example.com --to victim@example.net)
echo "$out" | grep -q "^<\*\* 550 5.7.1 relaying denied" || { echo "$out"; fail "relay"; }
out=$(swaks_q --from mail@localhost --to victim@example.net)
echo "$out" | grep -q "^<\*\* 550 5.7.1 relaying denied" || { echo "$out"; fail "relay from local"; }
ok "relaying to a foreign domain refused (also with a local sender)"
out=$(swaks_q --from sender@example.com --to closed@localhost)
echo "$out" | grep -q "^<\*\* 550 5.7.1 only members" || { echo "$out"; fail "closed list"; }
ok "members-only list refuses outsiders"

# 7. alias fan-out with dedupe: team (mail, other) + mail directly
m=$(count mail); o=$(count other)
out=$(swaks_q --from sender@example.com --to team@localhost,mail@localhost --body "to the team")
echo "$out" | grep -q "250 2.0.0 message delivered" || { echo "$out"; fail "alias"; }
[ "$(count mail)" -eq $((m + 1)) ] && [ "$(count other)" -eq $((o + 1)) ] ||
	fail "alias: mail got $(( $(count mail) - m )), other got $(( $(count other) - o ))"
# A member sending to the list does not get their own copy.
m=$(count mail); o=$(count other)
swaks_q --from mail@localhost --to team@localhost --body "from a member" |
	grep -q "250 2.0.0" || fail "alias from member"
[ "$(count mail)" -eq "$m" ] && [ "$(count other)" -eq $((o + 1)) ] || fail "alias: sender got a copy"
ok "alias fan-out: one copy per account, none for the sending member"

# 8. subaddressing and postmaster
swaks_q --from sender@example.com --to "mail+tag@localhost" | grep -q "250 2.0.0" ||
	fail "subaddress"
ok "subaddress mail+tag@localhost accepted"

# quota smaller than the declared size: refused at RCPT
out=$(python3 - "$SMTP" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.ehlo("client.example")
print(s.mail("sender@example.com", ["SIZE=5000"]))
print(s.rcpt("small@localhost"))
print(s.rcpt("mail@localhost"))
s.quit()
PY
)
echo "$out" | sed -n 2p | grep -q '552, b.5.2.2 message larger than the recipient.s mailbox quota' &&
	echo "$out" | sed -n 3p | grep -q "250, b'2.1.5" || { echo "$out"; fail "quota at RCPT"; }
ok "SIZE over the recipient's whole quota: 552 5.2.2 at RCPT"

# PROXY protocol listener: the client address comes from the header
out=$(python3 - "$PROXY_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 25\r\n")
f = s.makefile("rb")
print(f.readline().decode().strip())
s.sendall(b"EHLO proxied.example\r\nMAIL FROM:<sender@example.com>\r\n"
          b"RCPT TO:<mail@localhost>\r\nDATA\r\n")
while True:
    l = f.readline().decode()
    if l.startswith("354"):
        break
s.sendall(b"Subject: proxied\r\n\r\nvia proxy\r\n.\r\nQUIT\r\n")
print(f.readline().decode().strip())
PY
)
echo "$out" | grep -q "^250 2.0.0 message delivered" || { echo "$out"; fail "PROXY delivery"; }
grep -q "^Received: from proxied.example (\[192.0.2.7\])" "$(last_eml mail)" || fail "PROXY: Received"
ok "PROXY protocol: Received and rate limits see the real client address"

# 9. store failure: 451 4.3.0 and the incoming blob removed
echo temp >"$OUT/mode"
python3 "$RAW" "$SMTP" tempfail || fail "store temporary failure"
[ -z "$(find "$RUN/data/blobs/incoming" -type f 2>/dev/null)" ] || fail "incoming blob left after 451"
ok "store failure: 451 4.3.0, incoming blob removed"
echo perm >"$OUT/mode"
out=$(swaks_q --from sender@example.com --to mail@localhost)
echo "$out" | grep -q "^<\*\* 552 5.2.2" || { echo "$out"; fail "store permanent failure"; }
ok "store refusal (quota) passed on: 552 5.2.2"
echo ok >"$OUT/mode"

# 10. metrics
metrics=$(curl -s "http://127.0.0.1:$ADMIN/metrics")
for m in 'mailfleet_smtp_in_connections_total{result="accepted"}' \
	 'mailfleet_smtp_in_deliveries_total{result="delivered"}' \
	 'mailfleet_smtp_in_deliveries_total{result="rejected"}' \
	 'mailfleet_smtp_in_command_duration_seconds_count{command="mail"}' \
	 'mailfleet_smtp_in_starttls_total{result="ok"}' \
	 'mailfleet_smtp_in_ratelimited_total{what="connection"}'; do
	echo "$metrics" | grep -qF "$m" || fail "metric $m missing"
done
echo "$metrics" | grep -F 'mailfleet_smtp_in_deliveries_total{result="delivered"}' |
	awk '{ exit !($2 >= 9) }' || fail "delivered counter too low"
ok "metrics"

python3 "$RAW" "$SMTP" tarpit || fail "tarpit"
ok "tarpit: repeated failures are answered more slowly"

stop_smtpin() {
	kill -TERM "$SMTPIN_PID"; wait "$SMTPIN_PID"; local rc=$?
	[ "$rc" -eq 0 ] || { tail "$TMP/smtp-in.log"; fail "smtp-in exited $rc"; }
}
start_smtpin() {
	"$BIN/mailfleet-smtp-in" -c "$CONF" >>"$TMP/smtp-in.log" 2>&1 &
	SMTPIN_PID=$!; PIDS_TO_KILL="$PIDS_TO_KILL $SMTPIN_PID"
	# /healthz: /readyz is 503 while Redis is down (step 12)
	wait_for 20 curl -sf "http://127.0.0.1:$ADMIN/healthz" || fail "smtp-in not up"
	# (not by connecting: that would count against the connection limit)
	wait_for 20 bash -c "ss -ltn | grep -q '127.0.0.1:$SMTP '" || fail "smtp-in not listening"
}
stop_smtpin
ok "smtp-in stopped cleanly"

# 11. rate limits shared through Redis: 3 connections and 2 messages a minute
sed -i 's|smtp-in-connections 1000/1m|smtp-in-connections 3/1m|; s|smtp-in-messages 1000/1m|smtp-in-messages 2/1m|' "$CONF"
redis-cli -p "$REDIS_PORT" flushall >/dev/null
start_smtpin
python3 "$RAW" "$SMTP" ratelimit-msgs || fail "message rate limit"
for i in 1 2; do
	python3 "$RAW" "$SMTP" greeting | grep -q "^220 " || fail "connection $i refused early"
done
g=$(python3 "$RAW" "$SMTP" greeting)
echo "$g" | grep -q "^421 4.7.0 too many connections from your network (127.0.0.1/32)" ||
	fail "4th connection: $g"
curl -s "http://127.0.0.1:$ADMIN/metrics" |
	grep -F 'mailfleet_smtp_in_ratelimited_total{what="connection"}' | awk '{ exit !($2 >= 1) }' ||
	fail "ratelimited metric"
ok "connection (421 4.7.0) and message (451 4.7.1) rate limits"

# 12. Redis down with redis-down deny: temporary errors, logged, counted
kill -TERM "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null
g=$(python3 "$RAW" "$SMTP" greeting)
echo "$g" | grep -q "^421 4.3.0 rate limit state unavailable" || fail "redis down (deny): $g"
curl -s "http://127.0.0.1:$ADMIN/metrics" |
	grep -F 'mailfleet_smtp_in_ratelimited_total{what="redis_down"}' | awk '{ exit !($2 >= 1) }' ||
	fail "redis_down metric"
# ... and with allow: mail flows unlimited
stop_smtpin
sed -i 's|redis-down deny|redis-down allow|' "$CONF"
start_smtpin
swaks_q --from sender@example.com --to mail@localhost | grep -q "250 2.0.0" ||
	fail "redis down (allow): no delivery"
grep -q "redis" "$TMP/smtp-in.log" || fail "redis down not logged"
ok "Redis down: deny gives 421 4.3.0, allow delivers; counted in the metric"
stop_smtpin
kill -TERM "$STORE_PID"; wait "$STORE_PID"
echo "test_smtp_in: $CHECKS checks passed"

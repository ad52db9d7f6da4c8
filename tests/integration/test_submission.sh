#!/bin/bash
# submission on the embedded default: STARTTLS + AUTH PLAIN on 1587 and
# implicit TLS + AUTH LOGIN on 1465 (python smtplib), swaks --tls --auth,
# wrong password (535 5.7.8), AUTH and MAIL before STARTTLS refused,
# MAIL FROM and From header not owned refused (550 5.7.1), FUTURERELEASE;
# the messages travel queue -> delivery (local) -> store and are read back
# over IMAP DKIM-signed, with Message-ID and Date added and the
# X-Mailfleet-Extra- header removed; no incoming blob is left behind; a
# hung dnsauth gives 451; per-account limits; failed logins throttled.
. "$(dirname "$0")/lib/common.sh"
CLIENT="$ROOT/tests/integration/submission/sub_client.py"
start_embedded

for c in starttls-plain implicit-login sasl-exchange wrong-password before-starttls from-not-owned \
	holdfor bdat; do
	python3 "$CLIENT" "$c" "$P_SUB" "$P_SUBS" "$PASSWORD" || fail "$c"
	ok "$c"
done

printf '%s\r\n' "From: mail@localhost" "To: mail@localhost" "Subject: sub-swaks" "" "swaks body" \
	>"$TMP/swaks.eml"
for mech in PLAIN LOGIN; do
	swaks --server 127.0.0.1 --port "$P_SUB" --tls --auth "$mech" --auth-user mail@localhost \
		--auth-password "$PASSWORD" --from mail@localhost --to mail@localhost \
		--data "$TMP/swaks.eml" >"$TMP/swaks.out" 2>&1 || { cat "$TMP/swaks.out"; fail "swaks $mech"; }
	grep -q "^<~  250 2.0.0 message queued" "$TMP/swaks.out" || { cat "$TMP/swaks.out"; fail "swaks $mech: no 250"; }
	ok "swaks --tls --auth $mech"
done
swaks --server 127.0.0.1 --port "$P_SUB" --tls --auth PLAIN --auth-user mail@localhost \
	--auth-password wrong --from mail@localhost --to mail@localhost \
	--data "$TMP/swaks.eml" >"$TMP/swaks.out" 2>&1 && fail "swaks with a wrong password succeeded"
grep -q "^<~\* 535 5.7.8" "$TMP/swaks.out" || { cat "$TMP/swaks.out"; fail "swaks: no 535 5.7.8"; }
ok "swaks wrong password: 535 5.7.8"

# Read back what was delivered (queue -> delivery -> store).
python3 - "$P_IMAP" "$PASSWORD" <<'PY' || fail "IMAP read-back"
import imaplib, sys, time
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("mail@localhost", sys.argv[2])
deadline = time.time() + 60
want = ["sub-starttls", "sub-implicit", "sub-swaks", "sub-bdat"]
while True:
    m.select("INBOX")
    found = {w: m.search(None, "SUBJECT", w)[1][0].split() for w in want}
    if all(found.values()) and len(found["sub-swaks"]) >= 2:
        break
    if time.time() > deadline:
        sys.exit("not delivered within 60 s: %r" % found)
    time.sleep(0.5)
typ, data = m.fetch(found["sub-starttls"][0], "(RFC822)")
msg = data[0][1]
head = msg.split(b"\r\n\r\n", 1)[0]
assert b"\r\nDKIM-Signature: " in head or head.startswith(b"DKIM-Signature: "), head
assert b"d=localhost" in head, head
assert b"\r\nMessage-ID: <" in head and b"\r\nDate: " in head, head
assert b"X-Mailfleet-Extra" not in msg, head
assert msg.endswith(b"body of sub-starttls\r\n"), msg[-100:]
typ, data = m.fetch(found["sub-bdat"][0], "(RFC822)")
assert b"X-Mailfleet-Extra" not in data[0][1] and b"DKIM-Signature: " in data[0][1], data[0][1][:300]
m.select("INBOX")
assert m.search(None, "SUBJECT", "sub-held")[1][0].split() == [], "held message delivered early"
assert m.search(None, "SUBJECT", "sub-notowned")[1][0].split() == [], "refused message delivered"
m.logout()
print("delivered, DKIM-signed, Message-ID and Date added, extra header removed")
PY
ok "queue -> delivery -> store -> IMAP: signed, headers added and removed"

# The HOLDFOR=3600 message waits in the queue for its release time.
"$BIN/mailfleet" queue list -c "$CONF" >"$TMP/queue.out" || fail "mailfleet queue list"
[ "$(grep -c 'attempts=0/' "$TMP/queue.out")" = 1 ] || { cat "$TMP/queue.out"; fail "held message not in the queue"; }
NEXT=$(sed -n 's/.* next=\([^ ]*\).*/\1/p' "$TMP/queue.out" | head -1)
NEXT_S=$(date -u -d "$NEXT" +%s) || fail "next attempt time $NEXT"
[ $((NEXT_S - $(date +%s))) -gt 3000 ] || { cat "$TMP/queue.out"; fail "held message due too early"; }
ok "FUTURERELEASE: the HOLDFOR=3600 message is queued for about an hour from now"

# What the queue got for it (read-only look at its database, for this test
# only): the DSN parameters and the extra data from the removed headers.
python3 - "$RUN/data/queue/queue.db" <<'PY' || fail "queue row of the held message"
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
rows = db.execute("SELECT base_id, mail_from, rcpt, dsn_notify, dsn_orcpt, dsn_envid, dsn_ret, "
                  "has_8bit, message_id FROM msg WHERE attempts = 0").fetchall()
assert len(rows) == 1, rows
base, frm, rcpt, notify, orcpt, envid, ret, has8, mid = rows[0]
assert (frm, rcpt) == ("mail@localhost", "mail@localhost"), rows
assert (notify, orcpt, envid, ret, has8) == (4 | 8, "rfc822;mail@localhost", "e1", "HDRS", 1), rows
assert mid.endswith("@localhost") and "<" not in mid, mid
extra = dict(db.execute("SELECT key, value FROM extra WHERE msg_base = ?", (base,)).fetchall())
assert extra == {"Order": "7", "Note": "café"}, extra
print("queue row:", rows[0], extra)
PY
ok "DSN parameters and X-Mailfleet-Extra- data reached the queue"

[ -z "$(find "$RUN/data/blobs/incoming" -type f 2>/dev/null)" ] || {
	find "$RUN/data/blobs/incoming" -type f; fail "incoming blobs left"; }
ok "no incoming blob left"

# A dependency that hangs (dnsauth stopped, the worst case): 451 after the
# signing deadline, nothing queued, no blob left.
DNSAUTH_PID=$(pgrep -f "mailfleet-dnsauth -c $CONF" | head -1)
[ -n "$DNSAUTH_PID" ] || fail "dnsauth pid"
kill -STOP "$DNSAUTH_PID"
python3 "$CLIENT" dnsauth-stopped "$P_SUB" "$P_SUBS" "$PASSWORD" || { kill -CONT "$DNSAUTH_PID"; fail "dnsauth-stopped"; }
kill -CONT "$DNSAUTH_PID"
[ -z "$(find "$RUN/data/blobs/incoming" -type f 2>/dev/null)" ] || fail "incoming blob left after 451"
ok "dnsauth stopped: 451 4.3.0, nothing queued, no blob left"

# Per-account limits from domains.conf, counted in Redis: 6 messages and
# one first-time recipient so far today (5 + BDAT + HOLDFOR = 6 messages).
sed -i 's/^account mail {$/account mail {\n    max-outgoing-messages-per-day 7\n    max-first-time-recipients-per-day 1/' \
	"$RUN/config/domains.conf"
grep -q "max-outgoing-messages-per-day 7" "$RUN/config/domains.conf" || fail "domains.conf edit"
"$BIN/mailfleet" reload -c "$CONF" >/dev/null || fail "mailfleet reload"
sleep 1
python3 "$CLIENT" limits "$P_SUB" "$P_SUBS" "$PASSWORD" || fail "limits"
ok "per-account limits: first-time recipients and messages per day"

curl -s "http://127.0.0.1:$(admin_port submission)/metrics" >"$TMP/metrics"
grep -q '^mailfleet_submission_messages_total{result="queued"} [1-9]' "$TMP/metrics" ||
	{ grep mailfleet_submission "$TMP/metrics"; fail "metrics: queued"; }
grep -q '^mailfleet_submission_auth_total{result="failed"} [1-9]' "$TMP/metrics" ||
	fail "metrics: failed auth"
ok "metrics"

# Last, as it locks 127.0.0.1 out for a while: failed logins are throttled
# per address through Redis.
python3 "$CLIENT" bruteforce "$P_SUB" "$P_SUBS" "$PASSWORD" || fail "bruteforce"
curl -s "http://127.0.0.1:$(admin_port submission)/metrics" |
	grep -q '^mailfleet_submission_auth_total{result="limited"} [1-9]' || fail "metrics: limited"
ok "failed logins throttled per address"
stop_embedded
echo "all $CHECKS checks passed"

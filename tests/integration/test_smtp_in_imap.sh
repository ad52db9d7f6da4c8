#!/bin/bash
# smtp-in on the embedded default with the real account store: a message
# sent with swaks to mail@localhost is read back over IMAP byte for byte
# (after the Return-Path/Delivered-To prefix and our Received header), and
# stopping the imap service (the store) while a message is in DATA gives
# the client a 4xx with nothing delivered and no incoming blob left.
. "$(dirname "$0")/lib/common.sh"
RAW="$ROOT/tests/integration/smtp_in/smtp_raw.py"
start_embedded

# No newline at the end: swaks ends the data with CRLF . CRLF itself.
printf '%s\n' "From: sender@example.com" "To: mail@localhost" "Subject: end to end" \
	"Message-ID: <e2e-1@example.com>" "" "first line" ".leading dot" "last line" |
	head -c -1 >"$TMP/msg.eml"
swaks --server 127.0.0.1 --port "$P_SMTP" --helo client.example --from sender@example.com \
	--to mail@localhost --data "$TMP/msg.eml" >"$TMP/swaks.out" 2>&1 ||
	{ cat "$TMP/swaks.out"; fail "swaks"; }
grep -q "^<-  250 2.0.0 message delivered" "$TMP/swaks.out" || fail "no 250"
python3 - "$P_IMAP" "$PASSWORD" "$TMP/msg.eml" <<'PY' || fail "IMAP read-back"
import imaplib, sys
port, password, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sent = open(path, "rb").read().replace(b"\n", b"\r\n") + b"\r\n"
m = imaplib.IMAP4("127.0.0.1", port)
m.login("mail@localhost", password)
typ, data = m.select("INBOX")
assert typ == "OK", data
typ, data = m.search(None, "HEADER", "Message-ID", "e2e-1@example.com")
ids = data[0].split()
assert len(ids) == 1, ids
typ, data = m.fetch(ids[0], "(RFC822)")
got = data[0][1]
head, sep, rest = got.partition(b"\r\nReceived: ")
assert got.startswith(b"Return-Path: <sender@example.com>\r\nDelivered-To: mail@localhost\r\n"), got[:200]
# our Received header is the last prefix line before the message itself
body_start = rest.index(b"\r\n", rest.index(b"; ")) + 2
assert rest[body_start:] == sent, (rest[body_start:], sent)
m.logout()
print("read back byte for byte")
PY
ok "swaks -> smtp-in -> store -> IMAP, byte for byte"

# Stop the store (imap, SIGSTOP: hung, still subscribed, the worst case)
# while a message is in DATA.
IMAP_PID=$(pgrep -f "mailfleet-imap -c $TMP/run/config/mailfleet.conf" | head -1)
[ -n "$IMAP_PID" ] || fail "imap pid"
python3 "$RAW" "$P_SMTP" mid-data "kill -STOP $IMAP_PID" || { kill -CONT "$IMAP_PID"; fail "mid-data"; }
kill -CONT "$IMAP_PID"
sleep 2   # a resumed store must not deliver the expired request late
[ -z "$(find "$TMP/run/data/blobs/incoming" -type f 2>/dev/null)" ] || fail "incoming blob left"
python3 - "$P_IMAP" "$PASSWORD" <<'PY' || fail "half-delivered message found"
import imaplib, sys, time
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("mail@localhost", sys.argv[2])
m.select("INBOX")
typ, data = m.search(None, "SUBJECT", "mid-data")
assert data[0].split() == [], data
print("nothing delivered")
PY
ok "store stopped during DATA: 451 4.3.0, nothing delivered, no incoming blob"
stop_embedded
echo "test_smtp_in_imap: $CHECKS checks passed"

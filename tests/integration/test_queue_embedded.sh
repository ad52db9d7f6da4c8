#!/bin/bash
# The embedded default end to end with the real account store: mail queued
# for a non-local domain is delivered back into the sender's INBOX, and a
# recipient ending in x550 bounces: the DSN lands in the same INBOX, read
# over IMAP, with the simulated reply in its Diagnostic-Code.
. "$(dirname "$0")/lib/common.sh"

start_embedded
"$BUILD/tools/mf-queue-add" -c "$CONF" --account mail --from mail@localhost \
	--to someone@example.com --to bounce-x550@example.com >/dev/null || fail "queue add"

imap_check() {
	/usr/bin/python3 - "$P_IMAP" "$PASSWORD" <<'PY'
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("mail@localhost", sys.argv[2])
typ, data = m.select("INBOX")
n = int(data[0])
if n < 2:
    sys.exit(1)
found_copy = found_dsn = False
for i in range(1, n + 1):
    typ, msg = m.fetch(str(i), "(RFC822)")
    body = msg[0][1].decode("utf-8", "replace")
    if "Subject: test" in body and "multipart/report" not in body:
        found_copy = True
    if ("multipart/report" in body and "Final-Recipient: rfc822; bounce-x550@example.com" in body
            and "Diagnostic-Code: smtp; 550 5.0.0 simulated error" in body):
        found_dsn = True
m.logout()
sys.exit(0 if found_copy and found_dsn else 1)
PY
}
wait_for 30 imap_check || fail "INBOX does not have the looped-back copy and the DSN"
ok "loop-back copy and failure DSN in the sender's INBOX (IMAP)"
"$BIN/mailfleet" queue list -c "$CONF" | grep -q . && fail "queue not empty"
ok "queue empty afterwards"
stop_embedded
ok "stopped cleanly"
echo "test_queue_embedded: $CHECKS checks passed"

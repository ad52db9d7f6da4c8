#!/bin/bash
# Issue 6 end to end on the embedded default: a user submits a message to a
# remote address (submission, STARTTLS + AUTH PLAIN); it is DKIM-signed,
# queued, and a delivery worker carries it to a receiving SMTP server on
# loopback (named by a route in domains.conf), where both signatures verify
# with dkimpy. A recipient the remote server refuses with 550 comes back as a
# DSN in the sender's INBOX with the server's full reply.
. "$(dirname "$0")/lib/common.sh"

RECV_P=$(free_port)
OUT="$TMP/recv"; mkdir -p "$OUT"
/usr/bin/python3 "$ROOT/tests/integration/delivery/smtp_receiver.py" "$RECV_P" "$OUT" \
	>"$TMP/receiver.log" 2>&1 &
PIDS_TO_KILL="$PIDS_TO_KILL $!"
wait_for 10 grep -q ready "$TMP/receiver.log" || fail "receiving server did not start"

start_embedded
ok "embedded default ready"

# Route example.org to the receiving server; everything else stays local.
cat >>"$RUN/config/domains.conf" <<CONF

transport remote {
    smtp 127.0.0.1:$RECV_P
}
route to-domain example.org transport remote
CONF
"$BIN/mailfleet" config check -c "$CONF" >/dev/null || fail "route does not check"
"$BIN/mailfleet" reload -c "$CONF" >/dev/null || fail "reload"
wait_for 10 bash -c "curl -s http://127.0.0.1:$(admin_port delivery)/metrics |
	grep -q '^mailfleet_delivery_config_reloads_total{result=\"ok\"} 1'" || fail "delivery did not reload"

subject="remote-$$-$RANDOM"
/usr/bin/python3 "$ROOT/tests/integration/send/send.py" "$P_SUB" mail@localhost "$PASSWORD" \
	mail@localhost friend@example.org "$subject" >/dev/null || fail "submission refused the message"
wait_for 30 bash -c "grep -lq 'Subject: $subject' $OUT/msg-*.eml" || { grep -E "pkg=(delivery|queue|submission)" "$TMP/run.out" | tail -20; ls "$OUT"; fail "message did not reach the remote server"; }
msg=$(grep -l "Subject: $subject" "$OUT"/msg-*.eml | head -1)
grep -q '^X-Rcpt: friend@example.org' "$msg" || fail "wrong envelope recipient"
ok "submitted message delivered to the remote server"

# Verify the signatures with dkimpy against our published key records.
sed -n '/^X-Rcpt:/!p' "$msg" >"$TMP/msg.eml"
"$BIN/mailfleet" dkim list localhost -c "$CONF" |
	awk '$2 == "TXT" { name = $1; $1 = ""; $2 = ""; v = substr($0, 3); gsub(/" "/, "", v); gsub(/"/, "", v); print name, v }' \
	>"$TMP/records"
[ -s "$TMP/records" ] || fail "no DKIM records listed"
out=$(/usr/bin/python3 "$ROOT/tests/integration/send/dkim_verify.py" "$TMP/msg.eml" "$TMP/records") \
	|| fail "DKIM verification failed: $out"
[ "$(echo "$out" | grep -c pass)" -ge 2 ] || fail "expected two signatures (ed25519 and rsa): $out"
ok "DKIM signatures verify with dkimpy: $(echo $out)"

# A recipient the remote server refuses: a DSN with its full reply.
subject2="bounce-$$-$RANDOM"
/usr/bin/python3 "$ROOT/tests/integration/send/send.py" "$P_SUB" mail@localhost "$PASSWORD" \
	mail@localhost fail550x@example.org "$subject2" >/dev/null || fail "submission refused the second message"
cat >"$TMP/dsn.py" <<PY
import imaplib, ssl, sys, time
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
for _ in range(60):
    m = imaplib.IMAP4_SSL("127.0.0.1", $P_IMAPS, ssl_context=ctx)
    m.login("mail@localhost", "$PASSWORD")
    m.select("INBOX")
    typ, data = m.search(None, "HEADER", "Content-Type", "multipart/report")
    for num in data[0].split():
        typ, body = m.fetch(num, "(BODY.PEEK[])")
        text = body[0][1].decode("utf-8", "replace")
        if "$subject2" in text:
            ok = ("fail550x@example.org" in text and "550 5.1.1 Please check the address" in text
                  and "Diagnostic-Code: smtp;" in text)
            print("dsn found" if ok else "dsn incomplete:\n" + text[:3000])
            sys.exit(0 if ok else 1)
    m.logout()
    time.sleep(0.5)
print("no DSN"); sys.exit(1)
PY
out=$(python3 "$TMP/dsn.py") || fail "DSN: $out"
ok "refused recipient: DSN with the full multi-line reply in the sender's INBOX"

stop_embedded
ok "stopped cleanly"
echo "$CHECKS checks passed"

#!/bin/bash
# smtp-in asks dnsauth (auth.v1.verify) about every message, on the
# embedded default whose DNS is the lab (nsd + validating unbound, a
# DNSSEC-signed lab.test with SPF, a DKIM key and DMARC policies):
#   - a message from lab.test, signed by dkimpy, sent from 127.0.0.1 (which
#     lab.test's SPF allows) arrives with one Authentication-Results header
#     saying iprev, spf, dkim and dmarc pass, the DNSSEC-authentic ones
#     marked "dnssec", placed below Return-Path/Delivered-To and above our
#     Received;
#   - DMARC p=reject failing SPF and DKIM: 550 5.7.26, nothing delivered;
#   - DMARC p=quarantine failing: delivered to Junk, not INBOX;
#   - several author domains in From (DMARC permerror): 550 5.7.1;
#   - an Authentication-Results field claiming our authserv-id is renamed
#     X-Forged-Authentication-Results (RFC 8601 5);
#   - dnsauth hung (SIGSTOP): 451 4.4.3 after the verify timeout, nothing
#     delivered, no incoming blob left.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/dnslab.sh"

PY=/usr/bin/python3
$PY -c 'import dkim' 2>/dev/null || fail "python3-dkim not installed"
MFDKIM="$BUILD/tools/mf-dkim"
[ -x "$MFDKIM" ] || fail "$MFDKIM not built"

# --- the lab: SPF (from dnslab.sh: lab.test allows 127.0.0.1, fail.lab.test
# only 192.0.2.1), a DKIM key dkimpy signs with, DMARC policies ------------
mkdir -p "$TMP/keys"
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out "$TMP/keys/rsa.pem" 2>/dev/null ||
	fail "rsa key"
openssl pkey -in "$TMP/keys/rsa.pem" -traditional >"$TMP/keys/rsa-pkcs1.pem" 2>/dev/null ||
	cp "$TMP/keys/rsa.pem" "$TMP/keys/rsa-pkcs1.pem"
REC=$("$MFDKIM" record "$TMP/keys/rsa.pem") || fail "dkim record"
txt() { local s=$1 out=""; while [ -n "$s" ]; do out="$out \"${s:0:200}\""; s=${s:200}; done; echo "$out"; }
LAB_EXTRA_RECORDS="sel._domainkey IN TXT $(txt "$REC")
_dmarc IN TXT \"v=DMARC1; p=reject\"
_dmarc.quar IN TXT \"v=DMARC1; p=quarantine\""
dnslab_start "$TMP/lab"

# --- the embedded default, its dnsauth pointed at the lab -----------------
RUN="$TMP/run"; CONF="$RUN/config/mailfleet.conf"
MAILFLEET_PASSWORD=$PASSWORD "$BIN/mailfleet" quickstart --local --dir "$RUN" \
	--port-offset "$OFF" >/dev/null || fail "quickstart"
grep -q '^    resolver none$' "$CONF" || fail "the embedded default should have resolver none"
sed -i "s|^    resolver none\$|    resolver forward 127.0.0.1@$LAB_UNBOUND_PORT\\
    trust-anchor $LAB_ANCHOR\\
    timeout 3s|" "$CONF"
"$BIN/mailfleet" config check -c "$CONF" >/dev/null || fail "config check"
start_embedded

# send FILE MAILFROM: sends the file's bytes as they are; prints the reply
# to DATA ("250 2.0.0 ...") or the refusal.
send() {
	python3 - "$P_SMTP" "$1" "$2" <<'PY'
import smtplib, sys
port, path, mail_from = int(sys.argv[1]), sys.argv[2], sys.argv[3]
msg = open(path, "rb").read()
s = smtplib.SMTP("127.0.0.1", port, local_hostname="host1.lab.test", timeout=120)
s.ehlo("host1.lab.test")
s.mail(mail_from)
s.rcpt("mail@localhost")
code, text = s.data(msg)
print(code, text.decode())
s.quit()
PY
}
# fetch MAILBOX MESSAGE-ID: prints the stored message's header, or nothing.
fetch() {
	python3 - "$P_IMAP" "$PASSWORD" "$1" "$2" <<'PY'
import imaplib, sys
port, password, mailbox, mid = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
m = imaplib.IMAP4("127.0.0.1", port)
m.login("mail@localhost", password)
typ, data = m.select(mailbox)
assert typ == "OK", data
typ, data = m.search(None, "HEADER", "Message-ID", mid)
for i in data[0].split():
    typ, d = m.fetch(i, "(BODY.PEEK[HEADER])")
    sys.stdout.write(d[0][1].decode("utf-8", "replace").replace("\r\n", "\n"))
m.logout()
PY
}
msg() { # ID FROM SUBJECT
	printf 'From: %s\r\nTo: mail@localhost\r\nSubject: %s\r\nDate: Sun, 22 Nov 2026 16:00:00 +0000\r\nMessage-ID: <%s@lab.test>\r\n\r\nHello,\r\nthis is a test.\r\n' \
		"$2" "$3" "$1"
}

# --- pass: signed by dkimpy, SPF allows 127.0.0.1, DMARC aligned -----------
msg pass1 'Someone <someone@lab.test>' 'auth pass' >"$TMP/pass.eml"
cat >"$TMP/sign.py" <<'PY'
import sys, dkim
key = open(sys.argv[1], "rb").read()
msg = open(sys.argv[2], "rb").read()
sig = dkim.sign(msg, b"sel", b"lab.test", key, canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
sys.stdout.buffer.write(sig + msg)
PY
$PY "$TMP/sign.py" "$TMP/keys/rsa-pkcs1.pem" "$TMP/pass.eml" >"$TMP/pass-signed.eml" || fail "dkimpy sign"
out=$(send "$TMP/pass-signed.eml" bounce@lab.test) || fail "send: $out"
[[ "$out" == "250 2.0.0 "* ]] || fail "signed message from lab.test refused: $out"
hdr=$(fetch INBOX pass1@lab.test)
[ -n "$hdr" ] || fail "signed message not in INBOX"
echo "$hdr" >"$TMP/pass.hdr"
[ "$(grep -c '^Authentication-Results:' "$TMP/pass.hdr")" = 1 ] || fail "one A-R expected: $hdr"
# Unfolded A-R, one method per line.
ar=$(awk '/^Authentication-Results:/ { on = 1; print; next } on && /^[ \t]/ { print; next } { on = 0 }' \
	"$TMP/pass.hdr")
echo "$ar" | grep -q '^Authentication-Results: localhost;' || fail "authserv-id: $ar"
echo "$ar" | grep -q 'iprev=pass (no dnssec) policy.iprev=127.0.0.1 (host1.lab.test)' || fail "iprev: $ar"
echo "$ar" | grep -q 'spf=pass (dnssec) smtp.mailfrom=lab.test' || fail "spf: $ar"
echo "$ar" | grep -q 'dkim=pass (dnssec) header.d=lab.test header.i=@lab.test header.s=sel header.a=rsa-sha256 header.b=' ||
	fail "dkim: $ar"
echo "$ar" | grep -q 'dmarc=pass (p=reject, dnssec) header.from=lab.test policy.dmarc=none' ||
	fail "dmarc: $ar"
ok "signed message from lab.test: iprev, spf, dkim, dmarc pass; DNSSEC-authentic answers marked (dnssec)"
# Order: Return-Path, Delivered-To, Authentication-Results, Received, then
# the message as sent (DKIM-Signature first).
order=$(grep -o '^[A-Za-z-]*:' "$TMP/pass.hdr" | head -5 | tr '\n' ' ')
[ "$order" = "Return-Path: Delivered-To: Authentication-Results: Received: DKIM-Signature: " ] ||
	fail "header order: $order"
ok "Authentication-Results below Return-Path/Delivered-To, above our Received"

# --- a forged Authentication-Results with our authserv-id (RFC 8601 5) ----
{ printf 'Authentication-Results: LOCALHOST; dkim=pass header.d=lab.test\r\n'
  printf 'Authentication-Results: other.example; spf=pass\r\n'
  msg forged-ar 'Someone <someone@lab.test>' 'auth forged'; } >"$TMP/forged-ar.eml"
out=$(send "$TMP/forged-ar.eml" bounce@lab.test) || fail "send: $out"
[[ "$out" == "250 2.0.0 "* ]] || fail "message with a forged A-R refused: $out"
hdr=$(fetch INBOX forged-ar@lab.test)
[ "$(echo "$hdr" | grep -c '^Authentication-Results: localhost;')" = 1 ] || fail "ours: $hdr"
echo "$hdr" | grep -q '^X-Forged-Authentication-Results: LOCALHOST; dkim=pass' || fail "forged kept: $hdr"
echo "$hdr" | grep -q '^Authentication-Results: other.example; spf=pass' || fail "foreign A-R: $hdr"
[ -z "$(find "$RUN/data/blobs/incoming" -type f 2>/dev/null)" ] || fail "incoming blobs left"
ok "Authentication-Results claiming our authserv-id obscured (X-Forged-), others kept"

# --- DMARC p=reject: SPF fails (fail.lab.test allows only 192.0.2.1), no DKIM
msg reject1 'Someone <someone@lab.test>' 'auth reject' >"$TMP/reject.eml"
out=$(send "$TMP/reject.eml" x@fail.lab.test 2>&1)
[[ "$out" == *"550"*"5.7.26"* ]] || fail "p=reject failure not refused with 550 5.7.26: $out"
[ -z "$(fetch INBOX reject1@lab.test)$(fetch Junk reject1@lab.test)" ] || fail "rejected message delivered"
ok "DMARC p=reject failing SPF and DKIM: 550 5.7.26, nothing delivered"

# --- the signed message tampered: DKIM fails too ---------------------------
sed 's/this is a test/this is a forgery/' "$TMP/pass-signed.eml" | sed 's/pass1@/forged1@/' >"$TMP/forged.eml"
out=$(send "$TMP/forged.eml" x@fail.lab.test 2>&1)
[[ "$out" == *"550"*"5.7.26"* ]] || fail "tampered signed message not refused: $out"
ok "tampered signed message from a p=reject domain: 550 5.7.26"

# --- DMARC p=quarantine: delivered to Junk --------------------------------
msg quar1 'Someone <someone@quar.lab.test>' 'auth quarantine' >"$TMP/quar.eml"
out=$(send "$TMP/quar.eml" x@fail.lab.test) || fail "send: $out"
[[ "$out" == "250 2.0.0 "* ]] || fail "quarantined message refused: $out"
[ -z "$(fetch INBOX quar1@lab.test)" ] || fail "quarantined message in INBOX"
hdr=$(fetch Junk quar1@lab.test)
[ -n "$hdr" ] || fail "quarantined message not in Junk"
echo "$hdr" | grep -q 'dmarc=fail (p=quarantine, dnssec) header.from=quar.lab.test policy.dmarc=quarantine' ||
	fail "quarantine A-R: $hdr"
ok "DMARC p=quarantine failing: delivered to Junk with dmarc=fail in Authentication-Results"

# --- several author domains: DMARC permerror, refused ---------------------
msg multi1 'a@lab.test, b@quar.lab.test' 'auth multi' >"$TMP/multi.eml"
out=$(send "$TMP/multi.eml" bounce@lab.test 2>&1)
[[ "$out" == *"550"*"5.7.1"*"several author domains"* ]] || fail "several authors: $out"
ok "several author domains in From: 550 5.7.1"

# --- dnsauth hung: 451 4.4.3, nothing delivered, no incoming blob ---------
DNSAUTH_PID=$(pgrep -f "mailfleet-dnsauth -c $CONF" | head -1)
[ -n "$DNSAUTH_PID" ] || fail "dnsauth pid"
kill -STOP "$DNSAUTH_PID"
msg hung1 'Someone <someone@lab.test>' 'auth hung' >"$TMP/hung.eml"
out=$(send "$TMP/hung.eml" bounce@lab.test 2>&1)
kill -CONT "$DNSAUTH_PID"
[[ "$out" == *"451"*"4.4.3"* ]] || fail "dnsauth hung: $out"
sleep 2   # a resumed dnsauth answers late: nothing may come of it
[ -z "$(find "$RUN/data/blobs/incoming" -type f 2>/dev/null)" ] || fail "incoming blob left"
[ -z "$(fetch INBOX hung1@lab.test)$(fetch Junk hung1@lab.test)" ] || fail "message delivered without the check"
ok "dnsauth not answering: 451 4.4.3, nothing delivered, no incoming blob"

# And with dnsauth back, the same message goes through.
sed 's/hung1@/hung2@/' "$TMP/hung.eml" >"$TMP/hung2.eml"
out=$(send "$TMP/hung2.eml" bounce@lab.test) || fail "send: $out"
[[ "$out" == "250 2.0.0 "* ]] || fail "after dnsauth resumed: $out"
ok "dnsauth resumed: accepted again"

grep 'pkg=smtp-in' "$TMP/run.out" | grep -q 'l=error' && { grep 'pkg=smtp-in' "$TMP/run.out" | grep 'l=error'; fail "errors in the smtp-in log"; }
stop_embedded
echo "test_smtp_in_auth: $CHECKS checks passed"

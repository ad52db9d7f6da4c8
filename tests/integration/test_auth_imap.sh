#!/bin/bash
# IMAP authentication on the embedded default with clients mailfleet did not
# write: cyrus imtest (SCRAM-SHA-256, SCRAM-SHA-1), GNU gsasl (SCRAM-SHA-256
# -PLUS and SCRAM-SHA-1-PLUS with tls-exporter on TLS 1.3, SCRAM without
# channel binding, CRAM-MD5, PLAIN, LOGIN), python imaplib (LOGIN,
# CRAM-MD5, AUTHENTICATE PLAIN with SASL-IR), wrong passwords refused for
# every mechanism, and the attempts listed by `mailfleet account
# loginattempts`.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/auth_setup.sh"

auth_setup

# --- capabilities: strongest first, -PLUS only under TLS ---
caps=$(python3 - "$P_IMAP" "$P_IMAPS" <<'PY'
import imaplib, ssl, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
print("plain", " ".join(m.capabilities))
m.logout()
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[2]), ssl_context=ctx)
print("tls", " ".join(m.capabilities))
m.logout()
PY
) || fail "capabilities"
echo "$caps" | grep -q '^tls .*AUTH=SCRAM-SHA-256-PLUS AUTH=SCRAM-SHA-1-PLUS AUTH=SCRAM-SHA-256 AUTH=SCRAM-SHA-1 AUTH=CRAM-MD5 AUTH=PLAIN AUTH=LOGIN' ||
	fail "TLS capabilities not in order of strength: $caps"
echo "$caps" | grep '^plain' | grep -q 'PLUS' && fail "-PLUS offered without TLS: $caps"
ok "AUTH= capabilities in order of strength, -PLUS only with TLS"

# --- cyrus imtest ---
for mech in SCRAM-SHA-256 SCRAM-SHA-1; do
	out=$(echo "a logout" | timeout 30 imtest -t "" -p "$P_IMAP" -m "$mech" -a "$USER" \
		-w "$PASSWORD" 127.0.0.1 2>&1)
	echo "$out" | grep -q '^Authenticated\.' || fail "imtest $mech: $out"
	out=$(echo "a logout" | timeout 30 imtest -t "" -p "$P_IMAP" -m "$mech" -a "$USER" \
		-w wrong-password 127.0.0.1 2>&1)
	echo "$out" | grep -q 'NO \[AUTHENTICATIONFAILED\]' || fail "imtest $mech wrong password: $out"
done
out=$(echo "a logout" | timeout 30 imtest -s -p "$P_IMAPS" -m SCRAM-SHA-256 -a "$USER" \
	-w "$PASSWORD" 127.0.0.1 2>&1)
echo "$out" | grep -q '^Authenticated\.' || fail "imtest SCRAM-SHA-256 on 993: $out"
ok "imtest SCRAM-SHA-256 and SCRAM-SHA-1 (STARTTLS and 993), wrong password refused"

# --- GNU gsasl ---
for mech in SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS CRAM-MD5 PLAIN LOGIN; do
	gsasl_login imap "$P_IMAP" "$mech" "$PASSWORD" || fail "gsasl imap $mech"
	gsasl_login imap "$P_IMAP" "$mech" wrong-password && fail "gsasl imap $mech wrong password"
done
gsasl_login imap "$P_IMAP" SCRAM-SHA-256 "$PASSWORD" --no-cb || fail "gsasl SCRAM-SHA-256 --no-cb"
# A client that can bind but believes the server cannot ("y" flag) while
# the server offers -PLUS: a downgrade, refused (RFC 5802 6).
gsasl_login imap "$P_IMAP" SCRAM-SHA-256 "$PASSWORD" && fail "gsasl SCRAM with y flag accepted"
ok "gsasl SCRAM-SHA-256-PLUS, SCRAM-SHA-1-PLUS, SCRAM-SHA-256, CRAM-MD5, PLAIN, LOGIN; downgrade refused"

# --- python imaplib ---
python3 - "$P_IMAP" "$USER" "$PASSWORD" <<'PY' || fail "imaplib"
import base64, imaplib, sys
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
m = imaplib.IMAP4("127.0.0.1", port)
m.login_cram_md5(user, pw)
m.logout()
m = imaplib.IMAP4("127.0.0.1", port)
try:
    m.login_cram_md5(user, "wrong")
    raise SystemExit("CRAM-MD5 wrong password accepted")
except imaplib.IMAP4.error as e:
    assert "AUTHENTICATIONFAILED" in str(e), e
m.logout()
# SASL-IR (RFC 4959): imaplib sends the initial response on the command line.
m = imaplib.IMAP4("127.0.0.1", port)
typ, data = m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (user, pw)).encode())
assert typ == "OK", (typ, data)
m.logout()
# "*" cancels (RFC 9051 6.2.2).
m = imaplib.IMAP4("127.0.0.1", port)
tag = m._new_tag()
m.send(tag + b" AUTHENTICATE SCRAM-SHA-256\r\n")
assert m.readline().startswith(b"+"), "continuation"
m.send(b"*\r\n")
line = m.readline()
assert line.startswith(tag + b" BAD"), line
m.logout()
PY
ok "imaplib CRAM-MD5, AUTHENTICATE PLAIN with SASL-IR, cancel with *"

# --- login attempts ---
att=$("$MF" account loginattempts mail -c "$CONF") || fail "account loginattempts"
for want in "result=ok protocol=imap mechanism=SCRAM-SHA-256-PLUS" \
	    "result=ok protocol=imap mechanism=SCRAM-SHA-1-PLUS" \
	    "result=ok protocol=imap mechanism=CRAM-MD5" \
	    "result=badcreds protocol=imap mechanism=SCRAM-SHA-256 " \
	    "result=badcreds protocol=imap mechanism=CRAM-MD5"; do
	echo "$att" | grep -q "$want" || fail "no login attempt '$want' in: $att"
done
# Repeats are grouped: imtest's SCRAM-SHA-256 logins over STARTTLS and 993
# and gsasl's --no-cb one have equal details: one row.
echo "$att" | grep 'result=ok protocol=imap mechanism=SCRAM-SHA-256 .*tls="TLS' |
	grep -q 'count=[3-9]' || fail "repeated SCRAM-SHA-256 logins not grouped: $att"
ok "login attempts listed with protocol, mechanism, result, counts"

stop_embedded
echo "test_auth_imap: $CHECKS checks passed"

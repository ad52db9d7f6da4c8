#!/bin/bash
# TLS client certificates on the embedded default: certificates made by
# `openssl req`, registered with `mailfleet tlspubkey add`; swaks sends
# through submission with one and no AUTH; python imaplib gets PREAUTH with
# one, and with a --no-preauth key logs in with AUTHENTICATE EXTERNAL;
# an unregistered certificate gets neither; another mechanism must log in
# the certificate's account; the logins are listed with the key's
# fingerprint.  Needs the imap and submission TLS contexts to request
# client certificates (MF_TLS_REQUEST_CLIENT_CERT).
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/auth_setup.sh"

auth_setup

for n in laptop phone stranger; do
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj "/CN=$n" -keyout "$TMP/$n.key" -out "$TMP/$n.crt" 2>/dev/null ||
		fail "openssl req $n"
done
"$MF" tlspubkey add mail laptop "$TMP/laptop.crt" -c "$CONF" >/dev/null || fail "tlspubkey add laptop"
"$MF" tlspubkey add mail phone "$TMP/phone.crt" --no-preauth -c "$CONF" >/dev/null ||
	fail "tlspubkey add phone"
"$MF" tlspubkey list mail -c "$CONF" | grep -q phone || fail "tlspubkey list"
FP_LAPTOP=$(openssl x509 -in "$TMP/laptop.crt" -pubkey -noout | openssl pkey -pubin -outform DER |
	sha256sum | cut -d' ' -f1)
ok "client certificates made by openssl req, registered with mailfleet tlspubkey"

# --- submission: swaks with a registered certificate needs no AUTH ---
out=$(swaks --server 127.0.0.1 --port "$P_SUB" --tls --tls-cert "$TMP/laptop.crt" \
	--tls-key "$TMP/laptop.key" --from "$USER" --to "$USER" --header "Subject: by cert" \
	--body "sent with a client certificate" 2>&1) || fail "swaks with client certificate: $out"
echo "$out" | grep -q '<~  250 2.0.0' || fail "swaks with client certificate: $out"
echo "$out" | grep -q '<~  250-AUTH EXTERNAL SCRAM-SHA-256-PLUS ' ||
	fail "EXTERNAL not offered first: $out"
out=$(swaks --server 127.0.0.1 --port "$P_SUBS" --tls-on-connect --tls-cert "$TMP/laptop.crt" \
	--tls-key "$TMP/laptop.key" --from "$USER" --to "$USER" 2>&1) ||
	fail "swaks on 465 with client certificate: $out"
out=$(swaks --server 127.0.0.1 --port "$P_SUB" --tls --tls-cert "$TMP/stranger.crt" \
	--tls-key "$TMP/stranger.key" --from "$USER" --to "$USER" 2>&1) &&
	fail "unregistered certificate sent mail: $out"
echo "$out" | grep -q '530 5.7.0' || fail "unregistered certificate: $out"
ok "swaks sends with a registered certificate (587, 465) without AUTH; a stranger's gets 530"

# --- IMAP: PREAUTH, EXTERNAL, and the same-account rule ---
python3 - "$P_IMAP" "$P_IMAPS" "$TMP" "$USER" "$PASSWORD" <<'PY' || fail "imaplib with certificates"
import base64, imaplib, ssl, sys
port, sport, tmp, user, pw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def ctx(name):
    c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE
    if name:
        c.load_cert_chain("%s/%s.crt" % (tmp, name), "%s/%s.key" % (tmp, name))
    return c
# PREAUTH on 993 with the laptop key.
m = imaplib.IMAP4_SSL("127.0.0.1", sport, ssl_context=ctx("laptop"))
assert m.state == "AUTH", m.state
assert m.welcome.startswith(b"* PREAUTH"), m.welcome
typ, data = m.select("INBOX")
assert typ == "OK", (typ, data)
m.logout()
# PREAUTH cannot come after STARTTLS (the greeting is sent), but EXTERNAL works.
m = imaplib.IMAP4("127.0.0.1", port)
m.starttls(ssl_context=ctx("laptop"))
assert "AUTH=EXTERNAL" in m.capabilities, m.capabilities
typ, data = m.authenticate("EXTERNAL", lambda _: b"")
assert typ == "OK", (typ, data)
m.logout()
# The phone key is --no-preauth: not logged in, AUTHENTICATE EXTERNAL is.
m = imaplib.IMAP4_SSL("127.0.0.1", sport, ssl_context=ctx("phone"))
assert m.state == "NONAUTH", m.state
assert "AUTH=EXTERNAL" in m.capabilities and m.capabilities.index("AUTH=EXTERNAL") == \
    min(i for i, c in enumerate(m.capabilities) if c.startswith("AUTH=")), m.capabilities
typ, data = m.authenticate("EXTERNAL", lambda _: user.encode())
assert typ == "OK", (typ, data)
m.logout()
# With a certificate, a password login must be for the same account.
m = imaplib.IMAP4_SSL("127.0.0.1", sport, ssl_context=ctx("phone"))
typ, data = m.login(user, pw)
assert typ == "OK", (typ, data)
m.logout()
# A stranger's certificate: no PREAUTH, no EXTERNAL.
m = imaplib.IMAP4_SSL("127.0.0.1", sport, ssl_context=ctx("stranger"))
assert m.state == "NONAUTH", m.state
assert "AUTH=EXTERNAL" not in m.capabilities, m.capabilities
try:
    m.authenticate("EXTERNAL", lambda _: b"")
    raise SystemExit("EXTERNAL without a registered key accepted")
except imaplib.IMAP4.error:
    pass
m.logout()
PY
ok "imaplib: PREAUTH with a registered key, EXTERNAL after STARTTLS and for a --no-preauth key, none for a stranger"

att=$("$MF" account loginattempts mail -c "$CONF") || fail "account loginattempts"
echo "$att" | grep "result=ok protocol=imap mechanism=EXTERNAL" | grep -q "tlskey=$FP_LAPTOP" ||
	fail "imap EXTERNAL login with the laptop key not listed: $att"
echo "$att" | grep "result=ok protocol=submission mechanism=EXTERNAL" | grep -q "tlskey=$FP_LAPTOP" ||
	fail "submission EXTERNAL login not listed: $att"
ok "EXTERNAL logins listed with the key's fingerprint"

stop_embedded
echo "test_auth_external: $CHECKS checks passed"

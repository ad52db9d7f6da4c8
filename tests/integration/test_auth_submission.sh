#!/bin/bash
# Submission authentication on the embedded default with clients mailfleet
# did not write: swaks (PLAIN, LOGIN, and sending after AUTH), cyrus
# smtptest (SCRAM-SHA-256, SCRAM-SHA-1), GNU gsasl (SCRAM-SHA-256-PLUS,
# SCRAM-SHA-1-PLUS, CRAM-MD5, PLAIN), python smtplib (CRAM-MD5), wrong
# passwords refused, AUTH only under TLS, and the attempts listed by
# `mailfleet account loginattempts`.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/auth_setup.sh"

auth_setup

# --- EHLO: AUTH only under TLS, strongest first ---
ehlo=$(python3 - "$P_SUB" <<'PY'
import smtplib, ssl, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.ehlo("client.example")
print("plain", s.esmtp_features.get("auth", "-"))
code, msg = s.docmd("AUTH", "PLAIN AG1haWxAbG9jYWxob3N0AHg=")
print("plainauth", code)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s.starttls(context=ctx)
s.ehlo("client.example")
print("tls", s.esmtp_features.get("auth", "-"))
s.quit()
PY
) || fail "EHLO"
echo "$ehlo" | grep -qx 'plain -' || fail "AUTH offered before TLS: $ehlo"
echo "$ehlo" | grep -qx 'plainauth 538' || fail "AUTH before TLS not refused with 538: $ehlo"
echo "$ehlo" | grep -qx 'tls  *SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5 PLAIN LOGIN' ||
	fail "EHLO AUTH list under TLS: $ehlo"
ok "EHLO lists AUTH (strongest first) only under TLS; AUTH before TLS gets 538"

# --- swaks: PLAIN and LOGIN, then a message ---
for mech in PLAIN LOGIN; do
	out=$(swaks --server 127.0.0.1 --port "$P_SUB" --tls --auth "$mech" --auth-user "$USER" \
		--auth-password "$PASSWORD" --from "$USER" --to "$USER" --header "Subject: $mech" \
		--body "sent after AUTH $mech" 2>&1) || fail "swaks $mech: $out"
	echo "$out" | grep -q '<~  235 ' || fail "swaks $mech: no 235: $out"
	echo "$out" | grep -q '<~  250 .*queued' || echo "$out" | grep -q '<~  250 2.0.0' ||
		fail "swaks $mech: message not accepted: $out"
	out=$(swaks --server 127.0.0.1 --port "$P_SUB" --tls --auth "$mech" --auth-user "$USER" \
		--auth-password wrong-password --from "$USER" --to "$USER" 2>&1) &&
		fail "swaks $mech wrong password accepted: $out"
	echo "$out" | grep -q '<~\* *535 5.7.8' || fail "swaks $mech wrong password: $out"
done
out=$(swaks --server 127.0.0.1 --port "$P_SUBS" --tls-on-connect --auth PLAIN --auth-user "$USER" \
	--auth-password "$PASSWORD" --quit-after AUTH 2>&1) || fail "swaks on 465: $out"
ok "swaks AUTH PLAIN and LOGIN (587 STARTTLS, 465), message accepted, wrong password 535"

# --- cyrus smtptest ---
for mech in SCRAM-SHA-256 SCRAM-SHA-1; do
	out=$(echo QUIT | timeout 30 smtptest -t "" -p "$P_SUB" -m "$mech" -a "$USER" \
		-w "$PASSWORD" 127.0.0.1 2>&1)
	echo "$out" | grep -q '^Authenticated\.' || fail "smtptest $mech: $out"
	out=$(echo QUIT | timeout 30 smtptest -t "" -p "$P_SUB" -m "$mech" -a "$USER" \
		-w wrong-password 127.0.0.1 2>&1)
	echo "$out" | grep -q '^S: 535 5.7.8' || fail "smtptest $mech wrong password: $out"
done
ok "smtptest SCRAM-SHA-256 and SCRAM-SHA-1, wrong password 535"

# --- GNU gsasl ---
for mech in SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS CRAM-MD5 PLAIN; do
	gsasl_login smtp "$P_SUB" "$mech" "$PASSWORD" || fail "gsasl smtp $mech"
	gsasl_login smtp "$P_SUB" "$mech" wrong-password && fail "gsasl smtp $mech wrong password"
done
gsasl_login smtp "$P_SUB" SCRAM-SHA-256 "$PASSWORD" --no-cb || fail "gsasl smtp SCRAM --no-cb"
ok "gsasl SCRAM-SHA-256-PLUS, SCRAM-SHA-1-PLUS, SCRAM-SHA-256, CRAM-MD5, PLAIN"

# --- python smtplib CRAM-MD5 (its own HMAC-MD5) and "*" ---
python3 - "$P_SUB" "$USER" "$PASSWORD" <<'PY' || fail "smtplib"
import smtplib, ssl, sys
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", port, timeout=20)
s.starttls(context=ctx)
s.ehlo("client.example")
s.user, s.password = user, pw
code, msg = s.auth("CRAM-MD5", s.auth_cram_md5, initial_response_ok=False)
assert code == 235, (code, msg)
s.quit()
s = smtplib.SMTP("127.0.0.1", port, timeout=20)
s.starttls(context=ctx)
s.ehlo("client.example")
code, msg = s.docmd("AUTH", "SCRAM-SHA-256")
assert code == 334, (code, msg)
code, msg = s.docmd("*")
assert code == 501, (code, msg)
s.quit()
PY
ok "smtplib CRAM-MD5; '*' cancels with 501"

# --- login attempts ---
att=$("$MF" account loginattempts mail -c "$CONF") || fail "account loginattempts"
for want in "result=ok protocol=submission mechanism=SCRAM-SHA-256-PLUS" \
	    "result=ok protocol=submission mechanism=SCRAM-SHA-1 " \
	    "result=ok protocol=submission mechanism=CRAM-MD5" \
	    "result=ok protocol=submission mechanism=LOGIN" \
	    "result=badcreds protocol=submission mechanism=PLAIN" \
	    "result=badcreds protocol=submission mechanism=SCRAM-SHA-256 "; do
	echo "$att" | grep -q "$want" || fail "no login attempt '$want' in: $att"
done
ok "login attempts listed for submission"

stop_embedded
echo "test_auth_submission: $CHECKS checks passed"

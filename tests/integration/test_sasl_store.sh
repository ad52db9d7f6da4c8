#!/bin/bash
# The store API side of authentication (issue 7) on the embedded default:
# setting a password computes SCRAM material, a SASL server fed by
# store.v1.credentials (tests/tools/mf-sasl, libshared sasl + storeclient)
# completes SCRAM-SHA-256, SCRAM-SHA-1, -PLUS and PLAIN against libshared's
# client, wrong passwords and channel-binding mismatches fail, é typed
# decomposed works; login attempts are recorded, grouped and listed; TLS
# public keys are added, found by fingerprint across accounts, removed.
. "$(dirname "$0")/lib/common.sh"

TOOL="$BUILD/tools/mf-sasl"
[ -x "$TOOL" ] || fail "$TOOL missing (make $BUILD/tools/mf-sasl)"
start_embedded
S() { "$TOOL" -c "$CONF" "$@"; }

# The quickstart password came from passwords.init, which carries the
# scrypt hash and SCRAM keys: PLAIN and SCRAM work at once, with the right
# password only.
wait_for 20 bash -c "'$TOOL' -c '$CONF' exchange PLAIN mail@localhost '$PASSWORD' tls | grep -q '^sasl ok account=mail '" ||
	fail "PLAIN with the quickstart password: $(S exchange PLAIN mail@localhost "$PASSWORD" tls)"
S exchange SCRAM-SHA-256 mail@localhost "$PASSWORD" | grep -q '^sasl ok account=mail .*verified=1' ||
	fail "SCRAM with the imported keys: $(S exchange SCRAM-SHA-256 mail@localhost "$PASSWORD")"
S exchange SCRAM-SHA-1 mail@localhost "$PASSWORD" | grep -q '^sasl ok account=mail .*verified=1' ||
	fail "SCRAM-SHA-1 with the imported keys: $(S exchange SCRAM-SHA-1 mail@localhost "$PASSWORD")"
S exchange SCRAM-SHA-256 mail@localhost wrong-password | grep -q '^sasl failed credentials' ||
	fail "SCRAM with a wrong password: $(S exchange SCRAM-SHA-256 mail@localhost wrong-password)"
ok "imported password: PLAIN and SCRAM work from passwords.init"

NEWPW="caf$(printf '\xc3\xa9') pencil"
NFDPW="cafe$(printf '\xcc\x81') pencil"
S setpassword mail "$NEWPW" | grep -q '^password set' || fail "set password"
for m in SCRAM-SHA-256 SCRAM-SHA-1; do
	out=$(S exchange $m mail@localhost "$NEWPW")
	echo "$out" | grep -q '^sasl ok account=mail login=mail@localhost verified=1' || fail "$m: $out"
done
out=$(S exchange SCRAM-SHA-256-PLUS mail@localhost "$NEWPW" cb)
echo "$out" | grep -q '^sasl ok account=mail .*verified=1' || fail "SCRAM-SHA-256-PLUS: $out"
out=$(S exchange SCRAM-SHA-256-PLUS mail@localhost "$NEWPW" cbmitm)
echo "$out" | grep -q '^sasl failed channel-binding' || fail "PLUS mismatch accepted: $out"
out=$(S exchange SCRAM-SHA-256 mail@localhost "wrong")
echo "$out" | grep -q '^sasl failed credentials' || fail "wrong SCRAM password: $out"
out=$(S exchange SCRAM-SHA-256 nobody@localhost "$NEWPW")
echo "$out" | grep -q '^sasl failed credentials' || fail "unknown user: $out"
ok "SCRAM-SHA-256, SCRAM-SHA-1, SCRAM-SHA-256-PLUS from store material; wrong proof, unknown user and channel-binding mismatch fail"

out=$(S exchange PLAIN mail@localhost "$NFDPW" tls)
echo "$out" | grep -q '^sasl ok account=mail' || fail "NFD password over PLAIN: $out"
out=$(S exchange SCRAM-SHA-256 mail@localhost "$NFDPW")
echo "$out" | grep -q '^sasl ok account=mail' || fail "NFD password over SCRAM: $out"
out=$(S exchange PLAIN mail@localhost "$PASSWORD" tls)
echo "$out" | grep -q '^sasl failed credentials' || fail "old password still works: $out"
out=$(S exchange CRAM-MD5 mail@localhost "$NEWPW")
echo "$out" | grep -q '^sasl failed credentials' || fail "CRAM-MD5 without the account allowing it: $out"
ok "PRECIS: é composed and decomposed both log in; CRAM-MD5 off by default"

M() { "$BUILD/bin/mailfleet" "$@" -c "$CONF"; }
M account options mail | grep -q '^account mail: cram-md5 no, generated-only no$' ||
	fail "options: $(M account options mail)"
M account options mail --cram-md5 yes | grep -q '^account mail: cram-md5 yes, generated-only no$' ||
	fail "options --cram-md5 yes"
out=$(S exchange CRAM-MD5 mail@localhost "$NEWPW")
echo "$out" | grep -q '^sasl failed credentials' || fail "CRAM-MD5 before a new password: $out"
S setpassword mail "$NEWPW" | grep -q '^password set' || fail "set password"
out=$(S exchange CRAM-MD5 mail@localhost "$NEWPW")
echo "$out" | grep -q '^sasl ok account=mail' || fail "CRAM-MD5 allowed: $out"
M account options mail --cram-md5 no --generated-only yes |
	grep -q '^account mail: cram-md5 no, generated-only yes$' || fail "options off"
out=$(S exchange CRAM-MD5 mail@localhost "$NEWPW")
echo "$out" | grep -q '^sasl failed credentials' || fail "CRAM-MD5 after disallowing: $out"
M account options mail --cram-md5 maybe >/dev/null 2>&1 && fail "bad option value accepted"
ok "account options: CRAM-MD5 material only when allowed (from the next password), generated-only flag"

for i in 1 2 3; do S attempt mail imap PLAIN mail@localhost 192.0.2.7 badcreds >/dev/null || fail attempt; done
S attempt mail submission SCRAM-SHA-256 mail@localhost 192.0.2.8 ok >/dev/null || fail attempt
out=$(S attempts mail)
echo "$out" | grep -q '^attempt count=3 protocol=imap mechanism=PLAIN login=mail@localhost ip=192.0.2.7 tls="TLSv1.3 TLS_AES_128_GCM_SHA256" result=badcreds$' ||
	fail "grouped attempts: $out"
[ "$(echo "$out" | head -1 | grep -c 'result=ok')" = 1 ] || fail "most recent first: $out"
[ "$(S attempts mail 1 | wc -l)" = 1 ] || fail "limit"
S attempts nosuch | grep -q '^error permanent' || fail "attempts of an unknown account"
ok "login attempts recorded over NATS, grouped with a count, listed newest first"

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/k.pem" 2>/dev/null
openssl pkey -in "$TMP/k.pem" -pubout -outform DER -out "$TMP/k.der" 2>/dev/null || fail "openssl"
fp=$(openssl dgst -sha256 -r "$TMP/k.der" | cut -d' ' -f1)
out=$(S keyadd mail laptop "$TMP/k.der" mail@localhost nopreauth)
[ "$out" = "key added $fp" ] || fail "keyadd: $out (want $fp)"
S keyadd mail again "$TMP/k.der" mail@localhost | grep -q '^error permanent .*registered already' ||
	fail "duplicate key accepted"
S keyadd mail other "$TMP/k.pem" mail@localhost | grep -q '^error permanent' || fail "PEM accepted as DER"
S keyadd mail other "$TMP/k.der" nobody@example.org | grep -q '^error permanent .*not an address' ||
	fail "foreign login address accepted"
S keylist mail | grep -q "^key $fp name=laptop login=mail@localhost preauth=no$" || fail "keylist: $(S keylist mail)"
S keylookup "$fp" | grep -q '^key found account=mail name=laptop login=mail@localhost$' ||
	fail "keylookup: $(S keylookup "$fp")"
S keyremove mail "$fp" | grep -q '^key removed' || fail keyremove
S keylookup "$fp" | grep -q '^key unknown' || fail "removed key still found"
S keyremove mail "$fp" | grep -q '^key not found' || fail "second remove"
ok "TLS public keys: add (DER SPKI, unique, own address), list, lookup by fingerprint, remove"

# The CLI: a client certificate made by openssl req, only its key counts.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/c.key" \
	-out "$TMP/c.pem" -days 2 -subj /CN=laptop 2>/dev/null || fail "openssl req"
cfp=$(openssl x509 -in "$TMP/c.pem" -pubkey -noout | openssl pkey -pubin -outform DER |
	openssl dgst -sha256 -r | cut -d' ' -f1)
out=$(M tlspubkey add mail laptop "$TMP/c.pem" --no-preauth) || fail "tlspubkey add: $out"
echo "$out" | grep -q "^key $cfp added to account mail (login mail@localhost, no IMAP PREAUTH)" ||
	fail "tlspubkey add: $out"
M tlspubkey list mail | grep -q "^$cfp name=laptop login=mail@localhost preauth=no$" ||
	fail "tlspubkey list: $(M tlspubkey list mail)"
S keylookup "$cfp" | grep -q '^key found account=mail ' || fail "CLI key not found by fingerprint"
M tlspubkey add mail again "$TMP/c.pem" >/dev/null 2>&1 && fail "same key added twice"
M tlspubkey add mail junk /etc/hostname >/dev/null 2>&1 && fail "junk file accepted"
M tlspubkey remove mail "$cfp" | grep -q "^key $cfp removed" || fail "tlspubkey remove"
M tlspubkey remove mail "$cfp" >/dev/null 2>&1 && fail "second remove succeeded"
ok "mailfleet tlspubkey add (openssl req certificate) / list / remove"

out=$(M account loginattempts mail)
echo "$out" | grep -q '^last=20[0-9-]*T[0-9:]*Z first=.* count=3 result=badcreds protocol=imap mechanism=PLAIN login="mail@localhost" ip=192.0.2.7 ' ||
	fail "account loginattempts: $out"
[ "$(M account loginattempts mail --limit 1 | wc -l)" = 1 ] || fail "loginattempts --limit"
M account loginattempts nosuch >/dev/null 2>&1 && fail "loginattempts of an unknown account"
ok "mailfleet account loginattempts"

stop_embedded
ok "test_sasl_store passed"

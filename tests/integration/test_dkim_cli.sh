#!/bin/bash
# `mailfleet dkim add` and `mailfleet dkim list`: four new keys (two
# ed25519, two rsa-2048, mode 0600) as selectors in domains.conf through the
# validated edit path, the sign list set only when the domain signed with
# nothing, DNS records printed that verify what the keys sign, refusal for
# a domain that is not configured (no stray key files).  No services run:
# the CLI reports that it could not tell them.
. "$(dirname "$0")/lib/common.sh"

CLI="$BIN/mailfleet"
MFDKIM="$BUILD/tools/mf-dkim"
for b in "$CLI" "$MFDKIM"; do [ -x "$b" ] || fail "$b not built"; done

"$CLI" quickstart --local --dir "$TMP/qs" --port-offset "$OFF" >"$TMP/qs.out" 2>&1 || {
	cat "$TMP/qs.out"; fail "quickstart"; }
CONF="$TMP/qs/config/mailfleet.conf"
DOMAINS="$TMP/qs/config/domains.conf"
export MAILFLEET_CONFIG="$CONF"
printf '\ndomain example.org {\n}\n' >>"$DOMAINS"
"$CLI" config check >/dev/null || fail "config check before"

before=$(ls "$TMP/qs/config/dkim" | wc -l)
"$CLI" dkim add localhost >"$TMP/add1.out" 2>"$TMP/add1.err" || { cat "$TMP/add1.out" "$TMP/add1.err"; fail "dkim add localhost"; }
[ "$(ls "$TMP/qs/config/dkim" | wc -l)" = $((before + 4)) ] || fail "four new key files expected"
for f in "$TMP"/qs/config/dkim/localhost-*.pem; do
	[ "$(stat -c %a "$f")" = 600 ] || fail "$f is not mode 600"
done
[ "$(grep -c '._domainkey.localhost. TXT "v=DKIM1; k=ed25519; p=' "$TMP/add1.out")" = 2 ] || fail "ed25519 records: $(cat "$TMP/add1.out")"
[ "$(grep -c '._domainkey.localhost. TXT "v=DKIM1; k=rsa; p=' "$TMP/add1.out")" = 2 ] || fail "rsa records"
grep -q 'sign list is unchanged' "$TMP/add1.out" || fail "sign list of localhost should stay"
grep -q 'run `mailfleet reload`' "$TMP/add1.err" || fail "no hint that the services were not told"
# quickstart made four (two of each algorithm), dkim add four more
[ "$(grep -c '^ *selector ' "$DOMAINS")" = 8 ] || fail "eight selectors for localhost expected"
"$CLI" config check >/dev/null || fail "config check after add"
ok "dkim add for a signing domain: four keys (0600), selectors added, sign list kept"

"$CLI" dkim add example.org >"$TMP/add2.out" 2>/dev/null || fail "dkim add example.org"
grep -q 'signing with' "$TMP/add2.out" || fail "sign list of example.org should be set"
sel_ed=$(sed -n 's/^added selectors \([^ ]*\) .*/\1/p' "$TMP/add2.out")
sel_rsa=$(sed -n 's/^added selectors [^ ]* [^ ]* (ed25519) and \([^ ]*\) .*/\1/p' "$TMP/add2.out")
grep -q "sign $sel_ed $sel_rsa" "$DOMAINS" || fail "sign line: $(grep -n sign "$DOMAINS")"
ok "dkim add for a domain without keys: signs with the first ed25519 and rsa selector"

# The printed records verify what the keys sign.
printf 'From: a@example.org\r\nSubject: t\r\n\r\nbody\r\n' >"$TMP/m.eml"
for sel in "$sel_ed" "$sel_rsa"; do
	rec=$(grep "^$sel._domainkey.example.org. TXT" "$TMP/add2.out" | sed 's/^[^"]*//; s/" "//g; s/"//g')
	"$MFDKIM" sign -k "$TMP/qs/config/dkim/example.org-$sel.pem" -d example.org -s "$sel" <"$TMP/m.eml" |
		"$MFDKIM" verify -r "$sel._domainkey.example.org=$rec" >/dev/null || fail "record of $sel does not verify"
done
ok "printed DNS records match the keys"

out=$("$CLI" dkim list example.org) || fail "dkim list: $out"
[ "$(grep -c '^selector ' <<<"$out")" = 4 ] || fail "dkim list: $out"
grep -q "^selector $sel_ed algorithm=ed25519 signing=yes" <<<"$out" || fail "dkim list signing: $out"
ok "dkim list shows selectors, algorithms, signing and records"

n=$(ls "$TMP/qs/config/dkim" | wc -l)
"$CLI" dkim add nothere.example >/dev/null 2>&1 && fail "dkim add for an unknown domain succeeded"
[ "$(ls "$TMP/qs/config/dkim" | wc -l)" = "$n" ] || fail "key files left behind"
"$CLI" dkim frobnicate >/dev/null 2>&1; [ $? = 2 ] || fail "usage error expected"
ok "unknown domain refused without leftovers; usage errors exit 2"

echo "test_dkim_cli: $CHECKS checks passed"

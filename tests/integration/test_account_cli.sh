#!/bin/bash
# mailfleet account add/password/remove and address add/remove against the
# embedded default: domains.conf is edited (and still passes config check),
# the services reload it, the store is created, given passwords and removed.
. "$(dirname "$0")/lib/common.sh"

TOOL="$BUILD/tools/mf-store"
[ -x "$TOOL" ] || fail "$TOOL missing (make $BUILD/tools/mf-store)"
start_embedded
MF() { "$BIN/mailfleet" "$@" -c "$CONF"; }
S() { "$TOOL" -c "$CONF" "$@"; }
DOMAINS="$RUN/config/domains.conf"

out=$(MF account add alice alice@localhost 2>&1) || fail "account add: $out"
echo "$out" | grep -q 'account store created' || fail "account add: $out"
grep -q '^account alice' "$DOMAINS" || fail "alice not in domains.conf"
grep -q 'address alice@localhost' "$DOMAINS" || fail "address not in domains.conf"
"$BIN/mailfleet" config check -c "$CONF" >/dev/null 2>&1 || fail "config check after account add"
S mailboxes alice | grep -q '^mailbox INBOX ' || fail "alice has no store"
ok "account add: domains.conf edited, config check ok, store created"

MF account check alice | grep -q '^account alice: consistent$' || fail "account check"
out=$(MF account check ghost 2>&1) && fail "check of an unknown account succeeded: $out"
out=$(MF account add alice alice2@localhost 2>&1) && fail "duplicate account added: $out"
out=$(MF account add bob mail@localhost 2>&1) && fail "address of another account taken: $out"
grep -q '^account bob' "$DOMAINS" && fail "failed add left bob in domains.conf"
ok "account add refuses duplicates, file unchanged"

out=$(echo 'alice-pass-1' | MF account password alice 2>&1) || fail "account password: $out"
S auth alice alice@localhost alice-pass-1 | grep -q '^auth ok' || fail "login with the new password"
S auth alice alice@localhost alice-pass-2 | grep -q '^auth failed' || fail "wrong password accepted"
out=$(MF account password alice --generate </dev/null 2>&1) || fail "password --generate: $out"
gen=$(echo "$out" | sed -n 's/^password for alice: //p')
[ -n "$gen" ] || fail "no generated password printed: $out"
S auth alice alice@localhost "$gen" | grep -q '^auth ok' || fail "login with the generated password"
S auth alice alice@localhost alice-pass-1 | grep -q '^auth failed' || fail "old password still works"
out=$(MF account password nobody </dev/null 2>&1) && fail "password for unknown account: $out"
ok "account password: stdin line, --generate, unknown account refused"

out=$(MF address add al@localhost alice 2>&1) || fail "address add: $out"
grep -q 'address al@localhost' "$DOMAINS" || fail "address not added"
# The imap service reloads domains.conf on config.v1.changed.
wait_for 10 bash -c "'$TOOL' -c '$CONF' auth alice al@localhost '$gen' | grep -q '^auth ok'" ||
	fail "login with the new address"
out=$(MF address remove al@localhost 2>&1) || fail "address remove: $out"
grep -q 'address al@localhost' "$DOMAINS" && fail "address not removed"
wait_for 10 bash -c "'$TOOL' -c '$CONF' auth alice al@localhost '$gen' | grep -q '^auth failed'" ||
	fail "removed address still logs in"
out=$(MF address remove alice@localhost 2>&1) && fail "last address removed: $out"
"$BIN/mailfleet" config check -c "$CONF" >/dev/null 2>&1 || fail "config check after address edits"
ok "address add/remove, reload seen by the store, last address kept"

out=$(MF account remove alice 2>&1) || fail "account remove: $out"
echo "$out" | grep -q 'account store removed' || fail "account remove: $out"
grep -q '^account alice' "$DOMAINS" && fail "alice still in domains.conf"
[ -d "$RUN/data/accounts/alice" ] && fail "alice's store directory is still there"
S auth alice alice@localhost "$gen" | grep -q '^auth ok' && fail "removed account logs in"
"$BIN/mailfleet" config check -c "$CONF" >/dev/null 2>&1 || fail "config check after account remove"
out=$(MF account remove alice 2>&1) && fail "removing a missing account succeeded: $out"
ok "account remove: domains.conf, store and logins gone"

# The quickstart account was not touched.
S auth mail mail@localhost "$PASSWORD" | grep -q '^auth ok' || fail "quickstart account broken"
stop_embedded
ok "stopped cleanly"
echo "test_account_cli: $CHECKS checks passed"

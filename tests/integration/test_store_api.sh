#!/bin/bash
# The store API over NATS in the embedded default: the imap service creates
# the quickstart account's store at start with the password from
# passwords.init; deliver (with duplicate recipients, a header prefix, a
# mailbox that gets created), list, fetch, flags, move, expunge, change
# events; malformed and misaddressed requests get clear errors.
. "$(dirname "$0")/lib/common.sh"

TOOL="$BUILD/tools/mf-store"
[ -x "$TOOL" ] || fail "$TOOL missing (make $BUILD/tools/mf-store)"
start_embedded
S() { "$TOOL" -c "$CONF" "$@"; }

# The store exists with the standard mailboxes.
wait_for 20 bash -c "'$TOOL' -c '$CONF' mailboxes mail | grep -q '^mailbox INBOX '" ||
	fail "no INBOX for account mail: $(S mailboxes mail)"
out=$(S mailboxes mail)
for m in 'Sent .*special=\\Sent' 'Drafts .*special=\\Drafts' 'Archive .*special=\\Archive' \
	 'Trash .*special=\\Trash' 'Junk .*special=\\Junk' 'Rejects '; do
	echo "$out" | grep -q "^mailbox $m" || fail "mailbox $m missing: $out"
done
ok "standard mailboxes with special-use flags"

S auth mail mail@localhost "$PASSWORD" | grep -q '^auth ok' || fail "login with quickstart password"
S auth mail mail@localhost wrong | grep -q '^auth failed' || fail "wrong password accepted"
S auth mail nobody@localhost "$PASSWORD" | grep -q '^auth failed' || fail "unknown login accepted"
ok "authenticate: passwords.init imported, wrong passwords refused"

# A received message, as smtp-in would leave it under incoming/.
printf 'From: sender@example.org\r\nTo: mail@localhost\r\nSubject: store test\r\nMessage-ID: <t1@example.org>\r\n\r\nHello.\r\n' >"$TMP/msg.eml"
S put incoming/test/m1 "$TMP/msg.eml" >/dev/null || fail "blob put"

S changes mail 2 15 >"$TMP/changes.out" 2>&1 &
CH_PID=$!; PIDS_TO_KILL="$PIDS_TO_KILL $CH_PID"
wait_for 10 grep -q subscribed "$TMP/changes.out" || fail "change subscriber did not start"

out=$(S deliver mail incoming/test/m1 mail@localhost \
	'mail+x@localhost=Lists/test=Delivered-To: mail+x@localhost' mail@localhost)
echo "$out" | grep -q '^rcpt mail@localhost ok 250 2.0.0 INBOX 1 ' || fail "deliver: $out"
echo "$out" | grep -q '^rcpt mail+x@localhost ok 250 2.0.0 Lists/test 1 ' || fail "deliver: $out"
[ "$(echo "$out" | grep -c '^rcpt mail@localhost ok 250 2.0.0 INBOX 1 ')" = 2 ] ||
	fail "duplicate recipient not answered with the same copy: $out"
S messages mail INBOX | grep -q '^message uid=1 .*subject=store test$' || fail "INBOX list"
[ "$(S messages mail INBOX | grep -c '^message')" = 1 ] || fail "duplicate recipient stored twice"
ok "deliver: per-recipient results, one copy for a duplicate, new mailbox created"

wait_for 10 bash -c "[ \$(grep -c '^change kind=0' '$TMP/changes.out') -ge 2 ]" ||
	fail "change events: $(cat "$TMP/changes.out")"
ok "store.v1.changes events published"

S fetch mail INBOX 1 | cmp -s - "$TMP/msg.eml" || fail "fetched message differs"
{ printf 'Delivered-To: mail+x@localhost\r\n'; cat "$TMP/msg.eml"; } >"$TMP/want2"
S fetch mail Lists/test 1 | cmp -s - "$TMP/want2" || fail "header prefix not in front of the message"
[ "$(S fetch mail INBOX 1 6 4)" = "send" ] || fail "ranged fetch: $(S fetch mail INBOX 1 6 4)"
ok "fetch: whole, with prefix, ranged"

S flags mail INBOX add 1 '\Seen' '$Important' | grep -q '^flags modseq=[1-9]' || fail "flags"
S messages mail INBOX | grep -q 'flags=\\Seen,$Important' || fail "flags not set: $(S messages mail INBOX)"
S flags mail INBOX add 1 '\Bogus' | grep -q '^error permanent' || fail "bad system flag accepted"
ok "flags"

S move mail INBOX 1 Archive | grep -q '^moved 1 1 ' || fail "move"
S messages mail Archive | grep -q '^message uid=1 .*flags=\\Seen' || fail "moved message keeps flags"
[ "$(S messages mail INBOX | grep -c '^message')" = 0 ] || fail "message still in INBOX"
S move mail Archive 1 Sent copy | grep -q '^moved 1 1 ' || fail "copy"
S flags mail Sent add 1 '\Deleted' >/dev/null
S expunge mail Sent | grep -q '^expunged 1$' || fail "expunge"
S mailboxes mail | grep -q '^mailbox Sent messages=0 unseen=0 deleted=0 size=0 uidnext=2' ||
	fail "Sent counts: $(S mailboxes mail)"
S mailboxes mail | grep -q '^mailbox Archive messages=1 unseen=0 ' || fail "Archive counts"
ok "move, copy, expunge, counts"

# Errors.
S raw store.v1.deliver.mail | grep -q '^error permanent malformed' || fail "malformed request"
S deliver nobody incoming/test/m1 x@localhost | grep -q '^error permanent no such account' ||
	fail "unknown account"
S deliver mail incoming/test/missing mail@localhost | grep -q '^error permanent' ||
	fail "missing blob"
S messages mail NoSuchBox | grep -q '^error permanent no such mailbox' || fail "unknown mailbox"
S fetch mail INBOX 99 | grep -q '^error permanent no such message' || fail "unknown message"
ok "errors are permanent with a clear message"

stop_embedded
ok "stopped cleanly"
echo "test_store_api: $CHECKS checks passed"

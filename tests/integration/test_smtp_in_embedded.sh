#!/bin/bash
# smtp-in on the embedded default (issue 4, "Tests"): the scenarios of
# test_smtp_in.sh (which drives smtp-in against a fake store) run here
# against the real system (store, dnsauth with "resolver none", IMAP), and
# every result is read back over IMAP: plain, STARTTLS, pipelining and BDAT
# byte for byte; SMTPUTF8 addresses and body; alias fan-out with one copy
# per account (one for a member who is also a direct recipient, none for a
# sending member); oversize, too many recipients, unknown recipient and
# relay attempts refused.  The checks are in smtp_in/embedded_check.py.
. "$(dirname "$0")/lib/common.sh"
CHECK="$ROOT/tests/integration/smtp_in/embedded_check.py"
start_embedded
MF() { "$BIN/mailfleet" "$@" -c "$CONF"; }
DOMAINS="$RUN/config/domains.conf"
OTHER_PASSWORD=other-pass-1

# A second account with an ASCII and a UTF-8 address, and a list of both.
out=$(MF account add other other@localhost 2>&1) || fail "account add: $out"
out=$(echo "$OTHER_PASSWORD" | MF account password other 2>&1) || fail "account password: $out"
out=$(MF address add 'jöe@localhost' other 2>&1) || fail "address add (UTF-8): $out"
cat >>"$DOMAINS" <<'EOC'
alias team@localhost {
    member mail@localhost
    member other@localhost
    post-public yes
}
EOC
"$BIN/mailfleet" config check -c "$CONF" >/dev/null || fail "config check with the alias"
MF reload | grep -qx 'reload sent' || fail "mailfleet reload"
# smtp-in has the alias (and the UTF-8 address) once RCPT accepts them.
rcpt_ok() {
	python3 - "$P_SMTP" "$1" "$2" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.ehlo("client.example")
s.mail("sender@example.com", ["SMTPUTF8"] if sys.argv[3] == "utf8" else [])
code, _ = s.rcpt(sys.argv[2])
s.quit()
sys.exit(0 if code == 250 else 1)
PY
}
wait_for 20 rcpt_ok team@localhost ascii || fail "smtp-in does not know team@localhost"
wait_for 20 rcpt_ok 'jöe@localhost' utf8 || fail "smtp-in does not know jöe@localhost"
ok "account other with other@localhost and jöe@localhost, alias team@localhost, reloaded"

python3 "$CHECK" "$P_SMTP" "$P_IMAP" "$PASSWORD" "$OTHER_PASSWORD" >"$TMP/check.out" 2>&1 ||
	{ cat "$TMP/check.out"; tail -30 "$TMP/run.out"; fail "embedded scenarios"; }
while read -r line; do ok "$line"; done <"$TMP/check.out"
[ "$(wc -l <"$TMP/check.out")" -eq 9 ] || fail "expected 9 scenarios"
[ -z "$(find "$RUN/data/blobs/incoming" -type f 2>/dev/null)" ] || fail "incoming blobs left"
ok "no incoming blob left behind"
stop_embedded
echo "test_smtp_in_embedded: $CHECKS checks passed"

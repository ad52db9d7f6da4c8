#!/bin/bash
# libshared's SASL mechanisms against an implementation mailfleet did not
# write: GNU SASL's gsasl (Debian package gsasl), over pipes.
#   gsasl client -> our server: SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, PLAIN, LOGIN
#   our client -> gsasl server: SCRAM-SHA-256, SCRAM-SHA-1 (server signature
#     verified), CRAM-MD5 (gsasl's command line server cannot check PLAIN/LOGIN)
# and a wrong password fails in each case.  The -PLUS variants need a TLS
# connection on both sides: they are tested when imap/submission are wired.
. "$(dirname "$0")/lib/common.sh"

TOOL="$BUILD/tools/mf-sasl"
[ -x "$TOOL" ] || fail "$TOOL missing (make $BUILD/tools/mf-sasl)"
command -v gsasl >/dev/null || fail "gsasl missing (Debian package gsasl, ci/deps.sh)"
DRIVER="$(dirname "$0")/sasl/interop.py"

for m in SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5 PLAIN LOGIN; do
	out=$(timeout 20 python3 "$DRIVER" "$TOOL" client $m "user@example.org" "pencil é") ||
		fail "gsasl client, $m: $out"
	echo "$out" | grep -q '^ok success account=user@example.org' || fail "gsasl client, $m: $out"
	out=$(timeout 20 python3 "$DRIVER" "$TOOL" client $m "user@example.org" "pencil é" wrong) ||
		fail "gsasl client with a wrong password, $m: $out"
done
ok "gsasl as client against our server: SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, PLAIN, LOGIN"

for m in SCRAM-SHA-256 SCRAM-SHA-1; do
	out=$(timeout 20 python3 "$DRIVER" "$TOOL" server $m "user@example.org" "pencil é") ||
		fail "gsasl server, $m: $out"
	echo "$out" | grep -q '^ok success VERIFIED 1$' || fail "server signature not verified, $m: $out"
	out=$(timeout 20 python3 "$DRIVER" "$TOOL" server $m "user@example.org" "pencil é" wrong) ||
		fail "gsasl server with a wrong password, $m: $out"
done
out=$(timeout 20 python3 "$DRIVER" "$TOOL" server CRAM-MD5 "user@example.org" "pencil é") ||
	fail "gsasl server, CRAM-MD5: $out"
out=$(timeout 20 python3 "$DRIVER" "$TOOL" server CRAM-MD5 "user@example.org" "pencil é" wrong) ||
	fail "gsasl server with a wrong password, CRAM-MD5: $out"
ok "our client against gsasl as server: SCRAM-SHA-256, SCRAM-SHA-1 (mutual), CRAM-MD5"
ok "test_sasl_interop passed"

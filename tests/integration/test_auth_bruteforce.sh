#!/bin/bash
# Brute force on the embedded default: 100 wrong IMAP passwords from
# 127.0.0.1 are slowed down, then refused unchecked (counted in the
# metric); the failures are kept in Redis, so submission (another service,
# as another replica would) refuses that address too; a correct login from
# 127.0.0.2 (the client socket bound there; the server listens on 127.0.0.1
# only) still works on both.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/auth_setup.sh"

auth_setup

out=$(python3 - "$P_IMAP" "$USER" <<'PY'
import socket, sys, time
port, user = int(sys.argv[1]), sys.argv[2]
results = {"failed": 0, "refused": 0, "slow": 0}
first_refused = None
conn = None
f = None
def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    fh = s.makefile("rb")
    assert fh.readline().startswith(b"* OK"), "greeting"
    return s, fh
for i in range(100):
    if conn is None:
        conn, f = connect()
    t0 = time.monotonic()
    conn.sendall(b"a%d LOGIN %s wrong-%d\r\n" % (i, user.encode(), i))
    while True:
        line = f.readline()
        if not line or line.startswith(b"a%d " % i):
            break
    took = time.monotonic() - t0
    if b"NO [UNAVAILABLE]" in line:
        results["refused"] += 1
        if first_refused is None:
            first_refused = i
    elif b"NO [AUTHENTICATIONFAILED]" in line:
        results["failed"] += 1
        if took >= 1.5:
            results["slow"] += 1
    else:
        raise SystemExit("attempt %d: unexpected answer %r" % (i, line))
    # The server ends the connection after a few failures.
    conn.sendall(b"x NOOP\r\n")
    line = f.readline()
    if not line or line.startswith(b"* BYE"):
        conn.close()
        conn = None
    else:
        while not line.startswith(b"x "):
            line = f.readline()
print("failed=%d slow=%d refused=%d first_refused=%s" % (
    results["failed"], results["slow"], results["refused"], first_refused))
PY
) || fail "brute force client: $out"
echo "brute force: $out"
eval "$(echo "$out" | tr ' ' '\n' | grep -E '^(failed|slow|refused|first_refused)=')"
[ "$slow" -ge 3 ] || fail "failures were not slowed down: $out"
[ "$refused" -ge 50 ] || fail "attempts were not refused: $out"
[ "$failed" -le 40 ] || fail "too many passwords checked before refusing: $out"
ok "100 wrong passwords from 127.0.0.1: $failed checked ($slow slowed), $refused refused"

metrics=$(curl -s "http://127.0.0.1:$(admin_port imap)/metrics")
n=$(echo "$metrics" | awk '/^mailfleet_imap_auth_throttled_total\{action="refused"\}/ {printf "%d", $2}')
[ -n "$n" ] && [ "$n" -ge "$refused" ] || fail "refusals not in the metric: $n"
ok "mailfleet_imap_auth_throttled_total{action=\"refused\"} $n"

# Submission shares the counts through Redis: 127.0.0.1 is refused there too,
# 127.0.0.2 logs in on both services with the right password.
python3 - "$P_SUB" "$P_IMAP" "$USER" "$PASSWORD" <<'PY' || fail "after brute force"
import imaplib, smtplib, socket, ssl, sys
sub, imap, user, pw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
def smtp_auth(source, password):
    s = smtplib.SMTP("127.0.0.1", sub, timeout=30, source_address=(source, 0))
    s.starttls(context=ctx)
    s.ehlo("client.example")
    import base64
    code, msg = s.docmd("AUTH", "PLAIN " + base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode())
    s.quit()
    return code, msg
code, msg = smtp_auth("127.0.0.1", pw)
assert code == 454, ("submission from 127.0.0.1 not refused", code, msg)
code, msg = smtp_auth("127.0.0.2", pw)
assert code == 235, ("submission from 127.0.0.2", code, msg)
# imaplib has no source address: a bound socket.
class IMAP(imaplib.IMAP4):
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, ("127.0.0.2", 0))
m = IMAP("127.0.0.1", imap)
typ, data = m.login(user, pw)
assert typ == "OK", (typ, data)
m.logout()
m = imaplib.IMAP4("127.0.0.1", imap)
try:
    m.login(user, pw)
    raise SystemExit("correct password from 127.0.0.1 accepted while refused")
except imaplib.IMAP4.error as e:
    assert "UNAVAILABLE" in str(e), e
PY
ok "submission refuses 127.0.0.1 too (shared through Redis); 127.0.0.2 logs in on imap and submission"

att=$("$MF" account loginattempts mail -c "$CONF") || fail "account loginattempts"
echo "$att" | grep 'result=badcreds protocol=imap mechanism=PLAIN' | grep -q 'count=' ||
	fail "failed attempts not listed: $att"
echo "$att" | grep -q 'result=ok protocol=imap mechanism=PLAIN login="mail@localhost" ip=127.0.0.2' ||
	fail "login from 127.0.0.2 not listed: $att"
ok "login attempts list the failures (grouped) and the login from 127.0.0.2"

stop_embedded
echo "test_auth_bruteforce: $CHECKS checks passed"

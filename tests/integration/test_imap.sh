#!/bin/bash
# IMAP on the embedded default with real clients: a scripted python session
# covering every command (imap/imap_session.py), mbsync syncing to a Maildir
# and back, curl fetching and appending, fetchmail, and two sessions on one
# mailbox seeing each other's changes.
. "$(dirname "$0")/lib/common.sh"

start_embedded
USER=mail@localhost
HERE=$(cd "$(dirname "$0")" && pwd)

python3 "$HERE/imap/imap_session.py" 127.0.0.1 "$P_IMAP" "$P_IMAPS" "$USER" "$PASSWORD" ||
	fail "scripted IMAP session"
ok "scripted IMAP session (every command)"

# --- IDLE sees a delivery through the store API (NATS) ---
printf 'From: sender@example.org\r\nTo: mail@localhost\r\nSubject: delivered\r\n\r\nby the store API\r\n' >"$TMP/deliver.eml"
python3 - "$P_IMAP" "$USER" "$PASSWORD" "$BUILD/tools/mf-store" "$CONF" "$TMP/deliver.eml" <<'PY' ||
import socket, subprocess, sys
port, user, password, tool, conf, eml = sys.argv[1:7]
s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
f = s.makefile("rb")
f.readline()
def cmd(tag, text):
    s.sendall(b"%s %s\r\n" % (tag, text.encode()))
    lines = []
    while True:
        l = f.readline()
        lines.append(l)
        if l.startswith(tag + b" "):
            return lines
cmd(b"a", "LOGIN %s %s" % (user, password))
exists = [l for l in cmd(b"b", "SELECT INBOX") if l.endswith(b" EXISTS\r\n")][0]
n = int(exists.split()[1])
s.sendall(b"c IDLE\r\n")
assert f.readline().startswith(b"+"), "IDLE"
subprocess.run([tool, "-c", conf, "put", "incoming/imap-idle-test", eml], check=True,
               stdout=subprocess.DEVNULL)
subprocess.run([tool, "-c", conf, "deliver", "mail", "incoming/imap-idle-test", user], check=True,
               stdout=subprocess.DEVNULL)
l = f.readline()
assert l == b"* %d EXISTS\r\n" % (n + 1), l
s.sendall(b"DONE\r\n")
l = f.readline()
while l.startswith(b"* "):  # "* 0 RECENT" follows EXISTS for IMAP4rev1
    l = f.readline()
assert l.startswith(b"c OK"), l
l = cmd(b"d", "FETCH %d BODY.PEEK[TEXT]" % (n + 1))
assert b"by the store API" in b"".join(l), l
PY
	fail "IDLE did not see a delivery"
ok "IDLE sees a delivery through the store API"

# --- curl: append, fetch, search, list (imap:// and imaps://) ---
URL="imap://127.0.0.1:$P_IMAP"
SURL="imaps://127.0.0.1:$P_IMAPS"
printf 'From: curl@example.com\r\nTo: mail@localhost\r\nSubject: via curl\r\n\r\nsent by curl\r\n' >"$TMP/curl.eml"
curl -sS --url "$URL/INBOX" -u "$USER:$PASSWORD" -T "$TMP/curl.eml" || fail "curl append"
out=$(curl -sS "$URL/INBOX?SUBJECT%20%22via%20curl%22" -u "$USER:$PASSWORD") || fail "curl search"
uid=$(echo "$out" | tr -d '\r' | awk '/^\* SEARCH/ {print $3}')
[ -n "$uid" ] || fail "curl search found nothing: $out"
ok "curl append and search (seq $uid)"
out=$(curl -sS --insecure "$SURL/INBOX;MAILINDEX=$uid" -u "$USER:$PASSWORD") || fail "curl imaps fetch"
echo "$out" | grep -q "sent by curl" || fail "curl fetch body: $out"
ok "curl imaps fetch over 993 (self-signed, --insecure)"
out=$(curl -sS --insecure "$SURL/INBOX;MAILINDEX=$uid/;SECTION=HEADER.FIELDS%20(SUBJECT)" -u "$USER:$PASSWORD")
echo "$out" | grep -q "^Subject: via curl" || fail "curl section fetch: $out"
ok "curl section fetch"
out=$(curl -sS "$URL/" -u "$USER:$PASSWORD") || fail "curl list"
echo "$out" | grep -q '"Sent"' || fail "curl list: $out"
ok "curl list"

# --- mbsync: server to Maildir and back ---
mkdir -p "$TMP/maildir"
cat >"$TMP/mbsyncrc" <<EOC
IMAPAccount mf
Host 127.0.0.1
Port $P_IMAP
User $USER
Pass $PASSWORD
SSLType None
AuthMechs LOGIN

IMAPStore mf-remote
Account mf

MaildirStore mf-local
Path $TMP/maildir/
Inbox $TMP/maildir/INBOX
SubFolders Verbatim

Channel mf
Far :mf-remote:
Near :mf-local:
Patterns INBOX Sent
Create Both
SyncState *
EOC
HOME=$TMP mbsync -c "$TMP/mbsyncrc" -a >"$TMP/mbsync1.out" 2>&1 || { cat "$TMP/mbsync1.out"; fail "mbsync first sync"; }
grep -rlq "sent by curl" "$TMP/maildir/INBOX" || fail "mbsync: message not in the Maildir"
ok "mbsync synced INBOX to a Maildir"
n=$(date +%s)
printf 'From: local@example.com\r\nTo: mail@localhost\r\nSubject: from maildir\r\n\r\nwritten locally\r\n' \
	>"$TMP/maildir/INBOX/new/$n.1.localhost"
HOME=$TMP mbsync -c "$TMP/mbsyncrc" -a >"$TMP/mbsync2.out" 2>&1 || { cat "$TMP/mbsync2.out"; fail "mbsync second sync"; }
out=$(curl -sS "$URL/INBOX?SUBJECT%20%22from%20maildir%22" -u "$USER:$PASSWORD")
echo "$out" | grep -Eq '^\* SEARCH [0-9]+' || fail "mbsync: Maildir message not on the server: $out"
ok "mbsync: a message added to the Maildir appears on the server"
# Flag a message locally (Maildir "F"), sync, see \Flagged on the server.
f=$(grep -rl "from maildir" "$TMP/maildir/INBOX/cur" "$TMP/maildir/INBOX/new" | head -1)
[ -n "$f" ] || fail "mbsync: uploaded message not found in the Maildir"
case "$f" in
*:2,*) mv "$f" "${f}F" ;;
*) mv "$f" "$TMP/maildir/INBOX/cur/$(basename "$f"):2,F" ;;  # seen by the MUA: new/ to cur/
esac
HOME=$TMP mbsync -c "$TMP/mbsyncrc" -a >"$TMP/mbsync3.out" 2>&1 || { cat "$TMP/mbsync3.out"; fail "mbsync third sync"; }
out=$(curl -sS "$URL/INBOX?FLAGGED%20SUBJECT%20%22from%20maildir%22" -u "$USER:$PASSWORD")
echo "$out" | grep -Eq '^\* SEARCH [0-9]+' || fail "mbsync: flag not synced: $out"
ok "mbsync: a flag set in the Maildir reaches the server"

# --- fetchmail into an MDA ---
cat >"$TMP/fetchmailrc" <<EOC
set no syslog
poll 127.0.0.1 port $P_IMAP protocol IMAP
    user "$USER" password "$PASSWORD" is "$(id -un)" here
    sslproto '' fetchall keep
    mda "cat >> $TMP/fetched"
EOC
chmod 600 "$TMP/fetchmailrc"
HOME=$TMP fetchmail -f "$TMP/fetchmailrc" --pidfile "$TMP/fetchmail.pid" >"$TMP/fetchmail.out" 2>&1 ||
	{ cat "$TMP/fetchmail.out"; fail "fetchmail"; }
grep -q "sent by curl" "$TMP/fetched" && grep -q "written locally" "$TMP/fetched" ||
	{ cat "$TMP/fetchmail.out"; fail "fetchmail: messages not delivered to the MDA"; }
ok "fetchmail fetched into an MDA"

# --- metrics ---
m=$(curl -s "http://127.0.0.1:$(admin_port imap)/metrics")
echo "$m" | grep -Eq '^mailfleet_imap_logins_total\{result="ok"\} [1-9]' || fail "login metric: $m"
echo "$m" | grep -Eq '^mailfleet_imap_commands_total\{command="FETCH",result="ok"\} [1-9]' ||
	fail "command metric"
ok "imap metrics count logins and commands"

# --- without allow-plaintext-auth: LOGINDISABLED until STARTTLS; data kept ---
stop_embedded
ok "embedded default stopped cleanly"
sed -i 's/^ *allow-plaintext-auth yes/    allow-plaintext-auth no/' "$CONF"
grep -q "allow-plaintext-auth no" "$CONF" || fail "could not switch allow-plaintext-auth off"
start_embedded
python3 - "$P_IMAP" "$USER" "$PASSWORD" <<'PY' || fail "LOGINDISABLED before TLS"
import socket, ssl, sys
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
f = s.makefile("rb")
g = f.readline()
assert b"LOGINDISABLED" in g and b"AUTH=PLAIN" not in g and b"STARTTLS" in g, g
s.sendall(b"a LOGIN %s %s\r\n" % (user.encode(), password.encode()))
r = f.readline()
assert r.startswith(b"a NO [PRIVACYREQUIRED]"), r
s.sendall(b"b AUTHENTICATE PLAIN\r\n")
r = f.readline()
assert r.startswith(b"b NO [PRIVACYREQUIRED]"), r
s.sendall(b"c STARTTLS\r\n")
r = f.readline()
assert r.startswith(b"c OK"), r
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s, server_hostname="localhost")
f = t.makefile("rb")
t.sendall(b"d CAPABILITY\r\n")
caps = f.readline()
assert b"AUTH=PLAIN" in caps and b"LOGINDISABLED" not in caps, caps
f.readline()
t.sendall(b"e LOGIN %s %s\r\n" % (user.encode(), password.encode()))
r = f.readline()
assert r.startswith(b"e OK"), r
# The messages of the first run are still there.
t.sendall(b'f EXAMINE INBOX\r\ng SEARCH SUBJECT "via curl"\r\n')
while not r.startswith(b"f "):
    r = f.readline()
assert r.startswith(b"f OK"), r
r = f.readline()
assert r.startswith(b"* SEARCH ") and len(r.split()) == 3, r
PY
ok "LOGINDISABLED and [PRIVACYREQUIRED] before STARTTLS; mail kept across restarts"

# --- failed logins per network (Redis): last, it locks 127.0.0.1 out ---
python3 - "$P_IMAPS" "$USER" "$PASSWORD" <<'PY' || fail "failed-login limit"
import socket, ssl, sys
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def session(lines):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20),
                        server_hostname="localhost")
    f = s.makefile("rb")
    f.readline()
    out = []
    for i, l in enumerate(lines):
        s.sendall(b"a%d %s\r\n" % (i, l.encode()))
        while True:
            r = f.readline()
            if not r or r.startswith(b"a%d " % i) or r.startswith(b"* BYE"):
                out.append(r)
                break
    s.close()
    return out
fails = 0
while fails < 20:
    for r in session(["LOGIN %s wrong%d" % (user, fails)] * 3):
        if b"[UNAVAILABLE] logins from your network are refused" in r:
            # Even the right password is refused now.
            r2 = session(["LOGIN %s %s" % (user, password)])[0]
            sys.exit(0 if b"NO [UNAVAILABLE]" in r2 else 1)
        fails += 1
print("no limit after %d failures" % fails)
sys.exit(1)
PY
ok "failed logins lock a network out, even with the right password"

stop_embedded
ok "embedded default stopped cleanly again"
echo "test_imap: $CHECKS checks passed"

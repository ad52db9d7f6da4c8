#!/bin/bash
# Postfix (the Debian package, configured here on loopback with its own
# queue under $TMP) relays a message into smtp-in on the embedded default;
# the message is then read back over IMAP.  Needs root (postfix start).
. "$(dirname "$0")/lib/common.sh"
[ "$(id -u)" -eq 0 ] || fail "needs root to run a private Postfix instance"
command -v postfix >/dev/null || fail "postfix is not installed"
start_embedded

PF="$TMP/postfix"; mkdir -p "$PF/queue" "$PF/data"
chmod 755 "$TMP"   # the postfix user must reach its queue
PF_PORT=$(free_port)
cat >"$PF/main.cf" <<EOC
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.test
mydomain = postfix.test
myorigin = postfix.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$P_SMTP
smtp_dns_support_level = disabled
smtp_tls_security_level = may
smtp_tls_loglevel = 1
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
alias_maps =
alias_database =
local_transport = error:no local delivery here
EOC
# No chroot: the queue is a temporary directory.
cat >"$PF/master.cf" <<'EOC'
127.0.0.1:PF_PORT inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
EOC
sed -i "s/PF_PORT/$PF_PORT/" "$PF/master.cf"
postfix -c "$PF" check >"$TMP/postfix-check.out" 2>&1 || { cat "$TMP/postfix-check.out"; ls -la "$PF"; fail "postfix check"; }
chown postfix "$PF/data"
postfix -c "$PF" start >"$TMP/postfix-start.out" 2>&1 || { cat "$TMP/postfix-start.out"; cat "$PF/maillog"; fail "postfix start"; }
pf_stop() { postfix -c "$PF" stop >/dev/null 2>&1; }
trap 'pf_stop; cleanup' EXIT

printf '%s\r\n' "From: sender@example.com" "To: mail@localhost" "Subject: via postfix" \
	"Message-ID: <pf-1@example.com>" "" "relayed by postfix" |
	sendmail -C "$PF" -f sender@example.com mail@localhost || fail "sendmail"
postqueue -c "$PF" -f 2>/dev/null
got_it() {
	python3 - "$P_IMAP" "$PASSWORD" <<'PY'
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("mail@localhost", sys.argv[2])
m.select("INBOX")
typ, data = m.search(None, "HEADER", "Message-ID", "pf-1@example.com")
ids = data[0].split()
if len(ids) != 1:
    sys.exit(1)
typ, data = m.fetch(ids[0], "(RFC822)")
msg = data[0][1]
assert b"relayed by postfix" in msg, msg
# our Received names Postfix's EHLO and says ESMTPS (Postfix used STARTTLS)
assert b"Received: from postfix.test ([127.0.0.1])\r\n\tby localhost (mailfleet) with ESMTPS" in msg, msg[:600]
PY
}
wait_for 60 got_it || { tail -20 "$PF/maillog"; got_it; fail "message from Postfix not in the Inbox"; }
grep -q "status=sent (250 2.0.0 message delivered" "$PF/maillog" || fail "Postfix did not log 250"
ok "Postfix relays into smtp-in over STARTTLS; message in the Inbox over IMAP"
pf_stop
stop_embedded
echo "test_smtp_in_postfix: $CHECKS checks passed"

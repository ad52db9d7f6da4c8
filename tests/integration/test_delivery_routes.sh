#!/bin/bash
# Routes and transports from domains.conf: a smarthost with STARTTLS and
# AUTH PLAIN whose name is resolved through dnsauth (the DNS lab), a
# third-party submissions service (implicit TLS, AUTH LOGIN) chosen from
# the second attempt on, a refused password, AUTH never sent without TLS,
# a certificate that does not verify, direct delivery through a SOCKS5
# proxy with RFC 1929 authentication, and a route changed by a reload.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/dnslab.sh"

LAB_EXTRA_RECORDS='relay       IN A   127.0.0.1
mxd         IN MX  10 mx.lab.test.'
dnslab_start "$TMP/lab"
DNSAUTH_ADMIN=$(free_port)
EXTRA_CONF="dnsauth {
    admin 127.0.0.1:$DNSAUTH_ADMIN
    resolver forward 127.0.0.1@$LAB_UNBOUND_PORT
    trust-anchor $LAB_ANCHOR
}"
. "$(dirname "$0")/delivery/setup.sh"
HERE="$ROOT/tests/integration/delivery_routes"
RELAY_P=$(free_port); SUBS_P=$(free_port); SOCKS_P=$(free_port)
AUTH_OUT="$TMP/auth-recv"; mkdir -p "$AUTH_OUT"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj /CN=relay.lab.test -addext "subjectAltName=DNS:relay.lab.test,IP:127.0.0.1" \
	-keyout "$TMP/relay-key.pem" -out "$TMP/relay-cert.pem" >/dev/null 2>&1 || fail "openssl"
printf 'relay secret\n' >"$TMP/relay-pass"
printf 'sub-pass\n' >"$TMP/sub-pass"
printf 'wrong\n' >"$TMP/wrong-pass"
printf 'proxy-pass\n' >"$TMP/socks-pass"

/usr/bin/python3 "$HERE/auth_receiver.py" "$RELAY_P" "$AUTH_OUT" "$TMP/relay-cert.pem" \
	"$TMP/relay-key.pem" starttls relayuser 'relay secret' >"$TMP/log/relay.log" 2>&1 &
PIDS_TO_KILL="$PIDS_TO_KILL $!"
/usr/bin/python3 "$HERE/auth_receiver.py" "$SUBS_P" "$AUTH_OUT" "$TMP/relay-cert.pem" \
	"$TMP/relay-key.pem" implicit subuser sub-pass >"$TMP/log/subs.log" 2>&1 &
PIDS_TO_KILL="$PIDS_TO_KILL $!"
python3 "$HERE/socks5_proxy.py" "$SOCKS_P" "$TMP/socks.log" proxyuser proxy-pass \
	>"$TMP/log/socks.log" 2>&1 &
PIDS_TO_KILL="$PIDS_TO_KILL $!"
wait_for 10 grep -q ready "$TMP/log/relay.log" || fail "relay did not start"
wait_for 10 grep -q ready "$TMP/log/subs.log" || fail "submissions server did not start"
wait_for 10 grep -q ready "$TMP/log/socks.log" || fail "socks proxy did not start"

ROUTES="transport smarthost {
    smtp relay.lab.test:$RELAY_P
    auth-user relayuser
    auth-password-file $TMP/relay-pass
    tls-ca-file $TMP/relay-cert.pem
}
transport subs {
    submissions 127.0.0.1:$SUBS_P
    auth-user subuser
    auth-password-file $TMP/sub-pass
    auth-mechanism login
    tls-ca-file $TMP/relay-cert.pem
}
transport badpass {
    submission 127.0.0.1:$RELAY_P
    auth-user relayuser
    auth-password-file $TMP/wrong-pass
    tls-ca-file $TMP/relay-cert.pem
}
transport notls {
    smtp 127.0.0.1:$RECV_P
    auth-user relayuser
    auth-password-file $TMP/relay-pass
}
transport unverified {
    submission relay.lab.test:$RELAY_P
    auth-user relayuser
    auth-password-file $TMP/relay-pass
}
transport proxy {
    socks5 127.0.0.1:$SOCKS_P
    socks5-user proxyuser
    socks5-password-file $TMP/socks-pass
}
route to-domain relayed.example transport smarthost
route to-domain third.example min-attempt 2 transport subs
route to-domain third.example transport recv
route to-domain badauth.example transport badpass
route to-domain notls.example transport notls
route to-domain unverified.example transport unverified
route to-domain mxd.lab.test transport proxy"

"$BIN/mailfleet-dnsauth" -c "$CONF" >"$TMP/log/dnsauth.log" 2>&1 &
PIDS_TO_KILL="$PIDS_TO_KILL $!"
wait_for 15 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$DNSAUTH_ADMIN/readyz)\" = 200 ]" ||
	fail "dnsauth not ready"
start_queue
start_worker 1
auth_received() { grep -l "^X-Rcpt: $1" "$AUTH_OUT"/msg-*.eml 2>/dev/null | head -1; }
has_auth_received() { [ -n "$(auth_received "$1")" ]; }
dlog() { cat "$TMP"/log/delivery-*.log; }
logs_have() { dlog | grep -q -- "$1"; }

# --- smarthost: host name through dnsauth, STARTTLS, AUTH PLAIN -------------------
queue_add --to a@relayed.example >/dev/null || fail "queue add"
wait_for 20 has_auth_received a@relayed.example || fail "not relayed through the smarthost"
f=$(auth_received a@relayed.example)
grep -q "^X-Auth: relayuser" "$f" || fail "relay: not authenticated"
grep -q "^X-Port: $RELAY_P" "$f" || fail "relay: wrong server"
grep -q "^$RELAY_P ok relayuser PLAIN" "$AUTH_OUT/auth.log" || fail "relay: not AUTH PLAIN"
dlog | grep -q 'm=delivered.*rcpt=a@relayed.example.*host=relay.lab.test.*tls=TLSv1.[23]' ||
	fail "relay: result without host or TLS"
wait_for 10 queue_empty_for a@relayed.example || fail "relayed message still queued"
ok "smarthost by name (dnsauth), STARTTLS with a verified certificate, AUTH PLAIN"

# --- attempt-based route: recv first (451), submissions from attempt 2 ------------
queue_add --to tempthen9@third.example >/dev/null || fail "queue add"
wait_for 30 has_auth_received tempthen9@third.example || fail "second attempt not via submissions"
f=$(auth_received tempthen9@third.example)
grep -q "^X-Auth: subuser" "$f" || fail "submissions: not authenticated"
grep -q "^X-Port: $SUBS_P" "$f" || fail "submissions: wrong server"
grep -q "^$SUBS_P ok subuser LOGIN" "$AUTH_OUT/auth.log" || fail "submissions: not AUTH LOGIN"
[ "$(grep -c '^tempthen9@third.example' "$OUT/rcpt.log")" -eq 1 ] ||
	fail "first attempt should have gone to the plain receiver once"
grep -q '^tempthen9@third.example 451$' "$OUT/rcpt.log" || fail "no 451 on the first attempt"
ok "min-attempt route: attempt 1 via the relay (451), attempt 2 via submissions (implicit TLS, AUTH LOGIN)"

# --- refused password, AUTH without TLS, unverifiable certificate -----------------
queue_add --to b@badauth.example >/dev/null || fail "queue add"
queue_add --to c@notls.example >/dev/null || fail "queue add"
queue_add --to d@unverified.example >/dev/null || fail "queue add"
wait_for 20 logs_have 'rcpt=b@badauth.example.*authentication failed: 535' ||
	fail "bad password: no 535 in the result"
grep -q "^$RELAY_P bad relayuser" "$AUTH_OUT/auth.log" || fail "bad password not tried"
wait_for 20 logs_have 'rcpt=c@notls.example.*requires TLS' || fail "AUTH without TLS not refused"
! grep -q 'c@notls.example' "$OUT/rcpt.log" || fail "notls: a transaction happened in the clear"
wait_for 20 logs_have 'rcpt=d@unverified.example.*handshake' || fail "unverifiable certificate accepted"
[ -z "$(auth_received b@badauth.example)$(auth_received d@unverified.example)" ] ||
	fail "delivered despite failures"
"$MF" queue list -c "$CONF" | grep -q 'to=<b@badauth.example>' || fail "bad password: not kept queued"
"$MF" queue list -c "$CONF" | grep -q 'to=<c@notls.example>' || fail "notls: not kept queued"
! grep -q 'relay secret' "$TMP"/log/*.log || fail "a password appears in a log"
ok "535, no TLS and an unverifiable certificate: temporary failures, message kept, no password leaked"

# --- the message's own transport beats the routes; unknown names refused ----------
bid=$("$MF" queue list -c "$CONF" | sed -n 's/^\([0-9]*\) .*to=<b@badauth.example>.*/\1/p')
[ -n "$bid" ] || fail "no id for b@badauth.example"
! "$MF" queue transport -c "$CONF" --id "$bid" nosuch >/dev/null 2>&1 || fail "unknown transport accepted"
"$MF" queue transport -c "$CONF" --id "$bid" smarthost >/dev/null || fail "queue transport"
"$MF" queue reschedule -c "$CONF" --id "$bid" --now >/dev/null 2>&1 || true
wait_for 40 has_auth_received b@badauth.example || fail "message transport smarthost not used"
grep -q "^X-Port: $RELAY_P" "$(auth_received b@badauth.example)" || fail "wrong server for b"
ok "queue transport: a configured name overrides the routes; an unknown name is refused"

# --- direct delivery through a SOCKS5 proxy -------------------------------------
queue_add --to user@mxd.lab.test >/dev/null || fail "queue add"
wait_for 30 has_received user@mxd.lab.test || fail "not delivered through the proxy"
grep -q "^CONNECT 127.0.0.1 $RECV_P user=proxyuser" "$TMP/socks.log" || fail "proxy not used for IPv4"
grep -q "^CONNECT ::1 $RECV_P user=proxyuser" "$TMP/socks.log" || fail "proxy not asked for IPv6 first"
dlog | grep -q 'm=delivered.*rcpt=user@mxd.lab.test.*host=mx.lab.test' || fail "socks: result host"
ok "SOCKS5 (RFC 1928 + RFC 1929): MX through dnsauth, IPv6 refused at the proxy, delivered over IPv4"

# --- a reload changes the route for the next message -----------------------------
ROUTES=$(printf '%s\n' "$ROUTES" | sed 's/^route to-domain relayed.example transport smarthost$/route to-domain relayed.example transport local/')
write_conf
"$MF" reload -c "$CONF" >/dev/null || fail "reload"
wait_for 10 logs_have 'm="domains.conf reloaded"' || fail "delivery did not reload domains.conf"
queue_add --to e@relayed.example >/dev/null || fail "queue add"
wait_for 20 has_sink 'e@relayed.example' || fail "after reload: not delivered by the local route"
[ -z "$(auth_received e@relayed.example)" ] || fail "after reload: still relayed"
ok "reload: the new route applies to the next delivery"

echo "test_delivery_routes: $CHECKS checks passed"

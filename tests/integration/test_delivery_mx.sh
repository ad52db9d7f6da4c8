#!/bin/bash
# Direct delivery through MX records looked up by dnsauth in the DNS lab
# (nsd + unbound on loopback): MX host with IPv6 (refused) and IPv4
# addresses, implicit MX (no MX records), null MX (RFC 7505) and a domain
# that does not exist.  The receiving server listens on 127.0.0.1 at a
# test port that the workers use instead of 25.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/dnslab.sh"

LAB_EXTRA_RECORDS='mxd         IN MX  10 mx.lab.test.
nullmx      IN MX  0 .
implicit    IN A   127.0.0.1'
dnslab_start "$TMP/lab"
DNSAUTH_ADMIN=$(free_port)
EXTRA_CONF="dnsauth {
    admin 127.0.0.1:$DNSAUTH_ADMIN
    resolver forward 127.0.0.1@$LAB_UNBOUND_PORT
    trust-anchor $LAB_ANCHOR
}"
. "$(dirname "$0")/delivery/setup.sh"
ROUTES=""

"$BIN/mailfleet-dnsauth" -c "$CONF" >"$TMP/log/dnsauth.log" 2>&1 &
PIDS_TO_KILL="$PIDS_TO_KILL $!"
wait_for 15 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$DNSAUTH_ADMIN/readyz)\" = 200 ]" ||
	fail "dnsauth not ready"
start_queue
start_worker 1

queue_add --to user@mxd.lab.test --to other@implicit.lab.test >/dev/null || fail "queue add"
queue_add --to x@nullmx.lab.test >/dev/null || fail "queue add"
queue_add --to y@nx.lab.test >/dev/null || fail "queue add"

wait_for 20 has_received user@mxd.lab.test || fail "not delivered through the MX"
grep -q 'm=delivered.*rcpt=user@mxd.lab.test.*host=mx.lab.test' "$TMP/log/delivery-1.log" ||
	fail "delivery log does not name the MX host"
grep -q 'host not usable.*host=mx.lab.test ip=::1' "$TMP/log/delivery-1.log" ||
	fail "IPv6 address was not tried first"
ok "MX: IPv6 address tried first (refused), delivered over IPv4"

wait_for 20 has_received other@implicit.lab.test || fail "implicit MX not used"
ok "no MX records: the domain's own address (implicit MX)"

wait_for 20 has_sink 'Final-Recipient: rfc822; x@nullmx.lab.test' || fail "no DSN for null MX"
grep -q '^Status: 5.1.10' $(sink_with 'Final-Recipient: rfc822; x@nullmx.lab.test') || fail "null MX status"
ok "null MX: failure DSN with 5.1.10 at once"

wait_for 20 has_sink 'Final-Recipient: rfc822; y@nx.lab.test' || fail "no DSN for NXDOMAIN"
grep -q '^Status: 5.1.2' $(sink_with 'Final-Recipient: rfc822; y@nx.lab.test') || fail "NXDOMAIN status"
ok "domain does not exist: failure DSN with 5.1.2"

echo "test_delivery_mx: $CHECKS checks passed"

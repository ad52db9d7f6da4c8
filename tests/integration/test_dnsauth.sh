#!/bin/bash
# dnsauth against the DNS lab (nsd + validating unbound on loopback, a
# DNSSEC-signed zone): dns.v1.lookup over NATS with the authentic bit and
# NXDOMAIN / no data / temporary errors kept apart; SPF pass, fail,
# softfail, neutral, include, mx; a bogus signature is temperror (never
# "none"); iprev; DNSBL; the DNSBL monitor's metric; and with the
# authoritative server down, temperror.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/dnslab.sh"

PROBE="$BUILD/tools/dnsauth_probe"
[ -x "$PROBE" ] || fail "$PROBE not built"
[ -x "$BIN/mailfleet-dnsauth" ] || fail "$BIN/mailfleet-dnsauth not built"

dnslab_start "$TMP/lab"

NATS_PORT=$(free_port)
start_nats "$NATS_PORT" "$TMP/nats"
ADMIN_PORT=$(free_port)
mkdir -p "$TMP/conf" "$TMP/data"
CONF="$TMP/conf/mailfleet.conf"
cat >"$CONF" <<EOF
hostname mx.lab.test
data-dir $TMP/data
nats-url nats://127.0.0.1:$NATS_PORT
dnsauth {
    admin 127.0.0.1:$ADMIN_PORT
    resolver forward 127.0.0.1@$LAB_UNBOUND_PORT
    trust-anchor $LAB_ANCHOR
    timeout 4s
    dnsbl dnsbl.test
    monitor-ip 127.0.0.2
    monitor-ip 127.0.0.1
    monitor-interval 1h
}
EOF
: >"$TMP/conf/domains.conf"
"$BIN/mailfleet-dnsauth" -c "$CONF" >"$TMP/dnsauth.log" 2>&1 &
DNSAUTH_PID=$!; PIDS_TO_KILL="$PIDS_TO_KILL $DNSAUTH_PID"
dnsauth_ready() { [ "$(http_code "http://127.0.0.1:$ADMIN_PORT/readyz")" = 200 ]; }
wait_for 15 dnsauth_ready ||
	{ cat "$TMP/dnsauth.log"; fail "dnsauth not ready"; }
ok "dnsauth ready, resolving through the lab"

# expect DESCRIPTION PATTERN COMMAND...: the output must match PATTERN.
expect() {
	local what=$1 pat=$2; shift 2
	local out
	out=$("$@" 2>&1)
	echo "$out" | grep -Eq -- "$pat" || fail "$what: got: $out (want /$pat/)"
	ok "$what"
}

# dns.v1.lookup through the service.
expect "lookup TXT of the signed zone is authentic" \
	'^rcode=ok authentic=1 count=1 text="v=spf1 ip4:127.0.0.0/8 -all"' \
	"$PROBE" "$CONF" lookup pass.lab.test TXT
expect "lookup MX" 'rcode=ok authentic=1 count=1 name=mx.lab.test' \
	"$PROBE" "$CONF" lookup lab.test MX
expect "lookup AAAA" 'rcode=ok authentic=1 count=1 addr=::1' \
	"$PROBE" "$CONF" lookup mx.lab.test AAAA
expect "lookup TLSA" 'rcode=ok authentic=1 count=1 tlsa=3/1/1/32' \
	"$PROBE" "$CONF" lookup _25._tcp.mx.lab.test TLSA
expect "lookup through a CNAME" 'rcode=ok authentic=1 count=1 canonical=host1.lab.test addr=127.0.0.1' \
	"$PROBE" "$CONF" lookup alias.lab.test A
expect "lookup NXDOMAIN (authenticated denial)" '^rcode=nxdomain authentic=1 count=0' \
	"$PROBE" "$CONF" lookup nothing.lab.test A
expect "lookup no data" '^rcode=nodata authentic=1 count=0' \
	"$PROBE" "$CONF" lookup softfail.lab.test A
expect "lookup PTR in an unsigned zone is not authentic" \
	'^rcode=ok authentic=0 count=1 name=host1.lab.test' \
	"$PROBE" "$CONF" lookup 1.0.0.127.in-addr.arpa PTR
expect "lookup with a bogus signature is a temporary error" '^rcode=tempfail authentic=0' \
	"$PROBE" "$CONF" lookup bogus.lab.test TXT
expect "lookup of an unsupported type is refused" '^status=permanent' \
	"$PROBE" "$CONF" lookup lab.test NS

# The same through the CLI.
expect "mailfleet dns lookup" '^; pass.lab.test TXT: records, DNSSEC authentic' \
	"$BIN/mailfleet" dns lookup pass.lab.test TXT -c "$CONF"
expect "mailfleet dns lookup prints the record" '^TXT	[0-9]+	"v=spf1 ip4:127.0.0.0/8 -all"' \
	"$BIN/mailfleet" dns lookup pass.lab.test TXT -c "$CONF"
"$BIN/mailfleet" dns lookup nothing.lab.test -c "$CONF" >"$TMP/cli.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] && grep -q 'NXDOMAIN, DNSSEC authentic' "$TMP/cli.out" ||
	fail "mailfleet dns lookup of a missing name: rc $rc, $(cat "$TMP/cli.out")"
ok "mailfleet dns lookup NXDOMAIN exits 1"

# SPF (MAIL FROM identity) with the resolver the config names.
expect "spf pass" '^spf=pass authentic=1 domain=pass.lab.test' \
	"$PROBE" "$CONF" spf 127.0.0.1 mx.lab.test user@pass.lab.test
expect "spf fail with explanation" '^spf=fail authentic=1 domain=fail.lab.test .*explanation="fail.lab.test does not allow 127.0.0.1' \
	"$PROBE" "$CONF" spf 127.0.0.1 mx.lab.test user@fail.lab.test
expect "spf softfail" '^spf=softfail authentic=1' \
	"$PROBE" "$CONF" spf 127.0.0.1 mx.lab.test user@softfail.lab.test
expect "spf neutral" '^spf=neutral' \
	"$PROBE" "$CONF" spf 127.0.0.1 mx.lab.test user@neutral.lab.test
expect "spf include" '^spf=pass' \
	"$PROBE" "$CONF" spf 127.0.0.1 mx.lab.test user@incl.lab.test
expect "spf mx" '^spf=pass' \
	"$PROBE" "$CONF" spf 127.0.0.1 mx.lab.test user@mxpass.lab.test
expect "spf none for a domain without a record" '^spf=none' \
	"$PROBE" "$CONF" spf 127.0.0.1 mx.lab.test user@host1.lab.test
expect "spf of a bogus record is temperror, not none" '^spf=temperror authentic=0 .*DNSSEC bogus' \
	"$PROBE" "$CONF" spf 127.0.0.1 mx.lab.test user@bogus.lab.test
expect "spf null sender uses HELO" '^spf=pass .*domain=lab.test helo=pass' \
	"$PROBE" "$CONF" spf 127.0.0.1 lab.test ""

# iprev and DNSBL.
expect "iprev pass" '^iprev=pass name=host1.lab.test' "$PROBE" "$CONF" iprev 127.0.0.1
expect "iprev fail (name does not map back)" '^iprev=fail' "$PROBE" "$CONF" iprev 127.0.0.3
expect "iprev permerror (no PTR)" '^iprev=permerror' "$PROBE" "$CONF" iprev 127.0.0.9
expect "dnsbl listed" '^dnsbl=listed text="listed for testing"' \
	"$PROBE" "$CONF" dnsbl 127.0.0.2 dnsbl.test
expect "dnsbl not listed" '^dnsbl=not-listed' "$PROBE" "$CONF" dnsbl 127.0.0.1 dnsbl.test

# The monitor of our own addresses shows in metrics.
listed_metric() {
	http_body "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -q "$1"
}
wait_for 10 listed_metric 'mailfleet_dnsauth_dnsbl_listed{zone="dnsbl.test",ip="127.0.0.2"} 1' ||
	fail "monitor: 127.0.0.2 not shown as listed: $(http_body "http://127.0.0.1:$ADMIN_PORT/metrics" | grep dnsbl)"
listed_metric 'mailfleet_dnsauth_dnsbl_listed{zone="dnsbl.test",ip="127.0.0.1"} 0' ||
	fail "monitor: 127.0.0.1 not shown as unlisted"
ok "dnsbl monitor metrics"
listed_metric 'mailfleet_dnsauth_dns_lookups_total{rcode="ok"} [1-9]' || fail "lookup counter"
ok "lookup counter"

# The authoritative server goes down: names not in any cache are
# temporary errors, for lookups and SPF alike.
dnslab_stop_nsd
expect "spf with the server down is temperror" '^spf=temperror' \
	"$PROBE" "$CONF" spf 127.0.0.1 mx.lab.test user@late.lab.test
expect "lookup with the server down is tempfail" '^rcode=tempfail' \
	"$PROBE" "$CONF" lookup late.lab.test TXT

kill -TERM "$DNSAUTH_PID"; wait "$DNSAUTH_PID"; rc=$?
[ "$rc" -eq 0 ] || { tail -20 "$TMP/dnsauth.log"; fail "dnsauth exited $rc"; }
ok "dnsauth stopped cleanly"
echo "test_dnsauth: $CHECKS checks passed"

# A DNS lab on loopback (sourced after common.sh): nsd serves a DNSSEC-signed
# test zone, unbound resolves and validates it, trusting the zone's key.
# Nothing reaches the machine's resolver or the network.
#
#   dnslab_start DIR         starts both; sets LAB_NSD_PORT, LAB_UNBOUND_PORT,
#                            LAB_ANCHOR (trust anchor file), LAB_ZONE
#   dnslab_stop_nsd          stops the authoritative server (server down)
#
# Set LAB_EXTRA_RECORDS before dnslab_start to add records (zone file lines,
# relative to lab.test., e.g. DKIM keys and DMARC policies); they are signed
# with the rest.
#
# The zone lab.test holds SPF records for pass/fail/softfail/neutral cases,
# a record whose signature is broken after signing (bogus), MX, A, AAAA,
# TLSA, CNAME; the unsigned zone 127.in-addr.arpa holds PTR records, and
# dnsbl.test lists 127.0.0.2 (RFC 5782 test address).

LAB_ZONE=lab.test
# nsd and unbound live in /usr/sbin, which is not on every user's PATH.
LAB_NSD=$(command -v nsd || echo /usr/sbin/nsd)
LAB_UNBOUND=$(command -v unbound || echo /usr/sbin/unbound)

dnslab_start() { # DIR
	local dir=$1
	mkdir -p "$dir"
	LAB_NSD_PORT=$(free_port)
	LAB_UNBOUND_PORT=$(free_port)
	while [ "$LAB_UNBOUND_PORT" = "$LAB_NSD_PORT" ]; do LAB_UNBOUND_PORT=$(free_port); done

	cat >"$dir/lab.test.zone" <<EOF
\$ORIGIN lab.test.
\$TTL 300
@           IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 300
@           IN NS  ns.lab.test.
ns          IN A   127.0.0.1
@           IN A   127.0.0.1
@           IN MX  10 mx.lab.test.
mx          IN A   127.0.0.1
mx          IN AAAA ::1
@           IN TXT "v=spf1 ip4:127.0.0.1 -all"
pass        IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
fail        IN TXT "v=spf1 ip4:192.0.2.1 -all"
softfail    IN TXT "v=spf1 ~all"
neutral     IN TXT "v=spf1 ?all"
incl        IN TXT "v=spf1 include:pass.lab.test -all"
mxpass      IN TXT "v=spf1 mx -all"
mxpass      IN MX  10 mx.lab.test.
bogus       IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
host1       IN A   127.0.0.1
alias       IN CNAME host1.lab.test.
_25._tcp.mx IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
late        IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
EOF
	printf '%s\n' "${LAB_EXTRA_RECORDS:-}" >>"$dir/lab.test.zone"
	cat >"$dir/127.in-addr.arpa.zone" <<EOF
\$ORIGIN 127.in-addr.arpa.
\$TTL 300
@           IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 300
@           IN NS  ns.lab.test.
1.0.0       IN PTR host1.lab.test.
3.0.0       IN PTR nowhere.lab.test.
EOF
	cat >"$dir/dnsbl.test.zone" <<EOF
\$ORIGIN dnsbl.test.
\$TTL 300
@           IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 300
@           IN NS  ns.lab.test.
2.0.0.127   IN A   127.0.0.2
2.0.0.127   IN TXT "listed for testing"
EOF
	(
		cd "$dir" || exit 1
		ZSK=$(ldns-keygen -a ECDSAP256SHA256 lab.test) || exit 1
		KSK=$(ldns-keygen -a ECDSAP256SHA256 -k lab.test) || exit 1
		ldns-signzone lab.test.zone "$ZSK" "$KSK" || exit 1
		# The trust anchor: the key-signing key's DNSKEY.
		cp "$KSK.key" anchor.key
		# Break the signature of bogus.lab.test: change the data after
		# signing, keep the RRSIG.
		sed -i 's/^\(bogus\.lab\.test\.[[:space:]].*TXT[[:space:]]*\)"v=spf1 ip4:127.0.0.0\/8 -all"/\1"v=spf1 +all"/' \
			lab.test.zone.signed
		grep -q '"v=spf1 +all"' lab.test.zone.signed || exit 1
	) >"$dir/sign.log" 2>&1 || { cat "$dir/sign.log"; fail "signing the lab zone failed"; }
	LAB_ANCHOR="$dir/anchor.key"

	cat >"$dir/nsd.conf" <<EOF
server:
	ip-address: 127.0.0.1@$LAB_NSD_PORT
	port: $LAB_NSD_PORT
	username: ""
	chroot: ""
	zonesdir: "$dir"
	database: ""
	zonelistfile: "$dir/zone.list"
	xfrdfile: "$dir/xfrd.state"
	xfrdir: "$dir"
	pidfile: "$dir/nsd.pid"
	logfile: "$dir/nsd.log"
	server-count: 1
	verbosity: 1
remote-control:
	control-enable: no
zone:
	name: lab.test
	zonefile: "$dir/lab.test.zone.signed"
zone:
	name: 127.in-addr.arpa
	zonefile: "$dir/127.in-addr.arpa.zone"
zone:
	name: dnsbl.test
	zonefile: "$dir/dnsbl.test.zone"
EOF
	"$LAB_NSD" -d -c "$dir/nsd.conf" >"$dir/nsd.out" 2>&1 &
	LAB_NSD_PID=$!; PIDS_TO_KILL="$PIDS_TO_KILL $LAB_NSD_PID"
	wait_for 10 drill -p "$LAB_NSD_PORT" @127.0.0.1 lab.test SOA ||
		{ cat "$dir/nsd.out" "$dir/nsd.log" 2>/dev/null; fail "nsd did not start"; }

	cat >"$dir/unbound.conf" <<EOF
server:
	interface: 127.0.0.1
	port: $LAB_UNBOUND_PORT
	do-ip6: no
	username: ""
	chroot: ""
	directory: "$dir"
	pidfile: "$dir/unbound.pid"
	use-syslog: no
	logfile: "$dir/unbound.log"
	verbosity: 1
	do-not-query-localhost: no
	module-config: "validator iterator"
	trust-anchor-file: "$LAB_ANCHOR"
	val-log-level: 2
	local-zone: "127.in-addr.arpa." nodefault
	# test. is a special-use name (RFC 6761): names under it that the lab
	# does not serve get NXDOMAIN at once (rather than SERVFAIL after a
	# timeout asking the root); the lab's own zones are passed through.
	local-zone: "test." static
	local-zone: "lab.test." transparent
	local-zone: "dnsbl.test." transparent
	domain-insecure: "127.in-addr.arpa."
	domain-insecure: "dnsbl.test."
	# Bogus answers must not be cached long, and nothing is prefetched.
	val-bogus-ttl: 1
	infra-host-ttl: 5
remote-control:
	control-enable: no
stub-zone:
	name: "lab.test."
	stub-addr: 127.0.0.1@$LAB_NSD_PORT
stub-zone:
	name: "127.in-addr.arpa."
	stub-addr: 127.0.0.1@$LAB_NSD_PORT
stub-zone:
	name: "dnsbl.test."
	stub-addr: 127.0.0.1@$LAB_NSD_PORT
EOF
	"$LAB_UNBOUND" -d -c "$dir/unbound.conf" >"$dir/unbound.out" 2>&1 &
	LAB_UNBOUND_PID=$!; PIDS_TO_KILL="$PIDS_TO_KILL $LAB_UNBOUND_PID"
	wait_for 10 drill -p "$LAB_UNBOUND_PORT" @127.0.0.1 lab.test SOA ||
		{ cat "$dir/unbound.out" "$dir/unbound.log" 2>/dev/null; fail "unbound did not start"; }
}

dnslab_stop_nsd() {
	kill -TERM "$LAB_NSD_PID" 2>/dev/null
	wait "$LAB_NSD_PID" 2>/dev/null
	return 0
}

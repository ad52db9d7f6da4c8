#!/bin/bash
# DKIM cross-checks: signatures made by dnsauth's code (through
# build/tools/mf-dkim) verify in dkimpy (/usr/bin/python3, offline dnsfunc)
# and in OpenDKIM (opendkim-testmsg, inside a network namespace of our own
# whose only DNS server is an unbound on its loopback serving the key
# records); signatures dkimpy and OpenDKIM make verify with ours; tampered
# messages fail in all three; the RFC 8463 A.3 example verifies.
. "$(dirname "$0")/lib/common.sh"

MFDKIM="$BUILD/tools/mf-dkim"
[ -x "$MFDKIM" ] || fail "$MFDKIM not built"
PY=/usr/bin/python3
$PY -c 'import dkim, nacl' 2>/dev/null || fail "python3-dkim (with nacl) not installed"
command -v opendkim-testmsg >/dev/null || fail "opendkim-testmsg (opendkim-tools) not installed"
command -v unbound >/dev/null || fail "unbound not installed"
# OpenDKIM resolves with the C library, so its check runs in a user+network
# namespace of our own (unshare -rnm) with its own resolv.conf.
unshare -rnm true 2>/dev/null || fail "unprivileged user namespaces are not available (unshare -rnm)"
cd "$TMP" || exit 1

openssl genpkey -algorithm ed25519 -out ed.pem 2>/dev/null || fail "ed25519 key"
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out rsa.pem 2>/dev/null || fail "rsa key"
REC_ED=$("$MFDKIM" record ed.pem) || fail "record ed"
REC_RSA=$("$MFDKIM" record rsa.pem) || fail "record rsa"
# dkimpy's own keys: its ed25519 private key is the base64 of the raw seed.
openssl pkey -in ed.pem -outform DER 2>/dev/null | tail -c 32 | base64 > ed.seed

printf 'From: Mjl <mjl@example.org>\r\nTo: Other <other@example.net>\r\nSubject: cross check\r\nDate: Sun, 22 Nov 2026 16:00:00 +0000\r\nMessage-ID: <x1@example.org>\r\n\r\nHello  there,\r\n\r\nthis is  a test.\r\n\r\n\r\n' > msg.eml
# One with bare LF line ends too: ours canonicalizes it as CRLF.
tr -d '\r' < msg.eml > msg-lf.eml

RECORDS=(-r "ed._domainkey.example.org=$REC_ED" -r "rsa._domainkey.example.org=$REC_RSA")

# dkimpy verification with the records served from a dict.
cat > pyverify.py <<'EOF'
import sys, dkim
recs = {}
for arg in sys.argv[1:]:
    name, rec = arg.split("=", 1)
    recs[name.encode() + b"."] = rec.encode()
def dnsfunc(name, timeout=5):
    return recs.get(name)
msg = sys.stdin.buffer.read()
d = dkim.DKIM(msg)
n = len([h for h in d.headers if h[0].lower() == b"dkim-signature"])
if n == 0:
    print("no signature"); sys.exit(1)
ok = True
for i in range(n):
    r = d.verify(idx=i, dnsfunc=dnsfunc)
    print("dkimpy sig %d: %s" % (i, r))
    ok = ok and r
sys.exit(0 if ok else 1)
EOF
cat > pysign.py <<'EOF'
import sys, dkim
alg, sel, keyfile, canon = sys.argv[1:5]
key = open(keyfile, "rb").read().strip()
msg = sys.stdin.buffer.read()
h, b = canon.split("/")
sig = dkim.sign(msg, sel.encode(), b"example.org", key, canonicalize=(h.encode(), b.encode()),
                signature_algorithm=alg.encode(),
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
sys.stdout.buffer.write(sig + msg)
EOF
pyverify() { $PY pyverify.py "ed._domainkey.example.org=$REC_ED" "rsa._domainkey.example.org=$REC_RSA"; }
tamper() { sed 's/this is  a test/this is a test!/'; }

# --- ours -> dkimpy -------------------------------------------------------
for sel in ed rsa; do
	for canon in relaxed/relaxed simple/simple relaxed/simple simple/relaxed; do
		for m in msg.eml msg-lf.eml; do
			"$MFDKIM" sign -k $sel.pem -d example.org -s $sel -c $canon -x 3600 < $m > signed.eml ||
				fail "sign $sel $canon $m"
			"$MFDKIM" verify "${RECORDS[@]}" < signed.eml >/dev/null ||
				fail "ours does not verify its own $sel $canon $m"
			# dkimpy wants one line-end style: give it CRLF throughout.
			sed 's/\r*$/\r/' signed.eml > signed-crlf.eml
			pyverify < signed-crlf.eml >/dev/null || fail "dkimpy rejects our $sel $canon $m signature"
			tamper < signed-crlf.eml | pyverify >/dev/null 2>&1 && fail "dkimpy accepts tampered $sel $canon"
			tamper < signed-crlf.eml | "$MFDKIM" verify "${RECORDS[@]}" >/dev/null &&
				fail "ours accepts tampered $sel $canon"
		done
	done
	ok "our $sel signatures verify in dkimpy (4 canonicalizations, CRLF and LF); tampered fail in both"
done
# Two signatures on one message (ed25519 then rsa), as the submission path adds them.
"$MFDKIM" sign -k rsa.pem -d example.org -s rsa < msg.eml | "$MFDKIM" sign -k ed.pem -d example.org -s ed > two.eml
"$MFDKIM" verify "${RECORDS[@]}" < two.eml | grep -c '^pass' | grep -qx 2 || fail "two signatures (ours)"
pyverify < two.eml >/dev/null || fail "two signatures (dkimpy)"
ok "two signatures verify in ours and dkimpy"

# --- dkimpy -> ours -------------------------------------------------------
openssl pkey -in rsa.pem -traditional > rsa-pkcs1.pem 2>/dev/null || cp rsa.pem rsa-pkcs1.pem
for canon in relaxed/relaxed simple/simple relaxed/simple; do
	$PY pysign.py rsa-sha256 rsa rsa-pkcs1.pem $canon < msg.eml > py.eml || fail "dkimpy rsa sign"
	"$MFDKIM" verify "${RECORDS[@]}" < py.eml >/dev/null || fail "ours rejects dkimpy rsa $canon"
	tamper < py.eml | "$MFDKIM" verify "${RECORDS[@]}" >/dev/null && fail "ours accepts tampered dkimpy rsa"
	$PY pysign.py ed25519-sha256 ed ed.seed $canon < msg.eml > py.eml || fail "dkimpy ed25519 sign"
	"$MFDKIM" verify "${RECORDS[@]}" < py.eml >/dev/null || fail "ours rejects dkimpy ed25519 $canon"
	tamper < py.eml | "$MFDKIM" verify "${RECORDS[@]}" >/dev/null && fail "ours accepts tampered dkimpy ed25519"
done
ok "dkimpy's rsa-sha256 and ed25519-sha256 signatures verify in ours; tampered fail"

# --- RFC 8463 A.3 in ours and dkimpy --------------------------------------
cat > a3.eml <<'EOF'
DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=brisbane; t=1528637909; h=from : to :
 subject : date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus
 Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=test; t=1528637909; h=from : to : subject :
 date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3
 DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz
 dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=
From: Joe SixPack <joe@football.example.com>
To: Suzie Q <suzie@shopping.example.net>
Subject: Is dinner ready?
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)
Message-ID: <20030712040037.46341.5F8J@football.example.com>

Hi.

We lost the game.  Are you hungry yet?

Joe.
EOF
A3_ED="v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
A3_RSA="v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
out=$("$MFDKIM" verify -r "brisbane._domainkey.football.example.com=$A3_ED" \
	-r "test._domainkey.football.example.com=$A3_RSA" < a3.eml) || fail "A.3 in ours: $out"
[ "$(grep -c '^pass' <<<"$out")" = 2 ] || fail "A.3: $out"
sed 's/$/\r/' a3.eml | $PY pyverify.py "brisbane._domainkey.football.example.com=$A3_ED" \
	"test._domainkey.football.example.com=$A3_RSA" >/dev/null || fail "A.3 in dkimpy"
ok "RFC 8463 A.3 example: both signatures verify (ours and dkimpy)"

# --- OpenDKIM, in a network namespace with its own DNS --------------------
# libopendkim resolves through the C library's resolver, so the namespace
# gets a resolv.conf naming its own loopback, where unbound serves the key
# records as local data.  No query leaves the namespace.
split_txt() { # a record split into quoted strings of 255 octets
	local s=$1 out=""
	while [ -n "$s" ]; do out="$out \"${s:0:255}\""; s=${s:255}; done
	echo "$out"
}
cat > unbound.conf <<EOF
server:
    interface: 127.0.0.1
    port: 53
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$TMP"
    pidfile: ""
    use-syslog: no
    logfile: "$TMP/unbound.log"
    do-ip6: no
    local-zone: "example.org." static
    local-data: 'ed._domainkey.example.org. 300 IN TXT $(split_txt "$REC_ED")'
    local-data: 'rsa._domainkey.example.org. 300 IN TXT $(split_txt "$REC_RSA")'
remote-control:
    control-enable: no
EOF
echo "nameserver 127.0.0.1" > resolv.conf
cat > inns.sh <<'EOF'
#!/bin/bash
# Runs inside the namespace: loopback up, our resolv.conf, unbound, then the checks.
set -u
ip link set lo up
mount --bind "$TMP/resolv.conf" /etc/resolv.conf || exit 10
unbound -c "$TMP/unbound.conf" &
UPID=$!
for _ in $(seq 50); do
	/usr/bin/python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(("127.0.0.1",53))' && \
		[ -s "$TMP/unbound.log" ] && break
	sleep 0.1
done
sleep 0.5
rc=0
check() { # NAME EXPECT(0|1) FILE
	out=$(opendkim-testmsg < "$3" 2>&1); got=$?
	[ -n "$out" ] && got=1
	if { [ "$2" = 0 ] && [ $got != 0 ]; } || { [ "$2" = 1 ] && [ $got = 0 ]; }; then
		echo "opendkim $1: unexpected result ($got): $out"; rc=1
	fi
}
for f in "$TMP"/od-*.eml; do check "$(basename "$f")" 0 "$f"; done
for f in "$TMP"/odbad-*.eml; do check "$(basename "$f")" 1 "$f"; done
kill $UPID
exit $rc
EOF
chmod +x inns.sh
for sel in ed rsa; do
	for canon in relaxed/relaxed simple/simple; do
		n=$sel-${canon/\//-}
		"$MFDKIM" sign -k $sel.pem -d example.org -s $sel -c $canon < msg.eml > od-$n.eml
		tamper < od-$n.eml > odbad-$n.eml
	done
done
TMP="$TMP" unshare -rnm ./inns.sh || fail "OpenDKIM verification (see above; $(cat unbound.log 2>/dev/null | tail -3))"
ok "our ed25519 and rsa signatures verify in OpenDKIM (opendkim-testmsg); tampered fail"

# OpenDKIM signs, ours verifies.  opendkim-testmsg always signs with
# rsa-sha1 (RFC 8301 made that historic), so ours refuses it by policy and
# verifies it only when rsa-sha1 is allowed.  -C: CRLF line ends.
opendkim-testmsg -C -d example.org -s rsa -k rsa-pkcs1.pem < msg.eml > ods.eml 2>ods.err ||
	fail "opendkim-testmsg signing: $(cat ods.err)"
grep -qi '^DKIM-Signature:.*a=rsa-sha1' ods.eml || fail "opendkim-testmsg did not sign with rsa-sha1"
out=$("$MFDKIM" verify "${RECORDS[@]}" < ods.eml) && fail "ours accepts rsa-sha1 by default"
grep -q '^policy .*a=rsa-sha1' <<<"$out" || fail "rsa-sha1 not reported as policy: $out"
"$MFDKIM" verify -1 "${RECORDS[@]}" < ods.eml >/dev/null || fail "ours rejects OpenDKIM's signature with rsa-sha1 allowed"
tamper < ods.eml | "$MFDKIM" verify -1 "${RECORDS[@]}" >/dev/null && fail "ours accepts tampered OpenDKIM"
pyverify < ods.eml >/dev/null 2>&1 || fail "dkimpy rejects OpenDKIM's signature"
ok "OpenDKIM's rsa-sha1 signature: policy by default, passes in ours when allowed (and in dkimpy); tampered fails"

echo "test_dkim_crosscheck: $CHECKS checks passed"

#!/bin/bash
# DKIM (issue 5): signings/s and verifications/s, rsa-2048 and ed25519, of
# dnsauth's DKIM code (tests/tools/mf-bench-dkim) and of OpenDKIM's own
# test mode (`opendkim -t FILE,FILE,...`, Debian's opendkim package: the
# filter's code path without a mail server), on the same message set, one
# after the other in the same run.
#
# What is compared: one process each, going through the same list of
# message files on one thread: read the file, sign (or verify), print the
# result.  The figure is messages / wall time of the whole process (start-up
# included on both sides: key loading, OpenDKIM's configuration), and
# messages per CPU second of that process, which the other work on the
# machine disturbs less.  Both sign relaxed/relaxed over the same header
# fields (ours: dkim_default_headers; OpenDKIM is given that list in
# SignHeaders and OversignHeaders), both verify the same messages (signed
# by ours), both read key records from memory (ours: the memory resolver;
# OpenDKIM: TestDNSData).  Each measurement runs BENCH_DKIM_ROUNDS times,
# ours and OpenDKIM alternating; the best round counts.
#
# Checks (a failure is a broken benchmark, not a slow one): every signing
# succeeds on both sides, OpenDKIM verifies every signature of ours, ours
# verifies OpenDKIM's rsa-sha256 and ed25519 signatures.
#
#   BENCH_QUICK=1 (200 messages, 1 round), BENCH_DKIM_MESSAGES,
#   BENCH_DKIM_ROUNDS (default 3).  Messages: sizes cycling through 2, 4, 8,
#   16 and 32 KiB (mean 12.4 KiB), CRLF line ends.
. "$(dirname "$0")/../integration/lib/common.sh"
. "$ROOT/tests/bench/lib.sh"

if [ "$BENCH_QUICK" = 1 ]; then
	MESSAGES=${BENCH_DKIM_MESSAGES:-200}; ROUNDS=${BENCH_DKIM_ROUNDS:-1}
else
	MESSAGES=${BENCH_DKIM_MESSAGES:-2000}; ROUNDS=${BENCH_DKIM_ROUNDS:-3}
fi
TOOL=${BENCH_DKIM_TOOL:-$BUILD/tools/mf-bench-dkim}
MFDKIM=$BUILD/tools/mf-dkim
OPENDKIM=${OPENDKIM:-/usr/sbin/opendkim}
for b in "$TOOL" "$MFDKIM"; do
	[ -x "$b" ] || fail "$b missing (make $BUILD/tools/mf-bench-dkim $BUILD/tools/mf-dkim)"
done
[ -x "$OPENDKIM" ] || fail "$OPENDKIM missing (apt install opendkim: its -t test mode is the peer)"
# opendkim -t takes the list as one argument, which Linux caps at 128 KiB.
[ "$MESSAGES" -le 10000 ] || fail "BENCH_DKIM_MESSAGES: at most 10000 (one argument lists them for opendkim -t)"
cd "$TMP" || exit 1

say "DKIM: $MESSAGES messages (2..32 KiB, mean 12.4 KiB), relaxed/relaxed; one process" \
	"per run over the whole list, one thread; best of $ROUNDS rounds; $NCPU CPUs"

# --- the message set ------------------------------------------------------------
mkdir -p msgs
awk -v n="$MESSAGES" -v dir=msgs 'BEGIN {
	split("2048 4096 8192 16384 32768", sizes, " ")
	for (i = 1; i <= n; i++) {
		f = sprintf("%s/m%05d.eml", dir, i)
		size = sizes[(i - 1) % 5 + 1]
		printf "From: Sender %d <sender%d@example.org>\r\nTo: Rcpt <rcpt@example.net>\r\n", i, i % 7 > f
		printf "Subject: benchmark message %d\r\nDate: Sun, 22 Nov 2026 16:00:00 +0000\r\n", i > f
		printf "Message-ID: <bench-%d@example.org>\r\nMIME-Version: 1.0\r\n", i > f
		printf "Content-Type: text/plain; charset=us-ascii\r\n\r\n" > f
		# Body lines with runs of spaces and trailing blanks, so that
		# relaxed body canonicalization has work to do.
		b = 0; l = 0
		while (b < size) {
			line = sprintf("line %d of message %d:  some  text with   spaces and a tail  ", l++, i)
			printf "%s\r\n", line > f
			b += length(line) + 2
		}
		printf "\r\n\r\n" > f
		close(f)
	}
}' || fail "message generation"
cd msgs || exit 1
FILES=(m*.eml)
[ "${#FILES[@]}" -eq "$MESSAGES" ] || fail "generated ${#FILES[@]} messages, wanted $MESSAGES"
LIST=$(printf '%s\n' "${FILES[@]}" | paste -sd, -)
cd "$TMP" || exit 1

# --- keys, records, OpenDKIM's configurations -----------------------------------
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out rsa.pem 2>/dev/null || fail "rsa key"
openssl genpkey -algorithm ed25519 -out ed.pem 2>/dev/null || fail "ed25519 key"
REC_rsa=$("$MFDKIM" record rsa.pem) || fail "rsa record"
REC_ed=$("$MFDKIM" record ed.pem) || fail "ed25519 record"
printf 'rsa._domainkey.example.org %s\ned._domainkey.example.org %s\n' "$REC_rsa" "$REC_ed" >dns.txt
RECORDS=(-r "rsa._domainkey.example.org=$REC_rsa" -r "ed._domainkey.example.org=$REC_ed")
# Our default header list, for OpenDKIM's SignHeaders/OversignHeaders.
HEADERS="From,Reply-To,Subject,Date,To,Cc,Resent-Date,Resent-From,Resent-To,Resent-Cc,In-Reply-To,References,List-Id,List-Help,List-Unsubscribe,List-Subscribe,List-Post,List-Owner,List-Archive,Message-ID,Content-Type,Content-Transfer-Encoding,MIME-Version"
declare -A ALG=([rsa]=rsa-sha256 [ed]=ed25519-sha256) NAME=([rsa]=rsa-2048 [ed]=ed25519)
for k in rsa ed; do
	# Syslog off: OpenDKIM would otherwise log every message; its test
	# mode prints the results on its own.
	cat >"sign-$k.conf" <<EOC
Mode s
Syslog no
Domain example.org
Selector $k
KeyFile $TMP/$k.pem
RequireSafeKeys no
SignatureAlgorithm ${ALG[$k]}
Canonicalization relaxed/relaxed
SignHeaders $HEADERS
OversignHeaders $HEADERS
EOC
done
cat >verify.conf <<EOC
Mode v
Syslog no
TestDNSData file:$TMP/dns.txt
EOC

# --- the runs ----------------------------------------------------------------------
declare -A R
# record NAME OUTFILE: keeps the best round's figures of the last bench_timed.
record() {
	local name=$1 rate cpu
	rate=$(awk -v n="$MESSAGES" -v w="$B_WALL" 'BEGIN { r = 0; if (w > 0) r = n / w; printf "%.1f", r }')
	cpu=$(awk -v n="$MESSAGES" -v c="$B_GEN_CPU" 'BEGIN { r = 0; if (c > 0) r = n / c; printf "%.1f", r }')
	say "$name: $rate msgs/s, $cpu msgs per CPU second (${B_WALL}s, CPU ${B_GEN_CPU}s, machine busy" \
		"$(awk -v b="$B_BUSY" -v w="$B_WALL" -v n="$NCPU" 'BEGIN { if (w > 0) printf "%.0f", 100 * b / (w * n) }')%)"
	if awk -v a="$rate" -v b="${R[$name.rate]:-0}" 'BEGIN { exit !(a > b) }'; then
		R[$name.rate]=$rate
	fi
	if awk -v a="$cpu" -v b="${R[$name.cpu]:-0}" 'BEGIN { exit !(a > b) }'; then
		R[$name.cpu]=$cpu
	fi
}

sign_ours() { # KEY ROUND
	bench_timed "$TMP/out.sign-mf-$1" "$TOOL" sign -k "$TMP/$1.pem" -d example.org -s "$1" "${FILES[@]}"
	[ "$B_RC" -eq 0 ] || { tail -5 "$TMP/out.sign-mf-$1"; fail "ours: signing with $1 failed"; }
	record "sign-mf-$1"
}
sign_opendkim() { # KEY
	bench_timed "$TMP/out.sign-od-$1" "$OPENDKIM" -x "$TMP/sign-$1.conf" -t "$LIST"
	[ "$B_RC" -eq 0 ] || { tail -5 "$TMP/out.sign-od-$1"; fail "opendkim: signing with $1 exited $B_RC"; }
	local n
	n=$(grep -c "^DKIM-Signature: v=1; a=${ALG[$1]};" "$TMP/out.sign-od-$1")
	[ "$n" -eq "$MESSAGES" ] || { tail -5 "$TMP/out.sign-od-$1"; fail "opendkim: $n of $MESSAGES ${ALG[$1]} signatures"; }
	record "sign-od-$1"
}
verify_ours() { # KEY
	bench_timed "$TMP/out.verify-mf-$1" "$TOOL" verify "${RECORDS[@]}" "${FILES[@]}"
	[ "$B_RC" -eq 0 ] || { tail -5 "$TMP/out.verify-mf-$1"; fail "ours: not every $1 signature passed"; }
	record "verify-mf-$1"
}
verify_opendkim() { # KEY
	bench_timed "$TMP/out.verify-od-$1" "$OPENDKIM" -x "$TMP/verify.conf" -t "$LIST"
	[ "$B_RC" -eq 0 ] || { tail -5 "$TMP/out.verify-od-$1"; fail "opendkim: verification exited $B_RC"; }
	local n
	n=$(grep -c "verification (s=$1, d=example.org, .*) succeeded" "$TMP/out.verify-od-$1")
	[ "$n" -eq "$MESSAGES" ] || { grep -v succeeded "$TMP/out.verify-od-$1" | head -5
		fail "opendkim: $n of $MESSAGES of our $1 signatures verified"; }
	record "verify-od-$1"
}

for k in rsa ed; do
	cd "$TMP/msgs" || exit 1
	sync
	for round in $(seq 1 "$ROUNDS"); do
		# Alternate who goes first, so that drift on the machine hits both.
		if [ $((round % 2)) -eq 1 ]; then sign_ours "$k"; sign_opendkim "$k"
		else sign_opendkim "$k"; sign_ours "$k"; fi
	done
	# OpenDKIM's signature of the first message verifies in ours: it did
	# the same work (the algorithm asked for, the header list given).
	awk -v f="${FILES[0]}" '
		$0 == "opendkim: " f ":" { on = 1; next }
		on && /^opendkim: / { exit }
		on { sub(/\r$/, ""); printf "%s\r\n", $0 }' "$TMP/out.sign-od-$k" >"$TMP/od-first-$k.eml"
	cat "${FILES[0]}" >>"$TMP/od-first-$k.eml"
	grep -q "^DKIM-Signature: .*a=${ALG[$k]}" "$TMP/od-first-$k.eml" || fail "no OpenDKIM signature for ${FILES[0]}"
	out=$("$MFDKIM" verify "${RECORDS[@]}" <"$TMP/od-first-$k.eml") ||
		fail "ours does not verify OpenDKIM's ${ALG[$k]} signature: $out"

	# The verification set: the same messages, signed by ours.
	mkdir -p "$TMP/signed-$k"
	"$TOOL" sign -k "$TMP/$k.pem" -d example.org -s "$k" -o "$TMP/signed-$k" "${FILES[@]}" \
		>"$TMP/out.prepare-$k" 2>&1 || { tail -5 "$TMP/out.prepare-$k"; fail "preparing the $k set"; }
	cd "$TMP/signed-$k" || exit 1
	sync
	for round in $(seq 1 "$ROUNDS"); do
		if [ $((round % 2)) -eq 1 ]; then verify_ours "$k"; verify_opendkim "$k"
		else verify_opendkim "$k"; verify_ours "$k"; fi
	done
done
cd "$TMP" || exit 1
say "every signing succeeded on both sides; OpenDKIM verified every signature of ours; ours verified OpenDKIM's"

# --- report ----------------------------------------------------------------------
row() { printf 'bench: %-36s %12s %12s %8s\n' "$1" "$2" "$3" "$4"; }
rrow() { row "$1" "${R[$2-mf-$3.$4]}" "${R[$2-od-$3.$4]}" "$(bench_ratio "${R[$2-mf-$3.$4]}" "${R[$2-od-$3.$4]}")"; }
echo
say "DKIM: mailfleet (dnsauth's dkim.c) vs OpenDKIM $("$OPENDKIM" -V 2>&1 | sed -n 's/.*OpenDKIM Filter v//p' | head -1) (opendkim -t), $MESSAGES messages"
row "" mailfleet opendkim ratio
for op in sign verify; do
	for k in rsa ed; do
		rrow "$op ${NAME[$k]} msgs/s" "$op" "$k" rate
		rrow "$op ${NAME[$k]} msgs per CPU second" "$op" "$k" cpu
	done
done
say "ratio = mailfleet / opendkim (higher is better); msgs/s = messages / wall time of the whole process" \
	"(start-up included), msgs per CPU second = messages / that process's user+system time"
echo "bench_dkim: done"

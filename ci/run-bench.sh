#!/bin/sh
# Runs the benchmarks (tests/bench/bench_*.sh): each compares mailfleet with a
# real peer on this machine, one after the other in the same run, and prints
# the figures side by side with the ratio.  Never a timed test: a benchmark
# fails only when something broke (a peer did not start, mail was lost).
#
#   BUILD=build ci/run-bench.sh [NAME...]     e.g. ci/run-bench.sh smtp dkim
#   (NAME: smtp, imap, dkim, delivery; default: every tests/bench/bench_*.sh)
#   BENCH_QUICK=1      small counts and no settling pause (development)
#   BENCH_SETTLE=SECS  pause after sync before file-heavy runs (default 70)
# The figures are also kept in $BUILD/bench-<name>.log.
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
export BUILD
names=${*:-}
if [ -z "$names" ]; then
	for t in tests/bench/bench_*.sh; do
		n=$(basename "$t" .sh); names="$names ${n#bench_}"
	done
fi
pass=0; fail=0; failed=""
for n in $names; do
	t="tests/bench/bench_$n.sh"
	[ -x "$t" ] || { echo "bench: no benchmark $t"; fail=$((fail + 1)); failed="$failed $n"; continue; }
	log="$BUILD/bench-$n.log"
	start=$(date +%s)
	echo "bench: running $n (log: $log)"
	# The figures ("bench: ..." lines) go to the terminal; service logs only
	# to the log file.
	if "$t" >"$log" 2>&1; then
		pass=$((pass + 1))
		grep -E '^(bench|FAIL)' "$log"
		echo "bench: ok   $n ($(( $(date +%s) - start ))s)"
	else
		fail=$((fail + 1)); failed="$failed $n"
		grep -E '^bench' "$log"
		tail -40 "$log" | sed 's/^/    /'
		echo "bench: FAIL $n ($(( $(date +%s) - start ))s)"
	fi
done
echo "bench: $pass ran, $fail broke${failed:+ (broke:$failed)}"
[ "$fail" -eq 0 ]

#!/bin/sh
# Runs every tests/integration/test_*.sh; each starts what it needs on loopback
# in its own temporary directory.  Prints one line per test and a total.
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
export BUILD
pass=0; fail=0; failed=""
for t in tests/integration/test_*.sh; do
	name=$(basename "$t" .sh)
	log="$BUILD/integration-$name.log"
	start=$(date +%s)
	if timeout 600 "$t" >"$log" 2>&1; then
		pass=$((pass + 1))
		echo "integration: ok   $name ($(( $(date +%s) - start ))s)"
	else
		fail=$((fail + 1)); failed="$failed $name"
		echo "integration: FAIL $name ($(( $(date +%s) - start ))s)"
		tail -60 "$log" | sed 's/^/    /'
	fi
done
echo "integration: $pass passed, $fail failed${failed:+ (failed:$failed)}"
[ "$fail" -eq 0 ]

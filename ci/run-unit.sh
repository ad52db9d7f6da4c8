#!/bin/sh
# Runs each unit test binary; prints one line per binary and a total.
# Exits non-zero if any failed.
set -u
# Test data that minimal images leave out (see ci/spf-suite.sh).
MF_SPF_SUITE=${MF_SPF_SUITE:-$("$(dirname "$0")/spf-suite.sh")}
export MF_SPF_SUITE
pass=0; fail=0; failed=""
for t in "$@"; do
	name=$(basename "$t")
	out=$(mktemp)
	if "$t" >"$out" 2>&1; then
		pass=$((pass + 1))
		n=$(grep -c '^\[       OK \]' "$out")
		echo "unit: ok   $name ($n tests)"
	else
		fail=$((fail + 1)); failed="$failed $name"
		echo "unit: FAIL $name"; sed 's/^/    /' "$out" | tail -40
	fi
	rm -f "$out"
done
echo "unit: $pass passed, $fail failed${failed:+ (failed:$failed)}"
[ "$fail" -eq 0 ]

#!/bin/sh
# make test: unit tests, then integration tests; one closing line with counts.
# Usage: ci/run-tests.sh UNIT_BINARY...
set -u
cd "$(dirname "$0")/.." || exit 2
unit_rc=0
ci/run-unit.sh "$@" | tee build/unit.out || unit_rc=1
grep -q '^unit: .* 0 failed' build/unit.out || unit_rc=1
integ_rc=0
ci/run-integration.sh | tee build/integration.out || integ_rc=1
grep -q '^integration: .* 0 failed' build/integration.out || integ_rc=1
u=$(grep '^unit: [0-9]* passed' build/unit.out | tail -1)
i=$(grep '^integration: [0-9]* passed' build/integration.out | tail -1)
f=$(grep -c '^fuzz: ok' build/fuzz.out 2>/dev/null)
echo "== test summary: $u; $i; fuzz smoke: $f targets ok"
[ "$unit_rc" -eq 0 ] && [ "$integ_rc" -eq 0 ]

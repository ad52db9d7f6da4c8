#!/bin/sh
# make fuzz: runs each libFuzzer target for a few seconds from its seed corpus.
# Usage: ci/run-fuzz.sh SECONDS FUZZ_BINARY...
set -u
secs=$1; shift
rc=0
for f in "$@"; do
	name=$(basename "$f")
	corpus="build/fuzz/corpus-$name"
	mkdir -p "$corpus"
	seeds="tests/fuzz/seeds/${name#fuzz_}"
	[ -d "$seeds" ] && cp -n "$seeds"/* "$corpus"/ 2>/dev/null
	if "$f" -max_total_time="$secs" -max_len=65536 "$corpus" >"build/fuzz/$name.log" 2>&1; then
		echo "fuzz: ok   $name ($(grep -c . "build/fuzz/$name.log") log lines)"
	else
		rc=1; echo "fuzz: FAIL $name"; tail -30 "build/fuzz/$name.log"
	fi
done
exit $rc

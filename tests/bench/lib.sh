# shellcheck shell=bash disable=SC2034
# Helpers for the benchmarks (sourced after tests/integration/lib/common.sh,
# which gives TMP, fail, free_port, wait_for and the embedded default).
#
# Settings (environment):
#   BENCH_QUICK=1       development mode: small counts, no settling wait
#   BENCH_SETTLE=SECS   wait after `sync` before each file-heavy run
#                       (default 70, BENCHMARKING.md: this file system is
#                       slow to create files for a minute after deletions;
#                       0 with BENCH_QUICK=1)
#
# Figures are printed as "bench: ..." lines; a benchmark exits 0 unless
# something broke (a peer did not start, messages were lost).

BENCH_QUICK=${BENCH_QUICK:-0}
if [ "$BENCH_QUICK" = 1 ]; then
	BENCH_SETTLE=${BENCH_SETTLE:-0}
else
	BENCH_SETTLE=${BENCH_SETTLE:-70}
fi
NCPU=$(nproc)

say() { echo "bench: $*"; }

# Before a run that creates many files: flush, then give the file system
# time to make freed inode and block slots reusable.
bench_settle() { # WHAT
	sync
	if [ "$BENCH_SETTLE" -gt 0 ]; then
		say "sync, then ${BENCH_SETTLE}s pause before $1 (BENCH_SETTLE)"
		sleep "$BENCH_SETTLE"
	fi
}

# Machine-wide CPU jiffies: "busy total" from /proc/stat.
bench_cpu_snap() {
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i;
		print t - $5 - $6, t; exit }' /proc/stat
}

# bench_timed OUTFILE CMD...: runs CMD with its output in OUTFILE and sets
# B_WALL (seconds), B_GEN_CPU (the command's CPU seconds, user + system,
# children included), B_BUSY (machine-wide busy CPU seconds meanwhile) and
# B_RC (its exit status).
bench_timed() {
	local out=$1; shift
	local s0 s1 t0 t1 hz
	hz=$(getconf CLK_TCK)
	s0=$(bench_cpu_snap)
	t0=$(date +%s.%N)
	# A subshell, so that bash's `times` reports the command's CPU alone
	# (second line: user and system time of its children).
	( "$@" >"$out" 2>&1; rc=$?; times >"$out.times"; exit $rc )
	B_RC=$?
	t1=$(date +%s.%N)
	s1=$(bench_cpu_snap)
	B_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	B_GEN_CPU=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/);
		printf "%.3f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$out.times")
	B_BUSY=$(echo "$s0 $s1" | awk -v hz="$hz" '{ printf "%.2f", ($3 - $1) / hz }')
}

# The load generator's share of all CPU time of the machine during the last
# bench_timed run, and of the busy time.
bench_gen_share() {
	awk -v g="$B_GEN_CPU" -v w="$B_WALL" -v n="$NCPU" -v b="$B_BUSY" 'BEGIN {
		all = 0; busy = 0; mach = 0
		if (w > 0) { all = 100 * g / (w * n); mach = 100 * b / (w * n) }
		if (b > 0) busy = 100 * g / b
		printf "load generator CPU %.2fs = %.0f%% of %d CPUs over %.2fs, %.0f%% of the busy CPU time (machine busy %.0f%%)\n", g, all, n, w, busy, mach }'
}

# "RSS PSS" in kB summed over the given PIDs (smaps_rollup; processes that
# are gone are skipped).
bench_mem() {
	local p rss=0 pss=0 r s
	for p in "$@"; do
		[ -r "/proc/$p/smaps_rollup" ] || continue
		read -r r s <<<"$(awk '$1 == "Rss:" { r = $2 } $1 == "Pss:" { s = $2 } END { print r + 0, s + 0 }' \
			"/proc/$p/smaps_rollup" 2>/dev/null)"
		rss=$((rss + ${r:-0})); pss=$((pss + ${s:-0}))
	done
	echo "$rss $pss"
}

# "PID PPID COMM" of every process, from /proc in one pass (no procps
# needed; processes that end meanwhile are skipped).  COMM may be cut at a
# space: it is only compared with names without one.
bench_procs() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk '{
		pid = $1; c = $0; sub(/^[0-9]+ \(/, "", c); rest = c
		sub(/\) .*$/, "", c); gsub(/ /, "_", c)
		sub(/^.*\) /, "", rest); split(rest, a, " ")
		print pid, a[2], c }'
}

# Process tree below (and including) PID.
bench_tree() { # PID
	bench_procs | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1 }
		END {
			n = 1; q[1] = root
			for (i = 1; i <= n; i++) {
				print q[i]
				m = split(kids[q[i]], k, " ")
				for (j = 1; j <= m; j++) q[++n] = k[j]
			}
		}'
}

# Direct children of PID, except those whose command is one of the
# following names (e.g. "sleep" from a supervising shell loop).
bench_children() { # PID [EXCEPT...]
	local pid=$1; shift
	bench_procs | awk -v p="$pid" -v except=" $* " '$2 == p && index(except, " " $3 " ") == 0 { print $1 }'
}

# bench_mem_sampler OUTFILE CMD-PRINTING-PIDS...: in the background, every
# 0.5 s, appends "RSS PSS" of the PIDs that the command prints; stop it with
# bench_mem_sampler_stop.  The peak is what the report quotes.
bench_mem_sampler() {
	local out=$1; shift
	: >"$out"
	(
		while :; do
			# shellcheck disable=SC2046
			bench_mem $("$@") >>"$out"
			sleep 0.5
		done
	) &
	B_SAMPLER=$!
	B_SAMPLER_CMD=("$@")
}
bench_mem_sampler_stop() { # OUTFILE -> "peakRSS peakPSS" in MiB
	kill "$B_SAMPLER" 2>/dev/null; wait "$B_SAMPLER" 2>/dev/null
	# One sample at the end too, so that a run shorter than the sampling
	# interval still has a figure.
	# shellcheck disable=SC2046
	bench_mem $("${B_SAMPLER_CMD[@]}") >>"$1"
	awk '$1 > r { r = $1 } $2 > p { p = $2 } END { printf "%.1f %.1f", r / 1024, p / 1024 }' "$1"
}

# key=value from a line of figures: bench_kv FILE KEY
bench_kv() {
	tr ' ' '\n' <"$1" | awk -F= -v k="$2" '$1 == k { print $2; exit }'
}

# ratio A B: A/B with two decimals ("n/a" when B is 0 or missing)
bench_ratio() {
	awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'
}

# CPU seconds (user + system, reaped children included) used so far by the
# given PIDs together; processes that are gone count nothing.  The
# difference of two calls around a run is what the servers spent on it.
bench_cpu_of() { # PID...
	local hz p t=0 v
	hz=$(getconf CLK_TCK)
	for p in "$@"; do
		# Fields after the command (which may hold spaces): utime is the
		# 12th, stime 13th, cutime 14th, cstime 15th.
		v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 + $14 + $15 }')
		t=$((t + ${v:-0}))
	done
	awk -v t="$t" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }'
}

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# usage: fuzz-parallel.sh FUZZ SEED CASES JOBS [nfnl-fuzz options...]
#
# Split cases 0..CASES-1 of SEED over JOBS nfnl-fuzz processes (--start),
# each in a network namespace of its own (unshare -n, as root: the VM).
# The split changes nothing: case N is the same in any process.  Prints
# each process's report, then the errno table summed over all, and exits
# non-zero if any process failed.  Logs (--log) go to $NFTP_OUT when
# FUZZ_LOG=1 (large: ~300 bytes a case).
set -u

fuzz=$1 seed=$2 cases=$3 jobs=$4
shift 4
out=${NFTP_OUT:-$(mktemp -d)}
mkdir -p "$out"

# Every rejected batch waits for an RCU grace period (nf_tables_abort),
# most of the time under TCG; in the throw-away VM guest, expedite them
# (about twice the speed).  More processes did not help in a TCG guest
# (6.12, 2 vCPUs on a busy host: 1 process 49 cases/s, 2 processes 15/s in
# all), so `make fuzz` uses one by default.
if [[ ${NFTP_IN_VM:-} == 1 && -w /sys/kernel/rcu_expedited ]]; then
	echo 1 >/sys/kernel/rcu_expedited
fi

start_s=$(date +%s)
pids=()
for ((i = 0; i < jobs; i++)); do
	first=$((cases * i / jobs))
	n=$((cases * (i + 1) / jobs - first))
	logopt=()
	[[ ${FUZZ_LOG:-0} == 1 ]] && logopt=(--log "$out/fuzz.$i.log")
	unshare -n "$fuzz" --seed "$seed" --start "$first" --cases "$n" \
		--progress 300 "${logopt[@]}" "$@" >"$out/fuzz.$i.out" 2>&1 &
	pids+=($!)
done

st=0
for ((i = 0; i < jobs; i++)); do
	rc=0
	wait "${pids[$i]}" || rc=$?
	echo "=== process $i (exit $rc)"
	cat "$out/fuzz.$i.out"
	((rc == 0)) || st=1
done
secs=$(($(date +%s) - start_s))

# sum the "outcomes by errno" tables and the counters
cat "$out"/fuzz.*.out | awk -v secs="$secs" -v jobs="$jobs" '
	/^== nfnl-fuzz:/ { for (i = 1; i <= NF; i++) if ($i == "cases" && $(i - 1) ~ /^[0-9]+$/) n += $(i - 1) }
	/^outcomes by errno/ { t = 1; next }
	t && NF == 3 && $2 ~ /^[0-9]+$/ { if (!($1 in tp)) order[++k] = $1; tp[$1] += $2; sk[$1] += $3; next }
	t && NF == 0 { t = 0 }
	/^(unexpected|silently|state changed|no clean|cleanup failed|transient|accepted only)/ {
		split($0, a, ": "); key = a[1]; if (!(key in c)) corder[++m] = key; c[key] += a[2] }
	END {
		printf "\n== all %d processes: %d cases in %d s (%.0f cases/s)\n", jobs, n, secs, secs ? n / secs : 0
		printf "  %-12s %10s %10s\n", "", "tproxy", "socket"
		for (i = 1; i <= k; i++) printf "  %-12s %10d %10d\n", order[i], tp[order[i]], sk[order[i]]
		for (i = 1; i <= m; i++) printf "%s: %d\n", corder[i], c[corder[i]]
	}'
echo "RESULT: $( ((st == 0)) && echo PASS || echo FAIL)"
exit "$st"

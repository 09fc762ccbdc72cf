#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The suite on a debug kernel (KASAN, kmemleak, lockdep, debug objects, net
# refcount trackers: scripts/debug.config), then a scan of what the kernel
# reported.  Builds or reuses the kernel (scripts/debug-kernel.sh), builds
# our modules against it, and boots it once per mode (or --jobs times, each
# boot with a share of the scripts): the suite, then the scan, in the same
# boot (scripts/guest-debug-scan.sh).  A mode fails if a
# test fails or the scan finds anything; each scan counts as one test.
# Ends with "N passed, N failed, N skipped".
#
# usage: check-debug.sh [--ours-only|--ref-only] [--jobs N] [--timeout SECS]
#                       [--mem MB] [--preload KO] [--coverage] [TEST...]
#   --jobs N       split the scripts over N guests run side by side, one
#                  vCPU each (default: one per host CPU, as many as memory
#                  allows), longest first by their times in the last debug
#                  logs (600 s for a script not timed yet)
#   --timeout SECS per script (default 3600; the VM's limit follows from it)
#   --preload KO   insmod KO before the suite, its leaks counting as ours
#                  (proves that the scan fails; see docs)
#   --coverage     ours only, on the gcov kernel (debug-kernel.sh --flavour
#                  gcov: gcov without the detectors, so the suite runs at
#                  its full size and stock speed; the scan checks the kernel
#                  log and the unload), then the line, branch and function
#                  coverage of kmod/ and nft-expr/ over all guests
#                  (scripts/coverage-report), also in
#                  build/logs/coverage.txt; logs named check-gcov-*
#   --coverage-debug  the same on the debug kernel with gcov (--flavour
#                  coverage: 5-10x slower, detectors on); logs check-cov-*
# Logs: build/logs/check-debug-<mode>.log, the guest's files (kernel log,
# kmemleak report, ...) in build/logs/check-debug-<mode>/; with --jobs N,
# check-debug-<mode>.<J>.log and check-debug-<mode>.<J>/ for J = 1..N.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$top"
# shellcheck source=scripts/suite_lib.sh
source scripts/suite_lib.sh

modes=(ours ref) jobs=auto per_test=3600 mem=4096 preload=() coverage=0
while (($#)); do
	case $1 in
	--coverage) coverage=1; shift ;;
	--coverage-debug) coverage=2; shift ;;
	--ours-only) modes=(ours); shift ;;
	--ref-only) modes=(ref); shift ;;
	--jobs) jobs=${2:?}; shift 2 ;;
	--timeout) per_test=${2:?}; shift 2 ;;
	--mem) mem=${2:?}; shift 2 ;;
	--preload) preload=(--preload "$(realpath "${2:?}")"); shift 2 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	--) shift; break ;;
	-*) echo "check-debug: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
((coverage)) && modes=(ours) # the counters are our modules'
if [ "$jobs" = auto ]; then
	# a guest per CPU, each with its memory and 1 GB to spare
	avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
	jobs=$(nproc)
	if ((jobs > avail / (mem + 1024))); then jobs=$((avail / (mem + 1024))); fi
	if ((jobs < 1)); then jobs=1; fi
fi
if ! [[ $jobs =~ ^[1-9][0-9]*$ ]]; then
	echo "check-debug: --jobs wants a number from 1 up, not '$jobs'" >&2
	exit 2
fi

kdir=build/debug-kernel flavour=debug logname=check-debug
case $coverage in
1) kdir=build/kernel-gcov flavour=gcov logname=check-gcov ;;
2) kdir=build/kernel-coverage flavour=coverage logname=check-cov ;;
esac
scripts/debug-kernel.sh --flavour "$flavour"
suite_prepare '' "$kdir"
kver=$SUITE_KVER

# Under KASAN + kmemleak + lockdep a process start, a namespace or a socket
# costs 5-10 times what it does on the stock kernel in the same TCG guest
# (docs/RELIABILITY.md), more than the harness's defaults allow for: longer
# timeouts (lib.sh: BUSYWAIT_TIMEOUT, CLIENT_TIMEOUT, IO_TIMEOUT; run.sh:
# NFTP_TEST_TIMEOUT per script), and the size knobs of the load, fault and
# fuzz scripts turned down.  The detectors look at code paths, and every
# path still runs; only the repetitions are fewer.
slow=(--env NFTP_TEST_TIMEOUT="$per_test" --env BUSYWAIT_TIMEOUT=120000
	--env CLIENT_TIMEOUT=300 --env IO_TIMEOUT=60
	--env LOAD_SCALE=1 --env LOAD_PHASE_TIMEOUT=3000
	--env PKTFUZZ_COUNT=600 --env NFTP_FUZZ_CASES=300
	--env FAULT_KILL_CONNS=20 --env FAULT_TW_PORTS=50
	--env FAULT_CHURN_CONNS=100 --env FAULT_NETNS_CONNS=200
	--env LEAK_TW=50 --env LEAK_ROUNDS=5 --env TW_CONNS=20)
# The gcov kernel has no detectors to slow it or to scan: the suite at its
# full size, the stock kernel's timeouts, and the two fuzzers at 50,000
# each unless PKTFUZZ_COUNT / NFTP_FUZZ_CASES say otherwise (their suite
# default is a few thousand; `make fuzz` runs a million, and so can this to
# count the packets that reach each line); the scan reads the kernel log.
((coverage == 1)) && slow=(--env NFTP_TEST_TIMEOUT="$per_test"
	--env PKTFUZZ_COUNT="${PKTFUZZ_COUNT:-50000}"
	--env NFTP_FUZZ_CASES="${NFTP_FUZZ_CASES:-50000}"
	--env NFTP_SCAN_DETECTORS=none)
# One vCPU: with two, on a host whose 2 cores other VMs share, a vCPU
# spins on locks (kmemleak's, lockdep's) held by the other while the host
# has descheduled it; one vCPU ran execs, namespaces and sockets 1.5-2x
# faster here.  mitigations=off: no page table isolation, whose CR3
# switches flush QEMU's TLB on every syscall (20-30 % more).  Neither
# changes what the detectors check.  no5lvl: -cpu max offers 5-level
# paging, and 6.1's identify_cpu() clears boot_cpu_data's feature bits
# (LA57 too) for a moment at boot; KASAN's shadow bounds follow
# pgtable_l5_enabled(), so a timer interrupt landing then reported every
# access as a wild-memory-access (288 reports in one boot of six) and
# lockdep switched itself off for the run.
vmopts=(--smp 1 --append "mitigations=off no5lvl")
# The scripts, by name, as run.sh takes them.
if (($#)); then
	tests=("$@")
else
	mapfile -t tests < <(find selftests -maxdepth 1 -name 'nft_*.sh' \
		-printf '%f\n' | sed 's/\.sh$//' | sort)
fi
if ((jobs > ${#tests[@]})); then jobs=${#tests[@]}; fi

# "kasan 0, lockdep 2, ..." -> "lockdep 2" (or "no reports"); plus the
# kmemleak figures.
scan_brief() {
	local reports leaks
	reports=$(sed -n 's/^debug-scan: kernel log ([^)]*): //p' "$1" | tr ',' '\n' |
		awk '$2 != 0 { printf "%s%s %s", sep, $1, $2; sep = ", " }')
	leaks=$(sed -n 's/^debug-scan: kmemleak: \([^(]*\).*/\1/p' "$1" | sed 's/ *$//')
	echo "${reports:-no reports}; kmemleak: ${leaks:-no scan}"
}

# split: print the tests in JOBS lines, each the space-separated list of
# one guest: longest first onto the guest with the least so far, by each
# script's time in the newest debug or coverage log that has it ("ok N
# name # 123s" in build/logs/check-{debug,cov,gcov}-*.log, either mode:
# they take about as long).
# The grouping only spreads the time; every script runs either way.
split() {
	local t name secs j best times
	local -a groups=() load=()
	for ((j = 0; j < jobs; j++)); do groups[j]='' load[j]=0; done
	# "name secs" of every passed script, oldest log first
	# shellcheck disable=SC2012,SC2011 # our own names, no spaces
	times=$(ls -tr build/logs/check-debug-*.log build/logs/check-cov-*.log build/logs/check-gcov-*.log 2>/dev/null | xargs -r cat |
		sed -n 's/^ok [0-9]* \([^ ]*\) # \([0-9]*\)s.*/\1 \2/p') || true # no logs yet
	for t in "${tests[@]}"; do
		name=$(basename "$t" .sh)
		secs=$(awk -v n="$name" '$1 == n { s = $2 } END { print s }' <<<"$times")
		echo "$((${secs:-600} + 1)) $t"
	done | sort -k1,1nr -k2 | {
		while read -r secs t; do
			best=0
			for ((j = 1; j < jobs; j++)); do
				((load[j] < load[best])) && best=$j
			done
			groups[best]+="${groups[best]:+ }$t"
			load[best]=$((load[best] + secs))
		done
		printf '%s\n' "${groups[@]}"
	}
}

# guest MODE OUT TEST...: one boot: the suite on TEST..., then the scan.
guest() {
	local mode=$1 out=$2 flag=() timeout
	shift 2
	[ "$mode" = ref ] && flag=(--ref)
	# The VM outlives every script's budget, plus boot, module loading
	# and the kmemleak scans (minutes each here).
	timeout=$(($# * (per_test + 60) + 1800))
	rm -rf "$out"
	scripts/vm-run --kernel-dir "$kdir" --no-load "${flag[@]}" --mem "$mem" \
		"${vmopts[@]}" --timeout "$timeout" --out "$out" "${slow[@]}" -- \
		scripts/guest-debug-scan.sh "${preload[@]}" -- selftests/run.sh "$@"
}

mkdir -p build/logs
total_p=0 total_f=0 total_s=0 summary=()
for mode in "${modes[@]}"; do
	# (not "< <(split)": a failing split would go unseen)
	dealt=$(split)
	mapfile -t groups <<<"$dealt"
	if ((${#groups[@]} != jobs)) || printf '%s\n' "${groups[@]}" | grep -qx ''; then
		# an empty list would make run.sh run every script
		echo "check-debug: could not split ${tests[*]} over $jobs guests" >&2
		exit 1
	fi
	names=() pids=()
	for ((j = 0; j < jobs; j++)); do
		name=$logname-$mode
		((jobs > 1)) && name+=.$((j + 1))
		names[j]=$name
	done
	t0=$SECONDS
	set +e
	if ((jobs == 1)); then
		echo "=== $kver ($flavour): suite on $mode modules, then the scan ==="
		# shellcheck disable=SC2086 # a group is a list of names
		guest "$mode" "build/logs/${names[0]}" ${groups[0]} 2>&1 | tee "build/logs/${names[0]}.log"
		rcs=("${PIPESTATUS[0]}")
	else
		for ((j = 0; j < jobs; j++)); do
			echo "=== $kver ($flavour): guest $((j + 1)) of $jobs, $mode modules:" \
				"${groups[j]}; log build/logs/${names[j]}.log ==="
			# shellcheck disable=SC2086
			guest "$mode" "build/logs/${names[j]}" ${groups[j]} \
				>"build/logs/${names[j]}.log" 2>&1 &
			pids[j]=$!
		done
		rcs=()
		for ((j = 0; j < jobs; j++)); do
			wait "${pids[j]}"
			rcs[j]=$?
			grep -aE '^(not )?ok [0-9]+ |^[0-9]+ passed, ' \
				"build/logs/${names[j]}.log" | sed "s/^/guest $((j + 1)): /"
		done
	fi
	set -e
	took=$((SECONDS - t0))

	for ((j = 0; j < jobs; j++)); do
		log=build/logs/${names[j]}.log out=build/logs/${names[j]}
		# A failed scan is counted below, not as an unexplained exit.
		read -r p f s < <(suite_result "$log" "${rcs[j]}" \
			"check-debug: ${names[j]}" '^debug-scan: RESULT: FAIL')
		suite="$p passed, $f failed, $s skipped"

		# The scan again, here, from the files the guest left: the
		# same verdict when the guest finished, and the only one when
		# it crashed or timed out (then the console log is all there
		# is).
		echo "--- scan of $out ---"
		if scripts/guest-debug-scan.sh --analyze "$out" >"$out.scan" 2>&1; then
			scan=clean p=$((p + 1))
		else
			scan=FAIL f=$((f + 1))
		fi
		cat "$out.scan"
		total_p=$((total_p + p)) total_f=$((total_f + f)) total_s=$((total_s + s))
		who="$kver $mode"
		((jobs > 1)) && who+=" guest $((j + 1))/$jobs"
		summary+=("$who: suite $suite; scan $scan: $(scan_brief "$out.scan"); ${took} s")
	done
done

# Coverage: the counters every guest saved, added up
if ((coverage)); then
	echo
	echo "=== coverage of ${NFTP_BUILD#"$top"/} ==="
	if scripts/coverage-report "$NFTP_BUILD" build/logs/"$logname"-ours*/gcov |
		tee build/logs/coverage.txt; then
		summary+=("coverage: build/logs/coverage.txt")
	else
		summary+=("coverage: no counters (see above)")
		total_f=$((total_f + 1))
	fi
fi

echo
echo "=== summary ==="
printf '%s\n' "${summary[@]}"
echo "$total_p passed, $total_f failed, $total_s skipped"
[ "$total_f" -eq 0 ]

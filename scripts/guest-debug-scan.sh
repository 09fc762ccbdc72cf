#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The debug-kernel half of `make check-debug` (scripts/check-debug.sh).
#
# usage, in a scripts/vm-run --no-load guest of the debug kernel:
#   scripts/guest-debug-scan.sh [--preload KO] -- CMD [ARGS...]
# usage, anywhere (what check-debug.sh runs on the host):
#   scripts/guest-debug-scan.sh --analyze DIR
#
# In the guest, into $NFTP_OUT: records the whole kernel log (kmsg.txt,
# followed from boot on, so a full ring buffer or a crash loses nothing);
# scans kmemleak once and clears it, so that what boot left behind is not
# counted; loads the modules of $NFTP_MODE (scripts/guest-load-modules);
# notes where the watched modules sit in memory (modules.txt); runs CMD
# (the suite); flushes the ruleset and unloads the watched modules (their
# exit paths run under the detectors too, and what they leaked becomes
# unreferenced); on a kernel with gcov, saves our modules' counters
# (gcov/, for scripts/coverage-report); scans kmemleak twice, 5 s apart
# (kmemleak.txt); records lockdep's state (lockdep.txt).  Then analyzes,
# as --analyze does.
#
# Watched modules: ours (nft_tproxy nft_socket nftp_core) with
# NFTP_MODE=ours, the in-tree nft_tproxy/nft_socket stack with ref; plus
# any --preload KO (insmod'ed after them; for testing this scanner).
#
# --analyze DIR prints one line per detector and the findings, and exits 1
# if there is any: a KASAN, lockdep/RCU, sleep-in-atomic, refcount,
# debugobjects, list or ref_tracker report, any other WARNING/BUG/oops,
# an RCU stall, a watched module that would not unload, lockdep switched
# off, kmemleak unavailable (unless NFTP_SCAN_DETECTORS=none said the
# kernel has none: the gcov kernel), or a kmemleak leak whose backtrace is
# in a watched module.  Other leaks are listed but do not fail: kmemleak has
# false positives in core code (pointers it cannot see, e.g. stored
# shifted or in memory it does not scan), and a leak of the rest of the
# kernel is not ours to fix; they are shown so that one can look.
set -uo pipefail

OURS=(nft_tproxy nft_socket nftp_core) # unload order
REF=(nft_tproxy nft_socket nf_tproxy_ipv4 nf_tproxy_ipv6 nf_socket_ipv4 nf_socket_ipv6)
KMEMLEAK=/sys/kernel/debug/kmemleak

say() { echo "debug-scan: $*"; }

# ---------------------------------------------------------------- analyze
# Kernel log lines to count, by the header line of each report (the lines
# after a header belong to it and are not counted again).  Prints "C name
# count" per detector and "D line" for the first findings, with context.
classify_log() {
	sed -E 's/^\[ *[0-9]+\.[0-9]+\] //' "$1" | awk '
	function hit(cat) {
		n[cat]++
		if (shown < 8) { print "D " cat ": " $0; shown++; ctx = 10 }
	}
	/^(WARNING:|BUG:|kernel BUG at|general protection fault|Kernel panic|INFO: |rcu: INFO: |unregister_netdevice: waiting|kmemleak: |refcount_t: |ODEBUG: |list_(add|del) corruption)/ { ctx = 0 }
	ctx > 0 { print "D   | " $0; ctx--; next }
	/^BUG: KASAN:/ || /^BUG: KFENCE:/ { hit("kasan"); next }
	/^BUG: (sleeping function called|scheduling while atomic|workqueue leaked lock)/ { hit("atomic-sleep"); next }
	/^BUG: (MAX_|key |spinlock|rwlock|Invalid wait context)/ { hit("lockdep"); next }
	/^WARNING: CPU: .* at lib\/refcount\.c/ { hit("refcount"); next }
	/^WARNING: CPU: .* at lib\/debugobjects\.c/ { hit("debugobjects"); next }
	/^WARNING: CPU: .* at lib\/list_debug\.c/ { hit("list"); next }
	/^WARNING: CPU: .* at lib\/ref_tracker\.c/ { hit("ref_tracker"); next }
	/^WARNING: CPU: .* at kernel\/(locking|rcu)\// { hit("lockdep"); next }
	/^WARNING: CPU:/ { hit("warning"); next }
	# lockdep and RCU-lockdep reports: "WARNING: possible circular locking
	# dependency detected", "WARNING: suspicious RCU usage", ...
	/^WARNING:/ { hit("lockdep"); next }
	/^INFO: trying to register non-static key/ { hit("lockdep"); next }
	/^(BUG:|kernel BUG at|general protection fault|Kernel panic)/ { hit("bug"); next }
	/INFO: .*detected stall/ { hit("rcu-stall"); next }
	/^INFO: task .* blocked for more than/ { hit("hung-task"); next }
	/^unregister_netdevice: waiting for/ { hit("netdev-ref"); next }
	/^kmemleak: (Kernel memory leak detector disabled|Cannot )/ { hit("kmemleak-off"); next }
	END {
		k = split("kasan lockdep atomic-sleep refcount debugobjects list ref_tracker warning bug rcu-stall hung-task netdev-ref kmemleak-off", order, " ")
		for (i = 1; i <= k; i++) printf "C %s %d\n", order[i], n[order[i]] + 0
	}'
}

# Leaks in kmemleak.txt: prints "C total watched", "D line" for the first
# watched ones, "O line" (header and named frames) for the first others.  A frame is in a watched module by its name,
# "[nft_tproxy]", or, when the module was unloaded before the scan
# (kmemleak symbolizes when read), by its raw address inside a range of
# modules.txt ("name start end", 16 hex digits: compared as strings).
classify_leaks() {
	local file=$1 ranges=$2
	awk -v names="$3" '
	BEGIN { n = split(names, w, " "); for (i = 1; i <= n; i++) watched["[" w[i] "]"] = 1 }
	FNR == NR { lo[NR] = $2; hi[NR] = $3; nr = NR; next }
	function flush() {
		if (blk == "") return
		total++
		if (mine) { ours++; if (ours <= 3) printf "%s", blk }
		else if (++others <= 6) printf "%s", oblk
		blk = ""; oblk = ""; mine = 0
	}
	/^unreferenced object/ { flush() }
	{
		blk = blk "D   | " $0 "\n"
		if (/^unreferenced/ || /\] [a-z_]/) oblk = oblk "O   " $0 "\n"
		for (k in watched) if (index($0, k)) mine = 1
		if (match($0, /\] 0x[0-9a-f]+$/)) {
			a = substr($0, RSTART + 4)
			while (length(a) < 16) a = "0" a
			for (i = 1; i <= nr; i++) if (a >= lo[i] && a < hi[i]) mine = 1
		}
	}
	END { flush(); printf "C %d %d\n", total + 0, ours + 0 }' "$ranges" "$file"
}

analyze() {
	local dir=$1 log findings=0 out name count line total watched
	for log in "$dir"/kmsg.txt "$dir"/dmesg.txt "$dir"/console.log; do
		[[ -s $log ]] && break
	done
	if [[ ! -s $log ]]; then
		say "no kernel log in $dir"
		say "RESULT: FAIL (nothing to scan)"
		return 1
	fi
	out=$(classify_log "$log")
	line=
	while read -r name count; do
		line+="$name $count, "
		findings=$((findings + count))
	done < <(sed -n 's/^C //p' <<<"$out")
	say "kernel log (${log##*/}, $(wc -l <"$log") lines): ${line%, }"
	sed -n 's/^D /  /p' <<<"$out"

	watched=$(cat "$dir/watched.txt" 2>/dev/null || true)
	if [[ ! -e $dir/kmemleak.txt ]]; then
		say "kmemleak: no scan (the guest did not get that far)"
		findings=$((findings + 1))
	elif grep -q '^none:' "$dir/kmemleak.txt"; then
		say "kmemleak: $(head -n1 "$dir/kmemleak.txt")"
	elif grep -q '^unavailable' "$dir/kmemleak.txt"; then
		say "kmemleak: $(head -n1 "$dir/kmemleak.txt")"
		findings=$((findings + 1))
	else
		out=$(classify_leaks "$dir/kmemleak.txt" \
			<(cat "$dir/modules.txt" 2>/dev/null || true) "$watched")
		read -r total count < <(sed -n 's/^C //p' <<<"$out")
		say "kmemleak: $total suspected leaks, $count in watched modules ($watched)"
		sed -n 's/^D /  /p' <<<"$out"
		findings=$((findings + count))
		if ((total > count)); then
			say "  $((total - count)) other suspected leaks (not failing; all in $dir/kmemleak.txt):"
			sed -n 's/^O /  /p' <<<"$out"
		fi
	fi
	if [[ -s $dir/lockdep.txt ]]; then
		if grep -q 'debug_locks: *1' "$dir/lockdep.txt"; then
			say "lockdep: on to the end ($(grep -E 'dependency chains:' "$dir/lockdep.txt" | xargs))"
		else
			say "lockdep: switched itself off during the run (after a report, or never on)"
			findings=$((findings + 1))
		fi
	fi
	if [[ -s $dir/unload.txt ]]; then
		say "unload: $(cat "$dir/unload.txt")"
		grep -q '^ok' "$dir/unload.txt" || findings=$((findings + 1))
	fi
	if ((findings)); then
		say "RESULT: FAIL ($findings findings)"
		return 1
	fi
	say "RESULT: clean"
}

# ---------------------------------------------------------------- guest
kmemleak_scan() {
	echo scan >"$KMEMLEAK" 2>/dev/null
}

unload_watched() {
	local m left=()
	# Rules in the initial namespace hold the expressions; the tests' own
	# namespaces go away asynchronously (netns cleanup work).
	nft flush ruleset 2>/dev/null
	for _ in $(seq 60); do
		left=()
		for m in "$@"; do
			[[ -d /sys/module/$m ]] || continue
			rmmod "$m" 2>/dev/null || left+=("$m")
		done
		((${#left[@]})) || break
		sleep 1
	done
	if ((${#left[@]})); then
		echo "FAILED: still loaded after 60 s: $(for m in "${left[@]}"; do
			printf '%s(refcnt %s) ' "$m" "$(cat "/sys/module/$m/refcnt" 2>/dev/null)"
		done)"
	else
		echo "ok: $* unloaded"
	fi
}

# On a kernel built for coverage (scripts/kconfig/coverage.config), the
# counters of the modules built in $NFTP_BUILD, which gcov keeps after
# they are unloaded: into DIR/gcov/, by path below that directory, for
# scripts/coverage-report.
save_gcov() {
	local src=/sys/kernel/debug/gcov${NFTP_BUILD:-} f rel n=0
	[[ -n ${NFTP_BUILD:-} && -d $src ]] || return 0
	while IFS= read -r f; do
		rel=${f#"$src"/}
		mkdir -p "$1/gcov/$(dirname "$rel")"
		# debugfs files: cat, whose reads follow the file's own size
		cat "$f" >"$1/gcov/$rel" && n=$((n + 1))
	done < <(find "$src" -name '*.gcda')
	say "gcov: saved $n counter files of $NFTP_BUILD"
}

guest_main() {
	local preload=() watch=() ko rc t0 m out=${NFTP_OUT:?NFTP_OUT unset: run in scripts/vm-run}
	while (($#)); do
		case $1 in
		--preload) preload+=("${2:?--preload needs a .ko}"); shift 2 ;;
		--) shift; break ;;
		*) break ;;
		esac
	done
	(($#)) || { echo "usage: $0 [--preload KO] -- CMD..." >&2; return 2; }
	[[ ${NFTP_IN_VM:-} == 1 ]] || { echo "$0: only in scripts/vm-run" >&2; return 2; }
	cd "${NFTP_ROOT:?}" || return 2

	# dmesg -w copes with records lost to a full ring (EPIPE), cat does not.
	dmesg -w >"$out/kmsg.txt" 2>&1 &
	local follower=$!

	if [[ -w $KMEMLEAK ]]; then
		t0=$SECONDS
		kmemleak_scan && echo clear >"$KMEMLEAK"
		say "kmemleak: boot baseline scanned and cleared in $((SECONDS - t0)) s"
	fi

	scripts/guest-load-modules "${NFTP_MODE:-ours}" || return 125
	if [[ ${NFTP_MODE:-ours} == ref ]]; then watch=("${REF[@]}"); else watch=("${OURS[@]}"); fi
	for ko in "${preload[@]}"; do
		m=$(basename "$ko" .ko)
		watch+=("${m//-/_}")
		insmod "$ko" || say "insmod $ko failed"
	done
	echo "${watch[*]}" >"$out/watched.txt"
	# "name start end" (16 hex digits), for the frames kmemleak prints
	# as bare addresses once the module is gone
	local name size _ addr
	while read -r name size _ _ _ addr _; do
		[[ " ${watch[*]} " == *" $name "* && $addr == 0x* ]] || continue
		printf '%s %016x %016x\n' "$name" "$((addr))" "$((addr + size))"
	done </proc/modules >"$out/modules.txt"

	t0=$SECONDS
	"$@"
	rc=$?
	say "command exited $rc after $((SECONDS - t0)) s"

	unload_watched "${watch[@]}" | tee "$out/unload.txt" | sed 's/^/debug-scan: unload: /'
	save_gcov "$out"
	if [[ -r $KMEMLEAK ]]; then
		t0=$SECONDS
		# Documentation/dev-tools/kmemleak.rst: objects younger than 5 s
		# are never reported, and a second scan confirms the first.
		kmemleak_scan
		sleep 5
		kmemleak_scan
		cat "$KMEMLEAK" >"$out/kmemleak.txt" ||
			echo "unavailable: reading $KMEMLEAK failed (kmemleak disabled itself?)" >"$out/kmemleak.txt"
		say "kmemleak: scanned twice in $((SECONDS - t0)) s"
	elif [[ ${NFTP_SCAN_DETECTORS:-} == none ]]; then
		echo "none: a kernel built without detectors (the gcov kernel)" >"$out/kmemleak.txt"
	else
		echo "unavailable: no $KMEMLEAK (CONFIG_DEBUG_KMEMLEAK, debugfs)" >"$out/kmemleak.txt"
	fi
	cat /proc/lockdep_stats >"$out/lockdep.txt" 2>/dev/null
	sleep 1
	kill "$follower" 2>/dev/null
	wait "$follower" 2>/dev/null
	dmesg >"$out/dmesg.txt" 2>/dev/null

	analyze "$out"
	local st=$?
	((rc)) && return "$rc"
	return "$st"
}

if [[ ${1:-} == --analyze ]]; then
	analyze "${2:?--analyze needs a directory}"
	exit
fi
guest_main "$@"

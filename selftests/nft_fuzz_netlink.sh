#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nf_tables netlink fuzzing of the tproxy and socket expressions, short and
# deterministic: tools/nfnl-fuzz runs the same cases (fixed seed) twice,
#
#   1. as root in a network namespace of its own (ip netns), and
#   2. as an unprivileged user in a new user + network namespace
#      (`unshare -Urn`: CAP_NET_ADMIN over that netns only), the path an
#      attacker without privileges has,
#
# against whatever tproxy/socket modules are loaded (ours, or the in-tree
# ones: then the fuzzer's --in-tree model, which tolerates upstream's u8
# truncation of the tproxy family and the socket key). Each run must end
# with no failure: every message answered, no acceptance of what upstream's
# rules reject, every accepted rule dumping back exactly as sent, every
# rejected batch changing nothing. Both runs must give the same outcome
# for every case.
#
# NFTP_FUZZ_CASES (default 3000), NFTP_FUZZ_SEED (default 20250101).

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nfnl-fuzz nfnl-raw

CASES=${NFTP_FUZZ_CASES:-3000}
SEED=${NFTP_FUZZ_SEED:-20250101}

checktool "unshare --help" "create namespaces without unshare"

# Which modules are we fuzzing? Ours carry nftp_core.
model=()
if [ -d /sys/module/nftp_core ]; then
	log "modules: ours (nftp_core loaded): strict model"
	# IPv6 local-route needs IP6SKB_MULTIPATH (kmod/compat.h): 6.1 on
	probe_ns=""
	setup_ns probe_ns
	if [ ! -e /proc/net/if_inet6 ]; then
		log "no IPv6 in $(uname -r): no inet or ip6 tables (the fuzzer probes its table families)"
	elif ! ip netns exec "$probe_ns" "$NFNL_RAW" --table probe_lr --table-family ip6 \
		--tproxy-family ip6 --port 1080 --tproxy-flags 2 > /dev/null 2>&1; then
		log "tproxy local-route for IPv6 is refused on $(uname -r) (fuzzed as refused: --no-local-route6)"
		model+=(--no-local-route6)
	fi
	if ! kernel_has_sock_cgroup; then
		out=$(ip netns exec "$probe_ns" "$NFNL_RAW" --table probe_cg --table-family ip \
			--hook prerouting --socket-key cgroupv2 --socket-level 1 2>&1) || true
		if sock_cgroup_lacks "socket cgroupv2, fuzzed as refused (--no-cgroupv2)" "$out"; then
			model+=(--no-cgroupv2)
		else
			fail "socket cgroupv2 without socket cgroup data: not EOPNOTSUPP"
			echo "$out" | indent
		fi
	fi
	cleanup_all_ns
else
	log "modules: in-tree (no nftp_core): --in-tree model"
	model=(--in-tree)
	# What the in-tree socket of this kernel predates (cgroupv2: 5.13,
	# output chains: 5.18) it refuses; tell the model, and say N/A.
	probe_ns=""
	setup_ns probe_ns
	# raw_probe TABLE ARGS: a table of its own each (nfnl-raw's chain
	# has one name: a second hook in the same table is refused)
	raw_probe()
	{
		ip netns exec "$probe_ns" "$NFNL_RAW" \
			--table "$1" --table-family inet "${@:2}" > /dev/null 2>&1
	}
	if ! raw_probe probe_cg --hook prerouting --socket-key cgroupv2 --socket-level 1 &&
	   ref_lacks "socket cgroupv2 (fuzzed as refused: --no-cgroupv2)" 1; then
		model+=(--no-cgroupv2)
	fi
	if ! raw_probe probe_out --hook output --socket-key transparent &&
	   ref_lacks "socket in output chains (fuzzed as refused: --no-socket-output)" 1; then
		model+=(--no-socket-output)
	fi
	cleanup_all_ns
fi

args=(--seed "$SEED" --cases "$CASES" --show 10 "${model[@]}")

# Every rejected batch costs an RCU grace period (nf_tables_abort), the
# bulk of the time under TCG: in the throw-away VM guest only, expedite
# them for the run (about twice the speed), and restore the setting after.
RCU_EXP=/sys/kernel/rcu_expedited
rcu_old=""
# shellcheck disable=SC2317 # on_exit_hook
restore_rcu() { [ -n "$rcu_old" ] && echo "$rcu_old" > "$RCU_EXP"; }
if [ "${NFTP_IN_VM:-}" = 1 ] && [ -w "$RCU_EXP" ]; then
	rcu_old=$(cat "$RCU_EXP")
	on_exit_hook=restore_rcu
	echo 1 > "$RCU_EXP"
fi

# run_fuzz DESC LOG RUNNER...: run the fuzzer through RUNNER, check it
run_fuzz()
{
	local desc=$1 logf=$2 out rc=0
	shift 2
	out=$("$@" "$NFNL_FUZZ" "${args[@]}" --log "$logf" 2>&1) || rc=$?
	if [ "$rc" -eq "$ksft_skip" ]; then
		echo "$out" | indent
		skip_all "$desc: the kernel has no tproxy/socket expression"
	fi
	if [ "$rc" -ne 0 ] || ! grep -q '^RESULT: PASS' <<< "$out"; then
		fail "$desc: nfnl-fuzz exit $rc"
		echo "$out" | indent
		return 1
	fi
	pass "$desc: $(grep -m1 -o '[0-9]* cases in [0-9.]* s ([0-9]* cases/s)' <<< "$out")"
	sed -n -e '/^nfnl-fuzz: table families/p' -e '/^outcomes by errno/,/^RESULT/p' <<< "$out" | indent
	return 0
}

# 1. root in a netns of its own
nsf=""
setup_ns nsf
run_fuzz "root in netns" "$TMPD/root.log" ip netns exec "$nsf"

# 2. unprivileged: nobody in `unshare -Urn`; if unprivileged user
# namespaces are off here, root in `unshare -Urn` (still only the
# capabilities of the new user namespace)
chmod 0777 "$TMPD"
runner=(unshare -Urn)
if command -v setpriv > /dev/null &&
   setpriv --reuid=65534 --regid=65534 --clear-groups unshare -Urn true 2> /dev/null; then
	runner=(setpriv --reuid=65534 --regid=65534 --clear-groups unshare -Urn)
	desc="unprivileged (uid 65534, unshare -Urn)"
else
	desc="root in unshare -Urn (unprivileged user namespaces are off)"
fi
run_fuzz "$desc" "$TMPD/user.log" "${runner[@]}"

# 3. the same outcome for every case both ways
if [ -s "$TMPD/root.log" ] && [ -s "$TMPD/user.log" ]; then
	if diff -q "$TMPD/root.log" "$TMPD/user.log" > /dev/null; then
		pass "root and user-namespace runs: identical outcomes for all $CASES cases"
	else
		fail "root and user-namespace runs differ:"
		diff "$TMPD/root.log" "$TMPD/user.log" | head -20 | indent
	fi
fi

exit "$ret"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Allocation failures on the control path, injected as syzkaller does
# (fail-nth, Documentation/fault-injection/fault-injection.rst): each
# operation below runs with the Nth allocation the kernel makes for its
# batch failed, for N = 1, 2, ... until one runs without reaching N.  Each
# run must end either accepted, the ruleset as after the operation, or
# refused with ENOMEM or ENOBUFS, the ruleset as before it (for an answer
# the kernel could not send, either): never half of it.  After each run
# the table is deleted, and then the expression modules hold no more
# references than before, and the namespace has no defrag hook left (a
# tproxy rule enables defrag in its namespace).  Leaks and kernel reports
# are for the debug kernel's scan (scripts/check-debug.sh runs this too).
#
# Operations, on rules that hold tproxy or socket: add a table with a
# tproxy rule; add to an existing chain tproxy (ip, ip6, both families),
# socket transparent and socket cgroupv2 rules, and with our modules
# socket uid and a fail-closed tproxy; replace a tproxy rule with a socket
# rule and back; delete a tproxy rule; delete a table holding both.
# Needs CONFIG_FAULT_INJECTION, CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC
# and CONFIG_FAULT_INJECTION_DEBUG_FS (selftests/config); skipped without.

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft nfnl-raw

# the largest N tried: an operation that still fails there never ends
FAILNTH_MAX=${FAILNTH_MAX:-1000}

[ -e /proc/thread-self/fail-nth ] ||
	skip_all "no /proc/thread-self/fail-nth: $(uname -r) has no CONFIG_FAULT_INJECTION"
dbg=/sys/kernel/debug
[ -d $dbg/failslab ] || mount -t debugfs debugfs $dbg 2> /dev/null
if [ ! -d $dbg/failslab ] || [ ! -d $dbg/fail_page_alloc ]; then
	skip_all "no $dbg/failslab or fail_page_alloc: $(uname -r) has no CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC or CONFIG_FAULT_INJECTION_DEBUG_FS"
fi

# failslab and fail_page_alloc leave allocations that may sleep alone by
# default: nearly all of the control path's.  Fail those too, without a
# report each; the old values come back at the end.
declare -A knob_saved
set_knob()
{
	[ -n "${knob_saved[$1]+set}" ] || knob_saved[$1]=$(cat "$dbg/$1")
	echo "$2" > "$dbg/$1"
}
# shellcheck disable=SC2317 # on_exit_hook
restore_knobs()
{
	local k
	for k in "${!knob_saved[@]}"; do
		echo "${knob_saved[$k]}" > "$dbg/$k"
	done
}
on_exit_hook=restore_knobs
for k in failslab fail_page_alloc; do
	set_knob "$k/ignore-gfp-wait" N
	set_knob "$k/verbose" 0
done
set_knob fail_page_alloc/ignore-gfp-highmem N
set_knob fail_page_alloc/min-order 0

ns=""
setup_ns ns
ns_nft() { ip netns exec "$ns" "$NFT" "$@"; }
state() { ns_nft list ruleset; }

# ---------------------------------------------------------------- states
# (called by name, from fail_nth_op)
# shellcheck disable=SC2317
p_empty() { :; }
p_chain()
{
	ns_nft -f - <<-EOF
	table inet fnth {
		chain c {
			type filter hook prerouting priority mangle; policy accept;
		}
	}
	EOF
}
p_tproxy() { p_chain && ns_nft add rule inet fnth c meta l4proto tcp tproxy to :3129; }
# shellcheck disable=SC2317
p_socket() { p_chain && ns_nft add rule inet fnth c socket transparent 1 accept; }
p_both() { p_tproxy && ns_nft add rule inet fnth c socket transparent 1 accept; }

# run_op [--fail-nth N] ARG...: nfnl-raw in the namespace; an argument
# @WORD is the handle of the rule of inet fnth c that shows WORD
run_op()
{
	local a h args=()
	for a in "$@"; do
		if [ "${a:0:1}" = @ ]; then
			h=$(ns_nft -a list chain inet fnth c |
				sed -n "s/.*${a#@}.* # handle \([0-9]*\)\$/\1/p" | head -n 1)
			[ -n "$h" ] || { echo "no rule with ${a#@}"; return; }
			a=$h
		fi
		args+=("$a")
	done
	ip netns exec "$ns" "$NFNL_RAW" "${args[@]}" 2>&1
}

# ---------------------------------------------------------------- clean
# what the expression modules hold: one reference per expression in any
# rule (nf_tables takes the type's module per expression)
MODS=(nft_tproxy nft_socket)
refcnts()
{
	local m
	for m in "${MODS[@]}"; do
		printf '%s=%s ' "$m" "$(cat "/sys/module/$m/refcnt" 2> /dev/null || echo none)"
	done
}
# defrag hooks of the namespace (nft list hooks: kernels from 5.14)
defrag_hooks() { { ns_nft list hooks ip; ns_nft list hooks ip6; } 2> /dev/null | grep -i defrag; }
have_hooks=1
ns_nft list hooks ip > /dev/null 2>&1 || {
	have_hooks=0
	log "nft list hooks does not work on $(uname -r): defrag hooks left unchecked"
}

# reset: the namespace's ruleset gone; CLEAN_ERR says what stayed behind
# (the release of a rule's expressions runs after the commit, in a work
# item: give it time)
reset()
{
	ns_nft flush ruleset
	CLEAN_ERR=""
	busywait 5000 clean_now || CLEAN_ERR=$(clean_now; echo "$CLEAN_WHY")
}
clean_now()
{
	local r
	r=$(refcnts)
	CLEAN_WHY=""
	[ "$r" = "$base_refs" ] || CLEAN_WHY="module references $r, before $base_refs"
	if [ "$have_hooks" = 1 ] && defrag_hooks > /dev/null; then
		CLEAN_WHY+="${CLEAN_WHY:+; }defrag hook left: $(defrag_hooks | head -n 1)"
	fi
	[ -z "$CLEAN_WHY" ]
}

# ---------------------------------------------------------------- runs
# fail_nth_op NAME KIND PRE ARG...: the operation ARG... (nfnl-raw) from
# the state PRE, first without a fault, then with allocation N failed for
# N = 1, 2, ...  KIND: all (every module must do it), ref (the in-tree
# modules lack it: N/A there), cg (socket cgroupv2: cgroupv2_lacks)
fail_nth_op()
{
	local name=$1 kind=$2 pre=$3 before after out first st n what
	local refused=0 accepted=0 lost=0
	shift 3

	reset
	$pre || { fail "$name: cannot set up the state before"; return; }
	before=$(state)
	out=$(run_op "$@")
	first=${out%%$'\n'*}
	if [ "$first" != ACCEPTED ]; then
		case $kind in
		ref) ref_lacks "$name ($first)" 1 && return ;;
		cg) cgroupv2_lacks "$name" "$first" && return ;;
		esac
		fail "$name: refused without a fault: $first"
		return
	fi
	after=$(state)
	[ "$after" != "$before" ] || { fail "$name: changes nothing"; return; }

	for ((n = 1; n <= FAILNTH_MAX; n++)); do
		reset
		if [ -n "$CLEAN_ERR" ]; then
			if ((n == 1)); then what="run without a fault"; else what="allocation $((n - 1)) failed"; fi
			fail "$name, $what, then the table deleted: $CLEAN_ERR"
			return
		fi
		$pre || { fail "$name: cannot set up the state before (N=$n)"; return; }
		out=$(run_op --fail-nth "$n" "$@")
		first=${out%%$'\n'*}
		st=$(state)
		if [[ $out == *"fail-nth $n: not reached"* ]]; then
			# no Nth allocation: the operation ran unfailed
			if [ "$first" != ACCEPTED ] || [ "$st" != "$after" ]; then
				fail "$name: ran without a fault ($((n - 1)) allocations), but: $first"
				return
			fi
			break
		fi
		if [[ $out != *"fail-nth $n: injected"* ]]; then
			fail "$name, allocation $n: nfnl-raw did not run: $out"
			return
		fi
		case $first in
		ACCEPTED)
			# an allocation with a fallback, or one that may fail
			accepted=$((accepted + 1))
			[ "$st" = "$after" ] ||
				{ fail "$name, allocation $n failed: accepted, but the ruleset is not as after"; return; }
			;;
		"REJECTED errno=ENOMEM "* | "REJECTED errno=ENOBUFS "*)
			if [[ $first == *" msg=LOST" ]]; then
				lost=$((lost + 1))
				[ "$st" = "$before" ] || [ "$st" = "$after" ] ||
					{ fail "$name, allocation $n failed: answer lost, and the ruleset is half changed"; return; }
			else
				refused=$((refused + 1))
				[ "$st" = "$before" ] ||
					{ fail "$name, allocation $n failed: $first, but the ruleset changed"; echo "$st" | indent; return; }
			fi
			;;
		*)
			fail "$name, allocation $n failed: $first (not ENOMEM or ENOBUFS)"
			return
			;;
		esac
	done
	if ((n > FAILNTH_MAX)); then
		fail "$name: still reaches allocation $FAILNTH_MAX"
		return
	fi
	reset
	[ -z "$CLEAN_ERR" ] || { fail "$name: at the end: $CLEAN_ERR"; return; }
	pass "$name: each of $((n - 1)) allocations failed in turn, cleanly" \
		"($refused refused, $accepted accepted anyway, $lost answers lost)"
}

# The modules loaded (a first rule of each), and their references once
# that rule's release has run: the same for a second
p_both || { fail "cannot add tproxy and socket rules"; exit "$ret"; }
ns_nft flush ruleset
base_refs=$(refcnts)
for _ in $(seq 50); do
	sleep 1
	r=$(refcnts)
	[ "$r" = "$base_refs" ] && break
	base_refs=$r
done
log "fail-nth on $(uname -r), ${NFTP_MODE:-unset} modules; references at rest: $base_refs"

TP=(--table-family inet --table fnth --chain c --existing)
fail_nth_op "add a table, chain and tproxy rule" all p_empty \
	--table-family ip --table fnth --chain c --port 3129
fail_nth_op "add tproxy ip to 127.0.0.1:3129" all p_chain \
	"${TP[@]}" --nfproto ipv4 --tproxy-family ip --addr 127.0.0.1 --port 3129
fail_nth_op "add tproxy ip6 to [::1]:3129" all p_chain \
	"${TP[@]}" --nfproto ipv6 --tproxy-family ip6 --addr ::1 --port 3129
fail_nth_op "add tproxy to :3129 (both families)" all p_chain \
	"${TP[@]}" --tproxy-family unspec --port 3129
fail_nth_op "add socket transparent" all p_chain \
	"${TP[@]}" --socket-key transparent --socket-value 1 --verdict accept
fail_nth_op "add socket cgroupv2 level 1" cg p_chain \
	"${TP[@]}" --socket-key cgroupv2 --socket-level 1
fail_nth_op "add socket uid" ref p_chain \
	"${TP[@]}" --socket-key uid --socket-value 0
fail_nth_op "add tproxy fail-closed" ref p_chain \
	"${TP[@]}" --tproxy-family unspec --port 3129 --tproxy-flags 1
fail_nth_op "replace a tproxy rule with a socket rule" all p_tproxy \
	"${TP[@]}" --replace @tproxy --socket-key transparent --socket-value 1
fail_nth_op "replace a socket rule with a tproxy rule" all p_socket \
	"${TP[@]}" --replace @socket --tproxy-family unspec --port 3129
fail_nth_op "delete a tproxy rule" all p_both \
	--table-family inet --table fnth --chain c --delete @tproxy
fail_nth_op "delete a table with tproxy and socket rules" all p_both \
	--table-family inet --table fnth --delete-table

exit "$ret"

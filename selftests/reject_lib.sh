# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # RAW_OUT is for the sourcing script, nsr its namespace
#
# Helpers for nft_tproxy_reject.sh and nft_socket_reject.sh, sourced after
# lib.sh: rules that must be refused, through nft and straight through
# netlink (nfnl-raw), in the namespace $nsr, with the ruleset unchanged
# each time.  The script defines baseline(), which prints the ruleset that
# stands all through, loads it once and sets BEFORE to its listing.

nft_r() { ip netns exec "$nsr" "$NFT" "$@"; }

# reject_restore: back to the baseline after an unexpected change
reject_restore()
{
	nft_r flush ruleset
	nft_r -f - <<< "$(baseline)"
	BEFORE=$(nft_r list ruleset)
}

# unchanged DESC: the ruleset is still the baseline (else a FAIL, and back)
unchanged()
{
	local now
	now=$(nft_r list ruleset)
	if [ "$now" != "$BEFORE" ]; then
		fail "$1: ruleset changed by a rejected transaction"
		diff <(echo "$BEFORE") <(echo "$now") | indent
		reject_restore
		return 1
	fi
	return 0
}

# reject DESC MESSAGE [nft options] < ruleset: nft -f must fail, print
# MESSAGE, and change nothing.  MESSAGE may list the wordings of several
# nft releases: A|B.
reject()
{
	local desc=$1 msg=$2 f out rc=0 alts m
	shift 2
	f=$(mktemp "$TMPD/bad.XXXXXX")
	cat > "$f"
	out=$(nft_r "$@" -f "$f" 2>&1) || rc=$?
	if [ "$rc" -eq 0 ]; then
		fail "$desc: accepted"
		indent < "$f"
		reject_restore
		return
	fi
	IFS='|' read -r -a alts <<< "$msg"
	for m in "${alts[@]}"; do
		grep -qF -- "$m" <<< "$out" && break
		m=""
	done
	if [ -z "$m" ]; then
		fail "$desc: rejected, but without '$msg'"
		echo "$out" | indent
		unchanged "$desc"
		return
	fi
	unchanged "$desc" && pass "$desc: rejected ('$m'), ruleset unchanged"
}

# raw DESC ERRNO[|ERRNO2] nfnl-raw args: true when the kernel rejects
# the batch with that errno and the ruleset is unchanged; else false, what
# nfnl-raw said in RAW_OUT, and the baseline back if it was accepted
raw()
{
	local desc="kernel: $1" expect=$2 out rc=0 e alts
	shift 2
	out=$(ip netns exec "$nsr" "$NFNL_RAW" --table rawtest "$@" 2>&1) || rc=$?
	if [ "$rc" -eq 1 ]; then
		IFS='|' read -r -a alts <<< "$expect"
		for e in "${alts[@]}"; do
			case "$out" in
			"REJECTED errno=$e "*)
				unchanged "$desc" && pass "$desc: $out, ruleset unchanged"
				return 0
				;;
			esac
		done
	fi
	RAW_OUT=$out
	if [ "$rc" -eq 0 ]; then
		RAW_OUT="accepted by the kernel: $(nft_r list ruleset)"
		reject_restore
	fi
	return 1
}

# raw_expect DESC ERRNO nfnl-raw args: raw, a FAIL when it does not hold
raw_expect()
{
	local desc=$1 expect=$2
	shift 2
	raw "$desc" "$expect" "$@" && return
	fail "kernel: $desc: expected errno=$expect, got: $RAW_OUT"
	unchanged "$desc"
}

# raw_family_case TABLEFAMILY HOOK WHAT nfnl-raw args: WHAT (the
# expression the args add) in a table of that family must be refused with
# EOPNOTSUPP; skipped when this kernel has no such table and chain (the
# case would pass for the wrong reason)
raw_family_case()
{
	local tf=$1 hook=$2 what=$3 out rc=0
	shift 3
	out=$(ip netns exec "$nsr" "$NFNL_RAW" --table rawtest --table-family "$tf" --hook "$hook" --no-tproxy 2>&1) || rc=$?
	if [ "$rc" -ne 0 ]; then
		log "kernel: $tf table with a $hook chain not available here ($out): case skipped"
		return
	fi
	nft_r delete table "$tf" rawtest
	raw_expect "$what in table family $tf ($hook chain)" EOPNOTSUPP \
		--table-family "$tf" --hook "$hook" "$@"
}

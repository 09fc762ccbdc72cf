#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nft socket: what must be rejected, cleanly and atomically.
#
# A baseline ruleset with valid socket rules (prerouting, input, output;
# directly and through a jump) is loaded; then every bad ruleset is loaded
# as one transaction: it must fail with the expected error, and
# `nft list ruleset` must equal the baseline afterwards.
#
#   nft -> kernel: socket in forward/postrouting base chains (ip, ip6,
#   inet), in a regular chain reached from forward/postrouting by jump,
#   goto, verdict map, added in the same transaction or later; socket in
#   bridge, netdev and arp tables (nft sends them, the kernel refuses).
#   nfnl-raw (what nft cannot send): unknown key, nft-tproxy's socket
#   uid/gid where hook or register do not fit, cgroupv2 without a
#   level and with level 256, no key, no register, the verdict register,
#   a register too small for the key, bridge/netdev/arp tables, forward/
#   postrouting hooks, a jump from forward; and what the kernel must accept
#   (every key in prerouting/input/output, level 255).
# Expected errnos are upstream's: EOPNOTSUPP for hooks, families, unknown
# key and level > 255; EINVAL for missing attributes and bad registers
# (ERANGE for a register range overflow). The reference run on the same
# kernel must agree (same script). In-tree modules before 5.13 have no
# cgroupv2 and before 5.18 no output hook: N/A there.

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft nfnl-raw
# shellcheck source=selftests/reject_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/reject_lib.sh"
# shellcheck source=selftests/socket_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/socket_lib.sh"

nsr=""
setup_ns nsr

# the output chain: socket in output is newer (in-tree) than the rest
OUT_RULES='		meta l4proto tcp socket mark 0x2a counter
		meta l4proto udp socket wildcard 0 counter'

baseline()
{
	cat <<-EOF
	table inet sbase {
		chain sub {
			meta l4proto tcp socket transparent 1 meta mark set 1 accept
		}
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			socket transparent 1 meta mark set socket mark accept
			jump sub
		}
		chain empty {
		}
		chain in {
			type filter hook input priority filter; policy accept;
			socket wildcard 1 counter
			jump empty
		}
		chain fw {
			type filter hook forward priority filter; policy accept;
		}
		chain post {
			type filter hook postrouting priority filter; policy accept;
		}
		chain out {
			type filter hook output priority filter; policy accept;
	$OUT_RULES
		}
	}
	table ip sbase4 {
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			tcp dport 80 socket transparent 0 counter
		}
	}
	table ip6 sbase6 {
		chain in {
			type filter hook input priority filter; policy accept;
			udp dport 53 socket mark 0x1 counter
		}
	}
	EOF
}

HAVE_OUT=1
if ! out=$(nft_r -f - <<< "$(baseline)" 2>&1); then
	if OUT_RULES="" && out2=$(nft_r -f - <<< "$(baseline)" 2>&1) &&
	   ref_lacks "socket in an output chain (refused: $(head -n 1 <<< "$out"))" 1; then
		HAVE_OUT=0
	else
		fail "baseline ruleset with valid socket rules does not load"
		echo "$out" "${out2:-}" | indent
		exit "$ret"
	fi
fi
BEFORE=$(nft_r list ruleset)
if ! grep -q "socket transparent 1 meta mark set socket mark accept" <<< "$BEFORE" ||
   ! grep -q "socket wildcard 1" <<< "$BEFORE"; then
	fail "baseline ruleset does not list back as loaded"
	echo "$BEFORE" | indent
	exit "$ret"
fi
pass "baseline: socket in prerouting, input$([ "$HAVE_OUT" = 1 ] && echo ", output") (ip, ip6, inet; direct and via jump) loads"

KMSG="Could not process rule: Operation not supported"

# --- hooks: forward and postrouting, base chains --------------------------
# (one key per table family and hook, in turn: each test costs seconds
# under TCG)
keys=("transparent 1" "mark 0x2a" "wildcard 0")
k=0
for tf in ip ip6 inet; do
	for hook in forward postrouting; do
		key=${keys[$((k++ % 3))]}
		reject "socket $key in $tf $hook chain" "$KMSG" <<-EOF
		table $tf newt {
			chain ok {
				type filter hook prerouting priority mangle; policy accept;
				meta l4proto tcp socket $key counter
			}
			chain bad {
				type filter hook $hook priority filter; policy accept;
				meta l4proto tcp socket $key counter
			}
		}
		add rule inet sbase pre meta l4proto udp socket transparent 1 counter
		EOF
	done
done

# --- reached through jumps --------------------------------------------------
reject "socket in a new regular chain jumped to from a new forward chain" "$KMSG" <<-'EOF'
table inet newt {
	chain sub2 {
		socket transparent 1 counter
	}
	chain fw2 {
		type filter hook forward priority filter; policy accept;
		jump sub2
	}
}
EOF
reject "jump from the existing forward chain to an existing chain holding socket" "$KMSG" <<-'EOF'
add rule inet sbase fw jump sub
EOF
reject "goto from the existing postrouting chain to an existing chain holding socket" "$KMSG" <<-'EOF'
add rule inet sbase post meta l4proto tcp goto sub
EOF
reject "verdict map from the forward chain to an existing chain holding socket" "$KMSG" <<-'EOF'
add rule inet sbase fw tcp dport vmap { 81 : jump sub }
EOF
reject "socket added to a chain that the postrouting chain reaches" "$KMSG" <<-'EOF'
add chain inet sbase mid
add rule inet sbase post jump mid
add rule inet sbase mid socket wildcard 1 counter
EOF

# --- table families: nft sends them, the kernel refuses ----------------------
reject "socket in a bridge table" "$KMSG" <<-'EOF'
table bridge newt {
	chain c {
		type filter hook prerouting priority filter; policy accept;
		socket transparent 1 counter
	}
}
EOF
reject "socket in a netdev table" "$KMSG" <<-'EOF'
table netdev newt {
	chain c {
		type filter hook ingress device lo priority filter; policy accept;
		socket mark 0x1 counter
	}
}
EOF
reject "socket in an arp table" "$KMSG" <<-'EOF'
table arp newt {
	chain c {
		type filter hook input priority filter; policy accept;
		socket wildcard 1 counter
	}
}
EOF

# --- straight to the kernel ---------------------------------------------------

# raw_ok DESC TABLEFAMILY HOOK nfnl-raw args: must be accepted
raw_ok()
{
	local desc="kernel: $1" tf=$2 hook=$3 out rc=0
	shift 3
	out=$(ip netns exec "$nsr" "$NFNL_RAW" --table rawtest --table-family "$tf" --hook "$hook" "$@" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ]; then
		RAW_OUT=$out
		return 1
	fi
	if [ "${RAW_NOLIST:-0}" = 1 ]; then
		# a stock nft cannot list nft-tproxy's keys
		pass "$desc: accepted"
	elif nft_r list table "$tf" rawtest | grep -q "socket"; then
		pass "$desc: accepted ($(nft_r list table "$tf" rawtest | grep socket | sed 's/^[[:space:]]*//'))"
	else
		fail "$desc: accepted but not listed"
		nft_r list table "$tf" rawtest | indent
	fi
	nft_r delete table "$tf" rawtest
	unchanged "$desc"
	return 0
}

raw_family_case bridge prerouting socket --socket-key transparent
raw_family_case netdev ingress socket --socket-key transparent
raw_family_case arp input socket --socket-key transparent

raw_expect "ip table, forward chain" EOPNOTSUPP --table-family ip --hook forward --socket-key mark
raw_expect "ip6 table, postrouting chain" EOPNOTSUPP --table-family ip6 --hook postrouting --socket-key wildcard
raw_expect "inet table, forward chain" EOPNOTSUPP --table-family inet --hook forward --socket-key transparent
raw_expect "inet table, postrouting chain" EOPNOTSUPP --table-family inet --hook postrouting --socket-key mark
raw_expect "jump from forward to a chain with socket (jump added last)" EOPNOTSUPP --jump-from forward --socket-key transparent
raw_expect "jump from postrouting to a chain with socket (jump added first)" EOPNOTSUPP \
	--jump-from postrouting --jump-first --socket-key wildcard
raw_expect "unknown key 4" EOPNOTSUPP --socket-key 4
raw_expect "no key attribute" EINVAL --socket-key none
raw_expect "no register attribute" EINVAL --socket-key mark --socket-dreg none
raw_expect "verdict register as destination" EINVAL --socket-key transparent --socket-dreg 0
raw_expect "register past the last one" ERANGE --socket-key mark --socket-dreg 24
raw_expect "u64 (cgroupv2) in the last 32-bit register" "ERANGE|EOPNOTSUPP" \
	--socket-key cgroupv2 --socket-level 1 --socket-dreg 23

# cgroupv2: an in-tree module without it answers "unknown key", as every
# module does where sockets carry no cgroup
cg_have=1
if ! raw "cgroupv2 without a level" EINVAL --socket-key cgroupv2; then
	if [ "${RAW_OUT%% (*}" = "REJECTED errno=EOPNOTSUPP" ] &&
	   cgroupv2_lacks "socket cgroupv2" "$RAW_OUT"; then
		cg_have=0
	else
		fail "kernel: cgroupv2 without a level: expected errno=EINVAL, got: $RAW_OUT"
		unchanged "cgroupv2 without a level"
	fi
fi
if [ "$cg_have" = 1 ]; then
	# upstream refused level > 255 with EOPNOTSUPP in init; newer kernels
	# bound it in the netlink policy (ERANGE). Printed, so that the runs
	# of both modules on one kernel can be compared.
	raw_expect "cgroupv2 level 256" "EOPNOTSUPP|ERANGE" --socket-key cgroupv2 --socket-level 256
fi

# what the kernel must accept: every key, hook and table family, not every
# combination (each case costs seconds under TCG)
for combo in "prerouting ip transparent" "prerouting ip6 mark" "prerouting inet wildcard" \
	     "input ip mark" "input ip6 wildcard" "input inet transparent" \
	     "output ip wildcard" "output ip6 transparent" "output inet mark"; do
	read -r hook tf key <<< "$combo"
	if ! raw_ok "$key in $tf $hook chain" "$tf" "$hook" --socket-key "$key"; then
		if [ "$hook" = output ] && ref_lacks "socket $key in an output chain: $RAW_OUT" 1; then
			continue
		fi
		fail "kernel: $key in $tf $hook chain: expected to be accepted, got: $RAW_OUT"
	fi
done
if [ "$cg_have" = 1 ]; then
	for level in 0 255; do
		raw_ok "cgroupv2 level $level, inet prerouting" inet prerouting --socket-key cgroupv2 --socket-level "$level" ||
			fail "kernel: cgroupv2 level $level: expected to be accepted, got: $RAW_OUT"
	done
	raw_ok "cgroupv2 in a 32-bit register pair (dreg 22)" inet input --socket-key cgroupv2 --socket-level 1 --socket-dreg 22 ||
		fail "kernel: cgroupv2 in dreg 22: expected to be accepted, got: $RAW_OUT"
fi
raw_ok "jump from prerouting to a chain with socket" ip prerouting --jump-from prerouting --socket-key transparent ||
	fail "kernel: jump from prerouting to socket: expected to be accepted, got: $RAW_OUT"

# nft-tproxy's socket uid/gid (keys 255, 254): refused where a hook or a
# register does not fit, like every key.  The in-tree module refuses the
# keys themselves first (EOPNOTSUPP), or what its netlink policy bounds.
# ext_err OURS [REF]: the errno of such a case, ours or in-tree (REF,
# default EOPNOTSUPP)
ext_err() { if [ "${NFTP_MODE:-}" = ref ]; then echo "${2:-EOPNOTSUPP}"; else echo "$1"; fi; }
raw_expect "uid in an inet forward chain" EOPNOTSUPP --table-family inet --hook forward --socket-key uid
raw_expect "gid in an ip postrouting chain" EOPNOTSUPP --table-family ip --hook postrouting --socket-key gid
raw_expect "uid, verdict register as destination" "$(ext_err EINVAL)" --socket-key uid --socket-dreg 0
# newer in-tree modules (Debian's 7.3) bound the register in the policy
raw_expect "gid, register past the last one" "$(ext_err ERANGE "EOPNOTSUPP|ERANGE")" --socket-key gid --socket-dreg 24
# an unknown key: refused in init (EOPNOTSUPP), or, by newer in-tree
# modules (Debian's 6.12), already by the netlink policy's bound (ERANGE)
raw_expect "key 0x1ff (uid + 256: in-tree, key:8 makes it 0xff)" "EOPNOTSUPP|ERANGE" --socket-key 0x1ff
raw_expect "key 253 (below ours)" EOPNOTSUPP --socket-key 253
nolist=0
nft_ext socket-uid || nolist=1
for combo in "prerouting inet uid 1" "input ip gid 1" "output ip6 uid 23" "prerouting ip6 gid 8"; do
	read -r hook tf key dreg <<< "$combo"
	if ! RAW_NOLIST=$nolist raw_ok "$key in $tf $hook chain, dreg $dreg" "$tf" "$hook" \
		--socket-key "$key" --socket-dreg "$dreg"; then
		ref_lacks "socket $key: $RAW_OUT" 1 && continue
		fail "kernel: $key in $tf $hook chain: expected to be accepted, got: $RAW_OUT"
	fi
done

unchanged "end" && pass "ruleset equals the baseline after all cases"
nft_r flush ruleset

exit "$ret"

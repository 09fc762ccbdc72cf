#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nft tproxy: rules that must be rejected, atomically.
#
# In one netns a baseline ruleset is loaded that uses tproxy the right way
# (prerouting, directly, through a jump and through a verdict map). Then
# every bad ruleset is loaded with `nft -f` as one transaction: it must
# fail with a clear message, and `nft list ruleset` must equal the baseline
# afterwards (nothing half-installed, nothing of the baseline lost).
#
#   kernel rejects (nft sends it): tproxy in input/forward/output/postrouting
#   base chains (ip, ip6, inet); tproxy in a regular chain reached from an
#   input/output chain by jump, goto, verdict map or two jumps, added in the
#   same transaction or later from either side.
#   nft rejects in userspace: bridge/netdev/arp tables, no transport match,
#   no address and no port (JSON), address ranges, inet address without family.
#   nfnl-raw sends what nft refuses straight to the kernel (also nft-tproxy's
#   flags attribute: unknown bits, fail-closed listed back): bridge/netdev/
#   arp tables, missing family/registers, family mismatch, UNSPEC family with
#   an address, bad registers, hooks; and checks what the kernel accepts.

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft nfnl-raw
# shellcheck source=selftests/reject_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/reject_lib.sh"

nsr=""
setup_ns nsr

# the ruleset that stands all through (reject_lib.sh)
baseline()
{
	cat <<-'EOF'
	table inet base {
		chain sub {
			tcp dport 81 tproxy ip to 127.0.0.1:1081
		}
		chain mapped {
			udp dport 82 tproxy ip6 to [::1]:1082
		}
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			tcp dport 80 tproxy to :1080 meta mark set 1 accept
			jump sub
			meta l4proto udp udp dport vmap { 82 : jump mapped }
		}
		chain empty {
		}
		chain in {
			type filter hook input priority filter; policy accept;
			jump empty
		}
		chain out {
			type filter hook output priority filter; policy accept;
		}
	}
	table ip base4 {
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			ip daddr 10.9.9.9 udp dport 53 tproxy to 127.0.0.1:1053 meta mark set 1 accept
		}
	}
	table ip6 base6 {
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			ip6 daddr dead::9 tcp dport 443 tproxy to [::1]:1443 meta mark set 1 accept
		}
	}
EOF
}

if ! out=$(nft_r -f - <<< "$(baseline)" 2>&1); then
	fail "baseline ruleset with valid tproxy rules does not load"
	echo "$out" | indent
	exit "$ret"
fi
BEFORE=$(nft_r list ruleset)
if ! grep -q "tproxy ip to 127.0.0.1:1081" <<< "$BEFORE" ||
   ! grep -q "tproxy ip6 to \[::1\]:1082" <<< "$BEFORE" ||
   ! grep -q "tproxy to :1080" <<< "$BEFORE"; then
	fail "baseline ruleset does not list back as loaded"
	echo "$BEFORE" | indent
	exit "$ret"
fi
pass "baseline: tproxy in prerouting (ip, ip6, inet; direct, via jump, via vmap) loads"

KERNEL_MSG="Could not process rule: Operation not supported"

# --- hooks other than prerouting, in base chains ---------------------------
for tf in ip ip6 inet; do
	case $tf in
	ip)   m="ip daddr 10.0.0.1 tcp dport 80" stmt="tproxy to 127.0.0.1:1080" ;;
	ip6)  m="ip6 daddr dead::1 tcp dport 80" stmt="tproxy to [::1]:1080" ;;
	inet) m="tcp dport 80" stmt="tproxy to :1080" ;;
	esac
	for hook in input forward output postrouting; do
		# a new table with a valid prerouting chain, plus an addition to
		# the existing baseline table: both must vanish with the bad rule
		reject "tproxy in $tf $hook chain" "$KERNEL_MSG" <<-EOF
		table $tf newt {
			chain ok {
				type filter hook prerouting priority mangle; policy accept;
				$m $stmt meta mark set 1 accept
			}
			chain bad {
				type filter hook $hook priority filter; policy accept;
				$m $stmt
			}
		}
		add rule inet base pre udp dport 99 tproxy to :1099
		EOF
	done
done

# --- through jumps: validation of the chains a base chain reaches ---------
reject "tproxy in a new regular chain jumped to from a new input chain" "$KERNEL_MSG" <<-'EOF'
table inet newt {
	chain sub2 {
		tcp dport 80 tproxy to :1080
	}
	chain in2 {
		type filter hook input priority filter; policy accept;
		jump sub2
	}
}
EOF

reject "jump from the existing input chain to an existing chain holding tproxy" "$KERNEL_MSG" <<-'EOF'
add rule inet base in jump sub
EOF

reject "goto from the existing output chain to an existing chain holding tproxy" "$KERNEL_MSG" <<-'EOF'
add rule inet base out meta l4proto tcp goto sub
EOF

reject "tproxy added to an existing chain the input chain jumps to" "$KERNEL_MSG" <<-'EOF'
add rule inet base empty tcp dport 80 tproxy to :1080
EOF

reject "verdict map from the input chain to an existing chain holding tproxy" \
	"Could not process rule: Operation not supported" <<-'EOF'
add rule inet base in tcp dport vmap { 81 : jump sub }
EOF

reject "two jumps: input -> new chain -> existing chain holding tproxy" "$KERNEL_MSG" <<-'EOF'
add chain inet base mid
add rule inet base mid jump mapped
add rule inet base in jump mid
EOF

reject "tproxy in a new chain jumped to from a new forward chain, ip6 table" "$KERNEL_MSG" <<-'EOF'
table ip6 newt {
	chain sub2 {
		ip6 daddr dead::1 udp dport 53 tproxy to [::1]:1053
	}
	chain fw {
		type filter hook forward priority filter; policy accept;
		jump sub2
	}
}
EOF

# --- refused by nft itself --------------------------------------------------
reject "tproxy in a bridge table" "tproxy is only supported for IPv4/IPv6/INET" <<-'EOF'
table bridge newt {
	chain c {
		type filter hook prerouting priority filter; policy accept;
		tcp dport 80 tproxy to :1080
	}
}
EOF

reject "tproxy in a netdev table" "tproxy is only supported for IPv4/IPv6/INET" <<-'EOF'
table netdev newt {
	chain c {
		type filter hook ingress device lo priority filter; policy accept;
		tcp dport 80 tproxy to :1080
	}
}
EOF

reject "tproxy in an arp table" "tproxy is only supported for IPv4/IPv6/INET" <<-'EOF'
table arp newt {
	chain c {
		type filter hook input priority filter; policy accept;
		meta l4proto tcp tproxy to :1080
	}
}
EOF

for tf in ip ip6 inet; do
	reject "tproxy without transport protocol match ($tf table)" \
		"Transparent proxy support requires transport protocol match" <<-EOF
	table $tf newt {
		chain c {
			type filter hook prerouting priority mangle; policy accept;
			tproxy to :1080
		}
	}
	EOF
done

reject "tproxy with no address and no port (JSON)" "Either address or port must be specified!" -j <<-'EOF'
{"nftables": [
 {"table": {"family": "ip", "name": "newt"}},
 {"chain": {"family": "ip", "table": "newt", "name": "c", "type": "filter",
            "hook": "prerouting", "prio": -150, "policy": "accept"}},
 {"rule": {"family": "ip", "table": "newt", "chain": "c", "expr": [
   {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}},
   {"tproxy": {"family": "ip"}}]}}
]}
EOF

reject "tproxy with an address range" "Address ranges are not supported for tproxy." <<-'EOF'
table ip newt {
	chain c {
		type filter hook prerouting priority mangle; policy accept;
		tcp dport 80 tproxy to 127.0.0.1-127.0.0.2:1080
	}
}
EOF

# nft 1.0.x's wording | 1.1's
reject "tproxy with an address but no family in an inet table" \
	"ip or ip6 must be specified with address for inet tables.|specify \`tproxy ip' or 'tproxy ip6' in inet table to disambiguate" <<-'EOF'
table inet newt {
	chain c {
		type filter hook prerouting priority mangle; policy accept;
		tcp dport 80 tproxy to 127.0.0.1:1080
	}
}
EOF

# --- straight to the kernel (nfnl-raw) -----------------------------------

# raw_ok DESC TABLEFAMILY LISTING nfnl-raw args...
# The kernel must accept the batch and nft must list the tproxy rule
# exactly as LISTING (the expression's dump); the table is removed again.
raw_ok()
{
	local desc="kernel: $1" tf=$2 listing=$3 out rc=0 got
	shift 3
	out=$(ip netns exec "$nsr" "$NFNL_RAW" --table rawtest --table-family "$tf" "$@" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$desc: expected the kernel to accept it, got (exit $rc): $out"
		unchanged "$desc"
		return
	fi
	got=$(nft_r list table "$tf" rawtest | grep tproxy | sed 's/^[[:space:]]*//')
	if [ "$got" = "$listing" ]; then
		pass "$desc: accepted, listed as '$got'"
	else
		fail "$desc: accepted, but listed as '$got', expected '$listing'"
		nft_r list table "$tf" rawtest | indent
	fi
	nft_r delete table "$tf" rawtest
	unchanged "$desc"
}

raw_family_case bridge prerouting tproxy --port 1080
raw_family_case netdev ingress tproxy --port 1080
raw_family_case arp input tproxy --port 1080

raw_expect "no family attribute" EINVAL --tproxy-family none --port 1080
raw_expect "family but no address and no port register" EINVAL --tproxy-family ip
raw_expect "ip table, ip6 family" EINVAL --table-family ip --tproxy-family ip6 --port 1080
raw_expect "ip6 table, ip family" EINVAL --table-family ip6 --tproxy-family ip --port 1080
raw_expect "inet table, unspec family with an address" EINVAL --table-family inet --tproxy-family unspec --addr 127.0.0.1 --port 1080
raw_expect "inet table, unknown family 7" EOPNOTSUPP --table-family inet --tproxy-family 7 --port 1080
raw_expect "ip6 address register past the last register" ERANGE --table-family ip6 --tproxy-family ip6 --addr ::1 --addr-reg 23 --port 1080
raw_expect "port register out of range" ERANGE --port 1080 --port-reg 24
raw_expect "verdict register as port register" EINVAL --port 1080 --port-reg 0
for hook in input forward output postrouting; do
	raw_expect "ip table, $hook chain" EOPNOTSUPP --hook "$hook" --port 1080
done
raw_expect "jump from input to a chain with tproxy (jump rule added last)" EOPNOTSUPP --jump-from input --port 1080
raw_expect "jump from input to a chain with tproxy (jump rule added first)" EOPNOTSUPP --jump-from input --jump-first --port 1080
raw_expect "jump from output, inet table, ip6" EOPNOTSUPP --table-family inet --tproxy-family ip6 --jump-from output --addr ::1 --port 1080

# what the kernel must accept (wire compatibility with other netlink users)
raw_ok "ip table, ip family, port" ip "meta l4proto tcp tproxy to :1080" --port 1080
raw_ok "ip table, ip family, address only" ip "meta l4proto tcp tproxy to 127.0.0.1" --addr 127.0.0.1
raw_ok "ip table, ip family, address and port" ip "meta l4proto tcp tproxy to 127.0.0.1:1080" \
	--addr 127.0.0.1 --port 1080
raw_ok "inet table, unspec family, port" inet "meta l4proto tcp tproxy to :1080" --tproxy-family unspec --port 1080
raw_ok "inet table, ip family, address and port" inet "meta l4proto tcp tproxy ip to 127.0.0.1:1080" \
	--tproxy-family ip --addr 127.0.0.1 --port 1080
raw_ok "inet table, ip6 family, address and port" inet "meta l4proto tcp tproxy ip6 to [::1]:1080" \
	--tproxy-family ip6 --addr ::1 --port 1080
raw_ok "ip6 table, 32-bit registers" ip6 "meta l4proto tcp tproxy to [::1]:1080" \
	--tproxy-family ip6 --addr ::1 --addr-reg 8 --port 1080 --port-reg 15
raw_ok "prerouting chain jumping to a chain with tproxy" ip "meta l4proto tcp tproxy to :1080" \
	--jump-from prerouting --port 1080
raw_ok "no transport match (nft requires one, the kernel does not)" ip "tproxy to :1080" --no-l4 --port 1080

# nft-tproxy's NFTA_TPROXY_NFTP_FLAGS.  Ours: an unknown bit is refused (it
# must not load as a rule without it), after the family checks and before
# the registers; flags are dumped only when set (a stock nft does not show
# them).  The in-tree module ignores the attribute: the rule loads, fail-open.
fc="" lr="" fclr=""
nft_ext fail-closed && fc=" fail-closed"
nft_ext local-route && lr=" local-route" fclr=" fail-closed,local-route"
if [ "${NFTP_MODE:-}" = ref ]; then
	raw_ok "fail-closed flag: the in-tree module ignores it" ip "meta l4proto tcp tproxy to :1080" \
		--port 1080 --tproxy-flags 1
	raw_ok "local-route flag: the in-tree module ignores it" ip "meta l4proto tcp tproxy to :1080" \
		--port 1080 --tproxy-flags 2
	raw_ok "unknown flag bit: the in-tree module ignores it" ip "meta l4proto tcp tproxy to :1080" \
		--port 1080 --tproxy-flags 4
	echo "N/A: tproxy flags (fail-closed, local-route): the in-tree nft_tproxy of $(uname -r) ignores the attribute"
else
	raw_expect "unknown flag bit 0x4" EOPNOTSUPP --port 1080 --tproxy-flags 4
	raw_expect "fail-closed and an unknown bit 0x80000000" EOPNOTSUPP --port 1080 --tproxy-flags 0x80000001
	raw_expect "both flags and an unknown bit 0x8" EOPNOTSUPP --port 1080 --tproxy-flags 0xb
	raw_expect "flags, ip table, ip6 family (family checked first)" EINVAL --tproxy-family ip6 --port 1080 --tproxy-flags 4
	raw_expect "unknown flag bit and a bad register (flags checked first)" EOPNOTSUPP \
		--port 1080 --port-reg 24 --tproxy-flags 4
	raw_expect "fail-closed, no register" EINVAL --tproxy-flags 1
	raw_expect "fail-closed, output chain" EOPNOTSUPP --hook output --port 1080 --tproxy-flags 1
	# local-route also serves output (the host's own traffic), nowhere else
	for hook in input forward postrouting; do
		raw_expect "local-route, $hook chain" EOPNOTSUPP --hook "$hook" --port 1080 --tproxy-flags 2
	done
	raw_expect "local-route, jump from input" EOPNOTSUPP --jump-from input --port 1080 --tproxy-flags 2
	raw_expect "fail-closed,local-route, jump from forward" EOPNOTSUPP --jump-from forward --port 1080 \
		--tproxy-flags 3
	raw_ok "local-route, output chain" ip "meta l4proto tcp tproxy to :1080$lr" --hook output \
		--port 1080 --tproxy-flags 2
	raw_ok "fail-closed,local-route, output chain reached by a jump" ip \
		"meta l4proto tcp tproxy to :1080$fclr" --jump-from output --port 1080 --tproxy-flags 3
	raw_expect "local-route, no register" EINVAL --tproxy-flags 2
	raw_ok "local-route, port" ip "meta l4proto tcp tproxy to :1080$lr" --port 1080 --tproxy-flags 2
	raw_ok "fail-closed and local-route, inet table, ip address and port" inet \
		"meta l4proto tcp tproxy ip to 192.0.2.1:1080$fclr" --tproxy-family ip --addr 192.0.2.1 \
		--port 1080 --tproxy-flags 3
	raw_ok "fail-closed, port" ip "meta l4proto tcp tproxy to :1080$fc" --port 1080 --tproxy-flags 1
	raw_ok "fail-closed, inet table, ip6 address and port" inet \
		"meta l4proto tcp tproxy ip6 to [::1]:1080$fc" --tproxy-family ip6 --addr ::1 --port 1080 --tproxy-flags 1
	raw_ok "flags 0: a plain rule" ip "meta l4proto tcp tproxy to :1080" --port 1080 --tproxy-flags 0
fi

unchanged "end" && pass "ruleset equals the baseline after all cases"
nft_r flush ruleset

exit "$ret"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# scripts/nftp-diagnose against the setups users report as "the proxy sees
# nothing".  Where the break shows in traffic, a TCP connection from the
# client to server1:8080 shows it first (the proxy answers, server1 does,
# or nobody), then the diagnosis must name that break, with its fix, and
# nothing else:
#   good       the README's ruleset and policy routing, a transparent proxy
#              on IPv4 and IPv6: both reach the proxy; no failure and no
#              warning, the modules named (ours or the kernel's own)
#   martian    src_valid_mark=1 on the router's client side: IPv4 gets no
#              answer; then accept_local=1 there, the fix it gives: the
#              proxy answers again and the diagnosis is clean
#   localroute (ours, patched nft) tproxy ... local-route and no fwmark
#              rule, in prerouting and output: the proxy answers, the
#              diagnosis is clean
#   norule     the IPv4 fwmark rule deleted: IPv4 gets no answer
#   preempt    an ip rule at pref 100 into a table with a default route
#   opaque     the proxy without IP_TRANSPARENT: IPv4 falls through to
#              server1
#   v4only     no IPv6 listener: IPv6 falls through to server1
# and in a namespace of its own, what only the configuration shows:
#   static     a mark no ip rule takes, a table without its local route, a
#              tproxy rule with no mark, no socket rule, ports nobody
#              listens on, an output-chain mark that loops and one in a
#              filter chain, all at once (--json: each finding once);
#              then their correct versions (socket rule, a dual-stack
#              transparent listener, a skuid exemption), with a bridge
#              under br_netfilter and Docker's chains: those two warnings
#              only.
# `nft_diagnose.sh --static` runs only the static half.

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft python ss

DIAG=$SELFTEST_DIR/../scripts/nftp-diagnose
PORT=12345
IO_TIMEOUT_NONE=1

# ------------------------------------------------------------------ helpers

# diagnose DESC NS WANT_RC NFAIL NWARN [PATTERN...]: nftp-diagnose --netns NS
# exits WANT_RC with NFAIL FAIL and NWARN WARN lines, and every PATTERN
# (grep -E) is in what it says
DOUT=''
diagnose()
{
	local desc=$1 ns=$2 want=$3 nfail=$4 nwarn=$5 rc=0 p bad='' f w
	shift 5
	DOUT=$(NFT=$NFT "$PYTHON" -S "$DIAG" --netns "$ns" 2>&1) || rc=$?
	f=$(grep -c '^  FAIL ' <<< "$DOUT")
	w=$(grep -c '^  WARN ' <<< "$DOUT")
	[ "$rc" = "$want" ] || bad+=" exit $rc, not $want;"
	[ "$f" = "$nfail" ] || bad+=" $f FAIL lines, not $nfail;"
	[ "$w" = "$nwarn" ] || bad+=" $w WARN lines, not $nwarn;"
	for p in "$@"; do
		grep -Eq -- "$p" <<< "$DOUT" || bad+=" no '$p';"
	done
	if [ -z "$bad" ]; then
		pass "$desc: the diagnosis says so ($nfail FAIL, $nwarn WARN, exit $rc)"
		grep -E '^  (FAIL|WARN) ' <<< "$DOUT" | cut -c1-160 | indent
	else
		fail "$desc: diagnosis:$bad"
		echo "$DOUT" | indent
	fi
}

# reaches DESC V ROLE: a TCP connection from the client to server1:8080 over
# IPv V is answered by ROLE (proxy: the original destination intact)
reaches()
{
	local dst=$S1_4:8080 peer=$C4
	[ "$2" = 6 ] && dst="[$S1_6]:8080" peer="[$C6]"
	next_sport
	expect_reply "$1: IPv$2" "$nsclient" tcp "$dst" "$SPORT" 1 "$3" "$dst" "$peer:$SPORT"
}

# unanswered DESC V: that connection gets no answer at all
unanswered()
{
	local dst=$S1_4:8080 out rc=0
	[ "$2" = 6 ] && dst="[$S1_6]:8080"
	next_sport
	out=$(IO_TIMEOUT=$IO_TIMEOUT_NONE peer_client "$nsclient" tcp "$dst" --sport "$SPORT" \
		--count 1 2>&1) || rc=$?
	if [ "$rc" -ne 0 ]; then
		pass "$1: IPv$2: no answer from $dst ($(tail -n 1 <<< "$out"))"
	else
		fail "$1: IPv$2: $dst answered, expected nothing:"
		echo "$out" | indent
	fi
}

ruleset()
{
	cat <<-EOF
	flush ruleset
	table inet tp {
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			meta l4proto tcp socket transparent 1 meta mark set 1 accept
			tcp dport 8080 tproxy to :$PORT meta mark set 1 accept
		}
	}
	EOF
}

# ------------------------------------------------------------------ traffic

# --static skips this half (no veth pairs, no traffic): scripts/host-checks.sh
# runs the static one on the host's own kernel
traffic()
{
	topology || exit "$ksft_fail"
	start_peer server1 "$nsserver1" tcp "$S1_4:8080" || exit "$ret"
	start_peer server1-6 "$nsserver1" tcp "[$S1_6]:8080" --role server1 || exit "$ret"
	start_peer proxy "$nsrouter" tcp "0.0.0.0:$PORT" --transparent || exit "$ret"
	PROXY4=$PEER_PID
	start_peer proxy-6 "$nsrouter" tcp "[::]:$PORT" --transparent --role proxy || exit "$ret"
	PROXY6=$PEER_PID
	load_ruleset "$nsrouter" "ruleset" < <(ruleset) || exit "$ret"

	if [ "${NFTP_MODE:-}" = ours ]; then
		mods="nft_tproxy: nft-tproxy's \\(version [^)]*, with nftp_core\\) is loaded"
	else
		mods="nft_tproxy: the kernel's own module is loaded"
	fi
	reaches good 4 proxy
	reaches good 6 proxy
	diagnose good "$nsrouter" 0 0 0 "^  ok +modules: $mods" \
		"ok +routing: IPv4: mark 0x1 -> ip rule pref 32765 -> table 100" \
		"ok +sockets: IPv6 tcp: \\[::\\]:$PORT \\(IP_TRANSPARENT\\)"

	# tproxy ... local-route (the patched nft, ours): no mark, no ip rule
	if [ "${NFTP_MODE:-}" = ours ] && nft_ext local-route; then
		ip -net "$nsrouter" rule del fwmark 1 lookup 100
		load_ruleset "$nsrouter" "local-route ruleset" <<-EOF
			flush ruleset
			table ip tp {
				chain pre {
					type filter hook prerouting priority mangle; policy accept;
					meta l4proto tcp socket transparent 1 tproxy to :$PORT local-route accept
					tcp dport 8080 tproxy to :$PORT local-route accept
				}
				chain out {
					type filter hook output priority mangle; policy accept;
					ip daddr $S1_4 tcp dport 8080 tproxy to :$PORT local-route accept
				}
			}
		EOF
		reaches localroute 4 proxy
		diagnose localroute "$nsrouter" 0 0 0 \
			"ok +ruleset: .*chain pre \\(handle [0-9]+\\) diverts with local-route" \
			"ok +output: .*chain out \\(handle [0-9]+\\): local traffic diverted through loopback"
		ip -net "$nsrouter" rule add fwmark 1 lookup 100
		load_ruleset "$nsrouter" "ruleset" < <(ruleset) || exit "$ret"
	fi

	ip netns exec "$nsrouter" sysctl -wq net.ipv4.conf.veth0.src_valid_mark=1
	unanswered martian 4
	diagnose martian "$nsrouter" 1 1 0 "FAIL +sysctl: src_valid_mark=1 on veth0: .*'martian source'" \
		"fix: .*accept_local=1"
	ip netns exec "$nsrouter" sysctl -wq net.ipv4.conf.veth0.accept_local=1
	reaches "martian, accept_local=1" 4 proxy
	diagnose "martian, accept_local=1" "$nsrouter" 0 0 0
	ip netns exec "$nsrouter" sysctl -wq net.ipv4.conf.veth0.src_valid_mark=0
	ip netns exec "$nsrouter" sysctl -wq net.ipv4.conf.veth0.accept_local=0

	ip -net "$nsrouter" rule del fwmark 1 lookup 100
	unanswered norule 4
	diagnose norule "$nsrouter" 1 1 0 "FAIL +routing: IPv4: no ip rule takes mark 0x1" \
		"fix: ip rule add fwmark 0x1 lookup 100; ip route add local 0.0.0.0/0 dev lo table 100"
	ip -net "$nsrouter" rule add fwmark 1 lookup 100

	ip -net "$nsrouter" route add default via "$S1_4" table 200
	ip -net "$nsrouter" rule add pref 100 lookup 200
	unanswered preempt 4
	diagnose preempt "$nsrouter" 1 1 0 \
		"FAIL +routing: IPv4: ip rule pref 100 comes before pref 32765 and takes packets with mark 0x1 \\(it looks them up in table 200\\)"
	ip -net "$nsrouter" rule del pref 100
	ip -net "$nsrouter" route del default table 200

	stop_peer "$PROXY4"
	start_peer opaque "$nsrouter" tcp "0.0.0.0:$PORT" || exit "$ret"
	reaches opaque 4 server1
	diagnose opaque "$nsrouter" 1 1 0 \
		"FAIL +sockets: IPv4 tcp: 0.0.0.0:$PORT on port $PORT has no IP_TRANSPARENT" \
		"fix: set IP_TRANSPARENT"
	stop_peer "$PEER_PID"
	start_peer proxy "$nsrouter" tcp "0.0.0.0:$PORT" --transparent || exit "$ret"

	stop_peer "$PROXY6"
	reaches v4only 6 server1
	diagnose v4only "$nsrouter" 1 1 0 \
		"FAIL +sockets: IPv6 tcp: the rule in table inet tp chain pre \\(handle [0-9]+\\) diverts to port $PORT, but the sockets there \\(0.0.0.0:$PORT\\) take no IPv6 packets"
}
[ "${1:-}" = --static ] || traffic

# ------------------------------------------------------------------ static

nsdiag=""
setup_ns nsdiag
ip -net "$nsdiag" link set lo up
ip -net "$nsdiag" rule add fwmark 1 lookup 100
ip -net "$nsdiag" route add local 0.0.0.0/0 dev lo table 100
ip -net "$nsdiag" -6 rule add fwmark 1 lookup 100
load_ruleset "$nsdiag" "static ruleset" <<-EOF || exit "$ret"
	table inet bad {
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			meta l4proto tcp tproxy ip to :3129 meta mark set 0x2 accept
			meta l4proto tcp tproxy ip6 to :3129 meta mark set 0x1 accept
			udp dport 53 tproxy to :5353
		}
		chain out {
			type route hook output priority mangle; policy accept;
			meta l4proto tcp meta mark set 0x2
		}
		chain outf {
			type filter hook output priority filter; policy accept;
			meta l4proto udp meta mark set 0x1
		}
	}
EOF
diagnose static "$nsdiag" 1 9 1 \
	"FAIL +routing: IPv4: no ip rule takes mark 0x2 .*\\(the rules there: fwmark 0x1 lookup 100\\)" \
	"FAIL +routing: IPv6: ip rule pref 32765 sends mark 0x1 to table 100, which has no 'local default dev lo' route" \
	"fix: ip -6 route add local ::/0 dev lo table 100" \
	"FAIL +ruleset: table inet bad chain pre \\(handle [0-9]+\\) diverts without setting a mark" \
	"WARN +socket-rule: no 'socket transparent 1' rule before the tproxy rule" \
	"FAIL +sockets: IPv4 tcp: nothing listens on port 3129" \
	"FAIL +sockets: IPv6 tcp: nothing listens on port 3129" \
	"FAIL +sockets: IPv4 udp: nothing listens on port 5353" \
	"FAIL +sockets: IPv6 udp: nothing listens on port 5353" \
	"FAIL +output: table inet bad chain out \\(handle [0-9]+\\) marks this host's outgoing packets with 0x2 with no exemption" \
	"FAIL +output: table inet bad chain outf \\(handle [0-9]+\\) sets mark 0x1 in a 'filter' chain"
# one finding per problem in the JSON too
n=$(NFT=$NFT "$PYTHON" -S "$DIAG" --netns "$nsdiag" --json | "$PYTHON" -S -c '
import json, sys
d = json.load(sys.stdin)
f = [(x["level"], x["check"], x["text"]) for x in d["findings"]]
assert len(set(f)) == len(f), "a finding twice"
assert d["failures"] == sum(1 for x in f if x[0] == "fail")
print(d["failures"], d["warnings"])' 2>&1)
if [ "$n" = "9 1" ]; then
	pass "static: --json: the same 9 failures and 1 warning, each once"
else
	fail "static: --json: $n"
fi

# br_netfilter: built in (its sysctls are there), or loaded here
bridge=0 loaded_brnf=0
if [ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && modprobe br_netfilter 2>/dev/null; then
	loaded_brnf=1
fi
if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
	bridge=1
	ip -net "$nsdiag" link add br0 type bridge
	ip netns exec "$nsdiag" sysctl -wq net.bridge.bridge-nf-call-iptables=1
fi
ip -net "$nsdiag" -6 route add local ::/0 dev lo table 100
ip netns exec "$nsdiag" timeout "$PEER_LIFETIME" "$PYTHON" -S -c '
import socket, time
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, 75, 1)      # IPV6_TRANSPARENT
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 3129))
s.listen()
time.sleep(3600)' &
PID_LIST+=($!)
busywait "$BUSYWAIT_TIMEOUT" sh -c "ip netns exec $nsdiag ss -Hlnt 'sport = :3129' | grep -q ." ||
	fail "static: the dual-stack listener did not come up"
load_ruleset "$nsdiag" "static ruleset, corrected" <<-EOF || exit "$ret"
	flush ruleset
	table inet good {
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			meta l4proto { tcp, udp } socket transparent 1 meta mark set 1 accept
			meta l4proto tcp tproxy to :3129 meta mark set 1 accept
		}
		chain out {
			type route hook output priority mangle; policy accept;
			meta skuid 0 return
			meta l4proto tcp meta mark set 1
		}
	}
	table ip filter {
		chain DOCKER {
		}
	}
EOF
want=(1 "WARN +docker: Docker's rules are here \\(table ip filter chain DOCKER\\)")
if [ "$bridge" = 1 ]; then
	want=(2 "${want[1]}" "WARN +bridge: br_netfilter is loaded .* on br0: .* bridged traffic is not diverted")
fi
diagnose "static, corrected" "$nsdiag" 0 0 "${want[@]}" \
	"ok +sockets: IPv4 tcp: \\*:3129 \\(IP_TRANSPARENT\\)" \
	"ok +sockets: IPv6 tcp: \\*:3129 \\(IP_TRANSPARENT\\)" \
	"ok +output: table inet good chain out \\(handle [0-9]+\\): local traffic diverted, the proxy exempt by meta skuid"
[ "$bridge" = 1 ] && ip -net "$nsdiag" link del br0
[ "$loaded_brnf" = 1 ] && rmmod br_netfilter 2>/dev/null

exit "$ret"

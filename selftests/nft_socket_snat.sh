#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nft socket: the reply of a SNATed connection is matched to the socket
# that sent the original packets (the lookup uses conntrack's original
# tuple while the reply still carries the translated address).
#
# In the router a local client with SO_MARK 0x2a talks to server1 (TCP,
# UDP, and UDP to a closed port, whose ICMP port unreachable is a RELATED
# reply); postrouting SNATs it to 10.0.2.50:7777 (dead:2::50, port 7777).
# A DECOY socket, SO_MARK 0x63, listens on 0.0.0.0:7777 (TCP and UDP; [::]
# for IPv6): a lookup by the reply's own tuple (server1 -> 10.0.2.50:7777)
# finds the decoy. Counters by socket mark:
#   prerouting at priority -300 (before conntrack): no conntrack entry yet,
#     the reply's own tuple finds the decoy (0x63): shows the decoy is what
#     a lookup without the original-tuple logic gets;
#   prerouting at mangle (-150, after conntrack, before de-SNAT at -100):
#     must find the client's socket (0x2a), never the decoy;
#   input (after de-SNAT): the client's socket too.
# The client must also get its replies (TCP/UDP) and ECONNREFUSED (ICMP).
# IPv4 and IPv6. The in-tree IPv6 lookup never applies the original tuple
# to ICMPv6 errors (upstream bug, still in 6.18), and older ones (5.10) not
# to IPv6 at all: a reference run says N/A for those cases; our modules
# must pass them.

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft python ping
# shellcheck source=selftests/socket_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/socket_lib.sh"

NAT4=10.0.2.50 NAT6=dead:2::50 NATPORT=7777

topology || exit "$ksft_fail"
ip -net "$nsrouter" addr add "$NAT4/32" dev veth1
ip -net "$nsrouter" addr add "$NAT6/128" dev veth1 nodad

for p in tcp udp; do
	PEER_NOWAIT=1 start_peer "server1-$p-4" "$nsserver1" "$p" "$S1_4:8080" --role server1
	PEER_NOWAIT=1 start_peer "server1-$p-6" "$nsserver1" "$p" "[$S1_6]:8080" --role server1
	PEER_NOWAIT=1 start_peer "decoy-$p-4" "$nsrouter" "$p" "0.0.0.0:$NATPORT" --role decoy --mark 0x63
	PEER_NOWAIT=1 start_peer "decoy-$p-6" "$nsrouter" "$p" "[::]:$NATPORT" --role decoy --mark 0x63
done
wait_peers {server1,decoy}-{tcp,udp}-{4,6} || exit "$ksft_fail"

# counting rules for one chain: NAME-{tcp,udp,icmp}{4,6}-m{2a,63}
count_rules()
{
	local n=$1 v s l4 m
	for v in 4 6; do
		if [ "$v" = 4 ]; then s="ip saddr $S1_4"; else s="ip6 saddr $S1_6"; fi
		for l4 in tcp udp icmp; do
			case $l4 in
			tcp) m="$s tcp sport 8080" ;;
			udp) m="$s udp sport 8080" ;;
			icmp) m="$s $([ "$v" = 4 ] && echo icmp || echo icmpv6) type destination-unreachable" ;;
			esac
			echo "$m counter comment \"$n-$l4$v-all\""
			echo "$m socket mark 0x2a counter comment \"$n-$l4$v-m2a\""
			echo "$m socket mark 0x63 counter comment \"$n-$l4$v-m63\""
		done
	done
}

load_ruleset "$nsrouter" "snat ruleset" <<EOF || exit "$ret"
flush ruleset
table inet snat_test {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		ip daddr $S1_4 meta l4proto { tcp, udp } th dport { 7, 8080 } snat ip to $NAT4:$NATPORT
		ip6 daddr $S1_6 meta l4proto { tcp, udp } th dport { 7, 8080 } snat ip6 to [$NAT6]:$NATPORT
	}
	chain raw {
		type filter hook prerouting priority -300; policy accept;
		$(count_rules raw)
	}
	chain pre {
		type filter hook prerouting priority mangle; policy accept;
		$(count_rules pre)
	}
	chain in {
		type filter hook input priority filter; policy accept;
		$(count_rules in)
	}
}
EOF

# check_chains DESC L4V [icmp]: the counters after one exchange
check_chains()
{
	local desc=$1 k=$2
	read_counters "$nsrouter"
	check_cnt "$desc: replies seen in prerouting" "pre-$k-all" -ge 1
	check_cnt "$desc: before conntrack the reply's own tuple finds the decoy (0x63)" "raw-$k-m63" -ge 1
	if [ "$k" = icmp6 ] && [ "${NFTP_MODE:-}" = ref ] && [ "$(cnt pre-icmp6-m63)" -gt 0 ]; then
		# nf_sk_lookup_slow_v6() overwrites tproto with the quoted
		# protocol, so its "ICMPv6 and RELATED_REPLY" test never holds
		echo "N/A: $desc: the in-tree nf_socket_ipv6 of $(uname -r) does not use the original tuple for ICMPv6 errors (found the decoy: pre-icmp6-m63=$(cnt pre-icmp6-m63))"
	elif [ "$k" != icmp6 ] && [ "${k%6}" != "$k" ] && [ "${NFTP_MODE:-}" = ref ] &&
	     [ "$(cnt "pre-$k-m63")" -gt 0 ] && [ "$(cnt "pre-$k-m2a")" -eq 0 ]; then
		# older in-tree nf_socket_ipv6 (5.10) looks up IPv6 replies by
		# their own tuple only: no conntrack at all, every one the decoy
		echo "N/A: $desc: the in-tree nf_socket_ipv6 of $(uname -r) does not use conntrack's original tuple for SNATed IPv6 replies (found the decoy: pre-$k-m63=$(cnt "pre-$k-m63"))"
	else
		check_cnt "$desc: prerouting (translated address) finds the client's socket (0x2a)" "pre-$k-m2a" -eq "$(cnt "pre-$k-all")"
		check_cnt "$desc: prerouting never finds the decoy" "pre-$k-m63" -eq 0
	fi
	check_cnt "$desc: input (after de-SNAT) finds the client's socket (0x2a)" "in-$k-m2a" -ge 1
	check_cnt "$desc: input never finds the decoy" "in-$k-m63" -eq 0
}

for v in 4 6; do
	if [ "$v" = 4 ]; then S1=$S1_4 NAT=$NAT4; else S1=$S1_6 NAT=$NAT6; fi
	dst=$(hostport "$S1" 8080)
	natpeer=$(hostport "$NAT" "$NATPORT")

	# TCP: count only the segments after the handshake is done, when the
	# client socket is a full one (its SYN-ACK meets a SYN_SENT socket,
	# also full); all of them must find it
	desc="IPv$v TCP router -> server1, SNAT to $natpeer"
	expect_reply "$desc" "$nsrouter" tcp "$dst" 0 2 server1 "$dst" "$natpeer" --mark 0x2a
	sleep 0.5
	check_chains "$desc" "tcp$v"

	desc="IPv$v UDP router -> server1, SNAT to $natpeer"
	expect_reply "$desc" "$nsrouter" udp "$dst" 0 2 server1 "$dst" "$natpeer" --mark 0x2a
	check_chains "$desc" "udp$v"

	desc="IPv$v UDP router -> closed port of server1, SNAT: ICMP port unreachable"
	rc=0
	out=$(peer_client "$nsrouter" udp "$(hostport "$S1" 7)" --mark 0x2a --expect-error ECONNREFUSED \
		--timeout 2 --retries 1 2> "$TMPD/client.err") || rc=$?
	if [ "$rc" -eq 0 ]; then
		pass "$desc: the client socket got ECONNREFUSED"
	else
		fail "$desc: no ECONNREFUSED (exit $rc): $out"
		indent < "$TMPD/client.err"
	fi
	check_chains "$desc" "icmp$v"
	if ! peer_log_grep "decoy-udp-$v" "recv-udp"; then
		pass "IPv$v: the decoys never received anything"
	else
		fail "IPv$v: a decoy received a datagram"
	fi
done
flush_ruleset "$nsrouter"

exit "$ret"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nft socket: ICMP errors for a transparent socket's flow are matched to
# that socket (the lookup uses the tuple the error quotes), so the
# classic `socket transparent 1 meta mark set 1 accept` delivers them to
# the proxy instead of routing them on to the real client.
#
#   client -- router -- server1 -- far      (server1 routes to far; its
#                                             link to far has MTU 1280)
#
# A "proxy" socket in the router is bound with IP_TRANSPARENT to the
# CLIENT's address and connected out (as a proxy connecting on the
# client's behalf does), so every ICMP error about its packets is
# addressed to the client's address:
#   - UDP to a closed port of server1: port unreachable; prerouting must
#     match it with `socket transparent 1` (counter) and the socket must
#     get ECONNREFUSED;
#   - UDP, 1400 bytes, don't fragment, to far: server1 answers with
#     fragmentation needed / packet too big (MTU 1280); counter, the socket
#     gets EMSGSIZE and learns the path MTU (IP_MTU / IPV6_MTU = 1280);
#   - TCP to far, a 3000-byte line: the segments are too big for server1's
#     link; only if the ICMP error reaches the socket does TCP lower its
#     MSS and the line get through (far answers).
# Control: the same with socket rules for TCP/UDP only (none for ICMP):
# the errors are routed on to the client, the socket gets no error, keeps
# MTU 1500, and the TCP line never gets through (black hole).
# Ours, with the patched nft: the three again with no ip rule, `tproxy ...
# local-route` in place of every `meta mark set 1` (nft-tproxy's
# extension: it gives such an error the local route).
# IPv4 and IPv6. Each case uses its own destination address (the path MTU
# the router learns is per destination).

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft python ping
# shellcheck source=selftests/socket_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/socket_lib.sh"

topology || exit "$ksft_fail"

# far, behind server1; server1's side of the link has MTU 1280
nsfar=""
setup_ns nsfar
ip link add eth1 netns "$nsserver1" type veth peer name eth0 netns "$nsfar" || exit "$ksft_fail"
ip -net "$nsserver1" link set eth1 mtu 1280 up
ip -net "$nsserver1" addr add 10.0.4.1/24 dev eth1
ip -net "$nsserver1" addr add dead:4::1/64 dev eth1 nodad
ip -net "$nsfar" link set eth0 up
for i in 91 92 93 94 95 96; do
	ip -net "$nsfar" addr add "10.0.4.$i/24" dev eth0
	ip -net "$nsfar" addr add "dead:4::$i/64" dev eth0 nodad
done
ip -net "$nsfar" route add default via 10.0.4.1
ip -net "$nsfar" -6 route add default via dead:4::1
ip netns exec "$nsserver1" sysctl -wq net.ipv4.ip_forward=1
ip netns exec "$nsserver1" sysctl -wq net.ipv6.conf.all.forwarding=1
# every error must be sent, however fast the cases follow each other
ip netns exec "$nsserver1" sysctl -wq net.ipv4.icmp_ratelimit=0
ip netns exec "$nsserver1" sysctl -wq net.ipv6.icmp.ratelimit=0
ip -net "$nsrouter" route add 10.0.4.0/24 via "$S1_4"
ip -net "$nsrouter" -6 route add dead:4::/64 via "$S1_6"
if ! ip netns exec "$nsclient" ping -c 1 -W 5 -q 10.0.4.91 > /dev/null ||
   ! ip netns exec "$nsclient" ping -c 1 -W 5 -q dead:4::91 > /dev/null; then
	fail "topology: client cannot reach far"
	exit "$ret"
fi

start_peer far-4 "$nsfar" tcp "0.0.0.0:8080" --role far || exit "$ret"
start_peer far-6 "$nsfar" tcp "[::]:8080" --role far || exit "$ret"

# ruleset [noicmp|localroute]
ruleset()
{
	local s="socket transparent 1" d="meta mark set 1 accept" d4 d6 sock
	sock="meta mark set 1 accept"
	if [ "${1:-}" = noicmp ]; then
		s="" d=""
	fi
	d4=$d d6=$d
	if [ "${1:-}" = localroute ]; then
		d4="tproxy ip to :1 local-route accept" d6="tproxy ip6 to :1 local-route accept"
		sock="tproxy to :1 local-route accept"
		# IPv4 only where an IPv6 local-route rule is refused (5.10)
		if [ "$(local_route_fams)" = 4 ]; then
			d6="" sock="tproxy ip to :1 local-route accept"
		fi
	fi
	cat <<-EOF
	flush ruleset
	table inet icmp_test {
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			icmp type destination-unreachable icmp code port-unreachable $s counter $d4 comment "pu4"
			icmp type destination-unreachable icmp code frag-needed $s counter $d4 comment "fn4"
			icmpv6 type destination-unreachable icmpv6 code port-unreachable $s counter $d6 comment "pu6"
			icmpv6 type packet-too-big $s counter $d6 comment "fn6"
			meta l4proto { icmp, ipv6-icmp } socket transparent 0 counter comment "icmp-t0"
			meta l4proto { tcp, udp } socket transparent 1 counter $sock comment "sock"
		}
		chain forward {
			type filter hook forward priority filter; policy accept;
			meta l4proto icmp counter comment "fwd-icmp4"
			meta l4proto ipv6-icmp counter comment "fwd-icmp6"
		}
	}
	EOF
}

BIG=$(printf 'x%.0s' $(seq 1 3000))

# icmp_cases V MODE (full|noicmp) A1 A2 A3: the three destination addresses
icmp_cases()
{
	local v=$1 mode=$2 c s1 far_u far_t out rc desc what
	if [ "$v" = 4 ]; then c=$C4 s1=$S1_4 far_u=10.0.4.$3 far_t=10.0.4.$4; else c=$C6 s1=$S1_6 far_u=dead:4::$3 far_t=dead:4::$4; fi
	what="with 'socket transparent 1' for ICMP"
	[ "$mode" = noicmp ] && what="control, no socket rule for ICMP"
	[ "$mode" = localroute ] && what="tproxy local-route, no ip rule"
	load_ruleset "$nsrouter" "IPv$v $what" < <(ruleset "$mode") || return

	# 1. port unreachable
	desc="IPv$v UDP port unreachable ($what)"
	next_sport
	rc=0
	out=$(peer_client "$nsrouter" udp "$(hostport "$s1" 7)" --transparent --bind "$(hostport "$c" "$SPORT")" \
		--expect-error ECONNREFUSED --timeout 2 --retries 1 2> "$TMPD/client.err") || rc=$?
	read_counters "$nsrouter"
	if [ "$mode" != noicmp ]; then
		if [ "$rc" -eq 0 ]; then
			pass "$desc: the proxy socket bound to $c got ECONNREFUSED ($out)"
		else
			fail "$desc: the proxy socket got no ECONNREFUSED (exit $rc)"
			{ echo "$out"; cat "$TMPD/client.err"; } | indent
		fi
		check_cnt "$desc: the error matched the transparent socket in prerouting" "pu$v" -ge 1
		check_cnt "$desc: it was not forwarded to the client" "fwd-icmp$v" -eq 0
	else
		if [ "$rc" -ne 0 ] && [ "$out" = "error=none mtu=0" ] || [ "${out#error=none}" != "$out" ]; then
			pass "$desc: the proxy socket got no error ($out)"
		else
			fail "$desc: the proxy socket got '$out' (exit $rc), expected no error"
		fi
		check_cnt "$desc: the error went to the client instead" "fwd-icmp$v" -ge 1
	fi
	check_cnt "$desc: 'socket transparent 0' never matched an ICMP error" icmp-t0 -eq 0

	# 2. fragmentation needed / packet too big, UDP
	desc="IPv$v UDP, DF, 1400 bytes through a 1280 link ($what)"
	next_sport
	rc=0
	out=$(peer_client "$nsrouter" udp "$(hostport "$far_u" 9)" --transparent --bind "$(hostport "$c" "$SPORT")" \
		--df --size 1400 --expect-error EMSGSIZE --timeout 2 --retries 1 2> "$TMPD/client.err") || rc=$?
	read_counters "$nsrouter"
	if [ "$mode" != noicmp ]; then
		if [ "$rc" -eq 0 ] && [ "$out" = "error=EMSGSIZE mtu=1280" ]; then
			pass "$desc: the proxy socket got EMSGSIZE and learned the path MTU ($out)"
		else
			fail "$desc: expected 'error=EMSGSIZE mtu=1280', got '$out' (exit $rc)"
			indent < "$TMPD/client.err"
		fi
		check_cnt "$desc: the error matched the transparent socket in prerouting" "fn$v" -ge 1
		check_cnt "$desc: it was not forwarded to the client" "fwd-icmp$v" -eq 0
	else
		if [ "$rc" -ne 0 ] && [ "$out" = "error=none mtu=1500" ]; then
			pass "$desc: the proxy socket got no error, path MTU still 1500 ($out)"
		else
			fail "$desc: expected 'error=none mtu=1500', got '$out' (exit $rc)"
		fi
		check_cnt "$desc: the error went to the client instead" "fwd-icmp$v" -ge 1
	fi

	# 3. TCP: only with the error delivered does the big line get through
	desc="IPv$v TCP, a 3000-byte line through a 1280 link ($what)"
	next_sport
	rc=0
	out=$(peer_client "$nsrouter" tcp "$(hostport "$far_t" 8080)" --transparent --bind "$(hostport "$c" "$SPORT")" \
		--msg "$BIG" --timeout 4 2> "$TMPD/client.err") || rc=$?
	read_counters "$nsrouter"
	if [ "$mode" != noicmp ]; then
		check_replies "$desc" "$out" 1 far "$(hostport "$far_t" 8080)" "$(hostport "$c" "$SPORT")" ||
			indent < "$TMPD/client.err"
		check_cnt "$desc: the error matched the transparent socket in prerouting" "fn$v" -ge 2
	else
		if [ "$rc" -ne 0 ] && [ -z "$out" ]; then
			pass "$desc: black hole, the line never got through"
		else
			fail "$desc: expected no reply, got '$out' (exit $rc)"
		fi
		check_cnt "$desc: the errors went to the client instead" "fwd-icmp$v" -ge 2
	fi
	check_cnt "$desc: the connection itself was matched by the socket rule" sock -ge 2
}

icmp_cases 4 full 91 92
icmp_cases 4 noicmp 93 94
icmp_cases 6 full 91 92
icmp_cases 6 noicmp 93 94

# tproxy local-route (ours): the same errors delivered with no fwmark, no
# ip rule, no table 100; `tproxy` gives an ICMP error quoting a transparent
# socket's flow the local route (and the connection's own packets too)
if [ "${NFTP_MODE:-}" != ref ] && nft_ext local-route; then
	ip -net "$nsrouter" rule del fwmark 1 lookup 100
	ip -net "$nsrouter" -6 rule del fwmark 1 lookup 100
	for v in $(local_route_fams); do
		icmp_cases "$v" localroute 95 96
	done
elif [ "${NFTP_MODE:-}" = ref ]; then
	echo "N/A: tproxy local-route for ICMP errors (nft-tproxy's extension)"
else
	log "tproxy local-route for ICMP errors: $NFT is not the patched nft, not tested"
fi
flush_ruleset "$nsrouter"

exit "$ret"

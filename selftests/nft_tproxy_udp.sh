#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nft tproxy, UDP: client -- router -- server1/server2 (see lib.sh).
# The router diverts client -> server1:8080 datagrams to a transparent UDP
# proxy on the router. The proxy reads the original destination from
# IP(V6)_ORIGDSTADDR and answers from it (a transparent socket bound to
# server1's address); the client's socket is connected to server1:8080, so
# it only accepts a reply from that address. Each case sends 3 datagrams
# from one socket and checks who answered and what the proxy saw.
#
# Cases, for IPv4 and IPv6, forwarded: ip/ip6 and inet tables,
# `tproxy to :PORT`, `tproxy ip|ip6 to :PORT`, `tproxy ip|ip6 to ADDR:PORT`;
# traffic the rule does not match is untouched; a socket without
# IP_TRANSPARENT is never chosen; proxy not running: fail-open; ICMP echo
# matched by a tproxy rule is not diverted (tproxy is TCP/UDP only).

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft python ping ip

PORT=12345
COUNT=3

topology || exit "$ksft_fail"

start_servers udp server1 server2 || exit "$ret"

# set_family (lib.sh), and the match of this test's rules (divert_ruleset)
# shellcheck disable=SC2317 # called by set_family
udp_family()
{
	MATCH="$FAM daddr $S1 udp dport 8080"
}
on_family_hook=udp_family

# udp_case DESC TABLEFAMILY STMT PROXY_ADDR PROXY_PORT EXPECT [proxy args...]
# EXPECT=proxy: all datagrams to server1 reach the proxy on
# PROXY_ADDR:PROXY_PORT, which reports the original destination and
# answers from it. EXPECT=server1: server1 answers, the proxy gets nothing.
# The rule's match is $CASE_MATCH if set (else MATCH).
udp_case()
{
	local desc="IPv$V $1" tf=$2 stmt=$3 paddr=$4 pport=$5 expect=$6
	shift 6
	local lsock peer i
	lsock=$(hostport "$paddr" "$pport")

	load_ruleset "$nsrouter" "$desc" < <(divert_ruleset "$tf" "$stmt" "${CASE_MATCH:-$MATCH}") || return
	start_peer proxy "$nsrouter" udp "$lsock" "$@" || return
	next_sport
	peer=$(hostport "$C" "$SPORT")
	if [ "$expect" = proxy ]; then
		expect_reply "$desc" "$nsclient" udp "$DST1" "$SPORT" "$COUNT" proxy "$DST1" "$peer"
		for i in $(seq 1 "$COUNT"); do
			if ! peer_log_grep proxy "recv-udp laddr=$DST1 peer=$peer seq=$i "; then
				fail "$desc: proxy on $lsock did not log datagram $i from $peer to $DST1"
				indent < "$TMPD/proxy.log"
				break
			fi
		done
	else
		expect_reply "$desc" "$nsclient" udp "$DST1" "$SPORT" "$COUNT" server1 "$DST1" "$peer"
		if peer_log_grep proxy "recv-udp"; then
			fail "$desc: socket $lsock ($*) got a datagram"
			indent < "$TMPD/proxy.log"
		fi
	fi
	stop_peer "$PEER_PID"
}

test_forward()
{
	udp_case "fwd $FAM table 'tproxy to :$PORT'" \
		"$FAM" "tproxy to :$PORT" "$ANY" $PORT proxy --transparent

	load_ruleset "$nsrouter" "bypass" < <(divert_ruleset "$FAM" "tproxy to :$PORT") || return
	start_peer proxy "$nsrouter" udp "$(hostport "$ANY" $PORT)" --transparent || return
	next_sport
	expect_reply "IPv$V fwd: traffic to server2 is not diverted" "$nsclient" udp "$DST2" "$SPORT" "$COUNT" \
		server2 "$DST2" "$(hostport "$C" "$SPORT")"
	stop_peer "$PEER_PID"

	CASE_MATCH="udp dport 8080" udp_case "fwd inet table 'udp dport 8080 tproxy to :$PORT'" \
		inet "tproxy to :$PORT" "$ANY" $PORT proxy --transparent
	udp_case "fwd inet table 'tproxy $FAM to :$PORT'" \
		inet "tproxy $FAM to :$PORT" "$ANY" $PORT proxy --transparent
	udp_case "fwd inet table 'tproxy $FAM to $R3_ADDR:$PORT'" \
		inet "tproxy $FAM to $R3_ADDR:$PORT" "$R3" $PORT proxy --transparent
	udp_case "fwd $FAM table 'tproxy $FAM to $R3_ADDR:$PORT'" \
		"$FAM" "tproxy $FAM to $R3_ADDR:$PORT" "$R3" $PORT proxy --transparent
}

test_not_transparent()
{
	udp_case "socket without IP_TRANSPARENT on $(hostport "$ANY" $PORT) is not chosen" \
		"$FAM" "tproxy to :$PORT" "$ANY" $PORT server1
}

test_no_proxy()
{
	local desc="IPv$V no proxy running: rule misses, server1 answers (fail-open)"
	load_ruleset "$nsrouter" "$desc" < <(divert_ruleset "$FAM" "tproxy to :$PORT") || return
	next_sport
	expect_reply "$desc" "$nsclient" udp "$DST1" "$SPORT" "$COUNT" \
		server1 "$DST1" "$(hostport "$C" "$SPORT")"
}

# tproxy handles TCP and UDP only: anything else matched by a tproxy rule
# must go on untouched, even with transparent TCP and UDP sockets on the
# port as bait
test_not_tcp_udp()
{
	local l4 echos desc r0 r1 s0 s1 out
	if [ "$V" = 4 ]; then
		l4="meta l4proto icmp" echos=(Icmp InEchos)
	else
		l4="meta l4proto ipv6-icmp" echos=(6 Icmp6InEchos)
	fi
	desc="IPv$V ICMP echo through '$l4 tproxy to :$PORT'"
	load_ruleset "$nsrouter" "$desc" < <(divert_ruleset "$FAM" "tproxy to :$PORT" "$FAM daddr $S1 $l4") || return
	start_peer bait-udp "$nsrouter" udp "$(hostport "$ANY" $PORT)" --transparent || return
	local pid_udp=$PEER_PID
	start_peer bait-tcp "$nsrouter" tcp "$(hostport "$ANY" $PORT)" --transparent || return
	r0=$(snmp "$nsrouter" "${echos[@]}")
	s0=$(snmp "$nsserver1" "${echos[@]}")
	out=$(ip netns exec "$nsclient" ping -c 3 -i 0.2 -W 5 "$S1" 2>&1)
	local rc=$?
	r1=$(snmp "$nsrouter" "${echos[@]}")
	s1=$(snmp "$nsserver1" "${echos[@]}")
	if [ "$rc" -eq 0 ] && [ "$((s1 - s0))" -eq 3 ] && [ "$r1" -eq "$r0" ]; then
		pass "$desc: not diverted (server1 got 3 echo requests, the router none)"
	else
		fail "$desc: ping exit $rc, server1 got $((s1 - s0)) echo requests, the router $((r1 - r0)); expected 3 and 0"
		echo "$out" | indent
	fi
	stop_peer "$PEER_PID"
	stop_peer "$pid_udp"
}

for v in 4 6; do
	set_family "$v"
	test_forward
	test_not_transparent
	test_no_proxy
	test_not_tcp_udp
done
flush_ruleset "$nsrouter"

exit "$ret"

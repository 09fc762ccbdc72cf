#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nft tproxy, TCP: client -- router -- server1/server2 (see lib.sh).
# The router diverts client -> server1:8080 to a transparent proxy on the
# router. Every case sends data over real sockets and checks who answered,
# and that the proxy's accepted socket carries the client's address (peer)
# and the original destination (laddr).
#
# Cases, for IPv4 and IPv6:
#   forwarded traffic with ip/ip6 and inet tables, `tproxy to :PORT`,
#   `tproxy ip|ip6 to :PORT`, `tproxy ip|ip6 to ADDR:PORT`, address only;
#   default address = first primary address of the input device;
#   locally generated traffic (output route chain sets mark 1, re-enters
#   prerouting via lo: default address is then lo's);
#   established connection keeps going to the accepted socket after the
#   listener is closed;
#   a listener without IP_TRANSPARENT is never chosen;
#   proxy not running: the rule misses, traffic reaches server1 (fail-open).

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft python ping ip

PORT=12345

topology || exit "$ksft_fail"

# server1 and server2 answer on port 8080, v4 and v6
start_servers tcp server1 server2 || exit "$ret"

# set_family (lib.sh), and the match of this test's rules (divert_ruleset)
# shellcheck disable=SC2317 # called by set_family
tcp_family()
{
	MATCH="$FAM daddr $S1 tcp dport 8080"
}
on_family_hook=tcp_family

# divert_case DESC TABLEFAMILY STMT PROXY_ADDR PROXY_PORT EXPECT [proxy args...]
# The rule's match is $CASE_MATCH if set (else MATCH).
# EXPECT=proxy: the client's connection to server1 reaches the proxy on
# PROXY_ADDR:PROXY_PORT. EXPECT=server1: it reaches server1 and the proxy
# never sees a connection.
divert_case()
{
	local desc="IPv$V $1" tf=$2 stmt=$3 paddr=$4 pport=$5 expect=$6
	shift 6
	local lsock
	lsock=$(hostport "$paddr" "$pport")

	load_ruleset "$nsrouter" "$desc" < <(divert_ruleset "$tf" "$stmt" "${CASE_MATCH:-$MATCH}") || return
	start_peer proxy "$nsrouter" tcp "$lsock" "$@" || return
	next_sport
	if [ "$expect" = proxy ]; then
		expect_reply "$desc" "$nsclient" tcp "$DST1" "$SPORT" 1 \
			proxy "$DST1" "$(hostport "$C" "$SPORT")"
		if ! peer_log_has proxy "accept laddr=$DST1 peer=$(hostport "$C" "$SPORT") lsock=$lsock"; then
			fail "$desc: proxy listener $lsock did not log the accept"
			indent < "$TMPD/proxy.log"
		fi
	else
		expect_reply "$desc" "$nsclient" tcp "$DST1" "$SPORT" 1 \
			server1 "$DST1" "$(hostport "$C" "$SPORT")"
		if peer_log_grep proxy "accept"; then
			fail "$desc: listener $lsock ($*) got a connection"
			indent < "$TMPD/proxy.log"
		fi
	fi
	stop_peer "$PEER_PID"
}

test_forward()
{
	divert_case "fwd $FAM table 'tproxy to :$PORT'" \
		"$FAM" "tproxy to :$PORT" "$ANY" $PORT proxy --transparent

	# same ruleset, traffic the rule does not match goes through untouched
	load_ruleset "$nsrouter" "bypass" < <(divert_ruleset "$FAM" "tproxy to :$PORT") || return
	start_peer proxy "$nsrouter" tcp "$(hostport "$ANY" $PORT)" --transparent || return
	next_sport
	expect_reply "IPv$V fwd: traffic to server2 is not diverted" "$nsclient" tcp "$DST2" "$SPORT" 1 \
		server2 "$DST2" "$(hostport "$C" "$SPORT")"
	stop_peer "$PEER_PID"

	# no family in the statement (NFPROTO_UNSPEC): nft wants no network
	# layer match in the rule then, so it diverts tcp/8080 of both families
	CASE_MATCH="tcp dport 8080" divert_case "fwd inet table 'tcp dport 8080 tproxy to :$PORT'" \
		inet "tproxy to :$PORT" "$ANY" $PORT proxy --transparent
	divert_case "fwd inet table 'tproxy $FAM to :$PORT'" \
		inet "tproxy $FAM to :$PORT" "$ANY" $PORT proxy --transparent
	divert_case "fwd inet table 'tproxy $FAM to $R3_ADDR:$PORT'" \
		inet "tproxy $FAM to $R3_ADDR:$PORT" "$R3" $PORT proxy --transparent
	divert_case "fwd $FAM table 'tproxy $FAM to $R3_ADDR:$PORT'" \
		"$FAM" "tproxy $FAM to $R3_ADDR:$PORT" "$R3" $PORT proxy --transparent
	# address only: the port is the packet's destination port
	divert_case "fwd $FAM table 'tproxy to $R3_ADDR' (port from packet)" \
		"$FAM" "tproxy to $R3_ADDR" "$R3" 8080 proxy --transparent
}

test_default_address()
{
	# no address in the rule: the first primary address of the input
	# device (veth0: R1) is the lookup address
	divert_case "default address: 'tproxy to :$PORT' finds a listener on input device address $R1" \
		"$FAM" "tproxy to :$PORT" "$R1" $PORT proxy --transparent
	divert_case "default address: 'tproxy to :$PORT' ignores a listener on another router address $R3" \
		"$FAM" "tproxy to :$PORT" "$R3" $PORT server1 --transparent

	if [ "$V" = 4 ]; then
		# the first primary address: not a secondary one, nor a later
		# primary one (another subnet)
		ip -net "$nsrouter" addr add 10.0.1.2/24 dev veth0
		ip -net "$nsrouter" addr add 192.168.7.1/24 dev veth0
		divert_case "default address: a secondary address (10.0.1.2) of the input device is not used" \
			"$FAM" "tproxy to :$PORT" 10.0.1.2 $PORT server1 --transparent
		divert_case "default address: a later primary address (192.168.7.1) of the input device is not used" \
			"$FAM" "tproxy to :$PORT" 192.168.7.1 $PORT server1 --transparent
		divert_case "default address: the first primary one ($R1) still is" \
			"$FAM" "tproxy to :$PORT" "$R1" $PORT proxy --transparent
		ip -net "$nsrouter" addr del 192.168.7.1/24 dev veth0
		ip -net "$nsrouter" addr del 10.0.1.2/24 dev veth0
	else
		# the first address in the device's list that is neither tentative
		# nor deprecated. The kernel keeps that list sorted by scope
		# (global first) and, within a scope, newest first.
		ip -net "$nsrouter" addr add dead:1::2/64 dev veth0 nodad preferred_lft 0
		divert_case "default address: a deprecated address (dead:1::2, newest) of the input device is not used" \
			"$FAM" "tproxy to :$PORT" dead:1::2 $PORT server1 --transparent
		divert_case "default address: $R1 is, with a newer deprecated one present" \
			"$FAM" "tproxy to :$PORT" "$R1" $PORT proxy --transparent
		ip -net "$nsrouter" addr del dead:1::2/64 dev veth0
		ip -net "$nsrouter" addr add dead:1::3/64 dev veth0 nodad
		divert_case "default address: a newer usable global address (dead:1::3) comes first" \
			"$FAM" "tproxy to :$PORT" dead:1::3 $PORT proxy --transparent
		divert_case "default address: the older one ($R1) is then not used" \
			"$FAM" "tproxy to :$PORT" "$R1" $PORT server1 --transparent
		ip -net "$nsrouter" addr del dead:1::3/64 dev veth0
	fi
}

test_local()
{
	local desc="IPv$V local $FAM table 'tproxy $FAM to :$PORT' + output route chain mark"
	local src2 src3
	src2=$R2
	src3=$R3

	load_ruleset "$nsrouter" "$desc" < <(divert_ruleset "$FAM" "tproxy $FAM to :$PORT" "$MATCH" local) || return
	start_peer proxy "$nsrouter" tcp "$(hostport "$ANY" $PORT)" --transparent || return
	next_sport
	expect_reply "$desc: router -> server1" "$nsrouter" tcp "$DST1" "$SPORT" 1 \
		proxy "$DST1" "$(hostport "$src2" "$SPORT")"
	next_sport
	expect_reply "$desc: router -> server2 not diverted" "$nsrouter" tcp "$DST2" "$SPORT" 1 \
		server2 "$DST2" "$(hostport "$src3" "$SPORT")"
	next_sport
	expect_reply "$desc: client -> server1 (forwarded)" "$nsclient" tcp "$DST1" "$SPORT" 1 \
		proxy "$DST1" "$(hostport "$C" "$SPORT")"
	stop_peer "$PEER_PID"

	# Local traffic re-enters prerouting on lo: with no address in the
	# rule, the lookup address is lo's ($LO).
	desc="IPv$V local inet table 'tproxy to :$PORT', proxy on $LO (input device is lo)"
	load_ruleset "$nsrouter" "$desc" < <(divert_ruleset inet "tproxy to :$PORT" "tcp dport 8080" local) || return
	start_peer proxy "$nsrouter" tcp "$(hostport "$LO" $PORT)" --transparent || return
	next_sport
	expect_reply "$desc" "$nsrouter" tcp "$DST1" "$SPORT" 1 \
		proxy "$DST1" "$(hostport "$src2" "$SPORT")"
	stop_peer "$PEER_PID"
}

test_established()
{
	local desc="IPv$V established: 5 messages on one connection, listener closed after accept"
	local out rc=0 peer

	load_ruleset "$nsrouter" "$desc" < <(divert_ruleset "$FAM" "tproxy to :$PORT") || return
	start_peer proxy "$nsrouter" tcp "$(hostport "$ANY" $PORT)" --transparent --close-listener || return
	next_sport
	peer=$(hostport "$C" "$SPORT")
	out=$(peer_client "$nsclient" tcp "$DST1" --sport "$SPORT" --count 5 --interval 0.2 \
		2> "$TMPD/client.err") || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$desc: client failed (exit $rc)"
		{ echo "$out"; cat "$TMPD/client.err"; } | indent
	else
		check_replies "$desc" "$out" 5 proxy "$DST1" "$peer"
	fi
	if ! peer_log_grep proxy "listener-closed"; then
		fail "$desc: proxy did not close its listener"
	fi
	# the listener is gone: a new connection misses and falls through
	next_sport
	expect_reply "IPv$V established: new connection after the listener closed goes to server1" \
		"$nsclient" tcp "$DST1" "$SPORT" 1 server1 "$DST1" "$(hostport "$C" "$SPORT")"
	stop_peer "$PEER_PID"
}

test_not_transparent()
{
	divert_case "listener without IP_TRANSPARENT on $(hostport "$ANY" $PORT) is not chosen" \
		"$FAM" "tproxy to :$PORT" "$ANY" $PORT server1
	divert_case "listener without IP_TRANSPARENT on $R3_ADDR:$PORT is not chosen ('tproxy $FAM to $R3_ADDR:$PORT')" \
		inet "tproxy $FAM to $R3_ADDR:$PORT" "$R3" $PORT server1
}

test_no_proxy()
{
	local desc="IPv$V no proxy running: rule misses, server1 answers (fail-open)"
	load_ruleset "$nsrouter" "$desc" < <(divert_ruleset "$FAM" "tproxy to :$PORT") || return
	next_sport
	expect_reply "$desc" "$nsclient" tcp "$DST1" "$SPORT" 1 \
		server1 "$DST1" "$(hostport "$C" "$SPORT")"
}

for v in 4 6; do
	set_family "$v"
	test_forward
	test_default_address
	test_local
	test_established
	test_not_transparent
	test_no_proxy
done
flush_ruleset "$nsrouter"

exit "$ret"

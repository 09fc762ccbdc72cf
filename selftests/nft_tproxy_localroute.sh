#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# tproxy local-route, nft-tproxy's extension (NFTP_TPROXY_F_LOCAL_ROUTE,
# include/uapi/linux/netfilter/nftp.h): transparent proxying with no
# fwmark, no `ip rule` and no `local` route table.  client -- router --
# server1 (lib.sh), with the topology's policy routing removed and strict
# rp_filter on every interface of the router.  The router's ruleset:
#
#   ... th dport 9090 tproxy ip to S1:9090 local-route accept      (b)
#   ... th dport 8080 tproxy ip to :12345 local-route accept       (a)
#   meta nfproto ipv4 meta l4proto { tcp, udp } socket transparent 1 \
#           tproxy ip to :12345 local-route accept                 (c)
#   (and the same for ip6)
#
# and a proxy that uses the three features a transparent proxy needs:
#   (a) diverted connections: client -> server1:8080 is accepted by the
#       proxy on :12345, which sees the client as peer and server1:8080
#       as its own address;
#   (b) a listener on a foreign address: server1's address, port 9090;
#   (c) connecting out from the client's address: the proxy relays each
#       connection to server1 from a socket bound to the client's address;
#       server1 sees the client, its replies come back to the proxy.
# TCP and UDP, IPv4 and IPv6 (IPv4 only on 5.10, where an ip6 local-route
# rule must be refused).  Forward-chain counters show that nothing
# diverted was forwarded.  Also:
#   - the same ruleset without local-route: (a) fails (the control);
#   - traffic the rules do not divert (server2) is still forwarded;
#   - src_valid_mark=1; conntrack on; and, apart, "other software" marking every packet
#     1 with its own `ip rule fwmark 1` to an unreachable table (the mark
#     collision of a classic setup): (a)-(c) still hold;
#   - proxy stopped: the rule misses, server1 answers; with
#     fail-closed,local-route the client gets nothing and nothing is
#     forwarded.
# Reference run (in-tree modules): the patched nft refuses local-route,
# naming nft_tproxy, and installs nothing.  Needs the patched nft (`nft -V`
# names local-route); skipped otherwise.

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft python ping
# shellcheck source=selftests/socket_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/socket_lib.sh"

nft_ext local-route ||
	skip_all "nft syntax 'tproxy ... local-route': $NFT is not nft-tproxy's patched nft (scripts/build-userspace.sh)"

PORT=12345
DOWN_TIMEOUT=4		# seconds a client waits for an answer that must not come

TOPO_POLICY_ROUTING=0 topology || exit "$ksft_fail"

# No policy routing at all (the router never had an ip rule), strict rp_filter
no_policy_routing()
{
	router_conf4 rp_filter 1
	# what is left: the kernel's default rules only, and strict rp_filter
	if [ "$(ip -net "$nsrouter" -4 rule show | wc -l)" -eq 3 ] &&
	   [ "$(ip -net "$nsrouter" -6 rule show | wc -l)" -eq 2 ] &&
	   [ -z "$(ip -net "$nsrouter" -4 route show table 100)" ] &&
	   [ -z "$(ip -net "$nsrouter" -6 route show table 100)" ]; then
		pass "router: no fwmark rule, no table 100, strict rp_filter"
		ip -net "$nsrouter" rule show | indent
	else
		fail "router: policy routing still there"
		{ ip -net "$nsrouter" rule show; ip -net "$nsrouter" -6 rule show; } | indent
		return 1
	fi
}

# --- reference run: the in-tree module would ignore the flag -----------------
if [ "${NFTP_MODE:-}" = ref ]; then
	if out=$(echo "table inet lr { chain divert { type filter hook prerouting priority mangle;
		ip daddr $S1_4 tcp dport 8080 tproxy ip to :$PORT local-route accept; }
	}" |
		ip netns exec "$nsrouter" "$NFT" -f - 2>&1); then
		fail "patched nft installed a local-route rule on the in-tree module"
		ip netns exec "$nsrouter" "$NFT" list ruleset | indent
	elif ! grep -q 'nft_tproxy' <<< "$out"; then
		fail "local-route refused, but the message does not name nft_tproxy:"
		echo "$out" | indent
	elif [ -n "$(ip netns exec "$nsrouter" "$NFT" list ruleset)" ]; then
		fail "local-route refused, but something was installed"
		ip netns exec "$nsrouter" "$NFT" list ruleset | indent
	else
		pass "in-tree nft_tproxy: patched nft refuses local-route, nothing installed"
		grep -m 3 . <<< "$out" | indent
		echo "N/A: tproxy local-route (the in-tree module of $(uname -r) lacks it)"
	fi
	exit "$ret"
fi

no_policy_routing || exit "$ksft_fail"

# IPv6 local-route needs a kernel that can keep a packet's local route from
# serving its receive batch as a route hint (IP6SKB_MULTIPATH, kmod/compat.h):
# 6.1 on.  Before, an ip6 rule must be refused (EOPNOTSUPP), and IPv4 goes
# on alone.
FAMS=$(local_route_fams)
rc=0
out=$(echo "table ip6 probe { chain p { type filter hook prerouting priority mangle;
	tcp dport 8080 tproxy to :$PORT local-route; }
	}" | ip netns exec "$nsrouter" "$NFT" -f - 2>&1) || rc=$?
if [ "$FAMS" = 4 ]; then
	if [ "$rc" -ne 0 ] && grep -q 'Operation not supported' <<< "$out"; then
		pass "IPv6 local-route refused on $(uname -r) (EOPNOTSUPP: no IP6SKB_MULTIPATH)"
		log "IPv6 local-route left out on $(uname -r): IPv4 only"
	else
		fail "IPv6 local-route on $(uname -r): not refused with EOPNOTSUPP (exit $rc)"
		echo "$out" | indent
		exit "$ret"
	fi
elif [ "$rc" -ne 0 ]; then
	fail "IPv6 local-route refused on $(uname -r):"
	echo "$out" | indent
	exit "$ret"
fi
flush_ruleset "$nsrouter"

for p in tcp udp; do
	for v in 4 6; do
		set_family "$v"
		PEER_NOWAIT=1 start_peer "server1-$p-$v" "$nsserver1" "$p" "$DST1" --role server1
		PEER_NOWAIT=1 start_peer "server2-$p-$v" "$nsserver2" "$p" "$DST2" --role server2
		PEER_NOWAIT=1 start_peer "foreign-$p-$v" "$nsrouter" "$p" "$(hostport "$S1" 9090)" \
			--transparent --role foreign
	done
done
wait_peers {server1,server2,foreign}-{tcp,udp}-{4,6} || exit "$ksft_fail"

declare -A PROXY_PID=()
start_proxies()
{
	local p v any
	for p in tcp udp; do
		for v in 4 6; do
			any=0.0.0.0
			[ "$v" = 6 ] && any=::
			: > "$TMPD/proxy-$p-$v.log"
			PEER_NOWAIT=1 start_peer "proxy-$p-$v" "$nsrouter" "$p" "$(hostport "$any" $PORT)" \
				--transparent --proxy --role proxy --upstream-timeout 2
			PROXY_PID[$p$v]=$PEER_PID
		done
	done
	wait_peers proxy-{tcp,udp}-{4,6}
}
start_proxies || exit "$ksft_fail"

# ruleset [FLAGS]: the router's ruleset, every tproxy with FLAGS (default
# local-route; "" for the control); a forward chain counts what the
# client sends to 8080/9090 (fwd-c-P-V) and what reaches it (fwd-s-P-V)
ruleset()
{
	local flags=${1-local-route} v f a s p
	echo "flush ruleset"
	echo "table inet lr {"
	echo "chain divert { type filter hook prerouting priority mangle; policy accept;"
	for v in $FAMS; do
		f=ip a=$S1_4 s=$S1_4
		[ "$v" = 6 ] && f=ip6 a=$S1_6 s="[$S1_6]"
		echo "$f daddr $a meta l4proto { tcp, udp } th dport 9090 tproxy $f to $s:9090 $flags counter accept comment \"foreign-$v\""
		echo "$f daddr $a meta l4proto { tcp, udp } th dport 8080 tproxy $f to :$PORT $flags counter accept comment \"tproxy-$v\""
		echo "meta nfproto ipv$v meta l4proto { tcp, udp } socket transparent 1 tproxy $f to :$PORT $flags counter accept comment \"socket-$v\""
	done
	echo "}"
	echo "chain forward { type filter hook forward priority filter; policy accept;"
	for v in 4 6; do
		for p in tcp udp; do
			echo "meta nfproto ipv$v iifname veth0 meta l4proto $p th dport { 8080, 9090 } counter comment \"fwd-c-$p-$v\""
			echo "meta nfproto ipv$v oifname veth0 meta l4proto $p counter comment \"fwd-s-$p-$v\""
		done
		echo "meta nfproto ipv$v udp dport 7070 counter comment \"fwd-7070-$v\""
	done
	echo "}"
	echo "chain input { type filter hook input priority filter; policy accept;"
	for v in 4 6; do
		echo "meta nfproto ipv$v udp dport 7070 counter comment \"in-7070-$v\""
	done
	echo "}"
	echo "}"
}

# case_all DESC: (a), (b), (c) for $P over IPv$V, nothing forwarded
case_all()
{
	local desc="IPv$V $P $1"
	: > "$TMPD/server1-$P-$V.log"
	relay_case "$desc" "$nsclient" "$C"
	foreign_case "$desc" "$nsclient" "$C"
	read_counters "$nsrouter"
	check_cnt "$desc: the client's packets were not forwarded" "fwd-c-$P-$V" -eq 0
	check_cnt "$desc: server1's answers were not forwarded to the client" "fwd-s-$P-$V" -eq 0
	check_cnt "$desc: server1's answers to the relaying socket took the socket rule" "socket-$V" -ge 2
}

# case_bypass: traffic to server2 is not diverted, it is forwarded
case_bypass()
{
	next_sport
	expect_reply "IPv$V $P: traffic to server2 is forwarded, untouched" "$nsclient" "$P" "$DST2" "$SPORT" 1 \
		server2 "$DST2" "$(hostport "$C" "$SPORT")"
}

# case_no_answer DESC: the client to server1:8080 gets nothing, nothing
# is forwarded, server1 sees nothing
case_no_answer()
{
	local desc="IPv$V $P $1" rc=0
	: > "$TMPD/server1-$P-$V.log"
	next_sport
	peer_client "$nsclient" "$P" "$DST1" --sport "$SPORT" --timeout "$DOWN_TIMEOUT" --retries 0 \
		> "$TMPD/client.out" 2>&1 || rc=$?
	read_counters "$nsrouter"
	if [ "$rc" -ne 0 ] && [ "$(cnt "fwd-c-$P-$V")" -eq 0 ] &&
	   ! peer_log_grep "server1-$P-$V" "peer=$(hostport "$C" "$SPORT")"; then
		pass "$desc: no answer, nothing forwarded (tproxy-$V=$(cnt "tproxy-$V"))"
	else
		fail "$desc: client exit $rc, fwd-c-$P-$V=$(cnt "fwd-c-$P-$V")"
		indent < "$TMPD/client.out"
	fi
}

for P in tcp udp; do
	for v in $FAMS; do
		set_family "$v"
		load_ruleset "$nsrouter" "local-route" < <(ruleset) || continue
		case_all "no policy routing, strict rp_filter:"
		case_bypass

		load_ruleset "$nsrouter" "control" < <(ruleset "") || continue
		case_no_answer "control, the same ruleset without local-route: (a) fails,"
	done
done

# Route hints: under NAPI, the list receive path lets one packet's route
# serve the batch's next packets to the same address (ip_list_rcv_finish,
# ip6_list_rcv_finish).  A local route of ours is the flow's, not the
# address's: a datagram to server1:7070, not diverted, right behind one to
# server1:8080 in a batch must still be forwarded.  Threaded GRO on the
# router's client side makes the batches (veth takes a datagram to NAPI
# only from a peer without TSO: no UDP GRO forwarding, no merging).
case_hints()
{
	local n=512 desc="IPv$V udp, batched receive (threaded GRO)" p
	# The sender, real-time on CPU 0, is not preempted by the NAPI
	# threads, pinned there too: they take its bursts of 32 in one poll.
	for p in $(pgrep '^napi/veth'); do
		taskset -pc 0 "$p" > /dev/null
	done
	ip netns exec "$nsclient" chrt -f 10 taskset -c 0 "$PYTHON" - "$S1" "$n" <<-'EOF'
		import socket, sys, time
		fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
		s = socket.socket(fam, socket.SOCK_DGRAM)
		for i in range(int(sys.argv[2])):
		    s.sendto(b"hint", (sys.argv[1], 8080 if i % 2 else 7070))
		    if i % 32 == 31:
		        time.sleep(0.002)
	EOF
	sleep 1
	read_counters "$nsrouter"
	# none may be delivered locally; a slow guest may drop some at the
	# veth ring (seen on the debug kernel), so forwarded need not be all
	if [ "$(cnt "in-7070-$V")" -eq 0 ] && [ "$(cnt "fwd-7070-$V")" -gt 0 ]; then
		pass "$desc: to server1:7070, $(cnt "fwd-7070-$V") of $((n / 2)) datagrams forwarded, none delivered locally (tproxy-$V=$(cnt "tproxy-$V"))"
	else
		fail "$desc: to server1:7070: forwarded $(cnt "fwd-7070-$V"), delivered locally $(cnt "in-7070-$V"), of $((n / 2))"
	fi
}
if ip netns exec "$nsclient" ethtool -K eth0 tso off 2> /dev/null &&
   ip netns exec "$nsrouter" ethtool -K veth0 gro on 2> /dev/null &&
   ip netns exec "$nsrouter" sh -c 'echo 1 > /sys/class/net/veth0/threaded' 2> /dev/null; then
	for v in $FAMS; do
		set_family "$v"
		load_ruleset "$nsrouter" "route hints" < <(ruleset) || continue
		case_hints
	done
	ip netns exec "$nsrouter" sh -c 'echo 0 > /sys/class/net/veth0/threaded'
	ip netns exec "$nsrouter" ethtool -K veth0 gro off
	ip netns exec "$nsclient" ethtool -K eth0 tso on
else
	log "route hints: no threaded GRO on veth here ($(uname -r)), not tested"
fi

# run_cases DESC [PRE [COUNTER]]: case_all for each protocol and family,
# with the ruleset and, when given, a table of its own whose prerouting
# chain is PRE; COUNTER, a counter of PRE's, must have seen the flows
run_cases()
{
	local desc=$1 pre=${2:-} counter=${3:-}
	for P in tcp udp; do
		for v in $FAMS; do
			set_family "$v"
			load_ruleset "$nsrouter" "$desc" < <(
				ruleset
				[ -z "$pre" ] || printf 'table inet extra {\nchain pre { %s; }\n}\n' "$pre"
			) || continue
			case_all "$desc"
			[ -z "$counter" ] || check_cnt "IPv$V $P $desc: PRE saw the flows" "$counter" -ge 2
		done
	done
}

# src_valid_mark=1: the reverse-path check would take a mark into account;
# there is none
router_conf4 src_valid_mark 1
run_cases "src_valid_mark=1, strict rp_filter:"
router_conf4 src_valid_mark 0

# conntrack: the cases above run with no ct rule in the router's namespace,
# so without conntrack hooks there; a ct rule turns them on
run_cases "conntrack on:" \
	'type filter hook prerouting priority filter; ct state new counter comment "ct-new"' ct-new

# other software that marks every packet 1 and routes mark 1 to a table
# of its own (here unreachable), the collision of a classic tproxy setup
for v in $FAMS; do
	ip -net "$nsrouter" -"$v" rule add fwmark 1 lookup 200 priority 100
	ip -net "$nsrouter" -"$v" route add unreachable default table 200
done
run_cases "every packet marked 1 by other software, 'ip rule fwmark 1' to an unreachable table:" \
	'type filter hook prerouting priority raw; meta mark set 1'
for v in $FAMS; do
	ip -net "$nsrouter" -"$v" rule del fwmark 1 lookup 200
	ip -net "$nsrouter" -"$v" route flush table 200
done

# proxy stopped: fail-open, then fail-closed
for p in tcp udp; do
	for v in 4 6; do
		stop_peer "${PROXY_PID[$p$v]}"
	done
done
for P in tcp udp; do
	for v in $FAMS; do
		set_family "$v"
		load_ruleset "$nsrouter" "proxy stopped" < <(ruleset) || continue
		next_sport
		expect_reply "IPv$V $P proxy stopped: the rule misses, server1 answers" "$nsclient" "$P" "$DST1" "$SPORT" 1 \
			server1 "$DST1" "$(hostport "$C" "$SPORT")"
		load_ruleset "$nsrouter" "fail-closed" < <(ruleset fail-closed,local-route) || continue
		case_no_answer "proxy stopped, fail-closed,local-route:"
	done
done
flush_ruleset "$nsrouter"

exit "$ret"

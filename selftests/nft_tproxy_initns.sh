#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# tproxy in the initial network namespace: every other script routes
# through a router namespace of its own; here the router is the initial
# namespace (lib.sh's TOPO_ROUTER_INIT), where a real host's proxy runs.
#   1. the classic ruleset (mark, ip rule, table 100), both module sets:
#      client -> server1:8080 diverted to the proxy, TCP and UDP, v4/v6;
#   2. ours: tproxy local-route with no ip rule and strict rp_filter:
#      (a) diverted, original destination intact, (c) relayed from the
#      client's address with the replies, and the host's own client
#      through output; IPv4 only on 5.10.
# It changes the initial namespace (sysctls, a table, an ip rule), so it
# runs only in the test VM (NFTP_IN_VM=1) or with NFTP_INIT_NETNS=1, adds
# only its own table, and puts back what it changed.

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft python ping
# shellcheck source=selftests/socket_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/socket_lib.sh"

[ "${NFTP_IN_VM:-0}" = 1 ] || [ "${NFTP_INIT_NETNS:-0}" = 1 ] ||
	skip_all "changes the initial network namespace: runs in the test VM (or with NFTP_INIT_NETNS=1)"

PORT=12345
TABLE="inet nftp_initns"

# what the test changes in the initial namespace, put back on exit
declare -A SAVED=()
for k in net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv4.conf.all.rp_filter \
	 net.ipv4.conf.default.rp_filter net.ipv4.conf.lo.rp_filter; do
	SAVED[$k]=$(sysctl -n "$k")
done
# shellcheck disable=SC2317 # on_exit_hook
initns_restore()
{
	local k
	"$NFT" delete table inet nftp_initns 2> /dev/null
	ip rule del fwmark 1 lookup 100 2> /dev/null
	ip -6 rule del fwmark 1 lookup 100 2> /dev/null
	ip route flush table 100 2> /dev/null
	ip -6 route flush table 100 2> /dev/null
	for k in "${!SAVED[@]}"; do
		sysctl -wq "$k=${SAVED[$k]}"
	done
}
on_exit_hook=initns_restore

TOPO_ROUTER_INIT=1 TOPO_POLICY_ROUTING=0 topology || exit "$ksft_fail"
if [ "$(readlink /proc/self/ns/net)" != "$(readlink /proc/1/ns/net)" ] ||
   [ "$(ip netns exec "$nsrouter" readlink /proc/self/ns/net)" != "$(readlink /proc/1/ns/net)" ]; then
	fail "the router is not the initial network namespace"
	exit "$ret"
fi
pass "router: the initial network namespace ($(readlink /proc/1/ns/net))"

for p in tcp udp; do
	for v in 4 6; do
		set_family "$v"
		PEER_NOWAIT=1 start_peer "server1-$p-$v" "$nsserver1" "$p" "$DST1" --role server1
		PEER_NOWAIT=1 start_peer "proxy-$p-$v" "$nsrouter" "$p" "$(hostport "$ANY" $PORT)" \
			--transparent --proxy --role proxy --upstream-timeout 2
	done
done
wait_peers {server1,proxy}-{tcp,udp}-{4,6} || exit "$ksft_fail"

# ruleset classic|local-route FAMS: our table only, replaced whole
ruleset()
{
	local how=$1 v f a act="meta mark set 1 accept" sock
	sock="meta l4proto { tcp, udp } socket transparent 1 meta mark set 1 accept"
	if [ "$how" = local-route ]; then
		act="local-route accept"
		sock="meta l4proto { tcp, udp } socket transparent 1 tproxy to :$PORT local-route accept"
		# IPv4 only where an IPv6 local-route rule is refused (5.10)
		[ "$2" = 4 ] && sock="meta l4proto { tcp, udp } socket transparent 1 tproxy ip to :$PORT local-route accept"
	fi
	echo "table $TABLE"
	echo "delete table $TABLE"
	echo "table $TABLE {"
	echo "chain pre { type filter hook prerouting priority mangle; policy accept;"
	echo "$sock"
	for v in $2; do
		f=ip a=$S1_4
		[ "$v" = 6 ] && f=ip6 a=$S1_6
		echo "$f daddr $a meta l4proto { tcp, udp } th dport 8080 tproxy $f to :$PORT $act"
	done
	echo "}"
	if [ "$how" = local-route ]; then
		echo "chain out { type filter hook output priority mangle; policy accept;"
		for v in $2; do
			f=ip a=$S1_4
			[ "$v" = 6 ] && f=ip6 a=$S1_6
			echo "$f daddr $a meta l4proto { tcp, udp } th dport 8080 tproxy $f to :$PORT local-route accept"
		done
		echo "}"
	fi
	echo "chain forward { type filter hook forward priority filter; policy accept;"
	echo "iifname veth0 meta l4proto { tcp, udp } th dport 8080 counter comment \"fwd\""
	echo "}"
	echo "}"
}

# 1. classic
for v in 4 6; do
	ip -"$v" rule add fwmark 1 lookup 100
done
ip route add local 0.0.0.0/0 dev lo table 100
ip -6 route add local ::/0 dev lo table 100
load_ruleset "$nsrouter" "classic" < <(ruleset classic "4 6") || exit "$ret"
for P in tcp udp; do
	for v in 4 6; do
		set_family "$v"
		relay_case "IPv$V $P classic (mark, ip rule, table 100):" "$nsclient" "$C"
	done
done
read_counters "$nsrouter"
check_cnt "classic: nothing the client sent to 8080 was forwarded" fwd -eq 0

# 2. local-route
if [ "${NFTP_MODE:-}" = ref ]; then
	echo "N/A: tproxy local-route in the initial namespace (the in-tree module of $(uname -r) lacks it)"
	exit "$ret"
elif ! nft_ext local-route; then
	log "tproxy local-route: $NFT is not the patched nft, not tested"
	exit "$ret"
fi
for v in 4 6; do
	ip -"$v" rule del fwmark 1 lookup 100
	ip -"$v" route flush table 100
done
router_conf4 rp_filter 1
FAMS=$(local_route_fams)
load_ruleset "$nsrouter" "local-route" < <(ruleset local-route "$FAMS") || exit "$ret"
for P in tcp udp; do
	for v in $FAMS; do
		set_family "$v"
		relay_case "IPv$V $P local-route, no ip rule, strict rp_filter:" "$nsclient" "$C"
		relay_case "IPv$V $P local-route, the host's own client (output):" "$nsrouter" "$R2"
	done
done
read_counters "$nsrouter"
check_cnt "local-route: nothing the client sent to 8080 was forwarded" fwd -eq 0

exit "$ret"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# examples/: every ruleset there, loaded as it is written (only its
# defines set to this topology's names and networks) with the policy
# routing its header gives as `ip` commands, driven with real traffic:
#   gateway.nft     the router's clients' TCP and UDP, IPv4 and IPv6, to a
#                   proxy that connects on from the client's address;
#                   bypassed networks are forwarded untouched;
#                   nftp-diagnose finds nothing wrong
#   fail-closed.nft the same, and with the proxy down nothing gets through
#                   (our modules and patched nft only)
#   dns.nft         DNS over UDP and TCP to a local DNS proxy, answered
#                   from the server the client asked
#   local.nft       the client's own connections and datagrams to a proxy
#                   on the client (run as user proxy), whose own
#                   connections leave the host instead of looping
#   bridge.nft      a transparent bridge between a client and its router:
#                   web traffic through the bridge's proxy, which connects
#                   on from the client's address; other ports bridged
# squid.nft runs with squid in nft_tproxy_squid.sh.  The policy routing of
# systemd-networkd/50-tproxy.network is checked to say what the examples'
# `ip` commands say.

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft ip
# shellcheck source=selftests/socket_lib.sh
source "$SELFTEST_DIR/socket_lib.sh"

checktool "setpriv --version" "run the proxy as its own user (util-linux setpriv)"
getent passwd proxy > /dev/null || skip_all "no user proxy (local.nft's PROXY_USER)"

# load_example NS NAME [NAME=VALUE...]: NS's policy routing replaced by
# the example's `ip` commands, and the example's ruleset loaded
load_example()
{
	local ns=$1 name=$2 line n=0
	shift 2
	ip -net "$ns" rule del fwmark 1 lookup 100 2> /dev/null
	ip -net "$ns" -6 rule del fwmark 1 lookup 100 2> /dev/null
	ip -net "$ns" route flush table 100 2> /dev/null
	ip -net "$ns" -6 route flush table 100 2> /dev/null
	while read -r line; do
		# shellcheck disable=SC2086 # the command's words
		if ! ip -net "$ns" ${line#ip } 2> "$TMPD/ip.err"; then
			fail "$name.nft: '$line' failed"
			indent < "$TMPD/ip.err"
			return 1
		fi
		n=$((n + 1))
	done < <(example_ip "$name")
	if [ "$n" -lt 4 ]; then
		fail "$name.nft: its header has $n ip commands, not the policy routing"
		return 1
	fi
	# each example alone, as it is meant to be loaded
	if ! { echo "flush ruleset"; example "$name" "$@"; } > "$TMPD/$name.nft" ||
	   ! grep -q "^table " "$TMPD/$name.nft"; then
		fail "$name.nft: no ruleset made of it"
		indent < "$TMPD/$name.nft"
		return 1
	fi
	load_ruleset "$ns" "$name.nft" < "$TMPD/$name.nft"
}

# networkd_ip FILE: a systemd-networkd file's policy rules and routes as
# the `ip` commands that do the same (the keys the examples use)
networkd_ip()
{
	awk -F= '
	function flush() {
		if (sec == "RoutingPolicyRule") {
			if (fam != "ipv6") print "ip rule add fwmark " mark " lookup " table
			if (fam == "both" || fam == "ipv6") print "ip -6 rule add fwmark " mark " lookup " table
		} else if (sec == "Route" && type == "local") {
			print "ip " (dst ~ /:/ ? "-6 " : "") "route add local " dst " dev lo table " table
		}
		mark = table = fam = type = dst = ""
	}
	/^\[/ { flush(); sec = substr($0, 2, length($0) - 2); next }
	$1 == "FirewallMark" { mark = $2 } $1 == "Table" { table = $2 }
	$1 == "Family" { fam = $2 } $1 == "Type" { type = $2 } $1 == "Destination" { dst = $2 }
	END { flush() }' "$1"
}

NETWORKD=$EXAMPLES/systemd-networkd/50-tproxy.network
networkd_ip "$NETWORKD" | sort > "$TMPD/networkd.ip"
for f in "$EXAMPLES"/*.nft; do
	if diff "$TMPD/networkd.ip" <(example_ip "$(basename "$f" .nft)" | grep -v "^ip link" | sort) \
		> "$TMPD/networkd.diff"; then
		pass "$(basename "$f"): its ip commands are what $(basename "$NETWORKD") sets up"
	else
		fail "$(basename "$f") and $(basename "$NETWORKD") set up different policy routing"
		indent < "$TMPD/networkd.diff"
	fi
done

# -------------------------------------------------------------- the router

topology || exit "$ksft_fail"

declare -A PROXY_PID=()
for v in 4 6; do
	set_family "$v"
	for P in tcp udp; do
		PEER_NOWAIT=1 start_peer "server1-$P-$v" "$nsserver1" "$P" "$(hostport "$S1" 8080)" --role server1
		PEER_NOWAIT=1 start_peer "proxy-$P-$v" "$nsrouter" "$P" "$(hostport "$ANY" 12345)" --transparent --proxy \
			--role proxy --upstream-timeout 2
		PROXY_PID[$P$v]=$PEER_PID
		PEER_NOWAIT=1 start_peer "dns-$P-$v" "$nsrouter" "$P" "$(hostport "$ANY" 5353)" --transparent --role dns
	done
	PEER_NOWAIT=1 start_peer "server2-tcp-$v" "$nsserver2" tcp "$(hostport "$S2" 8080)" --role server2
done
wait_peers {server1,proxy,dns}-{tcp,udp}-{4,6} server2-tcp-{4,6} || exit "$ksft_fail"

# proxy_case DESC NS P DST CLIENT SERVER: a client in NS to DST over P,
# relayed by a --proxy server to SERVER from the client's address CLIENT
proxy_case()
{
	local desc=$1 ns=$2 p=$3 dst=$4 client=$5 server=$6 out rc=0
	next_sport
	out=$(peer_client "$ns" "$p" "$dst" --sport "$SPORT" --count 2 2> "$TMPD/client.err") || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$desc: client to $dst failed (exit $rc)"
		{ echo "$out"; cat "$TMPD/client.err"; } | indent
		return 1
	fi
	check_proxy_reply "$desc" "$out" 2 "$dst" "$client" "$SPORT" "$server"
}

# through_proxy DESC P: client -> server1:8080 over P, through the proxy
through_proxy() { proxy_case "$1" "$nsclient" "$2" "$(hostport "$S1" 8080)" "$C" server1; }

GW_DEFINES=(LAN_IF='"veth0"' BYPASS4='{ 10.0.3.0/24, 127.0.0.0/8 }' BYPASS6='{ ::1/128, dead:3::/64 }')
if load_example "$nsrouter" gateway "${GW_DEFINES[@]}"; then
	for v in 4 6; do
		set_family "$v"
		for P in tcp udp; do
			through_proxy "gateway.nft: IPv$v $P to server1" "$P"
		done
		next_sport
		expect_reply "gateway.nft: IPv$v tcp to server2 (bypassed), forwarded" "$nsclient" tcp \
			"$(hostport "$S2" 8080)" "$SPORT" 1 server2 "$(hostport "$S2" 8080)" "$(hostport "$C" "$SPORT")"
	done
	if out=$("$PYTHON" "$SELFTEST_DIR/../scripts/nftp-diagnose" --netns "$nsrouter" --nft "$NFT" 2>&1); then
		pass "gateway.nft: nftp-diagnose finds nothing wrong"
	else
		fail "gateway.nft: nftp-diagnose (exit $?) says:"
		echo "$out" | indent
	fi
fi

if load_example "$nsrouter" dns LAN_IF='"veth0"'; then
	for v in 4 6; do
		set_family "$v"
		for P in udp tcp; do
			next_sport
			expect_reply "dns.nft: IPv$v $P to server1's port 53, answered by the DNS proxy" \
				"$nsclient" "$P" "$(hostport "$S1" 53)" "$SPORT" 1 dns \
				"$(hostport "$S1" 53)" "$(hostport "$C" "$SPORT")"
		done
	done
fi

# fail-closed.nft: last here, it stops the TCP proxies
if ! nft_ext fail-closed; then
	echo "SKIP: fail-closed.nft: $NFT is not nft-tproxy's patched nft"
elif [ "${NFTP_MODE:-}" = ref ]; then
	# the refusal itself is nft_tproxy_failclosed.sh's
	echo "N/A: fail-closed.nft (the in-tree nft_tproxy of $(uname -r) has no fail-closed)"
elif load_example "$nsrouter" fail-closed "${GW_DEFINES[@]}"; then
	for v in 4 6; do
		set_family "$v"
		through_proxy "fail-closed.nft: IPv$v tcp to server1, proxy up" tcp
		stop_peer "${PROXY_PID[tcp$v]}"
		n0=$(grep -c accept "$TMPD/server1-tcp-$v.log")
		next_sport
		rc=0
		IO_TIMEOUT=2 peer_client "$nsclient" tcp "$(hostport "$S1" 8080)" --sport "$SPORT" \
			> "$TMPD/client.out" 2>&1 || rc=$?
		if [ "$rc" -ne 0 ] && [ "$(grep -c accept "$TMPD/server1-tcp-$v.log")" -eq "$n0" ]; then
			pass "fail-closed.nft: IPv$v tcp, proxy down: no connection (client exit $rc), server1 saw nothing"
		else
			fail "fail-closed.nft: IPv$v tcp, proxy down: client exit $rc, server1 logged:"
			indent < "$TMPD/server1-tcp-$v.log"
		fi
	done
fi

# ------------------------------------------------------------ the client

# local.nft in the client: the proxy runs as user proxy with the
# capability IP_TRANSPARENT needs; its files are written as that user
chmod 1777 "$TMPD"
umask 000
PEER_WRAP=(setpriv --reuid=proxy --regid=proxy --clear-groups --inh-caps=+net_admin --ambient-caps=+net_admin)
for v in 4 6; do
	set_family "$v"
	for P in tcp udp; do
		PEER_NOWAIT=1 start_peer "local-$P-$v" "$nsclient" "$P" "$(hostport "$ANY" 12345)" --transparent --proxy \
			--role proxy --upstream-timeout 2
	done
done
PEER_WRAP=()
umask 022
wait_peers local-{tcp,udp}-{4,6} || exit "$ksft_fail"
flush_ruleset "$nsrouter"

if load_example "$nsclient" local BYPASS4='{ 127.0.0.0/8 }' BYPASS6='{ ::1/128 }'; then
	for v in 4 6; do
		set_family "$v"
		for P in tcp udp; do
			through_proxy "local.nft: the client's own IPv$v $P to server1" "$P"
		done
	done
fi

# ------------------------------------------------------------ the bridge
#
#  bclient eth0 --- lan0 [br0 .2, the proxy] wan0 --- eth0 web .1
#      10.0.1.99/24 dead:1::99/64                   the client's router, with
#                                                   the web server's 198.51.100.80
#                                                   and 2001:db8:80::80
WEB4=198.51.100.80 WEB6=2001:db8:80::80

# lan_host NS DEV N [GW]: DEV up as 10.0.1.N/24 and dead:1::N/64, with
# default routes via .GW
lan_host()
{
	ip -net "$1" link set "$2" up
	ip -net "$1" addr add "10.0.1.$3/24" dev "$2"
	ip -net "$1" addr add "dead:1::$3/64" dev "$2" nodad
	if [ -n "${4:-}" ]; then
		ip -net "$1" route add default via "10.0.1.$4"
		ip -net "$1" -6 route add default via "dead:1::$4"
	fi
}

nsbclient="" nsbridge="" nsweb=""
setup_ns nsbclient nsbridge nsweb
ip link add lan0 netns "$nsbridge" type veth peer name eth0 netns "$nsbclient" || exit "$ksft_fail"
ip link add wan0 netns "$nsbridge" type veth peer name eth0 netns "$nsweb" || exit "$ksft_fail"
ip -net "$nsbridge" link add br0 type bridge
for dev in lan0 wan0; do
	ip -net "$nsbridge" link set "$dev" master br0 up
done
lan_host "$nsbridge" br0 2 1
# br_netfilter, if some test loaded it, would run the inet table for the
# bridged frames too: the example says to keep it out
for f in iptables ip6tables; do
	ip netns exec "$nsbridge" sysctl -wq "net.bridge.bridge-nf-call-$f=0" 2> /dev/null
done
lan_host "$nsbclient" eth0 99 1
lan_host "$nsweb" eth0 1
ip -net "$nsweb" addr add "$WEB4/32" dev lo
ip -net "$nsweb" addr add "$WEB6/128" dev lo

for v in 4 6; do
	if [ "$v" = 4 ]; then W=$WEB4 ANY=0.0.0.0; else W=$WEB6 ANY=::; fi
	PEER_NOWAIT=1 start_peer "web-$v" "$nsweb" tcp "$(hostport "$W" 80)" --role web
	PEER_NOWAIT=1 start_peer "web8080-$v" "$nsweb" tcp "$(hostport "$W" 8080)" --role web8080
	PEER_NOWAIT=1 start_peer "bproxy-$v" "$nsbridge" tcp "$(hostport "$ANY" 3129)" --transparent --proxy \
		--role proxy --upstream-timeout 2
done
wait_peers {web,web8080,bproxy}-{4,6} || exit "$ksft_fail"

if load_example "$nsbridge" bridge; then
	for v in 4 6; do
		if [ "$v" = 4 ]; then W=$WEB4 C=10.0.1.99; else W=$WEB6 C=dead:1::99; fi
		proxy_case "bridge.nft: IPv$v web traffic across the bridge" "$nsbclient" tcp \
			"$(hostport "$W" 80)" "$C" web
		next_sport
		expect_reply "bridge.nft: IPv$v port 8080, bridged untouched" "$nsbclient" tcp \
			"$(hostport "$W" 8080)" "$SPORT" 1 web8080 "$(hostport "$W" 8080)" "$(hostport "$C" "$SPORT")"
	done
fi

exit "$ret"

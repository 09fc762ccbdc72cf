#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The demonstration, run inside the guest by scripts/demo.sh: a client, a
# router with a transparent proxy, and a server, each in a network
# namespace; a connection to the server's address answered by the proxy,
# which sees the client's and the server's real addresses.

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "$0")/../selftests/lib.sh"
lib_begin nft python ip ss

step() { printf '\n== %s\n' "$*"; }
show() { printf '   $ %s\n' "$*"; }

# run NS CMD...: show a command, then run it in NS
run() {
	local ns=$1
	shift
	show "$*"
	ip netns exec "$ns" "$@" 2>&1 | sed 's/^/     /'
}

client_says() {
	local dst=$1 out
	show "(client) connect to $dst and send a line"
	next_sport
	out=$(peer_client "$nsclient" tcp "$dst" --sport "$SPORT" 2>&1)
	echo "     reply: $out"
	REPLY_LINE=$out
}

if [ -d /sys/module/nftp_core ]; then
	step "modules: ours (nft_tproxy and nft_socket on nftp_core)"
else
	step "modules: in-tree"
fi
lsmod | grep -E '^(nft_tproxy|nft_socket|nftp_core|nf_tproxy)' | sed 's/^/     /'

step "topology: client $C4 / $C6 -- router -- server1 $S1_4 / $S1_6"
topology || exit 1
echo "     router: ip rule fwmark 1 lookup 100; local 0.0.0.0/0 and ::/0 dev lo table 100"

step "1. server1 listens on port 80 and answers with who it is"
start_peer server "$nsserver1" tcp "$S1_4:80" --role server || exit 1
start_peer server6 "$nsserver1" tcp "[$S1_6]:80" --role server || exit 1
client_says "$S1_4:80"

step "2. a transparent proxy in the router: one socket, IP_TRANSPARENT, port 8080"
start_peer proxy "$nsrouter" tcp "0.0.0.0:8080" --transparent --role proxy || exit 1
proxy_pid=$PEER_PID
start_peer proxy6 "$nsrouter" tcp "[::]:8080" --transparent --role proxy || exit 1
run "$nsrouter" ss -Htln sport = :8080

step "3. the ruleset in the router (nft -f)"
ruleset='table inet tproxy_demo {
	chain prerouting {
		type filter hook prerouting priority mangle; policy accept;
		# packets of connections the proxy already owns (not a bare
		# SYN: a SYN on a tuple in TIME_WAIT must reach tproxy)
		tcp flags & (syn | ack) != syn socket transparent 1 meta mark set 1 accept
		# new connections to port 80: divert to the proxy
		tcp dport 80 tproxy ip to :8080 meta mark set 1 accept
		tcp dport 80 tproxy ip6 to :8080 meta mark set 1 accept
	}
}'
printf '     %s\n' "${ruleset//$'\n'/$'\n     '}"
echo "$ruleset" | ip netns exec "$nsrouter" "$NFT" -f - || exit 1

step "4. the client connects to the SERVER's address again"
client_says "$S1_4:80"
ok=1
case $REPLY_LINE in
"proxy laddr=$S1_4:80 peer=$C4:$SPORT "*)
	echo "     -> answered by the proxy, which saw client $C4:$SPORT"
	echo "        and the original destination $S1_4:80" ;;
*) echo "     -> UNEXPECTED"; ok=0 ;;
esac
client_says "[$S1_6]:80"
case $REPLY_LINE in
"proxy laddr=[$S1_6]:80 peer=[$C6]:$SPORT "*)
	echo "     -> IPv6 too: the proxy saw [$C6]:$SPORT -> [$S1_6]:80" ;;
*) echo "     -> UNEXPECTED"; ok=0 ;;
esac

step "5. the proxy stops: the rule misses and traffic falls through to the server"
stop_peer "$proxy_pid"
client_says "$S1_4:80"
case $REPLY_LINE in
"server laddr=$S1_4:80 "*) echo "     -> the real server answered (fail-open, as upstream)" ;;
*) echo "     -> UNEXPECTED"; ok=0 ;;
esac

# 6. nft-tproxy's local-route: the same without the fwmark, ip rule and
# table 100 (our modules and the patched nft, which scripts/demo.sh builds
# when the upstream tarballs are there)
if [ -d /sys/module/nftp_core ] && nft_ext local-route; then
	step "6. no policy routing: the ip rules and table 100 go, tproxy ... local-route"
	start_peer proxy "$nsrouter" tcp "0.0.0.0:8080" --transparent --role proxy || exit 1
	for v in 4 6; do
		ip -net "$nsrouter" -"$v" rule del fwmark 1 lookup 100
		ip -net "$nsrouter" -"$v" route flush table 100
	done
	run "$nsrouter" ip rule show
	run "$nsrouter" ip -6 rule show
	ruleset='table inet tproxy_demo {
	chain prerouting {
		type filter hook prerouting priority mangle; policy accept;
		# no mark: local-route delivers the packet to its socket itself
		tcp flags & (syn | ack) != syn socket transparent 1 tproxy ip to :8080 local-route accept
		tcp flags & (syn | ack) != syn socket transparent 1 tproxy ip6 to :8080 local-route accept
		tcp dport 80 tproxy ip to :8080 local-route accept
		tcp dport 80 tproxy ip6 to :8080 local-route accept
	}
}'
	# 5.10 cannot keep an IPv6 local route out of the route hints: IPv4 only
	[ "$(local_route_fams)" = 4 ] && ruleset=$(grep -v 'ip6 to' <<< "$ruleset")
	printf '     %s\n' "${ruleset//$'\n'/$'\n     '}"
	{ echo "flush ruleset"; echo "$ruleset"; } | ip netns exec "$nsrouter" "$NFT" -f - || exit 1
	client_says "$S1_4:80"
	case $REPLY_LINE in
	"proxy laddr=$S1_4:80 peer=$C4:$SPORT "*)
		echo "     -> answered by the proxy, original destination intact, no ip rule" ;;
	*) echo "     -> UNEXPECTED"; ok=0 ;;
	esac
	if grep -q 'ip6 to' <<< "$ruleset"; then
		client_says "[$S1_6]:80"
		case $REPLY_LINE in
		"proxy laddr=[$S1_6]:80 peer=[$C6]:$SPORT "*)
			echo "     -> IPv6 too, no ip -6 rule" ;;
		*) echo "     -> UNEXPECTED"; ok=0 ;;
		esac
	fi
fi

if [ "$ok" = 1 ]; then
	step "demo: OK"
	exit 0
fi
step "demo: FAILED"
exit 1

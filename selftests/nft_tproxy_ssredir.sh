#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A UDP-capable transparent proxy packaged in Debian, end to end:
# shadowsocks-libev's ss-redir (`-u` UDP relay over TPROXY, `-T` TPROXY for
# TCP) in the router, its ss-server in server1.  The client's TCP
# connections and UDP datagrams to server2:8080 are diverted to ss-redir,
# which carries them through ss-server; server2 sees server1's address,
# and the client gets server2's answers from server2's address (for UDP,
# ss-redir answers from a transparent socket bound to the original
# destination).  IPv4 and IPv6 (ss-redir on 0.0.0.0:1080 and [::]:1081).
#
#   1. the classic ruleset: tproxy with a mark, `ip rule fwmark 1 lookup
#      100` and table 100's local route (both module sets);
#   2. ours: the same with `tproxy ... local-route`, no mark, no ip rule, no
#      table 100, strict rp_filter (IPv4 only on 5.10).
# Each: TCP and UDP, the forward chain saw none of the client's packets.
# Control: ss-redir stopped, the rules miss and server2 answers the client
# itself, seeing the client's address.

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft python
# shellcheck source=selftests/socket_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/socket_lib.sh"

checktool "ss-redir -h" "run ss-redir (Debian package shadowsocks-libev)"

SS_PORT=8388
SS_KEY=nft-tproxy-selftest
SS_METHOD=chacha20-ietf-poly1305

topology || exit "$ksft_fail"

start_servers tcp server2 || exit "$ret"
PEER_NOWAIT=1 start_peer server2-udp-4 "$nsserver2" udp "$S2_4:8080" --role server2
PEER_NOWAIT=1 start_peer server2-udp-6 "$nsserver2" udp "[$S2_6]:8080" --role server2
wait_peers server2-udp-4 server2-udp-6 || exit "$ret"

# ss_start NAME NS ARGS...: a shadowsocks-libev program in NS, in the
# foreground under timeout; its output in $TMPD/NAME.out
declare -A SS_PID=()
ss_start()
{
	local name=$1 ns=$2
	shift 2
	ip netns exec "$ns" timeout "$PEER_LIFETIME" "$@" > "$TMPD/$name.out" 2>&1 &
	SS_PID[$name]=$!
	PID_LIST+=("$!")
}

# ss_listening NS PROTO PORT: something listens there
# shellcheck disable=SC2317 # through busywait
ss_listening()
{
	local opt=-tln
	[ "$2" = udp ] && opt=-uln
	ip netns exec "$1" ss -H "$opt" "sport = :$3" | grep -q .
}

ss_start ss-server "$nsserver1" ss-server -s "$S1_4" -p "$SS_PORT" -k "$SS_KEY" -m "$SS_METHOD" -u
ss_start ss-redir-4 "$nsrouter" ss-redir -s "$S1_4" -p "$SS_PORT" -b 0.0.0.0 -l 1080 \
	-k "$SS_KEY" -m "$SS_METHOD" -u -T
ss_start ss-redir-6 "$nsrouter" ss-redir -s "$S1_4" -p "$SS_PORT" -b :: -l 1081 \
	-k "$SS_KEY" -m "$SS_METHOD" -u -T
for w in "$nsserver1 tcp $SS_PORT" "$nsserver1 udp $SS_PORT" "$nsrouter tcp 1080" \
	 "$nsrouter udp 1080" "$nsrouter tcp 1081" "$nsrouter udp 1081"; do
	# shellcheck disable=SC2086 # NS PROTO PORT
	if ! busywait "$BUSYWAIT_TIMEOUT" ss_listening $w; then
		fail "shadowsocks-libev: nothing listens on $w"
		cat "$TMPD"/ss-*.out | indent
		exit "$ret"
	fi
done

# ruleset classic|local-route: the router's ruleset
ruleset()
{
	local how=$1 v f a port act sock
	act="meta mark set 1 accept"
	sock="meta l4proto { tcp, udp } socket transparent 1 meta mark set 1 accept"
	echo "flush ruleset"
	echo "table inet ss {"
	echo "chain pre { type filter hook prerouting priority mangle; policy accept;"
	[ "$how" = classic ] && echo "$sock"
	for v in $FAMS; do
		f=ip a=$S2_4 port=1080
		[ "$v" = 6 ] && f=ip6 a=$S2_6 port=1081
		[ "$how" = classic ] || act="local-route accept"
		echo "iifname veth0 $f daddr $a meta l4proto { tcp, udp } th dport 8080 counter tproxy $f to :$port $act comment \"tproxy-$v\""
	done
	echo "}"
	echo "chain forward { type filter hook forward priority filter; policy accept;"
	echo "iifname veth0 meta l4proto { tcp, udp } th dport 8080 counter comment \"fwd\""
	echo "}"
	echo "}"
}

# ss_case DESC: TCP and UDP from the client to server2:8080 over IPv$V,
# answered by server2, which saw server1's address (ss-server)
ss_case()
{
	local desc="IPv$V $1" p out rc line want
	for p in tcp udp; do
		next_sport
		rc=0
		out=$(peer_client "$nsclient" "$p" "$DST2" --sport "$SPORT" --count 2 --retries 3 \
			2> "$TMPD/client.err") || rc=$?
		want="server2 laddr=$DST2 peer=$(hostport "$S1" "")"
		line=$(grep -c -F -- "$want" <<< "$out")
		if [ "$rc" -eq 0 ] && [ "$line" -eq 2 ]; then
			pass "$desc $p: through ss-redir and ss-server, server2 answered ($(head -1 <<< "$out" | cut -d' ' -f1-3))"
		else
			fail "$desc $p: expected 2 answers '$want...', client exit $rc:"
			{ echo "$out"; cat "$TMPD/client.err"; tail -5 "$TMPD"/ss-*.out; } | indent
		fi
	done
	read_counters "$nsrouter"
	check_cnt "${desc%:}: the tproxy rule took the client's packets" "tproxy-$V" -ge 3
	check_cnt "${desc%:}: none of them was forwarded" fwd -eq 0
}

FAMS="4 6"
load_ruleset "$nsrouter" "classic" < <(ruleset classic) || exit "$ret"
for v in $FAMS; do
	set_family "$v"
	ss_case "classic (mark, ip rule, table 100):"
done

if [ "${NFTP_MODE:-}" = ref ]; then
	echo "N/A: ss-redir through tproxy local-route (the in-tree module of $(uname -r) lacks it)"
elif nft_ext local-route; then
	for v in 4 6; do
		ip -net "$nsrouter" -"$v" rule del fwmark 1 lookup 100
		ip -net "$nsrouter" -"$v" route flush table 100
	done
	router_conf4 rp_filter 1
	FAMS=$(local_route_fams)
	load_ruleset "$nsrouter" "local-route" < <(ruleset local-route) || exit "$ret"
	for v in $FAMS; do
		set_family "$v"
		ss_case "local-route, no policy routing, strict rp_filter:"
	done
else
	log "ss-redir through tproxy local-route: $NFT is not the patched nft, not tested"
fi

# control: ss-redir stopped, the rules miss (fail-open): server2 answers
# the client itself, and sees the client's address
stop_peer "${SS_PID[ss-redir-4]}"
stop_peer "${SS_PID[ss-redir-6]}"
for v in $FAMS; do
	set_family "$v"
	for p in tcp udp; do
		next_sport
		expect_reply "IPv$V $p: ss-redir stopped, server2 answers the client directly" \
			"$nsclient" "$p" "$DST2" "$SPORT" 1 server2 "$DST2" "$(hostport "$C" "$SPORT")"
	done
done
flush_ruleset "$nsrouter"

exit "$ret"

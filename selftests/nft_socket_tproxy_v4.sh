#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The whole TProxy v4 picture, nftables-native: client -- router -- server1
# (lib.sh). The router runs the classic ruleset
#
#   socket transparent 1 meta mark set 1 accept          (-m socket -j DIVERT)
#   ... tproxy ip to :12345 meta mark set 1 accept       (-j TPROXY --on-port
#                                                          --tproxy-mark 1)
#   ip rule add fwmark 1 lookup 100; ip route add local 0.0.0.0/0 dev lo table 100
#
# and a proxy that uses the three features a transparent proxy needs:
#   (a) diverted connections: client -> server1:8080 is accepted by the
#       proxy listening on :12345, which sees the client's address as peer
#       and server1:8080 as its local address;
#   (b) a listener on a FOREIGN address: the proxy binds server1's address
#       (port 9090) with IP_TRANSPARENT; no tproxy rule covers it, the
#       socket rule and the policy routing deliver the client's connection;
#   (c) connecting out FROM THE CLIENT'S ADDRESS: the proxy (--proxy)
#       relays each diverted connection to server1 from a transparent socket
#       bound to the client's address; server1 must see the client's address
#       and its replies must come back to the proxy (socket rule).
# Controls, each must change the outcome: without the socket rule (b) and
# (c) fail; without the fwmark rule (b) reaches server1; with no proxy
# running the tproxy rule misses, server1 answers, nothing is marked.
# TCP and UDP, IPv4 and IPv6, one inet table. Counters (by rule comment)
# show which rule took the packets.

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft python ping
# shellcheck source=selftests/socket_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/socket_lib.sh"

PORT=12345

topology || exit "$ksft_fail"

for p in tcp udp; do
	PEER_NOWAIT=1 start_peer "server1-$p-4" "$nsserver1" "$p" "$S1_4:8080" --role server1
	PEER_NOWAIT=1 start_peer "server1-$p-6" "$nsserver1" "$p" "[$S1_6]:8080" --role server1
	PEER_NOWAIT=1 start_peer "server1-$p-4f" "$nsserver1" "$p" "$S1_4:9090" --role server1
	PEER_NOWAIT=1 start_peer "server1-$p-6f" "$nsserver1" "$p" "[$S1_6]:9090" --role server1
done
wait_peers server1-{tcp,udp}-{4,6}{,f} || exit "$ksft_fail"

# forwarded packets by family and protocol: from the client to port 8080 or
# 9090 (fwd-c-P-V-PORT), and to the client (fwd-s-P-V). Counted per port:
# late packets of an earlier case (retransmissions) must not count
fwd_counters()
{
	local v p port
	for v in 4 6; do
		for p in tcp udp; do
			for port in 8080 9090; do
				echo "meta nfproto ipv$v iifname veth0 meta l4proto $p th dport $port counter comment \"fwd-c-$p$v-$port\""
			done
			echo "meta nfproto ipv$v oifname veth0 meta l4proto $p counter comment \"fwd-s-$p$v\""
		done
	done
}

# ruleset [nosocket]: the classic TProxy v4 ruleset (without the socket rule)
ruleset()
{
	local sock="meta l4proto { tcp, udp } socket transparent 1 counter meta mark set 1 accept comment \"socket\""
	[ "${1:-}" = nosocket ] && sock="meta l4proto { tcp, udp } counter comment \"socket\""
	cat <<-EOF
	flush ruleset
	table inet tproxy_v4 {
		chain prerouting {
			type filter hook prerouting priority mangle; policy accept;
			$sock
			ip daddr $S1_4 tcp dport 8080 tproxy ip to :$PORT counter meta mark set 1 accept comment "tproxy-tcp4"
			ip6 daddr $S1_6 tcp dport 8080 tproxy ip6 to :$PORT counter meta mark set 1 accept comment "tproxy-tcp6"
			ip daddr $S1_4 udp dport 8080 tproxy ip to :$PORT counter meta mark set 1 accept comment "tproxy-udp4"
			ip6 daddr $S1_6 udp dport 8080 tproxy ip6 to :$PORT counter meta mark set 1 accept comment "tproxy-udp6"
		}
		chain forward {
			type filter hook forward priority filter; policy accept;
			meta mark 1 counter comment "fwd-marked"
$(fwd_counters)
		}
	}
	EOF
}

# set_family (lib.sh), and this test's destinations
# shellcheck disable=SC2317 # called by set_family
v4_family()
{
	DST=$DST1
	FDST=$(hostport "$S1" 9090)
}
on_family_hook=v4_family

# (a) + (c): the proxy (one per family and protocol, started at the
# beginning) accepts the diverted connection and relays it to server1 from
# the client's address
case_divert_spoof()
{
	local desc="IPv$V $P (a) diverted to the proxy on :$PORT, (c) relayed from the client's address"
	local out rc=0
	load_ruleset "$nsrouter" "$desc" < <(ruleset) || return
	next_sport
	out=$(peer_client "$nsclient" "$P" "$DST" --sport "$SPORT" --count 2 2> "$TMPD/client.err") || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$desc: client failed (exit $rc)"
		{ echo "$out"; cat "$TMPD/client.err"; cat "$TMPD/proxy-$P-$V.log"; } | indent
	else
		# (a) the proxy answered for server1:8080 and saw the client
		check_replies "$desc" "$out" 2 proxy "$DST" "$(hostport "$C" "$SPORT")"
		# (c) through a socket bound to the client's address
		check_proxy_reply "$desc" "$out" 2 "$DST" "$C" "$SPORT"
	fi
	if peer_log_grep "server1-$P-$V" "peer=$(hostport "$C" "")"; then
		pass "$desc: server1's log has a peer with the client's address"
	else
		fail "$desc: server1 never saw the client's address"
		indent < "$TMPD/server1-$P-$V.log"
	fi
	read_counters "$nsrouter"
	if [ "$P" = tcp ]; then
		# the SYN is diverted by tproxy; the rest of the connection, and
		# server1's answers to the relaying socket, by the socket rule
		check_cnt "$desc: the client's SYN went through the tproxy rule" "tproxy-$P$V" -ge 1
		check_cnt "$desc: later packets and server1's answers matched 'socket transparent 1'" socket -ge 5
	else
		check_cnt "$desc: every datagram went through the tproxy rule" "tproxy-$P$V" -ge 2
		check_cnt "$desc: server1's answers to the relaying socket matched 'socket transparent 1'" socket -ge 2
	fi
	check_cnt "$desc: the client's packets were not forwarded" "fwd-c-$P$V-8080" -eq 0
	check_cnt "$desc: server1's answers were not forwarded to the client" "fwd-s-$P$V" -eq 0

	# control: without the socket rule server1's replies are not delivered
	# to the proxy's upstream socket (they are routed towards the client;
	# early demux has attached the socket, so ip_forward drops them)
	desc="IPv$V $P (c) control: without the socket rule"
	load_ruleset "$nsrouter" "$desc" < <(ruleset nosocket) || return
	: > "$TMPD/proxy-$P-$V.log"
	next_sport
	rc=0
	out=$(peer_client "$nsclient" "$P" "$DST" --sport "$SPORT" --timeout 4 --retries 0 2> "$TMPD/client.err") || rc=$?
	if [ "$rc" -ne 0 ] && busywait 3000 peer_log_grep "proxy-$P-$V" "proxy-error"; then
		pass "$desc: the proxy's relaying socket got no reply, the client nothing"
	else
		fail "$desc: expected the relay to fail (client exit $rc)"
		{ echo "$out"; cat "$TMPD/client.err"; cat "$TMPD/proxy-$P-$V.log"; } | indent
	fi
	read_counters "$nsrouter"
	check_cnt "$desc: server1's replies passed prerouting" socket -ge 1
}

# (b) the proxy listens on server1's address
case_foreign()
{
	local desc="IPv$V $P (b) proxy listening on server1's address $FDST"
	load_ruleset "$nsrouter" "$desc" < <(ruleset) || return
	next_sport
	expect_reply "$desc" "$nsclient" "$P" "$FDST" "$SPORT" 2 "foreign-$P-$V" "$FDST" "$(hostport "$C" "$SPORT")"
	read_counters "$nsrouter"
	check_cnt "$desc: delivered by 'socket transparent 1'" socket -ge 2
	check_cnt "$desc: nothing forwarded" "fwd-c-$P$V-9090" -eq 0

	# controls: the same listener, without the fwmark rule, then without
	# the socket rule: the connection goes on to server1
	ip -net "$nsrouter" -"$V" rule del fwmark 1 lookup 100
	next_sport
	expect_reply "IPv$V $P (b) control: without 'ip rule fwmark 1 lookup 100' server1 answers" \
		"$nsclient" "$P" "$FDST" "$SPORT" 1 server1 "$FDST" "$(hostport "$C" "$SPORT")"
	ip -net "$nsrouter" -"$V" rule add fwmark 1 lookup 100
	load_ruleset "$nsrouter" "$desc" < <(ruleset nosocket) || return
	next_sport
	expect_reply "IPv$V $P (b) control: without the socket rule server1 answers" \
		"$nsclient" "$P" "$FDST" "$SPORT" 1 server1 "$FDST" "$(hostport "$C" "$SPORT")"
	if peer_log_grep "foreign-$P-$V" "peer=$(hostport "$C" "$SPORT")"; then
		fail "$desc: the foreign listener got the control connection"
	fi
}

# no proxy: tproxy misses, the mark is not set, server1 answers
case_failopen()
{
	local desc="IPv$V $P no proxy running"
	stop_peer "${PROXY_PID[$P$V]}"
	load_ruleset "$nsrouter" "$desc" < <(ruleset) || return
	next_sport
	expect_reply "$desc: server1 answers" "$nsclient" "$P" "$DST" "$SPORT" 1 server1 "$DST" "$(hostport "$C" "$SPORT")"
	read_counters "$nsrouter"
	check_cnt "$desc: tproxy rule did not match" "tproxy-$P$V" -eq 0
	check_cnt "$desc: forwarded" "fwd-c-$P$V-8080" -ge 1
	check_cnt "$desc: no forwarded packet carries mark 1 (mark only on success)" fwd-marked -eq 0
}

# the proxies (--proxy: relay from the client's address) and the foreign
# listeners, all started at once (python starts slowly under TCG)
declare -A PROXY_PID=()
for v in 4 6; do
	set_family "$v"
	for P in tcp udp; do
		PEER_NOWAIT=1 start_peer "proxy-$P-$v" "$nsrouter" "$P" "$(hostport "$ANY" $PORT)" --transparent --proxy \
			--role proxy --upstream-timeout 2
		PROXY_PID[$P$v]=$PEER_PID
		PEER_NOWAIT=1 start_peer "foreign-$P-$v" "$nsrouter" "$P" "$FDST" --transparent
	done
done
wait_peers {proxy,foreign}-{tcp,udp}-{4,6} || exit "$ksft_fail"

for v in 4 6; do
	set_family "$v"
	for P in tcp udp; do
		case_divert_spoof
		case_foreign
		case_failopen
	done
done
flush_ruleset "$nsrouter"

exit "$ret"

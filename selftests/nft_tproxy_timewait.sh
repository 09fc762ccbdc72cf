#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nft tproxy, TCP TIME_WAIT takeover: client -- router -- server1 (lib.sh).
#
# The client connects from a fixed source port to server1:8080; the router
# diverts it to a transparent proxy listening on a DIFFERENT port (12345).
# The proxy answers and closes first, so the TIME_WAIT socket
# (server1:8080 <- client:sport) lives in the router. The client then
# reconnects on the same 4-tuple at once.
#
# tproxy's established lookup finds the TIME_WAIT socket for that SYN; it
# must kill it and hand the SYN to the proxy listener. Without the
# takeover, the TIME_WAIT socket gets the SYN: TCP would look for a
# listener on the packet's own destination (server1:8080), finds none in
# the router and answers with an ACK; the client answers that with a RST,
# which kills the TIME_WAIT socket, and only the SYN retransmitted about a
# second later reaches the proxy. So the test checks that:
#   - the TIME_WAIT socket for the tuple existed right before the reconnect,
#   - the reconnect reached the proxy (peer = client:sport, laddr = server1:8080),
#   - the client sent no RST and retransmitted no SYN during the reconnect
#     (TcpOutRsts and TcpRetransSegs unchanged in the client's netns).
# IPv4 and IPv6, ip/ip6 and inet tables.
#
# Then the router's own client, with nft-tproxy's `tproxy ... local-route`
# (as in nft_tproxy_localout.sh: diverted in output to loopback, taken by
# the proxy in prerouting there).  Its reconnects meet the TIME_WAIT
# sockets already in output, where the lookup finds the TIME_WAIT socket
# and the listener and only looks: it must put the TIME_WAIT socket back
# for prerouting to end.  TW_CONNS (default 40) connections from as many
# ports, the proxy closing first, then all of them again: every reconnect
# reaches the proxy on its first SYN, and afterwards the TIME_WAIT slab
# holds no more objects than there are TIME_WAIT sockets (beside what it
# held before): a reference not put back keeps one for good.
#
# TIME_WAIT lasts 60 s. On a slow kernel (a debug kernel under TCG) the
# steps between the first connection and the reconnect can take longer,
# and a SYN that comes after the TIME_WAIT expired proves nothing. So the
# test reads the time the TIME_WAIT socket has left (ss -o) right before
# the reconnect and accepts the attempt only if the client was done before
# then; otherwise it tries again on a fresh source port, TW_ATTEMPTS times
# (default 3), and fails if no attempt was in time.

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft python ping ss

PORT=12345
TW_ATTEMPTS=${TW_ATTEMPTS:-3}
TW_CONNS=${TW_CONNS:-40}
TW_LATE=

topology || exit "$ksft_fail"

start_servers tcp server1 || exit "$ret"

# tw_batch NS LOCAL PEER P0 N: "COUNT LEFT" for the TIME-WAIT sockets in
# NS from LOCAL to PEER's address at ports P0 .. P0 + N - 1 (PEER: ADDR:
# or [ADDR6]:), LEFT the seconds the first to expire has left (ss -o:
# "timewait,59sec,0", "1min", "5.123ms" = 5.123 s, "123ms")
tw_batch()
{
	# shellcheck disable=SC2016 # awk program
	ip netns exec "$1" ss -Htano state time-wait |
		awk -v l="$2" -v a="$3" -v p0="$4" -v n="$5" '
		function secs(t,   v) {
			v = 0
			if (match(t, /^[0-9]+min/)) { v = 60 * substr(t, 1, RLENGTH - 3); t = substr(t, RLENGTH + 1) }
			if (t ~ /sec$/) v += substr(t, 1, length(t) - 3)
			else if (t ~ /\..*ms$/) v += substr(t, 1, length(t) - 2)
			else if (t ~ /ms$/) v += substr(t, 1, length(t) - 2) / 1000
			return v
		}
		$3 == l && substr($4, 1, length(a)) == a {
			p = substr($4, length(a) + 1) + 0
			if (p < p0 || p >= p0 + n || !match($0, /timewait,[^,]*,/)) next
			t = secs(substr($0, RSTART + 9, RLENGTH - 10))
			if (!c++ || t < min) min = t
		}
		END { print c + 0, min + 0 }'
}

# tw_left NS LOCAL PEER: print the seconds the TIME-WAIT socket LOCAL <-
# PEER has left before it expires; fail if there is no such socket
tw_left()
{
	local n left
	read -r n left < <(tw_batch "$1" "$2" "${3%:*}:" "${3##*:}" 1)
	[ "$n" -eq 1 ] && echo "$left"
}

# tw_present NS LOCAL PEER: a TIME-WAIT socket LOCAL <-> PEER exists in NS
# shellcheck disable=SC2317 # called through busywait
tw_present()
{
	tw_left "$@" > /dev/null
}

# no_socket NS LOCAL: no TCP socket in any state with local address LOCAL
# shellcheck disable=SC2317 # called through busywait
no_socket()
{
	! ip netns exec "$1" ss -Htan | awk -v l="$2" '$4 == l { f = 1 } END { exit !f }'
}

# reconnect NS LEFT T0 DST CLIENT-ARGS...: the client from NS to DST, its
# output in OUT and exit in RC, the RSTs and retransmissions NS sent
# meanwhile in RSTS and RETRS, and TOOK_MS since T0; returns 1 when that
# was too late for TIME-WAIT sockets that had LEFT s at T0 (they expire no
# earlier than ss said: timers never fire early; less a jiffy's rounding)
reconnect()
{
	local ns=$1 left=$2 t0=$3 dst=$4 rst0 retr0
	shift 4
	rst0=$(tcp_snmp "$ns" OutRsts)
	retr0=$(tcp_snmp "$ns" RetransSegs)
	RC=0
	OUT=$(peer_client "$ns" tcp "$dst" "$@" 2> "$TMPD/client.err") || RC=$?
	TOOK_MS=$(($(now_ms) - t0))
	RSTS=$(($(tcp_snmp "$ns" OutRsts) - rst0))
	RETRS=$(($(tcp_snmp "$ns" RetransSegs) - retr0))
	[ "$TOOK_MS" -lt "$(awk -v s="$left" 'BEGIN { printf "%d", s * 1000 - 100 }')" ]
}

# tw_attempt: one try of tw_case (its variables): a first connection, then
# the reconnect on the same 4-tuple. Returns 2, having reported nothing,
# when the TIME_WAIT socket may have expired before the reconnect's SYN.
tw_attempt()
{
	local peer left t0
	next_sport
	peer=$(hostport "$C" "$SPORT")

	# 1st connection: the proxy answers and closes first
	expect_reply "$desc: first connection" "$nsclient" tcp "$dst" "$SPORT" 1 \
		proxy "$dst" "$peer" --expect-eof || return 0

	# the router holds the TIME_WAIT; the client's socket is fully closed
	if ! busywait "$BUSYWAIT_TIMEOUT" tw_present "$nsrouter" "$dst" "$peer"; then
		fail "$desc: no TIME-WAIT socket $dst <- $peer in the router"
		ip netns exec "$nsrouter" ss -tan | indent
		return 0
	fi
	if ! busywait "$BUSYWAIT_TIMEOUT" no_socket "$nsclient" "$peer"; then
		fail "$desc: client socket $peer did not close"
		ip netns exec "$nsclient" ss -tan | indent
		return 0
	fi

	# 2nd connection, same 4-tuple, TIME_WAIT still there
	t0=$(now_ms)
	if ! left=$(tw_left "$nsrouter" "$dst" "$peer"); then
		TW_LATE="the TIME-WAIT socket $dst <- $peer expired before the reconnect"
		log "$desc: attempt $attempt: $TW_LATE; trying again"
		return 2
	fi
	if ! reconnect "$nsclient" "$left" "$t0" "$dst" --sport "$SPORT" --expect-eof --verbose; then
		TW_LATE="the reconnect took $TOOK_MS ms, the TIME-WAIT socket $dst <- $peer had $left s left"
		log "$desc: attempt $attempt: $TW_LATE; trying again"
		return 2
	fi
	pass "$desc: TIME-WAIT $dst <- $peer present in the router before the reconnect ($left s left, the client was done in $TOOK_MS ms)"
	if [ "$RC" -ne 0 ]; then
		fail "$desc: reconnect on the same 4-tuple failed (exit $RC)"
		{ echo "$OUT"; cat "$TMPD/client.err"; } | indent
	else
		check_replies "$desc: reconnect on the same 4-tuple" "$OUT" 1 proxy "$dst" "$peer"
	fi
	if [ "$RSTS" -eq 0 ] && [ "$RETRS" -eq 0 ]; then
		pass "$desc: the first SYN was taken over (client sent no RST, no retransmission: $(grep -o 'in [0-9.]* ms' "$TMPD/client.err"))"
	else
		fail "$desc: no takeover of the TIME_WAIT socket: client sent $RSTS RST, $RETRS retransmissions during the reconnect"
		indent < "$TMPD/client.err"
	fi
	if [ "$(grep -Fc "accept laddr=$dst peer=$peer " "$TMPD/proxy.log")" -ne 2 ]; then
		fail "$desc: the proxy did not accept both connections"
		indent < "$TMPD/proxy.log"
	fi
	return 0
}

# tw_case V TABLEFAMILY STMT
tw_case()
{
	local v=$1 tf=$2 stmt=$3
	local dst desc attempt st=2
	set_family "$v"
	dst=$(hostport "$S1" 8080)
	desc="IPv$v $tf table '$stmt'"

	load_ruleset "$nsrouter" "$desc" < <(divert_ruleset "$tf" "$stmt" "$FAM daddr $S1 tcp dport 8080") || return
	start_peer proxy "$nsrouter" tcp "$(hostport "$ANY" $PORT)" --transparent --close-first || return

	for attempt in $(seq "$TW_ATTEMPTS"); do
		st=0
		tw_attempt || st=$?
		[ "$st" -eq 2 ] || break
	done
	if [ "$st" -eq 2 ]; then
		fail "$desc: no reconnect in $TW_ATTEMPTS attempts met the TIME-WAIT socket (last: $TW_LATE)"
	fi
	stop_peer "$PEER_PID"
}

# tw_all: TIME-WAIT sockets in all the topology's namespaces and the
# initial one
tw_all()
{
	local ns n=0
	for ns in "$nsclient" "$nsrouter" "$nsserver1" "$nsserver2"; do
		n=$((n + $(ip netns exec "$ns" ss -Htan state time-wait | wc -l)))
	done
	echo $((n + $(ss -Htan state time-wait | wc -l)))
}

# tw_slack: TIME_WAIT slab objects that no TIME-WAIT socket accounts for
tw_slack()
{
	local a b
	a=$(tw_all)
	b=$(slab_active tw_sock_TCP tw_sock_TCPv6)
	echo $((b - a))
}

# tw_local_case V: the router's own client, local-route (above)
tw_local_case()
{
	local v=$1 dst desc p0 n out rc cnt left t0 slack0 slack1 pfx i bad=0
	set_family "$v"
	dst=$(hostport "$S1" 8080)
	pfx=$(hostport "$R2" "")
	desc="IPv$v the router's own client, local-route"
	n=$TW_CONNS

	load_ruleset "$nsrouter" "$desc" <<-EOF || return
	flush ruleset
	table inet tw_local {
		chain out {
			type filter hook output priority mangle; policy accept;
			$FAM daddr $S1 tcp dport 8080 tproxy $FAM to :$PORT local-route accept
		}
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			iif lo $FAM daddr $S1 tcp dport 8080 tproxy $FAM to :$PORT local-route accept
		}
	}
	EOF
	start_peer proxy "$nsrouter" tcp "$(hostport "$ANY" $PORT)" --transparent --close-first || return
	p0=$((SPORT + 1))
	SPORT=$((SPORT + n))
	slack0=$(tw_slack)

	# N connections, the proxy closing each first: N TIME-WAIT sockets
	rc=0
	out=$(peer_client "$nsrouter" tcp "$dst" --sport "$p0" --conns "$n" --expect-eof 2> "$TMPD/client.err") || rc=$?
	if [ "$rc" -ne 0 ] || [ "$(grep -Fc "proxy laddr=$dst peer=$pfx" <<< "$out")" -ne "$n" ]; then
		fail "$desc: $n first connections to $dst: not all answered by the proxy (exit $rc)"
		{ echo "$out"; cat "$TMPD/client.err"; } | indent
		stop_peer "$PEER_PID"
		return
	fi
	# shellcheck disable=SC2317 # called through busywait
	all_tw() { [ "$(tw_batch "$nsrouter" "$dst" "$pfx" "$p0" "$n" | cut -d' ' -f1)" -eq "$n" ]; }
	if ! busywait "$BUSYWAIT_TIMEOUT" all_tw; then
		fail "$desc: not $n TIME-WAIT sockets $dst <- $pfx$p0.. in the router"
		ip netns exec "$nsrouter" ss -tan state time-wait | indent
		stop_peer "$PEER_PID"
		return
	fi

	# all again, each on the 4-tuple of a TIME-WAIT socket
	t0=$(now_ms)
	read -r cnt left < <(tw_batch "$nsrouter" "$dst" "$pfx" "$p0" "$n")
	if ! reconnect "$nsrouter" "$left" "$t0" "$dst" --sport "$p0" --conns "$n" --expect-eof; then
		fail "$desc: the $n reconnects took $TOOK_MS ms, the first TIME-WAIT socket to expire had $left s left: too slow to tell"
		stop_peer "$PEER_PID"
		return
	fi
	for ((i = p0; i < p0 + n; i++)); do
		grep -F "proxy laddr=$dst peer=$pfx$i " <<< "$OUT" | grep -q ' seq=1$' || bad=$((bad + 1))
		[ "$(grep -Fc "accept laddr=$dst peer=$pfx$i " "$TMPD/proxy.log")" -eq 2 ] || bad=$((bad + 1))
	done
	if [ "$RC" -eq 0 ] && [ "$bad" -eq 0 ]; then
		pass "$desc: $cnt reconnects over TIME-WAIT sockets (the first to expire had $left s left, all done in $TOOK_MS ms) reached the proxy"
	else
		fail "$desc: reconnects over $cnt TIME-WAIT sockets: exit $RC, $bad replies or accepts missing"
		{ echo "$OUT"; cat "$TMPD/client.err"; } | indent
	fi
	if [ "$RSTS" -eq 0 ] && [ "$RETRS" -eq 0 ]; then
		pass "$desc: every first SYN was taken over (no RST, no retransmission)"
	else
		fail "$desc: no takeover: $RSTS RST, $RETRS retransmissions in the router during the reconnects"
	fi
	stop_peer "$PEER_PID"

	# the TIME_WAIT sockets the reconnects ended are freed
	slack1=$(tw_slack)
	if [ "$slack1" -lt 0 ]; then
		fail "$desc: the tw_sock_TCP(v6) slabs hold fewer objects than there are TIME-WAIT sockets: cannot count ($slack1)"
	elif [ $((slack1 - slack0)) -lt $((n / 2)) ]; then
		pass "$desc: no TIME_WAIT socket kept (slab objects beyond the TIME-WAIT sockets: $slack0 before, $slack1 after)"
	else
		fail "$desc: $((slack1 - slack0)) TIME_WAIT sockets kept after $n takeovers in output (slab objects beyond the TIME-WAIT sockets: $slack0 before, $slack1 after)"
	fi
}

tw_case 4 ip "tproxy to :$PORT"
tw_case 4 inet "tproxy ip to :$PORT"
tw_case 6 ip6 "tproxy to :$PORT"
tw_case 6 inet "tproxy ip6 to :$PORT"
flush_ruleset "$nsrouter"

if [ "${NFTP_MODE:-}" = ref ]; then
	echo "N/A: TIME_WAIT takeover from the router itself with local-route (the in-tree module of $(uname -r) lacks it)"
elif ! nft_ext local-route; then
	echo "SKIP: TIME_WAIT takeover from the router itself: $NFT is not nft-tproxy's patched nft"
elif [ ! -r /proc/slabinfo ]; then
	echo "SKIP: TIME_WAIT takeover from the router itself: no /proc/slabinfo"
else
	for v in $(local_route_fams); do
		tw_local_case "$v"
	done
	flush_ruleset "$nsrouter"
fi

exit "$ret"

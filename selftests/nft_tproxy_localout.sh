#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# tproxy local-route in output (nft-tproxy's extension): the host's own
# connections and datagrams diverted to a proxy on the same host, with no
# fwmark, no `ip rule` and no `local` route table.  The router of lib.sh's
# topology, with no policy routing and strict rp_filter, is that host; a
# client runs in its namespace.  The ruleset:
#
#   chain out { type filter hook output priority mangle;
#       ip daddr S1 th dport 8080 tproxy ip to :12345 local-route accept
#       ip daddr S1 th dport 9090 tproxy ip to S1:9090 local-route accept }
#   chain pre { type filter hook prerouting priority mangle;
#       iif lo ip daddr S1 th dport 8080 tproxy ip to :12345 local-route accept
#       iif lo ip daddr S1 th dport 9090 tproxy ip to S1:9090 local-route accept }
#
# Output cannot give a packet the proxy's socket (its socket is its
# sender's): when a transparent socket would take it on loopback, it sends
# the packet there with loopback's local route, and the prerouting rule
# assigns the socket.  Cases, TCP and UDP, IPv4 and IPv6 (IPv4 only on
# 5.10, where ip6 local-route is refused):
#   (a) the router's client to server1:8080 reaches the proxy, which sees
#       server1:8080 as its own address;
#   (b) to server1:9090, a proxy listening on server1's address;
#   (c) the proxy relays from the client's address (its socket has
#       IP_TRANSPARENT), and that relay is not diverted back to it (the
#       loop): server1 sees it and answers;
#   - in a `type route` output chain, and with conntrack on;
#   - 2000 crafted packets from raw sockets (truncated and bogus headers,
#     fragments, well-formed SYNs and datagrams): the output rule misses
#     the bad ones, diverts the good, and (a)-(c) still hold after;
#   - control: without the output rule the client reaches server1 itself;
#   - loopback broken (127.0.0.1 blackholed or routed out of another
#     device, ::1 without its local route, loopback without ::1): what
#     would be diverted is dropped, never sent on unproxied; mended, it is
#     proxied again;
#   - proxy stopped: the rule misses, server1 answers; with
#     fail-closed,local-route the client gets nothing.
# Upstream's tproxy is refused in output (it crashed there: a UDP lookup
# with no input device): `tproxy` without local-route in an output chain
# is refused by both module sets (the reference run checks that, and that
# the patched nft refuses local-route on the in-tree module).

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft python ping
# shellcheck source=selftests/socket_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/socket_lib.sh"

PORT=12345
DOWN_TIMEOUT=4		# seconds a client waits for an answer that must not come

TOPO_POLICY_ROUTING=0 topology || exit "$ksft_fail"
router_conf4 rp_filter 1

# upstream's restriction, kept without local-route: both module sets
rc=0
out=$(echo "table ip t { chain out { type filter hook output priority mangle;
	tcp dport 8080 tproxy to :$PORT; }
	}" | ip netns exec "$nsrouter" "$NFT" -f - 2>&1) || rc=$?
if [ "$rc" -ne 0 ] && grep -q 'Operation not supported' <<< "$out" &&
   [ -z "$(ip netns exec "$nsrouter" "$NFT" list ruleset)" ]; then
	pass "tproxy without local-route in an output chain: refused (EOPNOTSUPP), as upstream"
else
	fail "tproxy without local-route in an output chain: not refused with EOPNOTSUPP (exit $rc)"
	echo "$out" | indent
fi
flush_ruleset "$nsrouter"

if ! nft_ext local-route; then
	[ "${NFTP_MODE:-}" = ref ] && echo "N/A: tproxy local-route in output (the in-tree module of $(uname -r) lacks it)"
	[ "$ret" -ne 0 ] && exit "$ret"
	skip_all "nft syntax 'tproxy ... local-route': $NFT is not nft-tproxy's patched nft (scripts/build-userspace.sh)"
fi
if [ "${NFTP_MODE:-}" = ref ]; then
	if out=$(echo "table ip t { chain out { type filter hook output priority mangle;
		tcp dport 8080 tproxy to :$PORT local-route; }
		}" | ip netns exec "$nsrouter" "$NFT" -f - 2>&1); then
		fail "patched nft installed an output local-route rule on the in-tree module"
	elif ! grep -q 'nft_tproxy' <<< "$out" ||
	     [ -n "$(ip netns exec "$nsrouter" "$NFT" list ruleset)" ]; then
		fail "output local-route on the in-tree module: refused, but not naming nft_tproxy, or not clean:"
		echo "$out" | indent
	else
		pass "in-tree nft_tproxy: patched nft refuses output local-route, nothing installed"
		echo "N/A: tproxy local-route in output (the in-tree module of $(uname -r) lacks it)"
	fi
	exit "$ret"
fi

FAMS=$(local_route_fams)

for p in tcp udp; do
	for v in 4 6; do
		set_family "$v"
		PEER_NOWAIT=1 start_peer "server1-$p-$v" "$nsserver1" "$p" "$DST1" --role server1
		PEER_NOWAIT=1 start_peer "foreign-$p-$v" "$nsrouter" "$p" "$(hostport "$S1" 9090)" \
			--transparent --role foreign
	done
done
wait_peers {server1,foreign}-{tcp,udp}-{4,6} || exit "$ksft_fail"

declare -A PROXY_PID=()
for p in tcp udp; do
	for v in 4 6; do
		any=0.0.0.0
		[ "$v" = 6 ] && any=::
		PEER_NOWAIT=1 start_peer "proxy-$p-$v" "$nsrouter" "$p" "$(hostport "$any" $PORT)" \
			--transparent --proxy --role proxy --upstream-timeout 2
		PROXY_PID[$p$v]=$PEER_PID
	done
done
wait_peers proxy-{tcp,udp}-{4,6} || exit "$ksft_fail"

# ruleset [FLAGS [OUTTYPE [EXTRA]]]: the router's ruleset; no output chain
# when FLAGS is "none"; OUTTYPE the output chain's type (filter); EXTRA a
# rule for both chains' top, @CHAIN@ in it the chain's name
ruleset()
{
	local flags=${1-local-route} otype=${2:-filter} extra=${3:-} v f a s
	echo "flush ruleset"
	echo "table inet lo {"
	for chain in out pre; do
		if [ "$chain" = out ]; then
			[ "$flags" = none ] && continue
			echo "chain out { type $otype hook output priority mangle; policy accept;"
		else
			echo "chain pre { type filter hook prerouting priority mangle; policy accept;"
		fi
		[ -z "$extra" ] || echo "${extra//@CHAIN@/$chain}"
		for v in $FAMS; do
			f=ip a=$S1_4 s=$S1_4
			[ "$v" = 6 ] && f=ip6 a=$S1_6 s="[$S1_6]"
			local iif="" fl=$flags
			[ "$chain" = pre ] && iif="iif lo" fl=local-route
			echo "$iif $f daddr $a meta l4proto { tcp, udp } th dport 9090 tproxy $f to $s:9090 $fl counter accept comment \"$chain-foreign-$v\""
			echo "$iif $f daddr $a meta l4proto { tcp, udp } th dport 8080 tproxy $f to :$PORT $fl counter accept comment \"$chain-$v\""
		done
		echo "}"
	done
	echo "}"
}

# case_all DESC: (a), (b), (c) for $P over IPv$V from the router itself
case_all()
{
	local desc="IPv$V $P $1"
	relay_case "$desc" "$nsrouter" "$R2" "the router's own client diverted to the proxy" \
		"relayed from the client's address, not looped"
	foreign_case "$desc" "$nsrouter" "$R2"
	read_counters "$nsrouter"
	check_cnt "${desc%:}: the output rule diverted" "out-$V" -ge 2
	check_cnt "${desc%:}: the prerouting rule took them on lo" "pre-$V" -ge 2
}

# case_direct DESC ROLE: the router's client to server1:8080 is answered by
# server1 itself
case_direct()
{
	next_sport
	expect_reply "IPv$V $P $1" "$nsrouter" "$P" "$DST1" "$SPORT" 1 \
		server1 "$DST1" "$(hostport "$R2" "$SPORT")"
}

for P in tcp udp; do
	for v in $FAMS; do
		set_family "$v"
		load_ruleset "$nsrouter" "output local-route" < <(ruleset) || continue
		case_all "no policy routing, strict rp_filter:"
		load_ruleset "$nsrouter" "route chain" < <(ruleset local-route route) || continue
		case_all "output chain of type route:"
		load_ruleset "$nsrouter" "conntrack" < <(ruleset local-route filter \
			'ct state new,established counter') || continue
		case_all "conntrack on:"
		load_ruleset "$nsrouter" "control" < <(ruleset none) || continue
		case_direct "control, no output rule: server1 answers the router itself"
	done
done

# Malformed packets the host sends: raw sockets (IP_HDRINCL) give the
# output rule truncated and bogus TCP/UDP headers, non-first fragments and
# well-formed SYNs/datagrams, deterministic by seed; the well-formed ones
# are diverted (the rest miss), nothing crashes, and the router's own
# clients still get through afterwards
case_malformed()
{
	local n=2000 rc=0 out sent good4 good6
	load_ruleset "$nsrouter" "malformed" < <(ruleset) || return
	# shellcheck disable=SC2086 # FAMS: an argument per family
	out=$(ip netns exec "$nsrouter" "$PYTHON" - "$n" $FAMS <<-EOF 2>&1
		import random, socket, struct, sys
		random.seed(1)
		n, fams = int(sys.argv[1]), sys.argv[2:]
		dst = {"4": ("$S1_4", "$R2_4"), "6": ("$S1_6", "$R2_6")}
		socks = {}
		for v in fams:
		    f = socket.AF_INET if v == "4" else socket.AF_INET6
		    socks[v] = socket.socket(f, socket.SOCK_RAW, socket.IPPROTO_RAW)
		def l4(proto, good):
		    sport, dport = random.randrange(1024, 65536), random.choice((8080, 9090, 7))
		    if proto == 6:
		        h = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x02, 1024, 0, 0)
		    else:
		        h = struct.pack("!HHHH", sport, dport, 8, 0)
		    if good:
		        return h
		    h = bytearray(h[:random.randrange(0, len(h) + 1)] + random.randbytes(random.randrange(0, 8)))
		    if proto == 6 and len(h) > 12:
		        h[12] = random.randrange(256)        # data offset, flags
		    return bytes(h)
		sent, good_n = 0, {"4": 0, "6": 0}
		for i in range(n):
		    v = random.choice(fams)
		    proto = random.choice((6, 17))
		    good = random.random() < 0.2
		    frag = not good and random.random() < 0.2
		    d, s = dst[v]
		    pl = l4(proto, good)
		    if v == "4":
		        fo = (random.randrange(1, 100) if frag else 0) | (0x2000 if frag else 0)
		        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(pl), i & 0xffff, fo, 64, proto, 0,
		                         socket.inet_aton(s), socket.inet_aton(d))
		        pkt, addr = ip + pl, (d, 0)
		    else:
		        nh = 44 if frag else proto
		        ext = struct.pack("!BBHI", proto, 0, (random.randrange(1, 100) << 3) | 1, i) if frag else b""
		        ip = struct.pack("!IHBB16s16s", 0x60000000, len(ext) + len(pl), nh, 64,
		                         socket.inet_pton(socket.AF_INET6, s), socket.inet_pton(socket.AF_INET6, d))
		        pkt, addr = ip + ext + pl, (d, 0)
		    try:
		        socks[v].sendto(pkt, addr)
		        sent += 1
		        # what the rule diverts: a whole header (the lookup's
		        # need), not a later fragment, to a port with a listener
		        good_n[v] += (not frag and len(pl) >= (20 if proto == 6 else 8) and
		                      struct.unpack("!H", pl[2:4])[0] in (8080, 9090))
		    except OSError:
		        pass
		print(sent, good_n["4"], good_n["6"])
	EOF
	) || rc=$?
	read_counters "$nsrouter"
	# shellcheck disable=SC2034 # good4, good6: read as ${!good}
	read -r sent good4 good6 <<< "$out"
	if [ "$rc" -eq 0 ] && [ "${sent:-0}" -gt $((n / 2)) ] 2> /dev/null; then
		pass "malformed: the host sent $sent of $n crafted packets through the output rule"
	else
		fail "malformed: the sender failed (exit $rc): $out"
		return
	fi
	# each with a whole header to 8080/9090 has a listener: diverted, the
	# rest (truncated, later fragments, port 7) not
	local v good got
	for v in $FAMS; do
		good=good$v got=$(($(cnt "out-$v") + $(cnt "out-foreign-$v")))
		if [ "$got" -eq "${!good}" ]; then
			pass "malformed IPv$v: exactly the ${!good} with a whole header to the proxies were diverted"
		else
			fail "malformed IPv$v: $got diverted, ${!good} with a whole header sent to the proxies"
		fi
	done
	for P in tcp udp; do
		for v in $FAMS; do
			set_family "$v"
			case_all "after the malformed packets:"
		done
	done
}
case_malformed

# router_ip CMDS: the ip commands CMDS (';' between them) in the router's
# namespace, up to the first that fails (then IP_FAILED names it, status 1)
router_ip()
{
	local c cmd
	IFS=';' read -ra cmd <<< "$1"
	for c in "${cmd[@]}"; do
		# shellcheck disable=SC2086 # one ip command, split into words
		ip -net "$nsrouter" $c || { IP_FAILED=$c; return 1; }
	done
}

# case_lo_broken DESC BREAK RESTORE: the output rule would divert (the
# proxy runs), but loopback cannot take the packet, broken by the ip
# commands BREAK (in the router's namespace, ';' between them): the packet
# is dropped, not sent on unproxied; no answer, server1 sees nothing.
# RESTORE mends loopback, and the router's client is proxied again.
case_lo_broken()
{
	local desc="IPv$V $P $1" rc=0
	load_ruleset "$nsrouter" "loopback broken" < <(ruleset local-route filter \
		'meta l4proto { tcp, udp } th dport 8080 counter comment "seen-@CHAIN@"') || return
	: > "$TMPD/server1-$P-$V.log"
	router_ip "$2" || { fail "$desc: breaking loopback: ip $IP_FAILED"; return; }
	next_sport
	peer_client "$nsrouter" "$P" "$DST1" --sport "$SPORT" --timeout "$DOWN_TIMEOUT" --retries 0 \
		> "$TMPD/client.out" 2>&1 || rc=$?
	read_counters "$nsrouter"
	# seen by the output chain, taken by no rule, never on loopback
	if [ "$rc" -ne 0 ] && [ "$(cnt seen-out)" -ge 1 ] && [ "$(cnt "out-$V")" -eq 0 ] &&
	   [ "$(cnt seen-pre)" -eq 0 ] &&
	   ! peer_log_grep "server1-$P-$V" "peer=$(hostport "$R2" "$SPORT")"; then
		pass "$desc: dropped, not sent unproxied (output saw $(cnt seen-out))"
	else
		fail "$desc: client exit $rc, seen-out=$(cnt seen-out) out-$V=$(cnt "out-$V") seen-pre=$(cnt seen-pre)"
		indent < "$TMPD/client.out"
	fi
	router_ip "$3" || fail "$desc: restoring: ip $IP_FAILED"
	relay_case "$desc, mended:" "$nsrouter" "$R2" "the router's own client diverted to the proxy" \
		"relayed from the client's address, not looped"
}

# Loopback broken (its routes, its address): fail closed, whatever the
# route lookup gives back (an error, a route that is not local), then mend
lo4_back='addr del 127.0.0.1/8 dev lo;addr add 127.0.0.1/8 dev lo'
for P in tcp udp; do
	for v in $FAMS; do
		set_family "$v"
		if [ "$v" = 4 ]; then
			case_lo_broken "127.0.0.1 blackholed" \
				'route del local 127.0.0.0/8 dev lo table local;route del local 127.0.0.1 dev lo table local;route add blackhole 127.0.0.1/32' \
				"route del blackhole 127.0.0.1/32;$lo4_back"
			case_lo_broken "127.0.0.1 routed out of veth1" \
				'route del local 127.0.0.0/8 dev lo table local;route del local 127.0.0.1 dev lo table local;route add 127.0.0.1/32 dev veth1' \
				"route del 127.0.0.1/32 dev veth1;$lo4_back"
		else
			case_lo_broken "::1 without its local route" \
				'-6 route del local ::1 dev lo table local' \
				'-6 addr del ::1/128 dev lo;-6 addr add ::1/128 dev lo'
			case_lo_broken "loopback without ::1" \
				'-6 addr del ::1/128 dev lo' \
				'-6 addr add ::1/128 dev lo'
		fi
	done
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
		case_direct "proxy stopped: the rule misses, server1 answers"
		load_ruleset "$nsrouter" "fail-closed" < <(ruleset fail-closed,local-route) || continue
		: > "$TMPD/server1-$P-$V.log"
		next_sport
		rc=0
		peer_client "$nsrouter" "$P" "$DST1" --sport "$SPORT" --timeout "$DOWN_TIMEOUT" --retries 0 \
			> "$TMPD/client.out" 2>&1 || rc=$?
		if [ "$rc" -ne 0 ] && ! peer_log_grep "server1-$P-$V" "peer=$(hostport "$R2" "$SPORT")"; then
			pass "IPv$V $P proxy stopped, fail-closed,local-route: no answer, server1 saw nothing"
		else
			fail "IPv$V $P proxy stopped, fail-closed,local-route: client exit $rc"
			indent < "$TMPD/client.out"
		fi
	done
done
flush_ruleset "$nsrouter"

exit "$ret"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Malformed packets through a router running tproxy and socket rules (and
# nft-tproxy's socket uid/gid, tproxy fail-closed and local-route, with the
# patched nft):
# truncated and malformed TCP/UDP headers, IPv4 options, first, middle, last
# and overlapping fragments (a chain before defrag sees them raw), ICMP and
# ICMPv6 errors quoting bogus inner packets, long and truncated IPv6
# extension header chains (selftests/pktfuzz.py, deterministic by seed).
# Real TCP and UDP connections through tproxy have packets crafted on their
# tuples, some mutated: segments of established flows, SYNs to TIME_WAIT
# sockets a proxy that closes first leaves, ICMP errors quoting the flows.
# Valid TCP and UDP flows run through tproxy at the same time and must all
# be delivered to the proxy, every reply checked. A splat in the kernel log
# fails the run through the VM harness (tainted kernel).
#
# PKTFUZZ_COUNT (default 6000) packets, PKTFUZZ_SEED (default 1); `make
# fuzz-packets` sends a million.

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft python

COUNT=${PKTFUZZ_COUNT:-6000}
SEED=${PKTFUZZ_SEED:-1}
CG=/sys/fs/cgroup/nftp-fuzz-$$

# shellcheck disable=SC2317 # on_exit_hook
cg_cleanup() { [ -d "$CG" ] && rmdir "$CG" 2>/dev/null; }
on_exit_hook=cg_cleanup

topology || exit "$ret"

start_peer proxy4 "$nsrouter" tcp "0.0.0.0:8080" --transparent --role proxy || exit "$ret"
start_peer proxy6 "$nsrouter" tcp "[::]:8080" --transparent --role proxy || exit "$ret"
start_peer uproxy4 "$nsrouter" udp "0.0.0.0:8053" --transparent --role uproxy || exit "$ret"
start_peer uproxy6 "$nsrouter" udp "[::]:8053" --transparent --role uproxy || exit "$ret"
start_peer twproxy4 "$nsrouter" tcp "0.0.0.0:8081" --transparent --role proxy --close-first || exit "$ret"
start_peer twproxy6 "$nsrouter" tcp "[::]:8081" --transparent --role proxy --close-first || exit "$ret"
router_pid=$PEER_PID

# raw_pre runs before defrag (-400): the expressions see raw fragments.
# Its first rule counts what every later rule evaluates.
load_ruleset "$nsrouter" "fuzz ruleset" <<'EOF' || exit "$ret"
table inet fuzz {
	chain raw_pre {
		type filter hook prerouting priority -500; policy accept;
		counter
		socket transparent 1 counter
		socket mark 0x0 counter
		socket wildcard 1 counter
		meta l4proto { tcp, udp } tproxy to :9 counter
		meta l4proto { tcp, udp } tproxy ip to 127.0.0.1:9 counter
		meta l4proto { tcp, udp } tproxy ip6 to [::1]:9 counter
	}
	chain pre {
		type filter hook prerouting priority mangle; policy accept;
		counter
		tcp dport 81 tproxy to :8081 meta mark set 1 counter accept
		socket wildcard 0 counter
		socket transparent 1 meta mark set 1 counter accept
		tcp dport 80 tproxy to :8080 meta mark set 1 counter accept
		udp dport 53 tproxy to :8053 meta mark set 1 counter accept
	}
	chain in {
		type filter hook input priority filter; policy accept;
		counter
		socket transparent 1 counter
		socket mark 0x0 counter
		socket wildcard 0 counter
	}
	chain out {
		type filter hook output priority filter; policy accept;
		counter
		socket transparent 1 counter
		socket mark 0x0 counter
	}
}
EOF

# cgroupv2: a key the in-tree module of old kernels lacks, and that a
# kernel whose sockets carry no cgroup refuses
if [ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ]; then
	echo "SKIP: socket cgroupv2 rule: /sys/fs/cgroup is not cgroup2 here"
else
	mkdir -p "$CG"
	rc=0
	# nsenter, not ip netns exec: that remounts /sys, hiding the cgroup2
	# mount nft resolves the path in.
	out=$(nsenter --net="/run/netns/$nsrouter" "$NFT" add rule inet fuzz raw_pre \
		socket cgroupv2 level 1 "\"${CG##*/}\"" counter 2>&1) || rc=$?
	if [ "$rc" -eq 0 ]; then
		sock_cgroup_taken
	elif ! cgroupv2_lacks "socket cgroupv2 rule in the fuzz ruleset" "$out"; then
		fail "cannot add the socket cgroupv2 rule"
		echo "$out" | indent
	fi
fi

# nft-tproxy's extensions: socket uid/gid lookups on every packet, and,
# last before defrag, a fail-closed tproxy for what is no valid flow's (it
# drops fragments and malformed TCP/UDP there; port 7777: the replies of
# the router's SNATed flows below)
if nft_ext fail-closed && nft_ext socket-uid && nft_ext socket-gid; then
	rc=0
	out=$(ip netns exec "$nsrouter" "$NFT" -f - 2>&1 <<-EOF
	add rule inet fuzz raw_pre socket uid 0 counter
	add rule inet fuzz raw_pre socket gid 0 counter
	add rule inet fuzz raw_pre meta l4proto { tcp, udp } th dport != { 53, 80, 81, 7777 } tproxy to :9 fail-closed counter
	add rule inet fuzz in socket uid 0 counter
	add rule inet fuzz out socket gid 0 counter
	EOF
	) || rc=$?
	if ! ref_lacks "socket uid/gid and tproxy fail-closed in the fuzz ruleset" "$rc" &&
	   [ "$rc" -ne 0 ]; then
		fail "cannot add the socket uid/gid and fail-closed rules"
		echo "$out" | indent
	fi
else
	echo "SKIP: socket uid/gid and tproxy fail-closed rules: $NFT is not nft-tproxy's patched nft"
fi

# tproxy local-route in front of the valid flows' rules (after pre's
# counter): the flows and every fuzzed packet to their ports are routed
# by nftp_route_local (IPv4 only on 5.10, which refuses it for IPv6), and
# so are the ICMP errors that quote a proxy's flow (nft_tproxy_icmp)
if nft_ext local-route; then
	lr_fams=$(local_route_fams)
	rc=0
	out=$(for v in $lr_fams; do
		f=ip icmp=icmp
		[ "$v" = 6 ] && f=ip6 icmp=ipv6-icmp
		echo "add rule inet fuzz pre index 0 meta nfproto ipv$v meta l4proto $icmp tproxy $f to :8080 local-route counter accept comment \"icmp\""
		echo "add rule inet fuzz pre index 0 meta nfproto ipv$v udp dport 53 tproxy $f to :8053 local-route counter accept"
		echo "add rule inet fuzz pre index 0 meta nfproto ipv$v tcp dport 80 tproxy $f to :8080 local-route counter accept"
	done | ip netns exec "$nsrouter" "$NFT" -f - 2>&1) || rc=$?
	if ! ref_lacks "tproxy local-route in the fuzz ruleset" "$rc" && [ "$rc" -ne 0 ]; then
		fail "cannot add the local-route rules"
		echo "$out" | indent
	fi
else
	echo "SKIP: tproxy local-route rules: $NFT is not nft-tproxy's patched nft"
fi

# The router's own UDP flows to the client (port 9053), SNATed on veth0
# to NAT4:7777 and [NAT6]:7777, whose replies pktfuzz crafts (--snat):
# the socket lookups after conntrack and before the reply is translated
# back (pre) map them to the sender's socket through conntrack's original
# tuple, which `socket transparent 0` then matches (the counters "snat4",
# "snat6").  Conntrack runs for all the router's traffic from here on.
NAT4=10.0.1.50 NAT6=dead:1::50
ip -net "$nsrouter" addr add "$NAT4/32" dev veth0
ip -net "$nsrouter" addr add "$NAT6/128" dev veth0 nodad
load_ruleset "$nsrouter" "SNAT of the router's own flows" <<-EOF || exit "$ret"
table inet fuzznat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "veth0" meta nfproto ipv4 udp dport 9053 snat ip to $NAT4:7777
		oifname "veth0" meta nfproto ipv6 udp dport 9053 snat ip6 to [$NAT6]:7777
	}
}
add rule inet fuzz pre index 0 ip daddr $NAT4 udp sport 9053 socket transparent 0 counter comment "snat4"
add rule inet fuzz pre index 0 ip6 daddr $NAT6 udp sport 9053 socket transparent 0 counter comment "snat6"
EOF
start_peer snat4 "$nsclient" udp "$C4:9053" --role snat || exit "$ret"
start_peer snat6 "$nsclient" udp "[$C6]:9053" --role snat || exit "$ret"
# snat_client DST: the router's client, a datagram a second from port
# 9999: a fixed source keeps one conntrack entry, and its translation,
# across the restarts an ICMP error (to its connected socket) forces
snat_client()
{
	while :; do
		ip netns exec "$nsrouter" "${PYRUN[@]}" tproxy_peer client --proto udp \
			--connect "$1" --sport 9999 --count 1000000 --interval 1 \
			--timeout 2 > /dev/null 2>&1
		sleep 1
	done
}
snat_client "$C4:9053" &
PID_LIST+=("$!")
snat_client "[$C6]:9053" &
PID_LIST+=("$!")

rmac=$(ip -net "$nsrouter" -br link show veth0 | awk '{print $3}')

# pre_counter COMMENT: packets counted by the rules of pre with COMMENT
pre_counter()
{
	ip netns exec "$nsrouter" "$NFT" list chain inet fuzz pre |
		sed -n "s/.*counter packets \([0-9]*\) .*comment \"$1\".*/\1/p"
}

# counter_of CHAIN: packets counted by the chain's first rule
counter_of()
{
	ip netns exec "$nsrouter" "$NFT" list chain inet fuzz "$1" |
		awk '/counter packets/ { print $3; exit }'
}

log "sending $COUNT malformed packets (seed $SEED) while valid flows run"
fflows=()
for a in "$S1_4" "$S1_6"; do
	fflows+=(--flow "tcp,$a,80" --flow "udp,$a,53" --flow "tw,$a,81")
done
fflows+=(--snat "$C4,9053,$NAT4,7777" --snat "$C6,9053,$NAT6,7777")
# TCG sends a few hundred a second: 900 s, and 1 s for each 100 more
ip netns exec "$nsclient" timeout $((900 + COUNT / 100)) "${PYRUN[@]}" pktfuzz \
	--ifname eth0 --dst-mac "$rmac" --src4 "$C4" --dst4 "$S1_4,$R1_4" \
	--src6 "$C6" --dst6 "$S1_6,$R1_6" --count "$COUNT" --seed "$SEED" \
	"${fflows[@]}" --router-pid "$router_pid" > "$TMPD/fuzz.out" 2> "$TMPD/fuzz.err" &
fuzz_pid=$!
PID_LIST+=("$fuzz_pid")

flows=0 bad=0
while kill -0 "$fuzz_pid" 2>/dev/null || [ "$flows" -lt 8 ]; do
	# a run of a million packets outlasts the ports from 40000 up
	[ "$SPORT" -lt 60000 ] || SPORT=40000
	for dst in "$S1_4" "$S1_6"; do
		cl=$C4
		[ "$dst" = "$S1_6" ] && cl=$C6
		next_sport
		laddr=$(hostport "$dst" 80)
		peer=$(hostport "$cl" "$SPORT")
		expect_reply "flow $flows tcp to $laddr" "$nsclient" tcp "$laddr" \
			"$SPORT" 3 proxy "$laddr" "$peer" > "$TMPD/flow.out" || bad=$((bad + 1))
		grep -v '^PASS' "$TMPD/flow.out"
		next_sport
		laddr=$(hostport "$dst" 53)
		peer=$(hostport "$cl" "$SPORT")
		expect_reply "flow $flows udp to $laddr" "$nsclient" udp "$laddr" \
			"$SPORT" 2 uproxy "$laddr" "$peer" --retries 3 > "$TMPD/flow.out" || bad=$((bad + 1))
		grep -v '^PASS' "$TMPD/flow.out"
		flows=$((flows + 1))
	done
done
wait "$fuzz_pid"
frc=$?

if [ "$frc" -ne 0 ]; then
	fail "packet generator failed (exit $frc)"
	indent < "$TMPD/fuzz.err"
else
	log "sent: $(tr '\n' ' ' < "$TMPD/fuzz.out")"
fi

# sent_count CATEGORY: packets or connections pktfuzz counted as CATEGORY
sent_count() { awk -v c="$1" '$1 == c { print $2; n = 1 } END { if (!n) print 0 }' "$TMPD/fuzz.out"; }

fok=$(sent_count flow-ok) fwrong=$(sent_count flow-wrong) ffailed=$(sent_count flow-failed)
if [ "$fok" -gt 0 ] && [ "$fwrong" -eq 0 ] && [ "$ffailed" -eq 0 ]; then
	pass "$fok real connections whose tuples were fuzzed (established, TIME_WAIT, ICMP), every reply right"
else
	fail "real connections whose tuples were fuzzed: $fok right, $fwrong wrong, $ffailed failed"
	grep '^flow-' "$TMPD/fuzz.err" | head -n 5 | indent
fi
for c in flow-tcp flow-udp flow-tw-syn flow-icmp flow-snat flow-snat-icmp; do
	[ "$(sent_count "$c")" -gt 0 ] || fail "pktfuzz sent no $c packet"
done
# A SYN that meets a TIME_WAIT socket and that tproxy does not hand to the
# listener is only ACKed by the TIME_WAIT socket.  Allow for a lost copy.
syn=$(sent_count flow-tw-syn) synack=$(sent_count flow-tw-synack)
if [ "$syn" -gt 0 ] && [ $((synack * 10)) -ge $((syn * 9)) ]; then
	pass "TIME_WAIT takeover: the proxy's listener answered $synack of $syn SYNs that met a TIME_WAIT socket"
else
	fail "TIME_WAIT takeover: the proxy's listener answered $synack of $syn SYNs that met a TIME_WAIT socket"
fi

if [ "$bad" -eq 0 ]; then
	pass "$((flows * 2)) valid TCP and UDP flows through tproxy during the fuzzing, every reply right"
else
	fail "$bad of $((flows * 2)) valid flows went wrong during the fuzzing"
fi

raw=$(counter_of raw_pre) pre=$(counter_of pre)
if [ "${raw:-0}" -ge "$COUNT" ]; then
	pass "tproxy and socket rules before defrag evaluated $raw packets (fragments raw)"
else
	fail "only ${raw:-0} packets reached the rules before defrag, sent $COUNT"
fi
if [ "${pre:-0}" -gt 0 ]; then
	pass "tproxy and socket rules after defrag evaluated $pre packets"
else
	fail "no packet reached the rules after defrag"
fi
if [ -n "${lr_fams:-}" ] && [ "${NFTP_MODE:-}" != ref ]; then
	lr=$(ip netns exec "$nsrouter" "$NFT" list chain inet fuzz pre |
		sed -n 's/.*local-route counter packets \([0-9]*\) .*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
	if [ "${lr:-0}" -gt 0 ]; then
		pass "tproxy local-route rules took $lr packets (the valid flows' and fuzzed ones)"
	else
		fail "tproxy local-route rules took no packet"
	fi
	lri=$(pre_counter icmp | awk '{ s += $1 } END { print s + 0 }')
	if [ "${lri:-0}" -gt 0 ]; then
		pass "tproxy local-route took $lri ICMP errors quoting a proxy's flow"
	else
		fail "tproxy local-route took no ICMP error (pktfuzz sent $(sent_count flow-icmp) quoting the flows)"
	fi
fi

# SNATed replies: the router's own socket, found by conntrack's original
# tuple (IPv6 only with ours: the in-tree lookup of 5.10 does not map
# IPv6, nft_socket_snat.sh)
for v in 4 6; do
	n=$(pre_counter "snat$v")
	if [ "${n:-0}" -gt 0 ]; then
		pass "IPv$v SNATed replies to the router's own flow: its socket found by conntrack's original tuple $n times"
	elif [ "$v" = 6 ] && [ "${NFTP_MODE:-}" = ref ]; then
		echo "N/A: IPv6 SNATed replies: not mapped to the router's socket by the in-tree module of $(uname -r)"
	else
		fail "IPv$v SNATed replies to the router's own flow: its socket never found (pktfuzz sent $(sent_count flow-snat))"
	fi
done

# the router still works: one more of each
next_sport
expect_reply "after fuzzing: tcp through tproxy" "$nsclient" tcp "$S1_4:80" \
	"$SPORT" 3 proxy "$S1_4:80" "$C4:$SPORT"
next_sport
expect_reply "after fuzzing: tcp6 through tproxy" "$nsclient" tcp "[$S1_6]:80" \
	"$SPORT" 3 proxy "[$S1_6]:80" "[$C6]:$SPORT"

exit "$ret"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Faults around a loaded tproxy: client -- router -- server1 (lib.sh), the
# router diverting client -> server1 tcp/8080 to a transparent tpload echo
# server (the proxy) on :12345 and udp/53 to :8053, v4 and v6, with
# `tproxy ip|ip6 to :PORT` (no address: the default-address path).
# server1 runs a plain echo server: what falls through is answered there.
# tools/tpload verifies every byte echoed; a misdelivered connection or
# datagram shows as a mismatch (client exit 2) or as a server seeing a
# header whose destination is not the one the data arrived for.
#
#   kill      kill -9 the proxy with FAULT_KILL_CONNS transfers in flight and
#             restart it: every one of them fails cleanly (reset or EOF,
#             no timeout, no mismatch); new connections and datagrams after
#             the restart reach the new proxy, verified.
#   timewait  a TIME_WAIT storm: FAULT_TW_PORTS source ports, connections
#             the proxy closes first (TIME_WAIT in the router), then the same
#             tuples again at once: every SYN must be taken over by the
#             listener (no more client RSTs and SYN retransmissions than on
#             fresh tuples; without the takeover it is one each per SYN).
#   churn     the proxy closes and reopens its listeners in a loop while
#             FAULT_CHURN_CONNS connections come in: each one is verified at
#             the proxy or at server1 (fell through), or fails cleanly.
#   addr      while TCP and UDP traffic flows: the input device's IPv4 and
#             IPv6 addresses removed and restored, disable_ipv6 on it, and
#             IPv4 disabled on lo (MTU below 68, upstream's CVE-2024-36270
#             trigger: no in_device while tproxy picks the default address)
#             with SYNs injected on lo for a `tproxy to :PORT` rule, which
#             must see them; then everything restored and all traffic
#             verified again.
#   netns     FAULT_NETNS_CONNS live tproxied connections, then the router
#             namespace deleted (and the proxy killed): the namespace is
#             dismantled (the client's end of the veth pair disappears with
#             it), TCP socket slabs fall back, no socket is left anywhere.
#   unload    (a kernel with the expressions as modules) unloading them is
#             refused while a rule uses them, works once the rules and
#             namespaces are gone, and `modprobe -a nft_tproxy nft_socket`
#             brings the same stack back (ours: nftp_core from updates/).
# A kernel splat anywhere fails the run through the VM harness.
#
# FAULT_CASES (default "kill timewait churn addr netns unload") picks cases;
# FAULT_SEED (default 0) is the first client run's pattern seed minus one.

# shellcheck disable=SC2317 # the case_* functions are called by name
set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft ip ss python
# shellcheck source=selftests/load_lib.sh
source "$SELFTEST_DIR/load_lib.sh"

need_tpload

CASES=${FAULT_CASES:-kill timewait churn addr netns unload}
KILL_CONNS=${FAULT_KILL_CONNS:-100}
# the guest under TCG is ~10x slower: fewer tuples there (still 2000
# connections, 1000 of them on tuples in TIME_WAIT)
if [ "${NFTP_IN_VM:-0}" = 1 ]; then TW_PORTS=${FAULT_TW_PORTS:-500}; else TW_PORTS=${FAULT_TW_PORTS:-1000}; fi
CHURN_CONNS=${FAULT_CHURN_CONNS:-1000}
NETNS_CONNS=${FAULT_NETNS_CONNS:-2000}
# pattern seeds: each client run takes the next one
SEED=${FAULT_SEED:-0}

want() { [[ " $CASES " == *" $1 "* ]]; }

topology || exit "$ksft_fail"
tune_for_load
# The timewait case binds its source ports itself.  Keep the kernel's
# ephemeral choice out of them: an earlier case's connection left in
# TIME_WAIT on one of them made that bind fail with EADDRINUSE (5.10
# hands out ports to one destination from a run of neighbours, so a run
# landing there took 19 of them).
ip netns exec "$nsclient" sysctl -wq net.ipv4.ip_local_reserved_ports=30000-$((30000 + TW_PORTS - 1))

# The README's ruleset.  Its socket rule leaves bare SYNs alone: one
# matching a tuple in TIME_WAIT (the timewait socket is transparent too)
# would be delivered to the timewait socket, and tproxy never see it; the
# timewait case checks that the takeover happens with this ruleset.
# iif lo: the rule the addr case injects for (counters before and after).
load_ruleset "$nsrouter" "fault ruleset" < <(tproxy_ruleset socket; cat <<-EOF
	table inet tplo {
		chain pre {
			type filter hook prerouting priority mangle - 1; policy accept;
			iif "lo" meta nfproto ipv4 tcp dport 8080 counter
			iif "lo" meta nfproto ipv6 tcp dport 8080 counter
			iif "lo" tcp dport 8080 counter tproxy to :$TPL_TCP_PORT counter accept
		}
	}
	EOF
) || exit "$ret"
server1 server1 --log "$TMPD/server1.evlog" || exit "$ret"
proxy proxy || exit "$ret"

# verify_traffic DESC ID: fresh TCP (v4+v6) and UDP traffic all reaches
# proxy ID, verified; server1 sees none
verify_traffic()
{
	local desc=$1 id=$2 out rc=0 urc=0 uout prep s1rep
	tpl_report "$id" reset > /dev/null
	tpl_report server1 reset > /dev/null
	tpl_client "$nsclient" out --tcp "$TCP_DSTS" -n 50 -c 10 --size 4096 \
		--seed $((SEED += 1)) --conn-timeout 30000 --timeout 300 || rc=$?
	tpl_client "$nsclient" uout --udp "$UDP_DSTS" --datagrams 500 --flows 8 \
		--window 32 --seed $((SEED += 1)) --conn-timeout 3000 --timeout 300 || urc=$?
	prep=$(tpl_report "$id" reset)
	s1rep=$(tpl_report server1 reset)
	if [ "$rc" -eq 0 ] && [ "$urc" -eq 0 ] && [ "$(kv "$prep" accepted)" = 50 ] &&
	   [ "$(kv "$prep" completed)" = 50 ] && [ "$(kv "$prep" udp_datagrams)" = 500 ] &&
	   [ "$(kv "$prep" dst_mismatch)" = 0 ] && [ "$(kv "$s1rep" accepted)" = 0 ] &&
	   [ "$(kv "$s1rep" udp_datagrams)" = 0 ]; then
		pass "$desc: 50 TCP connections and 500 datagrams (v4+v6) through tproxy, all verified"
		return 0
	fi
	fail "$desc: tcp exit $rc, udp exit $urc; proxy accepted=$(kv "$prep" accepted) completed=$(kv "$prep" completed) udp=$(kv "$prep" udp_datagrams) dst_mismatch=$(kv "$prep" dst_mismatch); server1 accepted=$(kv "$s1rep" accepted) udp=$(kv "$s1rep" udp_datagrams)"
	{ echo "$out"; echo "$uout"; head -n 10 "$TMPD/client.err"; } | indent
	return 1
}

# bg_client NAME NS [client args...]: a tpload client in the background;
# its report goes to $TMPD/NAME.out, its status to $TMPD/NAME.rc
bg_client()
{
	local name=$1 ns=$2
	shift 2
	rm -f "$TMPD/$name.rc"
	( rc=0
	  ip netns exec "$ns" "$TPLOAD" client --report "$TMPD/$name.out" "$@" \
		> /dev/null 2> "$TMPD/$name.err" || rc=$?
	  echo "$rc" > "$TMPD/$name.rc" ) &
	BG_PID=$!
	PID_LIST+=("$BG_PID")
}

# bg_wait NAME PID [SECONDS]: wait for it (TERM after SECONDS); prints status
bg_wait()
{
	local name=$1 pid=$2 t=${3:-300}
	if ! busywait $((t * 1000)) test -e "$TMPD/$name.rc"; then
		# the subshell's child is the client: TERM it, it reports and exits
		pkill -TERM -P "$pid" 2>/dev/null
		busywait 10000 test -e "$TMPD/$name.rc"
	fi
	wait "$pid" 2>/dev/null
	cat "$TMPD/$name.rc" 2>/dev/null || echo 125
}

# stop_bg NAME PID: ask a running client to stop (it reports and exits)
stop_bg()
{
	pkill -TERM -P "$2" 2>/dev/null
	bg_wait "$1" "$2" 30
}

# live_conns ID: connections the server holds now
live_conns() { kv "$(tpl_report "$1")" live; }
live_at_least() { [ "$(live_conns "$1")" -ge "$2" ] 2>/dev/null; }

# ------------------------------------------------------------------ kill

case_kill()
{
	local n=$KILL_CONNS rc out
	tpl_report proxy reset > /dev/null
	# 64 KiB each, 1 KiB per 200 ms: at least 12 s in flight
	bg_client kill "$nsclient" --tcp "$TCP_DSTS" -n "$n" -c "$n" --size 65536 \
		--pace 1024:200 --seed $((SEED += 1)) --conn-timeout 120000 --timeout 600
	local bg=$BG_PID
	if ! busywait 60000 live_at_least proxy "$n"; then
		fail "kill: the proxy never held $n connections ($(live_conns proxy))"
		stop_bg kill "$bg" > /dev/null
		return
	fi
	kill -KILL "${TPL_PIDS[proxy]}"
	tpl_stop proxy
	proxy proxy || return
	rc=$(bg_wait kill "$bg" 300)
	out=$(cat "$TMPD/kill.out" 2>/dev/null)
	if [ "$rc" = 1 ] && [ "$(kv "$out" failed)" = "$n" ] &&
	   [ "$(kv "$out" timeouts)" = 0 ] && [ "$(kv "$out" mismatched)" = 0 ]; then
		pass "kill: all $n transfers in flight failed cleanly when the proxy was killed ($(kv "$out" errors))"
	else
		fail "kill: client exit $rc, expected all $n to fail with a reset or EOF, none to time out or mismatch"
		{ echo "$out"; head -n 10 "$TMPD/kill.err"; } | indent
	fi
	verify_traffic "kill: after the restart" proxy
}

# ------------------------------------------------------------------ timewait

# tw_count V: TIME_WAIT sockets in the router for server1:8080, family V
tw_count()
{
	local l=$S1_4:8080
	[ "$1" = 6 ] && l="[$S1_6]:8080"
	ip netns exec "$nsrouter" ss -Htan state time-wait | awk -v l="$l" '$(NF-1) == l { n++ } END { print n + 0 }'
}

# The client's RSTs, SYN retransmissions and all retransmissions so far
tw_client_counts()
{
	echo "$(tcp_snmp "$nsclient" OutRsts) $(tcpext "$nsclient" TCPSynRetrans) $(tcp_snmp "$nsclient" RetransSegs)"
}

# Without the takeover, each SYN on a TIME_WAIT tuple is answered by the
# timewait socket with an ACK, the client resets it and sends the SYN again
# a second later: one RST and one SYN retransmission per reconnect.  Under
# TCG a few RSTs happen anyway (a proxy's tail-loss-probe FIN reaching a
# client socket that is already closed, killing the router's socket before
# its TIME_WAIT; up to 4 % of them on a busy host): round 1, on fresh
# tuples, is the yardstick for round 2.
case_timewait()
{
	local lo=30000 hi=$((30000 + TW_PORTS - 1)) c=$((TW_PORTS / 10))
	local round v dst out rc tw took prep bad=0 slack
	local c0 c1 c2 rst1 syn1 retr1 rst2 syn2 retr2
	[ "$c" -lt 1 ] && c=1
	[ "$c" -gt 50 ] && c=50
	# a tenth: the broken takeover costs one RST and one SYN per tuple
	slack=$((TW_PORTS / 10 + 2))
	tpl_report proxy reset > /dev/null
	c0=$(tw_client_counts)
	for round in 1 2; do
		if [ "$round" = 2 ]; then
			c1=$(tw_client_counts)
			counters "$nsclient" "$TMPD/tw-client.cnt"
			counters "$nsrouter" "$TMPD/tw-router.cnt"
		fi
		for v in 4 6; do
			dst=$S1_4:8080
			[ "$v" = 6 ] && dst="[$S1_6]:8080"
			tw=$(tw_count "$v")
			if [ "$round" = 2 ] && [ "$tw" -lt $((TW_PORTS * 9 / 10)) ]; then
				fail "timewait: only $tw of $TW_PORTS IPv$v tuples in TIME_WAIT in the router before the reconnects"
				bad=1
			fi
			rc=0
			tpl_client "$nsclient" out --tcp "$dst" -n "$TW_PORTS" -c "$c" \
				--sport "$lo-$hi" --server-close --size 256 --seed $((SEED += 1)) \
				--conn-timeout 30000 --timeout 300 || rc=$?
			took=$(kv "$out" elapsed)
			if [ "$rc" -ne 0 ]; then
				fail "timewait: round $round IPv$v: client exit $rc"
				{ echo "$out"; head -n 10 "$TMPD/client.err"; } | indent
				bad=1
			fi
			log "timewait: round $round IPv$v: $TW_PORTS connections from ports $lo-$hi ($c at a time), closed by the proxy, in $took s; $tw IPv$v TIME_WAIT sockets in the router before"
		done
	done
	c2=$(tw_client_counts)
	read -r rst1 syn1 retr1 <<< "$(paste -d' ' <(tr ' ' '\n' <<< "$c1") <(tr ' ' '\n' <<< "$c0") | awk '{ printf "%d ", $1 - $2 }')"
	read -r rst2 syn2 retr2 <<< "$(paste -d' ' <(tr ' ' '\n' <<< "$c2") <(tr ' ' '\n' <<< "$c1") | awk '{ printf "%d ", $1 - $2 }')"
	prep=$(tpl_report proxy reset)
	log "timewait: client RSTs / SYN retransmissions / retransmissions: round 1 (fresh tuples) $rst1 / $syn1 / $retr1, round 2 (tuples in TIME_WAIT) $rst2 / $syn2 / $retr2"
	if [ "$bad" -eq 0 ] && [ "$rst2" -le $((rst1 + slack)) ] && [ "$syn2" -le $((syn1 + slack)) ] &&
	   [ "$(kv "$prep" accepted)" = $((4 * TW_PORTS)) ]; then
		pass "timewait: $((2 * TW_PORTS)) SYNs on tuples in TIME_WAIT taken over by the proxy listener (no more client RSTs or SYN retransmissions than on fresh tuples)"
	else
		fail "timewait: reconnects on TIME_WAIT tuples cost the client $rst2 RSTs and $syn2 SYN retransmissions (fresh tuples: $rst1, $syn1); proxy accepted $(kv "$prep" accepted) of $((4 * TW_PORTS))"
		{ echo "client counters that moved in round 2:"; counters_delta "$nsclient" "$TMPD/tw-client.cnt"
		  echo "router counters that moved in round 2:"; counters_delta "$nsrouter" "$TMPD/tw-router.cnt"; } |
			grep -Ev '^(Ip|Ip6|Icmp6?|Udp6?)[A-Z]' | indent
	fi
}

# ------------------------------------------------------------------ churn

case_churn()
{
	local n=$CHURN_CONNS rc=0 r out prep s1rep pc=0 sc=0 ok=0 failed=0 reopens
	local mism=0 tmo=0 other=0 ana=0 dm=0 batches=0 errs=""
	tpl_stop proxy
	tpl_report server1 reset > /dev/null
	# open 100 ms, closed 50 ms, for ever
	proxy proxyc --churn 100:50 --log "$TMPD/proxyc.evlog" || return
	: > "$TMPD/churn-client.evlog"
	# batches of CHURN_CONNS until the listeners went through 10 reopens
	while :; do
		r=0
		tpl_client "$nsclient" out --tcp "$TCP_DSTS" -n "$n" -c 20 --size 2048 \
			--seed $((SEED += 1)) --conn-timeout 30000 --timeout 600 \
			--log "$TMPD/churn-batch.evlog" || r=$?
		cat "$TMPD/churn-batch.evlog" >> "$TMPD/churn-client.evlog"
		[ "$r" -gt "$rc" ] && rc=$r
		batches=$((batches + 1))
		ok=$((ok + $(kv "$out" ok))) failed=$((failed + $(kv "$out" failed)))
		mism=$((mism + $(kv "$out" mismatched))) tmo=$((tmo + $(kv "$out" timeouts)))
		other=$((other + $(kv "$out" other))) ana=$((ana + $(kv "$out" addrnotavail)))
		[ "$(kv "$out" errors)" != none ] && errs="$errs $(kv "$out" errors)"
		[ "$r" -ge 2 ] && { echo "$out"; head -n 10 "$TMPD/client.err"; } | indent
		reopens=$(kv "$(tpl_report proxyc)" reopens)
		[ "$reopens" -ge 10 ] || [ "$batches" -ge 20 ] && break
	done
	n=$((n * batches))
	prep=$(tpl_report proxyc reset)
	s1rep=$(tpl_report server1 reset)
	tpl_stop proxyc
	pc=$(kv "$prep" completed) sc=$(kv "$s1rep" completed) dm=$(($(kv "$prep" dst_mismatch) + $(kv "$s1rep" dst_mismatch)))
	log "churn: $n connections during $reopens listener reopens: $pc verified at the proxy, $sc fell through to server1 and were verified there, $failed failed (${errs:- none})"
	if [ "$rc" -lt 2 ] && [ "$mism" -eq 0 ] && [ "$tmo" -eq 0 ] &&
	   [ $((ok + failed)) -eq "$n" ] && [ "$other" -eq 0 ] && [ "$ana" -eq 0 ] &&
	   [ "$ok" -le $((pc + sc)) ] && [ $((pc + sc)) -le "$n" ] && [ "$dm" -eq 0 ] &&
	   [ "$reopens" -ge 3 ] && [ "$pc" -gt 0 ] && [ $((sc + failed)) -gt 0 ]; then
		pass "churn: every connection verified at the proxy or at server1, or failed cleanly; none misdelivered"
	else
		fail "churn: client exit $rc: ok=$ok failed=$failed mismatched=$mism timeouts=$tmo other=$other addrnotavail=$ana; proxy completed=$pc, server1 completed=$sc, dst_mismatch=$dm, reopens=$reopens"
		{ echo "$prep" | head -n 1; echo "$s1rep" | head -n 1
		  echo "verified at the client, completed at no server:"
		  unserved "$TMPD/churn-client.evlog" "$TMPD/proxyc.evlog" "$TMPD/server1.evlog" | head -n 40; } | indent
		# the whole logs, for the VM harness to bring out (vm-run --out)
		if [ -n "${NFTP_OUT:-}" ] && [ -d "$NFTP_OUT" ]; then
			mkdir -p "$NFTP_OUT/churn"
			cp "$TMPD"/*.evlog "$NFTP_OUT/churn/"
		fi
	fi
	proxy proxy || return
	verify_traffic "churn: listener stable again" proxy
}

# ------------------------------------------------------------------ addr

# inject_lo COUNT: COUNT IPv4 and COUNT IPv6 TCP SYNs to server1:8080 sent
# on the router's lo through a packet socket (the only way onto lo once
# IPv4 is off there: nothing routes out through a device without an
# in_device)
inject_lo()
{
	ip netns exec "$nsrouter" "$PYTHON" - "$SELFTEST_DIR" "$1" "$C4" "$S1_4" "$C6" "$S1_6" <<'EOF'
import socket, sys
sys.path.insert(0, sys.argv[1])
import pkt
count, c4, s4, c6, s6 = int(sys.argv[2]), *sys.argv[3:7]

s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("lo", 0))
for v, i in [(v, i) for v in "46" for i in range(count)]:
    tcp = pkt.tcp(20000 + i, 8080, 1000 + i)
    if v == "4":
        ip = pkt.ip4(c4, s4, pkt.TCP, pkt.tcp4_csum(c4, s4, tcp), ident=i)
        frame = b"\0" * 12 + b"\x08\x00" + ip
    else:
        ip = pkt.ip6(c6, s6, pkt.TCP, pkt.tcp6_csum(c6, s6, tcp))
        frame = b"\0" * 12 + b"\x86\xdd" + ip
    try:
        s.send(frame)
    except OSError as e:
        print("send: %s" % e, file=sys.stderr)
        sys.exit(1)
EOF
}

# lo_counters: "v4 v6 before after": packets of the iif lo rules, IPv4,
# IPv6, then before and after the tproxy expression
lo_counters()
{
	ip netns exec "$nsrouter" "$NFT" list chain inet tplo pre |
		awk '{ for (i = 1; i <= NF; i++) if ($i == "packets") c[n++] = $(i + 1) }
		     END { print c[0] + 0, c[1] + 0, c[2] + 0, c[3] + 0 }'
}

# restore_lo: lo back at its MTU, with its addresses and the tproxy routes
restore_lo()
{
	ip -net "$nsrouter" link set lo mtu 65536
	ip -net "$nsrouter" link set lo down
	ip -net "$nsrouter" link set lo up
	ip -net "$nsrouter" route replace local 0.0.0.0/0 dev lo table 100
	ip -net "$nsrouter" -6 route replace local ::/0 dev lo table 100
}

case_addr()
{
	local tcp_bg udp_bg rc out v4a v6a before before_a v4b v6b b a t0=$SECONDS
	tpl_report proxy reset > /dev/null
	# traffic for the whole sequence: short connections and datagrams at a
	# rate that leaves the guest's CPUs to the rest
	bg_client addr_tcp "$nsclient" --tcp "$TCP_DSTS" -n 100000000 -c 4 --rate 50 --size 1024 \
		--seed $((SEED += 1)) --conn-timeout 3000 --timeout 600
	tcp_bg=$BG_PID
	bg_client addr_udp "$nsclient" --udp "$UDP_DSTS" --datagrams 100000000 --flows 8 \
		--window 8 --rate 200 --seed $((SEED += 1)) --conn-timeout 1000 --timeout 600
	udp_bg=$BG_PID
	sleep 1

	log "addr: +$((SECONDS - t0)) s: IPv4 address of the input device (veth0) removed and restored"
	ip -net "$nsrouter" addr del "$R1_4/24" dev veth0
	sleep 1
	ip -net "$nsrouter" addr add "$R1_4/24" dev veth0
	sleep 1
	log "addr: +$((SECONDS - t0)) s: IPv6 address of veth0 removed and restored"
	ip -net "$nsrouter" -6 addr del "$R1_6/64" dev veth0
	sleep 1
	ip -net "$nsrouter" -6 addr add "$R1_6/64" dev veth0 nodad
	sleep 1
	log "addr: +$((SECONDS - t0)) s: disable_ipv6 on veth0, then enabled again"
	ip netns exec "$nsrouter" sysctl -wq net.ipv6.conf.veth0.disable_ipv6=1
	sleep 1
	ip netns exec "$nsrouter" sysctl -wq net.ipv6.conf.veth0.disable_ipv6=0
	ip -net "$nsrouter" -6 addr replace "$R1_6/64" dev veth0 nodad
	sleep 1
	log "addr: +$((SECONDS - t0)) s: both addresses of veth0 removed at once, disable_ipv6 while they go"
	ip -net "$nsrouter" addr flush dev veth0
	ip netns exec "$nsrouter" sysctl -wq net.ipv6.conf.veth0.disable_ipv6=1
	sleep 1
	ip netns exec "$nsrouter" sysctl -wq net.ipv6.conf.veth0.disable_ipv6=0
	ip -net "$nsrouter" addr add "$R1_4/24" dev veth0
	ip -net "$nsrouter" -6 addr replace "$R1_6/64" dev veth0 nodad
	sleep 1

	# veth refuses an MTU below 68 (its minimum); lo takes it and loses
	# its in_device: IPv4 is off there, while packets still arrive
	if ip -net "$nsrouter" link set veth0 mtu 60 2> /dev/null; then
		log "addr: +$((SECONDS - t0)) s: veth0 took MTU 60 (IPv4 off on the input device itself)"
		sleep 1
		ip -net "$nsrouter" link set veth0 mtu 1500
		ip -net "$nsrouter" addr replace "$R1_4/24" dev veth0
		ip -net "$nsrouter" -6 addr replace "$R1_6/64" dev veth0 nodad
	fi
	read -r v4a v6a before before_a <<< "$(lo_counters)"
	log "addr: +$((SECONDS - t0)) s: lo MTU 60 (IPv4 off on lo), SYNs injected on lo for 'iif lo tcp dport 8080 tproxy to :$TPL_TCP_PORT'"
	ip -net "$nsrouter" link set lo mtu 60
	if ip -net "$nsrouter" -4 addr show dev lo | grep -q inet; then
		fail "addr: lo kept IPv4 at MTU 60"
	fi
	rc=0
	inject_lo 200 2> "$TMPD/inject.err" || rc=$?
	read -r v4b v6b b a <<< "$(lo_counters)"
	restore_lo
	sleep 1
	if [ "$rc" -eq 0 ] && [ $((v4b - v4a)) -eq 200 ] && [ $((b - before)) -ge 200 ]; then
		pass "addr: the default-address tproxy rule evaluated $((b - before)) SYNs arriving on lo ($((v4b - v4a)) IPv4 ones, lo without IPv4; $((v6b - v6a)) IPv6), $((a - before_a)) found the proxy listener, no crash"
	else
		fail "addr: injection on lo failed (exit $rc) or the rule saw $((v4b - v4a)) of 200 IPv4 SYNs ($((b - before)) in all)"
		indent < "$TMPD/inject.err"
	fi

	rc=$(stop_bg addr_tcp "$tcp_bg")
	out=$(cat "$TMPD/addr_tcp.out" 2>/dev/null)
	local uout urc
	urc=$(stop_bg addr_udp "$udp_bg")
	uout=$(cat "$TMPD/addr_udp.out" 2>/dev/null)
	local prep
	prep=$(tpl_report proxy reset)
	log "addr: during the faults: tcp ok=$(kv "$out" ok) failed=$(kv "$out" failed) timeouts=$(kv "$out" timeouts) ($(kv "$out" errors)); udp received=$(kv "$uout" received) lost=$(kv "$uout" lost)"
	if [ "$rc" != 2 ] && [ "$urc" != 2 ] && [ "$(kv "$out" mismatched)" = 0 ] &&
	   [ "$(kv "$uout" corrupt)" = 0 ] && [ "$(kv "$uout" misdelivered)" = 0 ] &&
	   [ "$(kv "$prep" dst_mismatch)" = 0 ] && [ "$(kv "$out" ok)" -gt 0 ] &&
	   [ "$(kv "$uout" received)" -gt 0 ]; then
		pass "addr: traffic during the faults: nothing mismatched, corrupt or misdelivered"
	else
		fail "addr: traffic during the faults: tcp exit $rc, udp exit $urc; proxy dst_mismatch=$(kv "$prep" dst_mismatch)"
		{ echo "$out"; echo "$uout"; head -n 5 "$TMPD/addr_tcp.err" "$TMPD/addr_udp.err"; } | indent
	fi
	verify_traffic "addr: addresses back" proxy
}

# ------------------------------------------------------------------ netns

link_gone() { ! ip -net "$1" link show "$2" > /dev/null 2>&1; }
tcp_slab_below() { [ "$(slab_active TCP TCPv6 request_sock_TCP request_sock_TCPv6 tw_sock_TCP tw_sock_TCPv6)" -le "$1" ]; }
# ns_tcp_at_most NS N: at most N TCP sockets in use (v4 + v6) in NS
# (sockstat's orphan count is global, not the namespace's)
ns_tcp_inuse() { local s; s=$(sockstat "$1"); s=${s#tcp=}; echo $((${s%% *} + $(kv "$(sockstat "$1")" tcp6))); }
ns_tcp_at_most() { [ "$(ns_tcp_inuse "$1")" -le "$2" ]; }

case_netns()
{
	local n=$NETNS_CONNS slab0 slab1 est bg rc t0 took out inuse0
	tpl_report proxy reset > /dev/null
	# earlier cases may have left orphans timing out in the client
	inuse0=$(ns_tcp_inuse "$nsclient")
	slab0=$(slab_active TCP TCPv6 request_sock_TCP request_sock_TCPv6 tw_sock_TCP tw_sock_TCPv6)
	bg_client netns "$nsclient" --tcp "$TCP_DSTS" -n "$n" -c "$n" --size 1048576 \
		--pace 64:5000 --seed $((SEED += 1)) --conn-timeout 600000 --timeout 900
	bg=$BG_PID
	if ! busywait 120000 live_at_least proxy "$n"; then
		fail "netns: the proxy never held $n connections ($(live_conns proxy))"
		stop_bg netns "$bg" > /dev/null
		return
	fi
	est=$(ip netns exec "$nsrouter" ss -Htn state established | wc -l)
	slab1=$(slab_active TCP TCPv6 request_sock_TCP request_sock_TCPv6 tw_sock_TCP tw_sock_TCPv6)
	log "netns: $est established TCP sockets in the router ($n tproxied), TCP slab objects $slab0 -> $slab1; deleting the router namespace"
	t0=$(now_ms)
	if ! timeout 60 ip netns del "$nsrouter"; then
		fail "netns: ip netns del hung or failed"
	fi
	# the proxy's sockets hold the namespace: kill it, the kernel does the rest
	kill -KILL "${TPL_PIDS[proxy]}" 2>/dev/null
	tpl_stop proxy
	if busywait 120000 link_gone "$nsclient" eth0; then
		took=$(($(now_ms) - t0))
		pass "netns: router namespace dismantled ${took} ms after its deletion (the client's veth end went with it)"
	else
		fail "netns: the router namespace was not dismantled after 120 s (client's eth0 still there)"
	fi
	rc=$(stop_bg netns "$bg")
	out=$(cat "$TMPD/netns.out" 2>/dev/null)
	log "netns: client (stopped): ok=$(kv "$out" ok) failed=$(kv "$out" failed) timeouts=$(kv "$out" timeouts) mismatched=$(kv "$out" mismatched)"
	if [ "$(kv "$out" mismatched)" != 0 ] || [ "$rc" = 2 ]; then
		fail "netns: the client saw mismatched data (exit $rc)"
	fi
	if busywait 60000 ns_tcp_at_most "$nsclient" "$inuse0"; then
		pass "netns: none of the client's $n sockets left in its namespace ($(sockstat "$nsclient"); $inuse0 before)"
	else
		fail "netns: sockets left in the client namespace: $(sockstat "$nsclient")"
		ip netns exec "$nsclient" ss -tanoi | head -n 12 | indent
	fi
	# the router's sockets are freed (slab caches are global: a margin for
	# per-cpu caches and the rest of the system)
	if busywait 60000 tcp_slab_below $((slab0 + 200)); then
		pass "netns: TCP socket slabs back to $(slab_active TCP TCPv6 request_sock_TCP request_sock_TCPv6 tw_sock_TCP tw_sock_TCPv6) (were $slab0 before, $slab1 under load)"
	else
		fail "netns: TCP socket slabs at $(slab_active TCP TCPv6 request_sock_TCP request_sock_TCPv6 tw_sock_TCP tw_sock_TCPv6), were $slab0 before the load: sockets of the deleted namespace leaked"
	fi
	if dmesg 2>/dev/null | grep -q 'waiting for .* to become free'; then
		fail "netns: the kernel waits for a device to become free (reference leak)"
		dmesg | grep 'waiting for .* to become free' | tail -n 3 | indent
	fi
}

# ------------------------------------------------------------------ unload

mods_gone() { local m; for m in "$@"; do [ -d "/sys/module/$m" ] && return 1; done; return 0; }
try_unload()
{
	if [ "${NFTP_MODE:-}" = ours ]; then
		rmmod nft_tproxy nft_socket nftp_core 2>/dev/null
	else
		modprobe -r nft_tproxy nft_socket 2>/dev/null
	fi
	mods_gone "$@"
}

# unload_ruleset: rules using both expressions, that pin their modules
unload_ruleset()
{
	cat <<-EOF
	table inet unload {
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			socket transparent 1 meta mark set 1 accept
			tcp dport 8080 tproxy ip to :12345 meta mark set 1 accept
		}
	}
	EOF
}

case_unload()
{
	local mods m out rc held=0
	if [ ! -e /proc/modules ] || ! grep -q '^nft_tproxy ' /proc/modules; then
		log "unload: nft_tproxy is not a loaded module here (built in): skipped"
		return
	fi
	mods=(nft_tproxy nft_socket)
	[ "${NFTP_MODE:-}" = ours ] && mods+=(nftp_core)
	cleanup_all_ns
	setup_ns nsunload
	# shellcheck disable=SC2154 # set by setup_ns
	load_ruleset "$nsunload" "unload: rules using both expressions" < <(unload_ruleset) || return
	modprobe -r nft_tproxy > "$TMPD/modprobe.err" 2>&1 && fail "unload: 'modprobe -r nft_tproxy' succeeded with a rule using it"
	rmmod "${mods[@]}" >> "$TMPD/modprobe.err" 2>&1 && fail "unload: 'rmmod ${mods[*]}' succeeded with rules using them"
	for m in "${mods[@]}"; do
		[ -d "/sys/module/$m" ] || { fail "unload: $m was unloaded although a rule uses it"; held=1; }
	done
	[ "$held" -eq 0 ] && pass "unload: modprobe -r / rmmod refused while rules use ${mods[*]} (refcnt nft_tproxy $(cat /sys/module/nft_tproxy/refcnt), nft_socket $(cat /sys/module/nft_socket/refcnt))"
	sed 's/^/modprobe: /' "$TMPD/modprobe.err" | head -n 3 | indent

	flush_ruleset "$nsunload"
	cleanup_all_ns
	# the rules' destruction is asynchronous (commit work): retry a while
	if busywait "$BUSYWAIT_TIMEOUT" try_unload "${mods[@]}"; then
		pass "unload: ${mods[*]} unloaded once the rules and namespaces were gone"
	else
		fail "unload: ${mods[*]} still loaded after the flush: $(grep -E "^(${mods[*]// /|}) " /proc/modules | tr '\n' ';')"
	fi

	rc=0
	out=$(modprobe -a nft_tproxy nft_socket 2>&1) || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "unload: modprobe -a nft_tproxy nft_socket failed: $out"
		return
	fi
	for m in "${mods[@]}"; do
		[ -d "/sys/module/$m" ] || fail "unload: $m did not load again"
	done
	if [ "${NFTP_MODE:-}" = ours ]; then
		if [ -d /sys/module/nftp_core ] && [[ "$(cat /sys/module/nft_tproxy/taint)" == *O* ]] &&
		   [[ "$(modinfo -n nft_tproxy)" == */updates/* ]]; then
			pass "unload: modprobe brought ours back (nftp_core loaded, nft_tproxy from $(modinfo -n nft_tproxy))"
		else
			fail "unload: after modprobe: nftp_core $([ -d /sys/module/nftp_core ] && echo loaded || echo missing), nft_tproxy taint '$(cat /sys/module/nft_tproxy/taint)' from $(modinfo -n nft_tproxy)"
		fi
	else
		if [ ! -d /sys/module/nftp_core ] && [[ "$(cat /sys/module/nft_tproxy/taint)" != *O* ]]; then
			pass "unload: modprobe brought the in-tree modules back"
		else
			fail "unload: after modprobe the in-tree stack is not what is loaded"
		fi
	fi
	# and they work: a rule using both loads in a fresh namespace
	setup_ns nsunload2
	# shellcheck disable=SC2154 # set by setup_ns
	load_ruleset "$nsunload2" "unload: rules after the reload" < <(unload_ruleset) &&
		pass "unload: rules using both expressions load again"
	flush_ruleset "$nsunload2"
}

for c in kill timewait churn addr netns unload; do
	want "$c" || continue
	t0=$SECONDS
	"case_$c"
	log "$c: $((SECONDS - t0)) s"
done

exit "$ret"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Load through tproxy: client -- router -- server1 (lib.sh topology).  The
# router diverts client -> server1 tcp/8080 to a transparent tpload echo
# server (the proxy) on :12345 and udp/53 to :8053, IPv4 and IPv6
# alternately, with `tproxy ip|ip6 to :PORT` (default-address path) after
# a `socket transparent 1` rule.  server1 runs a plain echo server, so
# anything the rules let through would still be answered: it must see
# nothing.  tools/tpload sends a seeded pseudo-random pattern per
# connection / per datagram and verifies every byte echoed back.
#
#   1. LOAD_CONCURRENT TCP connections all open at once;
#   2. LOAD_SEQUENTIAL TCP connections, LOAD_SEQ_CONC at a time;
#   3. LOAD_UDP datagrams over LOAD_UDP_FLOWS connected sockets.
#
# Each must be complete (every connection verified, the proxy accepted
# each one for the original destination, server1 saw none), and UDP may
# lose datagrams only where a socket buffer dropped them: lost <= the
# growth of the UDP drop counters (InErrors, which holds RcvbufErrors, and
# SndbufErrors, v4 + v6) of the router's and the client's netns; nothing
# corrupt, nothing misdelivered (tpload checks the reply's source on a
# connected socket and the datagram's flow and destination inside).
#
# Sizes: LOAD_SCALE percent of the full figures (10,000 concurrent,
# 100,000 sequential, 1,000,000 datagrams); default 100 on a host, 10 in
# the VM (NFTP_IN_VM), so that the default suite stays within ~3 minutes
# under TCG.  `make load` runs the full figures.  Explicit LOAD_CONCURRENT,
# LOAD_SEQUENTIAL, LOAD_UDP win over the scale.  LOAD_SIZE bytes per TCP
# connection (default 512), LOAD_UDP_SIZE (default 64), LOAD_UDP_WINDOW
# (datagrams in flight, default 128), LOAD_SEED (default 0: the phases'
# pattern seeds are 1, 2, 3).  Results also go to
# $NFTP_OUT/load-<mode>.txt when NFTP_OUT is set (the VM harness).

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft ip
# shellcheck source=selftests/load_lib.sh
source "$SELFTEST_DIR/load_lib.sh"

need_tpload

if [ "${NFTP_IN_VM:-0}" = 1 ]; then scale_default=10; else scale_default=100; fi
SCALE=${LOAD_SCALE:-$scale_default}
scaled() { local v=$(($1 * SCALE / 100)); [ "$v" -lt "$2" ] && v=$2; echo "$v"; }
CONC=${LOAD_CONCURRENT:-$(scaled 10000 100)}
SEQ=${LOAD_SEQUENTIAL:-$(scaled 100000 1000)}
SEQ_CONC=${LOAD_SEQ_CONC:-64}
UDPN=${LOAD_UDP:-$(scaled 1000000 10000)}
UDP_FLOWS=${LOAD_UDP_FLOWS:-32}
UDP_WINDOW=${LOAD_UDP_WINDOW:-128}
SIZE=${LOAD_SIZE:-512}
UDP_SIZE=${LOAD_UDP_SIZE:-64}
# pattern seeds: each phase takes the next one
SEED=${LOAD_SEED:-0}
# seconds, per phase; the guest under TCG is slow
PHASE_TIMEOUT=${LOAD_PHASE_TIMEOUT:-1500}
# the servers and clients must outlive the phases
PEER_LIFETIME=$((3 * PHASE_TIMEOUT + 600))
CLIENT_LIFETIME=$((PHASE_TIMEOUT + 60))

RESULTS="$TMPD/results"
: > "$RESULTS"
result() { echo "$*" | tee -a "$RESULTS"; }

topology || exit "$ksft_fail"
tune_for_load

load_ruleset "$nsrouter" "load ruleset" < <(tproxy_ruleset socket) || exit "$ret"
proxy proxy || exit "$ret"
server1 server1 || exit "$ret"

log "mode=${NFTP_MODE:-host} kernel=$(uname -r) scale=$SCALE%: $CONC concurrent, $SEQ sequential ($SEQ_CONC at a time), $UDPN datagrams"

# tcp_phase NAME N C [client args...]
tcp_phase()
{
	local name=$1 n=$2 c=$3
	shift 3
	local out rc=0 prep s1rep ok acc o4 o6 half4 half6 retr0 ovf0 retr ovf
	tpl_report proxy reset > /dev/null
	tpl_report server1 reset > /dev/null
	retr0=$(tcp_snmp "$nsclient" RetransSegs)
	ovf0=$(tcpext "$nsrouter" ListenDrops)
	tpl_client "$nsclient" out --tcp "$TCP_DSTS" -n "$n" -c "$c" --size "$SIZE" \
		--seed $((SEED += 1)) --conn-timeout 120000 --timeout "$PHASE_TIMEOUT" "$@" || rc=$?
	prep=$(tpl_report proxy reset)
	s1rep=$(tpl_report server1 reset)
	retr=$(($(tcp_snmp "$nsclient" RetransSegs) - retr0))
	ovf=$(($(tcpext "$nsrouter" ListenDrops) - ovf0))
	ok=$(kv "$out" ok)
	acc=$(kv "$prep" accepted)
	o4=$(origdst "$prep" tcp "$S1_4:8080")
	o6=$(origdst "$prep" tcp "[$S1_6]:8080")
	half6=$((n / 2)) half4=$((n - n / 2))
	result "$name: $n TCP connections ($c at a time, $SIZE bytes each): ok=$ok failed=$(kv "$out" failed) mismatched=$(kv "$out" mismatched) timeouts=$(kv "$out" timeouts) in $(kv "$out" elapsed) s = $(kv "$out" rate) conn/s (connect avg $(kv "$out" connect_ms_avg) ms); client retransmitted $retr segments, proxy listen drops $ovf"
	if [ "$rc" -eq 0 ] && [ "$ok" = "$n" ] && [ "$acc" = "$n" ] &&
	   [ "$o4" = "$half4" ] && [ "$o6" = "$half6" ] &&
	   [ "$(kv "$prep" completed)" = "$n" ] && [ "$(kv "$prep" dst_mismatch)" = 0 ] &&
	   [ "$(kv "$s1rep" accepted)" = 0 ]; then
		pass "$name: all $n connections through tproxy, every byte verified; proxy saw $o4 for $S1_4:8080 and $o6 for [$S1_6]:8080, server1 none"
	else
		fail "$name: client exit $rc, ok=$ok of $n; proxy accepted=$acc (v4 $o4 of $half4, v6 $o6 of $half6) completed=$(kv "$prep" completed) dst_mismatch=$(kv "$prep" dst_mismatch); server1 accepted=$(kv "$s1rep" accepted)"
		{ echo "$out"; head -n 20 "$TMPD/client.err"; echo "$prep"; } | indent
	fi
}

tcp_phase "concurrent" "$CONC" "$CONC"
tcp_phase "sequential" "$SEQ" "$SEQ_CONC"

# UDP
tpl_report proxy reset > /dev/null
tpl_report server1 reset > /dev/null
d_r0=$(udp_drops "$nsrouter") d_c0=$(udp_drops "$nsclient")
noports0=$(snmp "$nsclient" Udp NoPorts) noports60=$(snmp "$nsclient" 6 Udp6NoPorts)
rc=0
tpl_client "$nsclient" out --udp "$UDP_DSTS" --datagrams "$UDPN" --flows "$UDP_FLOWS" \
	--window "$UDP_WINDOW" --size "$UDP_SIZE" --seed $((SEED += 1)) --conn-timeout 2000 \
	--timeout "$PHASE_TIMEOUT" || rc=$?
prep=$(tpl_report proxy reset)
s1rep=$(tpl_report server1 reset)
d_r=$(($(udp_drops "$nsrouter") - d_r0)) d_c=$(($(udp_drops "$nsclient") - d_c0))
noports=$(($(snmp "$nsclient" Udp NoPorts) - noports0 + $(snmp "$nsclient" 6 Udp6NoPorts) - noports60))
lost=$(kv "$out" lost) recv=$(kv "$out" received)
o4=$(origdst "$prep" udp "$S1_4:53") o6=$(origdst "$prep" udp "[$S1_6]:53")
result "udp: $UDPN datagrams ($UDP_FLOWS flows, window $UDP_WINDOW, $UDP_SIZE bytes): received=$recv lost=$lost corrupt=$(kv "$out" corrupt) misdelivered=$(kv "$out" misdelivered) duplicate=$(kv "$out" duplicate) in $(kv "$out" elapsed) s = $(kv "$out" rate) datagrams/s; socket-buffer drops: router $d_r, client $d_c; proxy replies failed $(kv "$prep" udp_reply_errors)"
if [ "$rc" -eq 2 ] || [ "$(kv "$out" corrupt)" != 0 ] || [ "$(kv "$out" misdelivered)" != 0 ] ||
   [ "$(kv "$prep" dst_mismatch)" != 0 ] || [ "$noports" -ne 0 ]; then
	fail "udp: integrity: client exit $rc, corrupt=$(kv "$out" corrupt) misdelivered=$(kv "$out" misdelivered) duplicate=$(kv "$out" duplicate); proxy dst_mismatch=$(kv "$prep" dst_mismatch); client NoPorts +$noports"
	{ echo "$out"; head -n 20 "$TMPD/client.err"; } | indent
else
	pass "udp: nothing corrupt, nothing misdelivered, no reply from a wrong source"
fi
if [ -n "$lost" ] && [ "$lost" -le $((d_r + d_c)) ] && [ "$rc" -ne 3 ] &&
   [ "$(kv "$out" unsent)" = 0 ]; then
	pass "udp: $lost of $UDPN lost, all accounted for by socket-buffer drops (router $d_r + client $d_c)"
else
	fail "udp: $lost of $UDPN lost (client exit $rc), socket-buffer drops only router $d_r + client $d_c"
	{ echo "$out"; head -n 20 "$TMPD/client.err"; } | indent
fi
if [ "$(kv "$s1rep" udp_datagrams)" = 0 ] && [ $((o4 + o6)) -eq "$(kv "$prep" udp_datagrams)" ]; then
	pass "udp: the proxy got $o4 for $S1_4:53 and $o6 for [$S1_6]:53, server1 none"
else
	fail "udp: proxy saw $S1_4:53 $o4 + [$S1_6]:53 $o6 of $(kv "$prep" udp_datagrams); server1 got $(kv "$s1rep" udp_datagrams)"
	echo "$prep" | indent
fi

if [ -n "${NFTP_OUT:-}" ] && [ -d "$NFTP_OUT" ]; then
	{
		echo "# nft_load mode=${NFTP_MODE:-host} kernel=$(uname -r) scale=$SCALE%"
		cat "$RESULTS"
	} > "$NFTP_OUT/load-${NFTP_MODE:-host}.txt"
fi

flush_ruleset "$nsrouter"
exit "$ret"

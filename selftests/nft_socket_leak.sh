#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nft socket: no socket reference leaks, on any path that ends in NFT_BREAK
# (CVE-2024-46855: the reference taken by the lookup was not put when the
# socket was not a full one, for socket mark / wildcard / cgroupv2, nor
# when the cgroup level was missing).
#
# client -- router (lib.sh). In the router, a server (SO_MARK 0x2a, in a
# cgroup at level L) closes every connection first, so the router holds
# TIME_WAIT sockets; a listener whose SYN-ACKs the client drops holds
# request sockets; a UDP socket (also in the cgroup). Then, from the
# client, raw TCP segments and UDP datagrams (selftests/sk_blast.py) make
# the router's prerouting rules look up, for every packet,
#   port 8080 (ACKs)  TIME_WAIT sockets      mark/wildcard/cgroupv2: BREAK
#   port 8081 (ACKs)  request sockets        mark/wildcard/cgroupv2: BREAK
#   port 8081 (SYNs)  the listener (full)    cgroupv2 level L+5: BREAK (no such ancestor)
#   port 8082 (UDP)   a full UDP socket      cgroupv2 level L+5: BREAK
#   port 8083 (UDP)   no socket              BREAK
# The TIME_WAIT sockets of a family are made (their connections pass the
# rules by their ACK numbers) and looked up right away, as one lives only
# 60 s; the ruleset is in place by then.  All packets are
# dropped after the lookups, so no socket changes state (LEAK_ROUNDS
# rounds; by default as many as give over 100000 lookups with the keys the
# kernel takes, and every packet must reach the rules). Counters check that every
# lookup found what it should (`socket transparent 0` matches TIME_WAIT
# and request sockets, so they were found; mark/wildcard/cgroupv2 never,
# nor nft-tproxy's socket uid/gid, which have no owner: those rules need
# the patched nft, and are skipped with a stock one).
#
# Then everything is torn down, and a leaked reference would show:
#   - TIME_WAIT and request sockets stay allocated: the tw_sock_TCP(v6) and
#     request_sock_TCP(v6) slab counts (/proc/slabinfo, after shrinking the
#     caches so that per-CPU caches do not blur them) must come back to
#     their baseline (+16, far less than the number of sockets made);
#   - a request socket holds its listener, a listener (like every user
#     socket) holds its network namespace: the router's netns must really
#     go away after `ip netns del` (the client's end of the veth pair
#     disappears only when it does), within 150 s: the requests' SYN-ACK
#     timers, up to 120 s apart, drop them once the listener is closed;
#   - the nf_tables modules must unload (the router's ruleset is not
#     flushed first: only a dismantled netns gives the rules up), then they
#     are loaded again for the scripts that follow;
#   - /proc/net/sockstat TCP alloc back to its baseline.

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft python ss
# shellcheck source=selftests/socket_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/socket_lib.sh"

checktool "nsenter --version" "run nft in a netns without remounting /sys"
[ -r /proc/slabinfo ] || skip_all "no /proc/slabinfo"

BLAST_ACK=0x12345678		# the ACK number of sk_blast.py's ACKs
NTW=${LEAK_TW:-200}		# TIME_WAIT sockets per family
NREQ=50				# request sockets per family (listen backlog 64)

on_exit_hook=socket_exit

# slab tw|req: objects in use in the TCP and TCPv6 TIME_WAIT or request
# socket caches, summed
slab()
{
	case $1 in
	tw) slab_active tw_sock_TCP tw_sock_TCPv6 ;;
	req) slab_active request_sock_TCP request_sock_TCPv6 ;;
	esac
}
sockstat_alloc() { awk '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "alloc") print $(i + 1) }' /proc/net/sockstat; }

# A leak check that fails: on the in-tree module of a kernel without
# upstream's fix for CVE-2024-46855 (8b26ff7af8c3 "netfilter: nft_socket:
# fix sk refcount leaks", 6.11, and the stable releases below) it is that
# bug, which this test exists for: N/A there.  Anywhere else, a failure.
leak_fail()
{
	ref_bug "$1 [CVE-2024-46855]" 5.4.295 5.10.239 5.15.168 6.1.111 6.6.52 6.10.11 6.11 ||
		fail "$1"
}

# the modules of this mode, as scripts/guest-load-modules loads them
if [ "${NFTP_MODE:-}" = ours ]; then
	MODS="nft_socket nft_tproxy nftp_core"
	RELOAD="nftp_core nft_tproxy nft_socket"
else
	MODS="nft_socket nft_tproxy"
	RELOAD="nft_tproxy nft_socket nf_tproxy_ipv4 nf_tproxy_ipv6 nf_socket_ipv4 nf_socket_ipv6"
fi

TW0=$(slab tw)
REQ0=$(slab req)
ALLOC0=$(sockstat_alloc)
log "baseline: TIME_WAIT slab objects $TW0, request socket slab objects $REQ0, TCP alloc $ALLOC0"

topology || exit "$ksft_fail"

HAVE_CG=1
if ! cg_setup nftp-leak; then
	HAVE_CG=0
	fail "cgroup v2 not usable here: cannot test socket cgroupv2"
else
	mkdir -p "$CGDIR/a/b/c/d/e"
fi

# --- sockets to hit ----------------------------------------------------------
# the client drops the SYN-ACKs for port 8081: the request sockets stay
load_ruleset "$nsclient" "client: drop SYN-ACKs from 8081" <<-'EOF' || exit "$ret"
table inet c {
	chain in {
		type filter hook input priority filter; policy accept;
		tcp sport 8081 drop
	}
}
EOF

for v in 4 6; do
	if [ "$v" = 4 ]; then R1=$R1_4; else R1=$R1_6; fi
	PEER_NOWAIT=1
	router_peer "tw-$v" . tcp "$(hostport "$R1" 8080)" --close-first --mark 0x2a
	tw_pid[v]=$PEER_PID
	router_peer "lsn-$v" . tcp "$(hostport "$R1" 8081)" --mark 0x2a
	router_peer "udp-$v" . udp "$(hostport "$R1" 8082)" --mark 0x2a
	PEER_NOWAIT=0
	wait_peers "tw-$v" "lsn-$v" "udp-$v" || exit "$ksft_fail"
done
# request sockets (they live for tcp_synack_retries, made long here: the
# blasting below takes a while under TCG)
ip netns exec "$nsrouter" sysctl -wq net.ipv4.tcp_synack_retries=10
for v in 4 6; do
	if [ "$v" = 4 ]; then R1=$R1_4 C=$C4; else R1=$R1_6 C=$C6; fi
	out=$(ip netns exec "$nsclient" "${PYRUN[@]}" sk_blast tcp --src "$C" --dst "$R1" --dport 8081 --flags syn \
		--sports "30001-$((30000 + NREQ))" 2>&1) || { fail "IPv$v: SYNs to :8081: $out"; exit "$ret"; }
done
nreq=$(ip netns exec "$nsrouter" ss -Htan state syn-recv | grep -c ':8081 ')
REQ1=$(slab req)
# (request sockets: in the guest not every SYN made one that lasted; the
# ACKs of the missing ones meet the listener, a full socket, and are
# counted apart below)
if [ "$nreq" -ge "$NREQ" ]; then
	pass "router holds $nreq request sockets (:8081)"
else
	fail "router holds $nreq request sockets (:8081), expected >= $NREQ"
fi

# --- the lookups ---------------------------------------------------------------
# rules GROUP MATCH: one lookup per key on GROUP's packets, counted
rules()
{
	local g=$1 m=$2
	cat <<-EOF
	$m counter comment "$g-all"
	$m socket transparent 0 counter comment "$g-t0"
	$m socket mark 0x2a counter comment "$g-mark"
	$m socket wildcard 0 counter comment "$g-w0"
	EOF
	if [ "$HAVE_CG" = 1 ]; then
		cat <<-EOF
		$m socket cgroupv2 level $CGLVL "$CGREL" counter comment "$g-cg"
		$m socket cgroupv2 level $((CGLVL + 5)) "$CGREL/a/b/c/d/e" counter comment "$g-cgdeep"
		EOF
	fi
	# the servers run as root
	if [ "$HAVE_OWNER" = 1 ]; then
		cat <<-EOF
		$m socket uid 0 counter comment "$g-uid"
		$m socket gid 0 counter comment "$g-gid"
		EOF
	fi
}
ruleset()
{
	cat <<-EOF
	flush ruleset
	table inet leak {
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			tcp dport 8080 tcp ackseq != $BLAST_ACK accept
			$(rules tw "tcp dport 8080")
			$(rules req "tcp dport 8081 tcp flags & (syn | ack) == ack")
			$(rules lsn "tcp dport 8081 tcp flags & (syn | ack) == syn")
			$(rules udp "udp dport 8082")
			$(rules none "udp dport 8083")
			meta l4proto { tcp, udp } th dport 8080-8083 drop
		}
	}
	EOF
}
HAVE_OWNER=0
if nft_ext socket-uid && nft_ext socket-gid; then
	HAVE_OWNER=1
else
	echo "SKIP: socket uid/gid lookups: $NFT is not nft-tproxy's patched nft"
fi
# A reference run drops, one at a time, what the in-tree module may lack:
# socket uid/gid (never there), socket cgroupv2 (before 5.13); any run,
# socket cgroupv2 where sockets carry no cgroup (sock_cgroup_lacks).
dropped=()
while ! ruleset | load_ruleset_nsenter "$nsrouter" leak; do
	err=$(head -n 2 "$TMPD/last_load.err")
	if [ "${NFTP_MODE:-}" = ref ] && [ "$HAVE_OWNER" = 1 ]; then
		HAVE_OWNER=0 dropped+=("socket uid/gid ($err)")
	elif [ "${NFTP_MODE:-}" = ref ] && [ "$HAVE_CG" = 1 ]; then
		HAVE_CG=0 dropped+=("socket cgroupv2 ($err)")
	elif [ "$HAVE_CG" = 1 ] && sock_cgroup_lacks "socket cgroupv2" "$err"; then
		HAVE_CG=0
	else
		fail "leak ruleset refused"
		echo "$err" | indent
		exit "$ret"
	fi
done
for d in "${dropped[@]}"; do
	ref_lacks "$d" 1
done
[ "$HAVE_CG" = 1 ] && sock_cgroup_taken
# lookups per packet: transparent, mark, wildcard (+ 2 cgroupv2, + uid, gid)
nkeys=3
[ "$HAVE_CG" = 1 ] && nkeys=$((nkeys + 2))
[ "$HAVE_OWNER" = 1 ] && nkeys=$((nkeys + 2))
# 150 / keys rounds: 30 with 5 keys, 50 with 3 (in-tree before 5.13)
ROUNDS=${LEAK_ROUNDS:-$((150 / nkeys))}
want=100000
[ -n "${LEAK_ROUNDS:-}${LEAK_TW:-}" ] && want=0

# blast ARGS...: sk_blast.py's packets from the client, added to $sent
sent=0 TW1=0
blast()
{
	local n
	if ! n=$(ip netns exec "$nsclient" "${PYRUN[@]}" sk_blast "$@" --rounds "$ROUNDS" 2>&1); then
		fail "sk_blast $*: $n"
		return 1
	fi
	sent=$((sent + n))
}

# The TIME_WAIT sockets, a family at a time, each looked up right after it
# is made: one lives 60 s (TCP_TIMEWAIT_LEN, no knob), and the lookups
# must all meet it.  The connections get past the rules above by their
# ACK numbers (sk_blast's are BLAST_ACK); without its listener, stopped
# here, only the TIME_WAIT sockets answer to :8080.
for v in 4 6; do
	if [ "$v" = 4 ]; then R1=$R1_4 C=$C4; else R1=$R1_6 C=$C6; fi
	out=$(ip netns exec "$nsclient" "${PYRUN[@]}" sk_blast connect --dst "$R1" --dport 8080 \
		--sports "20001-$((20000 + NTW))" 2>&1) || { fail "IPv$v: $NTW connections to :8080: $out"; exit "$ret"; }
	stop_peer "${tw_pid[v]}"
	blast tcp --src "$C" --dst "$R1" --dport 8080 --flags ack --sports "20001-$((20000 + NTW))"
	ntw=$(ip netns exec "$nsrouter" ss -Htan -"$v" state time-wait | grep -c ':8080 ')
	[ "$v" = 4 ] || TW1=$(slab tw)
	if [ "$ntw" -ge "$NTW" ]; then
		pass "IPv$v: the router's $ntw TIME_WAIT sockets (:8080) outlived their lookups"
	else
		fail "IPv$v: $ntw TIME_WAIT sockets (:8080) left after their lookups, expected $NTW"
	fi
done
log "with them: TIME_WAIT slab objects $TW1 (IPv4 ones may have gone), request socket slab objects $REQ1"
for v in 4 6; do
	if [ "$v" = 4 ]; then R1=$R1_4 C=$C4; else R1=$R1_6 C=$C6; fi
	blast tcp --src "$C" --dst "$R1" --dport 8081 --flags ack --sports "30001-$((30000 + NREQ))"
	blast tcp --src "$C" --dst "$R1" --dport 8081 --flags syn --sports 40001-40050
	blast udp --dst "$R1" --dport 8082 --sports 41001-41050
	blast udp --dst "$R1" --dport 8083 --sports 42001-42050
done
read_counters "$nsrouter"
total=0
for g in tw req lsn udp none; do
	total=$((total + $(cnt "$g-all")))
done
lookups=$((total * nkeys))
if [ "$total" -ge "$sent" ] && [ "$lookups" -ge "$want" ]; then
	pass "$sent packets sent, $total reached the rules: $lookups socket lookups"
else
	fail "$lookups socket lookups, $total of $sent packets reached the rules (want all, and $want lookups)"
fi
# ACKs to :8081 find a request socket (BREAK on mark, wildcard, cgroupv2)
# or, where none is left, the listener (full: all three match)
check_cnt "req: every packet found a socket ('socket transparent 0')" req-t0 -eq "$(cnt req-all)"
check_cnt "req: most of them a request socket ('socket mark' BREAK)" req-mark -le $(($(cnt req-all) / 2))
check_cnt "req: 'socket wildcard' BREAKs exactly as often" req-w0 -eq "$(cnt req-mark)"
if [ "$HAVE_CG" = 1 ]; then
	check_cnt "req: 'socket cgroupv2' BREAKs exactly as often" req-cg -eq "$(cnt req-mark)"
	check_cnt "req: 'socket cgroupv2' (deep) always BREAKs" req-cgdeep -eq 0
fi
if [ "$HAVE_OWNER" = 1 ]; then
	check_cnt "req: 'socket uid' BREAKs exactly as often" req-uid -eq "$(cnt req-mark)"
	check_cnt "req: 'socket gid' BREAKs exactly as often" req-gid -eq "$(cnt req-mark)"
fi
# TIME_WAIT sockets: found (transparent 0 matches), BREAK on every other key
check_cnt "tw: every packet found its socket ('socket transparent 0')" tw-t0 -eq "$(cnt tw-all)"
check_cnt "tw: 'socket mark' on a non-full socket: BREAK" tw-mark -eq 0
check_cnt "tw: 'socket wildcard' on a non-full socket: BREAK" tw-w0 -eq 0
if [ "$HAVE_CG" = 1 ]; then
	check_cnt "tw: 'socket cgroupv2' on a non-full socket: BREAK" tw-cg -eq 0
	check_cnt "tw: 'socket cgroupv2' (deep) on a non-full socket: BREAK" tw-cgdeep -eq 0
fi
if [ "$HAVE_OWNER" = 1 ]; then
	check_cnt "tw: 'socket uid' on a non-full socket: BREAK" tw-uid -eq 0
	check_cnt "tw: 'socket gid' on a non-full socket: BREAK" tw-gid -eq 0
fi
for g in lsn udp; do
	check_cnt "$g: full socket found, mark matches" "$g-mark" -eq "$(cnt "$g-all")"
	check_cnt "$g: full socket, bound to an address: wildcard 0 matches" "$g-w0" -eq "$(cnt "$g-all")"
	if [ "$HAVE_CG" = 1 ]; then
		check_cnt "$g: full socket, cgroupv2 level $CGLVL matches" "$g-cg" -eq "$(cnt "$g-all")"
		check_cnt "$g: full socket, no ancestor at level $((CGLVL + 5)): BREAK" "$g-cgdeep" -eq 0
	fi
	if [ "$HAVE_OWNER" = 1 ]; then
		check_cnt "$g: full socket of root: socket uid 0 matches" "$g-uid" -eq "$(cnt "$g-all")"
		check_cnt "$g: full socket of root: socket gid 0 matches" "$g-gid" -eq "$(cnt "$g-all")"
	fi
done
check_cnt "none: no socket, nothing matches" none-t0 -eq 0
check_cnt "none: no socket, 'socket mark' BREAK" none-mark -eq 0
if [ "$HAVE_OWNER" = 1 ]; then
	check_cnt "none: no socket, 'socket uid' BREAK" none-uid -eq 0
fi

# --- tear down -----------------------------------------------------------------
# the router's netns goes first, ruleset and all; its end of the veth pair
# to the client goes with it
stop_peers
# shellcheck disable=SC2046 # pid list
kill $(ip netns pids "$nsrouter") 2>/dev/null
ip netns del "$nsrouter"
# shellcheck disable=SC2317 # through busywait
peer_gone() { ! ip -net "$nsclient" link show eth0 > /dev/null 2>&1; }
# Not at once: a request socket holds its (closed) listener, and that the
# netns, until the request's next SYN-ACK timer finds the listener gone,
# which is up to TCP_RTO_MAX (120 s) away when the test ran slowly.
if busywait 150000 peer_gone; then
	pass "the router's network namespace was dismantled (the client's veth end is gone)"
else
	leak_fail "the router's network namespace is still alive 150 s after 'ip netns del': something holds it (a leaked socket?)"
fi
cleanup_all_ns
cg_cleanup

# slack: sockets of other users of this kernel (none in the test VM)
# shellcheck disable=SC2317 # through busywait
tw_back() { [ "$(slab tw)" -le $((TW0 + 16)) ]; }
# shellcheck disable=SC2317 # through busywait
req_back() { [ "$(slab req)" -le $((REQ0 + 16)) ]; }
if busywait 30000 tw_back; then
	pass "TIME_WAIT sockets freed: slab objects $(slab tw) (baseline $TW0, $TW1 with the sockets)"
else
	leak_fail "TIME_WAIT sockets not freed: slab objects $(slab tw), baseline $TW0, $TW1 with the sockets"
fi
if busywait 30000 req_back; then
	pass "request sockets freed: slab objects $(slab req) (baseline $REQ0, $REQ1 with the sockets)"
else
	leak_fail "request sockets not freed: slab objects $(slab req), baseline $REQ0, $REQ1 with the sockets"
fi
# shellcheck disable=SC2317 # through busywait
alloc_back() { [ "$(sockstat_alloc)" -le $((ALLOC0 + 2)) ]; }
if busywait 10000 alloc_back; then
	pass "/proc/net/sockstat TCP alloc back to $(sockstat_alloc) (baseline $ALLOC0)"
else
	leak_fail "/proc/net/sockstat TCP alloc $(sockstat_alloc), baseline $ALLOC0"
fi

if [ ! -e /proc/modules ]; then
	log "no module support in this kernel: unload check not possible"
else
	loaded=""
	for m in $MODS; do
		[ -d "/sys/module/$m" ] && loaded="$loaded $m"
	done
	# shellcheck disable=SC2086 # module list
	if out=$(modprobe -r $loaded 2>&1); then
		pass "modules unloaded:$loaded"
	else
		# on an unfixed in-tree kernel the leaked namespace keeps its rules
		leak_fail "cannot unload$loaded: $out"
		grep -E "^(nft_socket|nft_tproxy|nftp_core|nf_tables) " /proc/modules | indent
	fi
	# shellcheck disable=SC2086 # module list
	modprobe -a $RELOAD || fail "cannot load $RELOAD again"
fi

exit "$ret"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nft socket uid / socket gid, nft-tproxy's extension (keys
# NFT_SOCKET_NFTP_UID/GID, include/uapi/linux/netfilter/nftp.h): the owner
# of the local socket an incoming packet belongs to, in prerouting and
# input, where meta skuid/skgid see nothing.
# client -- router (lib.sh). Servers in the router, TCP and UDP, IPv4 and
# IPv6, run as two users:
#   :9101  uid 1001, gid 1001
#   :9102  uid 1002, gid 1003
#   :9103  uid 1001, gid 1001, TCP IPv4 only, never accepts
# The client talks to each. Rules in prerouting and input count, per
# hook/proto/family/port, every packet and those matching socket uid 1001,
# socket uid 1002, socket gid 1001, socket gid 1003:
#   TCP SYNs             the listener, a full socket: the owner's keys match
#                        every one, the other user's none;
#   TCP data (PSH|ACK)   the accepted socket: the same, but for a segment
#                        that arrives before the server accepted (at most
#                        the first of a connection): such a socket has no
#                        file yet, no owner;
#   :9103 data           never accepted: no owner, no match;
#   UDP datagrams        the unconnected socket: the owner's keys match all.
# Request and TIME_WAIT sockets (no owner: no match) are counted by
# nft_socket_leak.sh, with its leak checks.
#
# Rules go through nft syntax when $NFT is nft-tproxy's patched nft, else
# (and once anyway) through nfnl-raw: `th dport 9101 socket uid 1001
# drop` must stop the client, `th dport 9102 socket uid 1001 drop` must
# not. Reference run (in-tree modules): the patched nft must refuse the
# keys with a message naming nft_socket, the kernel refuses them
# (EOPNOTSUPP; N/A).

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft python nfnl-raw
# shellcheck source=selftests/socket_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/socket_lib.sh"

checktool "setpriv --version" "run servers as other users (util-linux setpriv)"

COUNT=3
DOWN_TIMEOUT=3

if nft_ext socket-uid && nft_ext socket-gid; then
	VIA=nft
else
	VIA=raw
	echo "SKIP: nft syntax 'socket uid|gid': $NFT is not nft-tproxy's patched nft (scripts/build-userspace.sh); rules through nfnl-raw"
fi

topology || exit "$ksft_fail"

# the servers write their ready and log files as their own users
chmod 1777 "$TMPD"
umask 000
owner() { if [ "$1" = 9102 ]; then echo "1002 1003"; else echo "1001 1001"; fi; }
for port in 9101 9102; do
	read -r uid gid <<< "$(owner "$port")"
	PEER_WRAP=(setpriv --reuid="$uid" --regid="$gid" --clear-groups)
	for p in tcp udp; do
		PEER_NOWAIT=1 start_peer "$p-4-$port" "$nsrouter" "$p" "$R1_4:$port" --role "u$uid"
		PEER_NOWAIT=1 start_peer "$p-6-$port" "$nsrouter" "$p" "[$R1_6]:$port" --role "u$uid"
	done
	PEER_WRAP=()
	wait_peers {tcp,udp}-{4,6}-"$port" || exit "$ksft_fail"
done
PEER_WRAP=(setpriv --reuid=1001 --regid=1001 --clear-groups)
start_peer tcp-4-9103 "$nsrouter" tcp "$R1_4:9103" --no-accept || exit "$ksft_fail"
PEER_WRAP=()
umask 022

# talk V P PORT: COUNT messages from the client; the server (its user's
# role) must answer each
talk()
{
	local v=$1 p=$2 port=$3 r1 c
	if [ "$v" = 4 ]; then r1=$R1_4 c=$C4; else r1=$R1_6 c=$C6; fi
	read -r uid _ <<< "$(owner "$port")"
	next_sport
	expect_reply "IPv$v $p :$port (uid $uid)" "$nsclient" "$p" "$(hostport "$r1" "$port")" "$SPORT" \
		"$COUNT" "u$uid" "$(hostport "$r1" "$port")" "$(hostport "$c" "$SPORT")"
}

# --- nft syntax: counters -------------------------------------------------------

# rules HOOK: one chain's counters, named HOOK-PROTO-V-PORT-CLASS-KEY
rules()
{
	local hook=$1 p v port m n class sel
	for p in tcp udp; do
		for v in 4 6; do
			for port in 9101 9102 9103; do
				[ "$port" = 9103 ] && [ "$p:$v" != tcp:4 ] && continue
				for class in syn data all; do
					case $p:$class in
					tcp:syn) sel="tcp flags & (syn | ack) == syn" ;;
					tcp:data) sel="tcp flags & (psh | ack) == psh | ack" ;;
					udp:all) sel="" ;;
					*) continue ;;
					esac
					m="meta nfproto ipv$v meta l4proto $p th dport $port $sel"
					n="$hook-$p-$v-$port-$class"
					cat <<-EOF
					$m counter comment "$n-pkts"
					$m socket uid 1001 counter comment "$n-u1001"
					$m socket uid 1002 counter comment "$n-u1002"
					$m socket gid 1001 counter comment "$n-g1001"
					$m socket gid 1003 counter comment "$n-g1003"
					EOF
				done
			done
		done
	done
}

ruleset()
{
	cat <<-EOF
	flush ruleset
	table inet own {
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			$(rules pre)
		}
		chain in {
			type filter hook input priority filter; policy accept;
			$(rules in)
		}
	}
	EOF
}

# check_owner: the owner's keys match every packet (TCP data: all but one
# at most, which came before the accept; :9103 data: none), the other
# user's keys none; uid and gid of the owner match the same packets
check_owner()
{
	local hook p v port class n uid gid k pk want
	read_counters "$nsrouter"
	for hook in pre in; do
		for p in tcp udp; do
			for v in 4 6; do
				for port in 9101 9102 9103; do
					read -r uid gid <<< "$(owner "$port")"
					for class in syn data all; do
						n="$hook-$p-$v-$port-$class"
						pk=$(cnt "$n-pkts")
						[ "$pk" -ge 0 ] || continue
						if [ "$pk" -lt 1 ]; then
							fail "$n: no packets counted"
							continue
						fi
						for k in u1001 u1002 g1001 g1003; do
							case $port:$class:$k in
							9103:data:*)
								check_cnt "$n: never accepted, no owner: socket ${k:0:1}id ${k:1} matches none" \
									"$n-$k" -eq 0 ;;
							*:data:"u$uid" | *:data:"g$gid")
								check_cnt "$n: socket ${k:0:1}id ${k:1} matches all (one may precede accept)" \
									"$n-$k" -ge $((pk - 1)) ;;
							*:"u$uid" | *:"g$gid")
								check_cnt "$n: socket ${k:0:1}id ${k:1} matches every packet" \
									"$n-$k" -eq "$pk" ;;
							*)
								check_cnt "$n: socket ${k:0:1}id ${k:1} matches none" \
									"$n-$k" -eq 0 ;;
							esac
						done
						want=$(cnt "$n-u$uid")
						[ "$port" = 9103 ] || check_cnt "$n: socket gid $gid matches what uid $uid matched" \
							"$n-g$gid" -eq "$want"
					done
				done
			done
		done
	done
}

refused=0
if [ "$VIA" = nft ]; then
	if ruleset | load_ruleset_nsenter "$nsrouter" owner; then
		if [ "${NFTP_MODE:-}" = ref ]; then
			fail "patched nft installed socket uid/gid rules on the in-tree module"
		fi
		for v in 4 6; do
			for p in tcp udp; do
				for port in 9101 9102; do
					talk "$v" "$p" "$port"
				done
			done
		done
		# :9103 never accepts: the client's data gets no answer
		next_sport
		peer_client "$nsclient" tcp "$(hostport "$R1_4" 9103)" --sport "$SPORT" \
			--timeout "$DOWN_TIMEOUT" > /dev/null 2>&1 &&
			fail "IPv4 tcp :9103: an answer from a server that never accepts"
		check_owner
	else
		refused=1
		err=$(cat "$TMPD/last_load.err")
		if [ "${NFTP_MODE:-}" != ref ]; then
			fail "socket uid/gid ruleset refused"
			echo "$err" | head -n 5 | indent
		elif ! grep -q 'nft_socket' <<< "$err"; then
			fail "in-tree nft_socket: socket uid refused, but the message does not name nft_socket:"
			echo "$err" | head -n 5 | indent
		elif [ -n "$(ip netns exec "$nsrouter" "$NFT" list ruleset)" ]; then
			fail "in-tree nft_socket: socket uid refused, but something was installed"
		else
			pass "in-tree nft_socket: patched nft refuses socket uid/gid, nothing installed"
			echo "$err" | head -n 3 | indent
		fi
	fi
	flush_ruleset "$nsrouter"
fi

# --- nfnl-raw: drop by owner -------------------------------------------------

# raw_drop V P KEY VALUE: in prerouting, `th dport 9101 socket KEY VALUE
# drop` and the same for :9102, through nfnl-raw; the client must be
# stopped at the owner's port and answered at the other
raw_drop()
{
	local v=$1 p=$2 key=$3 val=$4 port out rc desc r1
	if [ "$v" = 4 ]; then r1=$R1_4; else r1=$R1_6; fi
	load_ruleset "$nsrouter" "raw base" <<-EOF || return
	flush ruleset
	table inet own {
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
		}
	}
	EOF
	for port in 9101 9102; do
		desc="nfnl-raw: IPv$v $p 'th dport $port socket $key $val drop'"
		out=$(ip netns exec "$nsrouter" "$NFNL_RAW" --table-family inet --table own --existing \
			--chain pre --nfproto "ipv$v" --l4proto "$p" --dport "$port" --socket-key "$key" \
			--socket-value "$val" --verdict drop 2>&1)
		rc=$?
		if [ "$rc" -ne 0 ]; then
			if [ "${NFTP_MODE:-}" = ref ] && [[ "$out" == "REJECTED errno=EOPNOTSUPP "* ]]; then
				echo "N/A: socket $key: the in-tree nft_socket of $(uname -r) refuses the key ($out)"
				return 2
			fi
			fail "$desc: $out"
			return
		fi
	done
	[ "${NFTP_MODE:-}" = ref ] && fail "in-tree nft_socket took socket $key"
	# the owner's port: the packets are dropped, nothing answers
	next_sport
	desc="nfnl-raw: IPv$v $p socket $key $val drop"
	if peer_client "$nsclient" "$p" "$(hostport "$r1" 9101)" --sport "$SPORT" \
		--timeout "$DOWN_TIMEOUT" > "$TMPD/raw.out" 2>&1; then
		fail "$desc: the client got an answer from :9101, whose owner it is"
		indent < "$TMPD/raw.out"
	else
		pass "$desc: :9101 (uid 1001, gid 1001) dropped"
	fi
	talk "$v" "$p" 9102
	flush_ruleset "$nsrouter"
}

# raw_drop returns 2 in a reference run, where the keys are refused: once
# is enough to show it
if [ "$VIA" = raw ]; then
	for v in 4 6; do
		for p in tcp udp; do
			raw_drop "$v" "$p" uid 1001 && raw_drop "$v" "$p" gid 1001 ||
				[ $? -ne 2 ] || break 2
		done
	done
else
	# the kernel side once through nfnl-raw, whatever nft is
	raw_drop 4 tcp uid 1001
	[ "$refused" = 1 ] || raw_drop 6 udp gid 1001
fi

exit "$ret"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nft socket: every key, matching and not matching, in each hook that takes
# it (prerouting, input, output), TCP and UDP, IPv4 and IPv6.
# client -- router (lib.sh); servers in the router, each in a cgroup:
#
#   port  socket                                      cgroup
#   9001  A: IP_TRANSPARENT, SO_MARK 0x2a, wildcard   $CG/a/b
#   9002  B: plain, SO_MARK 0x2b, bound to 10.0.1.1   $CG/a/c
#   9003  W: plain, no mark, wildcard (UDP only)      $CG/w
#
# The client talks to each (prerouting/input: packets to the port, the
# router looks the socket up; output: the servers' answers, which carry
# their socket). Rules count per hook/family/proto/port/key value:
#   socket transparent 1|0, socket mark 0x2a|0x2b, socket wildcard 1|0
#   (TCP: SYNs only in prerouting/input, where they meet the listener; in
#   output an accepted TCP socket is never a wildcard one), socket cgroupv2
#   level N "$CG/a" | "$CG/a/b" | "$CG/a/c" | "$CG/a/b/d" (deeper than the
#   socket: no match), and `meta mark set socket mark` (--restore-skmark):
#   a later chain must see that mark on the packet (input chain after
#   prerouting; in output after `meta mark set 0`).
# Then in a cgroup namespace rooted at $CG/ns (unshare -C, own cgroup2
# mount): rules loaded there count levels from the namespace root and must
# match exactly like the absolute rules loaded from outside.
# The in-tree module of kernels before 5.13 has no cgroupv2 (N/A there).

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft python ping
# shellcheck source=selftests/socket_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/socket_lib.sh"

checktool "nsenter --version" "run nft in a netns without remounting /sys (util-linux nsenter)"
checktool "unshare --version" "make a cgroup namespace (util-linux unshare)"

on_exit_hook=socket_exit

topology || exit "$ksft_fail"

HAVE_CG=1
if ! cg_setup nftp-keys; then
	HAVE_CG=0
	fail "cgroup v2 not usable here: cannot test socket cgroupv2"
fi
if [ "$HAVE_CG" = 1 ]; then
	mkdir -p "$CGDIR/a/b/d" "$CGDIR/a/c" "$CGDIR/w" "$CGDIR/ns/a/b" "$CGDIR/ns/a/c"
fi
# shellcheck disable=SC2317 # called by the cases below
cgdir() { if [ "$HAVE_CG" = 1 ]; then echo "$CGDIR/$1"; else echo ""; fi; }

# the servers: socket_lib.sh router_peer, each in its cgroup
PEER_NOWAIT=1
for p in tcp udp; do
	router_peer "A-$p-4" a/b "$p" "0.0.0.0:9001" --transparent --mark 0x2a
	router_peer "A-$p-6" a/b "$p" "[::]:9001" --transparent --mark 0x2a
	router_peer "B-$p-4" a/c "$p" "$R1_4:9002" --mark 0x2b
	router_peer "B-$p-6" a/c "$p" "[$R1_6]:9002" --mark 0x2b
done
router_peer "W-udp-4" w udp "0.0.0.0:9003"
router_peer "W-udp-6" w udp "[::]:9003"
PEER_NOWAIT=0
wait_peers {A,B}-{tcp,udp}-{4,6} W-udp-{4,6} || exit "$ksft_fail"

# ------------------------------------------------------------------ rules
# rules HOOK: the counting rules of one chain. Name of each counter:
# HOOK-PROTO-V-PORT-KEY (e.g. pre-tcp-4-9001-t1).
rules()
{
	local hook=$1 p v nfp port dir m n syn
	dir=dport
	[ "$hook" = out ] && dir=sport
	for p in tcp udp; do
		for v in 4 6; do
			nfp=ipv$v
			for port in 9001 9002 9003; do
				[ "$p" = tcp ] && [ "$port" = 9003 ] && continue
				m="meta nfproto $nfp meta l4proto $p th $dir $port"
				n="$hook-$p-$v-$port"
				syn=""
				[ "$p" = tcp ] && [ "$hook" != out ] && syn="tcp flags & (syn | ack) == syn"
				cat <<-EOF
				$m counter comment "$n-all"
				$m socket transparent 1 counter comment "$n-t1"
				$m socket transparent 0 counter comment "$n-t0"
				$m socket mark 0x2a counter comment "$n-m2a"
				$m socket mark 0x2b counter comment "$n-m2b"
				$m $syn socket wildcard 1 counter comment "$n-w1"
				$m $syn socket wildcard 0 counter comment "$n-w0"
				EOF
				if [ "$HAVE_CG" = 1 ]; then
					cat <<-EOF
					$m socket cgroupv2 level $((CGLVL + 1)) "$CGREL/a" counter comment "$n-cga"
					$m socket cgroupv2 level $((CGLVL + 2)) "$CGREL/a/b" counter comment "$n-cgab"
					$m socket cgroupv2 level $((CGLVL + 2)) "$CGREL/a/c" counter comment "$n-cgac"
					$m socket cgroupv2 level $((CGLVL + 3)) "$CGREL/a/b/d" counter comment "$n-cgabd"
					EOF
				fi
				# --restore-skmark
				if [ "$hook" = pre ]; then
					echo "$m meta mark set socket mark"
				elif [ "$hook" = out ]; then
					echo "$m meta mark set 0 meta mark set socket mark"
					echo "$m meta mark 0x2a counter comment \"$n-r2a\""
					echo "$m meta mark 0x2b counter comment \"$n-r2b\""
				fi
			done
		done
	done
}

# the input chain also counts the marks prerouting restored
restored_rules()
{
	local p v port m n
	for p in tcp udp; do
		for v in 4 6; do
			for port in 9001 9002; do
				m="meta nfproto ipv$v meta l4proto $p th dport $port"
				n="pre-$p-$v-$port"
				echo "$m meta mark 0x2a counter comment \"$n-r2a\""
				echo "$m meta mark 0x2b counter comment \"$n-r2b\""
			done
		done
	done
}

ruleset()
{
	local out_chain=""
	if [ "$HAVE_OUT" = 1 ]; then
		out_chain="chain out {
			type filter hook output priority filter; policy accept;
			$(rules out)
		}"
	fi
	cat <<-EOF
	flush ruleset
	table inet keys {
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			$(rules pre)
		}
		chain in {
			type filter hook input priority filter; policy accept;
			$(restored_rules)
			$(rules in)
		}
		$out_chain
	}
	EOF
}

# The output chain needs socket in output (in-tree: 5.18?) and cgroupv2
# (in-tree: 5.13): a reference run on an older kernel tests what it has,
# and says N/A for the rest. Our modules must take everything.
HAVE_OUT=1
try_load() { ruleset | load_ruleset_nsenter "$nsrouter" "keys"; }
# load_refused DESC ERR: the ruleset will not load: fail, show why, stop
load_refused() { fail "$1"; echo "$2" | indent; exit "$ret"; }
loaded=1
if ! try_load; then
	loaded=0
	err=$(head -n 3 "$TMPD/last_load.err")
	if [ "$HAVE_CG" = 1 ] && HAVE_CG=0 try_load; then
		cgroupv2_lacks "socket cgroupv2" "$err" ||
			load_refused "ruleset with socket cgroupv2 refused" "$err"
		HAVE_CG=0
	elif HAVE_CG=0 HAVE_OUT=0 try_load; then
		ref_lacks "socket in output chains (ruleset refused: $err)" 1 ||
			load_refused "ruleset with socket in output refused" "$err"
		HAVE_OUT=0
		if [ "$HAVE_CG" = 1 ] && ! HAVE_OUT=0 try_load; then
			err=$(head -n 3 "$TMPD/last_load.err")
			cgroupv2_lacks "socket cgroupv2" "$err" ||
				load_refused "ruleset with socket cgroupv2 refused" "$err"
			HAVE_CG=0
		fi
	else
		load_refused "keys ruleset refused" "$err"
	fi
fi
if [ "$loaded" = 0 ] && ! try_load; then
	load_refused "keys ruleset refused" "$(cat "$TMPD/last_load.err")"
fi
[ "$HAVE_CG" = 1 ] && sock_cgroup_taken
log "ruleset: $(nft_nsenter "$nsrouter" list ruleset | grep -c counter) counting rules (cgroupv2: $HAVE_CG, output: $HAVE_OUT)"

# ------------------------------------------------------------------ traffic
for v in 4 6; do
	if [ "$v" = 4 ]; then C=$C4 R1=$R1_4; else C=$C6 R1=$R1_6; fi
	for p in tcp udp; do
		for port in 9001 9002 9003; do
			[ "$p" = tcp ] && [ "$port" = 9003 ] && continue
			case $port in 9001) role=A ;; 9002) role=B ;; 9003) role=W ;; esac
			# UDP: one datagram per client: the transparent server A
			# answers from a short-lived socket bound to R1:9001, which
			# (more specific) could catch a second datagram
			n=2
			[ "$p" = udp ] && n=1
			next_sport
			expect_reply "IPv$v $p client -> router $role :$port" "$nsclient" "$p" \
				"$(hostport "$R1" $port)" "$SPORT" "$n" "$role-$p-$v" "$(hostport "$R1" $port)" \
				"$(hostport "$C" "$SPORT")"
		done
	done
done
# let the TCP connections finish closing
sleep 1
read_counters "$nsrouter"

# expect HOOK P V PORT KEY... : KEY=>0 or KEY=0, e.g. t1+ t0=
expect()
{
	local hook=$1 p=$2 v=$3 port=$4 k n what
	shift 4
	n="$hook-$p-$v-$port"
	what="$hook IPv$v $p :$port"
	for k in "$@"; do
		case $k in
		*+) check_cnt "$what: 'socket ${k%+}' matches" "$n-${k%+}" -gt 0 ;;
		*=) check_cnt "$what: 'socket ${k%=}' does not match" "$n-${k%=}" -eq 0 ;;
		esac
	done
}

hooks="pre in"
[ "$HAVE_OUT" = 1 ] && hooks="pre in out"
for hook in $hooks; do
	for v in 4 6; do
		for p in tcp udp; do
			w_a="w1+ w0="
			if [ "$hook" = out ]; then
				# answers come from connected/accepted TCP sockets and,
				# for A's UDP, from a socket bound to the original dst
				w_a="w1= w0+"
			fi
			# shellcheck disable=SC2086 # w_a: no word or two
			expect "$hook" "$p" "$v" 9001 all+ t1+ t0= m2a+ m2b= $w_a
			expect "$hook" "$p" "$v" 9002 all+ t1= t0+ m2a= m2b+ w1= w0+
			[ "$p" = udp ] && expect "$hook" "$p" "$v" 9003 all+ t1= t0+ m2a= m2b= w1+ w0=
			if [ "$HAVE_CG" = 1 ]; then
				expect "$hook" "$p" "$v" 9001 cga+ cgab+ cgac= cgabd=
				expect "$hook" "$p" "$v" 9002 cga+ cgab= cgac+ cgabd=
				[ "$p" = udp ] && expect "$hook" "$p" "$v" 9003 cga= cgab= cgac= cgabd=
			fi
			if [ "$hook" != in ]; then
				# 'meta mark set socket mark': seen by the input chain
				# (prerouting), by a later rule (output)
				check_cnt "$hook IPv$v $p :9001: 'meta mark set socket mark' put 0x2a on the packets" \
					"$hook-$p-$v-9001-r2a" -gt 0
				check_cnt "$hook IPv$v $p :9001: ... and never 0x2b" "$hook-$p-$v-9001-r2b" -eq 0
				check_cnt "$hook IPv$v $p :9002: 'meta mark set socket mark' put 0x2b on the packets" \
					"$hook-$p-$v-9002-r2b" -gt 0
				check_cnt "$hook IPv$v $p :9002: ... and never 0x2a" "$hook-$p-$v-9002-r2a" -eq 0
			fi
		done
	done
done

# ------------------------------------------------------------------ cgroupns
# A cgroup namespace rooted at $CG/ns, with its own cgroup2 mount: nft there
# names cgroups relative to the namespace root and counts levels from it.
cgns_case()
{
	local desc="cgroup namespace rooted at $CGREL/ns" f out rc=0
	PEER_CGROUP=$CGDIR/ns/a/b start_peer N-tcp-4 "$nsrouter" tcp "0.0.0.0:9004" || return
	PEER_CGROUP=$CGDIR/ns/a/b start_peer N-udp-6 "$nsrouter" udp "[::]:9004" || return

	load_ruleset_nsenter "$nsrouter" "$desc: absolute rules" <<-EOF || { fail "$desc: absolute rules refused"; indent < "$TMPD/last_load.err"; return; }
	flush ruleset
	table inet cgabs {
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			th dport 9004 socket cgroupv2 level $((CGLVL + 1)) "$CGREL/ns" counter comment "abs-ns"
			th dport 9004 socket cgroupv2 level $((CGLVL + 2)) "$CGREL/ns/a" counter comment "abs-a"
			th dport 9004 socket cgroupv2 level $((CGLVL + 3)) "$CGREL/ns/a/b" counter comment "abs-ab"
		}
	}
	EOF
	# the same cgroups, as nft inside the namespace names them
	f="$TMPD/cgns.nft"
	cat > "$f" <<-'EOF'
	table inet cgns {
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			th dport 9004 socket cgroupv2 level 1 "a" counter comment "ns-a"
			th dport 9004 socket cgroupv2 level 2 "a/b" counter comment "ns-ab"
			th dport 9004 socket cgroupv2 level 2 "a/c" counter comment "ns-ac"
			th dport 9004 socket cgroupv2 level 3 "a/b/d" counter comment "ns-abd"
		}
	}
	EOF
	mkdir -p "$CGDIR/ns/a/b/d"
	# a shell in $CG/ns unshares cgroup and mount namespaces, mounts its
	# cgroup2 view on /sys/fs/cgroup and runs nft in the router's netns
	# shellcheck disable=SC2016 # for the inner shell
	out=$(in_cgroup "$CGDIR/ns" unshare -Cm --propagation private sh -c '
		# (the same superblock cannot be mounted over itself: EBUSY)
		umount -l /sys/fs/cgroup 2>/dev/null
		mount -t cgroup2 none /sys/fs/cgroup || exit 2
		test -d /sys/fs/cgroup/a/b || { echo "namespace root is not $0"; exit 2; }
		nsenter --net="/run/netns/$1" "$2" -f "$3" || exit 1
		nsenter --net="/run/netns/$1" "$2" list table inet cgns' "$CGDIR/ns" "$nsrouter" "$NFT" "$f" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$desc: loading rules inside the namespace failed (exit $rc)"
		echo "$out" | indent
		return
	fi
	if grep -q 'level 2 "a/b"' <<< "$out"; then
		pass "$desc: nft inside lists the rule back as 'level 2 \"a/b\"'"
	else
		fail "$desc: nft inside lists the rule as:"
		echo "$out" | grep cgroupv2 | indent
	fi
	next_sport
	expect_reply "$desc: client -> router :9004 (TCP, v4)" "$nsclient" tcp "$R1_4:9004" "$SPORT" 2 \
		N-tcp-4 "$R1_4:9004" "$C4:$SPORT"
	next_sport
	expect_reply "$desc: client -> router :9004 (UDP, v6)" "$nsclient" udp "[$R1_6]:9004" "$SPORT" 1 \
		N-udp-6 "[$R1_6]:9004" "[$C6]:$SPORT"
	sleep 0.5
	read_counters "$nsrouter"
	check_cnt "$desc: absolute rule for $CGREL/ns matches" abs-ns -gt 0
	check_cnt "$desc: absolute rule for $CGREL/ns/a matches" abs-a -gt 0
	check_cnt "$desc: absolute rule for $CGREL/ns/a/b matches" abs-ab -gt 0
	check_cnt "$desc: rule 'level 1 \"a\"' loaded inside matches as often as the absolute one" \
		ns-a -eq "$(cnt abs-a)"
	check_cnt "$desc: rule 'level 2 \"a/b\"' loaded inside matches as often as the absolute one" \
		ns-ab -eq "$(cnt abs-ab)"
	check_cnt "$desc: rule 'level 2 \"a/c\"' loaded inside does not match" ns-ac -eq 0
	check_cnt "$desc: rule 'level 3 \"a/b/d\"' (deeper than the socket) does not match" ns-abd -eq 0
}

if [ "$HAVE_CG" = 1 ]; then
	cgns_case
fi

flush_ruleset "$nsrouter"
exit "$ret"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nft tproxy fail-closed, nft-tproxy's extension (NFTP_TPROXY_F_FAIL_CLOSED,
# include/uapi/linux/netfilter/nftp.h): a packet the rule could divert
# but finds no transparent socket for is dropped, not let through.
# client -- router -- server1 (lib.sh). The router diverts client ->
# server1:8080, TCP and UDP, IPv4 and IPv6, with
#   meta nfproto ipvV meta l4proto P th dport 8080 \
#           tproxy ip|ip6 to :12345 fail-closed meta mark set 1 accept
# to a transparent proxy on :12345. For each protocol and family:
#   proxy up         the proxy answers, original destination intact;
#   proxy stopped    the client gets no answer and server1 receives nothing:
#                    the rule saw the packets (a counter before it), none
#                    was forwarded (a counter in forward), server1 logged
#                    nothing from the client;
#   proxy restarted  the proxy answers again;
#   server1:8081     (no rule matches) server1 answers, proxy stopped;
#   ICMP echo        through a fail-closed rule (not TCP/UDP: not the
#                    rule's) reaches server1;
#   plain rule       (no fail-closed), proxy stopped: server1 answers, as
#                    upstream (fail-open).
# And: a v4 fail-closed rule without a family match leaves IPv6 alone.
#
# Rules go through nft syntax when $NFT is nft-tproxy's patched nft (its
# `nft -V` names fail-closed), else through nfnl-raw, and the nft syntax
# is reported skipped; the family case always goes through nfnl-raw.
# Reference run (in-tree modules): the patched nft must refuse the rule,
# with a message naming nft_tproxy, and install nothing; through
# nfnl-raw the in-tree module takes the rule and ignores the flag (N/A:
# the stopped proxy's traffic reaches server1, which is why nft refuses).

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft python ping nfnl-raw
# shellcheck source=selftests/socket_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/socket_lib.sh"

PORT=12345
COUNT=2
DOWN_TIMEOUT=3		# seconds a client waits for an answer that must not come

if nft_ext fail-closed; then
	VIA=nft
else
	VIA=raw
	echo "SKIP: nft syntax 'tproxy ... fail-closed': $NFT is not nft-tproxy's patched nft (scripts/build-userspace.sh); rules through nfnl-raw"
fi

topology || exit "$ksft_fail"

# server1 on :8080 and :8081, four at a time (python starts slowly under TCG)
for port in 8080 8081; do
	id=server1
	[ "$port" = 8081 ] && id=other
	for p in tcp udp; do
		PEER_NOWAIT=1 start_peer "$id-$p-4" "$nsserver1" "$p" "$S1_4:$port" --role server1
		PEER_NOWAIT=1 start_peer "$id-$p-6" "$nsserver1" "$p" "[$S1_6]:$port" --role server1
	done
	wait_peers "$id"-{tcp,udp}-{4,6} || exit "$ksft_fail"
done

# fam V: the tproxy family keyword of IPv$V
fam() { if [ "$1" = 4 ]; then echo ip; else echo ip6; fi; }

# raw_rule DESC nfnl-raw args...: append a rule to an existing chain
raw_rule()
{
	local desc=$1 out
	shift
	if ! out=$(ip netns exec "$nsrouter" "$NFNL_RAW" --table-family inet "$@" 2>&1); then
		fail "$desc: nfnl-raw: $out"
		return 1
	fi
}

# fc_ruleset FLAGS VIA: the router's ruleset, the tproxy rules only with VIA=nft
fc_ruleset()
{
	local flags=$1 via=$2 p v m
	echo "flush ruleset"
	echo "table inet fc {"
	echo "chain divert { type filter hook prerouting priority mangle; policy accept;"
	for p in tcp udp; do
		for v in 4 6; do
			m="meta nfproto ipv$v meta l4proto $p th dport 8080"
			echo "$m counter comment \"seen-$p-$v\""
			[ "$via" = nft ] &&
				echo "$m tproxy $(fam $v) to :$PORT $flags meta mark set 1 accept"
		done
	done
	echo "}"
	echo "chain leak { type filter hook forward priority filter; policy accept;"
	for p in tcp udp; do
		for v in 4 6; do
			echo "meta nfproto ipv$v meta l4proto $p th dport 8080 counter comment \"leak-$p-$v\""
		done
	done
	echo "}"
	echo "}"
}

# fc_load DESC FLAGS [VIA]: the router's ruleset; FLAGS is "fail-closed" or
# "" (a plain rule); counters seen-P-V (before the tproxy rules) and
# leak-P-V (forwarded to server1:8080)
fc_load()
{
	local desc=$1 flags=$2 via=${3:-$VIA} p v
	load_ruleset "$nsrouter" "$desc" < <(fc_ruleset "$flags" "$via") || return 1
	[ "$via" = raw ] || return 0
	local fl=()
	[ -n "$flags" ] && fl=(--tproxy-flags 1)
	for p in tcp udp; do
		for v in 4 6; do
			raw_rule "$desc" --table fc --existing --chain divert --nfproto "ipv$v" --l4proto "$p" \
				--dport 8080 --tproxy-family "$(fam $v)" --port "$PORT" "${fl[@]}" \
				--mark 1 --verdict accept || return 1
		done
	done
}

# start_proxy P V: the transparent proxy on :12345 (PROXY_PID)
start_proxy()
{
	local any=0.0.0.0
	[ "$2" = 6 ] && any=::
	start_peer "proxy-$1-$2" "$nsrouter" "$1" "$(hostport "$any" "$PORT")" --role proxy --transparent || return 1
	PROXY_PID=$PEER_PID
}

# answered DESC P V DPORT WHO: a client to server1:DPORT gets COUNT answers from WHO
answered()
{
	local desc=$1 p=$2 v=$3 dport=$4 who=$5 s1 c dst
	if [ "$v" = 4 ]; then s1=$S1_4 c=$C4; else s1=$S1_6 c=$C6; fi
	dst=$(hostport "$s1" "$dport")
	next_sport
	expect_reply "IPv$v $p $desc" "$nsclient" "$p" "$dst" "$SPORT" "$COUNT" \
		"$who" "$dst" "$(hostport "$c" "$SPORT")"
}

# unanswered DESC P V: a client to server1:8080 gets nothing; the rule saw
# its packets, none was forwarded, server1 logged nothing from it
unanswered()
{
	local desc="IPv$3 $2 $1" p=$2 v=$3 s1 c dst peer out rc=0 seen0 leak0
	if [ "$v" = 4 ]; then s1=$S1_4 c=$C4; else s1=$S1_6 c=$C6; fi
	dst=$(hostport "$s1" 8080)
	read_counters "$nsrouter"
	seen0=$(cnt "seen-$p-$v") leak0=$(cnt "leak-$p-$v")
	next_sport
	peer=$(hostport "$c" "$SPORT")
	out=$(IO_TIMEOUT=$DOWN_TIMEOUT peer_client "$nsclient" "$p" "$dst" --sport "$SPORT" 2>&1) || rc=$?
	read_counters "$nsrouter"
	local seen=$(($(cnt "seen-$p-$v") - seen0)) leak=$(($(cnt "leak-$p-$v") - leak0))
	if [ "$rc" -ne 0 ] && [ "$seen" -gt 0 ] && [ "$leak" -eq 0 ] &&
	   ! peer_log_grep "server1-$p-$v" "peer=$peer"; then
		pass "$desc: no answer, $seen packets seen by the rule, 0 forwarded, server1 got nothing"
		return 0
	fi
	fail "$desc: client exit $rc, $seen packets seen, $leak forwarded to server1 (expected > 0 seen, 0 forwarded, no answer)"
	echo "$out" | indent
	grep -F "peer=$peer" "$TMPD/server1-$p-$v.log" | indent
	return 1
}

# ICMP echo through a fail-closed rule: not TCP/UDP, not the rule's
icmp_passes()
{
	local v=$1 s1 l4 echos s0 sn rc=0
	if [ "$v" = 4 ]; then
		s1=$S1_4 l4="meta l4proto icmp" echos=(Icmp InEchos)
	else
		s1=$S1_6 l4="meta l4proto ipv6-icmp" echos=(6 Icmp6InEchos)
	fi
	local desc="IPv$v ICMP echo through '$l4 tproxy ... fail-closed'" rule=""
	[ "$VIA" = nft ] &&
		rule="meta nfproto ipv$v $l4 tproxy $(fam "$v") to :$PORT fail-closed meta mark set 1 accept"
	load_ruleset "$nsrouter" "$desc" <<-EOF || return
	flush ruleset
	table inet fc {
		chain divert {
			type filter hook prerouting priority mangle; policy accept;
			$rule
		}
	}
	EOF
	if [ "$VIA" = raw ]; then
		raw_rule "$desc" --table fc --existing --chain divert --nfproto "ipv$v" --l4proto "${l4##* }" \
			--tproxy-family "$(fam "$v")" --port "$PORT" --tproxy-flags 1 --mark 1 --verdict accept || return
	fi
	s0=$(snmp "$nsserver1" "${echos[@]}")
	ip netns exec "$nsclient" ping -c 2 -i 0.2 -W 5 -q "$s1" > /dev/null 2>&1 || rc=$?
	sn=$(snmp "$nsserver1" "${echos[@]}")
	if [ "$rc" -eq 0 ] && [ "$((sn - s0))" -eq 2 ]; then
		pass "$desc: server1 got both echo requests and answered"
	else
		fail "$desc: ping exit $rc, server1 got $((sn - s0)) echo requests, expected 2"
	fi
}

# --- reference run: the in-tree module ignores the flag ---------------------
if [ "${NFTP_MODE:-}" = ref ]; then
	if [ "$VIA" = nft ]; then
		flush_ruleset "$nsrouter"
		if out=$(fc_ruleset fail-closed nft | ip netns exec "$nsrouter" "$NFT" -f - 2>&1); then
			fail "patched nft installed a fail-closed rule on the in-tree module"
			ip netns exec "$nsrouter" "$NFT" list ruleset | indent
		elif ! grep -q 'nft_tproxy' <<< "$out"; then
			fail "fail-closed refused, but the message does not name nft_tproxy:"
			echo "$out" | indent
		elif [ -n "$(ip netns exec "$nsrouter" "$NFT" list ruleset)" ]; then
			fail "fail-closed refused, but something was installed"
			ip netns exec "$nsrouter" "$NFT" list ruleset | indent
		else
			pass "in-tree nft_tproxy: patched nft refuses fail-closed, nothing installed"
			grep -m 3 . <<< "$out" | indent
		fi
	fi
	# what nft refuses to do: the flag is dropped on the floor
	if fc_load "raw fail-closed rule" fail-closed raw; then
		next_sport
		if peer_client "$nsclient" tcp "$(hostport "$S1_4" 8080)" --sport "$SPORT" \
			--timeout "$DOWN_TIMEOUT" > /dev/null 2>&1; then
			echo "N/A: tproxy fail-closed: the in-tree nft_tproxy of $(uname -r) took the rule and ignored the flag: server1 answered with no proxy running"
		else
			fail "the in-tree module dropped traffic for a rule with the flag it does not know"
		fi
	fi
	flush_ruleset "$nsrouter"
	exit "$ret"
fi

# --- our modules ----------------------------------------------------------------
for p in tcp udp; do
	for v in 4 6; do
		fc_load "IPv$v $p fail-closed" fail-closed || continue
		start_proxy "$p" "$v" || continue
		answered "fail-closed, proxy up: the proxy answers" "$p" "$v" 8080 proxy
		stop_peer "$PROXY_PID"
		unanswered "fail-closed, proxy stopped:" "$p" "$v"
		answered "fail-closed, proxy stopped: server1:8081 (no rule) answers" "$p" "$v" 8081 server1
		start_proxy "$p" "$v" || continue
		answered "fail-closed, proxy restarted: the proxy answers" "$p" "$v" 8080 proxy
		stop_peer "$PROXY_PID"

		fc_load "IPv$v $p plain" "" || continue
		answered "plain rule, proxy stopped: server1 answers (fail-open)" "$p" "$v" 8080 server1
	done
done

for v in 4 6; do
	icmp_passes "$v"
done

# the kernel side once through nfnl-raw, whatever nft is
if [ "$VIA" = nft ]; then
	VIA=raw
	fc_load "IPv4 tcp fail-closed, nfnl-raw" fail-closed &&
		unanswered "fail-closed (nfnl-raw), no proxy:" tcp 4
	VIA=nft
fi

# a v4 rule without a family match sees IPv6 packets: not its own, so the
# v6 rule behind it must still divert them
desc="IPv6 udp behind 'tproxy ip to :$PORT fail-closed' without a family match"
if load_ruleset "$nsrouter" "$desc" <<-EOF &&
	flush ruleset
	table inet fc {
		chain divert {
			type filter hook prerouting priority mangle; policy accept;
		}
	}
	EOF
   raw_rule "$desc" --table fc --existing --chain divert --l4proto udp --dport 8080 \
	--tproxy-family ip --port "$PORT" --tproxy-flags 1 --mark 1 --verdict accept &&
   ip netns exec "$nsrouter" "$NFT" add rule inet fc divert meta nfproto ipv6 meta l4proto udp \
	th dport 8080 tproxy ip6 to :"$PORT" meta mark set 1 accept &&
   start_proxy udp 6; then
	answered "behind a v4 fail-closed rule: the v6 rule diverts" udp 6 8080 proxy
	stop_peer "$PROXY_PID"
fi

flush_ruleset "$nsrouter"
exit "$ret"

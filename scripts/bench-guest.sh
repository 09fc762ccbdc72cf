#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make bench, in the guest (scripts/bench.sh boots it): a client and a
# server network namespace joined by a veth pair, and for each round, each
# workload and each setup, one nftp-bench run between the kinsn plugin's
# markers.  Each run is logged as "run SETUP WORK UNITS" to
# $NFTP_OUT/runs, in the order of the markers in the plugin's log.
#
# Setups (the client sends to 198.51.100.1:80 unless said otherwise; the
# server's socket is 0.0.0.0:3129, IP_TRANSPARENT, in every setup):
#   direct    no rules: the client sends to the server's own 10.0.0.2:3129
#   chain     as direct, through a prerouting chain whose one rule misses
#   nft       socket transparent 1 meta mark set 1 accept, then tproxy to
#             :3129 meta mark set 1 accept; ip rule fwmark 1 lookup 100,
#             local 0.0.0.0/0 dev lo table 100 (the modules loaded: ours,
#             or the in-tree ones with --ref)
#   localroute  the same with `tproxy ... local-route`: no mark, no ip
#             rule, no table 100 (ours only)
#   iptables  -m socket --transparent -j MARK, -j TPROXY, the same routing
#   redirect  nat prerouting: redirect to :3129
#   rules     as nft, with BENCH_PORTS proxied ports (default 1000), a
#             tproxy rule each; the client sends to the last one
#   set       as rules, the ports in one set of one rule
# Environment: BENCH_ROUNDS, BENCH_WORKS, BENCH_SETUPS, BENCH_UNITS_<work>,
# BENCH_WARMUP, BENCH_FLOWS (idle established TCP flows, tcp/bulk only),
# BENCH_PROFILE (copy /proc/kallsyms out, for scripts/bench-report --profile).
set -euo pipefail

tools=${NFTP_BUILD_TOOLS:?}
bench=$tools/nftp-bench
nft=${NFT:-nft}
rounds=${BENCH_ROUNDS:-3}
works=${BENCH_WORKS:-udp tcp bulk}
setups=${BENCH_SETUPS:-direct nft localroute iptables redirect}
warmup=${BENCH_WARMUP:-200}
flows=${BENCH_FLOWS:-0}
ports=${BENCH_PORTS:-1000}
runs=${NFTP_OUT:?}/runs
: >"$runs"

# A fresh pair of namespaces for every run: state a setup leaves behind
# (a policy rule once added makes every later route lookup take the rules'
# slow path, even after it is deleted) must not reach the next one.
topology() {
	ip netns add bc
	ip netns add bs
	ip link add v0 netns bc type veth peer name v1 netns bs
	ip -n bc addr add 10.0.0.1/24 dev v0
	ip -n bs addr add 10.0.0.2/24 dev v1
	# direct with flows: the idle flows' further destinations (nftp-bench)
	if ((flows)); then
		ip -n bs addr add 10.0.0.3/24 dev v1
		ip -n bs addr add 10.0.0.4/24 dev v1
	fi
	for ns in bc bs; do
		ip -n "$ns" link set lo up
	done
	ip -n bc link set v0 up
	ip -n bs link set v1 up
	ip -n bc route add default via 10.0.0.2
	# short connections: the client's TIME_WAIT ports come back at once
	ip netns exec bc sysctl -qw net.ipv4.tcp_tw_reuse=1 \
		net.ipv4.ip_local_port_range="1024 65000"
	ip netns exec bs sysctl -qw net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.v1.rp_filter=0
}

classic_routes() {
	ip -n bs rule add fwmark 1 lookup 100
	ip -n bs route add local 0.0.0.0/0 dev lo table 100
}

# ruleset TYPE PRIORITY RULE...: table ip bench, its one prerouting chain
ruleset() {
	local type=$1 prio=$2
	shift 2
	{
		echo 'table ip bench {'
		echo 'chain pre {'
		echo "type $type hook prerouting priority $prio; policy accept;"
		printf '%s\n' "$@"
		echo '}'
		echo '}'
	} | ip netns exec bs "$nft" -f -
}

l4='meta l4proto { tcp, udp }'
classic='tproxy to :3129 meta mark set 1 accept'
setup() {
	local p rules=()

	dst=198.51.100.1:80
	case $1 in
	direct) dst=10.0.0.2:3129 ;;
	chain)
		# the classic's match, missed: what any ruleset that picks the
		# traffic out costs before it diverts anything
		dst=10.0.0.2:3129
		ruleset filter mangle "$l4 th dport 80 counter"
		;;
	nft)
		classic_routes
		ruleset filter mangle "$l4 socket transparent 1 meta mark set 1 accept" \
			"$l4 th dport 80 $classic"
		;;
	localroute)
		ruleset filter mangle "$l4 socket transparent 1 tproxy to :3129 local-route accept" \
			"$l4 th dport 80 tproxy to :3129 local-route accept"
		;;
	iptables)
		classic_routes
		ip netns exec bs sh -e <<-'EOR'
			iptables -t mangle -N DIVERT
			iptables -t mangle -A DIVERT -j MARK --set-mark 1
			iptables -t mangle -A DIVERT -j ACCEPT
			for p in tcp udp; do
				iptables -t mangle -A PREROUTING -p $p -m socket --transparent -j DIVERT
			done
			for p in tcp udp; do
				iptables -t mangle -A PREROUTING -p $p --dport 80 -j TPROXY \
					--on-port 3129 --tproxy-mark 1/1
			done
		EOR
		;;
	rules | set)
		dst=198.51.100.1:$((1000 + ports - 1))
		classic_routes
		if [ "$1" = set ]; then
			rules=("$l4 th dport { $(seq -s , 1000 $((1000 + ports - 1))) } $classic")
		else
			for ((p = 1000; p < 1000 + ports; p++)); do
				rules+=("$l4 th dport $p $classic")
			done
		fi
		ruleset filter mangle "$l4 socket transparent 1 meta mark set 1 accept" "${rules[@]}"
		;;
	redirect) ruleset nat dstnat "$l4 th dport 80 redirect to :3129" ;;
	*) echo "bench-guest: unknown setup $1" >&2; exit 2 ;;
	esac
}

teardown() {
	ip netns del bc
	ip netns del bs
	# a namespace is torn down by a workqueue, later: not during the next
	# run (idle time is cheap: -icount skips it)
	sleep 2
}

for ((r = 1; r <= rounds; r++)); do
	for w in $works; do
		var=BENCH_UNITS_$w
		units=${!var:-1000}
		for s in $setups; do
			topology
			setup "$s"
			extra=()
			[ "$w" != udp ] && ((flows)) && extra=(--flows "$flows")
			if ! "$bench" "$w" --client /run/netns/bc --server /run/netns/bs \
				--dst "$dst" --bind 0.0.0.0:3129 --transparent \
				-n "$units" -w "$warmup" "${extra[@]}" >/dev/null; then
				echo "bench-guest: FAIL: $s $w (round $r)" >&2
				exit 1
			fi
			echo "run $s $w $units" >>"$runs"
			echo "bench: round $r $w $s done"
			teardown
		done
	done
done
if [ -n "${BENCH_PROFILE:-}" ]; then
	cp /proc/kallsyms "$NFTP_OUT/kallsyms"
fi

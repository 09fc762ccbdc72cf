#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# make bench: what a proxied packet costs the kernel, in guest kernel
# instructions (tools/bench/kinsn.c, a QEMU TCG plugin, with -icount so
# that the guest's timers follow its instructions, not the host's load).
# Boots the kernel BOOTS times with our modules and BOOTS times with the
# in-tree ones, alternately; each boot runs every setup and workload of
# scripts/bench-guest.sh ROUNDS times, setups interleaved.  Then
# scripts/bench-report prints, per workload and setup: the median
# instructions per unit, the spread of the runs ((max - min) / median),
# and the median ratio to direct delivery in the same boot and round.
#
# usage: bench.sh [--kver K] [--boots N] [--rounds N] [--works "udp tcp bulk"]
#                 [--setups "..."] [--units WORK=N] [--flows F] [--ports N]
#                 [--profile]
#   --setups    of scripts/bench-guest.sh (default: direct nft localroute
#               iptables redirect; the in-tree boots skip localroute; also
#               chain, the floor of any ruleset, and rules, set)
#   --flows F   F more established TCP connections through the setup
#               before the tcp and bulk units (the socket tables' size)
#   --ports N   the proxied ports of the rules and set setups (1000)
#   --profile   also count per kernel function, and print where each setup
#               spends more than direct delivery (scripts/bench-report --profile;
#               the profile's own counting leaves the totals as they are)
# Logs and the report: build/logs/bench-<kver>/ (report.txt, profile.txt).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$top"
# shellcheck source=scripts/suite_lib.sh
source scripts/suite_lib.sh

kver='' boots=2 rounds=3 works='udp tcp bulk' setups='' flows=0 ports=1000 profile=0
declare -A units=([udp]=20000 [tcp]=1000 [bulk]=2000)
while (($#)); do
	case $1 in
	--kver) kver=${2:?}; shift 2 ;;
	--boots) boots=${2:?}; shift 2 ;;
	--rounds) rounds=${2:?}; shift 2 ;;
	--works) works=${2:?}; shift 2 ;;
	--setups) setups=${2:?}; shift 2 ;;
	--units) units[${2%%=*}]=${2#*=}; shift 2 ;;
	--flows) flows=${2:?}; shift 2 ;;
	--ports) ports=${2:?}; shift 2 ;;
	--profile) profile=1; shift ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench: unknown option $1" >&2; exit 2 ;;
	esac
done

# qemu's -plugin splits its argument at commas
if [[ $top == *,* ]]; then
	echo "bench: the checkout's path has a comma, which qemu's -plugin cannot take: $top" >&2
	exit 2
fi
suite_prepare "$kver"
kver=$SUITE_KVER
out=build/logs/bench-$kver
rm -rf "$out"
mkdir -p "$out"

env=(--env NFTP_BUILD_TOOLS="$top/build/tools/bench" --env BENCH_ROUNDS="$rounds"
	--env BENCH_WORKS="$works" --env BENCH_FLOWS="$flows" --env BENCH_PORTS="$ports")
for w in "${!units[@]}"; do
	env+=(--env "BENCH_UNITS_$w=${units[$w]}")
done
# One vCPU (what -icount allows), the guest's clock driven by the
# instruction count; the kernel's periodic work kept small.
quiet="nokaslr nowatchdog nmi_watchdog=0 audit=0 mitigations=off"
# a socket pair per flow, some 20 KB
mem=$((2048 + flows / 50))
start=$SECONDS
for ((b = 1; b <= boots; b++)); do
	for mode in ours ref; do
		s=${setups:-direct nft localroute iptables redirect}
		[ "$mode" = ref ] && s=$(sed 's/\blocalroute\b//; s/  */ /g' <<<"$s")
		dir=$out/$mode.$b
		mkdir -p "$dir"
		echo "=== bench: boot $b, $mode modules: $s ==="
		flag=() plugin=$top/build/tools/bench/kinsn.so
		[ "$mode" = ref ] && flag=(--ref)
		((profile)) && plugin+=",profile=$top/$dir/profile" flag+=(--env BENCH_PROFILE=1)
		scripts/vm-run "${SUITE_BOOT[@]}" "${flag[@]}" --smp 1 --mem "$mem" \
			--timeout 7200 --append "$quiet" --out "$dir" "${env[@]}" \
			--env BENCH_SETUPS="$s" \
			--qemu-arg -icount --qemu-arg shift=0 \
			--qemu-arg -plugin --qemu-arg "$plugin" \
			--qemu-arg -d --qemu-arg plugin --qemu-arg -D --qemu-arg "$top/$dir/kinsn.log" \
			-- scripts/bench-guest.sh
	done
done
echo "bench: $((SECONDS - start)) s in the VMs"
scripts/bench-report "$out" | tee "$out/report.txt"
if ((profile)); then
	scripts/bench-report --profile "$out" >"$out/profile.txt"
	echo "bench: where the setups spend more than direct: $out/profile.txt"
fi

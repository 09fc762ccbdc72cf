#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The load test at its full figures: selftests/nft_load.sh with
# LOAD_SCALE=100 (10,000 concurrent and 100,000 sequential TCP connections
# and 1,000,000 UDP datagrams through tproxy, every byte checked) in the
# VM, on our modules, then on the in-tree ones in a separate boot for
# comparison.  One VM at a time.  Per run: build/logs/load-<kver>-<mode>.log
# (the output), .txt (the figures), .status ("status=N seconds=N" and the
# host's load average before and after: TCG's speed follows it); at the end
# the figures of both runs.  Exit 1 if either run failed.
#
# usage: load.sh [--kver V] [--ours-only|--ref-only] [--scale PCT]
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$top"
# shellcheck source=scripts/suite_lib.sh
source scripts/suite_lib.sh

kver='' modes=(ours ref) scale=100
while (($#)); do
	case $1 in
	--kver) kver=$2; shift 2 ;;
	--ours-only) modes=(ours); shift ;;
	--ref-only) modes=(ref); shift ;;
	--scale) scale=$2; shift 2 ;;
	-h | --help) sed -n '3,13p' "$0"; exit 0 ;;
	*) echo "load.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

suite_prepare "$kver"
kver=$SUITE_KVER

mkdir -p build/logs
rc=0
for mode in "${modes[@]}"; do
	log=build/logs/load-$kver-$mode.log
	out=$(mktemp -d build/logs/load-out.XXXXXX)
	rm -f "${log%.log}.status" "${log%.log}.txt"
	echo "=== $kver: nft_load at $scale% on $mode modules ==="
	flag=()
	[ "$mode" = ref ] && flag=(--ref)
	start=$SECONDS
	# TCG speed follows the host's other load: keep it with the figures
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	set +e
	# 10,000 connections at once on both ends: more memory than the
	# suite's default; the phases get up to an hour each under TCG
	scripts/vm-run --kver "$kver" "${flag[@]}" --mem 3072 --timeout 10800 \
		--out "$out" --env LOAD_SCALE="$scale" --env LOAD_PHASE_TIMEOUT=3600 \
		--env NFTP_TEST_TIMEOUT=10000 -- selftests/run.sh nft_load 2>&1 | tee "$log"
	st=${PIPESTATUS[0]}
	set -e
	echo "status=$st seconds=$((SECONDS - start)) host-loadavg-before=${load0// /,}" \
		"host-loadavg-after=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)" >"${log%.log}.status"
	if [ -s "$out/load-$mode.txt" ]; then
		cp "$out/load-$mode.txt" "${log%.log}.txt"
	else
		echo "# nft_load $mode: no figures (status $st)" >"${log%.log}.txt"
	fi
	rm -rf "$out"
	[ "$st" -eq 0 ] || rc=1
done

echo
echo "=== figures ==="
for mode in "${modes[@]}"; do
	cat "build/logs/load-$kver-$mode.txt"
	sed 's/^/# /' "build/logs/load-$kver-$mode.status"
done
exit "$rc"

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The whole suite, twice: on our modules, then on the in-tree ones in a
# separate boot (the parity proof).  Installs what it needs, builds, and
# ends with a line "N n/a" (cases the in-tree module lacks, see ref_lacks in
# selftests/lib.sh) and one line "N passed, N failed, N skipped" over both
# runs.  Each run's output goes to build/logs/check-<kver>-<mode>.log, and
# "status=<vm-run exit> seconds=<wall time>" to check-<kver>-<mode>.status.
#
# usage: check.sh [--kver V | --kernel-dir DIR] [--ours-only|--ref-only]
#                 [--log NAME] [TEST...]
# --log NAME: the logs are build/logs/NAME-<mode>.{log,status} instead (a
# run that must not replace the suite's logs: make fuzz-packets)
# --kernel-dir: boot a kernel of scripts/debug-kernel.sh (DIR/bzImage,
# its tree DIR/src) instead of an installed one; ours only when it was
# built without the in-tree modules (--flavour no-intree)
# NFT: the nft the guest uses (default: the patched one it builds, see below)
# NFTP_TEST_TIMEOUT (seconds per script), BUSYWAIT_TIMEOUT, CLIENT_TIMEOUT
# and IO_TIMEOUT (selftests/lib.sh), when set, are passed on to the guest.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$top"
# shellcheck source=scripts/suite_lib.sh
source scripts/suite_lib.sh

kver='' kdir='' modes=(ours ref) logname=''
while (($#)); do
	case $1 in
	--kver) kver=$2; shift 2 ;;
	--kernel-dir) kdir=$2; shift 2 ;;
	--ours-only) modes=(ours); shift ;;
	--ref-only) modes=(ref); shift ;;
	--log) logname=${2:?--log needs a name}; shift 2 ;;
	*) break ;;
	esac
done

suite_prepare "$kver" "$kdir"
kver=$SUITE_KVER boot=("${SUITE_BOOT[@]}")
# a kernel of our own without the in-tree modules: nothing to compare with
[[ -z $kdir ]] || grep -q '^CONFIG_NFT_TPROXY=' "$kdir/config" || modes=(ours)
# selftests/nft_install.sh's DKMS build, on the host (exit 3: no headers
# here for this kernel, the test skips its dkms steps; a failed build
# leaves build/dkms/<kver>.log, which the test reports)
if [[ -z $kdir && " ${modes[*]} " == *" ours "* ]] && { (($# == 0)) || [[ " $* " == *" nft_install"* ]]; }; then
	scripts/dkms-stage.sh "$kver" || true
fi

# run.sh gives each script NFTP_TEST_TIMEOUT seconds (default 900); the VM
# must outlive them all, whatever the size of the suite.
per_test=${NFTP_TEST_TIMEOUT:-900}
if (($#)); then ntests=$#; else ntests=$(find selftests -maxdepth 1 -name 'nft_*.sh' | wc -l); fi
vmopts=(--timeout $((ntests * (per_test + 15) + 300)))
# The selftests' time knobs (selftests/README.md), for a slow or busy host,
# the packet fuzzer's size and the fail-nth operations to run.
for v in NFTP_TEST_TIMEOUT BUSYWAIT_TIMEOUT CLIENT_TIMEOUT IO_TIMEOUT \
	PKTFUZZ_COUNT PKTFUZZ_SEED FAILNTH_OPS; do
	[ -n "${!v:-}" ] && vmopts+=(--env "$v=${!v}")
done

mkdir -p build/logs
total_p=0 total_f=0 total_s=0 total_na=0 summary=()
for mode in "${modes[@]}"; do
	log=build/logs/${logname:-check-$kver}-$mode.log
	mkdir -p "$(dirname "$log")"
	rm -f "${log%.log}.status"
	echo "=== $kver: suite on $mode modules ==="
	flag=()
	[ "$mode" = ref ] && flag=(--ref)
	start=$SECONDS
	set +e
	scripts/vm-run "${boot[@]}" "${vmopts[@]}" "${flag[@]}" -- selftests/run.sh "$@" \
		2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	set -e
	echo "status=$rc seconds=$((SECONDS - start))" >"${log%.log}.status"

	read -r p f s < <(suite_result "$log" "$rc" "check: $mode")
	na=$(sed -n 's,^\([0-9][0-9]*\) n/a\r\?$,\1,p' "$log" | tail -n1)
	na=${na:-0}
	total_p=$((total_p + p)) total_f=$((total_f + f)) total_s=$((total_s + s))
	total_na=$((total_na + na))
	summary+=("$kver $mode: $p passed, $f failed, $s skipped, $na n/a")
done

echo
echo "=== summary ==="
printf '%s\n' "${summary[@]}"
echo "$total_na n/a"
echo "$total_p passed, $total_f failed, $total_s skipped"
[ "$total_f" -eq 0 ]

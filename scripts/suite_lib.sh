# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# shellcheck disable=SC2034 # SUITE_KVER, SUITE_BOOT are for the sourcing script
# Sourced by check.sh, check-debug.sh and load.sh, from the top of the
# tree: what the host prepares before a suite boots (suite_prepare), the
# nft it runs with, and reading a suite run's result.

# suite_nft: export NFT, the nft the guest runs the suite with: unless NFT
# is set, nft-tproxy's patched nft (nft-patches/), which
# scripts/build-userspace.sh builds when the upstream release tarballs are
# there (../shared/upstream or $NFTP_UPSTREAM; nothing to do when up to
# date).  Without them the distribution's nft: the extensions' kernel side
# then goes through tools/nfnl-fuzz's nfnl-raw, their nft syntax is reported
# skipped.  Returns 1 if the build failed.
suite_nft()
{
	local rc=0
	[ -z "${NFT:-}" ] || return 0
	scripts/build-userspace.sh || rc=$?
	case $rc in
	0) NFT=$(scripts/build-userspace.sh --print-nft) && export NFT ;;
	3) echo "no upstream release tarballs: the distribution's nft, the extensions' nft syntax skipped" ;;
	*) echo "scripts/build-userspace.sh failed (exit $rc)" >&2; return 1 ;;
	esac
}

# suite_prepare KVER|'' [KDIR]: everything a run of the suite needs on the
# host, in order: the packages (deps.sh), our modules for the kernel, the
# test tools (tools/tpload for nft_load.sh, nft_faults.sh) and the nft the
# guest runs (suite_nft).  The kernel is KVER (default scripts/kver.sh),
# booted from /boot or its chroot, or, with KDIR, a kernel of
# scripts/debug-kernel.sh (KDIR/bzImage, its tree KDIR/src; NFTP_BUILD is
# exported: its modules' build directory, for vm-run and the guest).  Sets
# SUITE_KVER and SUITE_BOOT (vm-run's options that boot it).  Provisioning
# the kernels themselves is the caller's: kernels.sh, newest-kernel.sh,
# debug-kernel.sh.  Call it outside any || or if: set -e must hold in it.
suite_prepare()
{
	local kdir=${2:-}
	scripts/deps.sh
	if [[ -n $kdir ]]; then
		[[ -s $kdir/release && -d $kdir/src ]] ||
			{ echo "$kdir is no kernel of scripts/debug-kernel.sh" >&2; return 2; }
		SUITE_KVER=$(<"$kdir/release")
		make -s KDIR="$kdir/src" modules
		NFTP_BUILD=$PWD/$(make -s KDIR="$kdir/src" builddir)
		export NFTP_BUILD
		SUITE_BOOT=(--kernel-dir "$kdir")
	else
		SUITE_KVER=${1:-$(scripts/kver.sh)}
		make -s KVER="$SUITE_KVER" modules
		SUITE_BOOT=(--kver "$SUITE_KVER")
	fi
	make -s tools
	suite_nft
}

# suite_result LOG RC WHO [EXCUSE_RE]: print "P F S", the counts of the
# last "N passed, N failed, N skipped" line in LOG, the output of a VM run
# that exited RC.  No such line (the VM died or never ran the suite) is one
# failure, not zero; a non-zero RC behind "0 failed" (a guest oops) is one
# more, unless LOG has a line matching EXCUSE_RE (a failure the caller
# counts itself).  WHO prefixes the messages that explain either.
suite_result()
{
	local log=$1 rc=$2 who=$3 excuse=${4:-} line p f s

	line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1 || true)
	if [ -z "$line" ]; then
		echo "$who run ended (status $rc) without a summary" >&2
		line="0 passed, 1 failed, 0 skipped"
	elif [ "$rc" -ne 0 ] && [[ "$line" == *" 0 failed"* ]] &&
		! { [ -n "$excuse" ] && grep -aqE "$excuse" "$log"; }; then
		echo "$who run exited $rc despite its summary" >&2
		line="${line/ 0 failed/ 1 failed}"
	fi
	read -r p _ f _ s _ <<<"${line//,/}"
	echo "$p $f ${s:-0}"
}

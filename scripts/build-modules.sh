#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Build the modules for one kernel in build/<kver>/, a copy of the sources,
# so that several kernels can be built side by side from one tree.
#
# usage: build-modules.sh KDIR OUTDIR [make args...]
# Builds against KDIR as given.  A kernel whose headers are only in a chroot
# (scripts/newest-kernel.sh) is built by running this script in there:
# `make` does that.
set -euo pipefail

kdir=$1 out=$2
shift 2
top=$(cd "$(dirname "$0")/.." && pwd -P)

[ -e "$kdir/Makefile" ] || {
	echo "build-modules: no kernel build tree at $kdir" >&2
	echo "  (install linux-headers-<kver>, or set KDIR=)" >&2
	exit 1
}

# A fresh copy each time: a file renamed or removed in the tree must not
# live on in the build (a few seconds; the probe results are kept).
mkdir -p "$out/gen"
rm -rf "$out/kmod" "$out/nft-expr" "$out/include"
tar -C "$top" -cf - Kbuild kmod nft-expr include | tar -C "$out" -xf -

# The version modinfo shows, and DKMS compares with the in-tree module's
# (which has none: with none of ours either, DKMS refuses to replace it).
# dkms.conf's PACKAGE_VERSION is the one place it is kept.
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$top/dkms.conf")
[ -n "$ver" ] || { echo "build-modules: no PACKAGE_VERSION in $top/dkms.conf" >&2; exit 1; }
printf '#define NFTP_VERSION "%s"\n' "$ver" >"$out/gen/nftp_version.h.new"
if cmp -s "$out/gen/nftp_version.h.new" "$out/gen/nftp_version.h"; then
	rm "$out/gen/nftp_version.h.new"
else
	mv "$out/gen/nftp_version.h.new" "$out/gen/nftp_version.h"
fi

gen=$out/gen/compat_gen.h
# Probe again when the probes, the headers or the config changed:
# distributions change APIs within one stable series (Debian's 6.1.184,
# 6.1.191, 6.12.101); or when the results are another tree's (the
# Makefile keys OUTDIR by tree, a caller of this script may not).
if [ ! -e "$gen" ] || ! head -n 1 "$gen" | grep -qF " for $kdir: " ||
	[ -n "$(find "$top/kmod/probes" "$kdir/Module.symvers" \
		"$kdir/include/generated/utsrelease.h" \
		"$kdir/include/config/auto.conf" -newer "$gen" 2>/dev/null)" ]; then
	"$top/scripts/compat-probe.sh" "$kdir" "$top" "$gen"
fi

exec make -C "$kdir" M="$(cd "$out" && pwd)" W=1 "$@" modules

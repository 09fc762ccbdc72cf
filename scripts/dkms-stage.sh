#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Build nft-tproxy with Debian's dkms, as the README's DKMS commands do,
# but in private trees, build/dkms/<kver>/{src,tree}: nothing in /usr/src,
# /var/lib/dkms or /lib/modules changes.  selftests/nft_install.sh then
# runs `dkms install` and `dkms remove` on them in the VM guest, whose
# root is a throw-away overlay (a DKMS build under TCG would take minutes).
#
# usage: dkms-stage.sh KVER
# Exit 0 built (or up to date), 3 no headers for KVER on this host (the
# newest kernel has them only in its chroot), 1 failure.
set -euo pipefail

kver=${1:?usage: dkms-stage.sh KVER}
top=$(cd "$(dirname "$0")/.." && pwd -P)
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$top/dkms.conf")
out=$top/build/dkms/$kver
log=$out.log

command -v dkms >/dev/null || { echo "dkms-stage: no dkms (scripts/deps.sh)" >&2; exit 1; }
if [ ! -e "/lib/modules/$kver/build/Makefile" ]; then
	echo "dkms-stage: no headers for $kver in /lib/modules/$kver/build" >&2
	exit 3
fi

# Rebuild only when a file DKMS would copy is newer than the last build.
stamp=$out/stamp
if [ -e "$stamp" ] && [ -z "$(find "$top" -path "$top/build" -prune -o -path "$top/.git" -prune \
	-o -newer "$stamp" -print -quit)" ]; then
	echo "dkms-stage: up to date: $out"
	exit 0
fi

rm -rf "$out"
mkdir -p "$out/src/nft-tproxy-$ver" "$out/tree"
# The README's `cp -r . /usr/src/nft-tproxy-<version>`, less builds and git.
tar -C "$top" --exclude=./build --exclude=./.git -cf - . | tar -C "$out/src/nft-tproxy-$ver" -xf -
trees=(--sourcetree "$out/src" --dkmstree "$out/tree")
if ! { dkms add -m nft-tproxy -v "$ver" "${trees[@]}" &&
	dkms build -m nft-tproxy -v "$ver" -k "$kver" "${trees[@]}"; } >"$log" 2>&1; then
	cat "$log" >&2
	echo "dkms-stage: dkms build of nft-tproxy/$ver for $kver failed (log $log)" >&2
	exit 1
fi
touch "$stamp"
echo "dkms-stage: built nft-tproxy/$ver for $kver in $out"

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# make demo: install what is needed, build, boot a Debian kernel in QEMU
# with our modules, and run scripts/demo-guest.sh there.
#
# usage: demo.sh [--kver V] [--ref]
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$top"

kver='' ref=()
while (($#)); do
	case $1 in
	--kver) kver=$2; shift 2 ;;
	--ref) ref=(--ref); shift ;;
	*) echo "usage: demo.sh [--kver V] [--ref]" >&2; exit 2 ;;
	esac
done

scripts/deps.sh
kver=${kver:-$(scripts/kver.sh)}
make -s KVER="$kver" modules
# the patched nft (exported to the guest as NFT) shows local-route too
# shellcheck source=scripts/suite_lib.sh
source scripts/suite_lib.sh
suite_nft || echo "demo: the distribution's nft, without nft-tproxy's extensions"
echo "booting $kver under QEMU (TCG, a few seconds)..."
exec scripts/vm-run --kver "$kver" "${ref[@]}" -- scripts/demo-guest.sh

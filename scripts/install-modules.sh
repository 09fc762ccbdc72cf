#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# `make install` and `make uninstall`: our three modules into, or out of,
# /lib/modules/<kver>/updates/dkms.  That is where Debian's DKMS puts them
# too, so the two ways never leave two copies for depmod to choose from.
# Modules in updates/ win over the in-tree ones of the same name.  When
# DKMS has nft-tproxy installed for that kernel it owns those files: both
# then refuse and name the dkms command.
#
# usage: install-modules.sh install|uninstall KVER BUILDDIR
# DESTDIR (environment): install under it, for packaging; no depmod then.
# NFTP_DKMS_TREE (environment): the DKMS tree to ask (default dkms's own,
# /var/lib/dkms; selftests/nft_install.sh uses a private one).
set -euo pipefail

op=${1:?usage: install-modules.sh install|uninstall KVER BUILDDIR}
kver=${2:?no KVER}
build=${3:?no BUILDDIR}
DESTDIR=${DESTDIR:-}
dir=$DESTDIR/lib/modules/$kver/updates/dkms
mods=(nftp_core nft_tproxy nft_socket)

die() {
	echo "install-modules: $*" >&2
	exit 1
}

# dkms marks a module installed for a kernel with the link
# <tree>/<module>/kernel-<kver>-<arch> (dkms 2 and 3); `dkms status` says
# the same but takes seconds (a minute under TCG).
tree=${NFTP_DKMS_TREE:-/var/lib/dkms}
if [ -z "$DESTDIR" ] && [ -L "$tree/nft-tproxy/kernel-$kver-$(uname -m)" ]; then
	die "DKMS has nft-tproxy installed for $kver and owns $dir;" \
		"use 'dkms remove nft-tproxy/<version> -k $kver' instead of make $op"
fi

depmod_if_live() {
	[ -n "$DESTDIR" ] || depmod -a "$kver"
}

case $op in
install)
	kos=("$build/kmod/nftp_core.ko" "$build/nft-expr/nft_tproxy.ko" "$build/nft-expr/nft_socket.ko")
	for f in "${kos[@]}"; do
		[ -e "$f" ] || die "$f missing: build first (make KVER=$kver)"
	done
	install -d "$dir"
	install -m 644 "${kos[@]}" "$dir/"
	depmod_if_live
	echo "installed $(modinfo -F version "$dir/nft_tproxy.ko") into $dir"
	# A running kernel keeps whatever is loaded until it is unloaded.
	if [ -z "$DESTDIR" ] && [ "$kver" = "$(uname -r)" ] &&
		[ -d /sys/module/nft_tproxy ] && [ ! -d /sys/module/nftp_core ]; then
		echo "note: the in-tree nft_tproxy is loaded; ours takes over once it is" \
			"unloaded (nft flush ruleset; rmmod nft_tproxy nft_socket) or at boot"
	fi
	;;
uninstall)
	n=0
	for m in "${mods[@]}"; do
		f=$dir/$m.ko
		[ -e "$f" ] || continue
		# Only files of ours: another package may own a module of that name.
		case $(modinfo -F description "$f" 2>/dev/null) in
		*nft-tproxy*) rm -f "$f"; n=$((n + 1)) ;;
		*) echo "install-modules: leaving $f: not nft-tproxy's" >&2 ;;
		esac
	done
	rmdir "$dir" 2>/dev/null || true
	depmod_if_live
	echo "removed $n module(s) from $dir"
	if [ -z "$DESTDIR" ] && [ -d /sys/module/nftp_core ]; then
		echo "note: ours is still loaded until unloaded (nft flush ruleset;" \
			"rmmod nft_tproxy nft_socket nftp_core) or reboot"
	fi
	;;
*) die "unknown operation '$op' (install or uninstall)" ;;
esac

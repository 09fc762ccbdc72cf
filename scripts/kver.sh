#!/bin/bash
# Print the kernel version the build and the VM harness target.
# $KVER wins; otherwise the newest kernel that has both an image to boot
# and headers to build against.  Never `uname -r`: the host runs a kernel
# without module support that has no /lib/modules tree.  The kernel of
# scripts/newest-kernel.sh (in a chroot, not in /boot) is never the
# default: building for it needs root (chroot, mounts), and a plain `make`
# must not change target when the archive moves.  Ask for it with
# KVER=$(scripts/kernels.sh newest).
set -euo pipefail

if [[ -n "${KVER:-}" ]]; then
	printf '%s\n' "$KVER"
	exit 0
fi

best=
for img in /boot/vmlinuz-*; do
	[[ -e "$img" ]] || continue
	v=${img#/boot/vmlinuz-}
	# build is a symlink into /usr/src; -e follows it, so dangling links
	# (image installed, headers removed) are skipped.
	[[ -e "/lib/modules/$v/build/Makefile" ]] || continue
	best=$(printf '%s\n%s\n' "$best" "$v" | sed '/^$/d' | sort -V | tail -n1)
done

if [[ -z "$best" ]]; then
	echo "kver.sh: no kernel with both /boot/vmlinuz-V and /lib/modules/V/build;" \
		"run scripts/deps.sh" >&2
	exit 1
fi
printf '%s\n' "$best"

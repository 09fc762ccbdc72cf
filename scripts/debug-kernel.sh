#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Build (or reuse) a 6.1 debug kernel from Debian's linux-source-6.1: KASAN,
# kmemleak, lockdep, debug objects, net refcount trackers (see
# scripts/debug.config), plus everything the selftests need.
#
# usage: scripts/debug-kernel.sh [--flavour F] [--force] [--config-only] [-j N]
#        scripts/debug-kernel.sh --deps-only    (the packages, linux-source-6.1)
#
# --flavour no-intree: instead, a kernel without the in-tree tproxy/socket
# expressions (scripts/kconfig/no-intree.config), the kernel a user of
# ours has, into build/kernel-no-intree/.
# --flavour no-ipv6: that kernel without IPv6 (scripts/kconfig/no-ipv6.config:
# no inet or ip6 tables either), a router's, into build/kernel-no-ipv6/.
# --flavour no-sockcg: the no-intree kernel whose sockets carry no cgroup
# (scripts/kconfig/no-sock-cgroup-data.config: no cgroup BPF, net_prio or
# net_cls), into build/kernel-no-sockcg/.
# --flavour coverage: the debug kernel with gcov
# (scripts/kconfig/coverage.config), into build/kernel-coverage/.
# --flavour gcov: gcov without the debug kernel's detectors
# (coverage.config + kconfig/gcov.config), into build/kernel-gcov/.
#
# Output, all under build/debug-kernel/ (git-ignored):
#   src/                 the configured and built source tree: our modules
#                        build against it with `make KDIR=build/debug-kernel/src`
#   bzImage, vmlinux     the kernel (vm-run boots the bzImage), its ELF image
#   root/lib/modules/R/  modules_install of the in-tree modules, depmod'ed
#   release              the kernel release R (6.1.N-nftp-debug)
#   stamp                hash of what the build depends on: the next run
#                        with the same fragments and tarball does nothing
#   build.log            the last build's output
# The build runs under `nice -n 19` with -j2 (override: -j N): the machine
# is shared with VMs that must keep priority.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd -P)
tarball=/usr/src/linux-source-6.1.tar.xz
# Bump when the recipe below changes in a way that needs a rebuild.
recipe=1

force=0 jobs=2 config_only=0 flavour=debug
while (($#)); do
	case $1 in
	--flavour) flavour=${2:?--flavour needs a name}; shift 2 ;;
	--force) force=1; shift ;;
	--config-only) config_only=1; shift ;;
	--deps-only) config_only=2; shift ;;
	-j) jobs=${2:?-j needs a number}; shift 2 ;;
	-j[0-9]*) jobs=${1#-j}; shift ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "debug-kernel: unknown argument $1" >&2; exit 2 ;;
	esac
done

say() { echo "debug-kernel: $*" >&2; }
die() { say "$*"; exit 1; }

case $flavour in
debug)
	out=$top/build/debug-kernel
	fragments=("$top/selftests/config" "$top/scripts/kconfig/vm.config"
		"$top/scripts/debug.config") ;;
no-intree)
	out=$top/build/kernel-no-intree
	fragments=("$top/selftests/config" "$top/scripts/kconfig/vm.config"
		"$top/scripts/kconfig/no-intree.config") ;;
no-ipv6)
	out=$top/build/kernel-no-ipv6
	fragments=("$top/selftests/config" "$top/scripts/kconfig/vm.config"
		"$top/scripts/kconfig/no-intree.config" "$top/scripts/kconfig/no-ipv6.config") ;;
no-sockcg)
	out=$top/build/kernel-no-sockcg
	fragments=("$top/selftests/config" "$top/scripts/kconfig/vm.config"
		"$top/scripts/kconfig/no-intree.config"
		"$top/scripts/kconfig/no-sock-cgroup-data.config") ;;
coverage)
	out=$top/build/kernel-coverage
	fragments=("$top/selftests/config" "$top/scripts/kconfig/vm.config"
		"$top/scripts/debug.config" "$top/scripts/kconfig/coverage.config") ;;
gcov)
	out=$top/build/kernel-gcov
	fragments=("$top/selftests/config" "$top/scripts/kconfig/vm.config"
		"$top/scripts/kconfig/coverage.config" "$top/scripts/kconfig/gcov.config") ;;
*) die "unknown flavour $flavour (debug, no-intree, no-ipv6, no-sockcg, coverage, gcov)" ;;
esac

# ---------------------------------------------------------------- packages
# Same check as scripts/deps.sh.  No dwarves: no BTF, so no pahole.
PKGS=(linux-source-6.1 make gcc bc bison flex libelf-dev libssl-dev
	python3 perl rsync cpio kmod xz-utils)

installed() {
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

install_deps() {
	local p missing=() log
	for p in "${PKGS[@]}"; do
		installed "$p" || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	((EUID == 0)) || die "missing ${missing[*]}; run as root"
	log=$(mktemp)
	if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		die "apt-get failed installing ${missing[*]}"
	fi
	rm -f "$log"
	say "installed ${missing[*]}"
}

# ---------------------------------------------------------------- config
# shellcheck source=scripts/kconfig/lib.sh
source "$top/scripts/kconfig/lib.sh"

configure() {
	local src=$1
	say "configuring: x86_64 defconfig + ${fragments[*]#"$top"/}"
	kconfig_make "$src" "$src" "${fragments[@]}" >>"$out/build.log" 2>&1 ||
		{ grep '^config: ' "$out/build.log" >&2
		  die "configuration failed, or it lost options of the fragments (see $out/build.log)"; }
}

# ---------------------------------------------------------------- main
main() {
	local key src_key src=$out/src t0 rel
	install_deps
	((config_only == 2)) && return 0
	[[ -r $tarball ]] || die "no $tarball (package linux-source-6.1)"
	mkdir -p "$out"

	# One build at a time: a second caller waits, then finds the stamp.
	exec 9>"$out/.lock"
	flock 9

	src_key=$(sha256sum <"$tarball" | cut -c1-16)
	key=$({
		echo "recipe $recipe"
		echo "tarball $src_key"
		cat "${fragments[@]}"
	} | sha256sum | cut -c1-16)
	if ((!force)) && [[ $(cat "$out/stamp" 2>/dev/null) == "$key" &&
		-s $out/bzImage && -s $out/release && -s $src/Module.symvers ]]; then
		say "up to date: $(<"$out/release") ($out)"
		return 0
	fi
	rm -f "$out/stamp"
	: >"$out/build.log"

	# A new tarball means a new tree; a changed fragment only reconfigures
	# the existing one (make rebuilds what the change touches).
	if [[ $(cat "$src/.nftp-tarball" 2>/dev/null) != "$src_key" ]]; then
		say "extracting $tarball"
		rm -rf "$src" "$out/extract"
		mkdir -p "$out/extract"
		nice -n 19 tar -C "$out/extract" -xJf "$tarball"
		mv "$out/extract"/linux-source-6.1 "$src"
		rm -rf "$out/extract"
		echo "$src_key" >"$src/.nftp-tarball"
	fi
	configure "$src"
	((config_only)) && { say "configured $src (--config-only)"; return 0; }

	say "building with -j$jobs under nice -n 19 (log: $out/build.log)"
	t0=$SECONDS
	if ! nice -n 19 make -C "$src" -j"$jobs" bzImage vmlinux modules \
		>>"$out/build.log" 2>&1; then
		grep -E 'error|Error' "$out/build.log" | tail -n 20 >&2 || true
		die "build failed after $((SECONDS - t0)) s (see $out/build.log)"
	fi
	# Only now right: before the first build, `make kernelrelease` does
	# not see CONFIG_LOCALVERSION yet.
	rel=$(<"$src/include/config/kernel.release")
	say "built $rel in $((SECONDS - t0)) s"

	rm -rf "$out/root"
	nice -n 19 make -C "$src" INSTALL_MOD_PATH="$out/root" modules_install \
		>>"$out/build.log" 2>&1 || die "modules_install failed (see $out/build.log)"
	cp "$src/vmlinux" "$out/vmlinux.tmp" && mv "$out/vmlinux.tmp" "$out/vmlinux"
	cp "$src/arch/x86/boot/bzImage" "$out/bzImage"
	cp "$src/.config" "$out/config"
	echo "$rel" >"$out/release"
	echo "$key" >"$out/stamp"
	say "ready: $rel in $out ($(find "$out/root" -name '*.ko' | wc -l) modules)"
}

main

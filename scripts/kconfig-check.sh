#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Build the modules against 6.1 trees configured as the kernels that need
# us are: without the in-tree tproxy/socket (scripts/kconfig/no-intree),
# and on top of that without IPv6, without cgroups, with cgroups but no
# socket cgroup data, without conntrack.  Each tree is Debian's
# linux-source-6.1 configured (x86_64 defconfig + selftests/config +
# kconfig/no-intree.config + its own fragment) and `make modules_prepare`d
# under build/kconfig/<name>/: a few seconds each, no kernel is built.
#
# A variant passes when the modules build with W=1 and no compiler warning,
# all three of them, except nft_tproxy without conntrack: that one must be
# left out and the build must say why.  The trees share one kernel
# release: each must get a build directory and probe results of its own.  Without IPv6 no module may need an
# IPv6 symbol.  (Without a built vmlinux modpost cannot check the other
# undefined symbols: scripts/debug-kernel.sh --flavour no-intree builds
# and boots the first variant.)
#
# usage: kconfig-check.sh [VARIANT...]     (default: all)
# Prints a PASS/FAIL line per variant; exit 1 if one failed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$top"
tarball=/usr/src/linux-source-6.1.tar.xz
out=build/kconfig
all=(no-intree no-ipv6 no-cgroups no-sock-cgroup-data no-conntrack)
variants=("${@:-${all[@]}}")

# shellcheck source=scripts/kconfig/lib.sh
source scripts/kconfig/lib.sh

if ! [[ -r $tarball ]]; then
	scripts/debug-kernel.sh --deps-only
fi

# one source tree for every variant, each configured into its own O= dir
src=$out/src
key=$(stat -c '%s %Y' "$tarball")
if [[ $(cat "$src/.nftp-tarball" 2>/dev/null) != "$key" ]]; then
	rm -rf "$src" "$out/extract"
	mkdir -p "$out/extract"
	tar -C "$out/extract" -xJf "$tarball"
	mv "$out/extract"/linux-source-6.1 "$src"
	rmdir "$out/extract"
	echo "$key" >"$src/.nftp-tarball"
fi

failed=0
declare -A owner=()	# build dir -> the variant whose modules are there
for v in "${variants[@]}"; do
	frags=(selftests/config scripts/kconfig/vm.config scripts/kconfig/no-intree.config)
	[[ $v == no-intree ]] || frags+=("scripts/kconfig/$v.config")
	[[ -f scripts/kconfig/$v.config ]] || { echo "kconfig-check: no variant $v" >&2; exit 2; }
	obj=$out/$v
	log=$out/$v.log
	mkdir -p "$obj"
	why=
	if ! { kconfig_make "$src" "$obj" "${frags[@]}" &&
		make -s -C "$src" O="$PWD/$obj" -j"$(nproc)" modules_prepare; } >"$log" 2>&1; then
		why="configuring the tree failed: $(grep -m1 -E '^config: |rror' "$log" || tail -n 1 "$log")"
	else
		bdir=$(make -s KDIR="$obj" builddir)
		rm -rf "$bdir"
		# trees of one release, each with its own build directory
		[[ -z ${owner[$bdir]:-} ]] || why="build directory $bdir shared with ${owner[$bdir]}"
		owner[$bdir]=$v
		[[ -n $why ]] || make -s KDIR="$obj" modules >>"$log" 2>&1 || why="the build failed"
		[[ -n $why ]] || head -n 1 "$bdir/gen/compat_gen.h" | grep -qF " for $obj: " ||
			why="$bdir/gen/compat_gen.h was probed for another tree"
		if [[ -z $why ]] && grep -E ': (warning|error): ' "$log" >&2; then
			why="compiler warnings"
		fi
		mods=(kmod/nftp_core.ko nft-expr/nft_socket.ko nft-expr/nft_tproxy.ko)
		[[ $v == no-conntrack ]] && mods=(kmod/nftp_core.ko nft-expr/nft_socket.ko)
		for m in "${mods[@]}"; do
			[[ -n $why || -f $bdir/$m ]] || why="no $m"
		done
		if [[ -z $why && $v == no-conntrack ]]; then
			[[ ! -e $bdir/nft-expr/nft_tproxy.ko ]] || why="nft_tproxy.ko built without nf_defrag_ipv4"
			grep -q 'nft_tproxy not built: this kernel has no nf_defrag_ipv4' "$log" ||
				why="${why:-the build did not say why nft_tproxy is left out}"
		fi
		if [[ -z $why && $v == no-ipv6 ]]; then
			v6=$(nm -u "$bdir"/kmod/*.ko "$bdir"/nft-expr/*.ko |
				grep -E ' U .*(inet6|udp6|ipv6|ip6|in6)' || true)
			[[ -z $v6 ]] || why="IPv6 symbols needed: $(echo "$v6" | awk '{print $2}' | sort -u | tr '\n' ' ')"
		fi
	fi
	if [[ -z $why ]]; then
		echo "PASS kconfig $v"
	else
		echo "FAIL kconfig $v: $why (log: $log)"
		failed=1
	fi
done
exit "$failed"

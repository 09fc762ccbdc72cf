#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Install, side by side, the Debian kernels (image + headers) the modules
# are built and tested against:
#
#   5.10  bullseye            linux-image-5.10.0-NN-amd64 (pulls gcc-10)
#   6.1   bookworm            linux-image-amd64 (the distribution kernel)
#   6.12  bookworm-security   linux-image-6.12.N+deb12-amd64, or
#         bookworm-backports  the same naming, whichever is newer (the
#         LTS 6.12 in bookworm-security has been ahead of backports)
#   newest sid or trixie-backports, whichever has the newer
#         linux-image-amd64: its headers need a gcc bookworm lacks, so it
#         goes into a chroot (scripts/newest-kernel.sh), not onto the host
#
# usage: kernels.sh [--update] [5.10|6.1|6.12|newest|all]...   (default: all)
#        kernels.sh --names [NAME|all]...   (the names, "all" expanded; no
#                                            install, root not needed)
#
# Idempotent: the apt source and pin are (re)written only when they differ,
# `apt-get update` runs only when they changed, when a suite's lists are
# missing or a day old, or with --update; an installed kernel is left
# alone.  The newest ABI the archive offers is picked at each run, so a
# run after an archive update may add a newer kernel beside the old one.
# Prints one installed kernel release string per requested kernel.
set -euo pipefail

SRC=/etc/apt/sources.list.d/nftp-kernels.sources
PIN=/etc/apt/preferences.d/nftp-bullseye
STOCK=/etc/apt/sources.list.d/debian.sources

die() { echo "kernels.sh: $*" >&2; exit 1; }
say() { echo "kernels.sh: $*" >&2; }

# Every supported kernel, oldest first: the one list of them.
ALL=(5.10 6.1 6.12 newest)

force_update=0 names_only=0
want=()
for a in "$@"; do
	case $a in
	--update) force_update=1 ;;
	--names) names_only=1 ;;
	all) want+=("${ALL[@]}") ;;
	-h|--help) sed -n '3,24p' "$0"; exit 0 ;;
	*)
		for k in "${ALL[@]}" ''; do
			[[ $a == "$k" ]] && break
		done
		[[ -n $k ]] ||
			die "unknown argument '$a' ($(IFS='|'; echo "${ALL[*]}")|all|--update|--names)"
		want+=("$a")
		;;
	esac
done
((${#want[@]})) || want=("${ALL[@]}")
if ((names_only)); then
	printf '%s\n' "${want[@]}"
	exit 0
fi
((EUID == 0)) || die "must run as root (writes apt sources, installs packages)"

# The newest kernel lives in its chroot: nothing of the host's apt setup
# below is needed for it.
newest() {
	local o=()
	((force_update)) && o=(--update)
	"$(dirname "$0")/newest-kernel.sh" "${o[@]}" || die "scripts/newest-kernel.sh failed"
}
if [[ " ${want[*]} " != *" "[0-9]* ]]; then
	for w in "${want[@]}"; do newest; done
	exit 0
fi

# --- apt source and pin -------------------------------------------------

# Same URI and keyring as the stock bookworm stanza, so no new trust.
uri=http://deb.debian.org/debian
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
if [[ -r $STOCK ]]; then
	# The paragraph whose Suites name plain "bookworm".
	stanza=$(awk -v RS= \
		'/(^|\n)Suites:[^\n]*[[:space:]]bookworm([[:space:]]|$)/' "$STOCK")
	field() {
		sed -n "s/^$1:[[:space:]]*\([^[:space:]]*\).*/\1/p" <<<"$stanza" |
			head -n1
	}
	u=$(field URIs)
	k=$(field Signed-By)
	[[ -n $u ]] && uri=$u
	[[ -n $k && -r $k ]] && keyring=$k
fi

changed=0
# Write $1 with the content of stdin, only if it differs.
put() {
	local f=$1 tmp
	tmp=$(mktemp)
	cat >"$tmp"
	if cmp -s "$tmp" "$f"; then
		rm -f "$tmp"
	else
		# said first: a change to the host's apt configuration
		say "writing $f (apt configuration for the extra kernels)"
		install -m 644 "$tmp" "$f"
		rm -f "$tmp"
		changed=1
	fi
}

put "$SRC" <<EOF
# Written by nft-tproxy scripts/kernels.sh: extra kernels to build and
# test against.  bullseye is pinned low in $PIN.
Types: deb
URIs: $uri
Suites: bookworm-backports bullseye
Components: main
Signed-By: $keyring
EOF

# bullseye only for what bookworm does not have (its 5.10 kernel and the
# gcc-10 that kernel's headers need): never downgrade or replace anything.
put "$PIN" <<EOF
# Written by nft-tproxy scripts/kernels.sh.
Package: *
Pin: release n=bullseye
Pin-Priority: 100
EOF

# --- apt-get update, when needed -------------------------------------------

lists_stale() {
	local s f
	for s in bookworm-backports bullseye; do
		f=$(find /var/lib/apt/lists -maxdepth 1 -name "*_dists_${s}_InRelease" \
			-mmin -1440 2>/dev/null | head -n1)
		[[ -n $f ]] || return 0
	done
	return 1
}

export DEBIAN_FRONTEND=noninteractive
if ((changed || force_update)) || lists_stale; then
	say "apt-get update"
	apt-get update -qq >&2 || die "apt-get update failed"
fi

# --- which packages ---------------------------------------------------------

# Newest linux-image-<rel> matching the ERE $1 (on the release part) that
# apt can install and that has a matching linux-headers-<rel>.
newest_rel() {
	local re=$1 rel cands
	cands=$(apt-cache pkgnames linux-image- | sed -n 's/^linux-image-//p' |
		{ grep -E "^(${re})$" || true; } | sort -rV)
	for rel in $cands; do
		if has_candidate "linux-image-$rel" &&
			has_candidate "linux-headers-$rel"; then
			echo "$rel"
			return
		fi
	done
}

has_candidate() {
	local c
	c=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p')
	[[ -n $c && $c != "(none)" ]]
}

# The release the bookworm linux-image-amd64 meta-package depends on.
meta_rel() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\([0-9].*-amd64\)$/\1/p' |
		sort -V | tail -n1
}

installed() {
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == \
		"install ok installed" ]]
}

rels=()
pkgs=()
declare -A chrooted=()
for w in "${want[@]}"; do
	case $w in
	newest)
		rel=$(newest)
		rels+=("$rel")
		chrooted[$rel]=1
		continue
		;;
	5.10) rel=$(newest_rel '5\.10\.0-[0-9]+-amd64') ;;
	6.1)  rel=$(meta_rel) ;;
	6.12) rel=$(newest_rel '6\.12\.[0-9]+(\+[a-z0-9.~]+)?-amd64') ;;
	esac
	[[ -n $rel ]] ||
		die "no $w kernel with headers in the apt lists (apt-cache policy)"
	rels+=("$rel")
	if [[ $w == 6.1 ]]; then
		# The meta-packages keep the distribution kernel up to date.
		for p in linux-image-amd64 linux-headers-amd64; do
			installed "$p" || pkgs+=("$p")
		done
	fi
	for p in "linux-image-$rel" "linux-headers-$rel"; do
		installed "$p" || pkgs+=("$p")
	done
done

if ((${#pkgs[@]})); then
	say "installing ${pkgs[*]}"
	# Recommends would pull firmware and initramfs-tools' friends: not
	# needed to build a module or to boot the kernel under QEMU.
	apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2 ||
		die "apt-get install failed"
fi

for rel in "${rels[@]}"; do
	[[ -n ${chrooted[$rel]:-} ]] && { echo "$rel"; continue; }
	[[ -e /boot/vmlinuz-$rel ]] || die "$rel: /boot/vmlinuz-$rel missing"
	[[ -e /lib/modules/$rel/build/Makefile ]] ||
		die "$rel: headers missing (/lib/modules/$rel/build)"
	echo "$rel"
done

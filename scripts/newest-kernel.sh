#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The newest kernel Debian's archive offers, in a chroot of its suite.
#
# Candidates: linux-image-amd64 in sid and in trixie-backports (seen ahead
# of sid: 7.3.4 there, 7.2.13 in sid); the newer version wins.  Its
# headers need a newer gcc than this bookworm host has, so the kernel, its
# headers and their compiler go into a debootstrap (minbase) chroot of the
# suite that carries it, /var/lib/nft-tproxy/<suite>-root.  `make KVER=<its release>`
# builds there and vm-run boots the chroot's image with its modules.
#
# usage: newest-kernel.sh [--update]     install it, print its release
#        newest-kernel.sh --root REL      print the chroot that holds REL
#        newest-kernel.sh --run REL [--bind DIR]... -- CMD [ARGS...]
#                                         run CMD in that chroot, /proc
#                                         mounted, each DIR at the same path
#
# Idempotent, as root: the chroot is made once; `apt-get update` (of the
# candidates' lists and in the chroot) runs only when lists are missing or
# a day old, or with --update; an installed kernel is left alone and a
# newer one is added beside it.  Mounts are made in a private mount
# namespace (unshare) that ends with the command, so none outlives it, not
# even a killed one.
set -euo pipefail

STATE=/var/lib/nft-tproxy
MIRROR=http://deb.debian.org/debian
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# "pocket chroot-suite suites-of-the-chroot's-sources", newest first on a tie
CANDIDATES=("sid sid sid" "trixie-backports trixie trixie trixie-backports")
CPATH_=/usr/sbin:/usr/bin:/sbin:/bin
SELF=$(readlink -f "$0")

die() { echo "newest-kernel.sh: $*" >&2; exit 1; }
say() { echo "newest-kernel.sh: $*" >&2; }

# ---------------------------------------------------------------- lookup
# Path $2 inside the chroot $1, following absolute symlinks within it
# (lib/modules/V/build points to /usr/src/...).
in_root() {
	local root=$1 p=$2 l
	for _ in 1 2 3 4 5 6 7 8; do
		[[ -L $root$p ]] || break
		l=$(readlink "$root$p")
		[[ $l == /* ]] && p=$l || p=$(dirname "$p")/$l
	done
	printf '%s\n' "$root$p"
}

# The chroot holding release $1's image and headers; exit 1 if none.
root_of() {
	local r
	for r in "$STATE"/*-root; do
		[[ -e $r/.nftp-root ]] || continue
		[[ -e $(in_root "$r" "/lib/modules/$1/build")/Makefile ]] || continue
		kimage "$r" "$1" >/dev/null || continue
		printf '%s\n' "$r"
		return 0
	done
	return 1
}

# The image of release $2 in chroot $1: /boot, or (Debian's split
# linux-binary packages) beside the modules.
kimage() {
	local f
	for f in "$1/boot/vmlinuz-$2" "$1/lib/modules/$2/vmlinuz"; do
		[[ -s $f ]] && { printf '%s\n' "$f"; return 0; }
	done
	return 1
}

# ---------------------------------------------------------------- run
# run_in ROOT [--bind DIR]... -- CMD...: CMD chrooted in ROOT with /proc
# (objtool reads /proc/self) and the DIRs bind-mounted; cwd kept when it is
# under a DIR.  The mounts live in a private mount namespace that dies with
# CMD: nothing to unmount, nothing left behind on a kill.
run_in() {
	local root=$1
	shift
	exec unshare --mount --propagation private -- "$SELF" --ns "$root" "$@"
}

# Inside the namespace (run_in): mount, then become CMD.
ns_main() {
	local root=$1 binds=() b cwd=/
	shift
	while (($#)); do
		case $1 in
		--bind) binds+=("$(cd "${2:?--bind needs a directory}" && pwd -P)"); shift 2 ;;
		--) shift; break ;;
		*) die "--run: unknown argument '$1'" ;;
		esac
	done
	(($#)) || die "--run: no command"
	mount -t proc proc "$root/proc"
	for b in "${binds[@]}"; do
		mkdir -p "$root$b"
		mount --bind "$b" "$root$b"
		[[ $PWD == "$b" || $PWD == "$b"/* ]] && cwd=$PWD
	done
	# A clean environment but make's flags (-s, V=1 of the caller's make),
	# as on the host.
	exec chroot "$root" /usr/bin/env -i -C "$cwd" PATH="$CPATH_" HOME=/root \
		LANG=C.UTF-8 TERM="${TERM:-dumb}" DEBIAN_FRONTEND=noninteractive \
		MAKEFLAGS="${MAKEFLAGS:-}" "$@"
}

# ---------------------------------------------------------------- choose
APTDIR=$STATE/apt
apt_opts() {
	printf '%s\n' -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache" \
		-o "Dir::State::status=$APTDIR/status" \
		-o "Dir::Etc::SourceList=$APTDIR/sources.list" \
		-o Dir::Etc::SourceParts=/nonexistent -o Dir::Etc::Preferences=/dev/null \
		-o Dir::Etc::PreferencesParts=/nonexistent -o APT::Sandbox::User=root
}

# Fresh means: an InRelease of each of suites $2.. under lists dir $1,
# younger than a day.
lists_fresh() {
	local dir=$1 s f
	shift
	for s in "$@"; do
		f=$(find "$dir" -maxdepth 1 -name "*_dists_${s}_InRelease" \
			-mmin -1440 2>/dev/null | head -n1)
		[[ -n $f ]] || return 1
	done
}

# Write $1 with stdin's content when it differs; status 0 if written.
put() {
	local tmp
	tmp=$(mktemp)
	cat >"$tmp"
	if cmp -s "$tmp" "$1"; then
		rm -f "$tmp"
		return 1
	fi
	install -D -m 644 "$tmp" "$1"
	rm -f "$tmp"
}

# Sets POCKET, SUITE, SUITES (the chroot's) and REL: the candidate whose
# linux-image-amd64 is newest and has headers.  Only the candidates' lists
# are read (the host's apt, a private state directory): no chroot needed.
choose() {
	local c pockets=() opts ver rel best='' pocket
	mapfile -t opts < <(apt_opts)
	for c in "${CANDIDATES[@]}"; do
		read -r pocket _ <<<"$c"
		pockets+=("$pocket")
	done
	mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
	touch "$APTDIR/status"
	local changed=1
	{
		for pocket in "${pockets[@]}"; do
			echo "deb [signed-by=$KEYRING] $MIRROR $pocket main"
		done
	} | put "$APTDIR/sources.list" || changed=0
	if ((changed || FORCE_UPDATE)) || ! lists_fresh "$APTDIR/lists" "${pockets[@]}"; then
		say "apt-get update (${pockets[*]})"
		apt-get "${opts[@]}" update -qq >&2 || die "apt-get update of ${pockets[*]} failed"
	fi
	# Three apt-cache calls in all: each reads sid's lists anew (a second).
	local mad show hdr vers=() rels=() i
	mad=$(apt-cache "${opts[@]}" madison linux-image-amd64)
	show=$(apt-cache "${opts[@]}" show linux-image-amd64)
	for c in "${CANDIDATES[@]}"; do
		read -r pocket _ <<<"$c"
		ver=$(awk -F' *[|] *' -v p=" $pocket/main " '$3 ~ p { print $2; exit }' <<<"$mad")
		rel=
		[[ -n $ver ]] && rel=$(awk -v RS= -v v="Version: $ver" 'index($0, v "\n")' <<<"$show" |
			sed -n 's/^Depends:.*linux-image-\([0-9][^ ,]*-amd64\) .*/\1/p' | head -n1)
		vers+=("$ver") rels+=("$rel")
	done
	hdr=$(apt-cache "${opts[@]}" madison "${rels[@]/#/linux-headers-}" 2>/dev/null || true)
	for i in "${!CANDIDATES[@]}"; do
		c=${CANDIDATES[i]} ver=${vers[i]} rel=${rels[i]}
		read -r pocket _ <<<"$c"
		[[ -n $ver ]] || { say "$pocket: no linux-image-amd64"; continue; }
		[[ -n $rel ]] || { say "$pocket: linux-image-amd64 $ver names no image"; continue; }
		grep -q "^ *linux-headers-$rel .* $pocket/main " <<<"$hdr" ||
			{ say "$pocket: no linux-headers-$rel"; continue; }
		say "$pocket: linux-image-amd64 $ver ($rel)"
		if [[ -z $best ]] || dpkg --compare-versions "$ver" gt "$best"; then
			best=$ver REL=$rel
			read -r POCKET SUITE SUITES <<<"$c"
		fi
	done
	[[ -n $best ]] || die "no candidate kernel with headers (${pockets[*]})"
}

# ---------------------------------------------------------------- chroot
# Create $STATE/$SUITE-root once (debootstrap into a temporary name, so a
# half-made chroot is never taken for a good one); sets ROOT.
make_root() {
	local tmp log
	ROOT=$STATE/$SUITE-root
	[[ -e $ROOT/.nftp-root ]] && return 0
	if ! command -v debootstrap >/dev/null; then
		say "installing debootstrap"
		apt-get install -y -qq --no-install-recommends debootstrap >&2 ||
			{ apt-get update -qq >&2 &&
				apt-get install -y -qq --no-install-recommends debootstrap >&2; } ||
			die "cannot install debootstrap"
	fi
	tmp=$ROOT.new
	if [[ -e $tmp ]]; then
		# Never rm -rf through a bind mount (the repo) left by someone.
		findmnt -rn -o TARGET | grep -q "^$tmp/" && die "$tmp has mounts under it"
		rm -rf "$tmp"
	fi
	log=$STATE/debootstrap-$SUITE.log
	say "debootstrap --variant=minbase $SUITE $ROOT (log: $log)"
	# minbase: apt and dpkg, no init system or daemons; enough for Kbuild.
	if ! debootstrap --variant=minbase --keyring="$KEYRING" "$SUITE" "$tmp" \
		"$MIRROR" >"$log" 2>&1; then
		tail -n 15 "$log" >&2
		die "debootstrap failed"
	fi
	touch "$tmp/.nftp-root"
	mv -T "$tmp" "$ROOT"
}

# Run apt-get in the chroot (own namespace with /proc; see run_in).
chroot_apt() {
	"$SELF" --ns-root "$ROOT" apt-get "$@"
}

# shellcheck disable=SC2016 # dpkg-query format
installed_in_root() {
	[[ "$(chroot "$ROOT" dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == \
		"install ok installed" ]]
}

has_pkg_in_root() {
	chroot "$ROOT" apt-cache show "$1" >/dev/null 2>&1
}

install_kernel() {
	local pkgs=() p want log
	{
		echo "# Written by nft-tproxy scripts/newest-kernel.sh"
		echo "Types: deb"
		echo "URIs: $MIRROR"
		echo "Suites: $SUITES"
		echo "Components: main"
		echo "Signed-By: $KEYRING"
	} | put "$ROOT/etc/apt/sources.list.d/nftp.sources" && FORCE_UPDATE=1
	# debootstrap's own one-line source would list $SUITE twice.
	rm -f "$ROOT/etc/apt/sources.list"
	# shellcheck disable=SC2086 # SUITES is a list
	if ((FORCE_UPDATE)) || ! lists_fresh "$ROOT/var/lib/apt/lists" $SUITES; then
		say "apt-get update in $ROOT"
		chroot_apt update -qq >&2 || die "apt-get update in $ROOT failed"
	fi
	# linux-image-REL is, since Debian split it, a meta-package over
	# linux-binary-REL (the image) and linux-modules-REL that also pulls an
	# initramfs generator: the harness makes its own initramfs, so take the
	# two halves when they exist.  The headers pull the gcc they need, not
	# the plain `as` and `ld` (binutils) Kbuild calls.
	want=(make binutils "linux-headers-$REL")
	if has_pkg_in_root "linux-binary-$REL" && has_pkg_in_root "linux-modules-$REL"; then
		want+=("linux-binary-$REL" "linux-modules-$REL")
	else
		want+=("linux-image-$REL")
	fi
	for p in "${want[@]}"; do
		installed_in_root "$p" || pkgs+=("$p")
	done
	if ((${#pkgs[@]})); then
		log=$STATE/apt-$SUITE.log
		say "installing in $ROOT: ${pkgs[*]} (log: $log)"
		# dpkg's progress is not silenced by -qq: a log, shown on failure.
		if ! chroot_apt install -y -qq --no-install-recommends "${pkgs[@]}" \
			>"$log" 2>&1; then
			tail -n 15 "$log" >&2
			die "apt-get install in $ROOT failed"
		fi
	fi
	# vm-run and make_modindex read the module index from outside.
	if [[ ! -s $ROOT/lib/modules/$REL/modules.dep ]]; then
		"$SELF" --ns-root "$ROOT" depmod "$REL" || die "depmod $REL failed"
	fi
}

# ---------------------------------------------------------------- main
FORCE_UPDATE=0
case ${1:-} in
--root)
	root_of "${2:?--root needs a release}"
	exit
	;;
--run)
	rel=${2:?--run needs a release}
	shift 2
	r=$(root_of "$rel") || die "no chroot under $STATE holds $rel (run scripts/newest-kernel.sh)"
	((EUID == 0)) || die "--run must run as root (chroot, mount)"
	run_in "$r" "$@"
	;;
--ns)
	shift
	ns_main "$@"
	;;
--ns-root)
	# the chroot's own commands (apt, depmod): /proc only
	r=$2
	shift 2
	run_in "$r" -- "$@"
	;;
--update) FORCE_UPDATE=1 ;;
-h | --help) sed -n '3,23p' "$0"; exit 0 ;;
'') ;;
*) die "unknown argument '$1' (--update|--root REL|--run REL ...)" ;;
esac
((EUID == 0)) || die "must run as root (debootstrap, chroot, apt)"
export DEBIAN_FRONTEND=noninteractive
mkdir -p "$STATE"
# One installer at a time (apt in the chroot, debootstrap).
exec 9>"$STATE/lock"
flock 9

choose
make_root
install_kernel
r=$(root_of "$REL") || die "$REL: image or headers missing in $ROOT"
say "$REL from $POCKET in $r"
echo "$REL"

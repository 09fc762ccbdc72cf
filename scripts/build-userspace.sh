#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build nft-tproxy's patched libnftnl and nft (libnftnl-patches/,
# nft-patches/) from the upstream release tarballs, into a prefix of their
# own that never touches the system's nft or libraries:
#
#   build/userspace/src/      the sources, extracted and patched
#   build/userspace/prefix/   installed; nft is prefix/sbin/nft, linked with
#                             an rpath (runs without LD_LIBRARY_PATH); as
#                             root, a link to the build in the cache,
#                             $NFTP_CACHE (/var/cache/nft-tproxy)/userspace
#   build/userspace/log/      the build logs
#   build/userspace/stamp     what was built: the tarballs' hashes, the
#                             patches' and this script's; a run with the
#                             same inputs does nothing
#
# usage: scripts/build-userspace.sh [--tarballs DIR] [--out DIR] [--check]
#        scripts/build-userspace.sh --print-nft
#
#   --tarballs DIR  where libnftnl-1.2.8.tar.xz and nftables-1.1.1.tar.xz
#                   are; default $NFTP_UPSTREAM, else <repo>/../shared/upstream
#   --out DIR       instead of <repo>/build/userspace
#   --check         also run libnftnl's `make check` and print its result
#   --print-nft     print the path of the built nft, exit 0 if it is built
#                   and up to date, 1 if not; builds nothing
#
# Exit status: 0 built or up to date, 3 no tarball directory (callers take
# it as "skip"), 1 any other failure.
#
# The Debian packages the build needs are installed (as root, apt-get update
# only when one is missing).  Tarballs whose sha256 this script does not know
# are used with a warning.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SELF="$ROOT/scripts/build-userspace.sh"

LIBNFTNL=libnftnl-1.2.8
NFTABLES=nftables-1.1.1

# sha256 of the tarballs this script knows, and what each one is:
# - git-archive snapshots of the release commits (no configure), as in
#   ../shared/upstream/SHA256SUMS;
# - the netfilter.org release tarballs (with a generated configure), as
#   distributions package them: Chimera Linux cports main/libnftnl/template.py
#   (pkgver 1.2.8) and main/python-nftables/template.py (pkgver 1.1.1); the
#   same in Homebrew's libnftnl formula and Arch's nftables 1.1.1 PKGBUILD.
KNOWN=(
	"2346929188597e30854caa484fec2ea0517c3893b84937cefe297455218b1968 $LIBNFTNL.tar.xz git-archive of 06e2cbec41c7"
	"37fea5d6b5c9b08de7920d298de3cdc942e7ae64b1a3e8b880b2d390ae67ad95 $LIBNFTNL.tar.xz netfilter.org release"
	"774a9ec557130c8612c55f5bd428cec9be2e2b708f310b071138afef24fb82a8 $NFTABLES.tar.xz git-archive of 3271d78e70ec"
	"6358830f3a64f31e39b0ad421d7dadcd240b72343ded48d8ef13b8faf204865a $NFTABLES.tar.xz netfilter.org release"
)

# What the build needs, and no more: no docs, no CLI, JSON on.
PKGS=(make gcc libc6-dev autoconf automake libtool pkg-config bison flex
      patch xz-utils libmnl-dev libgmp-dev libjansson-dev)
NFTNL_CONFIGURE=(--disable-static)
NFT_CONFIGURE=(--disable-static --disable-man-doc --without-cli --with-json
	       --without-xtables)

say() { echo "build-userspace: $*"; }
die() { echo "build-userspace: FAILED: $*" >&2; exit 1; }

usage()
{
	sed -n '/^# usage:/,/^# Exit status/{/^# Exit status/d;s/^# \{0,1\}//;p}' "$SELF"
	exit "${1:-0}"
}

tarballs=${NFTP_UPSTREAM:-}
out=$ROOT/build/userspace
check=0
print_nft=0
while (($#)); do
	case $1 in
	--tarballs) (($# >= 2)) || usage 1; tarballs=$2; shift ;;
	--out) (($# >= 2)) || usage 1; out=$2; shift ;;
	--check) check=1 ;;
	--print-nft) print_nft=1 ;;
	-h | --help) usage 0 ;;
	*) echo "build-userspace: unknown argument '$1'" >&2; usage 1 ;;
	esac
	shift
done

SRC=$out/src
PREFIX=$out/prefix
LOG=$out/log
STAMP=$out/stamp
NFT=$PREFIX/sbin/nft

# ------------------------------------------------------------ the inputs

if [[ -z $tarballs && -d $ROOT/../shared/upstream ]]; then
	tarballs=$(cd "$ROOT/../shared/upstream" && pwd -P)
fi

have_tarballs()
{
	[[ -n $tarballs && -f $tarballs/$LIBNFTNL.tar.xz &&
	   -f $tarballs/$NFTABLES.tar.xz ]]
}

# the patch files of a series, in order (series: '#' comments, names)
series()
{
	local dir=$1 line
	[[ -f $dir/series ]] || die "no ${dir#"$ROOT"/}/series"
	while read -r line; do
		[[ -z $line || $line == \#* ]] && continue
		[[ -f $dir/$line ]] || die "${dir#"$ROOT"/}/series names $line, which is not there"
		echo "$dir/$line"
	done < "$dir/series"
}

# check_series DIR RELEASE: the series says it applies to RELEASE
check_series()
{
	grep -qx "# release: $2" "$1/series" ||
		die "${1#"$ROOT"/}/series is not for $2 (no '# release: $2' line)"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# The manifest: everything the build depends on, one line each.  Without
# the tarballs at hand (--print-nft), their hashes are taken from the stamp.
manifest()
{
	local t h p patches=()

	mapfile -t patches < <(series "$ROOT/libnftnl-patches"; series "$ROOT/nft-patches")
	echo "script $(sha "$SELF")"
	for t in "$LIBNFTNL.tar.xz" "$NFTABLES.tar.xz"; do
		if have_tarballs; then
			h=$(sha "$tarballs/$t")
		else
			h=$(sed -n "s/^tarball $t //p" "$STAMP" 2>/dev/null)
		fi
		echo "tarball $t ${h:-unknown}"
	done
	for p in "$ROOT/libnftnl-patches/series" "$ROOT/nft-patches/series" \
		 "${patches[@]}"; do
		echo "patch ${p#"$ROOT"/} $(sha "$p")"
	done
	echo "configure libnftnl ${NFTNL_CONFIGURE[*]}"
	echo "configure nftables ${NFT_CONFIGURE[*]}"
}

# the series must be complete before anything else
series "$ROOT/libnftnl-patches" > /dev/null
series "$ROOT/nft-patches" > /dev/null

up_to_date()
{
	[[ -x $NFT && -f $STAMP ]] && [[ "$(manifest)" == "$(cat "$STAMP")" ]]
}

if ((print_nft)); then
	if up_to_date; then
		echo "$NFT"
		exit 0
	fi
	if [[ -x $NFT ]]; then
		say "$NFT is out of date: run scripts/build-userspace.sh" >&2
	else
		say "not built: run scripts/build-userspace.sh" >&2
	fi
	exit 1
fi

if ! have_tarballs; then
	cat >&2 <<-EOF
	build-userspace: no tarball directory${tarballs:+ with both tarballs at $tarballs}.
	  Download the release tarballs from netfilter.org,
	    https://www.netfilter.org/projects/libnftnl/files/$LIBNFTNL.tar.xz
	    https://www.netfilter.org/projects/nftables/files/$NFTABLES.tar.xz
	  into one directory, and pass it as --tarballs DIR or NFTP_UPSTREAM=DIR,
	  or make it $(dirname "$ROOT")/shared/upstream (the default).
	EOF
	exit 3
fi
tarballs=$(cd "$tarballs" && pwd -P)

check_series "$ROOT/libnftnl-patches" "${LIBNFTNL/-/ }"
check_series "$ROOT/nft-patches" "${NFTABLES/-/ }"

# ------------------------------------------------------------ the build

installed()
{
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

install_deps()
{
	local p missing=()

	command -v dpkg-query > /dev/null || {
		say "not a Debian system: make sure these are installed: ${PKGS[*]}"
		return 0
	}
	for p in "${PKGS[@]}"; do
		installed "$p" || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	((EUID == 0)) || die "missing Debian packages ${missing[*]}: install them, or run as root"
	say "installing ${missing[*]}"
	mkdir -p "$LOG"
	{
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
			install -y -qq --no-install-recommends "${missing[@]}"
	} > "$LOG/apt.log" 2>&1 || {
		tail -n 20 "$LOG/apt.log" >&2
		die "apt-get could not install ${missing[*]} (log: $LOG/apt.log)"
	}
}

check_tarball()
{
	local t=$1 h k f
	h=$(sha "$tarballs/$t")
	for k in "${KNOWN[@]}"; do
		read -r -a f <<< "$k"
		if [[ ${f[0]} == "$h" && ${f[1]} == "$t" ]]; then
			say "$t: ${f[*]:2}"
			return 0
		fi
	done
	echo "build-userspace: WARNING: $t has sha256 $h, which this script does not know (not a netfilter.org release, nor the git-archive snapshot of the release commit); using it anyway" >&2
}

# run NAME CMD...: CMD's output to $LOG/NAME.log; its tail on failure
run()
{
	local name=$1
	shift
	if ! "$@" >> "$LOG/$name.log" 2>&1; then
		tail -n 30 "$LOG/$name.log" >&2
		die "$name: '$*' failed (log: $LOG/$name.log)"
	fi
}

# unpack TARBALL PATCHDIR: a fresh patched tree in $SRC
unpack()
{
	local name=$1 dir=$2 p patches=()
	mapfile -t patches < <(series "$dir")
	tar -C "$SRC" -xJf "$tarballs/$name.tar.xz"
	[[ -d $SRC/$name ]] || die "$name.tar.xz has no $name/ directory"
	for p in "${patches[@]}"; do
		run "${name%%-*}" patch -d "$SRC/$name" -p1 --batch --forward -i "$p"
	done
	say "$name: ${#patches[@]} patches applied"
}

libnftnl_check()
{
	local log=$SRC/$LIBNFTNL/tests/test-suite.log
	say "libnftnl: make check"
	if ! make -C "$SRC/$LIBNFTNL" -j"$jobs" check > "$LOG/libnftnl-check.log" 2>&1; then
		grep -E '^(FAIL|ERROR):' "$LOG/libnftnl-check.log" >&2 || :
		[[ -f $log ]] && grep -E '^# (TOTAL|PASS|FAIL|ERROR):' "$log" >&2
		die "libnftnl: make check failed (log: $LOG/libnftnl-check.log)"
	fi
	echo "libnftnl: make check: $(grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR):' "$log" |
		tr -s ' ' | sed 's/^# //' | paste -sd, | sed 's/,/, /g')"
}

jobs=$(nproc 2>/dev/null || echo 2)
mkdir -p "$out"
exec 9> "$out/.lock"
flock 9

if up_to_date; then
	say "up to date: $NFT"
	((check)) && libnftnl_check
	exit 0
fi

# A cache outside the tree ($NFTP_CACHE, default /var/cache/nft-tproxy;
# empty: none), keyed by the manifest: a fresh clone with the same inputs
# links the prefix built there instead of building again (97 s here).
# The prefix is built in the cache, so nft's rpath stays valid whichever
# clone links it.  --check needs the sources: it always builds here.
cdir=''
cache=${NFTP_CACHE-/var/cache/nft-tproxy}
if [[ -n $cache ]] && ((!check)) && mkdir -p "$cache/userspace" 2> /dev/null &&
   [[ -w $cache/userspace ]]; then
	cdir=$cache/userspace/$(manifest | sha256sum | cut -c1-16)
	exec 8> "$cache/userspace/.lock"
	flock 8
	if [[ -x $cdir/prefix/sbin/nft && -f $cdir/stamp ]] &&
	   [[ "$(manifest)" == "$(cat "$cdir/stamp")" ]]; then
		rm -rf "$PREFIX" "$STAMP" "$SRC"
		ln -s "$cdir/prefix" "$PREFIX"
		# nft_userspace.sh runs nftables' tests/py and tests/shell
		mkdir -p "$SRC"
		cp -a "$cdir/src/." "$SRC/"
		cp "$cdir/stamp" "$STAMP"
		say "from the cache: $NFT ($cdir)"
		exit 0
	fi
	# keep the two newest builds, and the one about to be made
	find "$cache/userspace" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' |
		sort -rn | tail -n +3 | cut -d' ' -f2- | xargs -r rm -rf
fi

start=$SECONDS
install_deps
check_tarball "$LIBNFTNL.tar.xz"
check_tarball "$NFTABLES.tar.xz"

rm -rf "$SRC" "$PREFIX" "$LOG" "$STAMP"
mkdir -p "$SRC" "$LOG"
if [[ -n $cdir ]]; then
	rm -rf "$cdir"
	mkdir -p "$cdir/prefix"
	ln -s "$cdir/prefix" "$PREFIX"
	PREFIX=$cdir/prefix
else
	mkdir -p "$PREFIX"
fi

unpack "$LIBNFTNL" "$ROOT/libnftnl-patches"
unpack "$NFTABLES" "$ROOT/nft-patches"

# Release tarballs have a configure, git-archive snapshots do not; the
# patches change configure.ac and Makefile.am anyway: regenerate both.
say "$LIBNFTNL: building"
(
	cd "$SRC/$LIBNFTNL"
	run libnftnl autoreconf -fi
	run libnftnl ./configure --prefix="$PREFIX" "${NFTNL_CONFIGURE[@]}"
	run libnftnl make -j"$jobs"
	run libnftnl make install
)

say "$NFTABLES: building"
(
	cd "$SRC/$NFTABLES"
	export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig
	run nftables autoreconf -fi
	run nftables ./configure --prefix="$PREFIX" "${NFT_CONFIGURE[@]}" \
		LDFLAGS="-Wl,-rpath,$PREFIX/lib"
	run nftables make -j"$jobs"
	run nftables make install
)

"$NFT" -V | grep -q '^  nft-tproxy:' || die "$NFT does not list nft-tproxy's extensions"
manifest > "$STAMP"
if [[ -n $cdir ]]; then
	mkdir -p "$cdir/src/$NFTABLES"
	cp -a "$SRC/$NFTABLES/tests" "$SRC/$NFTABLES/py" "$cdir/src/$NFTABLES/"
	cp "$STAMP" "$cdir/stamp"
fi
say "built in $((SECONDS - start)) s: $NFT"
((check)) && libnftnl_check
exit 0

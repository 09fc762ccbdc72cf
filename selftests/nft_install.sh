#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Installing nft-tproxy as the README says, with Debian's own tools, in the
# VM guest (whose root is a throw-away overlay). Each state is checked the
# way a user meets it: a ruleset using tproxy and socket autoloads the
# modules, we check which stack that is, and a TCP connection (IPv4 and
# IPv6) from the client to server1:8080 reaches the transparent proxy with
# its original destination.
#   dkms      `dkms install` of the tree scripts/dkms-stage.sh built on the
#             host (the README's `dkms add` + `dkms build`, in private
#             trees): all three modules in updates/dkms, ours load
#             (version of dkms.conf, nftp_core, out-of-tree taint).
#             Debian's dkms once refused nft_tproxy/nft_socket there ("exactly
#             matches what is already found in kernel"): with no version on
#             either side it took ours for the in-tree module.
#   refused   while DKMS owns those files, `make install` refuses and
#             names the dkms command.
#   removed   `dkms remove`: modprobe resolves the in-tree modules again.
#   make      `make install` (scripts/install-modules.sh, which the target
#             runs after the build) into the same directory: ours load.
#   uninstall `make uninstall`: the in-tree modules load again.
#   not yet   `make install` while the in-tree modules run: make install
#             and nftp-diagnose say that ours has not taken over yet.
# On a kernel built without the in-tree modules, `make uninstall` must leave
# no tproxy expression, and the last step is skipped.
# depmod runs for real at each step, on the guest's module tree cut down to
# kernel/{arch,crypto,lib,net} and veth: over all ~4000 modules it takes 1-2
# minutes under TCG. The tree and the harness's modules are put back at the
# end. Without a DKMS build for the kernel (the newest one has its headers
# only in a chroot) the dkms steps are skipped and said so.
# Reference run: there is nothing of ours to install (skip).

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin nft python

[ "${NFTP_MODE:-}" = ours ] || skip_all "installs nft-tproxy's modules: nothing to do with the in-tree ones"
[ "${NFTP_IN_VM:-}" = 1 ] || skip_all "writes to /lib/modules: runs only in the scripts/vm-run guest"
checktool "depmod --version" "run test without kmod"

ROOT=${NFTP_ROOT:?}
KVER=$(uname -r)
MODDIR=/lib/modules/$KVER
VER=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$ROOT/dkms.conf")
STAGE=$ROOT/build/dkms/$KVER
DKMS=(--sourcetree "$STAGE/src" --dkmstree "$STAGE/tree")
INSTALL=(env NFTP_DKMS_TREE="$STAGE/tree" "$ROOT/scripts/install-modules.sh")
BUILD=${NFTP_BUILD:-$ROOT/build/$KVER}
KFULL=/run/nftp-kernel-full
# a kernel built without the in-tree tproxy/socket (make check-nointree):
# uninstalling leaves none, and nothing can be "not yet" taken over
# (-H: a guest of a kernel not in /boot has kernel/ as a symlink, vm-run)
INTREE=1
[ -n "$(find -H "$MODDIR/kernel" -name 'nft_tproxy.ko*' -print -quit 2>/dev/null)" ] || INTREE=0
KCUT=$TMPD/kernel
PORT=12345

# ------------------------------------------------------------------ helpers

# unload: flush the rules that pin the modules, then unload whichever stack
# is loaded (rule destruction is deferred: retry)
# shellcheck disable=SC2317 # called through busywait
try_unload()
{
	rmmod nft_tproxy nft_socket 2>/dev/null
	rmmod nftp_core nf_tproxy_ipv4 nf_tproxy_ipv6 nf_socket_ipv4 nf_socket_ipv6 2>/dev/null
	local m
	for m in nft_tproxy nft_socket nftp_core nf_tproxy_ipv4 nf_socket_ipv4; do
		[ -d "/sys/module/$m" ] && return 1
	done
	return 0
}
unload()
{
	flush_ruleset "$nsrouter" 2>/dev/null
	busywait "$BUSYWAIT_TIMEOUT" try_unload && return 0
	fail "$1: cannot unload the stack loaded now"
	return 1
}

# cut_tree: the guest's kernel/ modules cut down (see the top); the
# harness's copies of ours (updates/nft-tproxy) out of the way.  Bind
# mounts, not symlinks: dkms looks for the in-tree module it would
# replace with find, which does not follow symlinks.
CUT_MOUNTS=()
cut_tree()
{
	local d
	mkdir -p "$KFULL" "$KCUT/drivers/net"
	mount --bind "$MODDIR/kernel" "$KFULL" || return 1
	for d in arch crypto lib net; do
		# a kernel of our own builds some of them in
		[ -d "$KFULL/$d" ] || continue
		mkdir -p "$KCUT/$d"
		mount --bind "$KFULL/$d" "$KCUT/$d" || return 1
		CUT_MOUNTS+=("$KCUT/$d")
	done
	cp "$KFULL"/drivers/net/veth.ko* "$KCUT/drivers/net/" || return 1
	mount --rbind "$KCUT" "$MODDIR/kernel" || return 1
	rm -rf "$MODDIR/updates/nft-tproxy"
	depmod -a "$KVER"
}

# restore: the whole tree, and ours loaded as the harness left them
# shellcheck disable=SC2317 # called by lib.sh's EXIT trap
restore()
{
	unload restore
	local m
	mountpoint -q "$MODDIR/kernel" && umount -R "$MODDIR/kernel"
	for m in "${CUT_MOUNTS[@]}"; do
		umount "$m"
	done
	mountpoint -q "$KFULL" && umount "$KFULL"
	rm -rf "$MODDIR/updates/dkms"
	"$ROOT/scripts/guest-load-modules" ours > "$TMPD/restore.log" 2>&1 ||
		{ echo "FAIL: restore: guest-load-modules ours failed"; indent < "$TMPD/restore.log"; }
}

ruleset()
{
	cat <<-EOF
	table inet install {
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			meta l4proto tcp socket transparent 1 meta mark set 1 accept
			meta nfproto ipv4 tcp dport 8080 tproxy ip to :$PORT meta mark set 1 accept
			meta nfproto ipv6 tcp dport 8080 tproxy ip6 to :$PORT meta mark set 1 accept
		}
	}
	EOF
}

# uncompressed PATH: a module's path without .xz, .zst or .gz
uncompressed()
{
	local p=${1%.xz}
	p=${p%.zst}
	echo "${p%.gz}"
}

# stack_is DESC ours|in-tree: what the ruleset autoloaded
stack_is()
{
	local desc=$1 want=$2 m path taint v bad=''
	for m in nft_tproxy nft_socket; do
		[ -d "/sys/module/$m" ] || { bad+=" $m not loaded;"; continue; }
		path=$(modinfo -n "$m" 2>/dev/null)
		taint=$(cat "/sys/module/$m/taint")
		v=$(cat "/sys/module/$m/version" 2>/dev/null)
		if [ "$want" = ours ]; then
			# DKMS compresses as the kernel's own modules are (6.12: xz)
			[ "$(uncompressed "$path")" = "$MODDIR/updates/dkms/$m.ko" ] ||
				bad+=" modprobe resolves $m to $path;"
			[[ $taint == *O* ]] || bad+=" $m is not out-of-tree (taint '$taint');"
			[ "$v" = "$VER" ] || bad+=" $m version '$v', not $VER;"
		else
			[[ $path == "$MODDIR/kernel/"* ]] || bad+=" modprobe resolves $m to $path;"
			[[ $taint != *O* ]] || bad+=" $m is out-of-tree;"
		fi
	done
	if [ "$want" = ours ]; then
		[ -d /sys/module/nftp_core ] || bad+=" nftp_core not loaded;"
	else
		[ -d /sys/module/nftp_core ] && bad+=" nftp_core loaded;"
	fi
	if [ -n "$bad" ]; then
		fail "$desc: not the $want stack:$bad"
		return 1
	fi
	pass "$desc: the ruleset autoloaded the $want modules ($(modinfo -n nft_tproxy))"
}

# works DESC WANT: load the ruleset, check the stack, proxy v4 and v6
works()
{
	local desc=$1 want=$2
	load_ruleset "$nsrouter" "$desc" < <(ruleset) || return 1
	stack_is "$desc" "$want" || return 1
	next_sport
	expect_reply "$desc: IPv4 tcp" "$nsclient" tcp "$S1_4:8080" "$SPORT" 1 \
		proxy "$S1_4:8080" "$C4:$SPORT"
	next_sport
	expect_reply "$desc: IPv6 tcp" "$nsclient" tcp "[$S1_6]:8080" "$SPORT" 1 \
		proxy "[$S1_6]:8080" "[$C6]:$SPORT"
}

# took WHAT: how long since the last call (depmod and dkms are slow under TCG)
T0=$SECONDS
took() { log "$1 took $((SECONDS - T0)) s"; T0=$SECONDS; }

# resolves_in_tree DESC: modprobe would load the in-tree modules now
# (the traffic check of the in-tree stack is the last step's)
resolves_in_tree()
{
	local m path bad=''
	for m in nft_tproxy nft_socket; do
		path=$(modinfo -n "$m" 2>/dev/null)
		[[ $path == "$MODDIR/kernel/"* ]] || bad+=" $m resolves to '$path';"
	done
	if [ -n "$bad" ]; then
		fail "$1: not back to the in-tree modules:$bad"
	else
		pass "$1: modprobe resolves nft_tproxy and nft_socket to the in-tree modules again"
	fi
}

# step DESC CMD...: CMD must succeed; its output (also left in OUT) is shown
OUT=''
step()
{
	local desc=$1
	shift
	if OUT=$("$@" 2>&1); then
		pass "$desc"
	else
		fail "$desc failed:"
	fi
	[ -z "$OUT" ] || echo "$OUT" | indent
	return 0
}

# files_in DESC N: N of our three modules in updates/dkms
files_in()
{
	local n
	n=$(find "$MODDIR/updates/dkms" -maxdepth 1 \( -name 'nftp_core.ko*' -o -name 'nft_tproxy.ko*' \
		-o -name 'nft_socket.ko*' \) 2>/dev/null | wc -l)
	if [ "$n" -eq "$2" ]; then
		pass "$1: $n of nftp_core, nft_tproxy, nft_socket in updates/dkms"
	else
		fail "$1: $n of nftp_core, nft_tproxy, nft_socket in updates/dkms, expected $2:"
		find "$MODDIR/updates/dkms" 2>&1 | indent
	fi
}

# ------------------------------------------------------------------ steps

topology || exit "$ksft_fail"
start_peer proxy4 "$nsrouter" tcp "0.0.0.0:$PORT" --role proxy --transparent || exit "$ksft_fail"
start_peer proxy6 "$nsrouter" tcp "[::]:$PORT" --role proxy --transparent || exit "$ksft_fail"

on_exit_hook=restore
unload "in-tree" || exit "$ksft_fail"
cut_tree || { fail "cannot cut the module tree down"; exit "$ksft_fail"; }
took "setting up (topology, proxies, unload, cut tree, depmod)"

if [ ! -e "$STAGE/stamp" ] && [ -e "$STAGE.log" ]; then
	fail "dkms: the DKMS build on the host failed (scripts/dkms-stage.sh $KVER):"
	tail -n 20 "$STAGE.log" | indent
elif [ ! -e "$STAGE/stamp" ]; then
	echo "SKIP: dkms: no DKMS build for $KVER in ${STAGE#"$ROOT"/} (scripts/dkms-stage.sh $KVER; the newest kernel has its headers only in a chroot)"
elif ! command -v dkms > /dev/null; then
	echo "SKIP: dkms: no dkms here (scripts/deps.sh installs it)"
else
	step "dkms install nft-tproxy/$VER -k $KVER" \
		dkms install -m nft-tproxy -v "$VER" -k "$KVER" "${DKMS[@]}"
	grep -q "will not replace" <<< "$OUT" && fail "dkms: refused to replace a module (above)"
	took "dkms install"
	files_in "dkms install" 3
	works "dkms install" ours

	if out=$("${INSTALL[@]}" install "$KVER" "$BUILD" 2>&1); then
		fail "make install went ahead while DKMS owns the modules: $out"
	elif grep -q "dkms remove" <<< "$out"; then
		pass "make install refused while DKMS owns the modules, naming 'dkms remove'"
	else
		fail "make install refused without naming 'dkms remove': $out"
	fi

	unload "dkms install" || exit "$ksft_fail"
	took "checking ours"
	step "dkms remove nft-tproxy/$VER -k $KVER" \
		dkms remove -m nft-tproxy -v "$VER" -k "$KVER" "${DKMS[@]}"
	took "dkms remove"
	files_in "dkms remove" 0
	resolves_in_tree "dkms remove"
fi

step "make install" "${INSTALL[@]}" install "$KVER" "$BUILD"
took "make install"
files_in "make install" 3
works "make install" ours
unload "make install" || exit "$ksft_fail"

step "make uninstall" "${INSTALL[@]}" uninstall "$KVER" "$BUILD"
took "make uninstall"
files_in "make uninstall" 0
if ((!INTREE)); then
	# a kernel built without them: no tproxy expression at all now
	if out=$(ruleset | ip netns exec "$nsrouter" "$NFT" -f - 2>&1); then
		fail "make uninstall: a tproxy ruleset still loads ($(modinfo -n nft_tproxy 2>&1))"
	else
		pass "make uninstall: no tproxy expression left (this kernel has no in-tree one): $(head -n 1 <<< "$out")"
	fi
	echo "SKIP: not yet: this kernel has no in-tree nft_tproxy to be running"
	exit "$ret"
fi
works "make uninstall" in-tree

# An install that has not taken yet: ours installed while the kernel's own
# runs (the ruleset above keeps it loaded).  make install and nftp-diagnose
# both say so.
step "make install, the kernel's own loaded" "${INSTALL[@]}" install "$KVER" "$BUILD"
took "make install"
if grep -q "the in-tree nft_tproxy is loaded; ours takes over once it is unloaded" <<< "$OUT"; then
	pass "make install: says the kernel's own module still runs"
else
	fail "make install: no word that the kernel's own module still runs"
fi
out=$("$PYTHON" "$ROOT/scripts/nftp-diagnose" --netns "$nsrouter" --nft "$NFT" 2>&1)
if grep -q "nft_tproxy: nft-tproxy's is installed .* but the kernel's own, loaded before, still runs" <<< "$out"; then
	pass "nftp-diagnose: ours installed, the kernel's own still running"
else
	fail "nftp-diagnose: no warning that ours is installed but the kernel's own runs:"
	echo "$out" | indent
fi
step "make uninstall" "${INSTALL[@]}" uninstall "$KVER" "$BUILD"
took "make uninstall"
files_in "make uninstall" 0

exit "$ret"

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Checks of the harness that only the host can make (the selftests run
# inside the guest), as TAP lines "ok N name" / "not ok N name # why",
# then "N passed, N failed":
#   tmp-checkout   a copy of the tree under /tmp boots the VM and the guest
#                  sees it at that path (the guest mounts its own /tmp)
#   run-checkout   a checkout under /run, which the guest mounts anew, is
#                  refused at once, with a message that says what to do
#   install-tools  `make install-tools` puts nftp-diagnose and its manual
#                  page under DESTDIR/PREFIX, they run, uninstall-tools
#                  takes them out
#   diagnose-host  the installed nftp-diagnose on this host's kernel (its
#                  own tproxy and socket, built in or modules) in a network
#                  namespace: examples/gateway.nft with its policy routing
#                  and proxy sockets gives nothing wrong; without the IPv4
#                  fwmark rule it says that rule is missing
#   diagnose-static selftests/nft_diagnose.sh --static on this host's kernel:
#                  each configuration fault it knows, in a namespace (the
#                  traffic half needs veth pairs: the guest runs it)
#   lint           scripts/lint.sh (make lint) finds nothing
#   kconfig-NAME   scripts/kconfig-check.sh, a line per kernel config: the
#                  modules build against 6.1 without the in-tree
#                  tproxy/socket, without IPv6, cgroups, socket cgroup
#                  data or conntrack
# usage: host-checks.sh [--kver V]
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd -P)
kver=${KVER:-}
[ "${1:-}" = --kver ] && kver=$2
kver=${kver:-$("$top/scripts/kver.sh")}

n=0 passed=0 failed=0
result() { # name ok|skip:why|detail
	n=$((n + 1))
	if [ "${2#skip:}" != "$2" ]; then
		echo "ok $n $1 # SKIP ${2#skip:}"
	elif [ "$2" = ok ]; then
		echo "ok $n $1"
		passed=$((passed + 1))
	else
		echo "not ok $n $1 # $2"
		failed=$((failed + 1))
	fi
}

# a copy of the tree, as a user's clone would have it (no build/, no .git)
copy_tree() {
	mkdir -p "$1"
	tar -C "$top" --exclude=./build --exclude=./.git -cf - . | tar -C "$1" -xf -
}

work=$(mktemp -d /tmp/nftp-host-checks.XXXXXX)
runw=''
trap 'rm -rf "$work" ${runw:+"$runw"}' EXIT

copy_tree "$work/checkout"
out=$(cd "$work/checkout" && scripts/vm-run --kver "$kver" --no-load -- \
	sh -c 'test -r Makefile && pwd' 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && grep -qx "$work/checkout" <<<"$out"; then
	result tmp-checkout ok
else
	result tmp-checkout "vm-run from $work/checkout: exit $rc, $(tail -n 3 <<<"$out" | tr '\n' ' ')"
fi

runw=$(mktemp -d /run/nftp-host-checks.XXXXXX)
mkdir -p "$runw/scripts"
cp "$top/scripts/vm-run" "$runw/scripts/"
out=$("$runw/scripts/vm-run" --kver "$kver" --no-load -- true 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && grep -q "move or clone it elsewhere" <<<"$out"; then
	result run-checkout ok
else
	result run-checkout "vm-run from $runw: exit $rc, $(tail -n 3 <<<"$out" | tr '\n' ' ')"
fi

inst=$work/inst
if ! out=$(make -s -C "$work/checkout" install-tools DESTDIR="$inst" PREFIX=/usr 2>&1); then
	result install-tools "make install-tools: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
elif ! "$inst/usr/sbin/nftp-diagnose" --help | grep -q -- --netns; then
	result install-tools "the installed nftp-diagnose does not run"
elif ! man -l "$inst/usr/share/man/man8/nftp-diagnose.8" 2>/dev/null | grep -q "nftp-diagnose"; then
	result install-tools "man cannot read the installed manual page"
elif ! make -s -C "$work/checkout" uninstall-tools DESTDIR="$inst" PREFIX=/usr ||
	[ -n "$(find "$inst" -type f)" ]; then
	result install-tools "uninstall-tools left $(find "$inst" -type f | tr '\n' ' ')"
else
	result install-tools ok
fi

# diagnose_host DIAG EXAMPLE: inside `unshare -n` (the check below)
diagnose_host() {
	local diag=$1 ex=$2 line pid
	ip link set lo up
	sed 's/^define LAN_IF = .*/define LAN_IF = "lo"/' "$ex" | nft -f - || return
	while read -r line; do
		# shellcheck disable=SC2086 # the command's words
		${line} || return
	done < <(sed -n 's/^#   \(ip .*\)$/\1/p' "$ex")
	# the proxy's sockets: TCP and UDP, IPv4 and IPv6, IP_TRANSPARENT
	python3 -c '
import socket, time
keep = []
for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(fam, kind)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.setsockopt(socket.SOL_IP, 19, 1)  # IP_TRANSPARENT
        s.bind((addr, 12345))
        if kind == socket.SOCK_STREAM:
            s.listen()
        keep.append(s)
open("'"$work/sockets.up"'", "w").close()
time.sleep(60)' > /dev/null 2>&1 &
	pid=$!
	for _ in $(seq 50); do
		[ -e "$work/sockets.up" ] && break
		sleep 0.1
	done
	"$diag" > "$work/diag-good.txt" 2>&1
	echo "good=$?"
	ip rule del fwmark 1 lookup 100
	"$diag" > "$work/diag-norule.txt" 2>&1
	echo "norule=$?"
	grep -c "IPv4: no ip rule takes mark 0x1" "$work/diag-norule.txt"
	kill "$pid"
}

if ! unshare -n true 2>/dev/null; then
	result diagnose-host "skip:no network namespace here (unshare -n)"
elif ! printf '%s\n' 'table ip t {' 'chain c {' 'type filter hook prerouting priority 0' \
	'meta l4proto tcp tproxy to :1' 'socket transparent 1 accept' '}' '}' |
	unshare -n nft -f - 2>/dev/null; then
	result diagnose-host "skip:this host's kernel has no nft tproxy or socket"
else
	make -s -C "$work/checkout" install-tools DESTDIR="$inst" PREFIX=/usr > /dev/null 2>&1
	export -f diagnose_host
	export work
	out=$(unshare -n bash -c 'diagnose_host "$@"' _ "$inst/usr/sbin/nftp-diagnose" \
		"$work/checkout/examples/gateway.nft" 2>&1)
	if [ "$out" = "$(printf 'good=0\nnorule=1\n1')" ]; then
		result diagnose-host ok
	else
		result diagnose-host "$(tr '\n' ' ' <<<"$out") $(tr '\n' ' ' < "$work/diag-good.txt" 2>/dev/null | tail -c 600)"
	fi
fi

out=$(cd "$work/checkout" && NFT=${NFT:-nft} bash selftests/nft_diagnose.sh --static 2>&1)
case $? in
0) result diagnose-static ok ;;
4) result diagnose-static "skip:$(grep -m1 '^SKIP' <<<"$out")" ;;
*) result diagnose-static "$(grep -E '^(FAIL|    \|)' <<<"$out" | head -n 8 | tr '\n' ' ')" ;;
esac

# make bench's tools: qemu loads the plugin and refuses a bad argument;
# bench-report computes a known table and refuses markers that do not
# match the runs
bench_fixture() { # DIR MODE KERNEL-COUNT-PER-RUN...
	local d=$1/$2.1 k=0 c
	shift 2
	mkdir -p "$d"
	: >"$d/runs" && : >"$d/kinsn.log"
	for c in "$@"; do
		echo "run ${c%%=*} udp 100" >>"$d/runs"
		echo "kinsn: mark 1 kernel $k user 0" >>"$d/kinsn.log"
		k=$((k + ${c#*=} * 100 + 7))
		echo "kinsn: mark 2 kernel $((k - 7)) user 0" >>"$d/kinsn.log"
	done
}
bench_check() {
	local so=$work/bench/kinsn.so b=$work/bench-runs
	make -s -C "$work/checkout/tools/bench" O="$work/bench" || return
	# loaded, qemu waits (-S) until the timeout ends it
	timeout 5 qemu-system-x86_64 -M none -display none -nodefaults -S \
		-plugin "$so" -d plugin -D "$work/kinsn.log" >"$work/qemu.txt" 2>&1
	[ $? -eq 124 ] || { echo "qemu did not run with the plugin: $(head -c 300 "$work/qemu.txt")"; return; }
	if timeout 5 qemu-system-x86_64 -M none -display none -nodefaults -S \
		-plugin "$so,bogus=1" -d plugin -D "$work/kinsn.log" >/dev/null 2>&1 ||
		! grep -q 'the one argument is profile=PATH' "$work/kinsn.log"; then
		echo "the plugin took a bad argument"
		return
	fi
	bench_fixture "$b" ours direct=1000 nft=1330 direct=1002 nft=1331 direct=1000 nft=1400
	bench_fixture "$b" ref direct=998 nft=1310 direct=1000 nft=1312
	"$work/checkout/scripts/bench-report" "$b" >"$work/report.txt" || return
	if ! grep -Eq '^  direct +5 +1000 +0\.40% +1\.000$' "$work/report.txt" ||
		! grep -Eq '^  nft \(ours\) +3 +1331 +5\.26% +1\.330$' "$work/report.txt" ||
		! grep -Eq '^  nft, ours / in-tree: 1\.015$' "$work/report.txt"; then
		echo "bench-report: $(tr '\n' ' ' <"$work/report.txt")"
		return
	fi
	echo "kinsn: mark 1 kernel 0 user 0" >>"$b/ref.1/kinsn.log"
	"$work/checkout/scripts/bench-report" "$b" >/dev/null 2>&1 &&
		echo "bench-report took a marker without its run"
}
out=$(bench_check 2>&1)
result bench-tools "${out:-ok}"

# make lint, on the tree itself (a copy has no git to list the files)
if out=$(cd "$top" && scripts/lint.sh 2>&1); then
	result lint ok
else
	result lint "$(tail -n 1 <<<"$out"): $(grep '^== ' <<<"$out" | cut -c4- | tr '\n' ' ')"
fi

# the modules against trees configured as the kernels that need us are
out=$(cd "$top" && scripts/kconfig-check.sh 2>&1)
lines=$(grep -E '^(PASS|FAIL) kconfig ' <<<"$out")
if [ -z "$lines" ]; then
	result kconfig "scripts/kconfig-check.sh did not run: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
fi
while read -r st _ name why; do
	name=${name%:}
	if [ "$st" = PASS ]; then
		result "kconfig-$name" ok
	else
		result "kconfig-$name" "$why"
	fi
done <<<"$lines"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

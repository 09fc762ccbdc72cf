#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Checks of the harness that only the host can make (the selftests run
# inside the guest), as TAP lines "ok N name" / "not ok N name # why",
# then "N passed, N failed":
#   tmp-checkout   a copy of the tree under /tmp boots the VM and the guest
#                  sees it at that path (the guest mounts its own /tmp)
#   run-checkout   a checkout under /run, which the guest mounts anew, is
#                  refused at once, with a message that says what to do
# usage: host-checks.sh [--kver V]
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd -P)
kver=${KVER:-}
[ "${1:-}" = --kver ] && kver=$2
kver=${kver:-$("$top/scripts/kver.sh")}

n=0 passed=0 failed=0
result() { # name ok|detail
	n=$((n + 1))
	if [ "$2" = ok ]; then
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

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

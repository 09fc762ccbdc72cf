#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nft-tproxy's userspace: the patched libnftnl and nft that
# scripts/build-userspace.sh builds, against the running kernel, as root in
# a fresh network namespace.
#
# - nftables' tests/py (nft-test.py, with the patched libnftables through
#   its -l option), native and JSON (-j), one PASS/FAIL line per file and
#   mode with its counts:
#     upstream's tproxy.t (inet, ip, ip6) and socket.t, unchanged: they
#     must pass on either kernel side;
#     ours: socket_cgroupv2.t (no extension, also with the in-tree module;
#     N/A before 5.13, whose in-tree module has no cgroupv2) and the
#     extension files tproxy_failclosed.t (inet, ip, ip6) and
#     socket_owner.t, which must pass with our modules.  With the in-tree
#     modules (no nftp_core) they cannot pass: every rule of theirs that
#     should load must be REFUSED instead, native and JSON, with the
#     message naming nft-tproxy's module, and nothing installed.
# - nftables' tests/shell cases of testcases/nft-tproxy, each run directly
#   (NFT set) in a network namespace of its own, its dump compared as
#   run-tests.sh does.  A case for the other kernel side exits 77 (skipped);
#   one for this side must not.
# - in the VM guest (NFTP_IN_VM=1), with nft_tproxy a module: the hint nft
#   gives when the kernel has no tproxy expression at all (module unloaded,
#   module autoloading off for the moment).
#
# Skips (exit 4) when the patched nft is not built (build-userspace.sh
# --print-nft fails).  Kernel side: nftp_core loaded = ours; NFTP_MODE, when
# set, must agree.

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD_SH="$SELFTEST_DIR/../scripts/build-userspace.sh"

UNFT=$("$BUILD_SH" --print-nft 2>/dev/null) ||
	skip_all "the patched nft is not built (scripts/build-userspace.sh)"
PREFIX=${UNFT%/sbin/nft}
LIB=$PREFIX/lib/libnftables.so.1
SRC=$(dirname "$PREFIX")/src/nftables-1.1.1
if [ ! -f "$LIB" ] || [ ! -f "$SRC/tests/py/nft-test.py" ]; then
	skip_all "no $LIB or nftables tests in $SRC"
fi
checktool "$PYTHON --version" "run nft-test.py without python3"
checktool "nsenter --version" "enter a network namespace without ip netns exec"

if [ -d /sys/module/nftp_core ]; then side=ours; else side=ref; fi
if [ -n "${NFTP_MODE:-}" ] && [ "$NFTP_MODE" != "$side" ]; then
	fail "NFTP_MODE=$NFTP_MODE, but nftp_core is $([ "$side" = ours ] || echo "not ")loaded"
	exit "$ret"
fi
log "kernel $(uname -r), $side modules; $UNFT: $("$UNFT" -V | sed -n 's/^ *nft-tproxy:\t*//p')"

nsu="" nsc=""
setup_ns nsu
# nsenter, not ip netns exec: that remounts /sys, hiding /sys/fs/cgroup
in_ns() { nsenter --net="/run/netns/$1" "${@:2}"; }

# ---------------------------------------------------------------- tests/py

UPSTREAM_PY=(inet/tproxy.t ip/tproxy.t ip6/tproxy.t inet/socket.t)
OURS_PY=(inet/socket_contexts.t inet/socket_cgroupv2.t)
EXT_PY=(inet/tproxy_failclosed.t ip/tproxy_failclosed.t ip6/tproxy_failclosed.t
	inet/socket_owner.t)

# nft-test.py writes next to the .t files (.got files on a mismatch), and
# the guest sees the build read-only: run a copy
PYT=$TMPD/nftables
mkdir -p "$PYT/tests/py/inet" "$PYT/tests/py/ip" "$PYT/tests/py/ip6" "$PYT/py"
cp "$SRC/tests/py/nft-test.py" "$PYT/tests/py/"
cp -r "$SRC/py/src" "$PYT/py/"
for f in "${UPSTREAM_PY[@]}" "${OURS_PY[@]}" "${EXT_PY[@]}"; do
	cp "$SRC/tests/py/$f"* "$PYT/tests/py/$(dirname "$f")/"
done

# nft_test FILE MODE: run nft-test.py on FILE, MODE native or json;
# sets PY_OUT (its output), PY_SUMMARY ("N unit tests, E error, W warning")
# and returns 0 when it has no error and no warning
nft_test()
{
	local f=$1 opt=()
	[ "$2" = json ] && opt=(-j)
	PY_OUT=$(in_ns "$nsu" env PYTHONPATH="$PYT/py/src" "$PYTHON" \
		"$PYT/tests/py/nft-test.py" -N "${opt[@]}" -l "$LIB" "$f" 2>&1)
	PY_SUMMARY=$(sed -n "s|^$f: \(.* unit tests, .* error, .* warning\)$|\1|p" <<< "$PY_OUT" | tail -n 1)
	[[ $PY_SUMMARY == *" unit tests, 0 error, 0 warning" ]]
}

py_file()
{
	local f=$1 what=$2 mode
	for mode in native json; do
		if nft_test "$f" "$mode"; then
			pass "tests/py $what $f ($mode): $PY_SUMMARY"
		else
			fail "tests/py $what $f ($mode): ${PY_SUMMARY:-no summary}"
			grep -v '^INFO:' <<< "$PY_OUT" | head -n 40 | indent
		fi
	done
}

for f in "${UPSTREAM_PY[@]}"; do
	py_file "$f" upstream
done

# cgroupv2: in-tree since 5.13
in_ns "$nsu" "$UNFT" -f - <<-'EOF' > /dev/null 2>&1
	table inet cgprobe {
		set s {
			type cgroupsv2
		}
		chain c {
			socket cgroupv2 level 1 @s accept
		}
	}
	EOF
cg=$?
in_ns "$nsu" "$UNFT" delete table inet cgprobe > /dev/null 2>&1
for f in "${OURS_PY[@]}"; do
	if [ "$f" = inet/socket_cgroupv2.t ] &&
	   ref_lacks "tests/py $f: socket cgroupv2" "$cg"; then
		continue
	fi
	py_file "$f" ours
done

# refused_py FILE: every rule FILE (and FILE.json) expects to load must be
# refused, naming nft-tproxy's module, and nothing may be installed
cat > "$TMPD/refused.py" <<'EOF'
import json, os, re, subprocess, sys

nft, tfile = sys.argv[1:3]
want = re.compile(r"^(internal:0:0-0: |/dev/stdin:[0-9:-]+: )?Error: "
                  r"(tproxy fail-closed|socket uid|socket gid): .*; "
                  r"load nft-tproxy's nft_(tproxy|socket) module$", re.M)


def run(args, stdin=None):
    p = subprocess.run([nft] + args, input=stdin, capture_output=True,
                       text=True)
    return p.returncode, p.stdout + p.stderr


chains, tables, sets, rules = {}, [], [], []
for line in open(tfile):
    line = line.rstrip("\n")
    if not line or line.startswith("#"):
        continue
    if line[0] == ":":
        name, spec = line[1:].split(";", 1)
        chains[name] = spec
    elif line[0] == "*":
        tables.append(line[1:].split(";"))
    elif line[0] == "!":
        sets.append(line[1:].rsplit(";", 1)[0])
    else:
        r = line.split(";")
        if r[1] == "ok":
            rules.append(r[0])

exprs = {}
if os.path.exists(tfile + ".json"):
    for block in open(tfile + ".json").read().split("\n\n"):
        block = block.strip()
        if block.startswith("# "):
            head, body = block.split("\n", 1)
            exprs[head[2:]] = json.loads(body)

counts = {"native": 0, "json": 0}
bad = 0
for fam, table, chain in tables:
    for r in rules:
        for mode in ("native", "json"):
            if mode == "json" and r not in exprs:
                print("no JSON for '%s'" % r)
                bad += 1
                continue
            run(["flush", "ruleset"])
            batch = "add table %s %s\n" % (fam, table)
            batch += "add chain %s %s %s { %s; }\n" % (fam, table, chain,
                                                         chains[chain])
            for s in sets:
                name, rest = s.split(" ", 1)
                batch += "add set %s %s %s { %s; }\n" % (fam, table, name,
                                                          rest)
            rc, out = run(["-f", "-"], batch)
            if rc:
                print("cannot set up %s %s: %s" % (fam, table, out))
                bad += 1
                continue
            before = run(["list", "ruleset"])[1]
            if mode == "native":
                rc, out = run(["add", "rule", fam, table, chain, r])
            else:
                cmd = {"nftables": [{"add": {"rule": {
                    "family": fam, "table": table, "chain": chain,
                    "expr": exprs[r]}}}]}
                rc, out = run(["-j", "-f", "-"], json.dumps(cmd))
            after = run(["list", "ruleset"])[1]
            if rc != 1 or not want.search(out) or after != before:
                print("%s %s (%s): not refused as it should be (exit %d): %s"
                      % (fam, r, mode, rc, out.strip()))
                if after != before:
                    print("  and the ruleset changed")
                bad += 1
            else:
                counts[mode] += 1
run(["flush", "ruleset"])
n = len(tables) * len(rules)
print("%d of %d rules refused naming the module (native %d, JSON %d)"
      % (counts["native"] + counts["json"], 2 * n, counts["native"],
         counts["json"]))
sys.exit(1 if bad or n == 0 else 0)
EOF

refused_py()
{
	local f=$1 out rc=0
	out=$(in_ns "$nsu" "$PYTHON" "$TMPD/refused.py" "$UNFT" "$PYT/tests/py/$f" 2>&1) || rc=$?
	if [ "$rc" -eq 0 ]; then
		pass "tests/py extension $f (in-tree modules): $(tail -n 1 <<< "$out")"
	else
		fail "tests/py extension $f (in-tree modules): $(tail -n 1 <<< "$out")"
		head -n 40 <<< "$out" | indent
	fi
}

for f in "${EXT_PY[@]}"; do
	if [ "$side" = ours ]; then
		py_file "$f" extension
	else
		refused_py "$f"
	fi
done

# ---------------------------------------------------------------- tests/shell

SHELLDIR=$SRC/tests/shell
CASES=$SHELLDIR/testcases/nft-tproxy

# the dump of the ruleset a case left, as run-tests.sh compares it
check_dumps()
{
	local ns=$1 name=$2 d=$CASES/dumps/$2
	if [ -f "$d.nft" ] &&
	   ! diff -u "$d.nft" <(in_ns "$ns" "$UNFT" list ruleset) > "$TMPD/dump.diff" 2>&1; then
		echo "the ruleset is not dumps/$name.nft:"
		cat "$TMPD/dump.diff"
		return 1
	fi
	if [ -f "$d.json-nft" ] &&
	   ! diff -u "$d.json-nft" <(in_ns "$ns" "$UNFT" -j list ruleset |
		"$SHELLDIR/helpers/json-sanitize-ruleset.sh" |
		"$SHELLDIR/helpers/json-pretty.sh") > "$TMPD/dump.diff" 2>&1; then
		echo "the ruleset is not dumps/$name.json-nft:"
		cat "$TMPD/dump.diff"
		return 1
	fi
	# what it lists loads back
	in_ns "$ns" "$UNFT" list ruleset > "$TMPD/ruleset"
	in_ns "$ns" "$UNFT" -j list ruleset > "$TMPD/ruleset.json"
	in_ns "$ns" "$UNFT" flush ruleset
	in_ns "$ns" "$UNFT" -c -f "$TMPD/ruleset" || return 1
	in_ns "$ns" "$UNFT" -j -c -f "$TMPD/ruleset.json" || return 1
}

# a case that must run on this kernel side (not exit 77)
must_run()
{
	case "$side:$1" in
	ours:*fail_closed_0 | ours:*socket_owner_0) return 0 ;;
	ref:*_refused_0) return 0 ;;
	*:0006errors_0 | *:0007probe_once_0 | *:0008version_0) return 0 ;;
	esac
	return 1
}

shell_case()
{
	local t=$1 name ns out rc=0
	name=$(basename "$t")
	setup_ns nsc
	ns=$nsc
	out=$(in_ns "$ns" env NFT="$UNFT" DIFF=diff NFT_TEST_BASEDIR="$SHELLDIR" \
		TMPDIR="$TMPD" bash "$t" 2>&1) || rc=$?
	if [ "$rc" -eq 77 ]; then
		if must_run "$name"; then
			fail "tests/shell $name: skipped on $side modules, where it must run"
			indent <<< "$out"
		else
			log "tests/shell $name: skipped here: ${out:-no reason given}"
		fi
	elif [ "$rc" -ne 0 ]; then
		fail "tests/shell $name: exit $rc"
		indent <<< "$out"
	elif ! out=$(check_dumps "$ns" "$name" 2>&1); then
		fail "tests/shell $name: $(head -n 1 <<< "$out")"
		tail -n +2 <<< "$out" | head -n 40 | indent
	else
		pass "tests/shell $name"
	fi
	ip netns del "$ns" 2>/dev/null
}

shell_pass=0 shell_total=0
for t in "$CASES"/[0-9]*; do
	[ -f "$t" ] || continue
	before=$ret
	ret=$ksft_pass
	shell_case "$t"
	shell_total=$((shell_total + 1))
	[ "$ret" -eq "$ksft_pass" ] && shell_pass=$((shell_pass + 1))
	[ "$before" -ne "$ksft_pass" ] && ret=$before
done
log "tests/shell: $shell_pass of $shell_total cases passed or skipped as they should"

# ---------------------------------------------------------------- no module

# A kernel without the expression: nft must say which module to load.  Only
# in the throwaway guest: this unloads nft_tproxy and turns module
# autoloading off for a moment.
no_module()
{
	local modprobe out rc=0
	if [ "${NFTP_IN_VM:-}" != 1 ] || [ ! -f /sys/module/nft_tproxy/refcnt ]; then
		log "no-module hint: not tested (not in the VM guest, or nft_tproxy is built in)"
		return 0
	fi
	if ! modprobe -r nft_tproxy 2>/dev/null; then
		log "no-module hint: not tested (nft_tproxy cannot be unloaded)"
		return 0
	fi
	modprobe=$(cat /proc/sys/kernel/modprobe)
	echo /bin/false > /proc/sys/kernel/modprobe
	in_ns "$nsu" "$UNFT" add table inet nomod
	in_ns "$nsu" "$UNFT" add chain inet nomod c
	out=$(in_ns "$nsu" "$UNFT" add rule inet nomod c tcp dport 80 tproxy ip to :3129 2>&1) || rc=$?
	echo "$modprobe" > /proc/sys/kernel/modprobe
	in_ns "$nsu" "$UNFT" delete table inet nomod
	if ! modprobe nft_tproxy; then
		fail "no-module hint: nft_tproxy does not load again"
	elif [ "$side" = ours ] && [[ $(cat /sys/module/nft_tproxy/taint) != *O* ]]; then
		fail "no-module hint: the in-tree nft_tproxy loaded instead of ours"
	fi
	if [ "$rc" -eq 1 ] && grep -qx 'Error: Could not process rule: No such file or directory: the kernel has no tproxy expression; load the nft_tproxy module (modprobe nft_tproxy)' <<< "$out"; then
		pass "no-module hint: a kernel without tproxy: nft names the module to load"
	else
		fail "no-module hint: exit $rc, wrong message"
		indent <<< "$out"
	fi
}
no_module

exit "$ret"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# nft-tproxy's userspace: the patched libnftnl and nft that
# scripts/build-userspace.sh builds, against the running kernel, as root,
# each part in a fresh network namespace of its own.
#
# - nftables' tests/py: nft-test.py from the patched source tree, with the
#   patched libnftables (its -l option) and -j, which checks each rule
#   natively (payload, listing) and then in JSON; a PASS/FAIL line per file
#   with its counts:
#     upstream's tproxy.t (inet, ip, ip6) and socket.t, unchanged: they
#     must pass on either kernel side;
#     ours without extensions, socket_contexts.t and socket_cgroupv2.t
#     (N/A on in-tree modules before 5.13, which have no cgroupv2);
#     ours with extensions, tproxy_failclosed.t (inet, ip, ip6) and
#     socket_owner.t, which must pass with our modules.  With the in-tree
#     modules (no nftp_core) they cannot: every rule of theirs that should
#     load must be REFUSED instead, native and JSON, with the message
#     naming nft-tproxy's module, and nothing installed.
# - nftables' tests/shell cases of testcases/nft-tproxy, each run directly
#   (NFT set), its dump compared as run-tests.sh does.  A case for the other
#   kernel side exits 77 (skipped); one for this side must not.
# - in the VM guest (NFTP_IN_VM=1), nft_tproxy being a module: the hint nft
#   gives when the kernel has no tproxy expression at all (the module
#   unloaded, module autoloading off for a moment).
#
# The files and cases run NFTP_USERSPACE_JOBS at a time (default: the
# number of CPUs).  Skips (exit 4) when the patched nft is not built
# (scripts/build-userspace.sh --print-nft fails).  Kernel side: nftp_core
# loaded = ours; NFTP_MODE, when set, must agree.

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_begin python

BUILD_SH="$SELFTEST_DIR/../scripts/build-userspace.sh"

UNFT=$("$BUILD_SH" --print-nft 2>/dev/null) ||
	skip_all "the patched nft is not built (scripts/build-userspace.sh)"
PREFIX=${UNFT%/sbin/nft}
LIB=$PREFIX/lib/libnftables.so.1
SRC=$(dirname "$PREFIX")/src/nftables-1.1.1
if [ ! -f "$LIB" ] || [ ! -f "$SRC/tests/py/nft-test.py" ]; then
	skip_all "no $LIB or nftables tests in $SRC"
fi
checktool "nsenter --version" "enter a network namespace without ip netns exec"

if [ -d /sys/module/nftp_core ]; then side=ours; else side=ref; fi
if [ -n "${NFTP_MODE:-}" ] && [ "$NFTP_MODE" != "$side" ]; then
	fail "NFTP_MODE=$NFTP_MODE, but nftp_core is $([ "$side" = ours ] || echo "not ")loaded"
	exit "$ret"
fi
log "kernel $(uname -r), $side modules; $UNFT: $("$UNFT" -V | sed -n 's/^ *nft-tproxy:\t*//p')"

# nsenter, not ip netns exec: that remounts /sys, hiding /sys/fs/cgroup
in_ns() { nsenter --net="/run/netns/$1" "${@:2}"; }

# ---------------------------------------------------------------- jobs

JOBS=${NFTP_USERSPACE_JOBS:-$(nproc 2>/dev/null || echo 1)}
JOB_NAMES=()
JOB_NS=()
njob=0

# job FUNC ARGS...: run FUNC NS ARGS in the background, NS a network
# namespace of its own, at most $JOBS at a time; its PASS/FAIL lines are
# printed, in order, by jobs_report
job()
{
	local name ns
	njob=$((njob + 1))
	name=$(printf 'job%03d' "$njob")
	ns=nftu-$name-$(mktemp -u XXXXXX)
	# no setup_ns: the jobs need nothing but the namespace, and every exec
	# counts under TCG
	ip netns add "$ns" || { fail "cannot create a network namespace"; return; }
	NS_LIST+=("$ns")
	JOB_NS+=("$ns")
	JOB_NAMES+=("$name")
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n
	done
	(
		ret=$ksft_pass
		"$1" "$ns" "${@:2}"
		exit "$ret"
	) > "$TMPD/$name.out" 2>&1 &
}

# jobs_report: wait for the jobs, print their output, delete their
# namespaces (and so their rules); a failed job fails us
jobs_report()
{
	local name ns rc=0
	wait
	for name in "${JOB_NAMES[@]}"; do
		cat "$TMPD/$name.out"
		grep -q '^FAIL: ' "$TMPD/$name.out" && rc=1
	done
	for ns in "${JOB_NS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	JOB_NAMES=()
	JOB_NS=()
	[ "$rc" -eq 0 ] || ret=$ksft_fail
}

# ---------------------------------------------------------------- tests/py

UPSTREAM_PY=(inet/tproxy.t ip/tproxy.t ip6/tproxy.t inet/socket.t)
OURS_PY=(inet/socket_contexts.t inet/socket_cgroupv2.t)
EXT_PY=(inet/tproxy_failclosed.t ip/tproxy_failclosed.t ip6/tproxy_failclosed.t
	inet/tproxy_localroute.t ip/tproxy_localroute.t ip6/tproxy_localroute.t
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

# units FILE: the number of unit tests of a .t file, as nft-test.py counts
# them (rules and sets)
# shellcheck disable=SC2317 # called through job()
units() { grep -Evc '^($|[#:*])' "$PYT/tests/py/$1"; }

# py_files NS WHAT FILE...: nft-test.py -j on the FILEs, in one process
# (python starts slowly under TCG): each must be "OK", which nft-test.py
# prints for a file with all its unit tests passed, native (payload,
# listing) and JSON (payload, listing), and have no ERROR or WARNING line:
# nft-test.py 1.1.1 does not count a JSON rule that fails to load as an
# error
# shellcheck disable=SC2317 # called through job()
py_files()
{
	local ns=$1 what=$2 out summary f
	shift 2
	out=$(in_ns "$ns" env PYTHONPATH="$PYT/py/src" "$PYTHON" \
		"$PYT/tests/py/nft-test.py" -N -j -l "$LIB" "$@" 2>&1)
	summary=$(grep -E '^[0-9]+ (test files|error)' <<< "$out" | tr -s '\n ' '  ' | sed 's/ $//')
	for f in "$@"; do
		if { grep -qx "$f: OK" <<< "$out" ||
		     grep -qx "$f: .* 0 error, 0 warning" <<< "$out"; } &&
		   ! grep -F "$f" <<< "$out" | grep -qE '(ERROR|WARNING):'; then
			pass "tests/py $what $f (native and JSON): $(units "$f") unit tests"
		else
			fail "tests/py $what $f (native and JSON)"
			grep -F "$f" <<< "$out" | grep -v '^INFO:' | head -n 40 | indent
		fi
	done
	log "tests/py $what: ${summary:-no summary: $(tail -n 1 <<< "$out")}"
}

cat > "$TMPD/refused.py" <<'EOF'
import json, os, re, sys

lib, tfile = sys.argv[1:3]
sys.path.insert(0, sys.argv[3])
from nftables import Nftables

nft = Nftables(sofile=lib)
want = re.compile(r"^(internal:0:0-0: )?Error: "
                  r"(tproxy fail-closed|tproxy local-route|socket uid|socket gid): .*; "
                  r"load nft-tproxy's nft_(tproxy|socket) module$", re.M)

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
for block in open(tfile + ".json").read().split("\n\n"):
    block = block.strip()
    if block.startswith("# "):
        head, body = block.split("\n", 1)
        exprs[head[2:]] = json.loads(body)

counts = {"native": 0, "json": 0}
bad = 0
for fam, table, chain in tables:
    nft.cmd("flush ruleset")
    setup = "add table %s %s\n" % (fam, table)
    setup += "add chain %s %s %s { %s; }\n" % (fam, table, chain,
                                                 chains[chain])
    for s in sets:
        name, rest = s.split(" ", 1)
        setup += "add set %s %s %s { %s; }\n" % (fam, table, name, rest)
    rc, out, err = nft.cmd(setup)
    if rc:
        print("cannot set up %s %s: %s" % (fam, table, err))
        bad += 1
        continue
    before = nft.cmd("list ruleset")[1]
    for r in rules:
        for mode in ("native", "json"):
            if mode == "native":
                rc, out, err = nft.cmd("add rule %s %s %s %s"
                                       % (fam, table, chain, r))
            elif r in exprs:
                rc, out, err = nft.json_cmd({"nftables": [{"add": {"rule": {
                    "family": fam, "table": table, "chain": chain,
                    "expr": exprs[r]}}}]})
            else:
                print("no JSON for '%s'" % r)
                bad += 1
                continue
            after = nft.cmd("list ruleset")[1]
            if rc == 0 or not want.search(err) or after != before:
                print("%s %s (%s): not refused as it should be (rc %d): %s"
                      % (fam, r, mode, rc, err.strip()))
                if after != before:
                    print("  and the ruleset changed")
                    before = after
                bad += 1
            else:
                counts[mode] += 1
nft.cmd("flush ruleset")
n = len(tables) * len(rules)
print("%d of %d rules refused naming the module (native %d, JSON %d)"
      % (counts["native"] + counts["json"], 2 * n, counts["native"],
         counts["json"]))
sys.exit(1 if bad or n == 0 else 0)
EOF

# refused_py NS FILE: every rule FILE (and FILE.json) expects to load must
# be refused, naming nft-tproxy's module, and nothing may be installed;
# through the patched libnftables, in one process, as nft-test.py runs
# shellcheck disable=SC2317 # called through job()
refused_py()
{
	local ns=$1 f=$2 out rc=0
	out=$(in_ns "$ns" "$PYTHON" "$TMPD/refused.py" "$LIB" "$PYT/tests/py/$f" \
		"$PYT/py/src" 2>&1) || rc=$?
	if [ "$rc" -eq 0 ]; then
		pass "tests/py extension $f (in-tree modules): $(tail -n 1 <<< "$out")"
	else
		fail "tests/py extension $f (in-tree modules): $(tail -n 1 <<< "$out")"
		head -n 40 <<< "$out" | indent
	fi
}

nsu=""
setup_ns nsu

# cgroupv2: in-tree since 5.13, and nowhere in a kernel whose sockets
# carry no cgroup
cg=0
cgerr=$(in_ns "$nsu" "$UNFT" -f - 2>&1 > /dev/null <<-'EOF'
	table inet cgprobe {
		set s {
			type cgroupsv2
		}
		chain c {
			socket cgroupv2 level 1 @s accept
		}
	}
	EOF
) || cg=$?
in_ns "$nsu" "$UNFT" delete table inet cgprobe > /dev/null 2>&1

# local-route for IPv6: ours from 6.1 on (IP6SKB_MULTIPATH, kmod/compat.h);
# before, an ip6 or both-family rule is refused, and only ip/ forms apply
lr6=0
if [ "$side" = ours ]; then
	in_ns "$nsu" "$UNFT" add table ip6 lrprobe '{ chain c { type filter hook prerouting priority 0;
		tcp dport 1 tproxy to :1 local-route; }; }' > /dev/null 2>&1 || lr6=$?
	in_ns "$nsu" "$UNFT" delete table ip6 lrprobe > /dev/null 2>&1
fi
if [ "$lr6" -ne 0 ]; then
	log "tproxy local-route for IPv6 is refused on $(uname -r) (ours, before 6.1), left out:" \
		"inet/ and ip6/tproxy_localroute.t, 0009local_route_0"
	mapfile -t EXT_PY < <(printf '%s\n' "${EXT_PY[@]}" | grep -v -e 'inet/tproxy_localroute' -e 'ip6/tproxy_localroute')
fi

t0=$SECONDS
job py_files upstream "${UPSTREAM_PY[@]}"
if [ "$cg" -ne 0 ] && cgroupv2_lacks "tests/py inet/socket_cgroupv2.t: socket cgroupv2" "$cgerr"; then
	OURS_PY=(inet/socket_contexts.t)
elif [ "$cg" -eq 0 ]; then
	sock_cgroup_taken
fi
job py_files ours "${OURS_PY[@]}"
if [ "$side" = ours ]; then
	job py_files extension "${EXT_PY[@]}"
else
	for f in "${EXT_PY[@]}"; do
		job refused_py "$f"
	done
fi
jobs_report
log "tests/py: $((SECONDS - t0)) s"

# ---------------------------------------------------------------- tests/shell

SHELLDIR=$SRC/tests/shell
CASES=$SHELLDIR/testcases/nft-tproxy

# shellcheck disable=SC2317 # called through job()
# check_dumps NS NAME: the ruleset a case left is its dumps, as run-tests.sh
# compares them (that what they list loads back is the cases' own business:
# they all check that)
check_dumps()
{
	local ns=$1 name=$2 d=$CASES/dumps/$2 tmp
	tmp=$(mktemp -d "$TMPD/dump.XXXXXX")
	if [ -f "$d.nft" ]; then
		in_ns "$ns" "$UNFT" list ruleset > "$tmp/ruleset"
	fi
	if [ -f "$d.json-nft" ]; then
		in_ns "$ns" "$UNFT" -j list ruleset > "$tmp/ruleset.json"
	fi
	if [ -f "$d.nft" ] && ! diff -u "$d.nft" "$tmp/ruleset" > "$tmp/diff" 2>&1; then
		echo "the ruleset is not dumps/$name.nft:"
		cat "$tmp/diff"
		return 1
	fi
	if [ -f "$d.json-nft" ] &&
	   ! diff -u "$d.json-nft" <("$SHELLDIR/helpers/json-sanitize-ruleset.sh" < "$tmp/ruleset.json" |
				    "$SHELLDIR/helpers/json-pretty.sh") > "$tmp/diff" 2>&1; then
		echo "the ruleset is not dumps/$name.json-nft:"
		cat "$tmp/diff"
		return 1
	fi
}

# a case that must run on this kernel side (not exit 77)
# shellcheck disable=SC2317 # called through job()
must_run()
{
	case "$side:$1" in
	ours:*fail_closed_0 | ours:*socket_owner_0 | ours:*local_route_0) return 0 ;;
	ref:*_refused_0) return 0 ;;
	*:0006errors_0 | *:0007probe_once_0 | *:0008version_0) return 0 ;;
	esac
	return 1
}

# shell_case NS CASE
# shellcheck disable=SC2317 # called through job()
shell_case()
{
	local ns=$1 t=$2 name out rc=0
	name=$(basename "$t")
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
}

t0=$SECONDS
for t in "$CASES"/[0-9]*; do
	[ "$lr6" -ne 0 ] && [ "${t##*/}" = 0009local_route_0 ] && continue
	[ -f "$t" ] && job shell_case "$t"
done
jobs_report
log "tests/shell: $((SECONDS - t0)) s"

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
	# the namespaces of the jobs go away asynchronously, with their rules
	if ! busywait "$BUSYWAIT_TIMEOUT" modprobe -r nft_tproxy 2>/dev/null; then
		log "no-module hint: not tested (nft_tproxy cannot be unloaded: $(cat /sys/module/nft_tproxy/refcnt) users)"
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

# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# shellcheck disable=SC2034 # variables (ret, addresses) are for the sourcing script
#
# Helpers for the nft-tproxy selftests, in the style of the kernel's
# tools/testing/selftests/net/{lib.sh,netfilter/lib.sh}.
#
# Source it from a test script (bash, set -u), then call lib_begin: sourcing
# installs no trap, lib_begin does (lib_cleanup on exit, lib_interrupted on
# a signal) and skips unless the tools named run.  lib_cleanup kills every process started with start_peer and deletes every
# namespace made by setup_ns. A script that needs more cleanup sets
# on_exit_hook to the name of a function.
#
# Results: fail() sets $ret to $ksft_fail; a script ends with `exit "$ret"`.

ksft_pass=0
ksft_fail=1
ksft_skip=4

NFT=${NFT:-nft}
# the distribution's python3 first: a version-manager shim (pyenv) costs
# ~0.2 s per start
if [ -z "${PYTHON:-}" ]; then
	if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
# milliseconds; the guest under TCG is ~10x slower than the host
BUSYWAIT_TIMEOUT=${BUSYWAIT_TIMEOUT:-15000}
# seconds: one client run (connect + replies), and the per-I/O timeout inside it
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-20}
IO_TIMEOUT=${IO_TIMEOUT:-5}
# seconds: safety net for every background server; it must outlive the
# script, which run.sh stops after NFTP_TEST_TIMEOUT (default 300) seconds
PEER_LIFETIME=${PEER_LIFETIME:-$((${NFTP_TEST_TIMEOUT:-300} + 300))}

SELFTEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The python helpers (tproxy_peer.py, sk_blast.py, pktfuzz.py) need only
# the standard library: -S (no site module) saves 0.15-0.2 s of each start
# under TCG, and pyrun, which imports them, their compile (up to 0.5 s: see
# pyrun).  "${PYRUN[@]}" NAME ARGS...
PYRUN=("$PYTHON" -S "$SELFTEST_DIR/pyrun")

ret=$ksft_pass
# netns names, set by setup_ns/topology
nsclient="" nsrouter="" nsserver1="" nsserver2=""
NS_LIST=()
INIT_NS=""		# the initial netns, named for ip -net (TOPO_ROUTER_INIT)
PID_LIST=()
PEER_PID=""
# words put before a server's command (e.g. setpriv --reuid=...)
PEER_WRAP=()
on_exit_hook=""
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/nftp-selftest.XXXXXX") || exit $ksft_fail

# ------------------------------------------------------------------ output

log()  { echo "INFO: $*"; }
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; ret=$ksft_fail; }
# a whole script cannot run here
skip_all() { echo "SKIP: $*"; exit $ksft_skip; }

# Reference runs (NFTP_MODE=ref) on kernels whose in-tree modules predate a
# feature we provide everywhere (socket cgroupv2 before 5.13, socket in
# output before 5.18): the case is not applicable there, and says so.
# Usage: if ref_lacks "desc" "$loadstatus"; then continue-or-return; fi
#   where loadstatus is non-zero when the kernel refused the ruleset.
# Prints "N/A: desc (in-tree <kver>)" and returns 0 only in a reference run
# with a refused ruleset; with our modules a refusal is always a failure.
ref_lacks()
{
	local desc=$1 refused=$2
	if [ "${NFTP_MODE:-}" = ref ] && [ "$refused" -ne 0 ]; then
		echo "N/A: $desc (the in-tree module of $(uname -r) lacks it)"
		return 0
	fi
	return 1
}

# A kernel built without CONFIG_SOCK_CGROUP_DATA (no cgroup BPF, net_prio
# or net_cls) keeps no cgroup in its sockets: `socket cgroupv2` cannot
# work there, and every module must refuse it with EOPNOTSUPP.  Only a
# kernel with it has cgroup_sk_alloc(); without kallsyms, assume it has.
kernel_has_sock_cgroup()
{
	[ -r /proc/kallsyms ] || return 0
	grep -qw cgroup_sk_alloc /proc/kallsyms
}

# Usage: if sock_cgroup_lacks "desc" "$refusal_text"; then skip-the-case; fi
# Prints "N/A (kernel): desc" and returns 0 when this kernel keeps no cgroup
# in sockets and the refusal is EOPNOTSUPP (selftests/run.sh counts the
# line, in neither mode as a failure); a refusal for any other reason, or
# on any other kernel, is the caller's failure.
sock_cgroup_lacks()
{
	kernel_has_sock_cgroup && return 1
	grep -q "Operation not supported\|EOPNOTSUPP" <<< "$2" || return 1
	echo "N/A (kernel): $1 (refused with EOPNOTSUPP: $(uname -r) keeps no cgroup in sockets)"
}

# sock_cgroup_taken: call when a socket cgroupv2 rule was accepted; on a
# kernel whose sockets carry no cgroup that is a failure
sock_cgroup_taken()
{
	kernel_has_sock_cgroup ||
		fail "socket cgroupv2 accepted, but $(uname -r) keeps no cgroup in sockets"
}

# Usage: if cgroupv2_lacks "desc" "$refusal_text"; then skip-the-case; fi
# A refused socket cgroupv2 rule that is no failure: the kernel keeps no
# cgroup in sockets (sock_cgroup_lacks), or in a reference run the in-tree
# module predates the key (ref_lacks).  Prints the N/A line that says which.
cgroupv2_lacks()
{
	sock_cgroup_lacks "$1" "$2" || ref_lacks "$1 (refused: ${2%%$'\n'*})" 1
}

# The upstream version of the running kernel, X.Y.Z: Debian's release
# string says 5.10.0-32, its /proc/version "Debian 5.10.223-1".
kernel_version()
{
	local v
	v=$(sed -n 's/.* Debian \([0-9]*\.[0-9]*\.[0-9]*\).*/\1/p' /proc/version)
	[ -n "$v" ] || v=$(uname -r | sed -n 's/^\([0-9]*\.[0-9]*\(\.[0-9]*\)\?\).*/\1/p')
	echo "$v"
}

# kernel_before X.Y.Z: the running kernel is older than X.Y.Z
kernel_before()
{
	local cur
	cur=$(kernel_version)
	[ "$cur" != "$1" ] && [ "$(printf '%s\n%s\n' "$cur" "$1" | sort -V | head -n 1)" = "$cur" ]
}

# ref_bug DESC FIXED...: in a reference run on a kernel older than the
# stable release that fixed a known upstream bug (one X.Y.Z per stable
# series, the first mainline one last), print "N/A: DESC" and return 0; a
# test then reports the in-tree bug instead of failing on it.  No FIXED: a
# bug upstream has not fixed, N/A in every reference run.  With our
# modules, or on a fixed kernel, return 1: the case must pass.
ref_bug()
{
	local desc=$1 f series
	shift
	[ "${NFTP_MODE:-}" = ref ] || return 1
	for f in "$@"; do
		series=${f%.*}
		case $(kernel_version) in
		"$series".*) kernel_before "$f" || return 1; break ;;
		esac
		# past the series listed: only the mainline fix (last) decides
		[ "$f" = "${!#}" ] && { kernel_before "$f" || return 1; }
	done
	echo "N/A: $desc (an upstream bug the in-tree module of $(uname -r), upstream $(kernel_version), still has)"
	return 0
}

# nft_ext FEATURE: $NFT is nft-tproxy's patched nft and has FEATURE
# (fail-closed, socket-uid, socket-gid): its `nft -V` has a line
# "nft-tproxy: FEATURE..." (nft-patches/)
nft_ext()
{
	"$NFT" -V 2>/dev/null | grep -Eq "^[[:space:]]*nft-tproxy:(.*[[:space:]])?$1([[:space:]]|\$)"
}

# local_route_fams: the IP versions our tproxy local-route serves on this
# kernel: IPv4 only on 5.10, which lacks IP6SKB_MULTIPATH (kmod/compat.h)
# and so refuses it for IPv6 (EOPNOTSUPP)
local_route_fams()
{
	case "$(uname -r)" in
	5.10.*) echo 4 ;;
	*) echo "4 6" ;;
	esac
}

# indent a block of text (command output) under a PASS/FAIL line
indent() { sed 's/^/    | /'; }

# ------------------------------------------------------------------ tools

# checktool "cmd args" "what the test cannot do without it"
checktool()
{
	# shellcheck disable=SC2086 # $1 is a command line
	if ! $1 > /dev/null 2>&1; then
		skip_all "Could not $2 ($1 failed)"
	fi
}

# busywait TIMEOUT_MS cmd...: run cmd until it succeeds or TIMEOUT_MS passed
now_ms()
{
	if [ -n "${EPOCHREALTIME:-}" ]; then
		local t=${EPOCHREALTIME/[.,]/}
		echo $((10#$t / 1000))
	else
		date +%s%3N
	fi
}

busywait()
{
	local timeout_ms=$1
	shift
	local start now
	start=$(now_ms)
	while true; do
		"$@" && return 0
		now=$(now_ms)
		if [ $((now - start)) -gt "$timeout_ms" ]; then
			return 1
		fi
		sleep 0.05
	done
}

# ------------------------------------------------------------------ namespaces

# setup_ns VAR...: create one uniquely named netns per VAR and set VAR to its
# name (global). lo is brought up; IPv6 DAD is off so addresses are usable
# at once.
setup_ns()
{
	local var name
	for var in "$@"; do
		name="${var}-$(mktemp -u XXXXXX)"
		if ! ip netns add "$name"; then
			skip_all "cannot create network namespace $name"
		fi
		NS_LIST+=("$name")
		declare -g "$var=$name"
		ip -net "$name" link set lo up
		ip netns exec "$name" sysctl -wq net.ipv6.conf.all.accept_dad=0 2>/dev/null
		ip netns exec "$name" sysctl -wq net.ipv6.conf.default.accept_dad=0 2>/dev/null
	done
}

cleanup_all_ns()
{
	local ns pids
	for ns in "${NS_LIST[@]}"; do
		pids=$(ip netns pids "$ns" 2>/dev/null)
		# shellcheck disable=SC2086 # list of pids
		[ -n "$pids" ] && kill $pids 2>/dev/null
	done
	for ns in "${NS_LIST[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	NS_LIST=()
	# the initial namespace's name only: the namespace is pid 1's
	[ -z "$INIT_NS" ] || ip netns del "$INIT_NS" 2>/dev/null
	INIT_NS=""
}

# stop_peers: kill the background processes of start_peer & co, and reap them
stop_peers()
{
	local pid
	for pid in "${PID_LIST[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${PID_LIST[@]}"; do
		wait "$pid" 2>/dev/null
	done
	PID_LIST=()
}

lib_cleanup()
{
	trap - EXIT
	if [ -n "$on_exit_hook" ]; then
		"$on_exit_hook"
	fi
	stop_peers
	cleanup_all_ns
	[ -n "$TMPD" ] && rm -rf "$TMPD"
}

# shellcheck disable=SC2317 # a trap of the test script's
lib_interrupted() { echo "FAIL: interrupted"; exit "$ksft_fail"; }

# nfnl_tool NAME: NFNL_RAW or NFNL_FUZZ, the path of tools/nfnl-fuzz's
# nfnl-raw or nfnl-fuzz: the binary `make tools` built, unless make says
# it is out of date; then a private build (the VM's root is a writable
# overlay).  The script is skipped when it cannot be built.
nfnl_tool()
{
	local name=$1 src dir bin var out
	src=$(cd "$SELFTEST_DIR/../tools/nfnl-fuzz" && pwd)
	dir=$(cd "$SELFTEST_DIR/.." && pwd)/build/tools
	bin=$dir/$name
	# make -q: is the binary up to date with what it is built from?
	if [ ! -x "$bin" ] || ! make -q -C "$src" O="$dir" "$bin" > /dev/null 2>&1; then
		log "building $name (make tools was not run, or is stale)"
		if ! out=$(make -s -C "$src" O="$TMPD/tools" 2>&1); then
			echo "$out" | indent
			skip_all "cannot build tools/nfnl-fuzz (gcc, libmnl-dev: scripts/deps.sh)"
		fi
		bin=$TMPD/tools/$name
	fi
	var=${name^^}
	printf -v "${var//-/_}" %s "$bin"
}

# lib_begin [TOOL...]: a script's start: the traps above, then a skip
# (exit 4) unless each TOOL runs: nft ($NFT), python ($PYTHON), ping, ip,
# ss, nfnl-raw ($NFNL_RAW), nfnl-fuzz ($NFNL_FUZZ).  Other tools: checktool.
lib_begin()
{
	local t
	trap lib_cleanup EXIT
	trap lib_interrupted INT TERM HUP
	for t in "$@"; do
		case $t in
		nft) checktool "$NFT --version" "run test without nft" ;;
		python) checktool "$PYTHON --version" "run test without python3" ;;
		ping) checktool "ping -V" "run test without ping" ;;
		ip) checktool "ip -V" "run test without iproute2" ;;
		ss) checktool "ss -V" "run test without iproute2's ss" ;;
		nfnl-raw|nfnl-fuzz) nfnl_tool "$t" ;;
		*) echo "FAIL: lib_begin: no check for $t"; exit "$ksft_fail" ;;
		esac
	done
}

# ------------------------------------------------------------------ topology
#
#                       +------------------+
#  +----------+         |     router       |         +-----------+
#  |  client  |.99    .1|veth0        veth1|.1    .99|  server1  |
#  |      eth0|---------|                  |---------|eth0       |
#  +----------+10.0.1/24|      veth2       |10.0.2/24+-----------+
#              dead:1::/64       |.1       dead:2::/64
#                       +--------|---------+
#                                |  10.0.3.0/24 dead:3::/64
#                                |.99
#                          +-----------+
#                          |  server2  |
#                          +-----------+
#
# The router forwards, and has the tproxy policy routing:
#   ip rule add fwmark 1 lookup 100; ip route add local 0.0.0.0/0 dev lo table 100
#   (same for IPv6). The transparent proxy runs in the router.

C4=10.0.1.99   R1_4=10.0.1.1  S1_4=10.0.2.99  R2_4=10.0.2.1  S2_4=10.0.3.99  R3_4=10.0.3.1
C6=dead:1::99  R1_6=dead:1::1 S1_6=dead:2::99 R2_6=dead:2::1 S2_6=dead:3::99 R3_6=dead:3::1

# set_family 4|6: the addresses above for one IP version, as V, FAM (ip or
# ip6), C, R1, S1, R2, S2, R3, R3_ADDR (R3 as a tproxy statement writes it),
# ANY, LO, and DST1/DST2: server1/server2 at port 8080, where start_servers
# puts them.  A script that derives more from them (its match) sets
# on_family_hook to the name of a function doing that.
set_family()
{
	V=$1
	if [ "$V" = 4 ]; then
		FAM=ip C=$C4 R1=$R1_4 S1=$S1_4 R2=$R2_4 S2=$S2_4 R3=$R3_4
		R3_ADDR=$R3_4 ANY=0.0.0.0 LO=127.0.0.1
	else
		FAM=ip6 C=$C6 R1=$R1_6 S1=$S1_6 R2=$R2_6 S2=$S2_6 R3=$R3_6
		R3_ADDR="[$R3_6]" ANY=:: LO=::1
	fi
	DST1=$(hostport "$S1" 8080)
	DST2=$(hostport "$S2" 8080)
	[ -z "${on_family_hook:-}" ] || "$on_family_hook"
}

topology()
{
	# TOPO_ROUTER_INIT=1: the router is the initial namespace, named
	# (not created) so that ip -net and ip netns exec reach it; never in
	# NS_LIST, whose processes cleanup_all_ns kills
	if [ "${TOPO_ROUTER_INIT:-0}" = 1 ]; then
		INIT_NS=nsinit-$(mktemp -u XXXXXX)
		ip netns attach "$INIT_NS" 1 || skip_all "cannot name the initial network namespace"
		nsrouter=$INIT_NS
		setup_ns nsclient nsserver1 nsserver2
	else
		setup_ns nsclient nsrouter nsserver1 nsserver2
	fi

	if ! ip link add veth0 netns "$nsrouter" type veth peer name eth0 netns "$nsclient" > /dev/null 2>&1; then
		skip_all "No virtual ethernet pair device support in kernel"
	fi
	ip link add veth1 netns "$nsrouter" type veth peer name eth0 netns "$nsserver1" || return 1
	ip link add veth2 netns "$nsrouter" type veth peer name eth0 netns "$nsserver2" || return 1

	local i ns
	for i in 0 1 2; do
		ip -net "$nsrouter" link set "veth$i" up
		ip -net "$nsrouter" addr add "10.0.$((i + 1)).1/24" dev "veth$i"
		ip -net "$nsrouter" addr add "dead:$((i + 1))::1/64" dev "veth$i" nodad
	done
	i=1
	for ns in "$nsclient" "$nsserver1" "$nsserver2"; do
		ip -net "$ns" link set eth0 up
		ip -net "$ns" addr add "10.0.$i.99/24" dev eth0
		ip -net "$ns" addr add "dead:$i::99/64" dev eth0 nodad
		ip -net "$ns" route add default via "10.0.$i.1"
		ip -net "$ns" -6 route add default via "dead:$i::1"
		i=$((i + 1))
	done

	ip netns exec "$nsrouter" sysctl -wq net.ipv4.ip_forward=1
	ip netns exec "$nsrouter" sysctl -wq net.ipv6.conf.all.forwarding=1
	router_conf4 rp_filter 0

	# the classic tproxy policy routing (TOPO_POLICY_ROUTING=0: none, the
	# router never has an ip rule: one, once added, turns the list receive
	# path's route hints off in its namespace for good)
	if [ "${TOPO_POLICY_ROUTING:-1}" = 1 ]; then
		ip -net "$nsrouter" rule add fwmark 1 lookup 100
		ip -net "$nsrouter" route add local 0.0.0.0/0 dev lo table 100
		ip -net "$nsrouter" -6 rule add fwmark 1 lookup 100
		ip -net "$nsrouter" -6 route add local ::/0 dev lo table 100
	fi

	# plain connectivity, before any rule exists
	if ! ip netns exec "$nsclient" ping -c 1 -W 5 -q "$S1_4" > /dev/null ||
	   ! ip netns exec "$nsclient" ping -c 1 -W 5 -q "$S2_4" > /dev/null ||
	   ! ip netns exec "$nsclient" ping -c 1 -W 5 -q "$S1_6" > /dev/null ||
	   ! ip netns exec "$nsclient" ping -c 1 -W 5 -q "$S2_6" > /dev/null; then
		fail "topology: client cannot ping the servers through the router"
		return 1
	fi
	return 0
}

# hostport ADDR PORT: 10.0.1.1 80 -> 10.0.1.1:80, dead::1 80 -> [dead::1]:80
hostport()
{
	case "$1" in
	*:*) echo "[$1]:$2" ;;
	*)   echo "$1:$2" ;;
	esac
}

# router_conf4 KEY VALUE: net.ipv4.conf.<if>.KEY=VALUE in the router, for
# all, default and each of its interfaces
router_conf4()
{
	local i
	for i in all default veth0 veth1 veth2 lo; do
		ip netns exec "$nsrouter" sysctl -wq "net.ipv4.conf.$i.$1=$2"
	done
}

# ------------------------------------------------------------------ rulesets

# load_ruleset NS DESC < ruleset: nft -f a whole ruleset in NS
load_ruleset()
{
	local ns=$1 desc=$2 f out
	f=$(mktemp "$TMPD/ruleset.XXXXXX")
	cat > "$f"
	if ! out=$(ip netns exec "$ns" "$NFT" -f "$f" 2>&1); then
		fail "$desc: cannot load ruleset"
		{ echo "$out"; echo "--- ruleset:"; cat "$f"; } | indent
		return 1
	fi
	return 0
}

flush_ruleset() { ip netns exec "$1" "$NFT" flush ruleset; }

# examples/: example NAME [DEFINE=VALUE...] prints examples/NAME.nft with
# these defines set (each must be there); example_ip NAME the `ip`
# commands of its header
EXAMPLES=$SELFTEST_DIR/../examples
example()
{
	local f="$EXAMPLES/$1.nft" d sedargs=(-e "")
	shift
	for d in "$@"; do
		if ! grep -q "^define ${d%%=*} = " "$f"; then
			echo "example: $f has no define ${d%%=*}" >&2
			return 1
		fi
		sedargs+=(-e "s|^define ${d%%=*} = .*|define ${d%%=*} = ${d#*=}|")
	done
	sed "${sedargs[@]}" "$f"
}
example_ip() { sed -n 's/^#   \(ip .*\)$/\1/p' "$EXAMPLES/$1.nft"; }

# ------------------------------------------------------------------ peers

# start_peer ID NS PROTO BIND [tproxy_peer.py server args...]
# Starts a server in NS, waits until it is bound, sets PEER_PID.
# Its event log is $TMPD/ID.log (emptied at start).  The caller may set:
#   PEER_NOWAIT=1     do not wait: the caller starts several and waits for
#                     them at once (wait_peers; python starts slowly)
#   PEER_WRAP=(CMD)   run the server under CMD (setpriv: another owner)
#   PEER_CGROUP=DIR   start it in the cgroup v2 directory DIR
#                     (socket_lib.sh's IN_CGROUP)
start_peer()
{
	local id=$1 ns=$2 proto=$3 bind=$4 in_cg=()
	shift 4
	local ready="$TMPD/$id.ready" cg=${PEER_CGROUP:-}
	rm -f "$ready"
	: > "$TMPD/$id.log"
	# "${IN_CGROUP[@]}", not a function: a function run with & is a
	# subshell whose pid stop_peer would kill, leaving the server running
	[ -n "$cg" ] && in_cg=("${IN_CGROUP[@]}" "$cg")
	"${in_cg[@]}" ip netns exec "$ns" "${PEER_WRAP[@]}" timeout "$PEER_LIFETIME" "${PYRUN[@]}" tproxy_peer server \
		--proto "$proto" --bind "$bind" --ready-file "$ready" \
		--log "$TMPD/$id.log" --role "$id" --lifetime "$PEER_LIFETIME" "$@" > /dev/null 2>> "$TMPD/$id.err" &
	PEER_PID=$!
	PID_LIST+=("$PEER_PID")
	[ "${PEER_NOWAIT:-0}" = 1 ] && return 0
	peer_ready "$id" "server on $bind ($proto)${cg:+ in cgroup $cg}"
}

# peer_ready ID [WHAT]: until server ID is up; a failure names it WHAT
peer_ready()
{
	busywait "$BUSYWAIT_TIMEOUT" test -e "$TMPD/$1.ready" && return 0
	fail "$1: ${2:-server} did not come up"
	indent < "$TMPD/$1.err"
	return 1
}

# wait_peers ID...: until every one of these servers is up
wait_peers()
{
	local id
	for id in "$@"; do
		peer_ready "$id" || return 1
	done
}

# divert_ruleset TABLEFAMILY TPROXY_STATEMENT [MATCH [local]]: the ruleset
# of one tproxy case, a table tproxy_test with the statement in prerouting
# after MATCH (default $MATCH, which the script's on_family_hook sets).
# With "local", also an output route chain marking $MATCH, so that the
# router's own connections take the tproxy policy route back in.
divert_ruleset()
{
	local tf=$1 stmt=$2 match=${3:-$MATCH} origin=${4:-fwd}
	cat <<-EOF
	flush ruleset
	table $tf tproxy_test {
		chain divert {
			type filter hook prerouting priority mangle; policy accept;
			$match $stmt meta mark set 1 accept
		}
	EOF
	if [ "$origin" = local ]; then
		cat <<-EOF
		chain out {
			type route hook output priority mangle; policy accept;
			$MATCH meta mark set 1
		}
		EOF
	fi
	echo "}"
}

# start_servers PROTO SERVER...: the topology's servers (server1, server2)
# answering PROTO on port 8080, IPv4 and IPv6, as SERVER-4 and SERVER-6
# with role SERVER; started together, then waited for
start_servers()
{
	local proto=$1 s n nsv a4 a6 ids=()
	shift
	for s in "$@"; do
		n=${s#server} nsv=ns$s a4=S${n}_4 a6=S${n}_6
		PEER_NOWAIT=1 start_peer "$s-4" "${!nsv}" "$proto" "${!a4}:8080" --role "$s"
		PEER_NOWAIT=1 start_peer "$s-6" "${!nsv}" "$proto" "[${!a6}]:8080" --role "$s"
		ids+=("$s-4" "$s-6")
	done
	wait_peers "${ids[@]}"
}

# stop_peer PID
stop_peer()
{
	local pid=$1 p keep=()
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	for p in "${PID_LIST[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	PID_LIST=("${keep[@]}")
}

# peer_log_has ID LINE: the server's event log has exactly LINE (after the
# timestamp); peer_log_grep ID STRING: some line contains STRING
peer_log_has() { cut -d' ' -f2- "$TMPD/$1.log" | grep -Fxq -- "$2"; }
peer_log_grep() { grep -Fq -- "$2" "$TMPD/$1.log"; }

# peer_client NS PROTO DST [tproxy_peer.py client args...]
# Prints the replies on stdout (errors on stderr), returns the client's status.
peer_client()
{
	local ns=$1 proto=$2 dst=$3
	shift 3
	ip netns exec "$ns" timeout "$CLIENT_TIMEOUT" "${PYRUN[@]}" tproxy_peer client \
		--proto "$proto" --connect "$dst" --timeout "$IO_TIMEOUT" "$@"
}

# check_replies DESC OUTPUT COUNT ROLE LADDR PEER
# OUTPUT must be COUNT lines "ROLE laddr=LADDR peer=PEER ... seq=1..COUNT".
check_replies()
{
	local desc=$1 out=$2 count=$3 role=$4 laddr=$5 peer=$6
	local line n=0 bad=0
	while IFS= read -r line; do
		[ -z "$line" ] && continue
		n=$((n + 1))
		case "$line" in
		"$role laddr=$laddr peer=$peer "*" seq=$n") ;;
		*) bad=1 ;;
		esac
	done <<< "$out"
	if [ "$bad" -eq 0 ] && [ "$n" -eq "$count" ]; then
		pass "$desc: $role answered, laddr=$laddr peer=$peer ($count)"
		return 0
	fi
	fail "$desc: expected $count x '$role laddr=$laddr peer=$peer', got:"
	echo "${out:-<nothing>}" | indent
	return 1
}

# expect_reply DESC NS PROTO DST SPORT COUNT ROLE LADDR PEER [client args...]
# Run a client from NS to DST with source port SPORT and check every reply.
expect_reply()
{
	local desc=$1 ns=$2 proto=$3 dst=$4 sport=$5 count=$6 role=$7 laddr=$8 peer=$9
	shift 9
	local out rc=0
	out=$(peer_client "$ns" "$proto" "$dst" --sport "$sport" --count "$count" "$@" 2> "$TMPD/client.err") || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$desc: client to $dst failed (exit $rc), expected $role"
		{ echo "$out"; cat "$TMPD/client.err"; } | indent
		return 1
	fi
	check_replies "$desc" "$out" "$count" "$role" "$laddr" "$peer"
}

# check_proxy_reply DESC OUTPUT COUNT DST CLIENT SPORT [SERVER]
# OUTPUT must be COUNT replies of a `tproxy_peer.py server --proxy` (role
# proxy) that got CLIENT:SPORT's connection to DST and relayed it to DST
# from a socket bound to CLIENT's address, so that the server (role SERVER,
# default server1) saw the client's address and its replies came back.
check_proxy_reply()
{
	local desc=$1 out=$2 count=$3 dst=$4 client=$5 sport=$6 server=${7:-server1}
	local peer line n=0 bad=0 via=""
	peer=$(hostport "$client" "$sport")
	while IFS= read -r line; do
		[ -z "$line" ] && continue
		n=$((n + 1))
		# proxy laddr=DST peer=C:SPORT lsock=... via=C:X upstream=[server1 laddr=DST peer=C:X lsock=DST seq=n] seq=n
		via=$(sed -n 's/.* via=\([^ ]*\) .*/\1/p' <<< "$line")
		case "$line" in
		"proxy laddr=$dst peer=$peer lsock="*" via=$via upstream=[$server laddr=$dst peer=$via lsock=$dst seq=$n] seq=$n") ;;
		*) bad=1 ;;
		esac
		case "$via" in
		"$(hostport "$client" "")"*) ;;
		*) bad=1 ;;
		esac
	done <<< "$out"
	if [ "$bad" -eq 0 ] && [ "$n" -eq "$count" ]; then
		pass "$desc: $server saw the client's address ($via), its replies reached the proxy ($count)"
		return 0
	fi
	fail "$desc: expected $count relayed replies from $server to a socket bound to $client, got:"
	echo "${out:-<nothing>}" | indent
	return 1
}

# relay_case DESC NS CLIENT [WHAT_A [WHAT_C]]: a client in NS (source
# address CLIENT) to server1:8080 ($DST1, $P over IPv$V), two messages on
# one connection or socket, answered by a `tproxy_peer.py server --proxy`
# (its log: $TMPD/proxy-$P-$V.log): (a) diverted to it with the original
# destination, (c) relayed to server1 from CLIENT's address
relay_case()
{
	local desc=$1 ns=$2 client=$3 out rc=0
	local what_a=${4:-diverted to the proxy} what_c=${5:-relayed from the client\'s address}
	next_sport
	out=$(peer_client "$ns" "$P" "$DST1" --sport "$SPORT" --count 2 2> "$TMPD/client.err") || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$desc (a)+(c): client failed (exit $rc)"
		{ echo "$out"; cat "$TMPD/client.err" "$TMPD/proxy-$P-$V.log" 2> /dev/null; } | indent
		return 1
	fi
	check_replies "$desc (a) $what_a" "$out" 2 proxy "$DST1" \
		"$(hostport "$client" "$SPORT")"
	check_proxy_reply "$desc (c) $what_c" "$out" 2 "$DST1" \
		"$client" "$SPORT"
}

# foreign_case DESC NS CLIENT: capability (b) from NS: the proxy named
# "foreign" listens on server1's address, port 9090, and answers twice,
# having seen CLIENT as the peer
foreign_case()
{
	local desc=$1 ns=$2 client=$3 fdst
	fdst=$(hostport "$S1" 9090)
	next_sport
	expect_reply "$desc (b) proxy listening on server1's address $fdst" "$ns" "$P" "$fdst" "$SPORT" 2 \
		foreign "$fdst" "$(hostport "$client" "$SPORT")"
}

# next source port for a client: unique per script run
SPORT=40000
next_sport() { SPORT=$((SPORT + 1)); }

# snmp NS PROTO FIELD: a counter of /proc/net/snmp in NS (PROTO: Tcp, Udp,
# Icmp, ...), or of /proc/net/snmp6 when PROTO is 6 (FIELD: Icmp6InEchos, ...)
snmp()
{
	# shellcheck disable=SC2016 # awk program
	if [ "$2" = 6 ]; then
		ip netns exec "$1" awk -v f="$3" '$1 == f { print $2; exit }' /proc/net/snmp6
		return
	fi
	# shellcheck disable=SC2016 # awk program
	ip netns exec "$1" awk -v p="$2:" -v f="$3" '
		$1 == p && !h { for (i = 2; i <= NF; i++) idx[$i] = i; h = 1; next }
		$1 == p && h { print $idx[f]; exit }' /proc/net/snmp
}

tcp_snmp() { snmp "$1" Tcp "$2"; }

# slab_active NAME...: objects in use in these slab caches, summed.
# Shrinking a cache first flushes its per-CPU caches, whose free objects
# /proc/slabinfo would count as active.
slab_active()
{
	local n
	for n in "$@"; do
		echo 1 > "/sys/kernel/slab/$n/shrink" 2>/dev/null
	done
	awk -v n=" $* " 'index(n, " " $1 " ") { s += $2 } END { print s + 0 }' /proc/slabinfo 2>/dev/null
}

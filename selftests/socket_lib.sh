# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# shellcheck disable=SC2034 # variables are for the sourcing script
#
# Helpers for the nft_socket_*.sh selftests, sourced after lib.sh:
# rule counters by comment, cgroup v2 set-up, running a process in a cgroup.

# ------------------------------------------------------------------ counters
#
# Every rule whose counter a test reads carries `comment "NAME"`;
# read_counters NS fills CNT[NAME]=packets from `nft list ruleset` in NS.
declare -A CNT=()

read_counters()
{
	local name pk
	CNT=()
	while read -r name pk; do
		CNT[$name]=$pk
	done < <(ip netns exec "$1" "$NFT" list ruleset |
		sed -n 's/.*counter packets \([0-9]*\) bytes [0-9]*.* comment "\([^"]*\)".*/\2 \1/p')
}

# cnt NAME: the packets of NAME from the last read_counters (-1: no such rule)
cnt() { echo "${CNT[$1]:--1}"; }

# check_cnt DESC NAME OP VALUE: counter NAME OP VALUE (OP of test: -eq, -gt...)
check_cnt()
{
	local desc=$1 name=$2 op=$3 val=$4 got
	got=$(cnt "$name")
	if [ "$got" -ge 0 ] && test "$got" "$op" "$val"; then
		pass "$desc ($name=$got)"
		return 0
	fi
	fail "$desc: counter $name=$got, expected $op $val"
	return 1
}

# ------------------------------------------------------------------ cgroups
#
# cgroup v2 must be mounted; nft resolves `socket cgroupv2 ... "PATH"`
# under /sys/fs/cgroup (hard-wired in nft), so the hierarchy must be
# there or below it (the host may have it at /sys/fs/cgroup/unified).
# cg_setup NAME: creates $CGROOT/NAME-$$; sets
#   CGROOT  the cgroup2 mount point
#   CGDIR   the new cgroup's directory
#   CGREL   its path as nft wants it (relative to /sys/fs/cgroup)
#   CGLVL   its level (root = 0)
# Returns 1 (and says why) when cgroup v2 is not usable.
CGDIR=""
cg_setup()
{
	local rel_root
	CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	if [ -z "$CGROOT" ]; then
		log "no cgroup2 mount"
		return 1
	fi
	case "$CGROOT/" in
	/sys/fs/cgroup/*) rel_root=${CGROOT#/sys/fs/cgroup} rel_root=${rel_root#/} ;;
	*) log "cgroup2 is mounted at $CGROOT, not under /sys/fs/cgroup (nft looks there)"; return 1 ;;
	esac
	CGDIR="$CGROOT/$1-$$"
	if ! mkdir "$CGDIR" 2>/dev/null; then
		log "cannot create $CGDIR"
		CGDIR=""
		return 1
	fi
	CGREL="${rel_root:+$rel_root/}$1-$$"
	# the level of a cgroup is the number of components below the root
	CGLVL=$(($(tr -cd / <<< "${CGDIR#"$CGROOT"}" | wc -c)))
	return 0
}

# router_peer ID SUBDIR PROTO BIND [ARGS...]: start_peer in nsrouter, in
# the cgroup CGDIR/SUBDIR ("." for CGDIR) when there is one (HAVE_CG)
router_peer()
{
	local id=$1 cg=""
	[ "$HAVE_CG" = 1 ] && cg=$CGDIR/$2
	# shellcheck disable=SC2154 # lib.sh's topology names the namespaces
	PEER_CGROUP=$cg start_peer "$id" "$nsrouter" "${@:3}"
}

# cg_cleanup: remove CGDIR and everything below it (processes must be gone)
cg_cleanup()
{
	[ -n "$CGDIR" ] && [ -d "$CGDIR" ] || return 0
	local d i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		# deepest first
		while read -r d; do
			rmdir "$d" 2>/dev/null
		done < <(find "$CGDIR" -depth -type d 2>/dev/null)
		[ -d "$CGDIR" ] || return 0
		sleep 0.2
	done
	log "could not remove $CGDIR"
}

# in_cgroup DIR CMD...: exec CMD with the calling shell's child moved into
# the cgroup at DIR first (so CMD and everything it creates belong to it).
# shellcheck disable=SC2016 # $$ of the inner shell
IN_CGROUP=(sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"')
in_cgroup() { "${IN_CGROUP[@]}" "$@"; }

# nft_nsenter NS ARGS...: nft in NS without `ip netns exec`, which remounts
# /sys and so hides /sys/fs/cgroup from nft (cgroupv2 paths)
nft_nsenter() { nsenter --net="/run/netns/$1" "$NFT" "${@:2}"; }

# load_ruleset_nsenter NS DESC < ruleset: load_ruleset through nsenter
load_ruleset_nsenter()
{
	local ns=$1 desc=$2 f out
	f=$(mktemp "$TMPD/ruleset.XXXXXX")
	cat > "$f"
	if ! out=$(nft_nsenter "$ns" -f "$f" 2>&1); then
		echo "$out" > "$TMPD/last_load.err"
		return 1
	fi
	return 0
}

# socket_exit: on_exit_hook for scripts with cgroups: the processes in them
# must be gone before the cgroups can be removed
socket_exit()
{
	stop_peers
	cleanup_all_ns
	cg_cleanup
}

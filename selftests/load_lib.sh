# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# shellcheck disable=SC2034 # variables are for the sourcing script
# shellcheck disable=SC2154 # nsrouter, nsclient, ...: set by lib.sh topology
#
# Helpers for the load and fault scripts (nft_load.sh, nft_faults.sh), on
# top of lib.sh: the tpload tool (tools/tpload, built into build/tools by
# `make tools`), its servers, its reports, and the tproxy ruleset they use.
#
# tpload reports are lines of key=value words:
#   tpload-client proto=tcp conns=N ok=N failed=N mismatched=N timeouts=N ...
#   tpload-client proto=udp datagrams=N received=N lost=N corrupt=N misdelivered=N ...
#   tpload-server accepted=N completed=N dst_mismatch=N udp_datagrams=N ...
#   origdst tcp|udp ADDR:PORT N     (per original destination seen)
# Client exit: 0 all verified, 1 failures/loss, 2 integrity (mismatch,
# corrupt, misdelivered), 3 setup.

NFTP_TOP=$(cd "$SELFTEST_DIR/.." && pwd)
TPLOAD=${TPLOAD:-$NFTP_TOP/build/tools/tpload}

# need_tpload: build it if missing (host runs), else skip the script
need_tpload()
{
	if [ ! -x "$TPLOAD" ] || [ "$TPLOAD" -ot "$NFTP_TOP/tools/tpload/tpload.c" ]; then
		make -s -C "$NFTP_TOP" tools > "$TMPD/make-tools.log" 2>&1
	fi
	[ -x "$TPLOAD" ] || skip_all "no $TPLOAD (make tools failed: $(tail -n 3 "$TMPD/make-tools.log" 2>/dev/null))"
}

# kv TEXT KEY: the value of KEY=... in a report line
kv()
{
	local w
	for w in $1; do
		case "$w" in
		"$2="*) echo "${w#*=}"; return 0 ;;
		esac
	done
	echo ""
}

# tpl_server ID NS [tpload server args...]: start a tpload server in NS,
# wait until it is bound; sets TPL_PID and records ID -> pid.
declare -A TPL_PIDS
tpl_server()
{
	local id=$1 ns=$2
	shift 2
	local ready="$TMPD/$id.ready"
	rm -f "$ready" "$TMPD/$id.rep"
	# no timeout(1) in between: the pid must be tpload's, for the signals
	ip netns exec "$ns" "$TPLOAD" server --lifetime "$PEER_LIFETIME" \
		--ready-file "$ready" --report "$TMPD/$id.rep" "$@" \
		> /dev/null 2>> "$TMPD/$id.err" &
	TPL_PID=$!
	TPL_PIDS[$id]=$TPL_PID
	PID_LIST+=("$TPL_PID")
	if ! busywait "$BUSYWAIT_TIMEOUT" test -e "$ready"; then
		fail "$id: tpload server ($*) did not come up"
		indent < "$TMPD/$id.err"
		return 1
	fi
	return 0
}

# tpl_report ID [reset]: print the server's report (counters since the last
# reset); with "reset" zero them afterwards.
tpl_report()
{
	local id=$1 sig=USR1 pid=${TPL_PIDS[$1]}
	[ "${2:-}" = reset ] && sig=USR2
	rm -f "$TMPD/$id.rep"
	kill -"$sig" "$pid" 2>/dev/null || { echo "tpload-server gone=1"; return 1; }
	if ! busywait "$BUSYWAIT_TIMEOUT" test -e "$TMPD/$id.rep"; then
		echo "tpload-server noreport=1"
		return 1
	fi
	cat "$TMPD/$id.rep"
}

# tpl_stop ID: TERM the server (it writes a last report) and reap it
tpl_stop()
{
	local pid=${TPL_PIDS[$1]:-}
	[ -n "$pid" ] && stop_peer "$pid"
	unset "TPL_PIDS[$1]"
}

# origdst REPORT PROTO ADDR:PORT: connections/datagrams seen for it
origdst()
{
	awk -v p="$2" -v a="$3" '$1 == "origdst" && $2 == p && $3 == a { n = $4 } END { print n + 0 }' <<< "$1"
}

# tpl_client NS OUTVAR [tpload client args...]: run a client; its report
# line goes into OUTVAR, its stderr to $TMPD/client.err; returns its status.
tpl_client()
{
	local ns=$1 __var=$2 __out __rc=0
	shift 2
	__out=$(ip netns exec "$ns" timeout -k 5 "${CLIENT_LIFETIME:-900}" \
		"$TPLOAD" client "$@" 2> "$TMPD/client.err") || __rc=$?
	printf -v "$__var" '%s' "$__out"
	return "$__rc"
}

# udp_drops NS: UDP datagrams the kernel dropped at sockets in NS (receive
# buffer, other receive errors, send buffer), IPv4 + IPv6
udp_drops()
{
	local n=0 v f
	for f in InErrors SndbufErrors; do
		v=$(snmp "$1" Udp "$f")
		n=$((n + ${v:-0}))
	done
	for f in Udp6InErrors Udp6SndbufErrors; do
		v=$(snmp "$1" 6 "$f")
		n=$((n + ${v:-0}))
	done
	echo "$n"
}

# tune_for_load: sysctls a busy proxy host and client would set
tune_for_load()
{
	ip netns exec "$nsrouter" sysctl -wq net.core.somaxconn=65535
	ip netns exec "$nsrouter" sysctl -wq net.ipv4.tcp_max_syn_backlog=65535
	ip netns exec "$nsclient" sysctl -wq net.ipv4.ip_local_port_range="1024 65535"
	# the client closes first and keeps the TIME_WAITs: let a new
	# connection reuse one (only with timestamps, a second later)
	ip netns exec "$nsclient" sysctl -wq net.ipv4.tcp_tw_reuse=1
	local ns
	for ns in "$nsclient" "$nsrouter" "$nsserver1"; do
		ip netns exec "$ns" sysctl -wq net.ipv4.tcp_max_tw_buckets=262144 2>/dev/null
	done
}

# tproxy_ruleset [socket]: client -> server1 tcp/8080 goes to the proxy's
# :12345, udp/53 to :8053, IPv4 and IPv6, no address in the rule (the
# default-address path: the input device's first address).  "socket": a
# first rule sends packets of sockets the proxy owns straight in, as the
# README's ruleset does.
TPL_TCP_PORT=12345
TPL_UDP_PORT=8053
tproxy_ruleset()
{
	local sock=""
	[ "${1:-}" = socket ] &&
		sock="tcp flags & (syn | ack) != syn socket transparent 1 meta mark set 1 accept"
	cat <<-EOF
	flush ruleset
	table inet tpl {
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			$sock
			ip daddr $S1_4 tcp dport 8080 tproxy ip to :$TPL_TCP_PORT meta mark set 1 accept
			ip6 daddr $S1_6 tcp dport 8080 tproxy ip6 to :$TPL_TCP_PORT meta mark set 1 accept
			ip daddr $S1_4 udp dport 53 tproxy ip to :$TPL_UDP_PORT meta mark set 1 accept
			ip6 daddr $S1_6 udp dport 53 tproxy ip6 to :$TPL_UDP_PORT meta mark set 1 accept
		}
	}
	EOF
}

# proxy ID [args]: the transparent tpload server in the router, on the
# ports the ruleset diverts to
proxy()
{
	local id=$1
	shift
	tpl_server "$id" "$nsrouter" --transparent \
		--tcp "0.0.0.0:$TPL_TCP_PORT" --tcp "[::]:$TPL_TCP_PORT" \
		--udp "0.0.0.0:$TPL_UDP_PORT" --udp "[::]:$TPL_UDP_PORT" "$@"
}

# server1 ID [args]: the real destination (what traffic reaches when the
# rule falls through), plain echo on 8080 and 53
server1()
{
	local id=$1
	shift
	tpl_server "$id" "$nsserver1" --tcp "$S1_4:8080" --tcp "[$S1_6]:8080" \
		--udp "$S1_4:53" --udp "[$S1_6]:53" "$@"
}

# unserved CLIENTLOG SERVERLOG...: the client's verified connections (--log
# "ok" lines) that no server completed (--log "done"), by client address
# and connection id, with every line the server logs have about the
# connections they accepted from that address or that carried that id
unserved()
{
	local clog=$1
	shift
	awk '
		FILENAME == ARGV[1] {
			if ($1 == "ok") { id = $2; sub("id=", "", id); l = $3; sub("local=", "", l); ok[l " " id] = $0 }
			next
		}
		{ key = FILENAME " " $2; lines[key] = lines[key] "\n  " FILENAME ": " $0 }
		$1 == "accept" { p = $3; sub("peer=", "", p); peer[key] = p; gens[p] = gens[p] " " key; next }
		$1 == "header" { id = $3; sub("id=", "", id); byid[id] = byid[id] " " key }
		$1 == "done" { id = $3; sub("id=", "", id); done[peer[key] " " id] = 1; next }
		END {
			for (k in ok) {
				if (k in done)
					continue
				split(k, a, " ")
				out = "client: " ok[k]
				n = split(gens[a[1]], g, " ")
				for (i = 1; i <= n; i += 2)
					out = out lines[g[i] " " g[i + 1]]
				n = split(byid[a[2]], g, " ")
				if (n)
					out = out "\n  connections whose header had id " a[2] ":"
				for (i = 1; i <= n; i += 2)
					out = out lines[g[i] " " g[i + 1]]
				print out
			}
		}
	' "$clog" "$@"
}

TCP_DSTS="$S1_4:8080,[$S1_6]:8080"
UDP_DSTS="$S1_4:53,[$S1_6]:53"

# sockstat NS: "TCP inuse/orphan/tw UDP inuse" of NS, one line
sockstat()
{
	# shellcheck disable=SC2016 # awk program
	ip netns exec "$1" awk '
		$1 == "TCP:" { for (i = 2; i < NF; i += 2) t[$i] = $(i + 1) }
		$1 == "TCP6:" { t6 = $3 }
		$1 == "UDP:" { u = $3 }
		$1 == "UDP6:" { u6 = $3 }
		END { printf "tcp=%d tcp6=%d orphan=%d tw=%d udp=%d udp6=%d\n",
			t["inuse"], t6, t["orphan"], t["tw"], u, u6 }' \
		/proc/net/sockstat /proc/net/sockstat6
}

# tcpext NS FIELD: a TcpExt counter of /proc/net/netstat in NS
tcpext()
{
	# shellcheck disable=SC2016 # awk program
	ip netns exec "$1" awk -v f="$2" '
		$1 == "TcpExt:" && !h { for (i = 2; i <= NF; i++) idx[$i] = i; h = 1; next }
		$1 == "TcpExt:" && h { print $idx[f] + 0; exit }' /proc/net/netstat
}

# counters NS FILE: snapshot every SNMP/netstat counter of NS into FILE;
# counters_delta NS FILE: the ones that changed since, "Name +N" per line
counters() { ip netns exec "$1" nstat -asz 2>/dev/null | awk '!/^#/ { print $1, $2 }' > "$2"; }
counters_delta()
{
	ip netns exec "$1" nstat -asz 2>/dev/null | awk '!/^#/ { print $1, $2 }' |
		awk 'NR == FNR { v[$1] = $2; next } $2 != v[$1] { printf "%s +%d\n", $1, $2 - v[$1] }' "$2" -
}

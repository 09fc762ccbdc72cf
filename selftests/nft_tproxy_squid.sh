#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A real proxy program through tproxy and socket: squid with
# `http_port ... tproxy`, the setup squid's wiki documents for TPROXY v4.
# The client fetches from the server's address; squid in the router
# intercepts (tproxy), then connects to the server FROM THE CLIENT'S
# ADDRESS (IP_TRANSPARENT), and the server's replies reach squid through
# `socket transparent 1 -> mark 1 -> local route`.  The server's own log
# must show the client's address, and the response must carry squid's Via.
# The rulesets: the README's first (read from README.md), examples/squid.nft,
# then the README's one with nft-tproxy's extensions (patched nft, our
# modules): those replies found by their owner, `socket uid "proxy"`
# (squid's user), and `tproxy ... fail-closed`: the fetches work the same,
# and with squid stopped they fail and the server sees nothing.  And
# docs/LOCAL-ROUTE.md's ruleset, `tproxy ... local-route`, with the
# router's fwmark rules and table 100 removed (IPv4 only on 5.10).

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "$0")/lib.sh"
lib_begin nft

checktool "squid -v" "run squid"

SQUID_PORT=3129
SQUID_DIR=$TMPD/squid

squid_conf()
{
	mkdir -p "$SQUID_DIR"
	# squid drops to its own user: its files must be reachable
	chmod 755 "$TMPD"
	chmod 777 "$SQUID_DIR"
	cat > "$SQUID_DIR/squid.conf" <<EOF
http_port 127.0.0.1:3128
http_port $SQUID_PORT tproxy
http_access allow all
cache deny all
visible_hostname nftp-selftest
pid_filename $SQUID_DIR/squid.pid
cache_log $SQUID_DIR/cache.log
access_log stdio:$SQUID_DIR/access.log
coredump_dir $SQUID_DIR
dns_nameservers 127.0.0.1
shutdown_lifetime 0 seconds
EOF
}

# shellcheck disable=SC2317 # through busywait
squid_listening()
{
	ip netns exec "$nsrouter" ss -Htln "sport = :$SQUID_PORT" | grep -q .
}

start_squid()
{
	squid_conf
	ip netns exec "$nsrouter" timeout "$PEER_LIFETIME" \
		squid -N -f "$SQUID_DIR/squid.conf" > "$SQUID_DIR/stdout" 2>&1 &
	SQUID_PID=$!
	PID_LIST+=("$SQUID_PID")
	if ! busywait 60000 squid_listening; then
		fail "squid did not start"
		tail -n 20 "$SQUID_DIR/cache.log" "$SQUID_DIR/stdout" 2>/dev/null | indent
		return 1
	fi
}

# start_http ID ADDR: a static HTTP server in server1 (once); requests go
# to ID.log
start_http()
{
	local id=$1 addr=$2 ready="$TMPD/$1.ready"
	[ -e "$ready" ] && return 0
	mkdir -p "$TMPD/www"
	echo "content from server1" > "$TMPD/www/index.txt"
	ip netns exec "$nsserver1" timeout "$PEER_LIFETIME" "$PYTHON" -c '
import http.server, os, sys
addr, ready, root = sys.argv[1], sys.argv[2], sys.argv[3]
class S(http.server.HTTPServer):
    address_family = __import__("socket").AF_INET6 if ":" in addr else __import__("socket").AF_INET
class H(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def log_message(self, fmt, *args):
        sys.stderr.write("client=%s %s\n" % (self.client_address[0], fmt % args))
        sys.stderr.flush()
srv = S((addr, 80), H)
open(ready, "w").close()
srv.serve_forever()
' "$addr" "$ready" "$TMPD/www" 2> "$TMPD/$id.log" &
	PID_LIST+=("$!")
	busywait "$BUSYWAIT_TIMEOUT" test -e "$ready" || {
		fail "http server on $addr did not come up"
		indent < "$TMPD/$id.log"
		return 1
	}
}

# fetch URL: the response headers and body, as the client sees them
fetch()
{
	ip netns exec "$nsclient" env -u http_proxy -u HTTP_PROXY \
		curl -sS -i --max-time "$CLIENT_TIMEOUT" "$1" 2>&1
}

# case FAMILY SERVER_ADDR CLIENT_ADDR URL [WHAT]
squid_case()
{
	local fam=$1 saddr=$2 caddr=$3 url=$4 what=${5:-} out n0
	start_http "http$fam" "$saddr" || return
	n0=$(wc -l < "$TMPD/http$fam.log")
	out=$(fetch "$url")
	if ! grep -q "content from server1" <<< "$out"; then
		fail "IPv$fam$what: client got no content through squid"
		echo "$out" | indent
		tail -n 5 "$SQUID_DIR/cache.log" | indent
		return
	fi
	if ! grep -qi "^Via: .*nftp-selftest" <<< "$out"; then
		fail "IPv$fam: response did not pass through squid (no Via)"
		echo "$out" | indent
		return
	fi
	pass "IPv$fam$what: squid intercepted the fetch of $url"
	if tail -n +$((n0 + 1)) "$TMPD/http$fam.log" | grep -q "client=$caddr "; then
		pass "IPv$fam$what: server saw the client's address $caddr (squid spoofed it)"
	else
		fail "IPv$fam$what: server did not see the client's address $caddr"
		indent < "$TMPD/http$fam.log"
	fi
}

checktool "curl --version" "run curl"
topology || exit "$ret"

# readme_ruleset N: the Nth ruleset of README.md, from a line "table ..."
# to the next "}" at the start of a line (its port is squid's, 3129)
readme_ruleset()
{
	echo "flush ruleset"
	awk -v n="$1" '/^table / { k++ } k == n { print } k == n && /^}/ { exit }' \
		"$SELFTEST_DIR/../README.md"
}
readme_ruleset 1 | grep -q "tproxy ip to :$SQUID_PORT" ||
	{ fail "README.md: no first ruleset diverting to :$SQUID_PORT"; exit "$ret"; }
load_ruleset "$nsrouter" "the README's first ruleset" < <(readme_ruleset 1) || exit "$ret"

start_squid || exit "$ret"
squid_case 4 "$S1_4" "$C4" "http://$S1_4/index.txt"
squid_case 6 "$S1_6" "$C6" "http://[$S1_6]/index.txt"

# examples/squid.nft, its LAN interface the router's client side
{ echo "flush ruleset"; example squid LAN_IF='"veth0"'; } > "$TMPD/squid.nft" ||
	{ fail "examples/squid.nft: no LAN_IF to set"; exit "$ret"; }
load_ruleset "$nsrouter" "examples/squid.nft" < "$TMPD/squid.nft" || exit "$ret"
squid_case 4 "$S1_4" "$C4" "http://$S1_4/index.txt" " (examples/squid.nft)"
squid_case 6 "$S1_6" "$C6" "http://[$S1_6]/index.txt" " (examples/squid.nft)"

# --- the README's ruleset with the extensions --------------------------------
if ! nft_ext fail-closed || ! nft_ext socket-uid; then
	echo "SKIP: the README's extension ruleset: $NFT is not nft-tproxy's patched nft"
	exit "$ret"
fi
if [ "${NFTP_MODE:-}" = ref ]; then
	# the refusal itself: nft_tproxy_failclosed.sh, nft_socket_owner.sh
	echo "N/A: socket uid and tproxy fail-closed with squid (the in-tree modules of $(uname -r) lack them)"
	exit "$ret"
fi
if ! readme_ruleset 2 | grep -q 'socket uid "proxy"' || ! readme_ruleset 2 | grep -q fail-closed; then
	fail "README.md: no second ruleset with socket uid \"proxy\" and fail-closed"
	exit "$ret"
fi
load_ruleset "$nsrouter" "the README's extension ruleset" < <(readme_ruleset 2) || exit "$ret"
squid_case 4 "$S1_4" "$C4" "http://$S1_4/index.txt" " (socket uid, fail-closed)"
squid_case 6 "$S1_6" "$C6" "http://[$S1_6]/index.txt" " (socket uid, fail-closed)"

# --- docs/LOCAL-ROUTE.md's ruleset: no fwmark, no ip rule, no table 100 -------
if nft_ext local-route; then
	for v in 4 6; do
		ip -net "$nsrouter" -"$v" rule del fwmark 1 lookup 100
		ip -net "$nsrouter" -"$v" route flush table 100
	done
	lr_fams=$(local_route_fams)
	{
		echo "flush ruleset"
		awk '/^table / { k++ } k == 1 { print } k == 1 && /^}/ { exit }' \
			"$SELFTEST_DIR/../docs/LOCAL-ROUTE.md" |
			if [ "$lr_fams" = 4 ]; then grep -v -e 'ip6 to' -e 'nfproto ipv6'; else cat; fi
	} > "$TMPD/localroute.nft"
	if ! grep -q "tproxy ip to :$SQUID_PORT local-route" "$TMPD/localroute.nft"; then
		fail "docs/LOCAL-ROUTE.md: no ruleset diverting to :$SQUID_PORT with local-route"
	elif load_ruleset "$nsrouter" "docs/LOCAL-ROUTE.md's ruleset" < "$TMPD/localroute.nft"; then
		! ip -net "$nsrouter" rule show | grep -q -v -e '^0:' -e '^3276[67]:' ||
			fail "router: an ip rule is left besides the defaults"
		squid_case 4 "$S1_4" "$C4" "http://$S1_4/index.txt" " (local-route, no policy routing)"
		[ "$lr_fams" = 4 ] ||
			squid_case 6 "$S1_6" "$C6" "http://[$S1_6]/index.txt" " (local-route, no policy routing)"
	fi
	load_ruleset "$nsrouter" "the README's extension ruleset" < <(readme_ruleset 2) || exit "$ret"
else
	echo "SKIP: docs/LOCAL-ROUTE.md's ruleset: $NFT is not nft-tproxy's patched nft"
fi

# squid stopped: fail-closed, nothing reaches the server
stop_peer "$SQUID_PID"
# shellcheck disable=SC2317 # through busywait
squid_gone() { ! squid_listening; }
busywait "$BUSYWAIT_TIMEOUT" squid_gone || fail "squid did not stop"
for fam in 4 6; do
	if [ "$fam" = 4 ]; then url="http://$S1_4/index.txt"; else url="http://[$S1_6]/index.txt"; fi
	n0=$(wc -l < "$TMPD/http$fam.log")
	rc=0
	ip netns exec "$nsclient" env -u http_proxy -u HTTP_PROXY \
		curl -sS -i --max-time 3 "$url" > /dev/null 2>&1 || rc=$?
	if [ "$rc" -ne 0 ] && [ "$(wc -l < "$TMPD/http$fam.log")" -eq "$n0" ]; then
		pass "IPv$fam: squid stopped, fail-closed: the fetch failed (curl exit $rc), the server saw nothing"
	else
		fail "IPv$fam: squid stopped, fail-closed: curl exit $rc, the server logged:"
		tail -n +$((n0 + 1)) "$TMPD/http$fam.log" | indent
	fi
done

exit "$ret"


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

set -u
# shellcheck source=selftests/lib.sh
source "$(dirname "$0")/lib.sh"

checktool "squid -v" "run squid"
checktool "$NFT --version" "run nft"

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

squid_listening()
{
	ip netns exec "$nsrouter" ss -Htln "sport = :$SQUID_PORT" | grep -q .
}

start_squid()
{
	squid_conf
	ip netns exec "$nsrouter" timeout "$PEER_LIFETIME" \
		squid -N -f "$SQUID_DIR/squid.conf" > "$SQUID_DIR/stdout" 2>&1 &
	PID_LIST+=("$!")
	if ! busywait 60000 squid_listening; then
		fail "squid did not start"
		tail -n 20 "$SQUID_DIR/cache.log" "$SQUID_DIR/stdout" 2>/dev/null | indent
		return 1
	fi
}

# start_http ID ADDR: a static HTTP server in server1; requests go to ID.log
start_http()
{
	local id=$1 addr=$2 ready="$TMPD/$1.ready"
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

# case FAMILY SERVER_ADDR CLIENT_ADDR URL
squid_case()
{
	local fam=$1 saddr=$2 caddr=$3 url=$4 out
	start_http "http$fam" "$saddr" || return
	out=$(fetch "$url")
	if ! grep -q "content from server1" <<< "$out"; then
		fail "IPv$fam: client got no content through squid"
		echo "$out" | indent
		tail -n 5 "$SQUID_DIR/cache.log" | indent
		return
	fi
	if ! grep -qi "^Via: .*nftp-selftest" <<< "$out"; then
		fail "IPv$fam: response did not pass through squid (no Via)"
		echo "$out" | indent
		return
	fi
	pass "IPv$fam: squid intercepted the fetch of $url"
	if grep -q "client=$caddr " "$TMPD/http$fam.log"; then
		pass "IPv$fam: server saw the client's address $caddr (squid spoofed it)"
	else
		fail "IPv$fam: server did not see the client's address $caddr"
		indent < "$TMPD/http$fam.log"
	fi
}

checktool "curl --version" "run curl"
topology || exit "$ret"

load_ruleset "$nsrouter" "squid ruleset" <<EOF || exit "$ret"
table inet squid {
	chain prerouting {
		type filter hook prerouting priority mangle; policy accept;
		meta l4proto tcp socket transparent 1 meta mark set 1 accept
		tcp dport 80 tproxy ip to :$SQUID_PORT meta mark set 1 accept
		tcp dport 80 tproxy ip6 to :$SQUID_PORT meta mark set 1 accept
	}
}
EOF

start_squid || exit "$ret"
squid_case 4 "$S1_4" "$C4" "http://$S1_4/index.txt"
squid_case 6 "$S1_6" "$C6" "http://[$S1_6]/index.txt"

exit "$ret"

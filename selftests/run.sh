#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the nft-tproxy selftests: every selftests/nft_*.sh, or the ones named
# (nft_tproxy_tcp, nft_tproxy_tcp.sh or a path). Each runs with a timeout
# (NFTP_TEST_TIMEOUT seconds, default the `timeout=` of ./settings, as
# kselftest's runner reads it) as root; its output is shown
# indented under "# ", followed by a TAP-style line:
#   ok N name # 40s | ok N name # 40s, 2 n/a | not ok N name # ... |
#   ok N name # SKIP
# "2 n/a": the script printed two "N/A:" lines (ref_lacks in lib.sh: cases
# the in-tree module of this kernel predates).  With NFTP_MODE=ours an N/A
# line is a failure: our modules must provide every case on every kernel.
# "N/A (kernel):" lines (sock_cgroup_lacks in lib.sh) are cases the kernel
# itself cannot have, whatever the module: counted, in either mode no
# failure.
# At the end, one line "N n/a" (N/A lines over all scripts), then exactly
# one closing line "N passed, N failed, N skipped" (scripts).
# Exit status 1 if any test failed, else 0.
# Environment: NFT (nft binary, default nft), NFTP_MODE, NFTP_KVER (shown).

set -u

dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
timeout_s=${NFTP_TEST_TIMEOUT:-$(sed -n 's/^timeout=//p' "$dir/settings" 2>/dev/null)}
timeout_s=${timeout_s:-900}
NFT=${NFT:-nft}
export NFT

tests=()
missing=()
if [ $# -eq 0 ]; then
	for t in "$dir"/nft_*.sh; do
		[ -e "$t" ] && tests+=("$t")
	done
else
	for a in "$@"; do
		if [ -f "$a" ]; then
			tests+=("$a")
		elif [ -f "$dir/$a" ]; then
			tests+=("$dir/$a")
		elif [ -f "$dir/$a.sh" ]; then
			tests+=("$dir/$a.sh")
		else
			missing+=("$a")
		fi
	done
fi

echo "TAP version 13"
echo "1..$((${#tests[@]} + ${#missing[@]}))"
echo "# mode=${NFTP_MODE:-unset} kver=${NFTP_KVER:-unset} kernel=$(uname -r) NFT=$NFT ($($NFT --version 2>&1 | head -n 1))"

tmpd=$(mktemp -d "${TMPDIR:-/tmp}/nftp-run.XXXXXX") || exit 1
trap 'rm -rf "$tmpd"' EXIT

n=0 passed=0 failed=0 skipped=0 na_total=0
for t in "${tests[@]}"; do
	n=$((n + 1))
	name=$(basename "$t" .sh)
	echo "# selftests: $name"
	start=$SECONDS
	timeout -k 10 "$timeout_s" bash "$t" 2>&1 < /dev/null |
		tee "$tmpd/out" | sed -u 's/^/# /'
	rc=${PIPESTATUS[0]}
	rc_was=$rc
	took=$((SECONDS - start))
	na=$(grep -c '^N/A' "$tmpd/out")
	na_total=$((na_total + na))
	note=
	[ "$na" -gt 0 ] && note=", $na n/a"
	if grep -q '^N/A:' "$tmpd/out" && [ "${NFTP_MODE:-}" = ours ] &&
	   { [ "$rc" -eq 0 ] || [ "$rc" -eq 4 ]; }; then
		# not applicable to our modules: they must provide every case
		rc=na
	fi
	case $rc in
	na)
		echo "not ok $n $name # ${took}s$note with our modules (exit=$rc_was)"
		failed=$((failed + 1))
		;;
	0)
		echo "ok $n $name # ${took}s$note"
		passed=$((passed + 1))
		;;
	4)
		echo "ok $n $name # SKIP$note"
		skipped=$((skipped + 1))
		;;
	124 | 137)
		echo "not ok $n $name # TIMEOUT after ${timeout_s}s$note"
		failed=$((failed + 1))
		;;
	*)
		echo "not ok $n $name # exit=$rc, ${took}s$note"
		failed=$((failed + 1))
		;;
	esac
done
for a in "${missing[@]}"; do
	n=$((n + 1))
	echo "# selftests: $a: no such test"
	echo "not ok $n $a"
	failed=$((failed + 1))
done

echo "$na_total n/a"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

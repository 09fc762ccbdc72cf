# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# Sourced by check.sh and check-debug.sh: reading a suite run's result.

# suite_result LOG RC WHO [EXCUSE_RE]: print "P F S", the counts of the
# last "N passed, N failed, N skipped" line in LOG, the output of a VM run
# that exited RC.  No such line (the VM died or never ran the suite) is one
# failure, not zero; a non-zero RC behind "0 failed" (a guest oops) is one
# more, unless LOG has a line matching EXCUSE_RE (a failure the caller
# counts itself).  WHO prefixes the messages that explain either.
suite_result()
{
	local log=$1 rc=$2 who=$3 excuse=${4:-} line p f s

	line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1 || true)
	if [ -z "$line" ]; then
		echo "$who run ended (status $rc) without a summary" >&2
		line="0 passed, 1 failed, 0 skipped"
	elif [ "$rc" -ne 0 ] && [[ "$line" == *" 0 failed"* ]] &&
		! { [ -n "$excuse" ] && grep -aqE "$excuse" "$log"; }; then
		echo "$who run exited $rc despite its summary" >&2
		line="${line/ 0 failed/ 1 failed}"
	fi
	read -r p _ f _ s _ <<<"${line//,/}"
	echo "$p $f ${s:-0}"
}

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The suite on every supported kernel, on our modules and on the in-tree
# ones: installs the kernels (scripts/kernels.sh), then runs
# scripts/check.sh --kver for each, one after the other (one VM at a time:
# under TCG a VM keeps both cores of a 2-core machine busy).  Prints a table,
# rows the selftest scripts, columns kernel x {ours, ref}, cells
#   pass | pass (2 n/a) | skip | FAIL | FAIL (timeout) | FAIL (no run)
# ("2 n/a": the reference run printed two N/A lines, cases the in-tree module
# of that kernel predates, and otherwise passed; "no run": the script has no
# result in that run: build, VM or harness failure), then "N n/a" and one
# closing line "N passed, N failed, N skipped" over every cell.  A run whose
# VM exited non-zero although no script failed (a guest oops: 126) counts
# as one more failure, as in check.sh.
#
# Logs: build/logs/check-<kver>-<mode>.{log,status} (per run, by check.sh),
# build/logs/matrix-<kver>.log (check.sh's whole output, build included),
# build/logs/matrix.txt (the table).  Then scripts/host-checks.sh once
# (build/logs/host-checks.log), its lines counted with the cells.  Exit 1
# if anything failed.
#
# usage: check-matrix.sh [--kernels "5.10 6.1 6.12 newest"] [--ref "6.1"]
#                        [--core "5.10" --core-tests "T..."] [TEST...]
#        check-matrix.sh --report   (the table again, from the logs there are)
# --kernels: scripts/kernels.sh names (default all: those four; newest is
# built and booted from its chroot, scripts/newest-kernel.sh); --ref:
# the ones that also get the in-tree reference run (default: every one);
# the others show "-" in their ref column, not counted.  --core: the
# ones that run only --core-tests (on ours), the other rows "-" there,
# not counted: the oldest kernel's compat paths in CI without the whole
# suite a second time.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$top"

want=(all) refwant=() corewant=() coretests=() report=0
while (($#)); do
	case $1 in
	--kernels) read -r -a want <<<"${2:?--kernels needs a list}"; shift 2 ;;
	--ref) read -r -a refwant <<<"${2?--ref needs a list}"; refwant+=(-); shift 2 ;;
	--core) read -r -a corewant <<<"${2?--core needs a list}"; shift 2 ;;
	--core-tests) read -r -a coretests <<<"${2:?--core-tests needs a list}"; shift 2 ;;
	--report) report=1; shift ;;
	-h | --help) sed -n '3,31p' "$0"; exit 0 ;;
	*) break ;;
	esac
done

logs=build/logs
mkdir -p "$logs"
t0=$SECONDS

if ((report)); then
	kout=$(find "$logs" -maxdepth 1 -name 'check-*-ours.log' -printf '%f\n' |
		sed 's/^check-\(.*\)-ours\.log$/\1/' | sort -V)
	[ -n "$kout" ] || { echo "check-matrix: no logs in $logs" >&2; exit 1; }
else
	scripts/deps.sh
	kout=$(scripts/kernels.sh "${want[@]}") || {
		echo "check-matrix: scripts/kernels.sh ${want[*]} failed" >&2
		exit 1
	}
fi
mapfile -t kvers <<<"$kout"
t_install=$((SECONDS - t0))

# Which releases get a reference run: kernels.sh prints one release per
# name asked for, in order, and --names the names themselves ("all"
# expanded); every one when --ref is not given.
declare -A noref
if ((${#refwant[@]})) && ! ((report)); then
	mapfile -t names < <(scripts/kernels.sh --names "${want[@]}")
	((${#names[@]} == ${#kvers[@]})) ||
		{ echo "check-matrix: ${#kvers[@]} kernels for ${names[*]}" >&2; exit 1; }
	for i in "${!names[@]}"; do
		[[ " ${refwant[*]} " == *" ${names[$i]} "* ]] || noref[${kvers[$i]}]=1
	done
elif ((report)); then
	for k in "${kvers[@]}"; do
		[ -r "$logs/check-$k-ref.log" ] || noref[$k]=1
	done
fi
# Which run only the core tests (--core): ours only, and the list they ran
# kept beside their log, for the table (--report included).
declare -A core
if ((${#corewant[@]})) && ! ((report)); then
	((${#coretests[@]})) || { echo "check-matrix: --core without --core-tests" >&2; exit 1; }
	mapfile -t names < <(scripts/kernels.sh --names "${want[@]}")
	for i in "${!names[@]}"; do
		[[ " ${corewant[*]} " == *" ${names[$i]} "* ]] || continue
		core[${kvers[$i]}]=1 noref[${kvers[$i]}]=1
	done
fi

# The rows: the scripts asked for, or all of them as they are now.
rows=()
if (($#)); then
	for a in "$@"; do
		a=${a##*/}
		rows+=("${a%.sh}")
	done
else
	for t in selftests/nft_*.sh; do
		[ -e "$t" ] || continue
		t=${t##*/}
		rows+=("${t%.sh}")
	done
fi

modes=(ours ref)
for k in "${kvers[@]}"; do
	((report)) && break
	for m in "${modes[@]}"; do
		rm -f "$logs/check-$k-$m.log" "$logs/check-$k-$m.status"
	done
	rm -f "$logs/check-$k-ours.tests"
	echo "=== check-matrix: $k ==="
	only=() tests=("$@")
	[ -n "${noref[$k]:-}" ] && only=(--ours-only)
	if [ -n "${core[$k]:-}" ] && ! (($#)); then
		tests=("${coretests[@]}")
		printf '%s\n' "${tests[@]}" >"$logs/check-$k-ours.tests"
		echo "check-matrix: $k runs the core tests only: ${tests[*]}"
	fi
	set +e
	scripts/check.sh --kver "$k" "${only[@]}" "${tests[@]}" 2>&1 | tee "$logs/matrix-$k.log"
	set -e
done
# The harness's own host-side checks (scripts/host-checks.sh), once.
if ! ((report)); then
	echo "=== check-matrix: host checks (${kvers[0]}) ==="
	scripts/host-checks.sh --kver "${kvers[0]}" 2>&1 | tee "$logs/host-checks.log"
fi
t_total=$((SECONDS - t0))

# ---------------------------------------------------------------- table
declare -A cell status minutes
passed=0 failed=0 skipped=0 na_total=0
# run.sh's result lines: "ok 3 name # 40s, 2 n/a", "not ok 3 name # exit=1, 40s"
tap_re='^(not )?ok [0-9]+ ([^ ]+)( # (.*))?$'

has_row() {
	local r
	for r in "${rows[@]}"; do
		[ "$r" = "$1" ] && return 0
	done
	return 1
}

for k in "${kvers[@]}"; do
	for m in "${modes[@]}"; do
		log=$logs/check-$k-$m.log
		st=$logs/check-$k-$m.status
		col="$k/$m"
		if [ "$m" = ref ] && [ -n "${noref[$k]:-}" ]; then
			status[$col]="-" minutes[$col]="-"
			continue
		fi
		if [ -r "$log" ]; then
			while IFS= read -r line; do
				line=${line%$'\r'}
				[[ $line =~ $tap_re ]] || continue
				not=${BASH_REMATCH[1]} name=${BASH_REMATCH[2]} note=${BASH_REMATCH[4]}
				na=0
				[[ $note =~ ([0-9]+)\ n/a ]] && na=${BASH_REMATCH[1]}
				if [ -n "$not" ]; then
					c=FAIL
					[[ $note == TIMEOUT* ]] && c="FAIL (timeout)"
				elif [[ $note == SKIP* ]]; then
					c=skip
				else
					c=pass
				fi
				[ "$na" -gt 0 ] && [[ $c != *timeout* ]] && c="$c ($na n/a)"
				na_total=$((na_total + na))
				cell[$col/$name]=$c
				has_row "$name" || rows+=("$name")
			done <"$log"
		fi
		if [ -r "$st" ]; then
			s=$(sed -n 's/^status=\([0-9]*\) .*/\1/p' "$st")
			sec=$(sed -n 's/.* seconds=\([0-9]*\)$/\1/p' "$st")
			status[$col]=${s:-?}
			minutes[$col]=$(awk -v s="${sec:-0}" 'BEGIN { printf "%.1f", s / 60 }')
		else
			# check.sh never got to this run (its cells say "no run")
			status[$col]="-"
			minutes[$col]="-"
		fi
	done
done

# Count the cells; a run that failed without a failing script adds one.
for k in "${kvers[@]}"; do
	for m in "${modes[@]}"; do
		col="$k/$m" colfail=0
		if [ "$m" = ref ] && [ -n "${noref[$k]:-}" ]; then
			for r in "${rows[@]}"; do
				cell[$col/$r]="-"
			done
			continue
		fi
		for r in "${rows[@]}"; do
			if [ -r "$logs/check-$k-$m.tests" ] &&
				! grep -qx "$r\(\.sh\)\?" "$logs/check-$k-$m.tests"; then
				cell[$col/$r]="-"
				continue
			fi
			c=${cell[$col/$r]:-FAIL (no run)}
			cell[$col/$r]=$c
			case $c in
			pass*) passed=$((passed + 1)) ;;
			skip*) skipped=$((skipped + 1)) ;;
			*) failed=$((failed + 1)) colfail=1 ;;
			esac
		done
		if [ "${status[$col]}" != 0 ] && [ "${status[$col]}" != - ] &&
			[ "$colfail" -eq 0 ]; then
			failed=$((failed + 1))
			status[$col]="FAIL (${status[$col]})"
		fi
	done
done

# host-checks.sh's lines count as cells of their own
host_lines=()
if [ -r "$logs/host-checks.log" ]; then
	mapfile -t host_lines < <(grep -E '^(not )?ok [0-9]+ ' "$logs/host-checks.log")
	for line in "${host_lines[@]}"; do
		case $line in
		not*) failed=$((failed + 1)) ;;
		*"# SKIP"*) skipped=$((skipped + 1)) ;;
		*) passed=$((passed + 1)) ;;
		esac
	done
fi

# Column widths: one for the names, one for every cell.
nw=6
for r in "${rows[@]}" "vm-run exit" "minutes"; do
	((${#r} > nw)) && nw=${#r}
done
cw=4
for k in "${kvers[@]}"; do
	for m in "${modes[@]}"; do
		for r in "${rows[@]}"; do
			c=${cell[$k/$m/$r]}
			((${#c} > cw)) && cw=${#c}
		done
		c=${status[$k/$m]}
		((${#c} > cw)) && cw=${#c}
	done
	# the release heads two columns
	((${#k} > 2 * cw + 2)) && cw=$(((${#k} - 1) / 2))
done

table() {
	local k m r
	printf '%-*s' "$nw" ""
	for k in "${kvers[@]}"; do
		printf '  %-*s' $((2 * cw + 2)) "$k"
	done
	echo
	printf '%-*s' "$nw" "script"
	for k in "${kvers[@]}"; do
		for m in "${modes[@]}"; do
			printf '  %-*s' "$cw" "$m"
		done
	done
	echo
	for r in "${rows[@]}"; do
		printf '%-*s' "$nw" "$r"
		for k in "${kvers[@]}"; do
			for m in "${modes[@]}"; do
				printf '  %-*s' "$cw" "${cell[$k/$m/$r]}"
			done
		done
		echo
	done
	printf '%-*s' "$nw" "vm-run exit"
	for k in "${kvers[@]}"; do
		for m in "${modes[@]}"; do
			printf '  %-*s' "$cw" "${status[$k/$m]}"
		done
	done
	echo
	printf '%-*s' "$nw" "minutes"
	for k in "${kvers[@]}"; do
		for m in "${modes[@]}"; do
			printf '  %-*s' "$cw" "${minutes[$k/$m]}"
		done
	done
	echo
	echo
	((${#host_lines[@]})) && printf 'host check: %s\n' "${host_lines[@]}"
	echo "n/a: a case the in-tree module of that kernel predates (reference runs only;"
	echo "with our modules an N/A is a failure).  -: not run (--ref, --core)."
	echo "Logs: build/logs/check-<kernel>-<mode>.log"
	((report)) || awk -v i="$t_install" -v t="$t_total" 'BEGIN {
		printf "wall time %.1f min, of which %.1f min installing packages and kernels\n",
			t / 60, i / 60 }'
	echo "$na_total n/a"
	echo "$passed passed, $failed failed, $skipped skipped"
}

echo
echo "=== check-matrix ==="
table | sed 's/ *$//' | tee "$logs/matrix.txt"
[ "$failed" -eq 0 ]

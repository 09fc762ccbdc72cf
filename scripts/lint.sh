#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# make lint: shellcheck over our shell scripts (-x, every severity), and
# the kernel's checkpatch.pl over our C: kmod/, nft-expr/, include/ and the
# probes as kernel code; tools/ as userspace, without the checks that only
# hold in the kernel (its __printf/__noreturn macros, negative errnos,
# function names in strings); and kernel-doc -Werror over the modules.  checkpatch comes from Debian's
# linux-source-6.1 (installed as scripts/debug-kernel.sh --deps-only does),
# taken out into build/checkpatch/.  Prints what it finds and a last line
# "lint: N files, N with findings" (selftests/Makefile counts as a file:
# its TEST_PROGS and TEST_FILES must name exactly the scripts and helpers) (a file counts once per tool); exit 1 if any.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$top"
tarball=/usr/src/linux-source-6.1.tar.xz

command -v shellcheck >/dev/null || scripts/deps.sh
[[ -r $tarball ]] || scripts/debug-kernel.sh --deps-only
cp=build/checkpatch/scripts/checkpatch.pl
kdoc=build/checkpatch/scripts/kernel-doc
if [[ ! -f build/checkpatch/stamp || $tarball -nt build/checkpatch/stamp ]]; then
	rm -rf build/checkpatch
	mkdir -p build/checkpatch
	tar -C build/checkpatch --strip-components=1 -xJf "$tarball" \
		linux-source-6.1/scripts/checkpatch.pl \
		linux-source-6.1/scripts/spelling.txt \
		linux-source-6.1/scripts/const_structs.checkpatch \
		linux-source-6.1/scripts/kernel-doc
	touch build/checkpatch/stamp
fi

files=0 bad=0
finding() { # FILE OUTPUT
	files=$((files + 1))
	[[ -z $2 ]] && return 0
	bad=$((bad + 1))
	printf '== %s\n%s\n' "$1" "$2"
}

mapfile -t shells < <({
	git ls-files '*.sh' scripts/vm-run scripts/guest-load-modules
} | sort -u)
for f in "${shells[@]}"; do
	finding "$f" "$(shellcheck -x "$f" 2>&1 || true)"
done

checkpatch() { # FILE ARGS...
	"$cp" --no-tree --terse --show-types "${@:2}" -f "$1" 2>&1 |
		grep -v '^total: 0 errors, 0 warnings, ' || true
}
while IFS= read -r f; do
	finding "$f" "$(checkpatch "$f")"
done < <(git ls-files 'kmod/*.[ch]' 'nft-expr/*.[ch]' 'include/*.h')
while IFS= read -r f; do
	finding "$f" "$(checkpatch "$f" --ignore PREFER_DEFINED_ATTRIBUTE_MACRO,USE_NEGATIVE_ERRNO,EMBEDDED_FUNCTION_NAME)"
done < <(git ls-files 'tools/*.[ch]')

# the kernel-doc of the core's exported functions
for f in kmod/*.c nft-expr/*.c; do
	finding "$f (kernel-doc)" "$(perl "$kdoc" -none -Werror "$f" 2>&1 || true)"
done

# selftests/Makefile's lists against the directory: what run.sh would run
# with no names, and every other file a script may source or start
listed() { make -s -C selftests -f Makefile -f - <<< "p:; @printf '%s\n' \$($1)" p | sort; }
finding selftests/Makefile "$(
	diff <(listed TEST_PROGS) <(cd selftests && ls nft_*.sh) | sed 's/^/TEST_PROGS: /'
	diff <(listed TEST_FILES) <(cd selftests && git ls-files | grep -vxE 'nft_.*\.sh|Makefile|README\.md|config|settings|run\.sh') |
		sed 's/^/TEST_FILES: /'
)" || true

echo "lint: $files files, $bad with findings"
((bad == 0))

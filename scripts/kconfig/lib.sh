# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# Configuring a kernel tree from x86_64 defconfig and config fragments,
# for scripts/debug-kernel.sh and scripts/kconfig-check.sh.

# kconfig_wanted FRAGMENT...: "NAME VALUE" for every option the fragments
# set, the last fragment winning (as in merge_config.sh); VALUE is "n" for
# "# CONFIG_X is not set".
kconfig_wanted() {
	local f line name val
	local -A want=()
	local order=()
	for f in "$@"; do
		while IFS= read -r line; do
			if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
				name=${BASH_REMATCH[1]} val=${BASH_REMATCH[2]}
			elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
				name=${BASH_REMATCH[1]} val=n
			else
				continue
			fi
			[[ -n ${want[$name]+x} ]] || order+=("$name")
			want[$name]=$val
		done <"$f"
	done
	for name in "${order[@]}"; do
		printf '%s %s\n' "$name" "${want[$name]}"
	done
}

# kconfig_verify CONFIG FRAGMENT...: say, on stderr, each option the
# fragments set that olddefconfig dropped or changed (an unmet dependency,
# a renamed symbol); fails if there is one.
kconfig_verify() {
	local cfg=$1 name val have bad=0
	shift
	while read -r name val; do
		have=$(grep -E "^$name=" "$cfg" | cut -d= -f2- || true)
		if [[ $val == n ]]; then
			[[ -z $have || $have == n ]] && continue
		else
			[[ $have == "$val" ]] && continue
		fi
		echo "config: $name wanted ${val}, got ${have:-not set}" >&2
		bad=1
	done < <(kconfig_wanted "$@")
	((bad == 0))
}

# kconfig_make SRC OBJDIR FRAGMENT...: configure OBJDIR (the tree itself,
# or an O= directory of it) as defconfig + the fragments, and verify it.
# make's output goes to stdout.
kconfig_make() {
	local src obj o=()
	src=$(cd "$1" && pwd -P) obj=$(cd "$2" && pwd -P)
	shift 2
	[[ $obj == "$src" ]] || o=(O="$obj")
	make -s -C "$src" "${o[@]}" defconfig &&
		"$src"/scripts/kconfig/merge_config.sh -m -O "$obj" "$obj/.config" \
			"$@" >/dev/null &&
		make -s -C "$src" "${o[@]}" olddefconfig &&
		kconfig_verify "$obj/.config" "$@"
}

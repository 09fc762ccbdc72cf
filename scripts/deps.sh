#!/bin/bash
# Install (idempotently) the Debian packages the build, the VM harness and
# the tests need.  Runs `apt-get update` only when something is missing, so
# a second run is offline and takes well under a second.
set -euo pipefail

PKGS=(
	# VM harness: TCG guest, initramfs, module tools, decompressors for
	# kernels that ship .ko.xz / .ko.zst
	qemu-system-x86 busybox-static kmod cpio xz-utils zstd coreutils util-linux
	# kernel to boot and to build against
	linux-image-amd64 linux-headers-amd64 make gcc libmnl-dev
	# the DKMS install the README gives (selftests/nft_install.sh)
	dkms
	# userspace used by the tests inside the guest
	nftables iproute2 ethtool socat python3 procps iputils-ping squid curl
	# a UDP-capable transparent proxy (ss-redir), nft_tproxy_ssredir.sh
	shadowsocks-libev
	# make bench's iptables TPROXY setup
	iptables
)

installed() {
	# dpkg -s alone also succeeds for removed-but-not-purged packages.
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing=()
for p in "${PKGS[@]}"; do
	installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
	echo "deps.sh: all ${#PKGS[@]} packages present"
	exit 0
fi

if ((EUID != 0)); then
	echo "deps.sh: missing ${missing[*]}; run as root" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq &&
	apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
	cat "$log" >&2
	echo "deps.sh: apt-get failed installing ${missing[*]}" >&2
	exit 1
fi
echo "deps.sh: installed ${missing[*]}"

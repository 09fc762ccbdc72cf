// SPDX-License-Identifier: GPL-2.0-only
/* 5.13: "netfilter: nft_socket: add support for cgroupsv2" (e0bb96db96f8):
 * the uapi header knows NFT_SOCKET_CGROUPV2 and NFTA_SOCKET_LEVEL.
 */
#include <linux/netfilter/nf_tables.h>

static __used int probe(void)
{
	return NFT_SOCKET_CGROUPV2 + NFTA_SOCKET_LEVEL;
}

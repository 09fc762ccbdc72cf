// SPDX-License-Identifier: GPL-2.0-only
/* 5.16: "netfilter: nf_tables: convert pktinfo->tprot_set to flags field"
 * (b5bdc6f9c24d): NFT_PKTINFO_L4PROTO replaces tprot_set.
 */
#include <net/netfilter/nf_tables.h>

static __used bool probe(const struct nft_pktinfo *pkt)
{
	return pkt->flags & NFT_PKTINFO_L4PROTO;
}

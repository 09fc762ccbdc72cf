// SPDX-License-Identifier: GPL-2.0-only
/* 5.14: "netfilter: nf_tables: add nft_thoff()"
 * and the pktinfo rework: thoff and fragoff live in nft_pktinfo.
 */
#include <net/netfilter/nf_tables.h>

unsigned int probe(const struct nft_pktinfo *pkt)
{
	return nft_thoff(pkt) + pkt->fragoff;
}

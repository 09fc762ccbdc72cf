// SPDX-License-Identifier: GPL-2.0-only
/* 5.14: "netfilter: nf_tables: remove xt_action_param from nft_pktinfo"
 * (897389de4828): thoff and fragoff live in nft_pktinfo itself.  Its
 * series also added nft_thoff() ("netfilter: nf_tables: add and use
 * nft_thoff helper"), which alone went to stable 5.10.198 and there still
 * reads pkt->xt.thoff: hence the probe needs fragoff too.
 */
#include <net/netfilter/nf_tables.h>

static __used unsigned int probe(const struct nft_pktinfo *pkt)
{
	return nft_thoff(pkt) + pkt->fragoff;
}

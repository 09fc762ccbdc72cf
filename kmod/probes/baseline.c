// SPDX-License-Identifier: GPL-2.0-only
/* Must always build: if it does not, the probe setup itself is broken
 * (flags, objtool, a missing /proc) and every other answer is void.
 */
#include <net/netfilter/nf_tables.h>

static __used int probe(const struct nft_pktinfo *pkt)
{
	return nft_pf(pkt);
}

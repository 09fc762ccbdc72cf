// SPDX-License-Identifier: GPL-2.0-only
/* 5.13: "netfilter: disable defrag once its no longer
 * needed": defrag users drop their reference again.
 */
#include <net/netfilter/ipv4/nf_defrag_ipv4.h>

void probe(struct net *net)
{
	nf_defrag_ipv4_disable(net);
}

// SPDX-License-Identifier: GPL-2.0-only
/* 5.13: "netfilter: disable defrag once its no longer needed"
 * (de8c12110a13): defrag users drop their reference again.
 * Absent in 5.10.223 headers.
 */
#include <net/netfilter/ipv4/nf_defrag_ipv4.h>

static __used void probe(struct net *net)
{
	nf_defrag_ipv4_disable(net);
}

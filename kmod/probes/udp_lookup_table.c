// SPDX-License-Identifier: GPL-2.0-only
/* Until "udp: Don't pass udptable to IPv4 socket lookup functions."
 * (68aeb21ef0e1, and its IPv6 twin deffb85478a4; net-next, March 2026):
 * __udp4_lib_lookup() and __udp6_lib_lookup() take the udp_table to
 * search.  Seen in the headers of 6.12.117, absent in 7.3.4.
 */
#include <net/udp.h>

static __used struct sock *probe(struct net *net, __be32 a, __be16 p)
{
	return __udp4_lib_lookup(net, a, p, a, p, 0, 0,
				 (struct udp_table *)NULL, NULL);
}

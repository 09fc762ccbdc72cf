// SPDX-License-Identifier: GPL-2.0-only
/* Until "tcp: Don't pass hashinfo to socket lookup helpers."
 * (cb16f4b6c73d, net-next Aug 2025, the 6.18 merge window), callers pass
 * the netns' TCP hash table.  Present in 6.12.117 headers, absent in 7.3.4.
 */
#include <net/inet_hashtables.h>
#include <net/tcp.h>

static __used struct sock *probe(struct net *net, __be32 a, __be16 p)
{
	return inet_lookup_established(net, net->ipv4.tcp_death_row.hashinfo,
				       a, p, a, p, 0);
}

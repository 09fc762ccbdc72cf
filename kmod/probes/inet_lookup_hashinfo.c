// SPDX-License-Identifier: GPL-2.0-only
/* Until the socket lookup helpers dropped the hashinfo argument (6.18),
 * callers pass the netns' TCP hash table.
 */
#include <net/inet_hashtables.h>
#include <net/tcp.h>

struct sock *probe(struct net *net, __be32 a, __be16 p)
{
	return inet_lookup_established(net, net->ipv4.tcp_death_row.hashinfo,
				       a, p, a, p, 0);
}

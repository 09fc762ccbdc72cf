// SPDX-License-Identifier: GPL-2.0-only
/* 6.2: "udp: Introduce optional per-netns hash table." (9804985bf27f):
 * the UDP table to look up in hangs off the netns.
 */
#include <net/net_namespace.h>
#include <net/udp.h>

static __used struct udp_table *probe(struct net *net)
{
	return net->ipv4.udp_table;
}

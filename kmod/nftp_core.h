/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * nftp_core: the socket lookup and redirect core shared by our tproxy and
 * socket expressions.  Names are nftp_* so that the in-tree nf_tproxy_* and
 * nf_socket_* modules (used by iptables TPROXY) can be loaded beside us.
 */
#ifndef _NFTP_CORE_H
#define _NFTP_CORE_H

#include <linux/in6.h>
#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <linux/skbuff.h>
#include <net/inet_sock.h>
#include <net/ipv6.h>
#include <net/sock.h>
#include <net/tcp.h>

bool nftp_redirect_v4(struct net *net, struct sk_buff *skb,
		      unsigned int thoff, u8 l4proto,
		      const struct net_device *in,
		      __be32 taddr, __be16 tport);

bool nftp_redirect_v6(struct net *net, struct sk_buff *skb,
		      unsigned int thoff, u8 l4proto,
		      const struct net_device *in,
		      const struct in6_addr *taddr, __be16 tport);

bool nftp_route_local_usable(u8 family);
bool nftp_route_local(struct sk_buff *skb, u8 family);

int nftp_redirect_out_v4(struct net *net, struct sk_buff *skb,
			 unsigned int thoff, u8 l4proto,
			 __be32 taddr, __be16 tport);

int nftp_redirect_out_v6(struct net *net, struct sk_buff *skb,
			 unsigned int thoff, u8 l4proto,
			 const struct in6_addr *taddr, __be16 tport);

/*
 * Sent by a socket with IP_TRANSPARENT, of @net: a proxy's own packet,
 * which output must never divert back to a proxy (the loop).  In output,
 * the sender may be of any family (a tunnel's inner packet) or netns.
 */
static inline bool nftp_sent_transparent(const struct sk_buff *skb,
					 const struct net *net)
{
	const struct sock *sk = skb->sk;

	return sk && (sk->sk_family == AF_INET || sk->sk_family == AF_INET6) &&
	       net_eq(sock_net(sk), net) && inet_sk_transparent(sk);
}

struct sock *nftp_sk_lookup(struct net *net, struct sk_buff *skb,
			    u8 family, unsigned int thoff, u8 l4proto,
			    u16 fragoff, const struct net_device *in);

/*
 * Bound to no address, for a packet of @family: what the socket match
 * calls a wildcard socket, and what makes a connected UDP socket no more
 * than a listener.  A dual-stack socket answers for IPv4 by its IPv4 part.
 * A full socket only.
 */
static inline bool nftp_sk_wildcard(const struct sock *sk, u8 family)
{
#if IS_ENABLED(CONFIG_IPV6)
	if (family == NFPROTO_IPV6)
		return ipv6_addr_any(&sk->sk_v6_rcv_saddr);
#endif
	return !inet_sk(sk)->inet_rcv_saddr;
}

#endif /* _NFTP_CORE_H */

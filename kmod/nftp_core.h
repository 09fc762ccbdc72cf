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
#include <linux/skbuff.h>
#include <net/sock.h>

/*
 * Divert a TCP/UDP packet to a local transparent socket, as TPROXY does:
 * its own established socket first, else a listener on taddr:tport.
 * A zero taddr (or :: for IPv6) means the input device's address, a zero
 * tport the packet's destination port.  On success the socket is
 * assigned to the skb and true returned; on a miss nothing is changed.
 */
bool nftp_redirect_v4(struct net *net, struct sk_buff *skb,
		      unsigned int thoff, u8 l4proto,
		      const struct net_device *in,
		      __be32 taddr, __be16 tport);

bool nftp_redirect_v6(struct net *net, struct sk_buff *skb,
		      unsigned int thoff, u8 l4proto,
		      const struct net_device *in,
		      const struct in6_addr *taddr, __be16 tport);

/*
 * The socket a packet belongs to, as the socket match sees it: TCP (an
 * established socket, else a listener) and UDP by the packet's tuple,
 * ICMP/ICMPv6 errors by the tuple they quote, replies of SNATed flows by
 * conntrack's original tuple.  Never parses a non-first fragment as L4.
 * Returns a referenced socket (release with sock_gen_put) or NULL.
 */
struct sock *nftp_sk_lookup(struct net *net, struct sk_buff *skb,
			    u8 family, unsigned int thoff, u8 l4proto,
			    u16 fragoff, const struct net_device *in);

#endif /* _NFTP_CORE_H */

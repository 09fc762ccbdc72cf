// SPDX-License-Identifier: GPL-2.0-only
/*
 * The transparent-proxy redirect: divert a packet to a local socket that
 * has IP_TRANSPARENT, as the TPROXY target always did.
 */
#include <linux/inetdevice.h>
#include <linux/module.h>
#include <net/addrconf.h>
#include <net/if_inet6.h>
#include <net/inet_timewait_sock.h>
#include <net/ip.h>
#include <net/ipv6.h>

#include "compat.h"
#include "nftp_internal.h"

/* The first primary address of the input device, as TPROXY defines it. */
static __be32 nftp_laddr4(const struct net_device *dev, __be32 daddr)
{
	struct in_device *indev = __in_dev_get_rcu(dev);
	struct in_ifaddr *ifa;

	/* No in_device once IPv4 is gone from the device (CVE-2024-36270). */
	if (!indev)
		return daddr;

	in_dev_for_each_ifa_rcu(ifa, indev) {
		if (!(ifa->ifa_flags & IFA_F_SECONDARY))
			return ifa->ifa_local;
	}
	return daddr;
}

/* The first usable address; addr_list keeps the widest scope first. */
static void nftp_laddr6(const struct net_device *dev,
			const struct in6_addr *daddr, struct in6_addr *laddr)
{
	struct inet6_dev *idev = __in6_dev_get(dev);
	const struct inet6_ifaddr *ifa;

	*laddr = *daddr;
	if (!idev)
		return;

	read_lock_bh(&idev->lock);
	list_for_each_entry(ifa, &idev->addr_list, if_list) {
		if (ifa->flags & (IFA_F_TENTATIVE | IFA_F_DEPRECATED))
			continue;
		*laddr = ifa->addr;
		break;
	}
	read_unlock_bh(&idev->lock);
}

/* Consumes the reference on @sk, whatever the outcome. */
static bool nftp_assign(struct sk_buff *skb, struct sock *sk)
{
	if (!sk)
		return false;
	if (!inet_sk_transparent(sk)) {
		sock_gen_put(sk);
		return false;
	}
	skb_orphan(skb);
	skb->sk = sk;
	skb->destructor = sock_edemux;
	return true;
}

/* @taddr and @tport are final here: the caller filled in the defaults. */
static bool nftp_redirect(struct net *net, struct sk_buff *skb,
			  unsigned int thoff, const struct nftp_flow *f,
			  const struct net_device *in,
			  const union nf_inet_addr *taddr, __be16 tport)
{
	struct sock *sk, *listener;

	/* A packet of a flow diverted before finds the proxy's own socket. */
	sk = nftp_flow_lookup(net, skb, thoff, f, &f->daddr, f->dport, in,
			      NFTP_LOOKUP_ESTABLISHED);
	if (!sk)
		return nftp_assign(skb, nftp_flow_lookup(net, skb, thoff, f,
							 taddr, tport, in,
							 NFTP_LOOKUP_LISTENER));

	/*
	 * A new SYN reusing a tuple in TIME_WAIT is a new connection: hand
	 * it to the listener, if any, rather than to the old one's remains.
	 */
	if (sk->sk_state == TCP_TIME_WAIT && f->pure_syn) {
		listener = nftp_flow_lookup(net, skb, thoff, f, taddr, tport,
					    in, NFTP_LOOKUP_LISTENER);
		if (listener) {
			/* The timewait timer runs in BH: deadlock otherwise. */
			local_bh_disable();
			inet_twsk_deschedule_put(inet_twsk(sk));
			local_bh_enable();
			sk = listener;
		}
	}
	return nftp_assign(skb, sk);
}

/**
 * nftp_redirect_v4 - divert an IPv4 TCP/UDP packet to a transparent socket
 * @net: the netns the packet is in
 * @skb: the packet, its network header set
 * @thoff: offset of its TCP/UDP header
 * @l4proto: IPPROTO_TCP or IPPROTO_UDP
 * @in: the input device
 * @taddr: the address of the proxy's listener; 0: @in's first primary
 *	address
 * @tport: the port of the proxy's listener; 0: the packet's destination
 *	port
 *
 * As the TPROXY target does: the socket of the packet's own established
 * flow first, else a listener on @taddr:@tport; only a socket with
 * IP_TRANSPARENT is taken.  A new SYN that meets a TIME_WAIT socket goes
 * to the listener.  Under rcu_read_lock, in prerouting.
 *
 * Return: true if a socket was assigned to @skb (it holds the reference);
 * false, with @skb unchanged, on a miss.
 */
bool nftp_redirect_v4(struct net *net, struct sk_buff *skb,
		      unsigned int thoff, u8 l4proto,
		      const struct net_device *in,
		      __be32 taddr, __be16 tport)
{
	struct nftp_flow f = { .family = NFPROTO_IPV4, .l4proto = l4proto };
	union nf_inet_addr t = {};

	if (!nftp_flow_from_skb(skb, thoff, &f))
		return false;

	t.ip = taddr ? taddr : nftp_laddr4(in, f.daddr.ip);
	return nftp_redirect(net, skb, thoff, &f, in, &t,
			     tport ? tport : f.dport);
}
EXPORT_SYMBOL_GPL(nftp_redirect_v4);

/**
 * nftp_redirect_v6 - divert an IPv6 TCP/UDP packet to a transparent socket
 * @net: the netns the packet is in
 * @skb: the packet, its network header set
 * @thoff: offset of its TCP/UDP header (after any extension headers)
 * @l4proto: IPPROTO_TCP or IPPROTO_UDP
 * @in: the input device
 * @taddr: the address of the proxy's listener; NULL or ::: the first
 *	usable address of @in
 * @tport: the port of the proxy's listener; 0: the packet's destination
 *	port
 *
 * As nftp_redirect_v4().
 *
 * Return: true if a socket was assigned to @skb; false, with @skb
 * unchanged, on a miss.
 */
bool nftp_redirect_v6(struct net *net, struct sk_buff *skb,
		      unsigned int thoff, u8 l4proto,
		      const struct net_device *in,
		      const struct in6_addr *taddr, __be16 tport)
{
	struct nftp_flow f = { .family = NFPROTO_IPV6, .l4proto = l4proto };
	union nf_inet_addr t = {};

	if (!nftp_flow_from_skb(skb, thoff, &f))
		return false;

	if (taddr && !ipv6_addr_any(taddr))
		t.in6 = *taddr;
	else
		nftp_laddr6(in, &f.daddr.in6, &t.in6);
	return nftp_redirect(net, skb, thoff, &f, in, &t,
			     tport ? tport : f.dport);
}
EXPORT_SYMBOL_GPL(nftp_redirect_v6);

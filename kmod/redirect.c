// SPDX-License-Identifier: GPL-2.0-only
/*
 * The transparent-proxy redirect: divert a packet to a local socket that
 * has IP_TRANSPARENT, as the TPROXY target always did.
 */
#include <linux/inetdevice.h>
#include <linux/module.h>
#include <net/addrconf.h>
#include <net/dst_metadata.h>
#include <net/if_inet6.h>
#include <net/inet_timewait_sock.h>
#include <net/ip.h>
#include <net/ip6_route.h>
#include <net/ipv6.h>
#include <net/route.h>

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

/*
 * The transparent socket that takes @f, referenced, or NULL: the socket of
 * its own established flow, else a listener on @taddr:@tport.  A new SYN
 * that meets a TIME_WAIT socket goes to the listener; with @end_tw (the
 * packet is taken now) the TIME_WAIT socket is ended too.
 */
static struct sock *nftp_proxy_sk(struct net *net, struct sk_buff *skb,
				  unsigned int thoff, const struct nftp_flow *f,
				  const struct net_device *in,
				  const union nf_inet_addr *taddr, __be16 tport,
				  bool end_tw)
{
	struct sock *sk, *listener;

	sk = nftp_flow_lookup(net, skb, thoff, f, &f->daddr, f->dport, in,
			      NFTP_LOOKUP_ESTABLISHED);
	if (!sk) {
		sk = nftp_flow_lookup(net, skb, thoff, f, taddr, tport, in,
				      NFTP_LOOKUP_LISTENER);
	} else if (sk->sk_state == TCP_TIME_WAIT && f->pure_syn) {
		/* A new connection, not the old one's remains. */
		listener = nftp_flow_lookup(net, skb, thoff, f, taddr, tport,
					    in, NFTP_LOOKUP_LISTENER);
		if (listener) {
			if (end_tw) {
				/* Its timer runs in BH: deadlock otherwise. */
				local_bh_disable();
				inet_twsk_deschedule_put(inet_twsk(sk));
				local_bh_enable();
			} else {
				sock_gen_put(sk);
			}
			sk = listener;
		}
	}
	if (sk && !inet_sk_transparent(sk)) {
		sock_gen_put(sk);
		return NULL;
	}
	return sk;
}

/* @taddr and @tport are final here: the caller filled in the defaults. */
static bool nftp_redirect(struct net *net, struct sk_buff *skb,
			  unsigned int thoff, const struct nftp_flow *f,
			  const struct net_device *in,
			  const union nf_inet_addr *taddr, __be16 tport)
{
	struct sock *sk;

	sk = nftp_proxy_sk(net, skb, thoff, f, in, taddr, tport, true);
	if (!sk)
		return false;
	skb_orphan(skb);
	skb->sk = sk;
	skb->destructor = sock_edemux;
	return true;
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

static bool nftp_dst_local6(const struct dst_entry *dst)
{
	return container_of(dst, struct rt6_info, dst)->rt6i_flags & RTF_LOCAL;
}

/*
 * The local-route mode: a packet that has its socket is routed to local
 * delivery here, so that the stack's own routing step, which would forward
 * it (its destination is foreign), is skipped.  No fwmark, "ip rule" or
 * "local" route table is needed.  The route is the input device's own
 * local one, looked up as the stack would look up a packet sent to that
 * address, so that rp_filter and martian checks still apply.
 */
static bool nftp_route_local4(struct sk_buff *skb)
{
	const struct iphdr *iph = ip_hdr(skb);
	__be32 laddr = nftp_laddr4(skb->dev, 0);

	/* Sent through loopback by nftp_redirect_out_v4(): routed already. */
	if (skb_valid_dst(skb) && skb_rtable(skb)->rt_type == RTN_LOCAL)
		goto local;
	if (!laddr)
		return false;

	skb_dst_drop(skb);
	if (nftp_route_input4(skb, laddr, iph->saddr, iph->tos, skb->dev))
		return false;
	if (skb_rtable(skb)->rt_type != RTN_LOCAL) {
		skb_dst_drop(skb);
		return false;
	}
local:
	/*
	 * The route belongs to the flow, not to the destination address:
	 * a later packet of the same receive batch to the same address must
	 * not take it as its route hint, as a multipath route must not.
	 */
	IPCB(skb)->flags |= IPSKB_MULTIPATH;
	return true;
}

static bool nftp_route_local6(struct sk_buff *skb)
{
	const struct ipv6hdr *ip6h = ipv6_hdr(skb);
	struct flowi6 fl6 = {
		.flowi6_iif	= skb->dev->ifindex,
		.saddr		= ip6h->saddr,
		.flowlabel	= ip6_flowinfo(ip6h),
		.flowi6_mark	= skb->mark,
		.flowi6_proto	= ip6h->nexthdr,
	};
	struct dst_entry *dst;

	if (!IS_ENABLED(CONFIG_IPV6) || !NFTP_IP6SKB_NOHINT)
		return false;

	/* Sent through loopback by nftp_redirect_out_v6(): routed already. */
	if (skb_valid_dst(skb) && nftp_dst_local6(skb_dst(skb)))
		goto local;

	nftp_laddr6(skb->dev, &in6addr_any, &fl6.daddr);
	if (ipv6_addr_any(&fl6.daddr))
		return false;

	dst = ip6_route_input_lookup(dev_net(skb->dev), skb->dev, &fl6, skb,
				     RT6_LOOKUP_F_HAS_SADDR);
	if (dst->error || !nftp_dst_local6(dst)) {
		dst_release(dst);
		return false;
	}
	skb_dst_drop(skb);
	skb_dst_set(skb, dst);
local:
	IP6CB(skb)->flags |= NFTP_IP6SKB_NOHINT;	/* as for IPv4 */
	return true;
}

/**
 * nftp_route_local_usable - whether nftp_route_local() can serve @family
 * @family: NFPROTO_IPV4, NFPROTO_IPV6, or NFPROTO_UNSPEC for both
 *
 * Return: false where the kernel has no way to keep an IPv6 packet's local
 * route from serving other packets as a route hint (see compat.h): a rule
 * that would give IPv6 packets one must be refused there.
 */
bool nftp_route_local_usable(u8 family)
{
	return family == NFPROTO_IPV4 || NFTP_IP6SKB_NOHINT;
}
EXPORT_SYMBOL_GPL(nftp_route_local_usable);

/**
 * nftp_route_local - route a diverted packet to local delivery
 * @skb: a packet nftp_redirect_v4() or nftp_redirect_v6() gave a socket
 * @family: NFPROTO_IPV4 or NFPROTO_IPV6
 *
 * Gives @skb the local input route of its input device's first address
 * (as nftp_redirect_v4/v6 pick it), so that it is delivered to its socket
 * without policy routing.  In prerouting, under rcu_read_lock.
 *
 * Return: true if @skb now has a local route; false if its device has no
 * address of @family, or that address has no local route from the
 * packet's source (rp_filter, martian): the caller must not let @skb go
 * on, it holds a socket and would be forwarded.
 */
bool nftp_route_local(struct sk_buff *skb, u8 family)
{
	switch (family) {
	case NFPROTO_IPV4:
		return nftp_route_local4(skb);
	case NFPROTO_IPV6:
		return nftp_route_local6(skb);
	}
	return false;
}
EXPORT_SYMBOL_GPL(nftp_route_local);

/*
 * The output side of the local-route mode.  A packet the host sends has
 * no input device, and its socket is its sender's: it cannot be given the
 * proxy's socket here.  Instead it is given the output route of
 * loopback's own address, whose input side is local delivery: it loops
 * back with that route, so the stack does not route it again, and a
 * tproxy rule in prerouting on loopback assigns the socket.  Whether one
 * would take it is decided here, by the lookup that rule will make (on
 * loopback, of loopback's address): else the packet goes its way.
 */
/* @daddr: the loopback's own address, zero when it has none. */
static int nftp_route_out4(struct net *net, struct sk_buff *skb, __be32 daddr)
{
	struct flowi4 fl4 = { .daddr = daddr };
	struct rtable *rt;

	if (!daddr)
		return -EHOSTUNREACH;
	rt = ip_route_output_key(net, &fl4);
	if (IS_ERR(rt))
		return PTR_ERR(rt);
	if (rt->rt_type != RTN_LOCAL) {
		ip_rt_put(rt);
		return -EHOSTUNREACH;
	}
	skb_dst_drop(skb);
	skb_dst_set(skb, &rt->dst);
	return 0;
}

/* @daddr: the loopback's own address, any when it has none. */
static int nftp_route_out6(struct net *net, struct sk_buff *skb,
			   const struct in6_addr *daddr)
{
	struct flowi6 fl6 = {
		.flowi6_oif = net->loopback_dev->ifindex,
		.daddr = *daddr,
	};
	struct dst_entry *dst;

	if (!IS_ENABLED(CONFIG_IPV6))
		return -EAFNOSUPPORT;
	if (ipv6_addr_any(daddr))
		return -EHOSTUNREACH;
	dst = ip6_route_output(net, NULL, &fl6);
	if (dst->error || !nftp_dst_local6(dst)) {
		dst_release(dst);
		return -EHOSTUNREACH;
	}
	skb_dst_drop(skb);
	skb_dst_set(skb, dst);
	return 0;
}

/* @lo: the loopback's address, looked up once for the default target
 * and for the route.
 */
static int nftp_redirect_out(struct net *net, struct sk_buff *skb,
			     unsigned int thoff, const struct nftp_flow *f,
			     const union nf_inet_addr *taddr, __be16 tport,
			     const union nf_inet_addr *lo)
{
	struct sock *sk;

	/* No skb: reuseport programs are left to run on the real lookup. */
	sk = nftp_proxy_sk(net, NULL, thoff, f, net->loopback_dev, taddr,
			   tport, false);
	if (!sk)
		return -ENOENT;
	sock_gen_put(sk);

	if (f->family == NFPROTO_IPV4)
		return nftp_route_out4(net, skb, lo->ip);
	return nftp_route_out6(net, skb, &lo->in6);
}

/**
 * nftp_redirect_out_v4 - send a packet the host sends to a transparent
 *	socket, through loopback
 * @net: the netns the packet is in
 * @skb: the packet, in output, its network header set
 * @thoff: offset of its TCP/UDP header
 * @l4proto: IPPROTO_TCP or IPPROTO_UDP
 * @taddr: as for nftp_redirect_v4(), the input device being loopback
 * @tport: as for nftp_redirect_v4()
 *
 * If nftp_redirect_v4() would give @skb a socket were it to arrive on
 * loopback, routes it there (see above).  The sender is not looked at:
 * the caller keeps the proxy's own packets out (nftp_sent_transparent()).
 * Under rcu_read_lock, in output.
 *
 * Return: 0 if @skb now goes to loopback; -ENOENT if no transparent
 * socket would take it, @skb unchanged; another negative errno if one
 * would but loopback has no local route (down, no address): the caller
 * must not let @skb go on, its proxy would be bypassed.
 */
int nftp_redirect_out_v4(struct net *net, struct sk_buff *skb,
			 unsigned int thoff, u8 l4proto,
			 __be32 taddr, __be16 tport)
{
	struct nftp_flow f = { .family = NFPROTO_IPV4, .l4proto = l4proto };
	union nf_inet_addr t = {}, lo = {};

	if (!nftp_flow_from_skb(skb, thoff, &f))
		return -ENOENT;

	lo.ip = nftp_laddr4(net->loopback_dev, 0);
	t.ip = taddr ?: lo.ip ?: f.daddr.ip;
	return nftp_redirect_out(net, skb, thoff, &f, &t, tport ?: f.dport,
				 &lo);
}
EXPORT_SYMBOL_GPL(nftp_redirect_out_v4);

/**
 * nftp_redirect_out_v6 - send a packet the host sends to a transparent
 *	socket, through loopback
 * @net: the netns the packet is in
 * @skb: the packet, in output, its network header set
 * @thoff: offset of its TCP/UDP header (after any extension headers)
 * @l4proto: IPPROTO_TCP or IPPROTO_UDP
 * @taddr: as for nftp_redirect_v6(), the input device being loopback
 * @tport: as for nftp_redirect_v6()
 *
 * As nftp_redirect_out_v4().
 *
 * Return: as nftp_redirect_out_v4().
 */
int nftp_redirect_out_v6(struct net *net, struct sk_buff *skb,
			 unsigned int thoff, u8 l4proto,
			 const struct in6_addr *taddr, __be16 tport)
{
	struct nftp_flow f = { .family = NFPROTO_IPV6, .l4proto = l4proto };
	union nf_inet_addr t = {}, lo = {};

	if (!IS_ENABLED(CONFIG_IPV6))
		return -EAFNOSUPPORT;
	if (!nftp_flow_from_skb(skb, thoff, &f))
		return -ENOENT;

	nftp_laddr6(net->loopback_dev, &in6addr_any, &lo.in6);
	if (taddr && !ipv6_addr_any(taddr))
		t.in6 = *taddr;
	else if (!ipv6_addr_any(&lo.in6))
		t.in6 = lo.in6;
	else
		t.in6 = f.daddr.in6;
	return nftp_redirect_out(net, skb, thoff, &f, &t, tport ?: f.dport,
				 &lo);
}
EXPORT_SYMBOL_GPL(nftp_redirect_out_v6);

// SPDX-License-Identifier: GPL-2.0-only
/*
 * Socket lookup and transparent-proxy redirect, shared by the tproxy and
 * socket expressions.
 */
#include <linux/inetdevice.h>
#include <linux/module.h>
#include <linux/netfilter.h>
#include <net/addrconf.h>
#include <net/if_inet6.h>
#include <net/inet_sock.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/sock.h>

#include "compat.h"
#include "nftp_core.h"

/*
 * UDP has no listen state.  A connected socket stands for an established
 * flow only when bound to a specific address; any unconnected socket is
 * a "listener".  Takes the reference the UDP lookup did not.
 */
static struct sock *nftp_udp_hold(struct sock *sk, bool wildcard,
				  enum nftp_lookup type)
{
	bool connected;

	if (!sk || !refcount_inc_not_zero(&sk->sk_refcnt))
		return NULL;

	connected = sk->sk_state == TCP_ESTABLISHED;
	if (type == NFTP_LOOKUP_ESTABLISHED ? !connected || wildcard : connected) {
		sock_put(sk);
		return NULL;
	}
	return sk;
}

/* Listeners live in an RCU hash without a reference for the finder. */
static struct sock *nftp_listener_hold(struct sock *sk)
{
	if (sk && !refcount_inc_not_zero(&sk->sk_refcnt))
		return NULL;
	return sk;
}

/* Offset of the TCP payload, which reuseport BPF programs are run on. */
static int nftp_tcp_doff(const struct sk_buff *skb, unsigned int thoff)
{
	struct tcphdr _th;
	const struct tcphdr *th;

	th = skb_header_pointer(skb, thoff, sizeof(_th), &_th);
	return th ? thoff + __tcp_hdrlen(th) : -1;
}

struct sock *nftp_lookup_v4(struct net *net, struct sk_buff *skb,
			    unsigned int thoff, u8 l4proto,
			    __be32 saddr, __be16 sport,
			    __be32 daddr, __be16 dport,
			    const struct net_device *in,
			    enum nftp_lookup type)
{
	struct sock *sk;
	int doff;

	switch (l4proto) {
	case IPPROTO_TCP:
		if (type == NFTP_LOOKUP_ESTABLISHED)
			return nftp_tcp4_established(net, saddr, sport, daddr,
						     dport, in->ifindex);
		doff = nftp_tcp_doff(skb, thoff);
		if (doff < 0)
			return NULL;
		return nftp_listener_hold(nftp_tcp4_listener(net, skb, doff,
							     saddr, sport,
							     daddr, dport,
							     in->ifindex));
	case IPPROTO_UDP:
		sk = nftp_udp4_lookup_rcu(net, saddr, sport, daddr, dport,
					  in->ifindex);
		return nftp_udp_hold(sk, sk && !inet_sk(sk)->inet_rcv_saddr,
				     type);
	}
	return NULL;
}
EXPORT_SYMBOL_GPL(nftp_lookup_v4);

struct sock *nftp_lookup_v6(struct net *net, struct sk_buff *skb,
			    unsigned int thoff, u8 l4proto,
			    const struct in6_addr *saddr, __be16 sport,
			    const struct in6_addr *daddr, __be16 dport,
			    const struct net_device *in,
			    enum nftp_lookup type)
{
	struct sock *sk;
	int doff;

	switch (l4proto) {
	case IPPROTO_TCP:
		if (type == NFTP_LOOKUP_ESTABLISHED)
			return nftp_tcp6_established(net, saddr, sport, daddr,
						     dport, in->ifindex);
		doff = nftp_tcp_doff(skb, thoff);
		if (doff < 0)
			return NULL;
		return nftp_listener_hold(nftp_tcp6_listener(net, skb, doff,
							     saddr, sport,
							     daddr, dport,
							     in->ifindex));
	case IPPROTO_UDP:
		sk = nftp_udp6_lookup_rcu(net, saddr, sport, daddr, dport,
					  in->ifindex);
		return nftp_udp_hold(sk,
				     sk && ipv6_addr_any(&sk->sk_v6_rcv_saddr),
				     type);
	}
	return NULL;
}
EXPORT_SYMBOL_GPL(nftp_lookup_v6);

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

/* What a redirect needs to know of the packet, for either family. */
struct nftp_flow {
	u8			family;
	u8			l4proto;
	bool			pure_syn;
	__be16			sport;
	__be16			dport;
	union nf_inet_addr	saddr;
	union nf_inet_addr	daddr;
};

static bool nftp_flow_ports(const struct sk_buff *skb, unsigned int thoff,
			    struct nftp_flow *f)
{
	union {
		struct tcphdr	tcp;
		struct udphdr	udp;
	} buf;
	const struct tcphdr *th;
	const struct udphdr *uh;

	switch (f->l4proto) {
	case IPPROTO_TCP:
		th = skb_header_pointer(skb, thoff, sizeof(buf.tcp), &buf.tcp);
		if (!th)
			return false;
		f->sport = th->source;
		f->dport = th->dest;
		f->pure_syn = th->syn && !th->ack && !th->rst && !th->fin;
		return true;
	case IPPROTO_UDP:
		uh = skb_header_pointer(skb, thoff, sizeof(buf.udp), &buf.udp);
		if (!uh)
			return false;
		f->sport = uh->source;
		f->dport = uh->dest;
		f->pure_syn = false;
		return true;
	}
	return false;
}

static struct sock *nftp_flow_lookup(struct net *net, struct sk_buff *skb,
				     unsigned int thoff,
				     const struct nftp_flow *f,
				     const union nf_inet_addr *daddr,
				     __be16 dport, const struct net_device *in,
				     enum nftp_lookup type)
{
	if (f->family == NFPROTO_IPV4)
		return nftp_lookup_v4(net, skb, thoff, f->l4proto,
				      f->saddr.ip, f->sport, daddr->ip, dport,
				      in, type);
	return nftp_lookup_v6(net, skb, thoff, f->l4proto,
			      &f->saddr.in6, f->sport, &daddr->in6, dport,
			      in, type);
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

/*
 * @taddr and @tport are final here: the caller has filled in the defaults.
 */
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

bool nftp_redirect_v4(struct net *net, struct sk_buff *skb,
		      unsigned int thoff, u8 l4proto,
		      const struct net_device *in,
		      __be32 taddr, __be16 tport)
{
	const struct iphdr *iph = ip_hdr(skb);
	struct nftp_flow f = { .family = NFPROTO_IPV4, .l4proto = l4proto };
	union nf_inet_addr t = {};

	if (!nftp_flow_ports(skb, thoff, &f))
		return false;
	f.saddr.ip = iph->saddr;
	f.daddr.ip = iph->daddr;

	t.ip = taddr ? taddr : nftp_laddr4(in, iph->daddr);
	return nftp_redirect(net, skb, thoff, &f, in, &t,
			     tport ? tport : f.dport);
}
EXPORT_SYMBOL_GPL(nftp_redirect_v4);

bool nftp_redirect_v6(struct net *net, struct sk_buff *skb,
		      unsigned int thoff, u8 l4proto,
		      const struct net_device *in,
		      const struct in6_addr *taddr, __be16 tport)
{
	const struct ipv6hdr *ip6h = ipv6_hdr(skb);
	struct nftp_flow f = { .family = NFPROTO_IPV6, .l4proto = l4proto };
	union nf_inet_addr t = {};

	if (!nftp_flow_ports(skb, thoff, &f))
		return false;
	f.saddr.in6 = ip6h->saddr;
	f.daddr.in6 = ip6h->daddr;

	if (taddr && !ipv6_addr_any(taddr))
		t.in6 = *taddr;
	else
		nftp_laddr6(in, &ip6h->daddr, &t.in6);
	return nftp_redirect(net, skb, thoff, &f, in, &t,
			     tport ? tport : f.dport);
}
EXPORT_SYMBOL_GPL(nftp_redirect_v6);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("nft-tproxy developers");
MODULE_DESCRIPTION("Socket lookup and transparent redirect core for nft-tproxy");

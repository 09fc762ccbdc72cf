// SPDX-License-Identifier: GPL-2.0-only
/*
 * Socket lookups by tuple, for TCP and UDP over IPv4 and IPv6: the part of
 * nftp_core that both the tproxy redirect and the socket match stand on.
 */
#include <net/inet_sock.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/sock.h>

#include "compat.h"
#include "nftp_internal.h"

/*
 * UDP has no listen state.  A connected socket stands for an established
 * flow only when bound to a specific address; any unconnected socket is
 * a "listener".  Takes the reference the UDP lookup did not.
 */
static struct sock *nftp_udp_hold(struct sock *sk, u8 family,
				  enum nftp_lookup type)
{
	bool connected;

	if (!sk || !refcount_inc_not_zero(&sk->sk_refcnt))
		return NULL;

	connected = sk->sk_state == TCP_ESTABLISHED;
	if ((type == NFTP_LOOKUP_ESTABLISHED &&
	     (!connected || nftp_sk_wildcard(sk, family))) ||
	    (type == NFTP_LOOKUP_LISTENER && connected)) {
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

/*
 * Offset of the TCP payload, which reuseport BPF programs run on; 0 (no
 * program run) when the tuple did not come from this skb's own headers.
 */
static int nftp_tcp_doff(const struct sk_buff *skb, unsigned int thoff)
{
	struct tcphdr _th;
	const struct tcphdr *th;

	if (!skb)
		return 0;
	th = skb_header_pointer(skb, thoff, sizeof(_th), &_th);
	return th ? thoff + __tcp_hdrlen(th) : -1;
}

static struct sock *nftp_tcp_established(struct net *net,
					 const struct nftp_flow *f,
					 const union nf_inet_addr *daddr,
					 __be16 dport, int dif)
{
	if (f->family == NFPROTO_IPV4)
		return nftp_tcp4_established(net, f->saddr.ip, f->sport,
					     daddr->ip, dport, dif);
	return nftp_tcp6_established(net, &f->saddr.in6, f->sport,
				     &daddr->in6, dport, dif);
}

static struct sock *nftp_tcp_listener(struct net *net, struct sk_buff *skb,
				      int doff, const struct nftp_flow *f,
				      const union nf_inet_addr *daddr,
				      __be16 dport, int dif)
{
	if (f->family == NFPROTO_IPV4)
		return nftp_tcp4_listener(net, skb, doff, f->saddr.ip, f->sport,
					  daddr->ip, dport, dif);
	return nftp_tcp6_listener(net, skb, doff, &f->saddr.in6, f->sport,
				  &daddr->in6, dport, dif);
}

static struct sock *nftp_udp_lookup(struct net *net, const struct nftp_flow *f,
				    const union nf_inet_addr *daddr,
				    __be16 dport, int dif, enum nftp_lookup type)
{
	struct sock *sk;

	if (f->family == NFPROTO_IPV4)
		sk = nftp_udp4_lookup_rcu(net, f->saddr.ip, f->sport,
					  daddr->ip, dport, dif);
	else
		sk = nftp_udp6_lookup_rcu(net, &f->saddr.in6, f->sport,
					  &daddr->in6, dport, dif);
	return nftp_udp_hold(sk, f->family, type);
}

struct sock *nftp_flow_lookup(struct net *net, struct sk_buff *skb,
			      unsigned int thoff, const struct nftp_flow *f,
			      const union nf_inet_addr *daddr, __be16 dport,
			      const struct net_device *in,
			      enum nftp_lookup type)
{
	struct sock *sk;
	int doff;

	switch (f->l4proto) {
	case IPPROTO_TCP:
		if (type != NFTP_LOOKUP_LISTENER) {
			sk = nftp_tcp_established(net, f, daddr, dport,
						  in->ifindex);
			if (sk || type == NFTP_LOOKUP_ESTABLISHED)
				return sk;
		}
		doff = nftp_tcp_doff(skb, thoff);
		if (doff < 0)
			return NULL;
		return nftp_listener_hold(nftp_tcp_listener(net, skb, doff, f,
							    daddr, dport,
							    in->ifindex));
	case IPPROTO_UDP:
		return nftp_udp_lookup(net, f, daddr, dport, in->ifindex, type);
	}
	return NULL;
}

/* Fill @f from the packet's own network and TCP/UDP headers. */
bool nftp_flow_from_skb(const struct sk_buff *skb, unsigned int thoff,
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
		break;
	case IPPROTO_UDP:
		uh = skb_header_pointer(skb, thoff, sizeof(buf.udp), &buf.udp);
		if (!uh)
			return false;
		f->sport = uh->source;
		f->dport = uh->dest;
		f->pure_syn = false;
		break;
	default:
		return false;
	}

	if (f->family == NFPROTO_IPV4) {
		f->saddr.ip = ip_hdr(skb)->saddr;
		f->daddr.ip = ip_hdr(skb)->daddr;
	} else {
		f->saddr.in6 = ipv6_hdr(skb)->saddr;
		f->daddr.in6 = ipv6_hdr(skb)->daddr;
	}
	return true;
}

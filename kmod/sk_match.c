// SPDX-License-Identifier: GPL-2.0-only
/*
 * The socket a packet belongs to, for the socket match: by the packet's
 * own tuple, by the tuple an ICMP error quotes, and for replies of SNATed
 * flows by conntrack's original tuple.
 */
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <linux/module.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/netfilter/nf_conntrack.h>

#include "compat.h"
#include "nftp_internal.h"

/* The quoted packet is one we sent: its source is our socket's end. */
static void nftp_flow_quoted(struct nftp_flow *f, u8 l4proto,
			     const __be16 *ports)
{
	swap(f->saddr, f->daddr);
	f->l4proto = l4proto;
	f->sport = ports[1];
	f->dport = ports[0];
}

static bool nftp_flow_from_icmp4(const struct sk_buff *skb,
				 unsigned int thoff, struct nftp_flow *f)
{
	unsigned int off = thoff + sizeof(struct icmphdr);
	const struct icmphdr *ih;
	const struct iphdr *iph;
	struct icmphdr _ih;
	struct iphdr _iph;
	__be16 _ports[2];
	const __be16 *ports;

	ih = skb_header_pointer(skb, thoff, sizeof(_ih), &_ih);
	if (!ih || !icmp_is_err(ih->type))
		return false;

	iph = skb_header_pointer(skb, off, sizeof(_iph), &_iph);
	/* A quoted non-first fragment has no ports to look at. */
	if (!iph || iph->ihl < 5 || (iph->frag_off & htons(IP_OFFSET)) ||
	    (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP))
		return false;

	ports = skb_header_pointer(skb, off + iph->ihl * 4, sizeof(_ports),
				   _ports);
	if (!ports)
		return false;

	f->saddr.ip = iph->saddr;
	f->daddr.ip = iph->daddr;
	nftp_flow_quoted(f, iph->protocol, ports);
	return true;
}

static bool nftp_flow_from_icmp6(const struct sk_buff *skb,
				 unsigned int thoff, struct nftp_flow *f)
{
	unsigned int off = thoff + sizeof(struct icmp6hdr);
	const struct icmp6hdr *ih;
	const struct ipv6hdr *ip6h;
	struct icmp6hdr _ih;
	struct ipv6hdr _ip6h;
	__be16 _ports[2];
	const __be16 *ports;
	__be16 frag_off;
	u8 nexthdr;
	int l4off;

	ih = skb_header_pointer(skb, thoff, sizeof(_ih), &_ih);
	if (!ih || (ih->icmp6_type & ICMPV6_INFOMSG_MASK))
		return false;

	ip6h = skb_header_pointer(skb, off, sizeof(_ip6h), &_ip6h);
	if (!ip6h)
		return false;

	nexthdr = ip6h->nexthdr;
	l4off = ipv6_skip_exthdr(skb, off + sizeof(_ip6h), &nexthdr, &frag_off);
	if (l4off < 0 || (ntohs(frag_off) & ~0x7) ||
	    (nexthdr != IPPROTO_TCP && nexthdr != IPPROTO_UDP))
		return false;

	ports = skb_header_pointer(skb, l4off, sizeof(_ports), _ports);
	if (!ports)
		return false;

	/* Copied out now: ip6h may point into _ip6h, gone with this frame. */
	f->saddr.in6 = ip6h->saddr;
	f->daddr.in6 = ip6h->daddr;
	nftp_flow_quoted(f, nexthdr, ports);
	return true;
}

/* A reply of an SNATed flow was sent to the translated address. */
static void nftp_flow_unsnat(const struct sk_buff *skb, struct nftp_flow *f,
			     bool icmp)
{
	const struct nf_conntrack_tuple *orig;
	enum ip_conntrack_info ctinfo;
	const struct nf_conn *ct;

	if (!IS_ENABLED(CONFIG_NF_CONNTRACK))
		return;

	ct = nf_ct_get(skb, &ctinfo);
	if (!ct || !(ct->status & IPS_SRC_NAT_DONE) ||
	    ctinfo != (icmp ? IP_CT_RELATED_REPLY : IP_CT_ESTABLISHED_REPLY))
		return;

	orig = &ct->tuplehash[IP_CT_DIR_ORIGINAL].tuple;
	f->daddr = orig->src.u3;
	f->dport = orig->src.u.all;
}

/**
 * nftp_sk_lookup - the local socket a packet belongs to
 * @net: the netns the packet is in
 * @skb: the packet, its network header set
 * @family: NFPROTO_IPV4 or NFPROTO_IPV6
 * @thoff: offset of its transport header
 * @l4proto: its transport protocol
 * @fragoff: its fragment offset: a non-first fragment is never parsed
 * @in: the input device; NULL (output) finds nothing
 *
 * As the socket match sees it: TCP (an established socket, else a
 * listener) and UDP by the packet's tuple; ICMP and ICMPv6 errors by the
 * tuple they quote; replies of SNATed flows by conntrack's original tuple.
 * Under rcu_read_lock.
 *
 * Return: a referenced socket, full, request or TIME_WAIT (release it
 * with sock_gen_put()), or NULL.
 */
struct sock *nftp_sk_lookup(struct net *net, struct sk_buff *skb,
			    u8 family, unsigned int thoff, u8 l4proto,
			    u16 fragoff, const struct net_device *in)
{
	struct nftp_flow f = { .family = family, .l4proto = l4proto };
	bool icmp;

	if (!in || fragoff)
		return NULL;

	switch (l4proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		if (!nftp_flow_from_skb(skb, thoff, &f))
			return NULL;
		icmp = false;
		break;
	case IPPROTO_ICMP:
		if (family != NFPROTO_IPV4 ||
		    !nftp_flow_from_icmp4(skb, thoff, &f))
			return NULL;
		icmp = true;
		break;
	case IPPROTO_ICMPV6:
		if (!IS_ENABLED(CONFIG_IPV6) || family != NFPROTO_IPV6 ||
		    !nftp_flow_from_icmp6(skb, thoff, &f))
			return NULL;
		icmp = true;
		break;
	default:
		return NULL;
	}

	nftp_flow_unsnat(skb, &f, icmp);
	/* Reuseport programs get the skb only when it carries the tuple. */
	return nftp_flow_lookup(net, icmp ? NULL : skb, thoff, &f, &f.daddr,
				f.dport, in, NFTP_LOOKUP_ANY);
}
EXPORT_SYMBOL_GPL(nftp_sk_lookup);

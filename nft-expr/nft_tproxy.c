// SPDX-License-Identifier: GPL-2.0-only
/*
 * The nf_tables "tproxy" expression, on the nftp_core redirect.
 * Netlink ABI of the in-tree nft_tproxy, plus NFTA_TPROXY_NFTP_FLAGS
 * (<linux/netfilter/nftp.h>).
 */
#include <linux/build_bug.h>
#include <linux/module.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nftp.h>
#include <net/netfilter/nf_tables.h>

#include "nft_compat.h"
#include "nftp_core.h"
#include "nftp_version.h"

struct nft_tproxy {
	u8	sreg_addr;
	u8	sreg_port;
	u8	family;
	u32	flags;		/* NFTP_TPROXY_F_* */
};

/* nf_tables parses an expression's attributes into NFT_EXPR_MAXATTR + 1. */
static_assert(NFTA_TPROXY_NFTP_FLAGS <= NFT_EXPR_MAXATTR);

/*
 * Each returns 0 when the packet is the proxy's (prerouting: it holds its
 * socket; output: it goes to loopback, where prerouting gives it one),
 * -ENOENT on a miss, another negative errno when it must be dropped.
 */
static int nft_tproxy_v4(const struct nft_tproxy *priv,
			 const struct nft_regs *regs,
			 const struct nft_pktinfo *pkt, u8 l4proto, __be16 tport)
{
	__be32 taddr = priv->sreg_addr ?
		       (__force __be32)regs->data[priv->sreg_addr] : 0;

	if (nft_hook(pkt) == NF_INET_LOCAL_OUT)
		return nftp_redirect_out_v4(nft_net(pkt), pkt->skb,
					    nftp_thoff(pkt), l4proto, taddr,
					    tport);

	if (!nftp_redirect_v4(nft_net(pkt), pkt->skb, nftp_thoff(pkt),
			      l4proto, nft_in(pkt), taddr, tport))
		return -ENOENT;
	/* With a socket, it must not be forwarded: no route, no packet. */
	if ((priv->flags & NFTP_TPROXY_F_LOCAL_ROUTE) &&
	    !nftp_route_local(pkt->skb, NFPROTO_IPV4))
		return -EHOSTUNREACH;
	return 0;
}

static int nft_tproxy_v6(const struct nft_tproxy *priv,
			 const struct nft_regs *regs,
			 const struct nft_pktinfo *pkt, u8 l4proto, __be16 tport)
{
	const struct in6_addr *taddr = priv->sreg_addr ?
		(const struct in6_addr *)&regs->data[priv->sreg_addr] : NULL;

	if (nft_hook(pkt) == NF_INET_LOCAL_OUT)
		return nftp_redirect_out_v6(nft_net(pkt), pkt->skb,
					    nftp_thoff(pkt), l4proto, taddr,
					    tport);

	if (!nftp_redirect_v6(nft_net(pkt), pkt->skb, nftp_thoff(pkt),
			      l4proto, nft_in(pkt), taddr, tport))
		return -ENOENT;
	if ((priv->flags & NFTP_TPROXY_F_LOCAL_ROUTE) &&
	    !nftp_route_local(pkt->skb, NFPROTO_IPV6))
		return -EHOSTUNREACH;
	return 0;
}

/*
 * local-route, prerouting: an ICMP error that quotes a flow of a
 * transparent socket is the proxy's too (a path MTU or unreachable error
 * for its connection from the client's address, sent to that address):
 * it gets the local route, and the ICMP handler finds the socket by the
 * quoted tuple, as the socket match does.  No socket is assigned.
 */
static int nft_tproxy_icmp(const struct nft_pktinfo *pkt, u8 family)
{
	struct sock *sk;
	bool ours;

	sk = nftp_sk_lookup(nft_net(pkt), pkt->skb, family, nftp_thoff(pkt),
			    nftp_l4proto(pkt), nftp_fragoff(pkt), nft_in(pkt));
	if (!sk)
		return -ENOENT;
	ours = inet_sk_transparent(sk);
	sock_gen_put(sk);
	if (!ours)
		return -ENOENT;
	return nftp_route_local(pkt->skb, family) ? 0 : -EHOSTUNREACH;
}

static bool nft_tproxy_is_icmp(u8 family, u8 l4proto)
{
	return (family == NFPROTO_IPV4 && l4proto == IPPROTO_ICMP) ||
	       (family == NFPROTO_IPV6 && l4proto == IPPROTO_ICMPV6);
}

static void nft_tproxy_eval(const struct nft_expr *expr,
			    struct nft_regs *regs,
			    const struct nft_pktinfo *pkt)
{
	const struct nft_tproxy *priv = nft_expr_priv(expr);
	u8 l4proto = nftp_l4proto(pkt);
	__be16 tport = 0;
	int err;

	if (l4proto != IPPROTO_TCP && l4proto != IPPROTO_UDP) {
		/* Not diverted: a miss is never fail-closed. */
		if ((priv->flags & NFTP_TPROXY_F_LOCAL_ROUTE) &&
		    nft_hook(pkt) == NF_INET_PRE_ROUTING &&
		    (priv->family == NFPROTO_UNSPEC ||
		     priv->family == nft_pf(pkt)) &&
		    nft_tproxy_is_icmp(nft_pf(pkt), l4proto)) {
			err = nft_tproxy_icmp(pkt, nft_pf(pkt));
			if (err == -EHOSTUNREACH) {
				regs->verdict.code = NF_DROP;
				return;
			}
			if (!err)
				return;
		}
		goto not_ours;
	}

	/* Output (local-route only): the proxy's own packets pass, or loop. */
	if (nft_hook(pkt) == NF_INET_LOCAL_OUT &&
	    nftp_sent_transparent(pkt->skb, nft_net(pkt)))
		goto not_ours;

	if (priv->sreg_port)
		tport = *(__be16 *)&regs->data[priv->sreg_port];

	/* Ports are only in the first fragment (defrag is normally ahead):
	 * a later one cannot be diverted, so it misses.  The hooks that
	 * validate admits see IPv4 and IPv6 packets only.
	 */
	err = -ENOENT;
	if (nft_pf(pkt) == NFPROTO_IPV4) {
		if (priv->family == NFPROTO_IPV6)
			goto not_ours;
		if (!nftp_fragoff(pkt))
			err = nft_tproxy_v4(priv, regs, pkt, l4proto, tport);
	} else {
		if (priv->family == NFPROTO_IPV4)
			goto not_ours;
		if (!nftp_fragoff(pkt))
			err = nft_tproxy_v6(priv, regs, pkt, l4proto, tport);
	}
	if (!err)
		return;

	/* A miss falls through to the next rule, as upstream, unless the
	 * rule fails closed: then the packet must not leave unproxied.
	 */
	if (err != -ENOENT || (priv->flags & NFTP_TPROXY_F_FAIL_CLOSED)) {
		regs->verdict.code = NF_DROP;
		return;
	}
not_ours:
	regs->verdict.code = NFT_BREAK;
}

static const struct nla_policy nft_tproxy_policy[NFTA_TPROXY_NFTP_FLAGS + 1] = {
	[NFTA_TPROXY_FAMILY]	= { .type = NLA_U32 },
	[NFTA_TPROXY_REG_ADDR]	= { .type = NLA_U32 },
	[NFTA_TPROXY_REG_PORT]	= { .type = NLA_U32 },
	[NFTA_TPROXY_NFTP_FLAGS] = { .type = NLA_U32 },
};

static int nft_tproxy_defrag_enable(struct net *net, u8 family)
{
	int err;

	switch (family) {
	case NFPROTO_IPV4:
		return nf_defrag_ipv4_enable(net);
	case NFPROTO_IPV6:
		return nftp_defrag_ipv6_enable(net);
	case NFPROTO_UNSPEC:
		err = nf_defrag_ipv4_enable(net);
		if (err)
			return err;
		err = nftp_defrag_ipv6_enable(net);
		if (err)
			nftp_defrag_ipv4_disable(net);
		return err;
	}
	return -EOPNOTSUPP;
}

static void nft_tproxy_defrag_disable(struct net *net, u8 family)
{
	if (family != NFPROTO_IPV6)
		nftp_defrag_ipv4_disable(net);
	if (family != NFPROTO_IPV4)
		nftp_defrag_ipv6_disable(net);
}

static int nft_tproxy_init(const struct nft_ctx *ctx,
			   const struct nft_expr *expr,
			   const struct nlattr * const tb[])
{
	struct nft_tproxy *priv = nft_expr_priv(expr);
	unsigned int alen;
	u32 family;
	int err;

	if (!tb[NFTA_TPROXY_FAMILY] ||
	    (!tb[NFTA_TPROXY_REG_ADDR] && !tb[NFTA_TPROXY_REG_PORT]))
		return -EINVAL;

	family = ntohl(nla_get_be32(tb[NFTA_TPROXY_FAMILY]));

	switch (ctx->family) {
	case NFPROTO_IPV4:
	case NFPROTO_IPV6:
		/* A single-family table takes only its own family. */
		if (family != ctx->family)
			return -EINVAL;
		break;
	case NFPROTO_INET:
		break;
	default:
		return -EOPNOTSUPP;
	}

	switch (family) {
	case NFPROTO_IPV4:
		alen = sizeof_field(union nf_inet_addr, ip);
		break;
	case NFPROTO_IPV6:
		alen = sizeof_field(union nf_inet_addr, in6);
		break;
	case NFPROTO_UNSPEC:
		/* Without a family an address has no meaning. */
		if (tb[NFTA_TPROXY_REG_ADDR])
			return -EINVAL;
		alen = 0;
		break;
	default:
		return -EOPNOTSUPP;
	}
	priv->family = family;

	if (tb[NFTA_TPROXY_NFTP_FLAGS]) {
		priv->flags = ntohl(nla_get_be32(tb[NFTA_TPROXY_NFTP_FLAGS]));
		/* A flag we do not know must not load as a rule without it. */
		if (priv->flags & ~NFTP_TPROXY_F_ALL)
			return -EOPNOTSUPP;
		/* Nor one this kernel cannot make safe (IPv6 before 6.1). */
		if ((priv->flags & NFTP_TPROXY_F_LOCAL_ROUTE) &&
		    !nftp_route_local_usable(family))
			return -EOPNOTSUPP;
	}

	if (tb[NFTA_TPROXY_REG_ADDR]) {
		err = nftp_parse_register_load(ctx, tb[NFTA_TPROXY_REG_ADDR],
					       &priv->sreg_addr, alen);
		if (err < 0)
			return err;
	}

	if (tb[NFTA_TPROXY_REG_PORT]) {
		err = nftp_parse_register_load(ctx, tb[NFTA_TPROXY_REG_PORT],
					       &priv->sreg_port, sizeof(u16));
		if (err < 0)
			return err;
	}

	/* Last, so that no error above has to give it back. */
	return nft_tproxy_defrag_enable(ctx->net, priv->family);
}

static void nft_tproxy_destroy(const struct nft_ctx *ctx,
			       const struct nft_expr *expr)
{
	const struct nft_tproxy *priv = nft_expr_priv(expr);

	nft_tproxy_defrag_disable(ctx->net, priv->family);
}

static int nft_tproxy_dump(struct sk_buff *skb, const struct nft_expr *expr)
{
	const struct nft_tproxy *priv = nft_expr_priv(expr);

	if (nla_put_be32(skb, NFTA_TPROXY_FAMILY, htonl(priv->family)))
		return -1;

	if (priv->sreg_addr &&
	    nft_dump_register(skb, NFTA_TPROXY_REG_ADDR, priv->sreg_addr))
		return -1;

	if (priv->sreg_port &&
	    nft_dump_register(skb, NFTA_TPROXY_REG_PORT, priv->sreg_port))
		return -1;

	/* Only when set: a plain rule dumps exactly as in-tree. */
	if (priv->flags &&
	    nla_put_be32(skb, NFTA_TPROXY_NFTP_FLAGS, htonl(priv->flags)))
		return -1;

	return 0;
}

static int nft_tproxy_validate(const struct nft_ctx *ctx,
			       const struct nft_expr *expr)
{
	const struct nft_tproxy *priv = nft_expr_priv(expr);
	unsigned int hooks = 1 << NF_INET_PRE_ROUTING;

	/* Hook numbers overlap across families: netdev ingress is 0 too. */
	if (ctx->family != NFPROTO_IPV4 && ctx->family != NFPROTO_IPV6 &&
	    ctx->family != NFPROTO_INET)
		return -EOPNOTSUPP;

	/* Only before routing can a packet be given a socket; upstream's
	 * tproxy crashed in output, looking up with no input device.  With
	 * local-route, output sends the packet to loopback and looks up on
	 * loopback; the socket is assigned there, in prerouting.
	 */
	if (priv->flags & NFTP_TPROXY_F_LOCAL_ROUTE)
		hooks |= 1 << NF_INET_LOCAL_OUT;
	return nft_chain_validate_hooks(ctx->chain, hooks);
}

NFTP_DUMP_OP(nft_tproxy_dump)
NFTP_VALIDATE_OP(nft_tproxy_validate)

static struct nft_expr_type nft_tproxy_type;
static const struct nft_expr_ops nft_tproxy_ops = {
	.type		= &nft_tproxy_type,
	.size		= NFT_EXPR_SIZE(sizeof(struct nft_tproxy)),
	.eval		= nft_tproxy_eval,
	.init		= nft_tproxy_init,
	.destroy	= nft_tproxy_destroy,
	.dump		= nft_tproxy_dump_op,
	.validate	= nft_tproxy_validate_op,
};

static struct nft_expr_type nft_tproxy_type __read_mostly = {
	.name		= "tproxy",
	.ops		= &nft_tproxy_ops,
	.policy		= nft_tproxy_policy,
	.maxattr	= NFTA_TPROXY_NFTP_FLAGS,
	.owner		= THIS_MODULE,
};

static int __init nft_tproxy_module_init(void)
{
	return nft_register_expr(&nft_tproxy_type);
}

static void __exit nft_tproxy_module_exit(void)
{
	nft_unregister_expr(&nft_tproxy_type);
}

module_init(nft_tproxy_module_init);
module_exit(nft_tproxy_module_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("nft-tproxy developers");
MODULE_VERSION(NFTP_VERSION);
MODULE_DESCRIPTION("nf_tables tproxy expression (nft-tproxy)");
MODULE_ALIAS_NFT_EXPR("tproxy");

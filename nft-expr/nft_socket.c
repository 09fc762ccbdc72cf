// SPDX-License-Identifier: GPL-2.0-only
/*
 * The nf_tables "socket" expression, on the nftp_core lookup.
 * Netlink ABI of the in-tree nft_socket, plus the keys
 * NFT_SOCKET_NFTP_UID/GID (<linux/netfilter/nftp.h>).
 */
#include <linux/cgroup.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nftp.h>
#include <linux/nsproxy.h>
#include <net/inet_sock.h>
#include <net/netfilter/nf_tables.h>
#include <net/tcp.h>

#include "nft_compat.h"
#include "nftp_core.h"
#include "nftp_version.h"

struct nft_socket {
	u8	key;
	u8	dreg;
	u8	len;
	u8	level;		/* cgroupv2: absolute ancestor level */
	u8	level_user;	/* cgroupv2: as given, relative to the cgroupns */
};

#ifdef CONFIG_SOCK_CGROUP_DATA
static bool nft_socket_cgroupv2(u32 *dest, struct sock *sk, u8 level)
{
	struct cgroup *cgrp;
	u64 cgid;

	if (!sk_fullsock(sk))
		return false;

	cgrp = cgroup_ancestor(sock_cgroup_ptr(&sk->sk_cgrp_data), level);
	if (!cgrp)
		return false;

	cgid = cgroup_id(cgrp);
	memcpy(dest, &cgid, sizeof(cgid));
	return true;
}

/*
 * The level of the caller's cgroup namespace root: userspace counts
 * levels from there.  Process context (a netlink request) only.
 */
static unsigned int nft_socket_cgroupns_level(void)
{
	return current->nsproxy->cgroup_ns->root_cset->dfl_cgrp->level;
}
#else
/* Sockets carry no cgroup here: init refuses the key. */
static bool nft_socket_cgroupv2(u32 *dest, struct sock *sk, u8 level)
{
	return false;
}

static unsigned int nft_socket_cgroupns_level(void)
{
	return 0;
}
#endif

/*
 * The owner of @sk's file, as nft_meta reads skuid/skgid since 2026: no
 * sk_callback_lock.  @sk is held; its struct socket, the file and the
 * file's cred are freed only after an RCU grace period, and hooks run
 * under rcu_read_lock.  Request and TIME_WAIT sockets have no file, nor
 * has a connection not yet accepted or a socket being closed.
 */
static bool nft_socket_owner(u32 *dest, const struct sock *sk, u8 key)
{
	const struct socket *sock;
	const struct file *file;

	if (!sk_fullsock(sk))
		return false;

	sock = READ_ONCE(sk->sk_socket);
	file = sock ? READ_ONCE(sock->file) : NULL;
	if (!file)
		return false;

	if (key == NFT_SOCKET_NFTP_UID)
		*dest = from_kuid_munged(sock_net(sk)->user_ns,
					 file->f_cred->fsuid);
	else
		*dest = from_kgid_munged(sock_net(sk)->user_ns,
					 file->f_cred->fsgid);
	return true;
}

/* Store the key's value of @sk in @dest; false if @sk has none. */
static bool nft_socket_load(const struct nft_socket *priv,
			    const struct nft_pktinfo *pkt,
			    struct sock *sk, u32 *dest)
{
	switch (priv->key) {
	case NFT_SOCKET_TRANSPARENT:
		nft_reg_store8(dest, inet_sk_transparent(sk));
		return true;
	case NFT_SOCKET_MARK:
		if (!sk_fullsock(sk))
			return false;
		*dest = READ_ONCE(sk->sk_mark);
		return true;
	case NFT_SOCKET_WILDCARD:
		if (!sk_fullsock(sk))
			return false;
		nft_reg_store8(dest, nftp_sk_wildcard(sk, nft_pf(pkt)));
		return true;
	case NFT_SOCKET_CGROUPV2:
		return nft_socket_cgroupv2(dest, sk, priv->level);
	case NFT_SOCKET_NFTP_UID:
	case NFT_SOCKET_NFTP_GID:
		return nft_socket_owner(dest, sk, priv->key);
	}
	return false;
}

static void nft_socket_eval(const struct nft_expr *expr,
			    struct nft_regs *regs,
			    const struct nft_pktinfo *pkt)
{
	const struct nft_socket *priv = nft_expr_priv(expr);
	struct sock *sk = pkt->skb->sk, *found = NULL;

	/* An attached socket of another netns says nothing about this one. */
	if (!sk || !net_eq(nft_net(pkt), sock_net(sk)))
		sk = found = nftp_sk_lookup(nft_net(pkt), pkt->skb,
					    nft_pf(pkt), nftp_thoff(pkt),
					    nftp_l4proto(pkt),
					    nftp_fragoff(pkt), nft_in(pkt));

	if (!sk || !nft_socket_load(priv, pkt, sk, &regs->data[priv->dreg]))
		regs->verdict.code = NFT_BREAK;

	/* The one place our reference goes: no path can leak it. */
	if (found)
		sock_gen_put(found);
}

static const struct nla_policy nft_socket_policy[NFTA_SOCKET_MAX + 1] = {
	[NFTA_SOCKET_KEY]	= { .type = NLA_U32 },
	[NFTA_SOCKET_DREG]	= { .type = NLA_U32 },
	[NFTA_SOCKET_LEVEL]	= { .type = NLA_U32 },
};

static int nft_socket_init(const struct nft_ctx *ctx,
			   const struct nft_expr *expr,
			   const struct nlattr * const tb[])
{
	struct nft_socket *priv = nft_expr_priv(expr);
	u32 key, level;

	if (!tb[NFTA_SOCKET_DREG] || !tb[NFTA_SOCKET_KEY])
		return -EINVAL;

	switch (ctx->family) {
	case NFPROTO_IPV4:
	case NFPROTO_IPV6:
	case NFPROTO_INET:
		break;
	default:
		return -EOPNOTSUPP;
	}

	key = ntohl(nla_get_be32(tb[NFTA_SOCKET_KEY]));
	switch (key) {
	case NFT_SOCKET_TRANSPARENT:
	case NFT_SOCKET_WILDCARD:
		priv->len = sizeof(u8);
		break;
	case NFT_SOCKET_MARK:
	case NFT_SOCKET_NFTP_UID:
	case NFT_SOCKET_NFTP_GID:
		priv->len = sizeof(u32);
		break;
	case NFT_SOCKET_CGROUPV2:
		if (!IS_ENABLED(CONFIG_SOCK_CGROUP_DATA))
			return -EOPNOTSUPP;
		if (!tb[NFTA_SOCKET_LEVEL])
			return -EINVAL;
		level = ntohl(nla_get_be32(tb[NFTA_SOCKET_LEVEL]));
		if (level > 255)
			return -EOPNOTSUPP;
		priv->level_user = level;
		level += nft_socket_cgroupns_level();
		/* Deeper than a cgroup tree can be. */
		if (level > 255)
			return -EOPNOTSUPP;
		priv->level = level;
		priv->len = sizeof(u64);
		break;
	default:
		return -EOPNOTSUPP;
	}
	priv->key = key;

	return nftp_parse_register_store(ctx, tb[NFTA_SOCKET_DREG],
					 &priv->dreg, priv->len);
}

static int nft_socket_dump(struct sk_buff *skb, const struct nft_expr *expr)
{
	const struct nft_socket *priv = nft_expr_priv(expr);

	if (nla_put_be32(skb, NFTA_SOCKET_KEY, htonl(priv->key)))
		return -1;
	if (nft_dump_register(skb, NFTA_SOCKET_DREG, priv->dreg))
		return -1;
	if (priv->key == NFT_SOCKET_CGROUPV2 &&
	    nla_put_be32(skb, NFTA_SOCKET_LEVEL, htonl(priv->level_user)))
		return -1;
	return 0;
}

static int nft_socket_validate(const struct nft_ctx *ctx,
			       const struct nft_expr *expr)
{
	/* Hook numbers overlap across families: netdev ingress is 0 too. */
	if (ctx->family != NFPROTO_IPV4 && ctx->family != NFPROTO_IPV6 &&
	    ctx->family != NFPROTO_INET)
		return -EOPNOTSUPP;

	/* Output matches only on the socket the packet already carries. */
	return nft_chain_validate_hooks(ctx->chain,
					(1 << NF_INET_PRE_ROUTING) |
					(1 << NF_INET_LOCAL_IN) |
					(1 << NF_INET_LOCAL_OUT));
}

NFTP_DUMP_OP(nft_socket_dump)
NFTP_VALIDATE_OP(nft_socket_validate)

static struct nft_expr_type nft_socket_type;
static const struct nft_expr_ops nft_socket_ops = {
	.type		= &nft_socket_type,
	.size		= NFT_EXPR_SIZE(sizeof(struct nft_socket)),
	.eval		= nft_socket_eval,
	.init		= nft_socket_init,
	.dump		= nft_socket_dump_op,
	.validate	= nft_socket_validate_op,
	/*
	 * No .reduce: register tracking never called it in a release
	 * (enabled for 5.18, disabled again by 9e539c5b6d9c in 5.18-rc8).
	 */
};

static struct nft_expr_type nft_socket_type __read_mostly = {
	.name		= "socket",
	.ops		= &nft_socket_ops,
	.policy		= nft_socket_policy,
	.maxattr	= NFTA_SOCKET_MAX,
	.owner		= THIS_MODULE,
};

static int __init nft_socket_module_init(void)
{
	return nft_register_expr(&nft_socket_type);
}

static void __exit nft_socket_module_exit(void)
{
	nft_unregister_expr(&nft_socket_type);
}

module_init(nft_socket_module_init);
module_exit(nft_socket_module_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("nft-tproxy developers");
MODULE_VERSION(NFTP_VERSION);
MODULE_DESCRIPTION("nf_tables socket expression (nft-tproxy)");
MODULE_ALIAS_NFT_EXPR("socket");

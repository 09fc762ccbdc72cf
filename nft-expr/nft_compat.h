/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kernel API drift of nf_tables and of the kernel configs, absorbed in one
 * place for the expressions.  The core's socket lookups have their own,
 * kmod/compat.h.
 *
 * Every NFTP_HAVE_* comes from compat_gen.h (scripts/compat-probe.sh, see
 * kmod/compat.h).  Probes are built with -Werror and without W=1, yet
 * kernels turn some warnings on by default (6.8, "Makefile.extrawarn: turn
 * on missing-prototypes globally"): so a probe defines only static __used
 * symbols, and fails on the API it tests, nothing else.  Logic files use
 * only the nftp_* names below, never a version check.
 */
#ifndef _NFTP_NFT_COMPAT_H
#define _NFTP_NFT_COMPAT_H

#include <linux/netfilter.h>
#include <net/netfilter/nf_tables.h>
#include <net/netfilter/ipv4/nf_defrag_ipv4.h>
#include <net/netfilter/ipv6/nf_defrag_ipv6.h>

#include "compat_gen.h"

/* --- nf_tables expression ops ------------------------------------------ */

static inline int nftp_parse_register_load(const struct nft_ctx *ctx,
					   const struct nlattr *attr,
					   u8 *sreg, u32 len)
{
#if defined(NFTP_HAVE_PARSE_REGISTER_LOAD_CTX)
	return nft_parse_register_load(ctx, attr, sreg, len);
#elif defined(NFTP_HAVE_PARSE_REGISTER_LOAD)
	return nft_parse_register_load(attr, sreg, len);
#else
	/* Pre-5.12 without the stable backport: range-check before use,
	 * the old helpers let a huge register number wrap.
	 */
	u32 reg = ntohl(nla_get_be32(attr));
	int err;

	if (reg > NFT_REG32_15)
		return -ERANGE;
	reg = nft_parse_register(attr);
	err = nft_validate_register_load(reg, len);
	if (err < 0)
		return err;
	*sreg = reg;
	return 0;
#endif
}

static inline int nftp_parse_register_store(const struct nft_ctx *ctx,
					    const struct nlattr *attr,
					    u8 *dreg, u32 len)
{
#if defined(NFTP_HAVE_PARSE_REGISTER_LOAD_CTX) || \
	defined(NFTP_HAVE_PARSE_REGISTER_LOAD)
	/* The store side always took the ctx. */
	return nft_parse_register_store(ctx, attr, dreg, NULL,
					NFT_DATA_VALUE, len);
#else
	u32 reg = ntohl(nla_get_be32(attr));
	int err;

	if (reg > NFT_REG32_15)
		return -ERANGE;
	reg = nft_parse_register(attr);
	err = nft_validate_register_store(ctx, reg, NULL, NFT_DATA_VALUE, len);
	if (err < 0)
		return err;
	*dreg = reg;
	return 0;
#endif
}

/*
 * .dump gained a bool reset (6.2); .validate lost its nft_data ** (6.12).
 * An expression writes both with two parameters, and NFTP_DUMP_OP(fn) and
 * NFTP_VALIDATE_OP(fn) define fn_op, with the signature of this kernel's
 * ops, for the ops table.
 */
#ifdef NFTP_HAVE_DUMP_RESET
#define NFTP_DUMP_OP(fn)						\
static int fn##_op(struct sk_buff *skb, const struct nft_expr *expr,	\
		   bool reset)						\
{									\
	return fn(skb, expr);						\
}
#else
#define NFTP_DUMP_OP(fn)						\
static int fn##_op(struct sk_buff *skb, const struct nft_expr *expr)	\
{									\
	return fn(skb, expr);						\
}
#endif

#ifdef NFTP_HAVE_VALIDATE_DATA
#define NFTP_VALIDATE_OP(fn)						\
static int fn##_op(const struct nft_ctx *ctx, const struct nft_expr *expr, \
		   const struct nft_data **data)			\
{									\
	return fn(ctx, expr);						\
}
#else
#define NFTP_VALIDATE_OP(fn)						\
static int fn##_op(const struct nft_ctx *ctx, const struct nft_expr *expr) \
{									\
	return fn(ctx, expr);						\
}
#endif

/*
 * The socket cgroupv2 key and its level attribute (5.13) are part of the
 * ABI we provide on every kernel: their values are fixed by that ABI.
 */
#ifndef NFTP_HAVE_SOCKET_CGROUPV2
#define NFT_SOCKET_CGROUPV2	3
#define NFTA_SOCKET_LEVEL	3
#undef NFTA_SOCKET_MAX
#define NFTA_SOCKET_MAX		3
#endif

/* --- packet info -------------------------------------------------------- */

static inline unsigned int nftp_thoff(const struct nft_pktinfo *pkt)
{
#ifdef NFTP_HAVE_PKT_THOFF
	return nft_thoff(pkt);
#else
	return pkt->xt.thoff;
#endif
}

static inline u16 nftp_fragoff(const struct nft_pktinfo *pkt)
{
#ifdef NFTP_HAVE_PKT_THOFF
	return pkt->fragoff;
#else
	return pkt->xt.fragoff;
#endif
}

/* The transport protocol, or 0 where the core did not find one. */
static inline u8 nftp_l4proto(const struct nft_pktinfo *pkt)
{
#ifdef NFTP_HAVE_PKT_L4PROTO_FLAG
	return pkt->flags & NFT_PKTINFO_L4PROTO ? pkt->tprot : 0;
#else
	return pkt->tprot_set ? pkt->tprot : 0;
#endif
}

/* --- defragmentation ---------------------------------------------------- */

/*
 * Only conntrack and the in-tree tproxy/socket build nf_defrag_ipv4/ipv6:
 * nft-expr/Kbuild does not build nft_tproxy without the IPv4 one, and a
 * kernel without the IPv6 one (no IPv6, or IPv6 without conntrack) gets
 * no IPv6 tproxy rule.  Before 5.13 defrag could not be released:
 * enabling it was forever.
 */
static inline void nftp_defrag_ipv4_disable(struct net *net)
{
#ifdef NFTP_HAVE_DEFRAG_DISABLE
	nf_defrag_ipv4_disable(net);
#endif
}

#if IS_ENABLED(CONFIG_NF_DEFRAG_IPV6)
static inline int nftp_defrag_ipv6_enable(struct net *net)
{
	return nf_defrag_ipv6_enable(net);
}

static inline void nftp_defrag_ipv6_disable(struct net *net)
{
#ifdef NFTP_HAVE_DEFRAG_DISABLE
	nf_defrag_ipv6_disable(net);
#endif
}
#else
static inline int nftp_defrag_ipv6_enable(struct net *net)
{
	return -EOPNOTSUPP;
}

static inline void nftp_defrag_ipv6_disable(struct net *net)
{
}
#endif

#endif /* _NFTP_NFT_COMPAT_H */

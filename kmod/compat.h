/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kernel API drift of the socket lookups, absorbed in one place for the
 * files of nftp_core.  The expression side has its own, nft_compat.h.
 *
 * Every NFTP_HAVE_* comes from compat_gen.h, written at build time by
 * scripts/compat-probe.sh, which compiles kmod/probes/<name>.c against the
 * target headers; each probe file names the upstream change it tests for.
 * Each variant of an API gets its own small functions; logic files use
 * only the nftp_* names below, never a version check.
 */
#ifndef _NFTP_COMPAT_H
#define _NFTP_COMPAT_H

#include <linux/ipv6.h>
#include <net/inet_ecn.h>
#include <net/inet_hashtables.h>
#include <net/inet6_hashtables.h>
#include <net/route.h>
#include <net/tcp.h>
#include <net/udp.h>

#include "compat_gen.h"

/*
 * TCP.  Until 6.18 the callers pass the netns' hash table; a kernel
 * without IPv6 declares no IPv6 lookup at all, and never sees an IPv6
 * packet to look one up for.
 */
#ifdef NFTP_HAVE_INET_LOOKUP_HASHINFO
static inline struct sock *
nftp_tcp4_established(struct net *net, __be32 saddr, __be16 sport,
		      __be32 daddr, __be16 dport, int dif)
{
	return __inet_lookup_established(net, net->ipv4.tcp_death_row.hashinfo,
					 saddr, sport, daddr, ntohs(dport),
					 dif, 0);
}

static inline struct sock *
nftp_tcp4_listener(struct net *net, struct sk_buff *skb, int doff,
		   __be32 saddr, __be16 sport, __be32 daddr, __be16 dport,
		   int dif)
{
	return __inet_lookup_listener(net, net->ipv4.tcp_death_row.hashinfo,
				      skb, doff, saddr, sport, daddr,
				      ntohs(dport), dif, 0);
}
#else
static inline struct sock *
nftp_tcp4_established(struct net *net, __be32 saddr, __be16 sport,
		      __be32 daddr, __be16 dport, int dif)
{
	return __inet_lookup_established(net, saddr, sport, daddr,
					 ntohs(dport), dif, 0);
}

static inline struct sock *
nftp_tcp4_listener(struct net *net, struct sk_buff *skb, int doff,
		   __be32 saddr, __be16 sport, __be32 daddr, __be16 dport,
		   int dif)
{
	return __inet_lookup_listener(net, skb, doff, saddr, sport, daddr,
				      ntohs(dport), dif, 0);
}
#endif

#if !IS_ENABLED(CONFIG_IPV6)
static inline struct sock *
nftp_tcp6_established(struct net *net, const struct in6_addr *saddr,
		      __be16 sport, const struct in6_addr *daddr,
		      __be16 dport, int dif)
{
	return NULL;
}

static inline struct sock *
nftp_tcp6_listener(struct net *net, struct sk_buff *skb, int doff,
		   const struct in6_addr *saddr, __be16 sport,
		   const struct in6_addr *daddr, __be16 dport, int dif)
{
	return NULL;
}
#elif defined(NFTP_HAVE_INET_LOOKUP_HASHINFO)
static inline struct sock *
nftp_tcp6_established(struct net *net, const struct in6_addr *saddr,
		      __be16 sport, const struct in6_addr *daddr,
		      __be16 dport, int dif)
{
	return __inet6_lookup_established(net,
					  net->ipv4.tcp_death_row.hashinfo,
					  saddr, sport, daddr, ntohs(dport),
					  dif, 0);
}

static inline struct sock *
nftp_tcp6_listener(struct net *net, struct sk_buff *skb, int doff,
		   const struct in6_addr *saddr, __be16 sport,
		   const struct in6_addr *daddr, __be16 dport, int dif)
{
	return inet6_lookup_listener(net, net->ipv4.tcp_death_row.hashinfo,
				     skb, doff, saddr, sport, daddr,
				     ntohs(dport), dif, 0);
}
#else
static inline struct sock *
nftp_tcp6_established(struct net *net, const struct in6_addr *saddr,
		      __be16 sport, const struct in6_addr *daddr,
		      __be16 dport, int dif)
{
	return __inet6_lookup_established(net, saddr, sport, daddr,
					  ntohs(dport), dif, 0);
}

static inline struct sock *
nftp_tcp6_listener(struct net *net, struct sk_buff *skb, int doff,
		   const struct in6_addr *saddr, __be16 sport,
		   const struct in6_addr *daddr, __be16 dport, int dif)
{
	return inet6_lookup_listener(net, skb, doff, saddr, sport, daddr,
				     ntohs(dport), dif, 0);
}
#endif

/*
 * UDP.  The __udp*_lib_lookup() helpers are exported whatever the config;
 * the refcounting udp*_lib_lookup() wrappers only with in-tree
 * TPROXY/SOCKET, which is exactly what a kernel needing us may lack.  No
 * reference taken.  The table to search: a global one, then (6.2) the
 * netns' own, then (2026) none, the lookup finds it.
 */
#ifdef NFTP_HAVE_UDP_LOOKUP_TABLE
#ifdef NFTP_HAVE_UDP_TABLE_PERNET
static inline struct udp_table *nftp_udp_table(struct net *net)
{
	return net->ipv4.udp_table;
}
#else
static inline struct udp_table *nftp_udp_table(struct net *net)
{
	return &udp_table;
}
#endif
#endif

#ifdef NFTP_HAVE_UDP_LOOKUP_TABLE
static inline struct sock *
nftp_udp4_lookup_rcu(struct net *net, __be32 saddr, __be16 sport,
		     __be32 daddr, __be16 dport, int dif)
{
	return __udp4_lib_lookup(net, saddr, sport, daddr, dport, dif, 0,
				 nftp_udp_table(net), NULL);
}
#else
static inline struct sock *
nftp_udp4_lookup_rcu(struct net *net, __be32 saddr, __be16 sport,
		     __be32 daddr, __be16 dport, int dif)
{
	return __udp4_lib_lookup(net, saddr, sport, daddr, dport, dif, 0,
				 NULL);
}
#endif

#if !IS_ENABLED(CONFIG_IPV6)
static inline struct sock *
nftp_udp6_lookup_rcu(struct net *net, const struct in6_addr *saddr,
		     __be16 sport, const struct in6_addr *daddr, __be16 dport,
		     int dif)
{
	return NULL;
}
#elif defined(NFTP_HAVE_UDP_LOOKUP_TABLE)
static inline struct sock *
nftp_udp6_lookup_rcu(struct net *net, const struct in6_addr *saddr,
		     __be16 sport, const struct in6_addr *daddr, __be16 dport,
		     int dif)
{
	return __udp6_lib_lookup(net, saddr, sport, daddr, dport, dif, 0,
				 nftp_udp_table(net), NULL);
}
#else
static inline struct sock *
nftp_udp6_lookup_rcu(struct net *net, const struct in6_addr *saddr,
		     __be16 sport, const struct in6_addr *daddr, __be16 dport,
		     int dif)
{
	return __udp6_lib_lookup(net, saddr, sport, daddr, dport, dif, 0,
				 NULL);
}
#endif

/*
 * A local route given in prerouting is the flow's, not its destination's:
 * it must not become the route hint of the receive batch's later packets
 * to the same (foreign) address, or a flow meant to be forwarded would be
 * delivered locally.  The per-packet flags that keep a packet from being
 * a hint came with "ipv4/ipv6: ignore dst hint for multipath routes"
 * (6.5, in stable 6.1); 5.10 has only the IPv4 one.
 */
#ifdef IP6SKB_MULTIPATH
#define NFTP_IP6SKB_NOHINT	IP6SKB_MULTIPATH
#else
#define NFTP_IP6SKB_NOHINT	0
#endif

/*
 * IPv4 input route, 0 on success.  Its TOS argument became a dscp_t in
 * 6.13, the DSCP bits kept in place, and its result a drop reason (0: not
 * dropped); the DS field with the ECN bits cleared is the same byte for
 * either, so one call serves every kernel.
 */
static inline int nftp_route_input4(struct sk_buff *skb, __be32 daddr,
				    __be32 saddr, u8 dsfield,
				    struct net_device *dev)
{
	return ip_route_input_noref(skb, daddr, saddr,
				    dsfield & ~INET_ECN_MASK, dev) ? -EINVAL : 0;
}

#endif /* _NFTP_COMPAT_H */

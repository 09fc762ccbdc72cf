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

#include <net/inet_hashtables.h>
#include <net/inet6_hashtables.h>
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

#endif /* _NFTP_COMPAT_H */

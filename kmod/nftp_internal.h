/* SPDX-License-Identifier: GPL-2.0-only */
/* Shared between the files of nftp_core only. */
#ifndef _NFTP_INTERNAL_H
#define _NFTP_INTERNAL_H

#include <linux/netfilter.h>
#include <linux/skbuff.h>

#include "nftp_core.h"

enum nftp_lookup {
	NFTP_LOOKUP_ESTABLISHED,	/* connected: exact 4-tuple */
	NFTP_LOOKUP_LISTENER,		/* TCP listener, unconnected UDP */
	NFTP_LOOKUP_ANY,		/* established, else listener */
};

/* What a lookup needs to know of a packet, for either family. */
struct nftp_flow {
	u8			family;		/* NFPROTO_IPV4 or NFPROTO_IPV6 */
	u8			l4proto;
	bool			pure_syn;	/* TCP SYN without ACK/RST/FIN */
	__be16			sport;
	__be16			dport;
	union nf_inet_addr	saddr;
	union nf_inet_addr	daddr;
};

bool nftp_flow_from_skb(const struct sk_buff *skb, unsigned int thoff,
			struct nftp_flow *f);

/*
 * A TCP or UDP socket for @f's source and @daddr:@dport, referenced, or
 * NULL; a TCP established lookup may find a TIME_WAIT or request socket.
 * @skb may be NULL when the tuple does not come from its own headers.
 * Under rcu_read_lock, as netfilter hooks are.
 */
struct sock *nftp_flow_lookup(struct net *net, struct sk_buff *skb,
			      unsigned int thoff, const struct nftp_flow *f,
			      const union nf_inet_addr *daddr, __be16 dport,
			      const struct net_device *in,
			      enum nftp_lookup type);

#endif /* _NFTP_INTERNAL_H */

/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */
/*
 * nft-tproxy's extensions to the netlink ABI of the nf_tables "tproxy" and
 * "socket" expressions.  Everything else of that ABI is upstream's
 * (<linux/netfilter/nf_tables.h>), unchanged.
 *
 * Numbering.  Upstream gives a new attribute or key the next number up
 * (enum nft_tproxy_attributes ends at 3, enum nft_socket_keys at 3 in
 * 2026).  Ours count down from the top of the range the kernel can carry,
 * so that the two meet only after a dozen more upstream tproxy attributes
 * or some 250 socket keys:
 *
 * - nf_tables parses an expression's attributes into an array of
 *   NFT_EXPR_MAXATTR + 1 (16 + 1) entries, and nft_register_expr() refuses
 *   a larger maxattr: 16 is the highest attribute an expression can have.
 * - The in-tree nft_socket keeps the key in 8 bits (struct nft_socket,
 *   key:8) and switches on that: a key of 256 or more would be truncated
 *   there and silently taken as key & 0xff (256 as "transparent").  So our
 *   keys stay below 256, from 255 down.
 *
 * What a kernel running the in-tree modules does with them:
 * - NFTA_TPROXY_NFTP_FLAGS is above its NFTA_TPROXY_MAX, so it is IGNORED
 *   (nested attributes are parsed leniently): a fail-closed rule would load
 *   as a fail-open one.  Userspace must check that the attribute comes back
 *   in the rule's dump before it relies on it (nft-tproxy's patched nft
 *   probes for it and refuses otherwise).
 * - NFT_SOCKET_NFTP_UID/GID are refused with EOPNOTSUPP.
 */
#ifndef _UAPI_LINUX_NETFILTER_NFTP_H
#define _UAPI_LINUX_NETFILTER_NFTP_H

/* tproxy: NLA_U32 (NFTP_TPROXY_F_*), dumped only when not 0 */
#define NFTA_TPROXY_NFTP_FLAGS		16

/*
 * Fail closed: a TCP or UDP packet of the rule's family for which no
 * transparent socket is found is dropped (NF_DROP), as iptables TPROXY
 * drops it, instead of going on to the next rule.  Other packets (another
 * family, another protocol) are not the rule's and go on as before.
 */
#define NFTP_TPROXY_F_FAIL_CLOSED	(1U << 0)

/*
 * Local route: a packet given a socket is also given the local input
 * route of the input device's own address, so that the stack delivers it
 * with no fwmark, "ip rule" or "local" route table.  A packet for which
 * no such route exists (a device without an address of the family) is
 * dropped: it has a socket, it must not be forwarded.
 */
#define NFTP_TPROXY_F_LOCAL_ROUTE	(1U << 1)

#define NFTP_TPROXY_F_ALL		(NFTP_TPROXY_F_FAIL_CLOSED | \
					 NFTP_TPROXY_F_LOCAL_ROUTE)

/*
 * socket keys (NFTA_SOCKET_KEY), u32 in the register: the fsuid/fsgid of
 * the file of the full socket the packet belongs to, as nft_meta's
 * skuid/skgid read it, in the socket's network namespace's user namespace.
 * No match for request and TIME_WAIT sockets, nor for a socket without a
 * file (a connection not yet accepted, a socket being closed).
 */
#define NFT_SOCKET_NFTP_UID		255
#define NFT_SOCKET_NFTP_GID		254

#endif /* _UAPI_LINUX_NETFILTER_NFTP_H */

// SPDX-License-Identifier: GPL-2.0-only
/*
 * nftp_core: the socket lookups (lookup.c) that the transparent redirect
 * (redirect.c) and the socket match (sk_match.c) stand on, for our tproxy
 * and socket expressions.  Its own module, so that iptables TPROXY and
 * -m socket (nf_tproxy_ipv*, nf_socket_ipv*) can be loaded beside it.
 */
#include <linux/module.h>

#include "nftp_version.h"

MODULE_LICENSE("GPL");
MODULE_AUTHOR("nft-tproxy developers");
MODULE_VERSION(NFTP_VERSION);
MODULE_DESCRIPTION("Socket lookup and transparent redirect core for nft-tproxy");

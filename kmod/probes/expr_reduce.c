// SPDX-License-Identifier: GPL-2.0-only
/* 5.17: "netfilter: nf_tables: add register tracking infrastructure"
 * (12e4ecfa244b): .reduce exists and read-only expressions say so with
 * NFT_REDUCE_READONLY.  Gone again with "netfilter: nf_tables: remove
 * register tracking infrastructure" (net-next 6b94d081f81d, 2026), which
 * stable took into 6.12.101: present in 6.1.192 headers, absent in
 * 6.12.117 and 7.3.4.
 */
#include <net/netfilter/nf_tables.h>

static const struct nft_expr_ops probe_ops __used = {
	.reduce = NFT_REDUCE_READONLY,
};

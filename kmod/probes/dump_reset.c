// SPDX-License-Identifier: GPL-2.0-only
/* 6.2: "nf_tables: Extend nft_expr_ops::dump
 * callback parameters": .dump takes a bool reset.
 */
#include <net/netfilter/nf_tables.h>

static int probe_dump(struct sk_buff *skb, const struct nft_expr *expr,
		      bool reset)
{
	return 0;
}

const struct nft_expr_ops probe_ops = { .dump = probe_dump };

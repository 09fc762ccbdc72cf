// SPDX-License-Identifier: GPL-2.0-only
/* 6.2: "netfilter: nf_tables: Extend nft_expr_ops::dump callback
 * parameters" (7d34aa3e03b6): .dump takes a bool reset.  Backported to
 * 6.1.191 (Debian's 6.1.0-56 has it).
 */
#include <net/netfilter/nf_tables.h>

static int probe_dump(struct sk_buff *skb, const struct nft_expr *expr,
		      bool reset)
{
	return 0;
}

static const struct nft_expr_ops probe_ops __used = { .dump = probe_dump };

// SPDX-License-Identifier: GPL-2.0-only
/* Before 6.12: "netfilter: nf_tables: drop unused
 * 3rd argument from validate callback ops": .validate takes nft_data **.
 */
#include <net/netfilter/nf_tables.h>

static int probe_validate(const struct nft_ctx *ctx, const struct nft_expr *expr,
			  const struct nft_data **data)
{
	return 0;
}

const struct nft_expr_ops probe_ops = { .validate = probe_validate };

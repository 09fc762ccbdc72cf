// SPDX-License-Identifier: GPL-2.0-only
/* Before 6.12: "netfilter: nf_tables: drop unused 3rd argument from
 * validate callback ops" (net-next, Sep 2024), backported to 6.1.184:
 * .validate takes nft_data **.
 */
#include <net/netfilter/nf_tables.h>

static int probe_validate(const struct nft_ctx *ctx,
			  const struct nft_expr *expr,
			  const struct nft_data **data)
{
	return 0;
}

static const struct nft_expr_ops probe_ops __used = {
	.validate = probe_validate,
};

// SPDX-License-Identifier: GPL-2.0-only
/* 6.12: "netfilter: nf_tables: pass context structure to
 * nft_parse_register_load" (7ea0522ef81a, nf-next-24-08-23), backported
 * to 6.1.184 and 6.6.y: the register parsers take the nft_ctx.
 */
#include <net/netfilter/nf_tables.h>

static __used int probe(const struct nft_ctx *ctx, const struct nlattr *attr,
			u8 *reg)
{
	return nft_parse_register_load(ctx, attr, reg, 4);
}

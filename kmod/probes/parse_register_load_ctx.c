// SPDX-License-Identifier: GPL-2.0-only
/* 6.12: the register parsers take the nft_ctx. */
#include <net/netfilter/nf_tables.h>

int probe(const struct nft_ctx *ctx, const struct nlattr *attr, u8 *reg)
{
	return nft_parse_register_load(ctx, attr, reg, 4);
}

// SPDX-License-Identifier: GPL-2.0-only
/* 5.12: "netfilter: nftables: add nft_parse_register_load() and use it"
 * (and its _store() twin), taken into stable 5.10.127:
 * nft_parse_register_load(attr, &reg, len).
 */
#include <net/netfilter/nf_tables.h>

static __used int probe(const struct nlattr *attr, u8 *reg)
{
	return nft_parse_register_load(attr, reg, 4);
}

// SPDX-License-Identifier: GPL-2.0-only
/* 5.12: "validate registers coming from userspace",
 * backported to 5.10.y stable: nft_parse_register_load(attr, &reg, len).
 */
#include <net/netfilter/nf_tables.h>

int probe(const struct nlattr *attr, u8 *reg)
{
	return nft_parse_register_load(attr, reg, 4);
}

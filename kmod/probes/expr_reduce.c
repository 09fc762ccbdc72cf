// SPDX-License-Identifier: GPL-2.0-only
/* 5.17: register tracking: .reduce exists and
 * read-only expressions say so with NFT_REDUCE_READONLY.
 */
#include <net/netfilter/nf_tables.h>

const struct nft_expr_ops probe_ops = { .reduce = NFT_REDUCE_READONLY };

// SPDX-License-Identifier: GPL-2.0
/*
 * nfnl-fuzz: a netlink fuzzer for the nf_tables "tproxy" and "socket"
 * expressions.
 *
 * Each case builds nf_tables batches (table, base and regular chains,
 * rules, jumps, replace by handle, delete by handle or by rule id, delete
 * table) around one or two rules holding a tproxy or socket expression
 * whose attributes are random and mutated: missing, duplicated, oversized,
 * short, truncated, wrong byte order, flag bits, unknown extension types,
 * out-of-range registers, garbage families, keys and levels.  Register
 * loads may or may not be fed by immediate/meta/payload stores earlier in
 * the rule.
 *
 * A model of the kernel (upstream's rules, net/netfilter/nft_tproxy.c and
 * nft_socket.c, and the netlink attribute parser) says for every batch
 * whether it must be accepted, must be rejected, or may be either, and
 * what the rules must dump back as.  Every message must get exactly one answer; after every
 * batch the table is dumped (NFT_MSG_GETTABLE + GETRULE) and compared with
 * the model: an accepted batch must have made exactly the modelled rules
 * (tproxy/socket attributes included), a rejected one must have changed
 * nothing.
 *
 * Deterministic: case N of seed S is the same on every run (each case has
 * its own random stream), whatever the kernel answers.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nftp.h>

#include "nfnl.h"

#define TABLE_NAME	"nfnl-fuzz"
#define NREG32		20	/* NFT_REG32_NUM: 32-bit slots of struct nft_regs */
#define MAX_ERRNO	160
#define MAX_EXPR_ATTR	NFTA_TPROXY_NFTP_FLAGS	/* the highest type we model */
#define NLA_TYPE_MASK_	0x3fff	/* ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) */
#define NLA_F_BYTEORDER	0x4000

/* ------------------------------------------------------------------ rng */

struct rng {
	uint64_t s;
};

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint32_t rnd32(struct rng *r)
{
	return splitmix64(&r->s) >> 32;
}

/* uniform in [0, n) */
static uint32_t below(struct rng *r, uint32_t n)
{
	return n ? (uint32_t)(((uint64_t)rnd32(r) * n) >> 32) : 0;
}

static bool chance(struct rng *r, unsigned int percent)
{
	return below(r, 100) < percent;
}

#define PICK(r, arr)	((arr)[below((r), ARRAY_SIZE(arr))])

/* ------------------------------------------------------------------ options */

enum tkind { TK_NONE, TK_TPROXY, TK_SOCKET, TK_NUM };

static const char *const tk_name[TK_NUM] = { "none", "tproxy", "socket" };

struct opts {
	uint64_t seed;
	uint64_t cases;
	uint64_t start;
	unsigned int exprs;		/* bit per enum tkind */
	const char *log_path;
	bool in_tree;			/* model upstream's u8 truncation */
	bool no_cgroupv2;		/* the cgroupv2 key is refused */
	bool no_socket_output;		/* in-tree before 5.18: socket not in output */
	bool no_local_route6;		/* ours before 6.1: local-route IPv4 only */
	int reg_init_check;		/* -1 probe, 0 no, 1 yes */
	int cgroupns_depth;		/* -1: stay in the caller's cgroupns */
	unsigned int cgroup_level;	/* level of our cgroupns root */
	bool allow_init_netns;
	bool verbose;
	unsigned int show;		/* failures printed in full */
	unsigned int progress;		/* seconds between progress lines */
};

/* ------------------------------------------------------------------ families */

struct hookdef {
	const char *name;
	uint32_t num;
	bool dev;			/* needs NFTA_HOOK_DEV */
};

struct famdef {
	const char *name;
	uint8_t nfproto;
	unsigned int weight;
	bool supported;			/* nf_tables has tables of it (probed) */
	const struct hookdef *hooks;
	unsigned int nhooks;
};

static const struct hookdef inet_hooks[] = {
	{ "prerouting", NF_INET_PRE_ROUTING, false },
	{ "input", NF_INET_LOCAL_IN, false },
	{ "forward", NF_INET_FORWARD, false },
	{ "output", NF_INET_LOCAL_OUT, false },
	{ "postrouting", NF_INET_POST_ROUTING, false },
	{ "ingress", 5 /* NF_INET_INGRESS */, true },
};

/* bridge uses the same numbers for these five (NF_BR_*) */
static const struct hookdef ip_hooks[] = {
	{ "prerouting", 0, false }, { "input", 1, false }, { "forward", 2, false },
	{ "output", 3, false }, { "postrouting", 4, false },
};

static const struct hookdef netdev_hooks[] = { { "ingress", 0, true } };
static const struct hookdef arp_hooks[] = { { "input", 0, false }, { "output", 1, false } };

static struct famdef families[] = {
	{ "inet", NFPROTO_INET, 28, true, inet_hooks, ARRAY_SIZE(inet_hooks) },
	{ "ip", NFPROTO_IPV4, 22, true, ip_hooks, ARRAY_SIZE(ip_hooks) },
	{ "ip6", NFPROTO_IPV6, 22, true, ip_hooks, ARRAY_SIZE(ip_hooks) },
	{ "bridge", NFPROTO_BRIDGE, 6, true, ip_hooks, ARRAY_SIZE(ip_hooks) },
	{ "netdev", NFPROTO_NETDEV, 6, true, netdev_hooks, ARRAY_SIZE(netdev_hooks) },
	{ "arp", NFPROTO_ARP, 6, true, arp_hooks, ARRAY_SIZE(arp_hooks) },
	/* no tables of these: garbage */
	{ "f0", 0, 2, false, NULL, 0 },
	{ "f4", 4, 1, false, NULL, 0 },
	{ "f6", 6, 1, false, NULL, 0 },
	{ "f11", 11, 1, false, NULL, 0 },
	{ "f12", 12, 1, false, NULL, 0 },
	{ "f13", 13, 1, false, NULL, 0 },
	{ "f99", 99, 1, false, NULL, 0 },
	{ "f255", 255, 1, false, NULL, 0 },
};

static bool ip_family(uint8_t f)
{
	return f == NFPROTO_IPV4 || f == NFPROTO_IPV6 || f == NFPROTO_INET;
}

/* ------------------------------------------------------------------ registers */

/* netlink register number -> 32-bit slot (nft_parse_register), -1: ERANGE */
static int reg_slot(uint32_t reg)
{
	if (reg <= NFT_REG_4)
		return reg * 4;
	if (reg >= NFT_REG32_00 && reg <= NFT_REG32_15)
		return reg - NFT_REG32_00 + 4;
	return -1;
}

/* errno of a load or store of len bytes at reg (nft_validate_register_*) */
static int reg_check(uint32_t reg, unsigned int len)
{
	int slot = reg_slot(reg);

	if (slot < 0)
		return ERANGE;
	if (slot < 4)		/* the verdict register */
		return EINVAL;
	if (len == 0)
		return EINVAL;
	if (slot * 4 + len > NREG32 * 4)
		return ERANGE;
	return 0;
}

/*
 * What nft_dump_register() reports: slots that are a multiple of four go
 * back as the 128-bit register numbers (NFT_REG32_00 -> NFT_REG_1,
 * NFT_REG32_04 -> NFT_REG_2, ...), others as NFT_REG32_xx.
 */
static uint32_t reg_dumped(uint32_t reg)
{
	int slot = reg_slot(reg);

	return slot % 4 == 0 ? (uint32_t)slot / 4 : (uint32_t)slot - 4 + NFT_REG32_00;
}

static uint32_t slot_mask(int slot, unsigned int len)
{
	unsigned int n = (len + 3) / 4;

	return ((n >= 32 ? ~0U : (1U << n) - 1)) << slot;
}

/* ------------------------------------------------------------------ rules */

enum pfx_kind { PFX_IMM, PFX_META, PFX_PAYLOAD, PFX_NUM };

static const char *const pfx_name[PFX_NUM] = { "immediate", "meta", "payload" };

struct pfx {
	enum pfx_kind kind;
	uint32_t reg;
	uint8_t len;
	uint32_t meta_key;
};

/* one expression as it must dump, or as it dumped */
struct dexpr {
	char name[16];
	uint32_t present;		/* bit per attribute type */
	uint32_t val[MAX_EXPR_ATTR + 1];
	bool odd;			/* duplicate, unknown or bad-length attribute */
};

#define MAX_PFX		3
#define MAX_DATA	320

struct rulespec {
	int npfx;
	struct pfx pfx[MAX_PFX];
	enum tkind tk;			/* TK_NONE: a jump rule */
	bool nodata;			/* NFTA_EXPR_DATA left out */
	int dlen;
	uint8_t data[MAX_DATA];		/* the NFTA_EXPR_DATA payload */
	int verdict;			/* jump rules: NFT_JUMP or NFT_GOTO */
	int jump_to;			/* jump rules: chain index */
	/* the model, for the case's table family */
	int init_err;			/* errno of the expression's init, 0 */
	uint32_t hooks;			/* hooks its .validate allows */
	bool quirk;			/* valid only by upstream u8 truncation */
	struct dexpr want;		/* the target as it must dump */
	char desc[512];
};

/* ------------------------------------------------------------------ cases */

enum { CH_B, CH_M, CH_R, NCHAINS };

static const char *const chain_name[NCHAINS] = { "b", "m", "r" };

enum opk {
	O_TABLE, O_BASE, O_CHAIN, O_RULE, O_REPLACE, O_DELRULE, O_DELRULE_ID,
	O_DELTABLE,
};

struct op {
	enum opk k;
	int ch;
	const struct rulespec *rs;
	int ref;			/* committed rule index; -1: bogus handle */
	uint32_t rule_id;
};

#define MAX_OPS		10
#define MAX_PHASES	2
#define MAX_RULES	4
#define MAX_CRULES	8

struct phase {
	int nops;
	struct op ops[MAX_OPS];
};

enum scenario {
	S_BASE, S_JUMP, S_LATEJUMP, S_REPLACE, S_DELETE, S_INBATCH, S_REGULAR,
	S_NUM,
};

static const char *const scen_name[S_NUM] = {
	"base", "jump", "latejump", "replace", "delete", "inbatch", "regular",
};

struct casespec {
	uint64_t id;
	enum tkind tk;
	const struct famdef *fam;
	struct hookdef hook;		/* of chain b */
	bool hook_ok;
	enum scenario scen;
	int nphases;
	struct phase ph[MAX_PHASES];
	int nrules;
	struct rulespec rules[MAX_RULES];
	char desc[160];
};

/* the model of what is committed */
struct mrule {
	const struct rulespec *rs;
	uint64_t handle;		/* learnt from the last dump */
	uint32_t rule_id;		/* added in the current batch */
};

struct mchain {
	bool exists;
	bool base;
	int n;
	struct mrule rules[MAX_CRULES];
};

struct mstate {
	bool table;
	struct mchain ch[NCHAINS];
};

enum verdict { V_ACCEPT, V_REJECT, V_EITHER };

/* ------------------------------------------------------------------ dumps */

#define MAX_DRULES	16
#define MAX_DEXPRS	8

struct drule {
	char chain[32];
	uint64_t handle;
	int nexpr;
	struct dexpr e[MAX_DEXPRS];
	bool odd;
};

struct dump {
	int n;
	struct drule r[MAX_DRULES];
	bool overflow;
	bool intr;			/* NLM_F_DUMP_INTR */
	int err;			/* the dump's own error */
	bool table;			/* GETTABLE found it */
	int table_err;
};

/* ------------------------------------------------------------------ stats */

enum fail_kind {
	F_UNEXP_ACCEPT, F_UNEXP_REJECT, F_MISMATCH, F_STATE, F_PROTO, F_CLEANUP,
	F_NUM,
};

static const char *const fail_name[F_NUM] = {
	"unexpected acceptance", "unexpected rejection",
	"silently wrong rule (dump mismatch)", "state changed by a rejected batch",
	"no clean outcome (netlink protocol)", "cleanup failed",
};

struct stats {
	uint64_t cases;
	uint64_t batches[TK_NUM];
	uint64_t by_errno[TK_NUM][MAX_ERRNO + 1];	/* [0]: accepted */
	uint64_t other_errno[TK_NUM];
	uint64_t expected_reject[TK_NUM];
	uint64_t expected_either[TK_NUM];
	uint64_t fails[F_NUM];
	uint64_t transient;
	uint64_t quirks;
	uint64_t errno_model_diff;
	uint64_t failed_cases;
	/* exchanges: batch accepted, batch rejected, queries only */
	uint64_t xn[3];
	double xt[3];
};

/* ------------------------------------------------------------------ netlink */

struct outcome {
	int err;			/* 0 accepted, else errno */
	char where[32];
	bool proto;
	char why[160];
};

struct fz {
	struct opts o;
	struct nfnl nl;
	struct stats st;
	FILE *log;
	bool reg_init;			/* the kernel refuses uninitialised loads */
	uint8_t pfam;			/* the probes' table family */
	uint32_t pmax[TK_NUM];		/* attributes with a policy maximum */
	uint32_t pmaxv[TK_NUM][4];	/* that maximum: 255, or NFT_REG32_MAX */
	bool have[TK_NUM];
	unsigned int shown;
	/* current case, for reports */
	const struct casespec *cs;
	bool case_failed;
	char obuf[256];			/* outcome text for the log */
	size_t olen;
};

static bool transient_errno(int err)
{
	return err == ENOMEM || err == EBUSY || err == EAGAIN ||
	       err == ENOBUFS || err == EINTR || err == ERESTART;
}

/* append to a fixed buffer, never overflowing */
static void sappend(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void sappend(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strnlen(buf, size);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ batch building */

static void put_ftable(struct fz *fz, bool del)
{
	put_table(&fz->nl, TABLE_NAME, del);
}

static void put_fchain(struct fz *fz, int ch, const struct hookdef *hook)
{
	struct nfnl_hook h = { .num = hook ? hook->num : 0,
			       .dev = hook && hook->dev ? "lo" : NULL };

	put_chain(&fz->nl, TABLE_NAME, chain_name[ch], hook ? &h : NULL);
}

static void put_pfx(struct nlmsghdr *nlh, const struct pfx *p)
{
	uint8_t value[16];

	switch (p->kind) {
	case PFX_IMM:
		memset(value, 0x5a, sizeof(value));
		expr_imm(nlh, p->reg, value, p->len);
		break;
	case PFX_META:
		expr_meta_load(nlh, p->meta_key, p->reg);
		break;
	case PFX_PAYLOAD:
		expr_payload(nlh, p->reg, NFT_PAYLOAD_NETWORK_HEADER, 0, p->len);
		break;
	case PFX_NUM:
		break;
	}
}

static void put_target(struct nlmsghdr *nlh, const struct rulespec *rs)
{
	struct nlattr *elem = expr_start(nlh, tk_name[rs->tk]);

	/* raw bytes: the mutations live in there */
	if (!rs->nodata)
		mnl_attr_put(nlh, NFTA_EXPR_DATA | NLA_F_NESTED, rs->dlen, rs->data);
	mnl_attr_nest_end(nlh, elem);
}

/* NEWRULE; replace != 0: NLM_F_REPLACE of that handle */
static void put_rule(struct fz *fz, int ch, const struct rulespec *rs,
		     uint64_t replace, uint32_t rule_id)
{
	struct nlmsghdr *nlh;
	struct nlattr *list;
	char label[24];
	int i;

	snprintf(label, sizeof(label), "%s(%s)", replace ? "REPLACE" : "NEWRULE",
		 chain_name[ch]);
	nlh = batch_msg(&fz->nl, NFT_MSG_NEWRULE,
			replace ? NLM_F_REPLACE : NLM_F_CREATE | NLM_F_APPEND, label);
	mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, TABLE_NAME);
	mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, chain_name[ch]);
	if (replace)
		mnl_attr_put_u64(nlh, NFTA_RULE_HANDLE, htobe64(replace));
	if (rule_id)
		put_be32(nlh, NFTA_RULE_ID, rule_id);
	list = mnl_attr_nest_start(nlh, NFTA_RULE_EXPRESSIONS);
	for (i = 0; i < rs->npfx; i++)
		put_pfx(nlh, &rs->pfx[i]);
	if (rs->tk == TK_NONE)
		expr_verdict(nlh, rs->verdict, chain_name[rs->jump_to]);
	else
		put_target(nlh, rs);
	mnl_attr_nest_end(nlh, list);
	batch_msg_done(&fz->nl);
}

static void put_delrule(struct fz *fz, int ch, uint64_t handle, uint32_t rule_id)
{
	struct nlmsghdr *nlh;
	char label[24];

	snprintf(label, sizeof(label), "DELRULE(%s)", chain_name[ch]);
	nlh = batch_msg(&fz->nl, NFT_MSG_DELRULE, 0, label);
	mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, TABLE_NAME);
	mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, chain_name[ch]);
	if (handle)
		mnl_attr_put_u64(nlh, NFTA_RULE_HANDLE, htobe64(handle));
	else
		put_be32(nlh, NFTA_RULE_ID, rule_id);
	batch_msg_done(&fz->nl);
}

/* ------------------------------------------------------------------ netlink I/O */

/* GETTABLE (acked) and GETRULE dump of our table; returns their seqs */
static void send_queries(struct fz *fz, uint8_t family, uint32_t *tseq, uint32_t *dseq)
{
	char buf[512];
	struct nlmsghdr *nlh;

	nlh = nl_request(&fz->nl, buf, NFT_MSG_GETTABLE, NLM_F_REQUEST | NLM_F_ACK, family);
	*tseq = nlh->nlmsg_seq;
	mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, TABLE_NAME);
	nl_send(&fz->nl, buf, nlh->nlmsg_len);

	nlh = nl_request(&fz->nl, buf, NFT_MSG_GETRULE, NLM_F_REQUEST | NLM_F_DUMP, family);
	*dseq = nlh->nlmsg_seq;
	mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, TABLE_NAME);
	nl_send(&fz->nl, buf, nlh->nlmsg_len);
}

/* one attribute of a dumped tproxy/socket expression */
static void parse_dexpr_data(const struct nlattr *data, struct dexpr *e)
{
	const struct nlattr *a;

	mnl_attr_for_each_nested(a, data) {
		uint16_t type = mnl_attr_get_type(a);

		if (type == 0 || type > MAX_EXPR_ATTR ||
		    mnl_attr_get_payload_len(a) != 4 || (e->present & (1U << type))) {
			e->odd = true;
			continue;
		}
		e->present |= 1U << type;
		e->val[type] = ntohl(mnl_attr_get_u32(a));
	}
}

static void parse_dexpr(const struct nlattr *elem, struct dexpr *e)
{
	const struct nlattr *a, *data = NULL;

	memset(e, 0, sizeof(*e));
	mnl_attr_for_each_nested(a, elem) {
		switch (mnl_attr_get_type(a)) {
		case NFTA_EXPR_NAME:
			if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0) {
				e->odd = true;
				break;
			}
			snprintf(e->name, sizeof(e->name), "%s", mnl_attr_get_str(a));
			break;
		case NFTA_EXPR_DATA:
			data = a;
			break;
		}
	}
	if (data && (!strcmp(e->name, "tproxy") || !strcmp(e->name, "socket")))
		parse_dexpr_data(data, e);
}

static void parse_drule(const struct nlmsghdr *nlh, struct dump *d)
{
	const struct nlattr *a, *elem;
	struct drule *r;

	if (d->n >= MAX_DRULES) {
		d->overflow = true;
		return;
	}
	r = &d->r[d->n++];
	memset(r, 0, sizeof(*r));
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		switch (mnl_attr_get_type(a)) {
		case NFTA_RULE_CHAIN:
			if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
				snprintf(r->chain, sizeof(r->chain), "%s",
					 mnl_attr_get_str(a));
			break;
		case NFTA_RULE_HANDLE:
			if (mnl_attr_validate(a, MNL_TYPE_U64) == 0)
				r->handle = be64toh(mnl_attr_get_u64(a));
			break;
		case NFTA_RULE_EXPRESSIONS:
			mnl_attr_for_each_nested(elem, a) {
				if (r->nexpr >= MAX_DEXPRS) {
					r->odd = true;
					break;
				}
				parse_dexpr(elem, &r->e[r->nexpr++]);
			}
			break;
		}
	}
}

static void proto_err(struct outcome *oc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void proto_err(struct outcome *oc, const char *fmt, ...)
{
	va_list ap;

	if (oc->proto)
		return;
	oc->proto = true;
	va_start(ap, fmt);
	vsnprintf(oc->why, sizeof(oc->why), fmt, ap);
	va_end(ap);
}

/*
 * Send the batch (b may be NULL: queries only), then GETTABLE and the rule
 * dump; read until the dump ends.  Fills oc (the batch's outcome) and d.
 */
static double now(void);
static void exchange_once(struct fz *fz, struct batch *b, uint8_t family,
			  struct outcome *oc, struct dump *d);

static void exchange(struct fz *fz, struct batch *b, uint8_t family,
		     struct outcome *oc, struct dump *d)
{
	double t = now();
	int k;

	exchange_once(fz, b, family, oc, d);
	k = !b ? 2 : oc->err ? 1 : 0;
	fz->st.xn[k]++;
	fz->st.xt[k] += now() - t;
}

static void exchange_once(struct fz *fz, struct batch *b, uint8_t family,
			  struct outcome *oc, struct dump *d)
{
	uint32_t tseq, dseq;
	bool tdone = false, ddone = false;
	int i;

	memset(oc, 0, sizeof(*oc));
	memset(d, 0, sizeof(*d));
	if (b)
		nl_send(&fz->nl, mnl_nlmsg_batch_head(b->mb), mnl_nlmsg_batch_size(b->mb));
	send_queries(fz, family, &tseq, &dseq);

	while (!ddone) {
		ssize_t n = mnl_socket_recvfrom(fz->nl.sock, fz->nl.rbuf, fz->nl.rbuf_len);
		const struct nlmsghdr *nlh;
		const char *why;
		int len;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			proto_err(oc, "recv: %s", strerror(errno));
			if (errno == ENOBUFS)
				continue;
			return;		/* timeout: the kernel never answered */
		}
		len = (int)n;
		for (nlh = (const struct nlmsghdr *)fz->nl.rbuf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_pid != fz->nl.portid && nlh->nlmsg_pid != 0)
				continue;
			if (nlh->nlmsg_seq == tseq) {
				if (nlh->nlmsg_type == NLMSG_ERROR) {
					d->table_err = -nlmsg_errno(nlh);
					tdone = true;
				} else if ((nlh->nlmsg_type & 0xff) == NFT_MSG_NEWTABLE) {
					d->table = true;
				}
				continue;
			}
			if (nlh->nlmsg_seq == dseq) {
				if (!tdone)
					proto_err(oc, "dump answered before GETTABLE");
				if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
					d->intr = true;
				if (nlh->nlmsg_type == NLMSG_DONE) {
					ddone = true;
				} else if (nlh->nlmsg_type == NLMSG_ERROR) {
					d->err = -nlmsg_errno(nlh);
					ddone = true;
				} else if ((nlh->nlmsg_type & 0xff) == NFT_MSG_NEWRULE) {
					parse_drule(nlh, d);
				}
				continue;
			}
			if (b && nlh->nlmsg_seq >= b->begin_seq &&
			    nlh->nlmsg_seq <= b->seq[b->n ? b->n - 1 : 0]) {
				if (tdone)
					proto_err(oc, "batch answer after the queries");
				why = batch_answer(b, nlh);
				if (why)
					proto_err(oc, "%s", why);
				continue;
			}
			proto_err(oc, "stray message seq %u type %#x",
				  nlh->nlmsg_seq, nlh->nlmsg_type);
		}
	}
	if (d->table_err == 0 && !d->table)
		proto_err(oc, "GETTABLE: neither table nor error");
	if (d->table_err && d->table_err != ENOENT)
		proto_err(oc, "GETTABLE: %s", errname(d->table_err));
	if (d->err)
		proto_err(oc, "rule dump: %s", errname(d->err));
	if (d->overflow)
		proto_err(oc, "rule dump: more rules than ever added");
	if (!b)
		return;

	oc->err = 0;
	for (i = 0; i < b->n; i++) {
		if (b->ack[i] == 1) {
			proto_err(oc, "%s: no answer", b->label[i]);
			continue;
		}
		if (b->ack[i] && !oc->err) {
			oc->err = -b->ack[i];
			snprintf(oc->where, sizeof(oc->where), "%s", b->label[i]);
		}
	}
	if (!oc->err && b->commit_err) {
		oc->err = -b->commit_err;
		snprintf(oc->where, sizeof(oc->where), "COMMIT");
	}
	/* a transient error may cut the answers short: not a protocol bug */
	if (oc->proto && oc->err && transient_errno(oc->err))
		oc->proto = false;
}

/* ------------------------------------------------------------------ generation */

static uint32_t gen_reg(struct rng *r)
{
	static const uint32_t odd[] = {
		0x100, 0x101, 0x108, 0x10000, 0x7fffffff, 0x80000001, 0xfffffffe,
		0xffffffff,
	};
	unsigned int p = below(r, 100);

	if (p < 36)
		return NFT_REG_1 + below(r, 4);
	if (p < 78)
		return NFT_REG32_00 + below(r, 16);
	if (p < 83)
		return NFT_REG_VERDICT;
	if (p < 87)
		return 5 + below(r, 3);		/* between NFT_REG_4 and REG32_00 */
	if (p < 93)
		return NFT_REG32_15 + 1 + below(r, 8);
	if (p < 98)
		return PICK(r, odd);
	return rnd32(r);
}

static uint32_t gen_tproxy_family(struct rng *r, uint8_t tf)
{
	static const uint32_t other[] = { 0, 2, 10, 1, 3, 5, 7, 12 };
	static const uint32_t garbage[] = {
		0x100, 0x102, 0x10a, 0x200, 0x80000002, 0xffffff0a, 0xffffffff,
	};
	unsigned int p = below(r, 100);

	if (p < 75) {
		if (tf == NFPROTO_IPV4 || tf == NFPROTO_IPV6)
			return tf;
		return PICK(r, other) % 3 == 0 ? 0 : (chance(r, 50) ? 2 : 10);
	}
	if (p < 87)
		return PICK(r, other);
	if (p < 98)
		return PICK(r, garbage);
	return rnd32(r);
}

static uint32_t gen_socket_key(struct rng *r)
{
	static const uint32_t garbage[] = {
		4, 5, 255, 0x100, 0x101, 0x103, 0x80000000, 0xffffffff,
	};
	static const uint32_t ours[] = { NFT_SOCKET_NFTP_UID, NFT_SOCKET_NFTP_GID };
	unsigned int p = below(r, 100);

	if (p < 70)
		return below(r, 4);
	if (p < 82)
		return PICK(r, ours);
	if (p < 96)
		return PICK(r, garbage);
	return rnd32(r);
}

/* NFTA_TPROXY_NFTP_FLAGS: mostly valid, now and then unknown bits */
static uint32_t gen_tproxy_flags(struct rng *r)
{
	static const uint32_t odd[] = {
		4, 7, 0x80000000, 0x80000003, 0xffffffff, 0x100,
	};
	unsigned int p = below(r, 100);

	if (p < 85)
		return below(r, NFTP_TPROXY_F_ALL + 1);
	if (p < 97)
		return PICK(r, odd);
	return rnd32(r);
}

static uint32_t gen_level(struct rng *r)
{
	static const uint32_t edge[] = {
		254, 255, 256, 257, 0x1ff, 0x10000, 0x80000000, 0xffffffff,
	};
	unsigned int p = below(r, 100);

	if (p < 55)
		return below(r, 8);
	if (p < 75)
		return below(r, 256);
	if (p < 97)
		return PICK(r, edge);
	return rnd32(r);
}

/* a store that fills len bytes at reg, if reg can take it */
static void add_store(struct rng *r, struct rulespec *rs, uint32_t reg, unsigned int len)
{
	struct pfx *p;

	if (rs->npfx >= MAX_PFX || len == 0 || len > 16 || reg_check(reg, len))
		return;
	p = &rs->pfx[rs->npfx++];
	p->reg = reg;
	p->len = len;
	p->kind = PICK(r, ((const enum pfx_kind[]){ PFX_IMM, PFX_IMM, PFX_META, PFX_PAYLOAD }));
	if (p->kind == PFX_META) {
		if (len <= 1 && chance(r, 50)) {
			p->meta_key = NFT_META_L4PROTO;
			p->len = 1;
		} else if (len <= 4 && !reg_check(reg, 4)) {
			p->meta_key = NFT_META_MARK;
			p->len = 4;
		} else {
			p->kind = PFX_IMM;
		}
	}
}

/* stores before the target: cover its loads, partly, or not at all */
static void gen_stores(struct rng *r, struct rulespec *rs, const uint32_t *loads,
		       const unsigned int *lens, int nloads)
{
	int i;

	for (i = 0; i < nloads; i++) {
		unsigned int p = below(r, 100);

		if (p < 62)
			add_store(r, rs, loads[i], lens[i]);
		else if (p < 75 && lens[i] > 4)
			add_store(r, rs, loads[i], lens[i] - 4);	/* short */
		else if (p < 82)
			add_store(r, rs, loads[i] + 1, lens[i]);	/* next door */
	}
	if (chance(r, 20))
		add_store(r, rs, chance(r, 50) ? NFT_REG_1 + below(r, 4) :
			  NFT_REG32_00 + below(r, 16), 1 + below(r, 16));
}

/* a semantic attribute before serialisation */
struct rawattr {
	uint16_t type;			/* with flag bits */
	int nla_len;			/* as written */
	int dlen;			/* payload bytes written */
	uint8_t d[24];
	bool badhdr;			/* nla_len < 4 */
	bool trunc;			/* claims more than is there */
};

#define MAX_RAW		12

struct rawlist {
	int n;
	struct rawattr a[MAX_RAW];
};

static void raw_add_u32(struct rawlist *l, int pos, uint16_t type, uint32_t v)
{
	struct rawattr *a;

	if (l->n >= MAX_RAW)
		return;
	if (pos < 0 || pos > l->n)
		pos = l->n;
	memmove(&l->a[pos + 1], &l->a[pos], (l->n - pos) * sizeof(l->a[0]));
	l->n++;
	a = &l->a[pos];
	memset(a, 0, sizeof(*a));
	a->type = type;
	a->dlen = 4;
	a->nla_len = 8;
	v = htonl(v);
	memcpy(a->d, &v, 4);
}

static void mutate(struct rng *r, struct rulespec *rs, struct rawlist *l,
		   unsigned int maxattr, uint32_t (*gen_same)(struct rng *, uint16_t, uint8_t),
		   uint8_t tf)
{
	struct rawattr *a;
	int i, k, n;

	if (l->n && chance(r, 10)) {			/* duplicate */
		i = below(r, l->n);
		raw_add_u32(l, chance(r, 50) ? i : i + 1, l->a[i].type,
			    gen_same(r, l->a[i].type, tf));
	}
	if (l->n && chance(r, 5)) {			/* oversized */
		a = &l->a[below(r, l->n)];
		a->dlen = 5 + below(r, 16);
		for (k = 4; k < a->dlen; k++)
			a->d[k] = rnd32(r);
		a->nla_len = 4 + a->dlen;
	}
	if (l->n && chance(r, 4)) {			/* short */
		a = &l->a[below(r, l->n)];
		a->dlen = below(r, 4);
		a->nla_len = 4 + a->dlen;
	}
	if (l->n && chance(r, 3)) {			/* wrong byte order */
		uint32_t v;

		a = &l->a[below(r, l->n)];
		memcpy(&v, a->d, 4);
		v = __builtin_bswap32(v);
		memcpy(a->d, &v, 4);
	}
	if (l->n && chance(r, 3))			/* flag bits */
		l->a[below(r, l->n)].type |= chance(r, 50) ? NLA_F_NESTED : NLA_F_BYTEORDER;
	if (chance(r, 12)) {				/* extension attributes */
		static const uint16_t ext[] = { 0, NLA_TYPE_MASK_, 0x7fff, 0xffff };

		n = 1 + below(r, 3);
		for (k = 0; k < n; k++) {
			uint16_t type = chance(r, 70) ? maxattr + 1 + below(r, 6) :
					chance(r, 70) ? PICK(r, ext) : (uint16_t)rnd32(r);

			/* a known type with a flag would not be an extension */
			if ((type & NLA_TYPE_MASK_) >= 1 && (type & NLA_TYPE_MASK_) <= maxattr)
				type = maxattr + 1;
			/* nor would ours, which gen_target sends as such */
			if ((type & NLA_TYPE_MASK_) == NFTA_TPROXY_NFTP_FLAGS)
				type = 0;
			raw_add_u32(l, below(r, l->n + 1), type, rnd32(r));
		}
		/* random lengths for them */
		for (k = 0; k < l->n; k++) {
			a = &l->a[k];
			if ((a->type & NLA_TYPE_MASK_) > maxattr ||
			    (a->type & NLA_TYPE_MASK_) == 0) {
				a->dlen = below(r, 17);
				for (i = 4; i < a->dlen; i++)
					a->d[i] = rnd32(r);
				a->nla_len = 4 + a->dlen;
			}
		}
	}
	if (chance(r, 2) && l->n < MAX_RAW) {		/* bad header midway */
		i = below(r, l->n + 1);
		raw_add_u32(l, i, 1, 0);
		l->a[i].badhdr = true;
		l->a[i].nla_len = below(r, 4);
	}
	if (l->n && chance(r, 3) && !l->a[l->n - 1].badhdr) {	/* truncated */
		a = &l->a[l->n - 1];
		a->trunc = true;
		a->nla_len = 4 + a->dlen + 4 + below(r, 60);
	}
	if (l->n > 1 && chance(r, 25)) {		/* order */
		for (i = l->n - 1; i > 0; i--) {
			struct rawattr t;

			k = below(r, i + 1);
			t = l->a[i];
			l->a[i] = l->a[k];
			l->a[k] = t;
		}
		/* a truncation is only one at the end */
		for (i = 0; i < l->n - 1; i++) {
			if (l->a[i].trunc) {
				l->a[i].trunc = false;
				l->a[i].nla_len = 4 + l->a[i].dlen;
			}
		}
	}
	if (chance(r, 1))
		rs->nodata = true;
	else if (chance(r, 1))
		l->n = 0;				/* empty DATA */
}

static void serialise(const struct rawlist *l, struct rulespec *rs)
{
	int i, pos = 0;

	for (i = 0; i < l->n; i++) {
		const struct rawattr *a = &l->a[i];
		uint16_t hdr[2] = { (uint16_t)a->nla_len, a->type };
		int padded = (a->dlen + 3) & ~3;

		if (pos + 4 + padded > MAX_DATA)
			break;
		memcpy(rs->data + pos, hdr, 4);
		memset(rs->data + pos + 4, 0, padded);
		memcpy(rs->data + pos + 4, a->d, a->dlen);
		pos += 4 + padded;

		if (a->badhdr)
			sappend(rs->desc, sizeof(rs->desc), " !hdr%d", a->nla_len);
		else if (a->type > 0xff)
			sappend(rs->desc, sizeof(rs->desc), " t%#x", a->type);
		else
			sappend(rs->desc, sizeof(rs->desc), " t%u", a->type);
		if (!a->badhdr && a->nla_len != 8)
			sappend(rs->desc, sizeof(rs->desc), "/l%d%s", a->nla_len,
				a->trunc ? "!" : "");
		if (!a->badhdr && a->dlen >= 4) {
			uint32_t v;

			memcpy(&v, a->d, 4);
			sappend(rs->desc, sizeof(rs->desc), "=%#x", ntohl(v));
		}
	}
	rs->dlen = pos;
	if (rs->nodata)
		sappend(rs->desc, sizeof(rs->desc), " nodata");
	else if (l->n == 0)
		sappend(rs->desc, sizeof(rs->desc), " empty");
}

static uint32_t gen_same_tproxy(struct rng *r, uint16_t type, uint8_t tf)
{
	if ((type & NLA_TYPE_MASK_) == NFTA_TPROXY_FAMILY)
		return gen_tproxy_family(r, tf);
	if ((type & NLA_TYPE_MASK_) == NFTA_TPROXY_NFTP_FLAGS)
		return gen_tproxy_flags(r);
	return gen_reg(r);
}

static uint32_t gen_same_socket(struct rng *r, uint16_t type, uint8_t tf)
{
	(void)tf;
	switch (type & NLA_TYPE_MASK_) {
	case NFTA_SOCKET_KEY:
		return gen_socket_key(r);
	case NFTA_SOCKET_LEVEL:
		return gen_level(r);
	}
	return gen_reg(r);
}

static void desc_pfx(struct rulespec *rs)
{
	int i;

	if (!rs->npfx)
		return;
	sappend(rs->desc, sizeof(rs->desc), " pfx=");
	for (i = 0; i < rs->npfx; i++)
		sappend(rs->desc, sizeof(rs->desc), "%s%c:%u/%u", i ? "," : "",
			pfx_name[rs->pfx[i].kind][0], rs->pfx[i].reg, rs->pfx[i].len);
}

/*
 * A tproxy or socket rule.  clean: a valid one for the table family
 * (baselines for replace), no mutation.
 */
static void gen_target(struct rng *r, struct rulespec *rs, enum tkind tk,
		       uint8_t tf, bool clean)
{
	struct rawlist l = { 0 };
	uint32_t loads[2];
	unsigned int lens[2];
	int nloads = 0;

	memset(rs, 0, sizeof(*rs));
	rs->tk = tk;
	snprintf(rs->desc, sizeof(rs->desc), "%s", tk_name[tk]);

	if (tk == TK_TPROXY) {
		uint32_t fam = clean ? (tf == NFPROTO_IPV6 ? 10 : 2) : gen_tproxy_family(r, tf);
		bool addr = clean ? false : chance(r, 50);
		bool port = clean ? true : (!addr || chance(r, 65));
		unsigned int alen = fam == 10 ? 16 : fam == 2 ? 4 : chance(r, 50) ? 4 : 16;

		if (clean || chance(r, 96))
			raw_add_u32(&l, -1, NFTA_TPROXY_FAMILY, fam);
		if (!clean && chance(r, 4))
			addr = port = false;
		if (addr) {
			loads[nloads] = gen_reg(r);
			lens[nloads] = alen;
			raw_add_u32(&l, -1, NFTA_TPROXY_REG_ADDR, loads[nloads++]);
		}
		if (port) {
			loads[nloads] = clean ? NFT_REG32_00 : gen_reg(r);
			lens[nloads] = 2;
			raw_add_u32(&l, -1, NFTA_TPROXY_REG_PORT, loads[nloads++]);
		}
		if (!clean && chance(r, 30))
			raw_add_u32(&l, below(r, l.n + 1), NFTA_TPROXY_NFTP_FLAGS,
				    gen_tproxy_flags(r));
		if (clean)
			add_store(r, rs, NFT_REG32_00, 2);
		else
			gen_stores(r, rs, loads, lens, nloads);
		if (!clean && chance(r, 50))
			mutate(r, rs, &l, NFTA_TPROXY_MAX, gen_same_tproxy, tf);
	} else {
		uint32_t key = clean ? NFT_SOCKET_TRANSPARENT : gen_socket_key(r);

		if (clean || chance(r, 95))
			raw_add_u32(&l, -1, NFTA_SOCKET_KEY, key);
		if (clean || chance(r, 95))
			raw_add_u32(&l, -1, NFTA_SOCKET_DREG, clean ? NFT_REG_1 : gen_reg(r));
		if (!clean && chance(r, (key & 0xff) == NFT_SOCKET_CGROUPV2 ? 90 : 15))
			raw_add_u32(&l, -1, NFTA_SOCKET_LEVEL, gen_level(r));
		if (!clean) {
			gen_stores(r, rs, NULL, NULL, 0);
			if (chance(r, 50))
				mutate(r, rs, &l, NFTA_SOCKET_MAX, gen_same_socket, tf);
		}
	}
	desc_pfx(rs);
	sappend(rs->desc, sizeof(rs->desc), " [");
	serialise(&l, rs);
	sappend(rs->desc, sizeof(rs->desc), " ]");
}

static void gen_jump(struct rng *r, struct rulespec *rs, int to)
{
	memset(rs, 0, sizeof(*rs));
	rs->tk = TK_NONE;
	rs->verdict = chance(r, 75) ? NFT_JUMP : NFT_GOTO;
	rs->jump_to = to;
	snprintf(rs->desc, sizeof(rs->desc), "%s %s", rs->verdict == NFT_JUMP ?
		 "jump" : "goto", chain_name[to]);
}

/* ------------------------------------------------------------------ model */

struct tbm {
	bool has[MAX_EXPR_ATTR + 1];
	uint32_t val[MAX_EXPR_ATTR + 1];
	int err;
};

/*
 * The kernel's nla_parse_nested_deprecated() of NFTA_EXPR_DATA: walk while
 * the header is sane; the types in @known have an NLA_U32 policy, all
 * others are skipped (0, above maxattr, or NLA_UNSPEC holes below it); a known type shorter than 4 bytes is -ERANGE, so is
 * one above its policy maximum (pmax, pmaxv: probed), even when a later
 * one of the type follows (every attribute is validated); the last one of
 * a type wins; longer ones only warn; leftovers only warn.
 */
static void model_parse(const struct rulespec *rs, uint32_t known, uint32_t pmax,
			const uint32_t *pmaxv, struct tbm *tb)
{
	const uint8_t *pos = rs->data;
	int rem = rs->nodata ? 0 : rs->dlen;

	memset(tb, 0, sizeof(*tb));
	while (rem >= 4) {
		uint16_t hdr[2];
		unsigned int type;

		memcpy(hdr, pos, 4);
		if (hdr[0] < 4 || hdr[0] > rem)
			break;
		type = hdr[1] & NLA_TYPE_MASK_;
		if (type <= MAX_EXPR_ATTR && (known & (1U << type))) {
			uint32_t v;

			if (hdr[0] - 4 < 4) {
				tb->err = ERANGE;
				return;
			}
			memcpy(&v, pos + 4, 4);
			/*
			 * NLA_POLICY_MAX(NLA_BE32, 255) of newer kernels, and
			 * NFT_REG32_MAX for registers (socket's DREG in 7.3)
			 */
			if ((pmax & (1U << type)) && ntohl(v) > pmaxv[type]) {
				tb->err = ERANGE;
				return;
			}
			tb->has[type] = true;
			tb->val[type] = ntohl(v);
		}
		pos += (hdr[0] + 3) & ~3;
		rem -= (hdr[0] + 3) & ~3;
	}
}

static uint32_t rule_inited(const struct rulespec *rs)
{
	uint32_t mask = 0;
	int i;

	for (i = 0; i < rs->npfx; i++)
		mask |= slot_mask(reg_slot(rs->pfx[i].reg), rs->pfx[i].len);
	return mask;
}

static int model_load(const struct fz *fz, uint32_t reg, unsigned int len, uint32_t inited)
{
	int err = reg_check(reg, len);
	uint32_t need;

	if (err)
		return err;
	need = slot_mask(reg_slot(reg), len);
	if (fz->reg_init && (inited & need) != need)
		return ENODATA;
	return 0;
}

static void want_set(struct dexpr *w, unsigned int type, uint32_t v)
{
	w->present |= 1U << type;
	w->val[type] = v;
}

/* hooks socket may be reached from; output since 5.18 (--no-socket-output) */
static uint32_t socket_hooks = (1U << NF_INET_PRE_ROUTING) | (1U << NF_INET_LOCAL_IN) |
			       (1U << NF_INET_LOCAL_OUT);

/* hooks an expression may be reached from (its .validate); model_tproxy()
 * widens it for a rule's flags
 */
static uint32_t allowed_hooks(enum tkind tk)
{
	if (tk == TK_TPROXY)
		return 1U << NF_INET_PRE_ROUTING;
	if (tk == TK_SOCKET)
		return socket_hooks;
	return ~0U;
}

/* upstream nft_tproxy_init() */
static int model_tproxy(const struct fz *fz, struct rulespec *rs, uint8_t tf)
{
	struct dexpr *w = &rs->want;
	uint32_t raw, fam, known, flags;
	unsigned int alen;
	struct tbm tb;
	int err;

	/* the in-tree module's policy ends at NFTA_TPROXY_MAX: ours ignored */
	known = 1U << NFTA_TPROXY_FAMILY | 1U << NFTA_TPROXY_REG_ADDR |
		1U << NFTA_TPROXY_REG_PORT;
	if (!fz->o.in_tree)
		known |= 1U << NFTA_TPROXY_NFTP_FLAGS;
	model_parse(rs, known, fz->pmax[TK_TPROXY], fz->pmaxv[TK_TPROXY], &tb);
	if (tb.err)
		return tb.err;
	if (!tb.has[NFTA_TPROXY_FAMILY] ||
	    (!tb.has[NFTA_TPROXY_REG_ADDR] && !tb.has[NFTA_TPROXY_REG_PORT]))
		return EINVAL;
	raw = tb.val[NFTA_TPROXY_FAMILY];
	/* upstream stores it in a u8 before looking at it */
	fam = fz->o.in_tree ? (raw & 0xff) : raw;

	switch (tf) {
	case NFPROTO_IPV4:
	case NFPROTO_IPV6:
		if (fam != tf)
			return EINVAL;
		break;
	case NFPROTO_INET:
		break;
	default:
		return EOPNOTSUPP;
	}
	if (fam == NFPROTO_UNSPEC && tb.has[NFTA_TPROXY_REG_ADDR])
		return EINVAL;
	switch (fam) {
	case NFPROTO_IPV4:
		alen = 4;
		break;
	case NFPROTO_IPV6:
		alen = 16;
		break;
	case NFPROTO_UNSPEC:
		alen = 0;
		break;
	default:
		return EOPNOTSUPP;
	}
	/* ours: an unknown flag must not load as a rule without it */
	flags = tb.val[NFTA_TPROXY_NFTP_FLAGS];
	if (flags & ~NFTP_TPROXY_F_ALL)
		return EOPNOTSUPP;
	/* ours, on a kernel that cannot keep an IPv6 local route to its flow */
	if (fz->o.no_local_route6 && (flags & NFTP_TPROXY_F_LOCAL_ROUTE) &&
	    fam != NFPROTO_IPV4)
		return EOPNOTSUPP;
	if (tb.has[NFTA_TPROXY_REG_ADDR]) {
		err = model_load(fz, tb.val[NFTA_TPROXY_REG_ADDR], alen, rule_inited(rs));
		if (err)
			return err;
	}
	if (tb.has[NFTA_TPROXY_REG_PORT]) {
		err = model_load(fz, tb.val[NFTA_TPROXY_REG_PORT], 2, rule_inited(rs));
		if (err)
			return err;
	}
	rs->quirk = fam != raw;
	snprintf(w->name, sizeof(w->name), "tproxy");
	want_set(w, NFTA_TPROXY_FAMILY, fam);
	if (tb.has[NFTA_TPROXY_REG_ADDR])
		want_set(w, NFTA_TPROXY_REG_ADDR, reg_dumped(tb.val[NFTA_TPROXY_REG_ADDR]));
	if (tb.has[NFTA_TPROXY_REG_PORT])
		want_set(w, NFTA_TPROXY_REG_PORT, reg_dumped(tb.val[NFTA_TPROXY_REG_PORT]));
	/* dumped only when set: a plain rule dumps as in-tree */
	if (flags)
		want_set(w, NFTA_TPROXY_NFTP_FLAGS, flags);
	/* ours: local-route serves the host's own traffic too */
	if (flags & NFTP_TPROXY_F_LOCAL_ROUTE)
		rs->hooks |= 1U << NF_INET_LOCAL_OUT;
	return 0;
}

/* upstream nft_socket_init() */
static int model_socket(const struct fz *fz, struct rulespec *rs, uint8_t tf)
{
	struct dexpr *w = &rs->want;
	uint32_t raw, key, level = 0, known;
	unsigned int len;
	struct tbm tb;
	int err;

	/*
	 * In-tree before 5.13 the policy ended at DREG: a LEVEL attribute is
	 * ignored.  Ours parses it even where the kernel keeps no cgroup in
	 * sockets and the key is refused.
	 */
	known = 1U << NFTA_SOCKET_KEY | 1U << NFTA_SOCKET_DREG;
	if (!fz->o.no_cgroupv2 || !fz->o.in_tree)
		known |= 1U << NFTA_SOCKET_LEVEL;
	model_parse(rs, known, fz->pmax[TK_SOCKET], fz->pmaxv[TK_SOCKET], &tb);
	if (tb.err)
		return tb.err;
	if (!tb.has[NFTA_SOCKET_DREG] || !tb.has[NFTA_SOCKET_KEY])
		return EINVAL;
	if (!ip_family(tf))
		return EOPNOTSUPP;
	raw = tb.val[NFTA_SOCKET_KEY];
	/* upstream: enum nft_socket_keys key:8 */
	key = fz->o.in_tree ? (raw & 0xff) : raw;
	switch (key) {
	case NFT_SOCKET_TRANSPARENT:
	case NFT_SOCKET_WILDCARD:
		len = 1;
		break;
	case NFT_SOCKET_MARK:
		len = 4;
		break;
	case NFT_SOCKET_NFTP_UID:
	case NFT_SOCKET_NFTP_GID:
		/* ours only */
		if (fz->o.in_tree)
			return EOPNOTSUPP;
		len = 4;
		break;
	case NFT_SOCKET_CGROUPV2:
		if (fz->o.no_cgroupv2)
			return EOPNOTSUPP;
		if (!tb.has[NFTA_SOCKET_LEVEL])
			return EINVAL;
		level = tb.val[NFTA_SOCKET_LEVEL];
		if (level > 255)
			return EOPNOTSUPP;
		/* relative to our cgroupns root; deeper than any tree */
		if (level + fz->o.cgroup_level > 255)
			return EOPNOTSUPP;
		len = 8;
		break;
	default:
		return EOPNOTSUPP;
	}
	err = reg_check(tb.val[NFTA_SOCKET_DREG], len);
	if (err)
		return err;
	rs->quirk = key != raw;
	snprintf(w->name, sizeof(w->name), "socket");
	want_set(w, NFTA_SOCKET_KEY, key);
	want_set(w, NFTA_SOCKET_DREG, reg_dumped(tb.val[NFTA_SOCKET_DREG]));
	if (key == NFT_SOCKET_CGROUPV2)
		want_set(w, NFTA_SOCKET_LEVEL, level);
	return 0;
}

static void model_rule(const struct fz *fz, struct rulespec *rs, uint8_t tf)
{
	memset(&rs->want, 0, sizeof(rs->want));
	rs->quirk = false;
	rs->hooks = allowed_hooks(rs->tk);
	switch (rs->tk) {
	case TK_TPROXY:
		rs->init_err = model_tproxy(fz, rs, tf);
		break;
	case TK_SOCKET:
		rs->init_err = model_socket(fz, rs, tf);
		break;
	default:
		rs->init_err = 0;
		break;
	}
}

/* does every tproxy/socket rule pass validation from the base chains? */
static bool model_hooks_ok(const struct casespec *cs, const struct mstate *s)
{
	uint32_t reach[NCHAINS] = { 0 };
	int pass, c, i;

	if (!s->table)
		return true;
	if (s->ch[CH_B].exists && s->ch[CH_B].base)
		reach[CH_B] = 1U << cs->hook.num;
	for (pass = 0; pass < NCHAINS; pass++)
		for (c = 0; c < NCHAINS; c++)
			for (i = 0; i < s->ch[c].n; i++) {
				const struct rulespec *rs = s->ch[c].rules[i].rs;

				if (rs->tk == TK_NONE)
					reach[rs->jump_to] |= reach[c];
			}
	for (c = 0; c < NCHAINS; c++)
		for (i = 0; i < s->ch[c].n; i++)
			if (reach[c] & ~s->ch[c].rules[i].rs->hooks)
				return false;
	return true;
}

static void mchain_remove(struct mchain *c, int i)
{
	memmove(&c->rules[i], &c->rules[i + 1], (c->n - i - 1) * sizeof(c->rules[0]));
	c->n--;
}

/* index of the committed rule `ref` of the phase's start state in chain c */
static int find_handle(const struct mchain *c, uint64_t handle)
{
	int i;

	for (i = 0; i < c->n; i++)
		if (handle && c->rules[i].handle == handle)
			return i;
	return -1;
}

/*
 * Apply a phase to the model.  Returns the verdict; *experr is the errno
 * expected first (0 if none), *out the state if it is accepted.
 */
static enum verdict model_phase(const struct casespec *cs, const struct phase *ph,
				const struct mstate *in, struct mstate *out, int *experr,
				bool *quirk)
{
	bool transient_bad = false;
	int i, err = 0;

	*out = *in;
	*quirk = false;
	for (i = 0; i < ph->nops; i++) {
		const struct op *op = &ph->ops[i];
		struct mchain *c = &out->ch[op->ch];
		int e = 0, idx;

		switch (op->k) {
		case O_TABLE:
			if (!cs->fam->supported)
				e = EOPNOTSUPP;
			out->table = true;
			break;
		case O_BASE:
			if (!out->table)
				e = ENOENT;
			else if (!cs->hook_ok)
				e = EOPNOTSUPP;
			c->exists = c->base = true;
			break;
		case O_CHAIN:
			if (!out->table)
				e = ENOENT;
			c->exists = true;
			break;
		case O_RULE:
		case O_REPLACE:
			if (!out->table || !c->exists) {
				e = ENOENT;
				break;
			}
			if (op->rs->tk == TK_NONE && !out->ch[op->rs->jump_to].exists) {
				e = ENOENT;
				break;
			}
			idx = -1;
			if (op->k == O_REPLACE) {
				idx = op->ref < 0 ? -1 :
				      find_handle(c, in->ch[op->ch].rules[op->ref].handle);
				if (idx < 0) {
					e = ENOENT;
					break;
				}
			}
			if (op->rs->init_err) {
				e = op->rs->init_err;
				break;
			}
			*quirk |= op->rs->quirk;
			if (idx >= 0) {
				/* the replacement takes over the handle: a
				 * later DELRULE of it deletes the new rule
				 */
				c->rules[idx].rs = op->rs;
				c->rules[idx].rule_id = op->rule_id;
			} else if (c->n < MAX_CRULES) {
				c->rules[c->n].rs = op->rs;
				c->rules[c->n].handle = 0;
				c->rules[c->n++].rule_id = op->rule_id;
			}
			break;
		case O_DELRULE:
			idx = op->ref < 0 ? -1 :
			      find_handle(c, in->ch[op->ch].rules[op->ref].handle);
			if (!out->table || !c->exists || idx < 0)
				e = ENOENT;
			else
				mchain_remove(c, idx);
			break;
		case O_DELRULE_ID:
			for (idx = 0; idx < c->n; idx++)
				if (c->rules[idx].rule_id == op->rule_id)
					break;
			if (idx >= c->n)
				e = ENOENT;
			else
				mchain_remove(c, idx);
			break;
		case O_DELTABLE:
			if (!out->table)
				e = ENOENT;
			memset(out, 0, sizeof(*out));
			break;
		}
		if (e && !err)
			err = e;
		if (!model_hooks_ok(cs, out))
			transient_bad = true;
	}
	*experr = err;
	if (err)
		return V_REJECT;
	if (!model_hooks_ok(cs, out)) {
		*experr = EOPNOTSUPP;
		return V_REJECT;
	}
	/* a rule that was briefly unreachable-valid: depends on when validated */
	return transient_bad ? V_EITHER : V_ACCEPT;
}

/* ------------------------------------------------------------------ scenarios */

static void ph_add(struct phase *ph, enum opk k, int ch, const struct rulespec *rs,
		   int ref, uint32_t rule_id)
{
	struct op *op = &ph->ops[ph->nops++];

	op->k = k;
	op->ch = ch;
	op->rs = rs;
	op->ref = ref;
	op->rule_id = rule_id;
}

static const struct famdef *pick_family(struct rng *r)
{
	unsigned int total = 0, i, x;

	for (i = 0; i < ARRAY_SIZE(families); i++)
		total += families[i].weight;
	x = below(r, total);
	for (i = 0; i < ARRAY_SIZE(families); i++) {
		if (x < families[i].weight)
			return &families[i];
		x -= families[i].weight;
	}
	return &families[0];
}

static void pick_hook(struct rng *r, struct casespec *cs)
{
	const struct famdef *f = cs->fam;
	unsigned int i, p = below(r, 100);
	struct hookdef h;

	cs->hook_ok = true;
	if (!f->nhooks) {
		cs->hook = (struct hookdef){ "h0", 0, false };
		cs->hook_ok = false;
		return;
	}
	if (p < 3) {			/* a number no family has */
		cs->hook = (struct hookdef){ "h7", 7, false };
		cs->hook_ok = false;
		return;
	}
	if (p < 7) {			/* by number from inet's list */
		h = PICK(r, inet_hooks);
		cs->hook = h;
		cs->hook_ok = false;
		for (i = 0; i < f->nhooks; i++)
			if (f->hooks[i].num == h.num) {
				cs->hook = f->hooks[i];
				cs->hook_ok = true;
			}
		return;
	}
	/* the first hook more often: prerouting, where tproxy is valid */
	cs->hook = chance(r, 35) ? f->hooks[0] : f->hooks[below(r, f->nhooks)];
}

static enum scenario pick_scenario(struct rng *r)
{
	static const unsigned int w[S_NUM] = { 33, 20, 12, 15, 10, 10, 0 };
	unsigned int x = below(r, 100), i;

	for (i = 0; i < S_NUM; i++) {
		if (x < w[i])
			return i;
		x -= w[i];
	}
	return S_BASE;
}

static struct rulespec *new_rule(struct casespec *cs)
{
	if (cs->nrules >= MAX_RULES)
		die("internal: too many rules in a case");
	return &cs->rules[cs->nrules++];
}

/* table, chains: b (base) and, if wanted, r and m (regular) */
static void setup_ops(struct phase *ph, bool with_r, bool with_m)
{
	ph_add(ph, O_TABLE, 0, NULL, 0, 0);
	if (with_r)
		ph_add(ph, O_CHAIN, CH_R, NULL, 0, 0);
	if (with_m)
		ph_add(ph, O_CHAIN, CH_M, NULL, 0, 0);
	ph_add(ph, O_BASE, CH_B, NULL, 0, 0);
}

static void gen_case(const struct fz *fz, uint64_t id, struct casespec *cs)
{
	struct rng rng = { fz->o.seed * 0x9e3779b97f4a7c15ULL ^ (id + 1) * 0xd1b54a32d192ed03ULL };
	struct rng *r = &rng;
	struct rulespec *t0, *t1, *j, *j2;
	struct phase *p0, *p1;
	uint8_t tf;
	int i, target_ch;
	unsigned int nk = 0;
	enum tkind ks[TK_NUM];

	memset(cs, 0, sizeof(*cs));
	splitmix64(&r->s);
	cs->id = id;
	for (i = TK_TPROXY; i < TK_NUM; i++)
		if (fz->o.exprs & (1U << i))
			ks[nk++] = i;
	cs->tk = ks[below(r, nk)];
	cs->fam = pick_family(r);
	tf = cs->fam->nfproto;
	pick_hook(r, cs);
	cs->scen = cs->fam->nhooks ? pick_scenario(r) : S_REGULAR;
	p0 = &cs->ph[0];
	p1 = &cs->ph[1];
	cs->nphases = 1;

	t0 = new_rule(cs);
	gen_target(r, t0, cs->tk, tf, false);

	switch (cs->scen) {
	case S_BASE:
		setup_ops(p0, false, false);
		ph_add(p0, O_RULE, CH_B, t0, 0, 0);
		break;
	case S_JUMP:
		j = new_rule(cs);
		if (chance(r, 25)) {		/* b -> m -> r */
			gen_jump(r, j, CH_M);
			j2 = new_rule(cs);
			gen_jump(r, j2, CH_R);
			setup_ops(p0, true, true);
			ph_add(p0, O_RULE, CH_B, j, 0, 0);
			ph_add(p0, O_RULE, CH_M, j2, 0, 0);
			ph_add(p0, O_RULE, CH_R, t0, 0, 0);
			break;
		}
		gen_jump(r, j, CH_R);
		setup_ops(p0, true, false);
		if (chance(r, 50)) {
			ph_add(p0, O_RULE, CH_B, j, 0, 0);
			ph_add(p0, O_RULE, CH_R, t0, 0, 0);
		} else {
			ph_add(p0, O_RULE, CH_R, t0, 0, 0);
			ph_add(p0, O_RULE, CH_B, j, 0, 0);
		}
		break;
	case S_LATEJUMP:
		j = new_rule(cs);
		gen_jump(r, j, CH_R);
		setup_ops(p0, true, false);
		ph_add(p0, O_RULE, CH_R, t0, 0, 0);
		ph_add(p1, O_RULE, CH_B, j, 0, 0);
		cs->nphases = 2;
		break;
	case S_REPLACE:
		/* a valid baseline, replaced by the fuzzed rule */
		t1 = new_rule(cs);
		gen_target(r, t1, cs->tk, tf, true);
		target_ch = CH_B;
		if (chance(r, 35)) {
			j = new_rule(cs);
			gen_jump(r, j, CH_R);
			setup_ops(p0, true, false);
			ph_add(p0, O_RULE, CH_B, j, 0, 0);
			target_ch = CH_R;
		} else {
			setup_ops(p0, false, false);
		}
		ph_add(p0, O_RULE, target_ch, t1, 0, 0);
		i = below(r, 100);
		if (i < 70) {
			ph_add(p1, O_REPLACE, target_ch, t0, 0, 0);
			if (chance(r, 15))	/* deletes the replacement */
				ph_add(p1, O_DELRULE, target_ch, NULL, 0, 0);
		} else if (i < 90) {		/* add the new one, delete the old */
			ph_add(p1, O_RULE, target_ch, t0, 0, 0);
			ph_add(p1, O_DELRULE, target_ch, NULL, 0, 0);
		} else {			/* replace of a handle that is not there */
			ph_add(p1, O_REPLACE, target_ch, t0, -1, 0);
		}
		cs->nphases = 2;
		break;
	case S_DELETE:
		setup_ops(p0, false, false);
		ph_add(p0, O_RULE, CH_B, t0, 0, 0);
		t1 = new_rule(cs);
		gen_target(r, t1, cs->tk, tf, false);
		ph_add(p1, O_DELRULE, CH_B, NULL, chance(r, 10) ? -1 : 0, 0);
		if (chance(r, 70))
			ph_add(p1, O_RULE, CH_B, t1, 0, 0);
		cs->nphases = 2;
		break;
	case S_INBATCH:
		setup_ops(p0, false, false);
		ph_add(p0, O_RULE, CH_B, t0, 0, 1);
		if (chance(r, 60))
			ph_add(p0, O_DELRULE_ID, CH_B, NULL, 0, 1);
		else
			ph_add(p0, O_DELTABLE, 0, NULL, 0, 0);
		break;
	case S_REGULAR:
	case S_NUM:
		ph_add(p0, O_TABLE, 0, NULL, 0, 0);
		ph_add(p0, O_CHAIN, CH_R, NULL, 0, 0);
		ph_add(p0, O_RULE, CH_R, t0, 0, 0);
		break;
	}
	for (i = 0; i < cs->nrules; i++)
		model_rule(fz, &cs->rules[i], tf);
	snprintf(cs->desc, sizeof(cs->desc), "%s %s/%s %s", scen_name[cs->scen],
		 cs->fam->name, cs->hook.name, tk_name[cs->tk]);
}

/* ------------------------------------------------------------------ running */

static void build_phase(struct fz *fz, const struct casespec *cs, const struct phase *ph,
			const struct mstate *in)
{
	int i;

	batch_start(&fz->nl, cs->fam->nfproto);
	for (i = 0; i < ph->nops; i++) {
		const struct op *op = &ph->ops[i];
		uint64_t handle;

		/* a bogus handle: far above anything a table hands out */
		handle = op->ref < 0 || op->ref >= in->ch[op->ch].n ?
			 (1ULL << 40) + op->ch : in->ch[op->ch].rules[op->ref].handle;
		switch (op->k) {
		case O_TABLE:
			put_ftable(fz, false);
			break;
		case O_DELTABLE:
			put_ftable(fz, true);
			break;
		case O_BASE:
			put_fchain(fz, op->ch, &cs->hook);
			break;
		case O_CHAIN:
			put_fchain(fz, op->ch, NULL);
			break;
		case O_RULE:
			put_rule(fz, op->ch, op->rs, 0, op->rule_id);
			break;
		case O_REPLACE:
			put_rule(fz, op->ch, op->rs, handle, 0);
			break;
		case O_DELRULE:
			put_delrule(fz, op->ch, handle, 0);
			break;
		case O_DELRULE_ID:
			put_delrule(fz, op->ch, 0, op->rule_id);
			break;
		}
	}
	batch_end(&fz->nl);
}

static bool dexpr_equal(const struct dexpr *want, const struct dexpr *got)
{
	unsigned int t;

	if (got->odd || want->present != got->present)
		return false;
	for (t = 0; t <= MAX_EXPR_ATTR; t++)
		if ((want->present & (1U << t)) && want->val[t] != got->val[t])
			return false;
	return true;
}

static void dexpr_text(const struct dexpr *e, char *buf, size_t size)
{
	unsigned int t;

	snprintf(buf, size, "%s{", e->name);
	for (t = 1; t <= MAX_EXPR_ATTR; t++)
		if (e->present & (1U << t))
			sappend(buf, size, " %u=%#x", t, e->val[t]);
	sappend(buf, size, "%s }", e->odd ? " ODD" : "");
}

/* does the rule as dumped match the rule as sent (and modelled)? */
static bool rule_matches(const struct rulespec *rs, const struct drule *dr,
			 char *why, size_t size)
{
	char a[96], b[96];
	int i, n = rs->npfx + 1;

	if (dr->odd || dr->nexpr != n) {
		snprintf(why, size, "rule %" PRIu64 " has %d expressions, sent %d",
			 dr->handle, dr->nexpr, n);
		return false;
	}
	for (i = 0; i < rs->npfx; i++)
		if (strcmp(dr->e[i].name, pfx_name[rs->pfx[i].kind])) {
			snprintf(why, size, "expression %d is %s, sent %s", i,
				 dr->e[i].name, pfx_name[rs->pfx[i].kind]);
			return false;
		}
	if (rs->tk == TK_NONE) {
		if (strcmp(dr->e[n - 1].name, "immediate")) {
			snprintf(why, size, "jump rule dumps %s", dr->e[n - 1].name);
			return false;
		}
		return true;
	}
	if (!dexpr_equal(&rs->want, &dr->e[n - 1])) {
		dexpr_text(&rs->want, a, sizeof(a));
		dexpr_text(&dr->e[n - 1], b, sizeof(b));
		snprintf(why, size, "want %s, dumped %s", a, b);
		return false;
	}
	return true;
}

/* compare the dump with a model state; on a match learn the handles */
static bool state_matches(struct mstate *s, const struct dump *d, char *why, size_t size)
{
	int seen[NCHAINS] = { 0 };
	int i, c;

	if (d->table != s->table) {
		snprintf(why, size, "table %s, model says %s", d->table ? "exists" : "absent",
			 s->table ? "present" : "absent");
		return false;
	}
	for (i = 0; i < d->n; i++) {
		const struct drule *dr = &d->r[i];

		for (c = 0; c < NCHAINS; c++)
			if (!strcmp(dr->chain, chain_name[c]))
				break;
		if (c == NCHAINS || seen[c] >= s->ch[c].n) {
			snprintf(why, size, "unexpected rule %" PRIu64 " in chain '%s'",
				 dr->handle, dr->chain);
			return false;
		}
		if (!rule_matches(s->ch[c].rules[seen[c]].rs, dr, why, size))
			return false;
		seen[c]++;
	}
	for (c = 0; c < NCHAINS; c++)
		if (seen[c] != s->ch[c].n) {
			snprintf(why, size, "chain %s: %d rules dumped, model has %d",
				 chain_name[c], seen[c], s->ch[c].n);
			return false;
		}
	/* handles, for later replace/delete */
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < d->n; i++)
		for (c = 0; c < NCHAINS; c++)
			if (!strcmp(d->r[i].chain, chain_name[c])) {
				s->ch[c].rules[seen[c]].handle = d->r[i].handle;
				s->ch[c].rules[seen[c]++].rule_id = 0;
			}
	return true;
}

static void fail(struct fz *fz, enum fail_kind k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct fz *fz, enum fail_kind k, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int i;

	fz->st.fails[k]++;
	fz->case_failed = true;
	sappend(fz->obuf, sizeof(fz->obuf), " FAIL:%s", fail_name[k]);
	if (fz->shown >= fz->o.show)
		return;
	fz->shown++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "FAIL case %" PRIu64 ": %s: %s\n  case: %s\n", fz->cs->id,
		fail_name[k], msg, fz->cs->desc);
	for (i = 0; i < fz->cs->nrules; i++)
		fprintf(stderr, "  rule%d: %s (model: %s%s)\n", i, fz->cs->rules[i].desc,
			errname(fz->cs->rules[i].init_err),
			fz->cs->rules[i].quirk ? ", u8-truncation quirk" : "");
	fprintf(stderr, "  replay: --seed %" PRIu64 " --start %" PRIu64 " --cases 1%s%s%s%s\n",
		fz->o.seed, fz->cs->id, fz->o.in_tree ? " --in-tree" : "",
		fz->o.no_cgroupv2 ? " --no-cgroupv2" : "",
		fz->o.no_socket_output ? " --no-socket-output" : "",
		fz->o.no_local_route6 ? " --no-local-route6" : "");
}

static void tally(struct fz *fz, enum tkind tk, int err, enum verdict v)
{
	struct stats *st = &fz->st;

	st->batches[tk]++;
	if (err <= MAX_ERRNO)
		st->by_errno[tk][err]++;
	else
		st->other_errno[tk]++;
	if (v == V_REJECT)
		st->expected_reject[tk]++;
	else if (v == V_EITHER)
		st->expected_either[tk]++;
}

/* Run a phase; returns false when the case cannot go on. */
static bool run_phase(struct fz *fz, const struct casespec *cs, int p, struct mstate *s)
{
	struct mstate next, old = *s;
	struct outcome oc;
	struct dump d;
	enum verdict v;
	bool quirk;
	char why[256] = "";
	int experr;

	v = model_phase(cs, &cs->ph[p], s, &next, &experr, &quirk);
	build_phase(fz, cs, &cs->ph[p], s);
	exchange(fz, fz->nl.b, cs->fam->nfproto, &oc, &d);
	if (!oc.proto && d.intr)		/* raced with nothing? dump again */
		exchange(fz, NULL, cs->fam->nfproto, &oc, &d);

	sappend(fz->obuf, sizeof(fz->obuf), " p%d=%s%s%s", p, errname(oc.err),
		oc.err ? "@" : "", oc.err ? oc.where : "");
	tally(fz, cs->tk, oc.err, v);

	if (oc.proto) {
		fail(fz, F_PROTO, "phase %d: %s", p, oc.why);
		return false;
	}
	if (oc.err && transient_errno(oc.err)) {
		fz->st.transient++;
		sappend(fz->obuf, sizeof(fz->obuf), " (transient)");
		if (!state_matches(s, &d, why, sizeof(why)))
			fail(fz, F_STATE, "phase %d: after %s: %s", p, errname(oc.err), why);
		return false;
	}
	if (!oc.err) {
		if (v == V_REJECT) {
			fail(fz, F_UNEXP_ACCEPT, "phase %d accepted, model expected %s",
			     p, errname(experr));
			return false;
		}
		if (quirk) {
			fz->st.quirks++;
			sappend(fz->obuf, sizeof(fz->obuf), " (u8-quirk)");
		}
		if (!state_matches(&next, &d, why, sizeof(why))) {
			fail(fz, F_MISMATCH, "phase %d: %s", p, why);
			return false;
		}
		*s = next;
		return true;
	}
	/* rejected */
	if (v == V_ACCEPT)
		fail(fz, F_UNEXP_REJECT, "phase %d: %s at %s, model expected acceptance",
		     p, errname(oc.err), oc.where);
	else if (v == V_REJECT && experr != oc.err) {
		fz->st.errno_model_diff++;
		if (fz->o.verbose)
			printf("  note: phase %d: %s at %s, model's first error %s\n", p,
			       errname(oc.err), oc.where, errname(experr));
	}
	if (!state_matches(&old, &d, why, sizeof(why))) {
		fail(fz, F_STATE, "phase %d: rejected (%s) but: %s", p, errname(oc.err), why);
		return false;
	}
	*s = old;
	return false;
}

/* delete the table if it is there; must work */
static void cleanup(struct fz *fz, const struct casespec *cs)
{
	struct outcome oc;
	struct dump d;

	/* whatever the model thinks: ask */
	exchange(fz, NULL, cs->fam->nfproto, &oc, &d);
	if (!d.table)
		return;
	batch_start(&fz->nl, cs->fam->nfproto);
	put_ftable(fz, true);
	batch_end(&fz->nl);
	exchange(fz, fz->nl.b, cs->fam->nfproto, &oc, &d);
	if (oc.proto || oc.err || d.table) {
		fail(fz, F_CLEANUP, "DELTABLE: %s %s%s", errname(oc.err), oc.why,
		     d.table ? " (table still there)" : "");
		die("cannot clean up table %s in family %u: giving up", TABLE_NAME,
		    cs->fam->nfproto);
	}
}

static void run_case(struct fz *fz, uint64_t id)
{
	struct casespec cs;
	struct mstate s;
	int p;

	gen_case(fz, id, &cs);
	if (fz->o.verbose)
		printf("case %" PRIu64 ": %s\n", id, cs.desc);
	fz->cs = &cs;
	fz->case_failed = false;
	fz->obuf[0] = '\0';
	memset(&s, 0, sizeof(s));

	for (p = 0; p < cs.nphases; p++)
		if (!run_phase(fz, &cs, p, &s))
			break;
	/* a rule accepted without its model: do not leave it behind */
	if (s.table || fz->case_failed || p < cs.nphases || cs.scen != S_INBATCH)
		cleanup(fz, &cs);

	fz->st.cases++;
	if (fz->case_failed)
		fz->st.failed_cases++;
	if (fz->log) {
		int i;

		fprintf(fz->log, "%" PRIu64 " %s", id, cs.desc);
		for (i = 0; i < cs.nrules; i++)
			if (cs.rules[i].tk != TK_NONE)
				fprintf(fz->log, " | r%d: %s {%s%s}", i, cs.rules[i].desc,
					errname(cs.rules[i].init_err),
					cs.rules[i].quirk ? ",u8-quirk" : "");
		fprintf(fz->log, " =>%s\n", fz->obuf);
	}
	if (fz->o.verbose) {
		printf("  =>%s\n", fz->obuf);
		for (p = 0; p < cs.nrules; p++)
			printf("  rule%d: %s (model %s)\n", p, cs.rules[p].desc,
			       errname(cs.rules[p].init_err));
	}
	fz->cs = NULL;
}

/* ------------------------------------------------------------------ probes */

/*
 * A fresh table of the family and, with rs, a base chain at hook holding
 * that rule; returns 0 or the errno.
 */
static int probe_batch(struct fz *fz, uint8_t family, const struct hookdef *hook,
		       const struct rulespec *rs)
{
	struct outcome oc;
	struct dump d;
	int err;

	batch_start(&fz->nl, family);
	put_ftable(fz, false);
	if (rs) {
		put_fchain(fz, CH_B, hook);
		put_rule(fz, CH_B, rs, 0, 0);
	}
	batch_end(&fz->nl);
	exchange(fz, fz->nl.b, family, &oc, &d);
	if (oc.proto)
		die("probe: %s", oc.why);
	err = oc.err;
	if (d.table) {
		batch_start(&fz->nl, family);
		put_ftable(fz, true);
		batch_end(&fz->nl);
		exchange(fz, fz->nl.b, family, &oc, &d);
		if (oc.proto || oc.err)
			die("probe: cannot delete the probe table: %s",
			    oc.proto ? oc.why : errname(oc.err));
	}
	return err;
}

/* one rule in a fresh table of the probe family (inet, else ip) */
static int probe_rule(struct fz *fz, const struct hookdef *hook, const struct rulespec *rs)
{
	return probe_batch(fz, fz->pfam, hook, rs);
}

/*
 * Which table families this kernel has: a kernel built without IPv6 has
 * no inet or ip6 tables (NF_TABLES_INET/IPV6), one may lack bridge, netdev
 * or arp.  nf_tables refuses a table of a family it lacks with EOPNOTSUPP,
 * as it does the garbage families; the model then expects that.
 */
static void probe_families(struct fz *fz)
{
	struct famdef *f;
	int err;

	for (f = families; f < families + ARRAY_SIZE(families); f++) {
		if (!f->supported)
			continue;
		err = probe_batch(fz, f->nfproto, NULL, NULL);
		if (err == EPERM)
			die("EPERM from nf_tables: run as root in a netns or in `unshare -Urn`");
		if (err && err != EOPNOTSUPP)
			die("probe: a table of family %s: %s", f->name, errname(err));
		f->supported = !err;
	}
	fz->pfam = families[0].supported ? NFPROTO_INET : NFPROTO_IPV4;
	if (!families[1].supported)
		die("probe: this kernel has no ip tables");
}

/* a target with plain attributes 1..n = vals (no mutation) */
static void probe_target(struct rulespec *rs, enum tkind tk, const uint16_t *types,
			 const uint32_t *vals, int n)
{
	struct rawlist l = { 0 };
	int i;

	memset(rs, 0, sizeof(*rs));
	rs->tk = tk;
	for (i = 0; i < n; i++)
		raw_add_u32(&l, -1, types[i], vals[i]);
	serialise(&l, rs);
}

/*
 * Which attributes have a policy maximum (newer kernels refuse a tproxy
 * family or socket key/level above 255 with ERANGE while parsing; older
 * ones stored them in a u8; 7.3 bounds socket's DREG by NFT_REG32_MAX)?
 * Each attribute alone, 0x100: ERANGE from the policy, else EINVAL for the
 * missing ones; then 24 tells a register bound from 255.
 */
static void probe_pmax(struct fz *fz, const struct hookdef *pre)
{
	struct rulespec rs;
	uint16_t type;
	uint32_t v = 0x100, v24 = 24;	/* 24: one above NFT_REG32_MAX */
	int k, err;

	for (k = TK_TPROXY; k < TK_NUM; k++) {
		unsigned int max = k == TK_TPROXY ? NFTA_TPROXY_MAX : NFTA_SOCKET_MAX;

		if (!fz->have[k])
			continue;
		for (type = 1; type <= max; type++) {
			probe_target(&rs, k, &type, &v, 1);
			err = probe_rule(fz, pre, &rs);
			if (err == ERANGE) {
				fz->pmax[k] |= 1U << type;
				/* alone, nothing but the policy can refuse 24 */
				probe_target(&rs, k, &type, &v24, 1);
				fz->pmaxv[k][type] =
					probe_rule(fz, pre, &rs) == ERANGE ? 23 : 255;
			} else if (err != EINVAL)
				die("probe: %s with attribute %u = 0x100 alone: %s",
				    tk_name[k], type, errname(err));
		}
	}
}

static void probe_kernel(struct fz *fz)
{
	static const struct hookdef pre = { "prerouting", NF_INET_PRE_ROUTING, false };
	static const uint16_t tp_types[] = { NFTA_TPROXY_FAMILY, NFTA_TPROXY_REG_PORT };
	static const uint32_t tp_vals[] = { NFPROTO_IPV4, NFT_REG32_00 };
	static const uint16_t sk_types[] = { NFTA_SOCKET_KEY, NFTA_SOCKET_DREG };
	static const uint32_t sk_vals[] = { NFT_SOCKET_TRANSPARENT, NFT_REG_1 };
	struct rulespec rs;
	int err;

	probe_families(fz);

	/* a tproxy port load from a register nothing stored into */
	probe_target(&rs, TK_TPROXY, tp_types, tp_vals, 2);
	err = probe_rule(fz, &pre, &rs);
	if (err == EPERM)
		die("EPERM from nf_tables: run as root in a netns or in `unshare -Urn`");
	if (err == ENODATA) {
		fz->have[TK_TPROXY] = true;
		fz->reg_init = true;
	} else if (err == 0) {
		fz->have[TK_TPROXY] = true;
		fz->reg_init = false;
	} else if (err == ENOENT) {
		fz->have[TK_TPROXY] = false;
	} else {
		die("probe: tproxy rule in prerouting: %s", errname(err));
	}

	/* the same with the register filled: must pass */
	if (fz->have[TK_TPROXY]) {
		rs.pfx[rs.npfx++] = (struct pfx){ PFX_IMM, NFT_REG32_00, 2, 0 };
		err = probe_rule(fz, &pre, &rs);
		if (err)
			die("probe: a valid tproxy rule is refused: %s", errname(err));
	}

	probe_target(&rs, TK_SOCKET, sk_types, sk_vals, 2);
	err = probe_rule(fz, &pre, &rs);
	if (err == ENOENT)
		fz->have[TK_SOCKET] = false;
	else if (err == 0)
		fz->have[TK_SOCKET] = true;
	else
		die("probe: a valid socket rule is refused: %s", errname(err));

	probe_pmax(fz, &pre);
	if (fz->o.reg_init_check >= 0)
		fz->reg_init = fz->o.reg_init_check;
}

/* ------------------------------------------------------------------ namespaces */

static bool same_ns(const char *a, const char *b)
{
	struct stat sa, sb;

	if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
		return false;		/* cannot tell: the kernel will say EPERM */
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		die("write %s: %m", path);
	close(fd);
}

/*
 * Move into a cgroup `depth` levels below ours and unshare a cgroup
 * namespace there, so socket cgroupv2 levels are relative to a root that
 * is not the top: level + depth > 255 must be refused (without a WARN).
 */
static char cg_base[PATH_MAX / 2], cg_leaf[PATH_MAX];

static void cgroupns_enter(struct fz *fz, int depth)
{
	char line[PATH_MAX], path[PATH_MAX], pid[32];
	const char *rel = NULL;
	unsigned int level = 0;
	FILE *f;
	int i;

	f = fopen("/proc/self/cgroup", "r");
	if (!f)
		die("/proc/self/cgroup: %m");
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = '\0';
			rel = line + 3;
			break;
		}
	fclose(f);
	if (!rel)
		die("--cgroupns-depth: not on cgroup v2");
	for (i = 0; rel[i]; i++)
		if (rel[i] == '/' && rel[i + 1])
			level++;
	if ((size_t)snprintf(cg_base, sizeof(cg_base), "/sys/fs/cgroup%s",
			     strcmp(rel, "/") ? rel : "") >= sizeof(cg_base))
		die("cgroup path too long");
	if ((size_t)snprintf(path, sizeof(path), "%s/nfnl-fuzz.%d", cg_base,
			     (int)getpid()) >= sizeof(path))
		die("cgroup path too long");
	for (i = 0; i < depth; i++) {
		if (i)
			sappend(path, sizeof(path), "/l%d", i);
		if (mkdir(path, 0755) < 0)
			die("mkdir %s: %m", path);
	}
	if (depth > 0) {
		memcpy(cg_leaf, path, sizeof(cg_leaf));
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		if ((size_t)snprintf(line, sizeof(line), "%s/cgroup.procs", path) >= sizeof(line))
			die("cgroup path too long");
		write_file(line, pid);
	}
	if (unshare(CLONE_NEWCGROUP) < 0)
		die("unshare(CLONE_NEWCGROUP): %m");
	fz->o.cgroup_level = level + depth;
}

static void cgroupns_leave(void)
{
	char path[PATH_MAX + 16], pid[32], *slash;

	if (!cg_leaf[0])
		return;
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if ((size_t)snprintf(path, sizeof(path), "%s/cgroup.procs", cg_base) >= sizeof(path))
		return;
	write_file(path, pid);
	for (;;) {
		if (rmdir(cg_leaf) < 0)
			fprintf(stderr, "nfnl-fuzz: rmdir %s: %m\n", cg_leaf);
		slash = strrchr(cg_leaf, '/');
		if (!slash || strncmp(cg_leaf, cg_base, strlen(cg_base)) ||
		    slash - cg_leaf <= (ptrdiff_t)strlen(cg_base))
			break;
		*slash = '\0';
	}
}

/* ------------------------------------------------------------------ report */

static void report(const struct fz *fz, double secs)
{
	const struct stats *st = &fz->st;
	/* (not "st->cases ? ...": checkpatch takes "cases ?" for a label) */
	uint64_t last = fz->o.start + st->cases - !!st->cases;
	double rate = 0.0;
	uint64_t total = 0;
	int e, k;

	if (secs > 0)
		rate = st->cases / secs;

	printf("\n== nfnl-fuzz: seed %" PRIu64 ", cases %" PRIu64 "..%" PRIu64
	       ", %" PRIu64 " cases in %.1f s (%.0f cases/s)\n", fz->o.seed, fz->o.start,
	       last, st->cases, secs, rate);
	printf("model: %s%s%s; loads from unset registers %s; cgroupns level %u;\n"
	       "  attributes with a policy maximum (255; 23 for a register): tproxy %#x, socket %#x (bit per type)\n",
	       fz->o.in_tree ? "in-tree (u8 truncation of tproxy family and socket key tolerated)" :
	       "strict", fz->o.no_cgroupv2 ? ", no cgroupv2" : "",
	       fz->o.no_socket_output ? ", no socket in output" : "", fz->reg_init ? "refused (ENODATA)" : "allowed",
	       fz->o.cgroup_level, fz->pmax[TK_TPROXY], fz->pmax[TK_SOCKET]);
	printf("\noutcomes by errno, per batch holding the expression:\n");
	printf("  %-12s %10s %10s\n", "", "tproxy", "socket");
	for (e = 0; e <= MAX_ERRNO; e++) {
		if (!st->by_errno[TK_TPROXY][e] && !st->by_errno[TK_SOCKET][e])
			continue;
		printf("  %-12s %10" PRIu64 " %10" PRIu64 "\n", errname(e),
		       st->by_errno[TK_TPROXY][e], st->by_errno[TK_SOCKET][e]);
	}
	if (st->other_errno[TK_TPROXY] || st->other_errno[TK_SOCKET])
		printf("  %-12s %10" PRIu64 " %10" PRIu64 "\n", "other",
		       st->other_errno[TK_TPROXY], st->other_errno[TK_SOCKET]);
	printf("  %-12s %10" PRIu64 " %10" PRIu64 "\n", "batches",
	       st->batches[TK_TPROXY], st->batches[TK_SOCKET]);
	printf("  %-12s %10" PRIu64 " %10" PRIu64 "\n", "model:reject",
	       st->expected_reject[TK_TPROXY], st->expected_reject[TK_SOCKET]);
	printf("  %-12s %10" PRIu64 " %10" PRIu64 "\n", "model:either",
	       st->expected_either[TK_TPROXY], st->expected_either[TK_SOCKET]);
	printf("\naccepted batches: %" PRIu64 " (tproxy %" PRIu64 ", socket %" PRIu64 ")\n",
	       st->by_errno[TK_TPROXY][0] + st->by_errno[TK_SOCKET][0],
	       st->by_errno[TK_TPROXY][0], st->by_errno[TK_SOCKET][0]);
	printf("transient errors (ENOMEM, EBUSY, ...): %" PRIu64 "\n", st->transient);
	printf("accepted only through upstream's u8 truncation: %" PRIu64 "\n", st->quirks);
	printf("rejected with another errno than the model's first: %" PRIu64 " (info)\n",
	       st->errno_model_diff);
	printf("time per exchange (batch + GETTABLE + dump): accepted %.2f ms (%" PRIu64
	       "), rejected %.2f ms (%" PRIu64 "), queries only %.2f ms (%" PRIu64 ")\n",
	       st->xn[0] ? st->xt[0] * 1e3 / st->xn[0] : 0.0, st->xn[0],
	       st->xn[1] ? st->xt[1] * 1e3 / st->xn[1] : 0.0, st->xn[1],
	       st->xn[2] ? st->xt[2] * 1e3 / st->xn[2] : 0.0, st->xn[2]);
	for (k = 0; k < F_NUM; k++) {
		printf("%s: %" PRIu64 "\n", fail_name[k], st->fails[k]);
		total += st->fails[k];
	}
	printf("RESULT: %s (%" PRIu64 " failed cases)\n", total ? "FAIL" : "PASS",
	       st->failed_cases);
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
	fprintf(f,
"usage: nfnl-fuzz [options]\n"
"  --seed N            random seed (default 1)\n"
"  --cases N           number of cases (default 1000)\n"
"  --start N           first case id (default 0): split a run over processes\n"
"  --expr tproxy|socket|both   expressions to fuzz (default both)\n"
"  --log FILE          one line per case: id, description, outcome\n"
"  --in-tree           model upstream's u8 truncation of the tproxy family and\n"
"                      the socket key (the in-tree modules accept 0x102 as 2)\n"
"  --no-cgroupv2       the socket module refuses the cgroupv2 key: in-tree\n"
"                      before 5.13, or a kernel whose sockets carry no cgroup\n"
"  --no-socket-output  socket is refused in output chains (in-tree, < 5.18)\n"
"  --no-local-route6   tproxy local-route is refused but for IPv4 (ours, < 6.1)\n"
"  --reg-init-check yes|no|auto  loads from unset registers refused? (auto: probe)\n"
"  --cgroupns-depth N  run in a new cgroup namespace N levels below our cgroup\n"
"  --cgroup-level N    level of our cgroup namespace root (default 0)\n"
"  --allow-init-netns  run in the initial network namespace (not advised)\n"
"  --show N            failures printed in full (default 20)\n"
"  --progress SECS     a progress line every SECS seconds (default 0: none)\n"
"  -v, --verbose       every case on stdout\n"
"Exit: 0 no failure, 1 failures, 2 error, 4 expression not available (skip).\n"
"Run it in a network namespace: `unshare -n` as root, or `unshare -Urn`.\n");
}

static uint64_t num_arg(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		die("bad %s '%s'", what, s);
	return v;
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "cases", required_argument, NULL, 'n' },
		{ "start", required_argument, NULL, 'S' },
		{ "expr", required_argument, NULL, 'e' },
		{ "log", required_argument, NULL, 'l' },
		{ "in-tree", no_argument, NULL, 'I' },
		{ "no-cgroupv2", no_argument, NULL, 'G' },
		{ "no-socket-output", no_argument, NULL, 'O' },
		{ "no-local-route6", no_argument, NULL, '6' },
		{ "reg-init-check", required_argument, NULL, 'R' },
		{ "cgroupns-depth", required_argument, NULL, 'C' },
		{ "cgroup-level", required_argument, NULL, 'L' },
		{ "allow-init-netns", no_argument, NULL, 'A' },
		{ "show", required_argument, NULL, 'w' },
		{ "progress", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct opts){
		.seed = 1, .cases = 1000, .exprs = (1U << TK_TPROXY) | (1U << TK_SOCKET),
		.reg_init_check = -1, .cgroupns_depth = -1, .show = 20,
	};
	while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o->seed = num_arg(optarg, "seed");
			break;
		case 'n':
			o->cases = num_arg(optarg, "case count");
			break;
		case 'S':
			o->start = num_arg(optarg, "start");
			break;
		case 'e':
			if (!strcmp(optarg, "tproxy"))
				o->exprs = 1U << TK_TPROXY;
			else if (!strcmp(optarg, "socket"))
				o->exprs = 1U << TK_SOCKET;
			else if (!strcmp(optarg, "both"))
				o->exprs = (1U << TK_TPROXY) | (1U << TK_SOCKET);
			else
				die("--expr: tproxy, socket or both");
			break;
		case 'l':
			o->log_path = optarg;
			break;
		case 'I':
			o->in_tree = true;
			break;
		case 'G':
			o->no_cgroupv2 = true;
			break;
		case 'O':
			o->no_socket_output = true;
			break;
		case '6':
			o->no_local_route6 = true;
			break;
		case 'R':
			if (!strcmp(optarg, "yes"))
				o->reg_init_check = 1;
			else if (!strcmp(optarg, "no"))
				o->reg_init_check = 0;
			else if (!strcmp(optarg, "auto"))
				o->reg_init_check = -1;
			else
				die("--reg-init-check: yes, no or auto");
			break;
		case 'C':
			o->cgroupns_depth = (int)num_arg(optarg, "depth");
			break;
		case 'L':
			o->cgroup_level = (unsigned int)num_arg(optarg, "level");
			break;
		case 'A':
			o->allow_init_netns = true;
			break;
		case 'w':
			o->show = (unsigned int)num_arg(optarg, "count");
			break;
		case 'p':
			o->progress = (unsigned int)num_arg(optarg, "seconds");
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(EXIT_ERROR);
		}
	}
	if (optind < argc)
		die("unexpected argument '%s'", argv[optind]);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *exprs_name(unsigned int exprs)
{
	if (exprs == 1U << TK_TPROXY)
		return "tproxy";
	if (exprs == 1U << TK_SOCKET)
		return "socket";
	return "both";
}

int main(int argc, char **argv)
{
	static struct fz fz;
	const char *model, *unset_loads;
	double t0, last;
	uint64_t i;
	int k;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_opts(argc, argv, &fz.o);
	if (fz.o.no_socket_output)
		socket_hooks &= ~(1U << NF_INET_LOCAL_OUT);
	if (!fz.o.allow_init_netns && same_ns("/proc/self/ns/net", "/proc/1/ns/net"))
		die("refusing to fuzz the initial network namespace: use `unshare -n`, `unshare -Urn` or `ip netns exec` (or --allow-init-netns)");
	if (fz.o.cgroupns_depth >= 0)
		cgroupns_enter(&fz, fz.o.cgroupns_depth);
	if (fz.o.log_path) {
		fz.log = fopen(fz.o.log_path, "w");
		if (!fz.log)
			die("%s: %m", fz.o.log_path);
	}
	nl_open(&fz.nl, 60);
	probe_kernel(&fz);
	for (k = TK_TPROXY; k < TK_NUM; k++) {
		if (!(fz.o.exprs & (1U << k)))
			continue;
		if (!fz.have[k]) {
			printf("nfnl-fuzz: SKIP: no '%s' expression in this kernel\n", tk_name[k]);
			return EXIT_SKIP;
		}
	}
	model = fz.o.in_tree ? "in-tree" : "strict";
	unset_loads = fz.reg_init ? "refused" : "allowed";
	printf("nfnl-fuzz: seed %" PRIu64 ", cases %" PRIu64 " from %" PRIu64
	       ", expr %s, model %s, unset-register loads %s, policy max tproxy %#x socket %#x\n",
	       fz.o.seed, fz.o.cases, fz.o.start, exprs_name(fz.o.exprs),
	       model, unset_loads, fz.pmax[TK_TPROXY], fz.pmax[TK_SOCKET]);
	printf("nfnl-fuzz: table families of this kernel:");
	for (k = 0; k < (int)ARRAY_SIZE(families) && families[k].nhooks; k++)
		if (families[k].supported)
			printf(" %s", families[k].name);
	printf("\n");

	t0 = last = now();
	for (i = 0; i < fz.o.cases; i++) {
		run_case(&fz, fz.o.start + i);
		if (fz.o.progress && now() - last >= fz.o.progress) {
			last = now();
			printf("progress: %" PRIu64 " cases, %.0f/s, %" PRIu64 " failed\n",
			       fz.st.cases, fz.st.cases / (last - t0), fz.st.failed_cases);
		}
	}
	report(&fz, now() - t0);
	if (fz.log && fclose(fz.log))
		die("%s: %m", fz.o.log_path);
	nl_close(&fz.nl);
	cgroupns_leave();
	return fz.st.failed_cases ? EXIT_FAILED : 0;
}

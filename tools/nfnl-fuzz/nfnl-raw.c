// SPDX-License-Identifier: GPL-2.0
/*
 * nfnl-raw: send one nf_tables batch with a tproxy or socket expression
 * straight to the kernel.
 *
 * nft refuses some rules in userspace (bridge/netdev/arp tables, no address
 * and no port, ...); the selftests send them with this tool to check that
 * the kernel refuses them too, and with --existing whole rules for traffic
 * tests when nft lacks nft-tproxy's syntax.
 *
 * One batch: NEWTABLE, NEWCHAIN (base chain at --hook), and a rule
 * `meta l4proto tcp; [immediate addr]; [immediate port]; tproxy`.
 * With --existing the table and chain (--chain) must exist and only the
 * rule is added; --nfproto, --l4proto, --dport match first, --mark and
 * --verdict come after the expression: `meta nfproto ipv4 meta l4proto tcp
 * th dport 80 tproxy to :3129 fail-closed meta mark set 1 accept`
 * (--tproxy-flags) or `... socket uid 1001 drop` (--socket-key uid
 * --socket-value 1001).  With --jump-from HOOK the rule goes into a regular
 * chain "inner" that a base chain "outer" at HOOK jumps to.  With
 * --socket-key the rule holds a socket expression instead (`socket KEY =>
 * DREG [level LEVEL]`); "none" leaves KEY or DREG out.  --replace H makes
 * the rule replace rule H; --delete H and --delete-table send only that
 * deletion.  --fail-nth N fails the Nth allocation the kernel makes while
 * it handles the batch (allocation-failure injection, as syzkaller does).
 *
 * Prints "ACCEPTED" (exit 0) or "REJECTED errno=NAME (text) msg=MSG"
 * (exit 1); exit 2 on a usage or socket error.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nftp.h>

#include "nfnl.h"

#define NONE	(-1L)			/* an option not given, or "none" */

struct named {
	const char *name;
	long val;
};

static const struct named table_families[] = {
	{ "inet", NFPROTO_INET }, { "ip", NFPROTO_IPV4 }, { "arp", NFPROTO_ARP },
	{ "netdev", NFPROTO_NETDEV }, { "bridge", NFPROTO_BRIDGE },
	{ "ip6", NFPROTO_IPV6 }, { NULL, 0 },
};

/* NF_INET_*; bridge uses the same numbers for these five */
static const struct named ip_hooks[] = {
	{ "prerouting", 0 }, { "input", 1 }, { "forward", 2 }, { "output", 3 },
	{ "postrouting", 4 }, { NULL, 0 },
};
static const struct named arp_hooks[] = { { "input", 0 }, { "output", 1 }, { NULL, 0 } };
static const struct named netdev_hooks[] = { { "ingress", 0 }, { NULL, 0 } };

static const struct named tproxy_families[] = {
	{ "unspec", NFPROTO_UNSPEC }, { "ip", NFPROTO_IPV4 }, { "ip6", NFPROTO_IPV6 },
	{ "none", NONE }, { NULL, 0 },
};

static const struct named socket_keys[] = {
	{ "transparent", NFT_SOCKET_TRANSPARENT }, { "mark", NFT_SOCKET_MARK },
	{ "wildcard", NFT_SOCKET_WILDCARD }, { "cgroupv2", 3 /* NFT_SOCKET_CGROUPV2 */ },
	{ "uid", NFT_SOCKET_NFTP_UID }, { "gid", NFT_SOCKET_NFTP_GID },
	{ "none", NONE }, { NULL, 0 },
};

/* the size of a socket key's result, for the cmp after it */
static const struct named socket_key_len[] = {
	{ "transparent", 1 }, { "wildcard", 1 }, { "mark", 4 }, { "cgroupv2", 8 },
	{ "uid", 4 }, { "gid", 4 }, { NULL, 0 },
};

static const struct named l4protos[] = {
	{ "tcp", 6 }, { "udp", 17 }, { "icmp", 1 }, { "ipv6-icmp", 58 }, { NULL, 0 },
};

static const struct named nfprotos[] = { { "ipv4", 2 }, { "ipv6", 10 }, { NULL, 0 } };
static const struct named verdicts[] = { { "accept", NF_ACCEPT }, { "drop", NF_DROP }, { NULL, 0 } };

struct args {
	const char *table_family, *table, *hook, *chain, *dev, *jump_from;
	long priority;
	bool existing, jump_first, no_l4, no_tproxy;
	long tproxy_family;
	const char *addr;
	long addr_reg, port, port_reg;
	long l4proto, nfproto, dport;
	long tproxy_flags, mark, verdict;
	const char *socket_key;		/* NULL: a tproxy rule */
	long socket_dreg, socket_level, socket_value;
	long replace, delete;		/* a rule handle, or NONE */
	bool delete_table;
	unsigned int timeout, fail_nth;
};

static long num(const char *s, const char *opt)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || *end)
		die("%s: bad number '%s'", opt, s);
	return v;
}

/* the value of the name s in the table t: true and *val, or false */
static bool find(const struct named *t, const char *s, long *val)
{
	for (; t->name; t++) {
		if (!strcmp(t->name, s)) {
			*val = t->val;
			return true;
		}
	}
	return false;
}

static long lookup(const struct named *t, const char *s, const char *opt)
{
	long v;

	if (!find(t, s, &v))
		die("%s: unknown value '%s'", opt, s);
	return v;
}

/* a name of the table, or a number */
static long lookup_num(const struct named *t, const char *s, const char *opt)
{
	long v;

	return find(t, s, &v) ? v : num(s, opt);
}

/* would the kernel accept a load/store of len bytes at register reg? */
static bool reg_ok(long reg, unsigned int len)
{
	long off;

	if (reg >= NFT_REG_1 && reg <= NFT_REG_4)
		off = reg * 16;
	else if (reg >= NFT_REG32_00 && reg <= NFT_REG32_15)
		off = 16 + (reg - NFT_REG32_00) * 4;
	else
		return false;
	return off + len <= 80;
}

static uint32_t hooknum(const char *family, const char *hook)
{
	const struct named *t = ip_hooks;
	long v;

	if (!strcmp(family, "arp"))
		t = arp_hooks;
	else if (!strcmp(family, "netdev"))
		t = netdev_hooks;
	if (!find(t, hook, &v))
		die("hook %s does not exist for family %s", hook, family);
	return (uint32_t)v;
}

/* meta nfproto, meta l4proto, th dport: the rule's matches */
static void put_matches(struct nlmsghdr *nlh, const struct args *a)
{
	uint8_t b;
	uint16_t port;

	if (a->nfproto != NONE) {
		b = (uint8_t)a->nfproto;
		expr_meta_load(nlh, NFT_META_NFPROTO, NFT_REG_1);
		expr_cmp_eq(nlh, NFT_REG_1, &b, 1);
	}
	if (!a->no_l4) {
		b = (uint8_t)a->l4proto;
		expr_meta_load(nlh, NFT_META_L4PROTO, NFT_REG_1);
		expr_cmp_eq(nlh, NFT_REG_1, &b, 1);
	}
	if (a->dport != NONE) {
		port = htons((uint16_t)a->dport);
		expr_payload(nlh, NFT_REG_1, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
		expr_cmp_eq(nlh, NFT_REG_1, &port, 2);
	}
}

/* meta mark set, verdict: what follows the expression */
static void put_actions(struct nlmsghdr *nlh, const struct args *a)
{
	uint32_t mark;

	if (a->mark != NONE) {
		mark = (uint32_t)a->mark;
		expr_imm(nlh, NFT_REG_1, &mark, 4);
		expr_meta_store(nlh, NFT_META_MARK, NFT_REG_1);
	}
	if (a->verdict != NONE)
		expr_verdict(nlh, (int32_t)a->verdict, NULL);
}

static void put_socket(struct nlmsghdr *nlh, const struct args *a)
{
	struct nlattr *elem, *data;
	long key = lookup_num(socket_keys, a->socket_key, "--socket-key");
	long len = 0;
	uint64_t value = (uint64_t)a->socket_value;

	elem = expr_start(nlh, "socket");
	data = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
	if (key != NONE)
		put_be32(nlh, NFTA_SOCKET_KEY, (uint32_t)key);
	if (a->socket_dreg != NONE)
		put_be32(nlh, NFTA_SOCKET_DREG, (uint32_t)a->socket_dreg);
	if (a->socket_level != NONE)
		put_be32(nlh, NFTA_SOCKET_LEVEL, (uint32_t)a->socket_level);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, elem);

	/*
	 * A cmp on the result, so that nft lists the rule (a bare load lists
	 * as nothing): `socket KEY 0`, or --socket-value.  Host byte order,
	 * as the kernel stores the key.
	 */
	find(socket_key_len, a->socket_key, &len);
	if (len && a->socket_dreg != NONE && reg_ok(a->socket_dreg, (unsigned int)len)) {
		if (len == 1) {
			uint8_t v8 = (uint8_t)value;

			expr_cmp_eq(nlh, (uint32_t)a->socket_dreg, &v8, 1);
		} else if (len == 4) {
			uint32_t v32 = (uint32_t)value;

			expr_cmp_eq(nlh, (uint32_t)a->socket_dreg, &v32, 4);
		} else {
			expr_cmp_eq(nlh, (uint32_t)a->socket_dreg, &value, 8);
		}
	}
}

static void put_tproxy(struct nlmsghdr *nlh, const struct args *a)
{
	struct nlattr *elem, *data;
	uint8_t addr[16];
	size_t alen = 0;
	uint16_t port;

	/*
	 * Fill the registers tproxy reads; for a bad register (the point of
	 * the case) fill a good one, so that only tproxy can fail.
	 */
	if (a->addr) {
		if (inet_pton(AF_INET6, a->addr, addr) == 1)
			alen = 16;
		else if (inet_pton(AF_INET, a->addr, addr) == 1)
			alen = 4;
		else
			die("--addr: bad address '%s'", a->addr);
		expr_imm(nlh, reg_ok(a->addr_reg, alen) ? (uint32_t)a->addr_reg : NFT_REG_2,
			 addr, alen);
	}
	if (a->port != NONE) {
		port = htons((uint16_t)a->port);
		expr_imm(nlh, reg_ok(a->port_reg, 2) ? (uint32_t)a->port_reg : NFT_REG_1,
			 &port, 2);
	}
	elem = expr_start(nlh, "tproxy");
	data = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
	if (a->tproxy_family != NONE)
		put_be32(nlh, NFTA_TPROXY_FAMILY, (uint32_t)a->tproxy_family);
	if (a->addr)
		put_be32(nlh, NFTA_TPROXY_REG_ADDR, (uint32_t)a->addr_reg);
	if (a->port != NONE)
		put_be32(nlh, NFTA_TPROXY_REG_PORT, (uint32_t)a->port_reg);
	if (a->tproxy_flags != NONE)
		put_be32(nlh, NFTA_TPROXY_NFTP_FLAGS, (uint32_t)a->tproxy_flags);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, elem);
}

static void put_rule(struct nfnl *nl, const struct args *a, const char *chain,
		     bool target)
{
	struct nlmsghdr *nlh;
	struct nlattr *list;
	char label[24];

	snprintf(label, sizeof(label), "NEWRULE(%s)", chain);
	if (target && a->replace != NONE) {
		nlh = batch_msg(nl, NFT_MSG_NEWRULE, NLM_F_REPLACE, label);
		mnl_attr_put_u64(nlh, NFTA_RULE_HANDLE, htobe64((uint64_t)a->replace));
	} else {
		nlh = batch_msg(nl, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, label);
	}
	mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, a->table);
	mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, chain);
	list = mnl_attr_nest_start(nlh, NFTA_RULE_EXPRESSIONS);
	if (!target) {
		expr_verdict(nlh, NFT_JUMP, "inner");
	} else if (a->socket_key) {
		if (a->existing)
			put_matches(nlh, a);
		put_socket(nlh, a);
		put_actions(nlh, a);
	} else {
		put_matches(nlh, a);
		put_tproxy(nlh, a);
		put_actions(nlh, a);
	}
	mnl_attr_nest_end(nlh, list);
	batch_msg_done(nl);
}

static void build(struct nfnl *nl, const struct args *a)
{
	struct nfnl_hook hook = { .prio = (int32_t)a->priority };
	bool target = a->socket_key || !a->no_tproxy;
	const char *chain = a->chain;

	if (!strcmp(a->table_family, "netdev"))
		hook.dev = a->dev;
	batch_start(nl, (uint8_t)lookup(table_families, a->table_family, "--table-family"));
	if (a->delete_table || a->delete != NONE) {
		if (a->delete_table) {
			put_table(nl, a->table, true);
		} else {
			struct nlmsghdr *nlh = batch_msg(nl, NFT_MSG_DELRULE, 0, "DELRULE");

			mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, a->table);
			mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, a->chain);
			mnl_attr_put_u64(nlh, NFTA_RULE_HANDLE, htobe64((uint64_t)a->delete));
			batch_msg_done(nl);
		}
		batch_end(nl);
		return;
	}
	if (!a->existing) {
		put_table(nl, a->table, false);
		if (a->jump_from) {
			put_chain(nl, a->table, "inner", NULL);
			hook.num = hooknum(a->table_family, a->jump_from);
			put_chain(nl, a->table, "outer", &hook);
			chain = "inner";
		} else {
			hook.num = hooknum(a->table_family, a->hook);
			put_chain(nl, a->table, a->chain, &hook);
		}
	}
	if (a->jump_from && (a->jump_first || !target))
		put_rule(nl, a, "outer", false);
	if (target)
		put_rule(nl, a, chain, true);
	if (a->jump_from && !a->jump_first && target)
		put_rule(nl, a, "outer", false);
	batch_end(nl);
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: nfnl-raw [options]\n"
"  --table-family F   inet, ip, ip6, arp, bridge, netdev (default ip)\n"
"  --table NAME       (default rawtest)\n"
"  --hook HOOK        the base chain's hook (default prerouting)\n"
"  --chain NAME       the chain of the rule (default c)\n"
"  --existing         the table and --chain exist: send only the rule\n"
"  --dev DEV          netdev: the ingress hook's device (default lo)\n"
"  --priority N       (default -150)\n"
"  --jump-from HOOK   the rule in regular chain 'inner', jumped to from a\n"
"                     base chain 'outer' at HOOK\n"
"  --jump-first       add the jump rule before the rule\n"
"  --tproxy-family F  ip, ip6, unspec, none (left out) or a number (default ip)\n"
"  --addr A           address loaded into the address register\n"
"  --addr-reg N       (default 2)\n"
"  --port N           port loaded into the port register\n"
"  --port-reg N       (default 1)\n"
"  --no-l4            no meta l4proto match before the expression\n"
"  --l4proto P        tcp, udp, icmp, ipv6-icmp (default tcp)\n"
"  --nfproto P        ipv4 or ipv6: a meta nfproto match first\n"
"  --dport N          a th dport match (after meta l4proto)\n"
"  --tproxy-flags N   NFTA_TPROXY_NFTP_FLAGS (1: fail-closed, 2: local-route)\n"
"  --mark N           meta mark set N after the expression\n"
"  --verdict V        accept or drop at the end of the rule\n"
"  --no-tproxy        control: table and chains only\n"
"  --socket-key K     a socket expression instead of tproxy: transparent,\n"
"                     mark, wildcard, cgroupv2, uid, gid, a number, or none\n"
"  --socket-dreg N    destination register, or none (default 1)\n"
"  --socket-level N   NFTA_SOCKET_LEVEL (cgroupv2)\n"
"  --socket-value N   the value the key is compared with (default 0)\n"
"  --replace H        the rule replaces rule handle H of --chain (--existing)\n"
"  --delete H         instead: delete rule handle H of --chain\n"
"  --delete-table     instead: delete the table\n"
"  --fail-nth N       fail the Nth allocation the kernel makes for the batch\n"
"  --timeout SECS     (default 10)\n"
"Prints ACCEPTED (exit 0) or REJECTED errno=NAME (text) msg=MSG (exit 1);\n"
"MSG is the label of the message answered, or COMMIT (the batch), SEND\n"
"(sendmsg failed) or LOST (an answer was lost).  With --fail-nth, then a\n"
"line \"fail-nth N: injected\" or \"fail-nth N: not reached\".\n");
}

static void parse_args(int argc, char **argv, struct args *a)
{
	enum {
		O_TFAM = 256, O_TABLE, O_HOOK, O_CHAIN, O_EXISTING, O_DEV, O_PRIO,
		O_JFROM, O_JFIRST, O_TPFAM, O_ADDR, O_ADDRREG, O_PORT, O_PORTREG,
		O_NOL4, O_L4, O_NFPROTO, O_DPORT, O_FLAGS, O_MARK, O_VERDICT,
		O_NOTPROXY, O_SKEY, O_SDREG, O_SLEVEL, O_SVALUE, O_TIMEOUT,
		O_REPLACE, O_DELETE, O_DELTABLE, O_FAILNTH,
	};
	static const struct option lo[] = {
		{ "table-family", required_argument, NULL, O_TFAM },
		{ "table", required_argument, NULL, O_TABLE },
		{ "hook", required_argument, NULL, O_HOOK },
		{ "chain", required_argument, NULL, O_CHAIN },
		{ "existing", no_argument, NULL, O_EXISTING },
		{ "dev", required_argument, NULL, O_DEV },
		{ "priority", required_argument, NULL, O_PRIO },
		{ "jump-from", required_argument, NULL, O_JFROM },
		{ "jump-first", no_argument, NULL, O_JFIRST },
		{ "tproxy-family", required_argument, NULL, O_TPFAM },
		{ "addr", required_argument, NULL, O_ADDR },
		{ "addr-reg", required_argument, NULL, O_ADDRREG },
		{ "port", required_argument, NULL, O_PORT },
		{ "port-reg", required_argument, NULL, O_PORTREG },
		{ "no-l4", no_argument, NULL, O_NOL4 },
		{ "l4proto", required_argument, NULL, O_L4 },
		{ "nfproto", required_argument, NULL, O_NFPROTO },
		{ "dport", required_argument, NULL, O_DPORT },
		{ "tproxy-flags", required_argument, NULL, O_FLAGS },
		{ "mark", required_argument, NULL, O_MARK },
		{ "verdict", required_argument, NULL, O_VERDICT },
		{ "no-tproxy", no_argument, NULL, O_NOTPROXY },
		{ "socket-key", required_argument, NULL, O_SKEY },
		{ "socket-dreg", required_argument, NULL, O_SDREG },
		{ "socket-level", required_argument, NULL, O_SLEVEL },
		{ "socket-value", required_argument, NULL, O_SVALUE },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "replace", required_argument, NULL, O_REPLACE },
		{ "delete", required_argument, NULL, O_DELETE },
		{ "delete-table", no_argument, NULL, O_DELTABLE },
		{ "fail-nth", required_argument, NULL, O_FAILNTH },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*a = (struct args){
		.table_family = "ip", .table = "rawtest", .hook = "prerouting",
		.chain = "c", .dev = "lo", .priority = -150,
		.tproxy_family = NFPROTO_IPV4, .addr_reg = NFT_REG_2, .port = NONE,
		.port_reg = NFT_REG_1, .l4proto = 6, .nfproto = NONE, .dport = NONE,
		.tproxy_flags = NONE, .mark = NONE, .verdict = NONE,
		.socket_dreg = NFT_REG_1, .socket_level = NONE, .timeout = 10,
		.replace = NONE, .delete = NONE,
	};
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_TFAM:
			lookup(table_families, optarg, "--table-family");
			a->table_family = optarg;
			break;
		case O_TABLE:
			a->table = optarg;
			break;
		case O_HOOK:
			a->hook = optarg;
			break;
		case O_CHAIN:
			a->chain = optarg;
			break;
		case O_EXISTING:
			a->existing = true;
			break;
		case O_DEV:
			a->dev = optarg;
			break;
		case O_PRIO:
			a->priority = num(optarg, "--priority");
			break;
		case O_JFROM:
			a->jump_from = optarg;
			break;
		case O_JFIRST:
			a->jump_first = true;
			break;
		case O_TPFAM:
			a->tproxy_family = lookup_num(tproxy_families, optarg, "--tproxy-family");
			break;
		case O_ADDR:
			a->addr = optarg;
			break;
		case O_ADDRREG:
			a->addr_reg = num(optarg, "--addr-reg");
			break;
		case O_PORT:
			a->port = num(optarg, "--port");
			break;
		case O_PORTREG:
			a->port_reg = num(optarg, "--port-reg");
			break;
		case O_NOL4:
			a->no_l4 = true;
			break;
		case O_L4:
			a->l4proto = lookup(l4protos, optarg, "--l4proto");
			break;
		case O_NFPROTO:
			a->nfproto = lookup(nfprotos, optarg, "--nfproto");
			break;
		case O_DPORT:
			a->dport = num(optarg, "--dport");
			break;
		case O_FLAGS:
			a->tproxy_flags = num(optarg, "--tproxy-flags");
			break;
		case O_MARK:
			a->mark = num(optarg, "--mark");
			break;
		case O_VERDICT:
			a->verdict = lookup(verdicts, optarg, "--verdict");
			break;
		case O_NOTPROXY:
			a->no_tproxy = true;
			break;
		case O_SKEY:
			lookup_num(socket_keys, optarg, "--socket-key");
			a->socket_key = optarg;
			break;
		case O_SDREG:
			a->socket_dreg = strcmp(optarg, "none") ?
					 num(optarg, "--socket-dreg") : NONE;
			break;
		case O_SLEVEL:
			a->socket_level = num(optarg, "--socket-level");
			break;
		case O_SVALUE:
			a->socket_value = num(optarg, "--socket-value");
			break;
		case O_TIMEOUT:
			a->timeout = (unsigned int)num(optarg, "--timeout");
			break;
		case O_REPLACE:
			a->replace = num(optarg, "--replace");
			break;
		case O_DELETE:
			a->delete = num(optarg, "--delete");
			break;
		case O_DELTABLE:
			a->delete_table = true;
			break;
		case O_FAILNTH:
			a->fail_nth = (unsigned int)num(optarg, "--fail-nth");
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
	if (a->replace != NONE && !a->existing)
		die("--replace needs --existing");
}

/* the fail-nth line, after the result */
static void print_fail_nth(const struct nfnl *nl)
{
	if (nl->fail_nth)
		printf("fail-nth %u: %s\n", nl->fail_nth,
		       nl->faulted ? "injected" : "not reached");
}

static const char *answer_label(const struct nfnl *nl, int idx)
{
	switch (idx) {
	case NFNL_IDX_COMMIT:
		return "COMMIT";
	case NFNL_IDX_SEND:
		return "SEND";
	case NFNL_IDX_LOST:
		return "LOST";
	default:
		return nl->b->label[idx];
	}
}

int main(int argc, char **argv)
{
	struct nfnl nl;
	struct args a;
	int err, idx;

	parse_args(argc, argv, &a);
	nl_open(&nl, a.timeout);
	nl.fail_nth = a.fail_nth;
	build(&nl, &a);
	err = batch_send_sync(&nl, &idx);
	if (!err) {
		printf("ACCEPTED\n");
		print_fail_nth(&nl);
		nl_close(&nl);
		return 0;
	}
	printf("REJECTED errno=%s (%s%s%s) msg=%s\n", errname(err), strerror(err),
	       idx >= 0 && nl.b->ack_msg[idx][0] ? ": " : "",
	       idx >= 0 ? nl.b->ack_msg[idx] : "", answer_label(&nl, idx));
	print_fail_nth(&nl);
	nl_close(&nl);
	return EXIT_FAILED;
}

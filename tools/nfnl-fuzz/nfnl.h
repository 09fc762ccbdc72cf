/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nfnl: the one nf_tables netlink encoder of the test tools.  nfnl-fuzz
 * (random, mutated rules) and nfnl-raw (one rule from its command line)
 * both build their batches and read the kernel's answers through it.
 */
#ifndef NFNL_H
#define NFNL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libmnl/libmnl.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define EXIT_FAILED	1
#define EXIT_ERROR	2
#define EXIT_SKIP	4

#define BATCH_BUF	(64 * 1024)
#define MAX_MSGS	16

/* one batch: BEGIN, up to MAX_MSGS nf_tables messages, END */
struct batch {
	char buf[BATCH_BUF];
	struct mnl_nlmsg_batch *mb;
	uint8_t family;
	int n;				/* nf_tables messages (not BEGIN/END) */
	uint32_t begin_seq;
	uint32_t seq[MAX_MSGS];
	char label[MAX_MSGS][24];
	int ack[MAX_MSGS];		/* 1: none yet, else 0 or -errno */
	char ack_msg[MAX_MSGS][128];	/* the extended ack's text, if any */
	int commit_err;			/* 0 or -errno acked on BEGIN */
};

/* a NETLINK_NETFILTER socket and the batch being built */
struct nfnl {
	struct mnl_socket *sock;
	uint32_t portid;
	uint32_t seq;
	char *rbuf;
	size_t rbuf_len;
	struct batch *b;
	unsigned int fail_nth;		/* batch_send_sync: fail the Nth allocation */
	bool faulted;			/* ... and it did */
};

/* batch_send_sync's *idx when no message's answer holds the error */
#define NFNL_IDX_COMMIT	(-1)		/* the commit, or the batch as a whole */
#define NFNL_IDX_SEND	(-2)		/* sending the batch failed */
#define NFNL_IDX_LOST	(-3)		/* an answer was lost (ENOBUFS) */

void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
const char *errname(int err);

void nl_open(struct nfnl *nl, unsigned int timeout_s);
void nl_close(struct nfnl *nl);
void nl_send(struct nfnl *nl, const void *buf, size_t len);
int nlmsg_errno(const struct nlmsghdr *nlh);
struct nlmsghdr *nl_request(struct nfnl *nl, void *buf, uint16_t type, uint16_t flags,
			    uint8_t family);

/* batch building */
void batch_start(struct nfnl *nl, uint8_t family);
struct nlmsghdr *batch_msg(struct nfnl *nl, uint16_t type, uint16_t flags,
			   const char *label);
void batch_msg_done(struct nfnl *nl);
void batch_end(struct nfnl *nl);
const char *batch_answer(struct batch *b, const struct nlmsghdr *nlh);
int batch_send_sync(struct nfnl *nl, int *idx);

/* messages */
struct nfnl_hook {
	uint32_t num;
	int32_t prio;
	const char *dev;		/* NFTA_HOOK_DEV, or NULL */
};

void put_be32(struct nlmsghdr *nlh, uint16_t type, uint32_t v);
void put_table(struct nfnl *nl, const char *table, bool del);
void put_chain(struct nfnl *nl, const char *table, const char *chain,
	       const struct nfnl_hook *hook);

/* expressions, inside NFTA_RULE_EXPRESSIONS */
struct nlattr *expr_start(struct nlmsghdr *nlh, const char *name);
void expr_imm(struct nlmsghdr *nlh, uint32_t dreg, const void *data, size_t len);
void expr_verdict(struct nlmsghdr *nlh, int32_t code, const char *chain);
void expr_meta_load(struct nlmsghdr *nlh, uint32_t key, uint32_t dreg);
void expr_meta_store(struct nlmsghdr *nlh, uint32_t key, uint32_t sreg);
void expr_payload(struct nlmsghdr *nlh, uint32_t dreg, uint32_t base,
		  uint32_t offset, uint32_t len);
void expr_cmp_eq(struct nlmsghdr *nlh, uint32_t sreg, const void *data, size_t len);

#endif /* NFNL_H */

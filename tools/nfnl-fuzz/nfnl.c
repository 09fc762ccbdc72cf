// SPDX-License-Identifier: GPL-2.0
/*
 * nfnl: nf_tables batches for the test tools (see nfnl.h), on libmnl.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>

#include "nfnl.h"

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", program_invocation_short_name);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_ERROR);
}

const char *errname(int err)
{
	static char buf[16];
	const char *s;

	if (err == 0)
		return "ACCEPT";
	if (err == EOPNOTSUPP)
		return "EOPNOTSUPP";	/* == ENOTSUP on Linux */
	s = strerrorname_np(err);
	if (s)
		return s;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

/* ------------------------------------------------------------------ socket */

void nl_open(struct nfnl *nl, unsigned int timeout_s)
{
	struct timeval tv = { .tv_sec = timeout_s };
	int one = 1, rcvbuf = 4 << 20;
	int fd;

	nl->sock = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl->sock)
		die("netlink socket: %m");
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0)
		die("netlink bind: %m");
	nl->portid = mnl_socket_get_portid(nl->sock);
	fd = mnl_socket_get_fd(nl->sock);
	/* errors carry only the header of the message, and the kernel's text */
	mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		die("SO_RCVTIMEO: %m");
	nl->rbuf_len = 1 << 17;
	nl->rbuf = malloc(nl->rbuf_len);
	nl->b = calloc(1, sizeof(*nl->b));
	if (!nl->rbuf || !nl->b)
		die("out of memory");
	nl->seq = (uint32_t)time(NULL);
}

void nl_close(struct nfnl *nl)
{
	mnl_socket_close(nl->sock);
	free(nl->rbuf);
	free(nl->b);
}

void nl_send(struct nfnl *nl, const void *buf, size_t len)
{
	if (mnl_socket_sendto(nl->sock, buf, len) < 0)
		die("netlink send: %m");
}

int nlmsg_errno(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(int)))
		return -EBADMSG;
	return e->error;
}

/* NLMSGERR_ATTR_MSG of an error with NLM_F_ACK_TLVS, into buf ("" if none) */
static void nlmsg_ext_msg(const struct nlmsghdr *nlh, char *buf, size_t size)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;
	size_t off = sizeof(*e);

	buf[0] = '\0';
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) ||
	    nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(e->msg);
	mnl_attr_for_each(a, nlh, off) {
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
		    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
			snprintf(buf, size, "%s", mnl_attr_get_str(a));
	}
}

/* ------------------------------------------------------------------ batches */

/* an nfnetlink header at buf, with the socket's next sequence number */
static struct nlmsghdr *put_nfnl_header(struct nfnl *nl, void *buf, uint16_t type,
					uint16_t flags, uint8_t family, uint16_t res_id)
{
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = ++nl->seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(res_id);
	return nlh;
}

/* an nf_tables request of its own (no batch) in buf, to fill and nl_send */
struct nlmsghdr *nl_request(struct nfnl *nl, void *buf, uint16_t type, uint16_t flags,
			    uint8_t family)
{
	return put_nfnl_header(nl, buf, (NFNL_SUBSYS_NFTABLES << 8) | type, flags,
			       family, 0);
}

void batch_start(struct nfnl *nl, uint8_t family)
{
	struct batch *b = nl->b;

	b->mb = mnl_nlmsg_batch_start(b->buf, BATCH_BUF / 2);
	if (!b->mb)
		die("mnl_nlmsg_batch_start: %m");
	b->family = family;
	b->n = 0;
	b->commit_err = 0;
	b->begin_seq = put_nfnl_header(nl, mnl_nlmsg_batch_current(b->mb),
				       NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST,
				       AF_UNSPEC, NFNL_SUBSYS_NFTABLES)->nlmsg_seq;
	batch_msg_done(nl);
}

struct nlmsghdr *batch_msg(struct nfnl *nl, uint16_t type, uint16_t flags,
			   const char *label)
{
	struct batch *b = nl->b;
	struct nlmsghdr *nlh;

	if (b->n >= MAX_MSGS)
		die("internal: batch too long");
	nlh = nl_request(nl, mnl_nlmsg_batch_current(b->mb), type,
			 NLM_F_REQUEST | NLM_F_ACK | flags, b->family);
	b->seq[b->n] = nlh->nlmsg_seq;
	b->ack[b->n] = 1;
	b->ack_msg[b->n][0] = '\0';
	snprintf(b->label[b->n], sizeof(b->label[0]), "%s", label);
	b->n++;
	return nlh;
}

void batch_msg_done(struct nfnl *nl)
{
	if (!mnl_nlmsg_batch_next(nl->b->mb))
		die("internal: batch buffer full");
}

void batch_end(struct nfnl *nl)
{
	put_nfnl_header(nl, mnl_nlmsg_batch_current(nl->b->mb), NFNL_MSG_BATCH_END,
			NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
	batch_msg_done(nl);
}

/*
 * An answer to one of the batch's messages: recorded in b.  Returns NULL,
 * or what is wrong with it (each message gets exactly one answer, an
 * error or an ack; an error of the batch as a whole is acked on
 * BATCH_BEGIN, or, once nfnetlink is past it, on the first message).
 */
const char *batch_answer(struct batch *b, const struct nlmsghdr *nlh)
{
	static char why[160];
	int i;

	if (nlh->nlmsg_seq == b->begin_seq && nlh->nlmsg_type == NLMSG_ERROR) {
		if (b->commit_err)
			return "two commit errors";
		b->commit_err = nlmsg_errno(nlh);
		return b->commit_err ? NULL : "zero ack on BATCH_BEGIN";
	}
	for (i = 0; i < b->n; i++) {
		if (b->seq[i] != nlh->nlmsg_seq)
			continue;
		if (nlh->nlmsg_type != NLMSG_ERROR) {
			snprintf(why, sizeof(why), "%s answered by message type %#x",
				 b->label[i], nlh->nlmsg_type);
			return why;
		}
		if (b->ack[i] != 1) {
			/*
			 * nfnetlink acks an error of the batch as a whole (a
			 * failed commit) with the header its skb starts with
			 * past BATCH_BEGIN: the first message's, before that
			 * message's own answer.
			 */
			if (i == 0 && b->ack[0] < 0 && !b->commit_err) {
				b->commit_err = b->ack[0];
				b->ack[0] = 1;
			} else {
				snprintf(why, sizeof(why), "%s acked twice", b->label[i]);
				return why;
			}
		}
		b->ack[i] = nlmsg_errno(nlh);
		nlmsg_ext_msg(nlh, b->ack_msg[i], sizeof(b->ack_msg[i]));
		if (b->ack[i] > 0) {
			snprintf(why, sizeof(why), "%s: positive error %d",
				 b->label[i], b->ack[i]);
			return why;
		}
		return NULL;
	}
	snprintf(why, sizeof(why), "answer with unknown seq %u type %#x",
		 nlh->nlmsg_seq, nlh->nlmsg_type);
	return why;
}

/*
 * fail-nth (Documentation/fault-injection): the Nth slab or page allocation
 * of this thread fails.  The kernel handles a whole batch, commit included,
 * within the sendmsg() that carries it, so that is all the window armed.
 * Returns the file, to read and disarm after the call.
 */
static int fail_nth_arm(unsigned int nth)
{
	char buf[16];
	int fd, len;

	fd = open("/proc/thread-self/fail-nth", O_RDWR);
	if (fd < 0)
		die("/proc/thread-self/fail-nth: %m (a kernel without CONFIG_FAULT_INJECTION?)");
	len = snprintf(buf, sizeof(buf), "%u", nth);
	if (write(fd, buf, (size_t)len) != len)
		die("fail-nth: write %u: %m", nth);
	return fd;
}

/* whether the armed failure happened (the count ran down to 0), disarmed */
static bool fail_nth_disarm(int fd)
{
	char buf[16] = "";
	bool hit;

	if (pread(fd, buf, sizeof(buf) - 1, 0) <= 0)
		die("fail-nth: read: %m");
	hit = strtoul(buf, NULL, 10) == 0;
	if (write(fd, "0", 1) != 1)
		die("fail-nth: disarm: %m");
	close(fd);
	return hit;
}

/*
 * Send the batch, then a GETGEN whose answer marks the end of the batch's
 * answers.  Returns 0 (every message acked) or the first errno, with *idx
 * the index of the message it answered, or NFNL_IDX_*.  With nl->fail_nth
 * set, an allocation the kernel makes for the batch fails (nl->faulted):
 * the send may fail, an error may be acked on the batch as a whole, or an
 * answer may be lost; each is an outcome, not an error of this tool.
 */
int batch_send_sync(struct nfnl *nl, int *idx)
{
	struct batch *b = nl->b;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	bool done = false, lost = false, err_answered = false;
	int i, fd = -1, err = 0;
	uint32_t sync;

	if (nl->fail_nth)
		fd = fail_nth_arm(nl->fail_nth);
	if (mnl_socket_sendto(nl->sock, mnl_nlmsg_batch_head(b->mb),
			      mnl_nlmsg_batch_size(b->mb)) < 0)
		err = errno;
	if (fd >= 0)
		nl->faulted = fail_nth_disarm(fd);
	if (err && !nl->faulted)
		die("netlink send: %s", strerror(err));
	if (err) {
		*idx = NFNL_IDX_SEND;
		return err;
	}
	nlh = nl_request(nl, buf, NFT_MSG_GETGEN, NLM_F_REQUEST | NLM_F_ACK, AF_UNSPEC);
	sync = nlh->nlmsg_seq;
	nl_send(nl, buf, nlh->nlmsg_len);

	while (!done) {
		ssize_t n = mnl_socket_recvfrom(nl->sock, nl->rbuf, nl->rbuf_len);
		const char *why;
		int len;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* an answer the kernel could not allocate */
			if (errno == ENOBUFS && nl->faulted) {
				lost = true;
				continue;
			}
			die(errno == EAGAIN ? "no answer from the kernel" : "recv: %m");
		}
		len = (int)n;
		for (nlh = (struct nlmsghdr *)nl->rbuf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_seq == sync) {
				done = nlh->nlmsg_type == NLMSG_ERROR;
				continue;
			}
			why = batch_answer(b, nlh);
			if (why)
				die("%s", why);
		}
	}
	/*
	 * An error of the batch as a whole may leave messages unanswered: out
	 * of memory for an answer is acked as the first message's error and
	 * ends the batch.
	 */
	for (i = 0; i < b->n; i++)
		if (b->ack[i] < 0)
			err_answered = true;
	for (i = 0; i < b->n; i++) {
		if (b->ack[i] == 1) {
			if (b->commit_err || lost || err_answered)
				continue;
			die("%s: no answer", b->label[i]);
		}
		if (b->ack[i]) {
			*idx = i;
			return -b->ack[i];
		}
	}
	if (!b->commit_err && lost) {
		*idx = NFNL_IDX_LOST;
		return ENOBUFS;
	}
	*idx = NFNL_IDX_COMMIT;
	return -b->commit_err;
}

/* ------------------------------------------------------------------ messages */

void put_be32(struct nlmsghdr *nlh, uint16_t type, uint32_t v)
{
	mnl_attr_put_u32(nlh, type, htonl(v));
}

void put_table(struct nfnl *nl, const char *table, bool del)
{
	struct nlmsghdr *nlh;

	nlh = batch_msg(nl, del ? NFT_MSG_DELTABLE : NFT_MSG_NEWTABLE,
			del ? 0 : NLM_F_CREATE, del ? "DELTABLE" : "NEWTABLE");
	mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, table);
	batch_msg_done(nl);
}

/* a base chain of type filter, policy accept, at hook; hook NULL: regular */
void put_chain(struct nfnl *nl, const char *table, const char *chain,
	       const struct nfnl_hook *hook)
{
	struct nlmsghdr *nlh;
	struct nlattr *nest;
	char label[24];

	snprintf(label, sizeof(label), "NEWCHAIN(%s)", chain);
	nlh = batch_msg(nl, NFT_MSG_NEWCHAIN, NLM_F_CREATE, label);
	mnl_attr_put_strz(nlh, NFTA_CHAIN_TABLE, table);
	mnl_attr_put_strz(nlh, NFTA_CHAIN_NAME, chain);
	if (hook) {
		nest = mnl_attr_nest_start(nlh, NFTA_CHAIN_HOOK);
		put_be32(nlh, NFTA_HOOK_HOOKNUM, hook->num);
		put_be32(nlh, NFTA_HOOK_PRIORITY, (uint32_t)hook->prio);
		if (hook->dev)
			mnl_attr_put_strz(nlh, NFTA_HOOK_DEV, hook->dev);
		mnl_attr_nest_end(nlh, nest);
		mnl_attr_put_strz(nlh, NFTA_CHAIN_TYPE, "filter");
		put_be32(nlh, NFTA_CHAIN_POLICY, NF_ACCEPT);
	}
	batch_msg_done(nl);
}

/* ------------------------------------------------------------------ expressions */

/* NFTA_LIST_ELEM with its name; the caller adds NFTA_EXPR_DATA and ends it */
struct nlattr *expr_start(struct nlmsghdr *nlh, const char *name)
{
	struct nlattr *elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);

	mnl_attr_put_strz(nlh, NFTA_EXPR_NAME, name);
	return elem;
}

void expr_imm(struct nlmsghdr *nlh, uint32_t dreg, const void *data, size_t len)
{
	struct nlattr *elem, *nest, *imm;

	elem = expr_start(nlh, "immediate");
	nest = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
	put_be32(nlh, NFTA_IMMEDIATE_DREG, dreg);
	imm = mnl_attr_nest_start(nlh, NFTA_IMMEDIATE_DATA);
	mnl_attr_put(nlh, NFTA_DATA_VALUE, len, data);
	mnl_attr_nest_end(nlh, imm);
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_nest_end(nlh, elem);
}

/* a verdict; chain: the target of NFT_JUMP/NFT_GOTO, else NULL */
void expr_verdict(struct nlmsghdr *nlh, int32_t code, const char *chain)
{
	struct nlattr *elem, *nest, *imm, *vd;

	elem = expr_start(nlh, "immediate");
	nest = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
	put_be32(nlh, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
	imm = mnl_attr_nest_start(nlh, NFTA_IMMEDIATE_DATA);
	vd = mnl_attr_nest_start(nlh, NFTA_DATA_VERDICT);
	put_be32(nlh, NFTA_VERDICT_CODE, (uint32_t)code);
	if (chain)
		mnl_attr_put_strz(nlh, NFTA_VERDICT_CHAIN, chain);
	mnl_attr_nest_end(nlh, vd);
	mnl_attr_nest_end(nlh, imm);
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_nest_end(nlh, elem);
}

static void expr_meta(struct nlmsghdr *nlh, uint32_t key, uint16_t regtype, uint32_t reg)
{
	struct nlattr *elem, *nest;

	elem = expr_start(nlh, "meta");
	nest = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
	put_be32(nlh, NFTA_META_KEY, key);
	put_be32(nlh, regtype, reg);
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_nest_end(nlh, elem);
}

void expr_meta_load(struct nlmsghdr *nlh, uint32_t key, uint32_t dreg)
{
	expr_meta(nlh, key, NFTA_META_DREG, dreg);
}

void expr_meta_store(struct nlmsghdr *nlh, uint32_t key, uint32_t sreg)
{
	expr_meta(nlh, key, NFTA_META_SREG, sreg);
}

void expr_payload(struct nlmsghdr *nlh, uint32_t dreg, uint32_t base,
		  uint32_t offset, uint32_t len)
{
	struct nlattr *elem, *nest;

	elem = expr_start(nlh, "payload");
	nest = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
	put_be32(nlh, NFTA_PAYLOAD_DREG, dreg);
	put_be32(nlh, NFTA_PAYLOAD_BASE, base);
	put_be32(nlh, NFTA_PAYLOAD_OFFSET, offset);
	put_be32(nlh, NFTA_PAYLOAD_LEN, len);
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_nest_end(nlh, elem);
}

void expr_cmp_eq(struct nlmsghdr *nlh, uint32_t sreg, const void *data, size_t len)
{
	struct nlattr *elem, *nest, *cd;

	elem = expr_start(nlh, "cmp");
	nest = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
	put_be32(nlh, NFTA_CMP_SREG, sreg);
	put_be32(nlh, NFTA_CMP_OP, NFT_CMP_EQ);
	cd = mnl_attr_nest_start(nlh, NFTA_CMP_DATA);
	mnl_attr_put(nlh, NFTA_DATA_VALUE, len, data);
	mnl_attr_nest_end(nlh, cd);
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_nest_end(nlh, elem);
}

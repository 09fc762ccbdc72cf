// SPDX-License-Identifier: GPL-2.0
/*
 * tpload: load generator and echo server for the nft-tproxy reliability
 * tests.  One process, one epoll loop, no threads.
 *
 * Every TCP stream and every UDP datagram a client sends starts with a
 * 48-byte header (magic, flags, family, length, flow, id, and the
 * destination the client sent to), followed by a pseudo-random pattern
 * seeded per connection / per datagram.  The server echoes every byte; the
 * client regenerates the pattern and verifies every byte that comes back.
 * The server checks each header's destination against the address the
 * packet really arrived for (getsockname() of the accepted socket, or
 * IP(V6)_ORIGDSTADDR / PKTINFO for UDP): a difference is a misdelivery.
 *
 *   tpload server --tcp ADDR:PORT --udp ADDR:PORT [--transparent] ...
 *   tpload client --tcp DST[,DST...] -n N -c C --size BYTES ...
 *   tpload client --udp DST[,DST...] --datagrams M --flows F ...
 *
 * Reports are lines of key=value words (see report_*()).  Client exit
 * status: 0 everything verified, 1 failures (refused, reset, timeouts,
 * lost datagrams), 2 integrity violation (a byte mismatch, a corrupt or
 * misdelivered datagram), 3 usage or setup error.  Server: 0, or 3.
 * `tpload --help` for all options.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IP_RECVORIGDSTADDR
#define IP_RECVORIGDSTADDR 20
#define IP_ORIGDSTADDR IP_RECVORIGDSTADDR
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif
#ifndef IPV6_RECVORIGDSTADDR
#define IPV6_RECVORIGDSTADDR 74
#define IPV6_ORIGDSTADDR IPV6_RECVORIGDSTADDR
#endif

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define EXIT_OK		0
#define EXIT_FAILURES	1
#define EXIT_INTEGRITY	2
#define EXIT_SETUP	3

#define HDR_LEN		48
#define HDR_MAGIC	0x54504c31u	/* "TPL1" */
#define HDR_F_SCLOSE	0x0001		/* server closes after echoing len */
#define IOBUF		65536
#define MAX_DSTS	16
#define MAX_LISTEN	16
#define UDP_BATCH	64
#define UDP_BUFSZ	4096
#define MAX_REPLY_SOCKS	1024

/* ------------------------------------------------------------ helpers */

static const char *prog = "tpload";
static int verbose;
/* --log FILE: one line per connection event (TCP), for tracing */
static FILE *evlog;

static void __attribute__((format(printf, 1, 2))) ev(const char *fmt, ...)
{
	va_list ap;

	if (!evlog)
		return;
	va_start(ap, fmt);
	vfprintf(evlog, fmt, ap);
	va_end(ap);
	fputc('\n', evlog);
}


static void __attribute__((format(printf, 1, 2), noreturn)) die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_SETUP);
}

static void __attribute__((format(printf, 1, 2))) warnx_(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void open_evlog(const char *path)
{
	evlog = fopen(path, "w");
	if (!evlog)
		die("cannot write %s: %s", path, strerror(errno));
	setvbuf(evlog, NULL, _IOFBF, 1 << 16);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);

	if (!p)
		die("out of memory (%zu x %zu)", n, sz);
	return p;
}

/* Raise RLIMIT_NOFILE to at least @want (root may raise the hard limit). */
static void raise_nofile(rlim_t want)
{
	struct rlimit rl;
	rlim_t nr_open = 1048576;
	FILE *f;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		die("getrlimit: %s", strerror(errno));
	f = fopen("/proc/sys/fs/nr_open", "r");
	if (f) {
		unsigned long v;

		if (fscanf(f, "%lu", &v) == 1)
			nr_open = v;
		fclose(f);
	}
	if (want > nr_open)
		want = nr_open;
	if (rl.rlim_cur >= want)
		return;
	if (rl.rlim_max < want) {
		struct rlimit r2 = { want, want };

		if (setrlimit(RLIMIT_NOFILE, &r2) == 0)
			return;
		want = rl.rlim_max;
	}
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		die("setrlimit(RLIMIT_NOFILE, %lu): %s", (unsigned long)want,
		    strerror(errno));
}

/* ------------------------------------------------------------ addresses */

struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

static int addr_family(const struct addr *a)
{
	return a->ss.ss_family;
}

/* "1.2.3.4:80", "[::1]:80" */
static bool parse_addr(const char *s, struct addr *a)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *h = s;
	size_t hl;
	char *end;
	long port;

	memset(a, 0, sizeof(*a));
	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return false;
		h = s + 1;
		hl = rb - h;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return false;
		hl = colon - s;
	}
	if (hl >= sizeof(host))
		return false;
	memcpy(host, h, hl);
	host[hl] = 0;
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		return false;
	if (*s == '[') {
		struct sockaddr_in6 *sin6 = (void *)&a->ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return false;
		a->len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (void *)&a->ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return false;
		a->len = sizeof(*sin);
	}
	return true;
}

static const char *fmt_sa(const struct sockaddr *sa, char *buf, size_t n)
{
	char h[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, h, sizeof(h));
		snprintf(buf, n, "%s:%u", h, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, h, sizeof(h));
		snprintf(buf, n, "[%s]:%u", h, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, n, "?af%d", sa->sa_family);
	}
	return buf;
}

/* Same address and port (ignores scope, flowinfo). */
static bool sa_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
	}
	return false;
}

static socklen_t sa_len(int family)
{
	return family == AF_INET ? sizeof(struct sockaddr_in) :
				   sizeof(struct sockaddr_in6);
}

/* ------------------------------------------------------------ pattern */

static inline uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Bytes [off, off+n) of the pattern of @seed: random access. */
static void pattern(uint64_t seed, uint64_t off, uint8_t *buf, size_t n)
{
	while (n) {
		uint64_t v = mix64(seed ^ ((off >> 3) * 0xd6e8feb86659fd93ull));
		unsigned int b = off & 7;

		if (b == 0 && n >= 8) {
			memcpy(buf, &v, 8);	/* host order: both ends are this program */
			buf += 8;
			off += 8;
			n -= 8;
			continue;
		}
		for (; b < 8 && n; b++, n--, off++)
			*buf++ = (uint8_t)(v >> (8 * b));
	}
}

/* ------------------------------------------------------------ header */

struct hdr {
	uint32_t magic;
	uint16_t flags;
	uint8_t family;		/* 4 or 6 */
	uint8_t proto;		/* IPPROTO_TCP / IPPROTO_UDP */
	uint32_t len;		/* stream or datagram length, header included */
	uint32_t flow;
	uint64_t id;
	struct addr dst;	/* where the client sent it */
};

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v); }
static void put64(uint8_t *p, uint64_t v) { put32(p, v >> 32); put32(p + 4, v); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }

static void hdr_build(uint8_t *p, uint16_t flags, uint8_t proto, uint32_t len,
		      uint32_t flow, uint64_t id, const struct addr *dst)
{
	memset(p, 0, HDR_LEN);
	put32(p, HDR_MAGIC);
	put16(p + 4, flags);
	p[7] = proto;
	put32(p + 8, len);
	put32(p + 12, flow);
	put64(p + 16, id);
	if (addr_family(dst) == AF_INET) {
		const struct sockaddr_in *sin = (const void *)&dst->ss;

		p[6] = 4;
		memcpy(p + 24, &sin->sin_port, 2);
		memcpy(p + 32, &sin->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *sin6 = (const void *)&dst->ss;

		p[6] = 6;
		memcpy(p + 24, &sin6->sin6_port, 2);
		memcpy(p + 32, &sin6->sin6_addr, 16);
	}
}

static bool hdr_parse(const uint8_t *p, struct hdr *h)
{
	memset(h, 0, sizeof(*h));
	h->magic = get32(p);
	if (h->magic != HDR_MAGIC)
		return false;
	h->flags = get16(p + 4);
	h->family = p[6];
	h->proto = p[7];
	h->len = get32(p + 8);
	h->flow = get32(p + 12);
	h->id = get64(p + 16);
	if (h->family == 4) {
		struct sockaddr_in *sin = (void *)&h->dst.ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_port, p + 24, 2);
		memcpy(&sin->sin_addr, p + 32, 4);
		h->dst.len = sizeof(*sin);
	} else if (h->family == 6) {
		struct sockaddr_in6 *sin6 = (void *)&h->dst.ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_port, p + 24, 2);
		memcpy(&sin6->sin6_addr, p + 32, 16);
		h->dst.len = sizeof(*sin6);
	} else {
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ sockets */

static void set_transparent(int fd, int family)
{
	int one = 1;

	if (family == AF_INET) {
		if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)))
			die("IP_TRANSPARENT: %s", strerror(errno));
	} else {
		if (setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)))
			die("IPV6_TRANSPARENT: %s", strerror(errno));
	}
}

static void set_v6only(int fd, int family)
{
	int one = 1;

	if (family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))
		die("IPV6_V6ONLY: %s", strerror(errno));
}

/* Abortive close: RST, no orphan left behind. */
static void close_rst(int fd)
{
	struct linger l = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/* epoll data: kind (8 bits) | generation (24 bits) | index (32 bits) */
enum { K_SIG = 1, K_LISTEN, K_UDP, K_CONN, K_FLOW };

static uint64_t ev_key(unsigned int kind, uint32_t gen, uint32_t idx)
{
	return (uint64_t)kind << 56 | (uint64_t)(gen & 0xffffff) << 32 | idx;
}

static void ep_add(int ep, int fd, uint32_t events, uint64_t key)
{
	struct epoll_event ev = { .events = events, .data.u64 = key };

	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
		die("epoll_ctl add: %s", strerror(errno));
}

static void ep_mod(int ep, int fd, uint32_t events, uint64_t key)
{
	struct epoll_event ev = { .events = events, .data.u64 = key };

	if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev))
		die("epoll_ctl mod: %s", strerror(errno));
}

static int signal_fd(void)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		die("sigprocmask: %s", strerror(errno));
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		die("signalfd: %s", strerror(errno));
	return fd;
}

/* Write @text to @path atomically (tmp file, rename). */
static void write_file_atomic(const char *path, const char *text)
{
	char tmp[PATH_MAX];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	f = fopen(tmp, "w");
	if (!f) {
		warnx_("cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	fputs(text, f);
	if (fclose(f) || rename(tmp, path))
		warnx_("cannot write %s: %s", path, strerror(errno));
}

/* A growable text buffer for reports. */
struct sbuf {
	char *p;
	size_t len, cap;
};

static void __attribute__((format(printf, 2, 3))) sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			b->len += n;
			return;
		}
		b->cap = (b->cap + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			die("out of memory");
	}
}

/* ------------------------------------------------------------ counters by address */

/* Count per (kind, address): original destinations, listeners. */
struct addr_count {
	char kind[8];
	struct addr a;
	uint64_t n;
};

struct addr_counts {
	struct addr_count *v;
	size_t len, cap;
};

static void ac_add(struct addr_counts *ac, const char *kind,
		   const struct sockaddr *sa, uint64_t n)
{
	size_t i;

	for (i = 0; i < ac->len; i++) {
		if (!strcmp(ac->v[i].kind, kind) &&
		    sa_equal((const void *)&ac->v[i].a.ss, sa)) {
			ac->v[i].n += n;
			return;
		}
	}
	if (ac->len == ac->cap) {
		ac->cap = ac->cap ? ac->cap * 2 : 16;
		ac->v = realloc(ac->v, ac->cap * sizeof(*ac->v));
		if (!ac->v)
			die("out of memory");
	}
	memset(&ac->v[ac->len], 0, sizeof(ac->v[0]));
	snprintf(ac->v[ac->len].kind, sizeof(ac->v[0].kind), "%s", kind);
	memcpy(&ac->v[ac->len].a.ss, sa, sa_len(sa->sa_family));
	ac->v[ac->len].n = n;
	ac->len++;
}

/* ============================================================ server */

struct listener {
	int fd;
	int family;
	bool tcp;
	struct addr bind;
	uint32_t gen;
	uint64_t accepted;	/* TCP, since the last reset */
};

struct sconn {
	int fd;
	uint32_t gen;
	int lidx;
	bool hdr_ok, hdr_checked, want_out, rd_eof, counted;
	uint8_t hdr[HDR_LEN];
	uint32_t hdr_have;
	uint64_t len;		/* from the header, 0 if none */
	uint64_t echoed;
	uint16_t flags;
	struct addr local, peer;
	uint64_t id;		/* from the header */
	uint8_t *pend;		/* bytes read but not yet written back */
	uint32_t pend_off, pend_len;
};

struct reply_sock {
	int fd;
	struct addr a;
};

static struct {
	struct listener l[MAX_LISTEN];
	int nl;
	bool transparent;
	int backlog;
	int rcvbuf;
	const char *report;
	const char *ready;
	double lifetime;
	int churn_open, churn_closed;	/* ms; 0: no churn */
	int ep;

	struct sconn **c;
	uint32_t nc, capc;
	uint32_t *freec;
	uint32_t nfree;
	uint32_t live;
	uint32_t conn_gen;

	struct reply_sock rs[MAX_REPLY_SOCKS];
	int nrs;

	/* counters since the last reset */
	uint64_t accepted, completed, tcp_bytes, tcp_errors, resets, eofs_early;
	uint64_t dst_mismatch, bad_header, no_header;
	uint64_t udp_in, udp_out, udp_reply_err, udp_no_origdst, udp_bytes;
	uint64_t udp_trunc;
	uint64_t reopens, listen_errors, accept_errors;
	struct addr_counts origdst, lsock;
	int mismatch_logged;
} S;

static int open_listener(struct listener *l)
{
	int one = 1, fd;

	fd = socket(l->family, (l->tcp ? SOCK_STREAM : SOCK_DGRAM) |
		    SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	set_v6only(fd, l->family);
	if (S.transparent)
		set_transparent(fd, l->family);
	if (!l->tcp) {
		if (S.rcvbuf > 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &S.rcvbuf, sizeof(S.rcvbuf));
		if (l->family == AF_INET) {
			setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof(one));
			setsockopt(fd, SOL_IP, IP_PKTINFO, &one, sizeof(one));
		} else {
			setsockopt(fd, SOL_IPV6, IPV6_RECVORIGDSTADDR, &one, sizeof(one));
			setsockopt(fd, SOL_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
		}
	}
	if (bind(fd, (void *)&l->bind.ss, l->bind.len) ||
	    (l->tcp && listen(fd, S.backlog))) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	l->fd = fd;
	l->gen++;
	ep_add(S.ep, fd, EPOLLIN, ev_key(l->tcp ? K_LISTEN : K_UDP, l->gen, l - S.l));
	return fd;
}

static void server_report(bool reset)
{
	struct sbuf b = { 0 };
	char a[80];
	size_t i;

	sb_printf(&b, "tpload-server accepted=%" PRIu64 " completed=%" PRIu64
		  " tcp_bytes=%" PRIu64 " tcp_errors=%" PRIu64 " resets=%" PRIu64
		  " short=%" PRIu64 " dst_mismatch=%" PRIu64 " bad_header=%" PRIu64
		  " no_header=%" PRIu64 " live=%u udp_datagrams=%" PRIu64
		  " udp_replies=%" PRIu64 " udp_reply_errors=%" PRIu64
		  " udp_no_origdst=%" PRIu64 " udp_truncated=%" PRIu64
		  " udp_bytes=%" PRIu64 " reopens=%" PRIu64 " listen_errors=%" PRIu64
		  " accept_errors=%" PRIu64 " origdsts=%zu\n",
		  S.accepted, S.completed, S.tcp_bytes, S.tcp_errors, S.resets,
		  S.eofs_early, S.dst_mismatch, S.bad_header, S.no_header, S.live,
		  S.udp_in, S.udp_out, S.udp_reply_err, S.udp_no_origdst,
		  S.udp_trunc, S.udp_bytes, S.reopens, S.listen_errors,
		  S.accept_errors, S.origdst.len);
	for (i = 0; i < S.origdst.len; i++)
		sb_printf(&b, "origdst %s %s %" PRIu64 "\n", S.origdst.v[i].kind,
			  fmt_sa((void *)&S.origdst.v[i].a.ss, a, sizeof(a)),
			  S.origdst.v[i].n);
	for (i = 0; i < S.lsock.len; i++)
		sb_printf(&b, "lsock %s %s %" PRIu64 "\n", S.lsock.v[i].kind,
			  fmt_sa((void *)&S.lsock.v[i].a.ss, a, sizeof(a)),
			  S.lsock.v[i].n);
	if (evlog)
		fflush(evlog);
	if (S.report)
		write_file_atomic(S.report, b.p);
	else
		fputs(b.p, stdout);
	fflush(stdout);
	free(b.p);
	if (reset) {
		S.accepted = S.completed = S.tcp_bytes = S.tcp_errors = 0;
		S.resets = S.eofs_early = S.dst_mismatch = S.bad_header = 0;
		S.no_header = S.udp_in = S.udp_out = S.udp_reply_err = 0;
		S.udp_no_origdst = S.udp_trunc = S.udp_bytes = S.reopens = 0;
		S.listen_errors = S.accept_errors = 0;
		S.origdst.len = S.lsock.len = 0;
	}
}

static void check_dst(const uint8_t *hdrbytes, const struct sockaddr *local,
		      const char *what, struct hdr *h)
{
	char a[80], b[80];

	if (!hdr_parse(hdrbytes, h)) {
		S.bad_header++;
		return;
	}
	if (!sa_equal((void *)&h->dst.ss, local)) {
		S.dst_mismatch++;
		if (S.mismatch_logged++ < 10)
			warnx_("%s id %" PRIu64 ": sent to %s, arrived for %s",
			       what, h->id, fmt_sa((void *)&h->dst.ss, a, sizeof(a)),
			       fmt_sa(local, b, sizeof(b)));
	}
}

static void sconn_free(uint32_t idx, bool rst, const char *why)
{
	struct sconn *c = S.c[idx];

	ev("close %u id=%" PRId64 " echoed=%" PRIu64 " len=%" PRIu64 " %s", c->gen,
	   c->hdr_ok ? (int64_t)c->id : -1, c->echoed, c->len, why);

	if (c->fd >= 0) {
		if (rst)
			close_rst(c->fd);
		else
			close(c->fd);
	}
	c->fd = -1;
	free(c->pend);
	c->pend = NULL;
	S.live--;
	S.freec[S.nfree++] = idx;
}

static uint32_t sconn_alloc(void)
{
	uint32_t idx;

	if (S.nfree)
		return S.freec[--S.nfree];
	if (S.nc == S.capc) {
		S.capc = S.capc ? S.capc * 2 : 1024;
		S.c = realloc(S.c, S.capc * sizeof(*S.c));
		S.freec = realloc(S.freec, S.capc * sizeof(*S.freec));
		if (!S.c || !S.freec)
			die("out of memory");
	}
	idx = S.nc++;
	S.c[idx] = xcalloc(1, sizeof(struct sconn));
	S.c[idx]->fd = -1;
	return idx;
}

static void sconn_events(uint32_t idx)
{
	struct sconn *c = S.c[idx];
	uint32_t ev = (c->pend_len ? EPOLLOUT : 0) | (c->pend_len || c->rd_eof ? 0 : EPOLLIN);

	ep_mod(S.ep, c->fd, ev, ev_key(K_CONN, c->gen, idx));
}

static void do_accept(struct listener *l)
{
	int i;

	for (i = 0; i < 256; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		uint32_t idx;
		struct sconn *c;
		int fd;

		fd = accept4(l->fd, (void *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				S.accept_errors++;
			if (errno == EMFILE || errno == ENFILE)
				warnx_("accept: %s", strerror(errno));
			return;
		}
		idx = sconn_alloc();
		c = S.c[idx];
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		c->gen = ++S.conn_gen;
		c->lidx = l - S.l;
		c->local.len = sizeof(c->local.ss);
		getsockname(fd, (void *)&c->local.ss, &c->local.len);
		memcpy(&c->peer.ss, &peer, sizeof(peer));
		c->peer.len = plen;
		if (evlog) {
			char a[80], b[80], ls[80];

			ev("accept %u peer=%s local=%s lsock=%s", c->gen,
			   fmt_sa((void *)&peer, a, sizeof(a)),
			   fmt_sa((void *)&c->local.ss, b, sizeof(b)),
			   fmt_sa((void *)&l->bind.ss, ls, sizeof(ls)));
		}
		S.live++;
		S.accepted++;
		l->accepted++;
		ac_add(&S.origdst, "tcp", (void *)&c->local.ss, 1);
		ac_add(&S.lsock, "tcp", (void *)&l->bind.ss, 1);
		ep_add(S.ep, fd, EPOLLIN, ev_key(K_CONN, c->gen, idx));
	}
}

/*
 * Count the stream as completed the moment its last byte is echoed: an
 * error on a later recv (the peer's RST) must not undo that.  Closes
 * first when the client asked for it; true if the connection is gone.
 */
static bool sconn_progress(uint32_t idx)
{
	struct sconn *c = S.c[idx];

	if (!c->hdr_ok || c->counted || c->echoed < c->len)
		return false;
	c->counted = true;
	S.completed++;
	ev("done %u id=%" PRIu64, c->gen, c->id);
	if (c->flags & HDR_F_SCLOSE) {
		/* the proxy closes first: the TIME_WAIT stays here */
		sconn_free(idx, false, "sclose");
		return true;
	}
	return false;
}

/* Echo what was read, header check, close-first handling. */
static void sconn_io(uint32_t idx, uint32_t events)
{
	struct sconn *c = S.c[idx];
	static uint8_t buf[IOBUF];
	int rounds;

	if (c->pend_len && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		ssize_t w = send(c->fd, c->pend + c->pend_off, c->pend_len,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno != EAGAIN) {
			S.tcp_errors++;
			if (errno == ECONNRESET)
				S.resets++;
			sconn_free(idx, true, strerrorname_np(errno) ? strerrorname_np(errno) : "error");
			return;
		}
		if (w > 0) {
			c->pend_off += w;
			c->pend_len -= w;
			c->echoed += w;
			S.tcp_bytes += w;
		}
		if (sconn_progress(idx) || c->pend_len)
			return;
		goto progress;
	}

	for (rounds = 0; rounds < 4 && !c->pend_len && !c->rd_eof; rounds++) {
		size_t want = sizeof(buf);
		ssize_t r, w;

		/* Never read past the stream's end when we are to close. */
		if (c->hdr_ok && (c->flags & HDR_F_SCLOSE) && c->len > c->echoed &&
		    c->len - c->echoed < want)
			want = c->len - c->echoed;
		r = recv(c->fd, buf, want, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			S.tcp_errors++;
			if (errno == ECONNRESET)
				S.resets++;
			sconn_free(idx, true, strerrorname_np(errno) ? strerrorname_np(errno) : "error");
			return;
		}
		if (r == 0) {
			c->rd_eof = true;
			break;
		}
		if (c->hdr_have < HDR_LEN) {
			uint32_t k = HDR_LEN - c->hdr_have;
			struct hdr h;

			if (k > r)
				k = r;
			memcpy(c->hdr + c->hdr_have, buf, k);
			c->hdr_have += k;
			if (c->hdr_have == HDR_LEN && !c->hdr_checked) {
				c->hdr_checked = true;
				check_dst(c->hdr, (void *)&c->local.ss, "tcp", &h);
				if (h.magic == HDR_MAGIC && h.len >= HDR_LEN) {
					c->hdr_ok = true;
					c->len = h.len;
					c->flags = h.flags;
					c->id = h.id;
				}
				ev("header %u id=%" PRId64, c->gen, c->hdr_ok ? (int64_t)c->id : -1);
			}
		}
		w = send(c->fd, buf, r, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno != EAGAIN) {
				S.tcp_errors++;
				if (errno == ECONNRESET)
					S.resets++;
				sconn_free(idx, true, strerrorname_np(errno) ? strerrorname_np(errno) : "error");
				return;
			}
			w = 0;
		}
		c->echoed += w;
		S.tcp_bytes += w;
		if (sconn_progress(idx))
			return;
		if (w < r) {
			if (!c->pend)
				c->pend = malloc(IOBUF);
			if (!c->pend)
				die("out of memory");
			memcpy(c->pend, buf + w, r - w);
			c->pend_off = 0;
			c->pend_len = r - w;
		}
	}

progress:
	if (c->rd_eof && !c->pend_len) {
		if (c->hdr_checked && !c->hdr_ok)
			; /* counted as bad header already */
		else if (!c->hdr_checked)
			S.no_header++;
		else if (!c->counted)
			S.eofs_early++;
		sconn_free(idx, false, "eof");
		return;
	}
	sconn_events(idx);
}

/*
 * The socket that answers for @origdst: IP_TRANSPARENT, bound to that
 * foreign address and port, so the reply leaves from where the client sent
 * to.  Kept for the process's life (the tests use a handful).
 */
static struct reply_sock *reply_sock(const struct sockaddr *origdst)
{
	struct reply_sock *r;
	int i, one = 1, fd;

	for (i = 0; i < S.nrs; i++)
		if (sa_equal((void *)&S.rs[i].a.ss, origdst))
			return &S.rs[i];
	if (S.nrs == MAX_REPLY_SOCKS)
		return NULL;
	fd = socket(origdst->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	set_transparent(fd, origdst->sa_family);
	set_v6only(fd, origdst->sa_family);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (S.rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &S.rcvbuf, sizeof(S.rcvbuf));
	if (origdst->sa_family == AF_INET)
		setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof(one));
	else
		setsockopt(fd, SOL_IPV6, IPV6_RECVORIGDSTADDR, &one, sizeof(one));
	if (bind(fd, origdst, sa_len(origdst->sa_family))) {
		char a[80];

		warnx_("reply socket bind %s: %s",
		       fmt_sa(origdst, a, sizeof(a)), strerror(errno));
		close(fd);
		return NULL;
	}
	r = &S.rs[S.nrs];
	r->fd = fd;
	memset(&r->a, 0, sizeof(r->a));
	memcpy(&r->a.ss, origdst, sa_len(origdst->sa_family));
	r->a.len = sa_len(origdst->sa_family);
	/*
	 * A datagram the kernel delivers to this socket (e.g. a `socket`
	 * rule matched it) is served the same way as the listener's.
	 */
	ep_add(S.ep, fd, EPOLLIN, ev_key(K_UDP, 0, 0x8000 | S.nrs));
	S.nrs++;
	return r;
}

/* Send @n replies on @fd; what the socket refuses (buffer full) is counted. */
static void udp_flush(int fd, struct mmsghdr *out, int n)
{
	int k = 0;

	while (k < n) {
		int s = sendmmsg(fd, out + k, n - k, MSG_DONTWAIT);

		if (s <= 0) {
			S.udp_reply_err++;
			k++;
			continue;
		}
		S.udp_out += s;
		k += s;
	}
}

/* IP(V6)_PKTINFO control data choosing @src as the source address. */
static void set_pktinfo(struct msghdr *m, uint8_t *ctl, size_t ctlsz,
			const struct sockaddr *src)
{
	struct cmsghdr *oc;

	memset(ctl, 0, ctlsz);
	m->msg_control = ctl;
	if (src->sa_family == AF_INET) {
		struct in_pktinfo pi = { 0 };

		m->msg_controllen = CMSG_SPACE(sizeof(pi));
		oc = CMSG_FIRSTHDR(m);
		oc->cmsg_level = SOL_IP;
		oc->cmsg_type = IP_PKTINFO;
		oc->cmsg_len = CMSG_LEN(sizeof(pi));
		pi.ipi_spec_dst = ((const struct sockaddr_in *)src)->sin_addr;
		memcpy(CMSG_DATA(oc), &pi, sizeof(pi));
	} else {
		struct in6_pktinfo pi = { 0 };

		m->msg_controllen = CMSG_SPACE(sizeof(pi));
		oc = CMSG_FIRSTHDR(m);
		oc->cmsg_level = SOL_IPV6;
		oc->cmsg_type = IPV6_PKTINFO;
		oc->cmsg_len = CMSG_LEN(sizeof(pi));
		pi.ipi6_addr = ((const struct sockaddr_in6 *)src)->sin6_addr;
		memcpy(CMSG_DATA(oc), &pi, sizeof(pi));
	}
}

/* Read a batch from a UDP socket, echo each datagram from where it was sent to. */
static void udp_io(int fd, const struct addr *bound)
{
	static uint8_t bufs[UDP_BATCH][UDP_BUFSZ];
	static uint8_t ctl[UDP_BATCH][256];
	static struct mmsghdr msgs[UDP_BATCH], out[UDP_BATCH];
	static struct iovec iov[UDP_BATCH], oiov[UDP_BATCH];
	static struct sockaddr_storage peers[UDP_BATCH];
	static uint8_t octl[UDP_BATCH][64];
	int n, i, nout = 0, outfd = -1;

	for (i = 0; i < UDP_BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = UDP_BUFSZ;
		memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &peers[i];
		msgs[i].msg_hdr.msg_namelen = sizeof(peers[i]);
		msgs[i].msg_hdr.msg_control = ctl[i];
		msgs[i].msg_hdr.msg_controllen = sizeof(ctl[i]);
	}
	n = recvmmsg(fd, msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return;

	for (i = 0; i < n; i++) {
		struct msghdr *m = &msgs[i].msg_hdr;
		struct sockaddr_storage origdst, pktdst;
		bool have_orig = false, have_pkt = false;
		struct cmsghdr *cm;
		struct hdr h;
		int rfd;
		char a[80];

		S.udp_in++;
		S.udp_bytes += msgs[i].msg_len;
		if (m->msg_flags & MSG_TRUNC) {
			S.udp_trunc++;
			continue;
		}
		memset(&pktdst, 0, sizeof(pktdst));
		for (cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm)) {
			if ((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_ORIGDSTADDR) ||
			    (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_ORIGDSTADDR)) {
				size_t l = cm->cmsg_len - CMSG_LEN(0);

				memset(&origdst, 0, sizeof(origdst));
				memcpy(&origdst, CMSG_DATA(cm), l < sizeof(origdst) ? l : sizeof(origdst));
				have_orig = true;
			} else if (cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo pi;
				struct sockaddr_in *sin = (void *)&pktdst;

				memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
				sin->sin_family = AF_INET;
				sin->sin_addr = pi.ipi_addr;
				sin->sin_port = ((const struct sockaddr_in *)&bound->ss)->sin_port;
				have_pkt = true;
			} else if (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
				struct in6_pktinfo pi;
				struct sockaddr_in6 *sin6 = (void *)&pktdst;

				memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
				sin6->sin6_family = AF_INET6;
				sin6->sin6_addr = pi.ipi6_addr;
				sin6->sin6_port = ((const struct sockaddr_in6 *)&bound->ss)->sin6_port;
				have_pkt = true;
			}
		}
		if (!have_orig && have_pkt) {
			origdst = pktdst;
			have_orig = true;
		}
		if (!have_orig) {
			S.udp_no_origdst++;
			if (S.udp_no_origdst < 5)
				warnx_("udp datagram from %s without a destination cmsg",
				       fmt_sa((void *)&peers[i], a, sizeof(a)));
			continue;
		}
		ac_add(&S.origdst, "udp", (void *)&origdst, 1);
		ac_add(&S.lsock, "udp", (void *)&bound->ss, 1);
		if (msgs[i].msg_len >= HDR_LEN)
			check_dst(bufs[i], (void *)&origdst, "udp", &h);
		else
			S.bad_header++;

		/* reply from the original destination */
		rfd = fd;
		if (S.transparent && !sa_equal((void *)&origdst, (void *)&bound->ss)) {
			struct reply_sock *r = reply_sock((void *)&origdst);

			if (!r) {
				S.udp_reply_err++;
				continue;
			}
			rfd = r->fd;
		}
		if (nout && rfd != outfd)
			udp_flush(outfd, out, nout);
		if (rfd != outfd)
			nout = 0;
		outfd = rfd;
		memset(&out[nout].msg_hdr, 0, sizeof(out[nout].msg_hdr));
		if (rfd == fd)
			/* the socket itself: source = the datagram's destination */
			set_pktinfo(&out[nout].msg_hdr, octl[nout], sizeof(octl[nout]),
				    (void *)&origdst);
		oiov[nout].iov_base = bufs[i];
		oiov[nout].iov_len = msgs[i].msg_len;
		out[nout].msg_hdr.msg_iov = &oiov[nout];
		out[nout].msg_hdr.msg_iovlen = 1;
		out[nout].msg_hdr.msg_name = &peers[i];
		out[nout].msg_hdr.msg_namelen = m->msg_namelen;
		nout++;
	}
	if (nout)
		udp_flush(outfd, out, nout);
}

static void usage_server(void)
{
	fprintf(stderr,
"usage: tpload server [options]\n"
"  --tcp ADDR:PORT       TCP listener (repeatable; [v6]:port)\n"
"  --udp ADDR:PORT       UDP socket (repeatable)\n"
"  --transparent         IP(V6)_TRANSPARENT; UDP replies from the original\n"
"                        destination (IP(V6)_ORIGDSTADDR)\n"
"  --backlog N           listen backlog (default 65535)\n"
"  --rcvbuf BYTES        SO_RCVBUF of the UDP sockets\n"
"  --churn OPEN:CLOSED   close every TCP listener after OPEN ms, reopen it\n"
"                        CLOSED ms later, for ever\n"
"  --ready-file FILE     created once every socket is bound\n"
"  --report FILE         write reports there (default: stdout)\n"
"  --lifetime SECONDS    exit after that long (default 3600)\n"
"  --log FILE            a line per TCP connection event (accept, header,\n"
"                        done, close), for tracing\n"
"Signals: USR1 writes a report, USR2 writes one and zeroes the counters,\n"
"TERM/INT/HUP write one and exit 0.\n");
}

static int server_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tcp", required_argument, NULL, 't' },
		{ "udp", required_argument, NULL, 'u' },
		{ "transparent", no_argument, NULL, 'T' },
		{ "backlog", required_argument, NULL, 'b' },
		{ "rcvbuf", required_argument, NULL, 'R' },
		{ "churn", required_argument, NULL, 'C' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "report", required_argument, NULL, 'o' },
		{ "lifetime", required_argument, NULL, 'L' },
		{ "log", required_argument, NULL, 'l' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct epoll_event evs[512];
	uint64_t churn_at = 0, t_end;
	bool open_now = true;
	int opt, i, sfd;

	S.backlog = 65535;
	S.lifetime = 3600;
	while ((opt = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
		case 'u':
			if (S.nl == MAX_LISTEN)
				die("too many sockets");
			if (!parse_addr(optarg, &S.l[S.nl].bind))
				die("bad address '%s'", optarg);
			S.l[S.nl].tcp = opt == 't';
			S.l[S.nl].family = addr_family(&S.l[S.nl].bind);
			S.l[S.nl].fd = -1;
			S.nl++;
			break;
		case 'T':
			S.transparent = true;
			break;
		case 'b':
			S.backlog = atoi(optarg);
			break;
		case 'R':
			S.rcvbuf = atoi(optarg);
			break;
		case 'C':
			if (sscanf(optarg, "%d:%d", &S.churn_open, &S.churn_closed) != 2 ||
			    S.churn_open <= 0 || S.churn_closed < 0)
				die("bad --churn '%s'", optarg);
			break;
		case 'r':
			S.ready = optarg;
			break;
		case 'o':
			S.report = optarg;
			break;
		case 'L':
			S.lifetime = atof(optarg);
			break;
		case 'l':
			open_evlog(optarg);
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			usage_server();
			return 0;
		default:
			usage_server();
			return EXIT_SETUP;
		}
	}
	if (!S.nl || optind != argc) {
		usage_server();
		return EXIT_SETUP;
	}
	raise_nofile(1 << 20);
	S.ep = epoll_create1(EPOLL_CLOEXEC);
	if (S.ep < 0)
		die("epoll_create1: %s", strerror(errno));
	sfd = signal_fd();
	ep_add(S.ep, sfd, EPOLLIN, ev_key(K_SIG, 0, 0));
	for (i = 0; i < S.nl; i++) {
		char a[80];

		if (open_listener(&S.l[i]) < 0)
			die("%s %s: %s", S.l[i].tcp ? "tcp" : "udp",
			    fmt_sa((void *)&S.l[i].bind.ss, a, sizeof(a)), strerror(errno));
		/* port 0: learn the port, so that a reopen gets the same one */
		S.l[i].bind.len = sizeof(S.l[i].bind.ss);
		getsockname(S.l[i].fd, (void *)&S.l[i].bind.ss, &S.l[i].bind.len);
	}
	if (S.ready) {
		int fd = open(S.ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0)
			die("ready file %s: %s", S.ready, strerror(errno));
		close(fd);
	}
	t_end = now_ms() + (uint64_t)(S.lifetime * 1000);
	if (S.churn_open)
		churn_at = now_ms() + S.churn_open;

	for (;;) {
		uint64_t now = now_ms();
		int n, timeout = 1000;

		if (now >= t_end)
			break;
		if (churn_at && now >= churn_at) {
			for (i = 0; i < S.nl; i++) {
				struct listener *l = &S.l[i];

				if (!l->tcp)
					continue;
				if (open_now) {
					close(l->fd);	/* pending connections are reset */
					l->fd = -1;
				} else if (open_listener(l) < 0) {
					S.listen_errors++;
				} else {
					S.reopens++;
				}
			}
			open_now = !open_now;
			churn_at = now + (open_now ? S.churn_open : S.churn_closed);
		}
		if (churn_at)
			timeout = churn_at > now ? (int)(churn_at - now) : 0;
		if (t_end - now < (uint64_t)timeout)
			timeout = t_end - now;
		n = epoll_wait(S.ep, evs, 512, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (i = 0; i < n; i++) {
			uint64_t k = evs[i].data.u64;
			unsigned int kind = k >> 56;
			uint32_t gen = (k >> 32) & 0xffffff, idx = (uint32_t)k;

			switch (kind) {
			case K_SIG:
				{
				struct signalfd_siginfo si;

				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGUSR1 || si.ssi_signo == SIGUSR2) {
						server_report(si.ssi_signo == SIGUSR2);
						continue;
					}
					server_report(false);
					return 0;
				}
				break;
			}
			case K_LISTEN:
				if (idx < (uint32_t)S.nl && S.l[idx].fd >= 0 &&
				    (S.l[idx].gen & 0xffffff) == gen)
					do_accept(&S.l[idx]);
				break;
			case K_UDP:
				if (idx & 0x8000) {
					idx &= 0x7fff;
					if ((int)idx < S.nrs)
						udp_io(S.rs[idx].fd, &S.rs[idx].a);
				} else if (idx < (uint32_t)S.nl && S.l[idx].fd >= 0) {
					udp_io(S.l[idx].fd, &S.l[idx].bind);
				}
				break;
			case K_CONN:
				if (idx < S.nc && S.c[idx]->fd >= 0 &&
				    (S.c[idx]->gen & 0xffffff) == gen)
					sconn_io(idx, evs[i].events);
				break;
			}
		}
	}
	server_report(false);
	return 0;
}

/* ============================================================ client */

struct conn {
	int fd;
	uint32_t gen;
	int state;		/* C_FREE, C_CONNECTING, C_RUNNING, C_DRAIN */
	uint64_t id;
	int dst;
	int sport;		/* -1: kernel's choice */
	uint64_t seed;
	uint64_t len, sent, rcvd;
	uint64_t start_ms, next_send_ms;
	bool want_out;
	uint8_t hdr[HDR_LEN];
	int prev, next;		/* in-flight list, oldest first */
};

enum { C_FREE, C_CONNECTING, C_RUNNING, C_DRAIN };

static struct {
	bool udp;
	struct addr dst[MAX_DSTS];
	int ndst;
	uint64_t n, conc, size;
	uint64_t seed;
	int sport_lo, sport_hi;
	bool server_close;
	uint32_t pace_chunk, pace_ms;
	double rate;		/* connections (datagrams) started per second, 0: no limit */
	uint32_t conn_timeout;	/* ms */
	double timeout;		/* s, overall */
	uint64_t datagrams;
	uint32_t flows, window;
	const char *report;
	int64_t corrupt_id;	/* self-test: corrupt this one's echo */
	int quiet;
	int ep;

	/* TCP */
	struct conn *c;
	int *free_slots, nfree;
	int head, tail;		/* in-flight list */
	int *ports;		/* FIFO of free source ports */
	int pq_head, pq_len, pq_cap;
	uint64_t started, active;
	uint64_t ok, failed, mismatched, timeouts, unstarted, bytes;
	uint64_t refused, reset, eof, addrnotavail, other;
	uint64_t err_by[160];
	int mismatch_logged;
	uint64_t connect_ms_sum, connected;

	/* UDP */
	int *ufd;
	uint8_t *ustate;	/* per datagram: 0 unsent, 1 in flight, 2 got, 3 expired, 4 bad */
	uint32_t *usent_ms;
	uint64_t unext, uoldest, uinflight;
	uint64_t usent, ureceived, ulost, ucorrupt, umisdelivered, udup, ulate;
	uint64_t usend_err, uicmp_err, ubogus;
	uint32_t rr;
	uint64_t t0;
} Cl;

/* --rate: may one more connection / datagram start now? */
static bool rate_allows(uint64_t started)
{
	if (Cl.rate <= 0)
		return true;
	return started < (uint64_t)((now_ms() - Cl.t0) * Cl.rate / 1000.0) + 1;
}

static void client_flag_error(int e)
{
	if (e > 0 && e < (int)ARRAY_SIZE(Cl.err_by))
		Cl.err_by[e]++;
	switch (e) {
	case ECONNREFUSED:
		Cl.refused++;
		break;
	case ECONNRESET:
	case EPIPE:
		Cl.reset++;
		break;
	case EADDRNOTAVAIL:
	case EADDRINUSE:
		Cl.addrnotavail++;
		break;
	case 0:
		Cl.eof++;
		break;
	default:
		Cl.other++;
		break;
	}
}

static void list_unlink(int i)
{
	struct conn *c = &Cl.c[i];

	if (c->prev >= 0)
		Cl.c[c->prev].next = c->next;
	else
		Cl.head = c->next;
	if (c->next >= 0)
		Cl.c[c->next].prev = c->prev;
	else
		Cl.tail = c->prev;
	c->prev = c->next = -1;
}

static void list_append(int i)
{
	struct conn *c = &Cl.c[i];

	c->next = -1;
	c->prev = Cl.tail;
	if (Cl.tail >= 0)
		Cl.c[Cl.tail].next = i;
	else
		Cl.head = i;
	Cl.tail = i;
}

static void port_put(int p)
{
	if (p < 0)
		return;
	Cl.ports[(Cl.pq_head + Cl.pq_len) % Cl.pq_cap] = p;
	Cl.pq_len++;
}

static int port_get(void)
{
	int p;

	if (!Cl.pq_len)
		return -1;
	p = Cl.ports[Cl.pq_head];
	Cl.pq_head = (Cl.pq_head + 1) % Cl.pq_cap;
	Cl.pq_len--;
	return p;
}

enum { END_OK, END_FAIL, END_MISMATCH, END_TIMEOUT };

static void conn_end(int i, int how, int err)
{
	struct conn *c = &Cl.c[i];

	switch (how) {
	case END_OK:
		Cl.ok++;
		break;
	case END_FAIL:
		Cl.failed++;
		client_flag_error(err);
		break;
	case END_MISMATCH:
		Cl.mismatched++;
		break;
	case END_TIMEOUT:
		Cl.timeouts++;
		break;
	}
	if (verbose > 1)
		warnx_("conn %" PRIu64 ": end %d err %d sent %" PRIu64 " rcvd %" PRIu64,
		       c->id, how, err, c->sent, c->rcvd);
	if (evlog) {
		static const char *const hows[] = { "ok", "fail", "mismatch", "timeout" };
		struct sockaddr_storage me;
		socklen_t ml = sizeof(me);
		char a[80] = "?";

		if (c->fd >= 0 && !getsockname(c->fd, (void *)&me, &ml))
			fmt_sa((void *)&me, a, sizeof(a));
		ev("%s id=%" PRIu64 " local=%s dst=%d sent=%" PRIu64 " rcvd=%" PRIu64 " %s",
		   hows[how], c->id, a, c->dst, c->sent, c->rcvd,
		   how == END_FAIL ? (err ? (strerrorname_np(err) ? strerrorname_np(err) : "E?") : "EOF") : "");
	}
	if (c->fd >= 0) {
		if (how == END_OK)
			close(c->fd);
		else
			close_rst(c->fd);
	}
	c->fd = -1;
	c->state = C_FREE;
	list_unlink(i);
	port_put(c->sport);
	Cl.free_slots[Cl.nfree++] = i;
	Cl.active--;
}

/* Bytes [off, off+n) of connection @c's stream. */
static void stream_bytes(const struct conn *c, uint64_t off, uint8_t *buf, size_t n)
{
	if (off < HDR_LEN) {
		size_t k = HDR_LEN - off;

		if (k > n)
			k = n;
		memcpy(buf, c->hdr + off, k);
		buf += k;
		off += k;
		n -= k;
	}
	if (n)
		pattern(c->seed, off, buf, n);
}

static void conn_set_events(int i)
{
	struct conn *c = &Cl.c[i];
	uint32_t ev = EPOLLIN | (c->want_out ? EPOLLOUT : 0);

	ep_mod(Cl.ep, c->fd, ev, ev_key(K_CONN, c->gen, i));
}

static void conn_start(int i)
{
	struct conn *c = &Cl.c[i];
	const struct addr *d;
	int fd, one = 1;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->prev = c->next = -1;
	c->id = Cl.started++;
	c->dst = c->id % Cl.ndst;
	c->gen = (uint32_t)c->id;
	c->len = Cl.size;
	c->seed = mix64(Cl.seed ^ mix64(c->id + 1));
	c->start_ms = now_ms();
	c->next_send_ms = c->start_ms;
	c->sport = -1;
	d = &Cl.dst[c->dst];
	hdr_build(c->hdr, Cl.server_close ? HDR_F_SCLOSE : 0, IPPROTO_TCP,
		  (uint32_t)c->len, 0, c->id, d);
	Cl.active++;
	list_append(i);
	c->state = C_CONNECTING;

	fd = socket(addr_family(d), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		conn_end(i, END_FAIL, errno);
		return;
	}
	c->fd = fd;
	if (Cl.sport_lo) {
		struct sockaddr_storage ss;

		c->sport = port_get();
		if (c->sport < 0) {
			conn_end(i, END_FAIL, EADDRNOTAVAIL);
			return;
		}
		memset(&ss, 0, sizeof(ss));
		ss.ss_family = addr_family(d);
		if (ss.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = htons(c->sport);
		else
			((struct sockaddr_in6 *)&ss)->sin6_port = htons(c->sport);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (void *)&ss, sa_len(ss.ss_family))) {
			conn_end(i, END_FAIL, errno);
			return;
		}
	}
	if (connect(fd, (void *)&d->ss, d->len) && errno != EINPROGRESS) {
		conn_end(i, END_FAIL, errno);
		return;
	}
	c->want_out = true;
	ep_add(Cl.ep, fd, EPOLLIN | EPOLLOUT, ev_key(K_CONN, c->gen, i));
}

/* Send what is due; false: the connection ended. */
static bool conn_send(int i)
{
	struct conn *c = &Cl.c[i];
	static uint8_t buf[IOBUF];
	uint64_t budget = c->len - c->sent;

	if (Cl.pace_ms) {
		uint64_t now = now_ms();

		if (now < c->next_send_ms) {
			if (c->want_out) {
				c->want_out = false;
				conn_set_events(i);
			}
			return true;
		}
		if (budget > Cl.pace_chunk)
			budget = Cl.pace_chunk;
	}
	while (budget) {
		size_t n = budget < sizeof(buf) ? budget : sizeof(buf);
		ssize_t w;

		stream_bytes(c, c->sent, buf, n);
		w = send(c->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN)
				break;
			conn_end(i, END_FAIL, errno);
			return false;
		}
		c->sent += w;
		budget -= w;
		if ((size_t)w < n)
			break;
	}
	if (Cl.pace_ms && !budget)
		c->next_send_ms = now_ms() + Cl.pace_ms;
	{
		bool want = c->sent < c->len && !(Cl.pace_ms && !budget);

		if (want != c->want_out) {
			c->want_out = want;
			conn_set_events(i);
		}
	}
	return true;
}

static void conn_recv(int i)
{
	struct conn *c = &Cl.c[i];
	static uint8_t buf[IOBUF], exp[IOBUF];
	int rounds;

	for (rounds = 0; rounds < 8; rounds++) {
		ssize_t r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_end(i, END_FAIL, errno);
			return;
		}
		if (r == 0) {
			if (c->state == C_DRAIN)
				conn_end(i, END_OK, 0);
			else
				conn_end(i, END_FAIL, 0);	/* EOF too early */
			return;
		}
		if (c->rcvd + r > c->len) {
			if (Cl.mismatch_logged++ < 10)
				warnx_("conn %" PRIu64 ": %zd bytes more than the %" PRIu64 " sent",
				       c->id, (ssize_t)(c->rcvd + r - c->len), c->len);
			conn_end(i, END_MISMATCH, 0);
			return;
		}
		stream_bytes(c, c->rcvd, exp, r);
		if (Cl.corrupt_id >= 0 && (uint64_t)Cl.corrupt_id == c->id && c->rcvd == 0)
			buf[r - 1] ^= 0x40;	/* self-test of the check */
		if (memcmp(buf, exp, r)) {
			ssize_t k = 0;

			while (k < r && buf[k] == exp[k])
				k++;
			if (Cl.mismatch_logged++ < 10)
				warnx_("conn %" PRIu64 " to dst %d: byte %" PRIu64
				       " is 0x%02x, sent 0x%02x", c->id, c->dst,
				       c->rcvd + k, buf[k], exp[k]);
			conn_end(i, END_MISMATCH, 0);
			return;
		}
		c->rcvd += r;
		Cl.bytes += r;
		if (c->rcvd == c->len) {
			if (!Cl.server_close) {
				conn_end(i, END_OK, 0);
				return;
			}
			c->state = C_DRAIN;	/* the server closes first */
		}
	}
}

static void conn_event(int i, uint32_t events)
{
	struct conn *c = &Cl.c[i];

	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) || err) {
			conn_end(i, END_FAIL, err ? err : errno);
			return;
		}
		c->state = C_RUNNING;
		Cl.connect_ms_sum += now_ms() - c->start_ms;
		Cl.connected++;
	}
	if ((events & EPOLLOUT) && c->sent < c->len)
		if (!conn_send(i))
			return;
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		conn_recv(i);
}

/* The client's report: to stdout, and to --report when given. */
static void client_emit(struct sbuf *b)
{
	fputs(b->p, stdout);
	fflush(stdout);
	if (Cl.report)
		write_file_atomic(Cl.report, b->p);
	free(b->p);
}

/*
 * Drain the signalfd: true when a signal other than SIGUSR1/2 (which a
 * client ignores) asks it to stop.
 */
static bool client_signalled(int sfd)
{
	struct signalfd_siginfo si;
	bool stop = false;

	while (read(sfd, &si, sizeof(si)) == sizeof(si))
		if (si.ssi_signo != SIGUSR1 && si.ssi_signo != SIGUSR2)
			stop = true;
	return stop;
}

static void client_report_tcp(double elapsed)
{
	struct sbuf b = { 0 };
	bool first = true;
	size_t e;

	sb_printf(&b, "tpload-client proto=tcp conns=%" PRIu64 " ok=%" PRIu64
		  " failed=%" PRIu64 " mismatched=%" PRIu64 " timeouts=%" PRIu64
		  " unstarted=%" PRIu64 " refused=%" PRIu64 " reset=%" PRIu64
		  " eof=%" PRIu64 " addrnotavail=%" PRIu64 " other=%" PRIu64
		  " bytes=%" PRIu64 " elapsed=%.3f rate=%.1f connect_ms_avg=%.2f errors=",
		  Cl.n, Cl.ok, Cl.failed, Cl.mismatched, Cl.timeouts, Cl.unstarted,
		  Cl.refused, Cl.reset, Cl.eof, Cl.addrnotavail, Cl.other, Cl.bytes,
		  elapsed, elapsed > 0 ? (Cl.ok + Cl.failed + Cl.mismatched) / elapsed : 0,
		  Cl.connected ? (double)Cl.connect_ms_sum / Cl.connected : 0.0);
	for (e = 1; e < ARRAY_SIZE(Cl.err_by); e++) {
		if (!Cl.err_by[e])
			continue;
		sb_printf(&b, "%s%s:%" PRIu64, first ? "" : ",", strerrorname_np((int)e) ?
			  strerrorname_np((int)e) : "E?", Cl.err_by[e]);
		first = false;
	}
	if (Cl.eof)
		sb_printf(&b, "%sEOF:%" PRIu64, first ? "" : ",", Cl.eof);
	else if (first)
		sb_printf(&b, "none");
	sb_printf(&b, "\n");
	client_emit(&b);
}

static int client_tcp(int sfd)
{
	struct epoll_event evs[1024];
	uint64_t t_end;
	int i;
	bool stop = false;

	Cl.c = xcalloc(Cl.conc, sizeof(*Cl.c));
	Cl.free_slots = xcalloc(Cl.conc, sizeof(int));
	for (i = Cl.conc - 1; i >= 0; i--) {
		Cl.c[i].fd = -1;
		Cl.free_slots[Cl.nfree++] = i;
	}
	Cl.head = Cl.tail = -1;
	if (Cl.sport_lo) {
		int p;

		Cl.pq_cap = Cl.sport_hi - Cl.sport_lo + 1;
		Cl.ports = xcalloc(Cl.pq_cap, sizeof(int));
		for (p = Cl.sport_lo; p <= Cl.sport_hi; p++)
			port_put(p);
	}
	t_end = Cl.t0 + (uint64_t)(Cl.timeout * 1000);

	for (;;) {
		uint64_t now;
		int n, timeout;

		/*
		 * new connections only between event batches: no stale event
		 * can hit a reused slot (the generation check is the backstop)
		 */
		while (!stop && Cl.nfree && Cl.started < Cl.n && rate_allows(Cl.started))
			conn_start(Cl.free_slots[--Cl.nfree]);
		if (Cl.started == Cl.n && !Cl.active)
			break;
		if (stop)
			break;
		timeout = Cl.pace_ms ? (int)(Cl.pace_ms < 20 ? Cl.pace_ms : 20) : 50;
		if (Cl.rate > 0 && timeout > 10)
			timeout = 10;
		n = epoll_wait(Cl.ep, evs, 1024, timeout);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (i = 0; i < n; i++) {
			uint64_t k = evs[i].data.u64;
			uint32_t gen = (k >> 32) & 0xffffff, idx = (uint32_t)k;

			if ((k >> 56) == K_SIG) {
				stop |= client_signalled(sfd);
				continue;
			}
			if (idx >= Cl.conc || Cl.c[idx].state == C_FREE ||
			    (Cl.c[idx].gen & 0xffffff) != gen)
				continue;
			conn_event(idx, evs[i].events);
		}
		now = now_ms();
		/* per-connection timeouts: the list is in start order */
		while (Cl.head >= 0 && now - Cl.c[Cl.head].start_ms >= Cl.conn_timeout)
			conn_end(Cl.head, END_TIMEOUT, 0);
		if (Cl.pace_ms) {
			for (i = Cl.head; i >= 0; ) {
				int nx = Cl.c[i].next;

				if (Cl.c[i].state == C_RUNNING && Cl.c[i].sent < Cl.c[i].len &&
				    now >= Cl.c[i].next_send_ms)
					conn_send(i);
				i = nx;
			}
		}
		if (now >= t_end) {
			warnx_("overall timeout (%.0f s) with %" PRIu64 " connections in flight",
			       Cl.timeout, Cl.active);
			stop = true;
		}
	}
	while (Cl.head >= 0)
		conn_end(Cl.head, END_TIMEOUT, 0);
	Cl.unstarted = Cl.n - Cl.started;
	client_report_tcp(now_s() - Cl.t0 / 1000.0);
	if (Cl.mismatched)
		return EXIT_INTEGRITY;
	if (Cl.ok != Cl.n)
		return EXIT_FAILURES;
	return EXIT_OK;
}

/* ------------------------------------------------------------ client UDP */

static void udp_send_some(void)
{
	static uint8_t buf[UDP_BUFSZ];
	uint32_t tries = 0;

	while (Cl.unext < Cl.datagrams && Cl.uinflight < Cl.window &&
	       tries < Cl.flows && rate_allows(Cl.unext)) {
		uint32_t f = Cl.rr;
		uint64_t s = Cl.unext;
		uint64_t seed = mix64(Cl.seed ^ mix64(s + 1) ^ 0x5544500000000000ull);
		ssize_t w;

		Cl.rr = (Cl.rr + 1) % Cl.flows;
		hdr_build(buf, 0, IPPROTO_UDP, (uint32_t)Cl.size, f, s,
			  &Cl.dst[f % Cl.ndst]);
		pattern(seed, HDR_LEN, buf + HDR_LEN, Cl.size - HDR_LEN);
		w = send(Cl.ufd[f], buf, Cl.size, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == ENOBUFS) {
				tries++;
				continue;	/* try another flow */
			}
			if (errno == ECONNREFUSED) {
				Cl.uicmp_err++;	/* an earlier datagram's ICMP error */
				tries++;
				continue;
			}
			Cl.usend_err++;
		}
		tries = 0;
		Cl.ustate[s] = 1;
		Cl.usent_ms[s] = (uint32_t)(now_ms() - Cl.t0);
		Cl.unext++;
		Cl.usent++;
		Cl.uinflight++;
	}
}

/*
 * Datagram @id came back corrupt or on the wrong flow: it is accounted
 * there, not as lost as well.
 */
static void udp_resolve_bad(uint64_t id)
{
	if (Cl.ustate[id] == 1)
		Cl.uinflight--;
	else if (Cl.ustate[id] == 3)
		Cl.ulost--;
	else
		return;
	Cl.ustate[id] = 4;
}

static void udp_recv_flow(uint32_t f)
{
	static uint8_t bufs[UDP_BATCH][UDP_BUFSZ];
	static uint8_t exp[UDP_BUFSZ];
	static struct mmsghdr msgs[UDP_BATCH];
	static struct iovec iov[UDP_BATCH];
	static struct sockaddr_storage from[UDP_BATCH];
	const struct addr *d = &Cl.dst[f % Cl.ndst];
	int n, i;

	for (i = 0; i < UDP_BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = UDP_BUFSZ;
		memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &from[i];
		msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
	}
	n = recvmmsg(Cl.ufd[f], msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
	if (n < 0) {
		if (errno == ECONNREFUSED)
			Cl.uicmp_err++;
		return;
	}
	for (i = 0; i < n; i++) {
		uint8_t *p = bufs[i];
		struct hdr h;
		uint64_t seed;
		char a[80], b[80];

		if (!sa_equal((void *)&from[i], (void *)&d->ss)) {
			/* a connected socket should never see this */
			Cl.umisdelivered++;
			if (Cl.mismatch_logged++ < 10)
				warnx_("flow %u: reply from %s, sent to %s", f,
				       fmt_sa((void *)&from[i], a, sizeof(a)),
				       fmt_sa((void *)&d->ss, b, sizeof(b)));
			continue;
		}
		if (msgs[i].msg_len != Cl.size || !hdr_parse(p, &h) ||
		    h.len != Cl.size || h.id >= Cl.datagrams || h.proto != IPPROTO_UDP) {
			Cl.ucorrupt++;
			if (Cl.mismatch_logged++ < 10)
				warnx_("flow %u: corrupt reply (%u bytes)", f, msgs[i].msg_len);
			continue;
		}
		if (h.flow != f || !sa_equal((void *)&h.dst.ss, (void *)&d->ss)) {
			Cl.umisdelivered++;
			udp_resolve_bad(h.id);
			if (Cl.mismatch_logged++ < 10)
				warnx_("flow %u: got datagram %" PRIu64 " of flow %u (to %s)",
				       f, h.id, h.flow, fmt_sa((void *)&h.dst.ss, a, sizeof(a)));
			continue;
		}
		seed = mix64(Cl.seed ^ mix64(h.id + 1) ^ 0x5544500000000000ull);
		pattern(seed, HDR_LEN, exp, Cl.size - HDR_LEN);
		if (Cl.corrupt_id >= 0 && (uint64_t)Cl.corrupt_id == h.id)
			p[Cl.size - 1] ^= 0x40;	/* self-test of the check */
		if (memcmp(p + HDR_LEN, exp, Cl.size - HDR_LEN)) {
			Cl.ucorrupt++;
			udp_resolve_bad(h.id);
			if (Cl.mismatch_logged++ < 10)
				warnx_("flow %u: datagram %" PRIu64 " payload differs", f, h.id);
			continue;
		}
		switch (Cl.ustate[h.id]) {
		case 0:
			Cl.ubogus++;	/* never sent */
			break;
		case 1:
			Cl.ustate[h.id] = 2;
			Cl.ureceived++;
			Cl.uinflight--;
			break;
		case 2:
		case 4:
			Cl.udup++;
			break;
		case 3:
			Cl.ustate[h.id] = 2;
			Cl.ureceived++;
			Cl.ulate++;
			Cl.ulost--;
			break;
		}
	}
}

static void client_report_udp(double elapsed)
{
	struct sbuf b = { 0 };

	sb_printf(&b, "tpload-client proto=udp datagrams=%" PRIu64 " sent=%" PRIu64
		  " received=%" PRIu64 " lost=%" PRIu64 " corrupt=%" PRIu64
		  " misdelivered=%" PRIu64 " duplicate=%" PRIu64 " late=%" PRIu64
		  " bogus=%" PRIu64 " send_errors=%" PRIu64 " icmp_errors=%" PRIu64
		  " unsent=%" PRIu64 " flows=%u window=%u size=%" PRIu64
		  " elapsed=%.3f rate=%.1f\n",
		  Cl.datagrams, Cl.usent, Cl.ureceived, Cl.ulost, Cl.ucorrupt,
		  Cl.umisdelivered, Cl.udup, Cl.ulate, Cl.ubogus, Cl.usend_err,
		  Cl.uicmp_err, Cl.datagrams - Cl.usent, Cl.flows, Cl.window, Cl.size,
		  elapsed, elapsed > 0 ? Cl.ureceived / elapsed : 0);
	client_emit(&b);
}

static int client_udp(int sfd)
{
	struct epoll_event evs[256];
	uint64_t t_end;
	uint32_t f;
	bool stop = false;

	if (Cl.size < HDR_LEN || Cl.size > UDP_BUFSZ)
		die("--size must be %d..%d for UDP", HDR_LEN, UDP_BUFSZ);
	Cl.ufd = xcalloc(Cl.flows, sizeof(int));
	Cl.ustate = xcalloc(Cl.datagrams, 1);
	Cl.usent_ms = xcalloc(Cl.datagrams, sizeof(uint32_t));
	for (f = 0; f < Cl.flows; f++) {
		const struct addr *d = &Cl.dst[f % Cl.ndst];
		int fd = socket(addr_family(d), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0)
			die("socket: %s", strerror(errno));
		if (Cl.sport_lo) {
			struct sockaddr_storage ss;
			int one = 1;
			int p = Cl.sport_lo + (int)f;

			if (p > Cl.sport_hi)
				die("--sport range smaller than --flows");
			memset(&ss, 0, sizeof(ss));
			ss.ss_family = addr_family(d);
			if (ss.ss_family == AF_INET)
				((struct sockaddr_in *)&ss)->sin_port = htons(p);
			else
				((struct sockaddr_in6 *)&ss)->sin6_port = htons(p);
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (bind(fd, (void *)&ss, sa_len(ss.ss_family)))
				die("bind port %d: %s", p, strerror(errno));
		}
		if (connect(fd, (void *)&d->ss, d->len))
			die("connect: %s", strerror(errno));
		Cl.ufd[f] = fd;
		ep_add(Cl.ep, fd, EPOLLIN, ev_key(K_FLOW, 0, f));
	}
	t_end = Cl.t0 + (uint64_t)(Cl.timeout * 1000);

	for (;;) {
		uint64_t now;
		int n, i;

		if (!stop)
			udp_send_some();
		if (stop || (Cl.unext == Cl.datagrams && !Cl.uinflight))
			break;
		n = epoll_wait(Cl.ep, evs, 256, Cl.rate > 0 ? 10 : 20);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (i = 0; i < n; i++) {
			uint64_t k = evs[i].data.u64;

			if ((k >> 56) == K_SIG) {
				stop |= client_signalled(sfd);
				continue;
			}
			udp_recv_flow((uint32_t)k);
		}
		now = now_ms() - Cl.t0;
		while (Cl.uoldest < Cl.unext) {
			uint64_t s = Cl.uoldest;

			if (Cl.ustate[s] == 1) {
				if (now - Cl.usent_ms[s] < Cl.conn_timeout)
					break;
				Cl.ustate[s] = 3;
				Cl.ulost++;
				Cl.uinflight--;
			}
			Cl.uoldest++;
		}
		if (now_ms() >= t_end) {
			warnx_("overall timeout (%.0f s)", Cl.timeout);
			stop = true;
		}
	}
	/* whatever is still in flight is lost */
	for (; Cl.uoldest < Cl.unext; Cl.uoldest++) {
		if (Cl.ustate[Cl.uoldest] == 1) {
			Cl.ustate[Cl.uoldest] = 3;
			Cl.ulost++;
		}
	}
	client_report_udp(now_s() - Cl.t0 / 1000.0);
	if (Cl.ucorrupt || Cl.umisdelivered || Cl.ubogus || Cl.udup)
		return EXIT_INTEGRITY;
	if (Cl.ureceived != Cl.datagrams)
		return EXIT_FAILURES;
	return EXIT_OK;
}

static void usage_client(void)
{
	fprintf(stderr,
"usage: tpload client --tcp DST[,DST...] [options]\n"
"       tpload client --udp DST[,DST...] [options]\n"
"  DST is ADDR:PORT or [ADDR6]:PORT; connection/flow i goes to DST[i %% n].\n"
"TCP:\n"
"  -n, --conns N          connections in total (default 1)\n"
"  -c, --concurrency C    at most C at once (default N)\n"
"  --size BYTES           bytes sent and verified per connection (>= 48,\n"
"                         default 1024)\n"
"  --server-close         the server closes first, after echoing everything\n"
"                         (its side keeps the TIME_WAIT)\n"
"  --pace CHUNK:MS        send CHUNK bytes every MS ms per connection\n"
"  --sport LO-HI          bind source ports from LO-HI, reused first-freed,\n"
"                         first-reused (so a port comes back while its last\n"
"                         tuple may still be in TIME_WAIT somewhere)\n"
"UDP:\n"
"  --datagrams M          datagrams in total (default 1000)\n"
"  --flows F              connected sockets (default 16)\n"
"  --window W             datagrams in flight over all flows (default 256)\n"
"  --size BYTES           datagram size (48..4096, default 64)\n"
"  --sport LO-HI          flow f binds LO+f\n"
"Both:\n"
"  --seed S               pattern seed (default 1)\n"
"  --rate R               start at most R connections (datagrams) a second\n"
"  --conn-timeout MS      per connection / per datagram (default 10000 / 2000)\n"
"  --timeout SECONDS      overall (default 300)\n"
"  --report FILE          also write the report line there\n"
"  --log FILE             TCP: a line per connection's end (ok, fail,\n"
"                         mismatch, timeout), with its local address\n"
"  --selftest-corrupt ID  flip a byte of connection/datagram ID's echo on\n"
"                         receipt (proves the check fails; exit 2)\n"
"Exit: 0 all verified, 1 failures/timeouts/loss, 2 mismatch/corrupt/\n"
"misdelivered, 3 usage or setup error.\n");
}

static int parse_dsts(const char *s)
{
	char *copy = strdup(s), *tok, *save = NULL;
	int n = 0;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == MAX_DSTS)
			die("too many destinations");
		if (!parse_addr(tok, &Cl.dst[n]))
			die("bad destination '%s'", tok);
		n++;
	}
	free(copy);
	return n;
}

static int client_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tcp", required_argument, NULL, 't' },
		{ "udp", required_argument, NULL, 'u' },
		{ "conns", required_argument, NULL, 'n' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },
		{ "sport", required_argument, NULL, 'p' },
		{ "server-close", no_argument, NULL, 'X' },
		{ "pace", required_argument, NULL, 'P' },
		{ "rate", required_argument, NULL, 'r' },
		{ "conn-timeout", required_argument, NULL, 'k' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "datagrams", required_argument, NULL, 'm' },
		{ "flows", required_argument, NULL, 'f' },
		{ "window", required_argument, NULL, 'w' },
		{ "report", required_argument, NULL, 'o' },
		{ "selftest-corrupt", required_argument, NULL, 'Z' },
		{ "log", required_argument, NULL, 'l' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int opt, sfd, rc;
	bool size_set = false, timeout_set = false;

	Cl.n = 1;
	Cl.seed = 1;
	Cl.timeout = 300;
	Cl.datagrams = 1000;
	Cl.flows = 16;
	Cl.window = 256;
	Cl.corrupt_id = -1;
	while ((opt = getopt_long(argc, argv, "n:c:hv", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
		case 'u':
			if (Cl.ndst)
				die("one of --tcp or --udp, once");
			Cl.udp = opt == 'u';
			Cl.ndst = parse_dsts(optarg);
			break;
		case 'n':
			Cl.n = strtoull(optarg, NULL, 0);
			break;
		case 'c':
			Cl.conc = strtoull(optarg, NULL, 0);
			break;
		case 's':
			Cl.size = strtoull(optarg, NULL, 0);
			size_set = true;
			break;
		case 'S':
			Cl.seed = strtoull(optarg, NULL, 0);
			break;
		case 'p':
			if (sscanf(optarg, "%d-%d", &Cl.sport_lo, &Cl.sport_hi) != 2 ||
			    Cl.sport_lo < 1 || Cl.sport_hi > 65535 || Cl.sport_hi < Cl.sport_lo)
				die("bad --sport '%s'", optarg);
			break;
		case 'X':
			Cl.server_close = true;
			break;
		case 'P':
			if (sscanf(optarg, "%u:%u", &Cl.pace_chunk, &Cl.pace_ms) != 2 ||
			    !Cl.pace_chunk || !Cl.pace_ms)
				die("bad --pace '%s'", optarg);
			break;
		case 'r':
			Cl.rate = atof(optarg);
			break;
		case 'k':
			Cl.conn_timeout = strtoul(optarg, NULL, 0);
			timeout_set = true;
			break;
		case 'T':
			Cl.timeout = atof(optarg);
			break;
		case 'm':
			Cl.datagrams = strtoull(optarg, NULL, 0);
			break;
		case 'f':
			Cl.flows = strtoul(optarg, NULL, 0);
			break;
		case 'w':
			Cl.window = strtoul(optarg, NULL, 0);
			break;
		case 'o':
			Cl.report = optarg;
			break;
		case 'Z':
			Cl.corrupt_id = strtoll(optarg, NULL, 0);
			break;
		case 'l':
			open_evlog(optarg);
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			usage_client();
			return 0;
		default:
			usage_client();
			return EXIT_SETUP;
		}
	}
	if (!Cl.ndst || optind != argc) {
		usage_client();
		return EXIT_SETUP;
	}
	if (!size_set)
		Cl.size = Cl.udp ? 64 : 1024;
	if (!timeout_set)
		Cl.conn_timeout = Cl.udp ? 2000 : 10000;
	if (Cl.size < HDR_LEN || Cl.size > UINT32_MAX)
		die("--size must be at least %d", HDR_LEN);
	if (!Cl.conc || Cl.conc > Cl.n)
		Cl.conc = Cl.n;
	if (Cl.sport_lo && !Cl.udp && Cl.conc > (uint64_t)(Cl.sport_hi - Cl.sport_lo + 1))
		die("--concurrency larger than the --sport range");
	if (Cl.udp && (!Cl.flows || !Cl.window || Cl.flows > 65536))
		die("--flows 1..65536 and --window >= 1");
	if (!Cl.n)
		die("-n must be at least 1");
	raise_nofile((Cl.udp ? Cl.flows : Cl.conc) + 64);
	Cl.ep = epoll_create1(EPOLL_CLOEXEC);
	if (Cl.ep < 0)
		die("epoll_create1: %s", strerror(errno));
	sfd = signal_fd();
	ep_add(Cl.ep, sfd, EPOLLIN, ev_key(K_SIG, 0, 0));
	Cl.t0 = now_ms();
	rc = Cl.udp ? client_udp(sfd) : client_tcp(sfd);
	if (evlog)
		fclose(evlog);
	return rc;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage_server();
		usage_client();
		return argc < 2 ? EXIT_SETUP : 0;
	}
	if (!strcmp(argv[1], "server")) {
		prog = "tpload server";
		return server_main(argc - 1, argv + 1);
	}
	if (!strcmp(argv[1], "client")) {
		prog = "tpload client";
		return client_main(argc - 1, argv + 1);
	}
	die("unknown mode '%s' (server or client)", argv[1]);
}

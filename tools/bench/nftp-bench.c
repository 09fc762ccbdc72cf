// SPDX-License-Identifier: GPL-2.0
/*
 * nftp-bench: the workload of `make bench`.  One process, blocking
 * sockets, one unit at a time, so that the kernel's work per unit is the
 * same in every setup: the client's socket lives in one network namespace,
 * the server's (the proxy's) in another, and every unit runs its whole
 * path before the next starts.
 *
 *   nftp-bench udp|tcp|bulk --client NETNS --server NETNS
 *              --dst ADDR:PORT --bind ADDR:PORT [--transparent]
 *              [-n UNITS] [-w WARMUP] [--flows F]
 *
 *   udp   a datagram, client to server, received
 *   tcp   a connection: connect, accept, close both (client first)
 *   bulk  64 KiB, client to server, over one connection
 *
 * NETNS is a path (/run/netns/NAME).  --flows F first opens F more TCP
 * connections the same way and leaves them established, to see what the
 * size of the socket tables costs (tcp and bulk only: the flows need a
 * listener); every 50000 of them go to the next address after --dst's
 * (ADDR+1, ADDR+2, ...), which must reach the server.  Around the N
 * measured units (after WARMUP unmeasured ones) it executes the markers
 * that the kinsn plugin (tools/bench/kinsn.c) counts at: 1 before, 2
 * after.  Prints "units N"
 * and exits 0, or exits 1 on a failed unit, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif

/* the kinsn plugin's markers: nopl 0x4e4654NN(%rax), NN = 01 and 02 */
static void mark_begin(void)
{
	asm volatile("nopl 0x4e465401(%%rax)" ::: "memory");
}

static void mark_end(void)
{
	asm volatile("nopl 0x4e465402(%%rax)" ::: "memory");
}

#define BULK_CHUNK 65536
#define FLOWS_PER_DST 50000

enum work { W_UDP, W_TCP, W_BULK };

static struct {
	enum work work;
	const char *client_ns, *server_ns;
	struct sockaddr_in dst, bind;
	bool transparent;
	long units, warmup, flows;
} cfg = { .units = 1000, .warmup = 100 };

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("nftp-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static void enter_ns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || setns(fd, CLONE_NEWNET))
		die(1, "%s: %s", path, strerror(errno));
	close(fd);
}

static void parse_addr(const char *arg, struct sockaddr_in *sin)
{
	char host[64];
	const char *colon = strrchr(arg, ':');
	char *end;
	long port;

	if (!colon || (size_t)(colon - arg) >= sizeof(host))
		die(2, "want ADDR:PORT, not '%s'", arg);
	memcpy(host, arg, colon - arg);
	host[colon - arg] = '\0';
	port = strtol(colon + 1, &end, 10);
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((unsigned short)port);
	if (*end || port < 1 || port > 65535 ||
	    inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		die(2, "want ADDR:PORT (IPv4), not '%s'", arg);
}

static int sock_in(const char *ns, int type)
{
	struct timeval tv = { .tv_sec = 10 };
	int fd;

	enter_ns(ns);
	fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die(1, "socket: %s", strerror(errno));
	/* a lost unit fails the run instead of hanging it */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		die(1, "SO_RCVTIMEO: %s", strerror(errno));
	return fd;
}

static int server_socket(int type)
{
	int one = 1, fd = sock_in(cfg.server_ns, type);

	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (cfg.transparent &&
	     setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one))))
		die(1, "setsockopt: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&cfg.bind, sizeof(cfg.bind)))
		die(1, "bind: %s", strerror(errno));
	if (type == SOCK_STREAM && listen(fd, 4096))
		die(1, "listen: %s", strerror(errno));
	return fd;
}

/* a connection to @dst, accepted; the client's end in *cfd */
static int tcp_pair(int lfd, const struct sockaddr_in *dst, int *cfd)
{
	int afd;

	*cfd = sock_in(cfg.client_ns, SOCK_STREAM);
	if (connect(*cfd, (const struct sockaddr *)dst, sizeof(*dst)))
		die(1, "connect: %s", strerror(errno));
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (afd < 0)
		die(1, "accept: %s", strerror(errno));
	return afd;
}

static void udp_units(int cfd, int sfd, long n)
{
	char buf[64] = "nftp-bench";

	while (n--) {
		if (sendto(cfd, buf, sizeof(buf), 0,
			   (struct sockaddr *)&cfg.dst, sizeof(cfg.dst)) < 0)
			die(1, "sendto: %s", strerror(errno));
		if (recv(sfd, buf, sizeof(buf), 0) != sizeof(buf))
			die(1, "recv: %s", strerror(errno));
	}
}

static void tcp_units(int lfd, long n)
{
	while (n--) {
		int cfd, afd = tcp_pair(lfd, &cfg.dst, &cfd);

		close(cfd);
		close(afd);
	}
}

static void bulk_units(int cfd, int afd, long n)
{
	static char buf[BULK_CHUNK];

	while (n--) {
		size_t sent = 0, got = 0;

		while (got < sizeof(buf)) {
			ssize_t r;

			if (sent < sizeof(buf)) {
				r = send(cfd, buf + sent, sizeof(buf) - sent,
					 MSG_DONTWAIT);
				if (r < 0 && errno != EAGAIN)
					die(1, "send: %s", strerror(errno));
				if (r > 0)
					sent += r;
			}
			r = recv(afd, buf, sizeof(buf) - got, 0);
			if (r <= 0)
				die(1, "recv: %s", r ? strerror(errno) : "EOF");
			got += r;
		}
	}
}

static void raise_nofile(long want)
{
	struct rlimit rl = { want, want };

	if (setrlimit(RLIMIT_NOFILE, &rl))
		die(1, "RLIMIT_NOFILE %ld: %s", want, strerror(errno));
}

static void usage(void)
{
	fputs("usage: nftp-bench udp|tcp|bulk --client NETNS --server NETNS\n"
	      "        --dst ADDR:PORT --bind ADDR:PORT [--transparent]\n"
	      "        [-n UNITS] [-w WARMUP] [--flows F]\n", stderr);
	exit(2);
}

static long number(const char *arg)
{
	char *end;
	long v = strtol(arg, &end, 10);

	if (*end || v < 0 || v > 10000000)
		die(2, "not a count: '%s'", arg);
	return v;
}

static void parse(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "client", required_argument, NULL, 'c' },
		{ "server", required_argument, NULL, 's' },
		{ "dst", required_argument, NULL, 'd' },
		{ "bind", required_argument, NULL, 'b' },
		{ "transparent", no_argument, NULL, 't' },
		{ "flows", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 }
	};
	bool dst = false, bnd = false;
	int c;

	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "udp"))
		cfg.work = W_UDP;
	else if (!strcmp(argv[1], "tcp"))
		cfg.work = W_TCP;
	else if (!strcmp(argv[1], "bulk"))
		cfg.work = W_BULK;
	else
		usage();
	optind = 2;
	while ((c = getopt_long(argc, argv, "n:w:", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cfg.client_ns = optarg;
			break;
		case 's':
			cfg.server_ns = optarg;
			break;
		case 'd':
			parse_addr(optarg, &cfg.dst);
			dst = true;
			break;
		case 'b':
			parse_addr(optarg, &cfg.bind);
			bnd = true;
			break;
		case 't':
			cfg.transparent = true;
			break;
		case 'f':
			cfg.flows = number(optarg);
			break;
		case 'n':
			cfg.units = number(optarg);
			break;
		case 'w':
			cfg.warmup = number(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || !cfg.client_ns || !cfg.server_ns || !dst || !bnd)
		usage();
	if (cfg.flows && cfg.work == W_UDP)
		die(2, "--flows wants tcp or bulk (the flows need a listener)");
}

int main(int argc, char **argv)
{
	int lfd, cfd = -1, afd = -1;
	long i;

	parse(argc, argv);
	raise_nofile(2 * cfg.flows + 64);
	lfd = server_socket(cfg.work == W_UDP ? SOCK_DGRAM : SOCK_STREAM);
	for (i = 0; i < cfg.flows; i++) {
		struct sockaddr_in dst = cfg.dst;
		int idle;

		/* one client address has 64k ports to a destination */
		dst.sin_addr.s_addr = htonl(ntohl(dst.sin_addr.s_addr) +
					    i / FLOWS_PER_DST);
		tcp_pair(lfd, &dst, &idle);
	}
	switch (cfg.work) {
	case W_UDP:
		cfd = sock_in(cfg.client_ns, SOCK_DGRAM);
		udp_units(cfd, lfd, cfg.warmup);
		mark_begin();
		udp_units(cfd, lfd, cfg.units);
		mark_end();
		break;
	case W_TCP:
		tcp_units(lfd, cfg.warmup);
		mark_begin();
		tcp_units(lfd, cfg.units);
		mark_end();
		break;
	case W_BULK:
		afd = tcp_pair(lfd, &cfg.dst, &cfd);
		bulk_units(cfd, afd, cfg.warmup);
		mark_begin();
		bulk_units(cfd, afd, cfg.units);
		mark_end();
		break;
	}
	printf("units %ld\n", cfg.units);
	return 0;
}

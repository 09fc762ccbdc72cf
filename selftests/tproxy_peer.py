#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Servers and clients for the nft tproxy selftests (python3 standard library only).

Server mode answers every TCP line or UDP datagram with one line:

    <role> laddr=<local addr:port> peer=<peer addr:port> lsock=<listening addr:port> seq=<n>

laddr is the address the peer talked to: getsockname() of the accepted TCP
socket, or for UDP the original destination from IP(V6)_ORIGDSTADDR
(--transparent) or IP(V6)_PKTINFO. For a transparent proxy these are the
client's and the real server's addresses. lsock is the socket that was
bound by this process (the listener), so a test can tell which listener got
the connection.

Client mode connects (TCP) or sends (UDP, on a connected socket, so only a
reply from the address it sent to is accepted) and prints each reply line.
Exit status: 0 every reply arrived, 1 network failure (refused, reset,
timeout, short reply), 2 usage error.

Proxy mode (server --proxy, with --transparent): for each diverted TCP
connection or UDP datagram, open a second IP(V6)_TRANSPARENT socket bound to
the CLIENT's address (port 0), connect it to the ORIGINAL destination, relay
the line, and answer the client with

    <role> laddr=<orig dst> peer=<client> lsock=<listener> via=<upstream local addr:port> upstream=[<server's reply>] seq=<n>

so a test sees both what the proxy got and what the real server saw.

--mark N sets SO_MARK on the sockets (server: listener and UDP sockets,
client: its socket). Client --transparent sets IP(V6)_TRANSPARENT before
--bind, so the client can bind a foreign (e.g. another host's) address.
UDP client --expect-error ECONNREFUSED|EMSGSIZE: send (optionally --df and
--size) and succeed only when that error comes back (an ICMP error); it
prints "error=NAME mtu=<path MTU the socket learned>".

IPv6 addresses are written [addr]:port. IPv6 sockets are always V6ONLY.
"""

import argparse
import errno
import os
import select
import signal
import socket
import struct
import sys
import threading
import time

SOL_IP = 0
SOL_IPV6 = 41
IP_PKTINFO = 8
IP_TRANSPARENT = 19
IP_RECVORIGDSTADDR = 20
IP_ORIGDSTADDR = 20
IPV6_V6ONLY = 26
IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50
IPV6_RECVORIGDSTADDR = 74
IPV6_ORIGDSTADDR = 74
IPV6_TRANSPARENT = 75
IP_MTU_DISCOVER = 10
IP_PMTUDISC_DO = 2
IP_MTU = 14
IPV6_MTU_DISCOVER = 23
IPV6_MTU = 24
IPV6_PMTUDISC_DO = 2
SO_MARK = 36

LOG_LOCK = threading.Lock()
LOG_FILE = None


def log(msg):
    """Append an event line to the log file (if any) and to stderr."""
    line = "%.3f %s\n" % (time.time(), msg)
    with LOG_LOCK:
        if LOG_FILE is not None:
            LOG_FILE.write(line)
            LOG_FILE.flush()
        sys.stderr.write(line)
        sys.stderr.flush()


def parse_addr(text):
    """'1.2.3.4:80' or '[dead::1]:80' -> (family, (host, port))."""
    try:
        if text.startswith("["):
            host, sep, port = text[1:].partition("]:")
            if not sep:
                raise ValueError(text)
            socket.inet_pton(socket.AF_INET6, host)
            return socket.AF_INET6, (host, int(port))
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ValueError(text)
        socket.inet_pton(socket.AF_INET, host)
        return socket.AF_INET, (host, int(port))
    except (ValueError, OSError):
        raise argparse.ArgumentTypeError(
            "bad address %r: use A.B.C.D:PORT or [V6ADDR]:PORT" % text)


def fmt(sockaddr):
    host, port = sockaddr[0], sockaddr[1]
    if ":" in host:
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)


def make_socket(family, kind, transparent=False, reuse=True, mark=None):
    sock = socket.socket(family, kind)
    if mark is not None:
        sock.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
    if reuse:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(SOL_IPV6, IPV6_V6ONLY, 1)
    if transparent:
        if family == socket.AF_INET:
            sock.setsockopt(SOL_IP, IP_TRANSPARENT, 1)
        else:
            sock.setsockopt(SOL_IPV6, IPV6_TRANSPARENT, 1)
    return sock


def signal_ready(path):
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(tmp, path)


def reply_line(role, laddr, peer, lsock, seq):
    return "%s laddr=%s peer=%s lsock=%s seq=%d\n" % (role, laddr, peer, lsock, seq)


# ---------------------------------------------------------------- TCP server

def recv_line(sock, buf):
    """Return (line, rest) or (None, buf) on EOF. sock must be blocking or timed."""
    while b"\n" not in buf:
        data = sock.recv(4096)
        if not data:
            return None, buf
        buf += data
    line, _, rest = buf.partition(b"\n")
    return line, rest


def upstream_socket(args, family, kind, client_sa):
    """A transparent socket bound to the client's address (any port)."""
    up = make_socket(family, kind, transparent=True, mark=args.mark)
    up.settimeout(args.upstream_timeout)
    up.bind((client_sa[0], 0))
    return up


def proxy_line(args, laddr, peer, lsock, via, upstream, seq):
    return "%s laddr=%s peer=%s lsock=%s via=%s upstream=[%s] seq=%d\n" % (
        args.role, laddr, peer, lsock, via, upstream, seq)


def tcp_handle(args, conn, lsock):
    try:
        orig_sa = conn.getsockname()
        peer_sa = conn.getpeername()
        laddr = fmt(orig_sa)
        peer = fmt(peer_sa)
    except OSError as e:
        log("conn-error %s" % e)
        conn.close()
        return
    log("accept laddr=%s peer=%s lsock=%s" % (laddr, peer, lsock))
    buf = b""
    seq = 0
    up = None
    upbuf = b""
    via = None
    conn.settimeout(args.idle_timeout)
    try:
        if args.proxy:
            # connect to the original destination from the client's address
            up = upstream_socket(args, conn.family, socket.SOCK_STREAM, peer_sa)
            try:
                up.connect(orig_sa)
            except OSError as e:
                log("proxy-error connect from %s to %s: %s" % (peer, laddr, e))
                raise
            via = fmt(up.getsockname())
            log("proxy-connect via=%s to=%s" % (via, laddr))
        while True:
            line, buf = recv_line(conn, buf)
            if line is None:
                log("eof laddr=%s peer=%s" % (laddr, peer))
                break
            seq += 1
            if up is not None:
                up.sendall(line + b"\n")
                upline, upbuf = recv_line(up, upbuf)
                if upline is None:
                    log("proxy-error upstream %s closed" % laddr)
                    break
                upline = upline.decode(errors="replace")
                log("proxy-reply via=%s upstream=%r" % (via, upline))
                conn.sendall(proxy_line(args, laddr, peer, lsock, via, upline, seq).encode())
            else:
                conn.sendall(reply_line(args.role, laddr, peer, lsock, seq).encode())
            log("reply laddr=%s peer=%s seq=%d msg=%r" % (laddr, peer, seq, line.decode(errors="replace")))
            if args.close_first:
                # active close: the TIME_WAIT socket ends up on this side
                log("close-first laddr=%s peer=%s" % (laddr, peer))
                break
    except OSError as e:
        log("conn-error laddr=%s peer=%s: %s" % (laddr, peer, e))
    finally:
        if up is not None:
            up.close()
        conn.close()


def tcp_server(args):
    family, addr = args.bind
    lsn = make_socket(family, socket.SOCK_STREAM, args.transparent, mark=args.mark)
    lsn.bind(addr)
    lsn.listen(64)
    lsock = fmt(lsn.getsockname())
    log("listen %s transparent=%d" % (lsock, int(args.transparent)))
    signal_ready(args.ready_file)
    if args.no_accept:
        # connections complete in the kernel and wait in the accept queue
        while True:
            time.sleep(3600)
    while True:
        conn, _ = lsn.accept()
        if args.close_listener:
            # From now on only the established socket can get this
            # connection's packets: the listener is gone.
            lsn.close()
            log("listener-closed %s" % lsock)
            tcp_handle(args, conn, lsock)
            return 0
        t = threading.Thread(target=tcp_handle, args=(args, conn, lsock), daemon=True)
        t.start()


# ---------------------------------------------------------------- UDP server

def parse_sockaddr(data):
    """struct sockaddr_in / sockaddr_in6 from a cmsg -> (host, port)."""
    fam = struct.unpack_from("=H", data, 0)[0]
    port = struct.unpack_from("!H", data, 2)[0]
    if fam == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, data[4:8]), port
    if fam == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, data[8:24]), port
    raise ValueError("unknown sockaddr family %d" % fam)


def udp_server(args):
    family, addr = args.bind
    sock = make_socket(family, socket.SOCK_DGRAM, args.transparent, mark=args.mark)
    if family == socket.AF_INET:
        if args.transparent:
            sock.setsockopt(SOL_IP, IP_RECVORIGDSTADDR, 1)
        sock.setsockopt(SOL_IP, IP_PKTINFO, 1)
    else:
        if args.transparent:
            sock.setsockopt(SOL_IPV6, IPV6_RECVORIGDSTADDR, 1)
        sock.setsockopt(SOL_IPV6, IPV6_RECVPKTINFO, 1)
    sock.bind(addr)
    bound = sock.getsockname()
    lsock = fmt(bound)
    log("listen-udp %s transparent=%d" % (lsock, int(args.transparent)))
    signal_ready(args.ready_file)
    counters = {}
    while True:
        data, ancdata, _flags, peer_sa = sock.recvmsg(65535, 1024)
        origdst = None
        pktdst = None
        for level, ctype, cdata in ancdata:
            if (level, ctype) in ((SOL_IP, IP_ORIGDSTADDR), (SOL_IPV6, IPV6_ORIGDSTADDR)):
                origdst = parse_sockaddr(cdata)
            elif (level, ctype) == (SOL_IP, IP_PKTINFO):
                # struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
                pktdst = (socket.inet_ntop(socket.AF_INET, cdata[8:12]), bound[1])
            elif (level, ctype) == (SOL_IPV6, IPV6_PKTINFO):
                # struct in6_pktinfo { in6_addr addr; int ifindex; }
                pktdst = (socket.inet_ntop(socket.AF_INET6, cdata[0:16]), bound[1])
        peer = fmt(peer_sa)
        # seq: the datagram's own number ("hello 3" -> 3, so a resent
        # datagram keeps its number), else a per-peer counter
        counters[peer] = counters.get(peer, 0) + 1
        words = data.split()
        seq = int(words[-1]) if words and words[-1].isdigit() else counters[peer]
        if args.transparent:
            if origdst is None:
                log("udp-error no original destination cmsg from %s" % peer)
                continue
            laddr = fmt(origdst)
            line = reply_line(args.role, laddr, peer, lsock, seq)
            if args.proxy:
                line = udp_proxy(args, family, data, origdst, peer_sa, lsock, seq)
                if line is None:
                    continue
            # Reply from the original destination, as a real UDP tproxy does:
            # a transparent socket bound to the non-local address.
            out = make_socket(family, socket.SOCK_DGRAM, transparent=True, mark=args.mark)
            try:
                out.bind(origdst)
                out.sendto(line.encode(), peer_sa)
            except OSError as e:
                log("udp-error reply from %s to %s: %s" % (laddr, peer, e))
                continue
            finally:
                out.close()
        else:
            laddr = fmt(pktdst if pktdst else bound)
            line = reply_line(args.role, laddr, peer, lsock, seq)
            sock.sendto(line.encode(), peer_sa)
        log("recv-udp laddr=%s peer=%s seq=%d msg=%r" % (laddr, peer, seq, data.decode(errors="replace")))


def udp_proxy(args, family, data, origdst, peer_sa, lsock, seq):
    """Relay one datagram to its original destination from the client's
    address; return the line for the client, or None."""
    laddr = fmt(origdst)
    peer = fmt(peer_sa)
    up = upstream_socket(args, family, socket.SOCK_DGRAM, peer_sa)
    try:
        up.connect(origdst)
        via = fmt(up.getsockname())
        up.send(data)
        upline = up.recv(65535).decode(errors="replace").rstrip("\n")
    except OSError as e:
        log("proxy-error udp from %s to %s: %s" % (peer, laddr, e))
        return None
    finally:
        up.close()
    log("proxy-reply via=%s upstream=%r" % (via, upline))
    return proxy_line(args, laddr, peer, lsock, via, upline, seq)


# ---------------------------------------------------------------- clients

def client_socket(args, family, kind, sport):
    sock = make_socket(family, kind, transparent=args.transparent,
                       reuse=bool(sport or args.bind), mark=args.mark)
    client_bind(args, sock, family, sport)
    return sock


def client_bind(args, sock, family, sport):
    if args.bind is not None:
        bfam, baddr = args.bind
        if bfam != family:
            raise SystemExit("client: --bind family differs from --connect family")
        sock.bind(baddr)
    elif sport:
        sock.bind(("0.0.0.0" if family == socket.AF_INET else "::", sport))


def tcp_client(args):
    """--conns connections, one after another, from --sport, --sport + 1, ..."""
    for i in range(args.conns):
        rc = tcp_connection(args, args.sport + i if args.sport else 0)
        if rc:
            return rc
    return 0


def tcp_connection(args, sport):
    family, addr = args.connect
    sock = client_socket(args, family, socket.SOCK_STREAM, sport)
    sock.settimeout(args.timeout)
    t0 = time.monotonic()
    try:
        sock.connect(addr)
    except OSError as e:
        print("client: connect to %s failed: %s" % (fmt(addr), e), file=sys.stderr)
        return 1
    if args.verbose:
        print("client: connected %s -> %s in %.1f ms" % (fmt(sock.getsockname()), fmt(addr),
              (time.monotonic() - t0) * 1000), file=sys.stderr)
    buf = b""
    try:
        for i in range(1, args.count + 1):
            sock.sendall(("%s %d\n" % (args.msg, i)).encode())
            line, buf = recv_line(sock, buf)
            if line is None:
                print("client: connection closed before reply %d" % i, file=sys.stderr)
                return 1
            print(line.decode(errors="replace"), flush=True)
            if i < args.count and args.interval > 0:
                time.sleep(args.interval)
        if args.expect_eof:
            line, buf = recv_line(sock, buf)
            if line is not None or buf:
                print("client: expected EOF, got more data", file=sys.stderr)
                return 1
    except socket.timeout:
        print("client: timeout waiting for reply", file=sys.stderr)
        return 1
    except OSError as e:
        print("client: %s" % e, file=sys.stderr)
        return 1
    finally:
        sock.close()
    return 0


def udp_client(args):
    family, addr = args.connect
    sock = client_socket(args, family, socket.SOCK_DGRAM, args.sport)
    # connected: the kernel drops replies from any other address:port
    sock.connect(addr)
    if args.df:
        if family == socket.AF_INET:
            sock.setsockopt(SOL_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
        else:
            sock.setsockopt(SOL_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO)
    if args.expect_error:
        return udp_expect_error(args, sock, family, addr)
    try:
        for i in range(1, args.count + 1):
            payload = udp_payload(args, i)
            got = None
            for _attempt in range(args.retries + 1):
                sock.send(payload)
                r, _, _ = select.select([sock], [], [], args.timeout)
                if r:
                    got = sock.recv(65535)
                    break
            if got is None:
                print("client: no UDP reply to datagram %d from %s" % (i, fmt(addr)), file=sys.stderr)
                return 1
            print(got.decode(errors="replace").rstrip("\n"), flush=True)
            if i < args.count and args.interval > 0:
                time.sleep(args.interval)
    except OSError as e:
        if e.errno == errno.ECONNREFUSED:
            print("client: %s: port unreachable" % fmt(addr), file=sys.stderr)
        else:
            print("client: %s" % e, file=sys.stderr)
        return 1
    finally:
        sock.close()
    return 0


def path_mtu(sock, family):
    try:
        if family == socket.AF_INET:
            return sock.getsockopt(SOL_IP, IP_MTU)
        return sock.getsockopt(SOL_IPV6, IPV6_MTU)
    except OSError:
        return 0


def udp_payload(args, i):
    payload = ("%s %d\n" % (args.msg, i)).encode()
    if args.size > len(payload):
        payload = b"x" * (args.size - len(payload)) + payload
    return payload


def udp_expect_error(args, sock, family, addr):
    """Send until an error (from an ICMP error) is reported on the socket."""
    want = getattr(errno, args.expect_error)
    got = None
    for i in range(1, args.retries + 2):
        try:
            sock.send(udp_payload(args, i))
            r, _, _ = select.select([sock], [], [], args.timeout)
            if r:
                data = sock.recv(65535)
                print("client: unexpected reply %r" % data[:80], file=sys.stderr)
                return 1
        except OSError as e:
            got = e.errno
            break
    name = errno.errorcode.get(got, "none") if got else "none"
    if got:
        # the socket's cached route may predate the error (IPv4 marks it
        # obsolete): one more send makes the socket look its route up again
        try:
            sock.send(udp_payload(args, 0))
        except OSError:
            pass
    print("error=%s mtu=%d" % (name, path_mtu(sock, family)), flush=True)
    sock.close()
    if got != want:
        print("client: expected %s from %s, got %s" % (args.expect_error, fmt(addr), name), file=sys.stderr)
        return 1
    return 0


def main():
    global LOG_FILE
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode")
    sub.required = True

    s = sub.add_parser("server", help="answer connections/datagrams with identity lines")
    s.add_argument("--proto", choices=("tcp", "udp"), default="tcp")
    s.add_argument("--bind", type=parse_addr, required=True, help="ADDR:PORT or [ADDR6]:PORT")
    s.add_argument("--role", default="server", help="first word of every reply")
    s.add_argument("--transparent", action="store_true",
                   help="IP(V6)_TRANSPARENT before bind; UDP: report/reply from original dst")
    s.add_argument("--ready-file", help="created once the socket is bound (and listening)")
    s.add_argument("--log", help="append events (accept, reply, ...) to this file")
    s.add_argument("--close-listener", action="store_true",
                   help="TCP: close the listening socket after the first accept, serve that connection, exit")
    s.add_argument("--no-accept", action="store_true",
                   help="TCP: listen, never accept (connections stay in the accept queue, no file)")
    s.add_argument("--close-first", action="store_true",
                   help="TCP: close the connection right after the first reply (server side gets TIME_WAIT)")
    s.add_argument("--idle-timeout", type=float, default=30.0, help="TCP: per-connection idle timeout")
    s.add_argument("--lifetime", type=int, default=600, help="exit after this many seconds")
    s.add_argument("--mark", type=lambda x: int(x, 0), help="SO_MARK on the server's sockets")
    s.add_argument("--proxy", action="store_true",
                   help="with --transparent: relay to the original destination from the client's address")
    s.add_argument("--upstream-timeout", type=float, default=5.0, help="proxy: upstream connect/reply timeout")

    c = sub.add_parser("client", help="connect/send and print the replies")
    c.add_argument("--proto", choices=("tcp", "udp"), default="tcp")
    c.add_argument("--connect", type=parse_addr, required=True)
    c.add_argument("--bind", type=parse_addr, help="local ADDR:PORT")
    c.add_argument("--sport", type=int, default=0, help="local port (wildcard address)")
    c.add_argument("--count", type=int, default=1, help="messages on the one connection/socket")
    c.add_argument("--conns", type=int, default=1,
                   help="TCP: connections one after another, each from the next --sport")
    c.add_argument("--interval", type=float, default=0.0, help="seconds between messages")
    c.add_argument("--msg", default="hello")
    c.add_argument("--timeout", type=float, default=5.0, help="connect/reply timeout (s)")
    c.add_argument("--retries", type=int, default=1, help="UDP: resend a datagram this often")
    c.add_argument("--expect-eof", action="store_true", help="TCP: after the last reply, wait for the server's FIN")
    c.add_argument("--verbose", action="store_true")
    c.add_argument("--transparent", action="store_true",
                   help="IP(V6)_TRANSPARENT before --bind (bind a foreign address)")
    c.add_argument("--mark", type=lambda x: int(x, 0), help="SO_MARK on the client's socket")
    c.add_argument("--size", type=int, default=0, help="UDP: pad each datagram to this many bytes")
    c.add_argument("--df", action="store_true", help="UDP: don't fragment (path MTU discovery 'do')")
    c.add_argument("--expect-error", choices=("ECONNREFUSED", "EMSGSIZE"),
                   help="UDP: succeed only when this error (from an ICMP error) arrives")

    args = p.parse_args()
    if args.mode == "server" and args.proxy and not args.transparent:
        p.error("--proxy needs --transparent")
    if args.mode == "server":
        if args.log:
            LOG_FILE = open(args.log, "a")
        signal.signal(signal.SIGALRM, lambda *_: os._exit(0))
        signal.alarm(args.lifetime)
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        try:
            if args.proto == "tcp":
                return tcp_server(args)
            return udp_server(args)
        except OSError as e:
            log("server-error %s" % e)
            return 1
    if args.proto == "tcp":
        return tcp_client(args)
    return udp_client(args)


if __name__ == "__main__":
    sys.exit(main())

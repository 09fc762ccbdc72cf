#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Fast packet source for the nft socket leak test (python3 stdlib only).

    sk_blast.py tcp --src A --dst B --dport P --sports LO-HI --flags syn|ack --rounds N
    sk_blast.py udp --dst B --dport P --sports LO-HI --rounds N
    sk_blast.py connect --dst B --dport P --sports LO-HI

tcp: bare TCP segments from a raw socket (valid checksums), one per source
port per round: SYNs (a listener makes request sockets of them) or ACKs
with an arbitrary sequence number (to hit TIME_WAIT / request sockets).
udp: datagrams from one socket per source port.
connect: a TCP connection from each source port: send a line, read the
answer, wait for the server's FIN, close (the server closes first, so the
TIME_WAIT sockets end up on the server's side).
Prints the number of packets or connections; exit 1 on any error.
"""

import argparse
import socket
import sys

import pkt

IPV6_CHECKSUM = 7
SOL_IPV6 = 41


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def sports(text):
    lo, _, hi = text.partition("-")
    return range(int(lo), int(hi or lo) + 1)


def tcp(args):
    fam = family_of(args.dst)
    s = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_TCP)
    flags = {"syn": 0x02, "ack": 0x10}[args.flags]
    if fam == socket.AF_INET6:
        s.setsockopt(SOL_IPV6, IPV6_CHECKSUM, 16)
    n = 0
    segs = []
    for sp in sports(args.sports):
        seg = pkt.tcp(sp, args.dport, 1000 + sp, 0x12345678 if flags & 0x10 else 0, flags)
        if fam == socket.AF_INET:
            seg = pkt.tcp4_csum(args.src, args.dst, seg)
        segs.append(seg)
    dst = (args.dst, 0)
    for _ in range(args.rounds):
        for seg in segs:
            s.sendto(seg, dst)
            n += 1
    print(n)
    return 0


def udp(args):
    fam = family_of(args.dst)
    socks = []
    for sp in sports(args.sports):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", sp))
        socks.append(s)
    n = 0
    dst = (args.dst, args.dport)
    for _ in range(args.rounds):
        for s in socks:
            s.sendto(b"x", dst)
            n += 1
    print(n)
    return 0


def connect(args):
    fam = family_of(args.dst)
    n = 0
    for sp in sports(args.sports):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(args.timeout)
        s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", sp))
        s.connect((args.dst, args.dport))
        s.sendall(b"hello\n")
        buf = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            buf += d
        if not buf:
            print("no answer on port %d" % sp, file=sys.stderr)
            return 1
        s.close()
        n += 1
    print(n)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("tcp", "udp", "connect"))
    p.add_argument("--src", help="tcp, IPv4: source address (for the checksum)")
    p.add_argument("--dst", required=True)
    p.add_argument("--dport", type=int, required=True)
    p.add_argument("--sports", required=True, help="LO-HI")
    p.add_argument("--flags", choices=("syn", "ack"), default="ack")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--timeout", type=float, default=5.0)
    args = p.parse_args()
    try:
        return {"tcp": tcp, "udp": udp, "connect": connect}[args.mode](args)
    except OSError as e:
        print("sk_blast: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Malformed-packet generator for the tproxy/socket selftests.

Sends crafted Ethernet frames out of one interface (AF_PACKET), so that
packets the socket API would never build reach the next hop's netfilter
hooks: truncated and malformed TCP/UDP headers, IPv4 options, first,
middle, last and overlapping fragments, ICMP/ICMPv6 errors quoting bogus
inner packets, long and truncated IPv6 extension header chains.

Deterministic for a given --seed.  Prints one line of counts per category.

usage: pktfuzz.py --ifname eth0 --dst-mac MAC --src4 A --dst4 A[,A...]
                  --src6 A --dst6 A[,A...] --count N --seed S
"""

import argparse
import random
import socket
import struct
import sys
import time

import pkt

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD

# IPv6 extension headers a chain is built from
HBH, ROUTING, FRAGMENT, DSTOPTS = pkt.HBH, pkt.ROUTING, pkt.FRAGMENT, pkt.DSTOPTS
TCP, UDP, ICMP, ICMPV6, NONE = pkt.TCP, pkt.UDP, pkt.ICMP, pkt.ICMPV6, pkt.NONE
csum, ip6 = pkt.csum, pkt.ip6


# pkt's headers, with what the caller leaves open drawn from rnd
def ip4(src, dst, proto, payload, rnd, frag=0, ident=None, options=b"",
        tot_len=None):
    if ident is None:
        ident = rnd.getrandbits(16)
    return pkt.ip4(src, dst, proto, payload, ident, frag, options, tot_len)


def tcp(rnd, sport=None, dport=80, doff=5, flags=0x02, extra=b""):
    if sport is None:
        sport = rnd.randint(1024, 65535)
    return pkt.tcp(sport, dport, rnd.getrandbits(32), 0, flags, doff, extra)


def udp(rnd, sport=None, dport=53, payload=b"x", length=None):
    if sport is None:
        sport = rnd.randint(1024, 65535)
    return pkt.udp(sport, dport, payload, length)


def rbytes(rnd, n):
    return bytes(rnd.getrandbits(8) for _ in range(n))


def l4(rnd, proto):
    """A plausible, possibly broken, transport header for proto."""
    dport = rnd.choice((80, 53, 8080, 8053, rnd.randint(1, 65535)))
    if proto == TCP:
        return tcp(rnd, dport=dport, doff=rnd.choice((5, 5, 5, 0, 4, 15)),
                   flags=rnd.choice((0x02, 0x10, 0x12, 0x04, 0x01, 0x3F)))
    if proto == UDP:
        return udp(rnd, dport=dport, payload=rbytes(rnd, rnd.randint(0, 16)))
    return rbytes(rnd, rnd.randint(0, 24))


class Fuzzer:
    def __init__(self, args):
        self.a = args
        self.rnd = random.Random(args.seed)
        self.counts = {}
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        self.sock.bind((args.ifname, 0))
        self.src_mac = self.sock.getsockname()[4]
        self.dst_mac = bytes.fromhex(args.dst_mac.replace(":", ""))

    def send(self, cat, ethertype, frame):
        eth = self.dst_mac + self.src_mac + struct.pack("!H", ethertype)
        try:
            self.sock.send(eth + frame)
        except OSError:
            # Too big for the link, and so on: still counted, not sent.
            cat += "(unsent)"
        self.counts[cat] = self.counts.get(cat, 0) + 1

    def d4(self):
        return self.rnd.choice(self.a.dst4)

    def d6(self):
        return self.rnd.choice(self.a.dst6)

    # ---------------------------------------------------------- IPv4
    def v4_truncated_l4(self):
        r = self.rnd
        proto = r.choice((TCP, UDP))
        full = l4(r, proto)
        self.send("v4-truncated-l4", ETH_P_IP,
                  ip4(self.a.src4, self.d4(), proto,
                      full[:r.randint(0, len(full) - 1)], r))

    def v4_bad_l4(self):
        r = self.rnd
        proto = r.choice((TCP, UDP))
        payload = l4(r, proto)
        if proto == UDP:
            # UDP length field lying in either direction
            payload = payload[:4] + struct.pack("!H", r.choice(
                (0, 1, 7, 9, 0xFFFF))) + payload[6:]
        self.send("v4-bad-l4", ETH_P_IP,
                  ip4(self.a.src4, self.d4(), proto, payload, r))

    def v4_options(self):
        r = self.rnd
        n = r.randint(1, 10) * 4
        # NOPs and an end-of-list: valid options, long header
        opts = b"\x01" * (n - 1) + b"\x00"
        proto = r.choice((TCP, UDP))
        self.send("v4-options", ETH_P_IP,
                  ip4(self.a.src4, self.d4(), proto, l4(r, proto), r,
                      options=opts))

    def v4_fragments(self):
        r = self.rnd
        proto = r.choice((TCP, UDP))
        ident = r.getrandbits(16)
        body = l4(r, proto) + rbytes(r, r.randint(8, 64))
        kind = r.choice(("first", "middle", "last", "overlap", "tiny"))
        src, dst = self.a.src4, self.d4()
        if kind == "first":
            self.send("v4-frag-first", ETH_P_IP,
                      ip4(src, dst, proto, body[:8], r, frag=0x2000,
                          ident=ident))
        elif kind == "middle":
            # payload that looks like ports to a careless parser
            off = r.randint(1, 200)
            self.send("v4-frag-middle", ETH_P_IP,
                      ip4(src, dst, proto, l4(r, proto)[:16], r,
                          frag=0x2000 | off, ident=ident))
        elif kind == "last":
            off = r.randint(1, 200)
            self.send("v4-frag-last", ETH_P_IP,
                      ip4(src, dst, proto, body[:24], r, frag=off,
                          ident=ident))
        elif kind == "overlap":
            self.send("v4-frag-overlap", ETH_P_IP,
                      ip4(src, dst, proto, body[:16], r, frag=0x2000,
                          ident=ident))
            self.send("v4-frag-overlap", ETH_P_IP,
                      ip4(src, dst, proto, rbytes(r, 16), r, frag=1,
                          ident=ident))
        else:
            # a first fragment too short for any port
            self.send("v4-frag-tiny", ETH_P_IP,
                      ip4(src, dst, proto, body[:r.randint(0, 3)], r,
                          frag=0x2000, ident=ident))

    def v4_icmp_error(self):
        r = self.rnd
        itype, code = r.choice(((3, 3), (3, 4), (3, 1), (11, 0), (12, 0),
                                (8, 0), (0, 0)))
        iproto = r.choice((TCP, UDP, TCP, UDP, ICMP, 47))
        # Quote a packet "we" sent: sometimes from a real local socket.
        isrc = r.choice((self.d4(), self.a.src4, "10.0.2.99"))
        inner_l4 = l4(r, iproto)
        if iproto in (TCP, UDP) and r.random() < 0.3:
            inner_l4 = struct.pack("!HH", r.choice((8080, 8053, 80)),
                                   r.randint(1024, 65535)) + inner_l4[4:]
        inner = ip4(isrc, self.a.src4, iproto, inner_l4, r,
                    frag=r.choice((0, 0, 0, 0x2000, 5, 0x4000)))
        mangle = r.choice(("none", "ihl", "cut", "cut", "tot_len"))
        if mangle == "ihl":
            inner = bytes([0x40 | r.choice((0, 1, 4, 6, 15))]) + inner[1:]
        elif mangle == "cut":
            inner = inner[:r.randint(0, len(inner))]
        elif mangle == "tot_len":
            inner = inner[:2] + struct.pack("!H", r.getrandbits(16)) + inner[4:]
        icmp = struct.pack("!BBHI", itype, code, 0,
                           r.choice((0, 1280, 576)) if code == 4 else 0) + inner
        icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
        self.send("v4-icmp", ETH_P_IP, ip4(self.a.src4, self.d4(), ICMP,
                                           icmp, r))

    # ---------------------------------------------------------- IPv6
    def ext_chain(self, final, final_payload, n):
        """n extension headers (HBH only first), then final."""
        r = self.rnd
        kinds = []
        for i in range(n):
            choices = [DSTOPTS, ROUTING, FRAGMENT, DSTOPTS]
            if i == 0:
                choices.append(HBH)
            kinds.append(r.choice(choices))
        payload = final_payload
        nxt = final
        for k in reversed(kinds):
            if k == FRAGMENT:
                off = r.choice((0, 0, r.randint(1, 500)))
                hdr = struct.pack("!BBHI", nxt, 0,
                                  (off << 3) | r.choice((0, 1)),
                                  r.getrandbits(32))
            elif k == ROUTING:
                hdr = struct.pack("!BBBB", nxt, 0, r.choice((0, 2, 4, 3)),
                                  0) + b"\0" * 4
            else:
                # PadN options filling 8*(len+1) bytes
                ln = r.randint(0, 3)
                pad = 8 * (ln + 1) - 2
                hdr = struct.pack("!BB", nxt, ln) + \
                    (struct.pack("!BB", 1, pad - 2) + b"\0" * (pad - 2)
                     if pad >= 2 else b"")
            payload = hdr + payload
            nxt = k
        return nxt, payload

    def v6_chain(self):
        r = self.rnd
        proto = r.choice((TCP, UDP, ICMPV6, NONE))
        nxt, payload = self.ext_chain(proto, l4(r, proto), r.randint(1, 24))
        kind = "v6-ext-chain"
        if r.random() < 0.3:
            payload = payload[:r.randint(0, len(payload))]
            kind = "v6-ext-truncated"
        plen = None
        if r.random() < 0.1:
            plen = r.choice((0, len(payload) + 8))
            kind = "v6-bad-plen"
        self.send(kind, ETH_P_IPV6,
                  ip6(self.a.src6, self.d6(), nxt, payload, plen=plen))

    def v6_fragment(self):
        r = self.rnd
        proto = r.choice((TCP, UDP))
        off = r.choice((0, r.randint(1, 300)))
        more = r.choice((0, 1))
        frag = struct.pack("!BBHI", proto, 0, (off << 3) | more,
                           r.getrandbits(32))
        body = l4(r, proto)[:r.randint(0, 24)]
        self.send("v6-frag", ETH_P_IPV6,
                  ip6(self.a.src6, self.d6(), FRAGMENT, frag + body))

    def v6_icmp_error(self):
        r = self.rnd
        itype = r.choice((1, 2, 3, 4, 128, 129))
        iproto = r.choice((TCP, UDP, ICMPV6, NONE))
        isrc = r.choice((self.d6(), self.a.src6, "dead:2::99"))
        inner_l4 = l4(r, iproto)
        if iproto in (TCP, UDP) and r.random() < 0.3:
            inner_l4 = struct.pack("!HH", r.choice((8080, 8053, 80)),
                                   r.randint(1024, 65535)) + inner_l4[4:]
        nxt, inner_payload = self.ext_chain(iproto, inner_l4,
                                            r.randint(0, 8))
        inner = ip6(isrc, self.a.src6, nxt, inner_payload)
        if r.random() < 0.4:
            inner = inner[:r.randint(0, len(inner))]
        icmp = struct.pack("!BBHI", itype, 0, 0,
                           1280 if itype == 2 else 0) + inner
        # The checksum needs the pseudo header; a wrong one is just dropped
        # later by ICMPv6, after the hooks we want to reach.
        self.send("v6-icmp", ETH_P_IPV6,
                  ip6(self.a.src6, self.d6(), ICMPV6, icmp))

    def run(self):
        gens = [self.v4_truncated_l4, self.v4_bad_l4, self.v4_options,
                self.v4_fragments, self.v4_icmp_error, self.v6_chain,
                self.v6_fragment, self.v6_icmp_error]
        for i in range(self.a.count):
            self.rnd.choice(gens)()
            if self.a.pace and i % self.a.pace == 0:
                time.sleep(0.001)
        for k in sorted(self.counts):
            print("%s %d" % (k, self.counts[k]))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ifname", required=True)
    p.add_argument("--dst-mac", required=True)
    p.add_argument("--src4", required=True)
    p.add_argument("--dst4", required=True, type=lambda s: s.split(","))
    p.add_argument("--src6", required=True)
    p.add_argument("--dst6", required=True, type=lambda s: s.split(","))
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--pace", type=int, default=50,
                   help="sleep 1 ms every N packets (0: never)")
    Fuzzer(p.parse_args()).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Malformed-packet generator for the tproxy/socket selftests.

Sends crafted Ethernet frames out of one interface (AF_PACKET), so that
packets the socket API would never build reach the next hop's netfilter
hooks: truncated and malformed TCP/UDP headers, IPv4 options, first,
middle, last and overlapping fragments, ICMP/ICMPv6 errors quoting bogus
inner packets, long and truncated IPv6 extension header chains.

With --flow, it also opens real connections through the router's tproxy
rules and crafts packets on their tuples, some with bytes flipped: segments
of an established flow, SYNs to a TIME_WAIT socket the proxy left (a proxy
that closes first), ICMP errors quoting a flow's packets.  These reach the
established, TIME_WAIT and ICMP paths of the socket lookups.  Every real
connection's reply must name its own original destination and client
(counted as flow-ok, else flow-wrong, or flow-failed when it never came).
With --snat, replies to a UDP flow the router itself sends here, SNATed:
datagrams and ICMP errors on its translated tuple, which the lookups map
back to the sender through conntrack.

Deterministic for a given --seed (the real connections' timing aside).
Prints one line of counts per category.

usage: pktfuzz.py --ifname eth0 --dst-mac MAC --src4 A --dst4 A[,A...]
                  --src6 A --dst6 A[,A...] --count N --seed S
                  [--flow tcp|tw|udp,ADDR,PORT ...]
                  [--snat ADDR,PORT,NATADDR,NATPORT ...]
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
ip6 = pkt.ip6


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


def fmt(addr, port):
    return "[%s]:%d" % (addr, port) if ":" in addr else "%s:%d" % (addr, port)


# Local ports of the real connections: below the ephemeral range and the
# shell's own flows (lib.sh's SPORT, from 40000), cycled
FLOW_PORTS = range(20000, 30000)
# a TIME_WAIT socket lives 60 s: use it well within that
TW_MAX_AGE = 40


class Flows:
    """Real connections from this namespace through the router's tproxy
    rules, whose tuples the crafted packets reuse."""

    def __init__(self, specs, counts):
        self.specs = specs      # (kind, addr, port)
        self.counts = counts
        self.port = FLOW_PORTS.start
        self.est = []           # (sock, kind, src, sport, dst, dport)
        self.tw = []            # [time, src, sport, dst, dport, fresh]
        # Copies of the TCP segments this namespace receives: the proxy's
        # SYN-ACK shows that a SYN took a TIME_WAIT socket over (without the
        # takeover, the TIME_WAIT socket would only ACK it).
        self.tw_syn = set()     # (dst, dport, sport) of each clean SYN sent
        self.raw = []
        if any(sp[0] == "tw" for sp in specs):
            for fam in (socket.AF_INET, socket.AF_INET6):
                r = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_TCP)
                r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                r.setblocking(False)
                self.raw.append(r)

    def count(self, what):
        self.counts[what] = self.counts.get(what, 0) + 1

    def next_port(self):
        self.port += 1
        if self.port >= FLOW_PORTS.stop:
            self.port = FLOW_PORTS.start
        return self.port

    def check(self, line, dst, dport, src, sport):
        want = "laddr=%s peer=%s " % (fmt(dst, dport), fmt(src, sport))
        if want in line:
            self.count("flow-ok")
            return True
        self.count("flow-wrong")
        print("flow-wrong: want %r, got %r" % (want, line), file=sys.stderr)
        return False

    def open(self, kind, src, family):
        """A real connection of kind from src; True when it worked."""
        specs = [sp for sp in self.specs if sp[0] == kind and
                 (":" in sp[1]) == (family == socket.AF_INET6)]
        if not specs:
            return False
        _, dst, dport = specs[0]
        stype = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
        sock = socket.socket(family, stype)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.settimeout(10 if kind != "udp" else 2)
        sport = self.next_port()
        try:
            sock.bind((src, sport))
            sock.connect((dst, dport))
            if kind == "udp":
                line = self.udp_exchange(sock)
            else:
                sock.sendall(b"fuzz\n")
                f = sock.makefile("rb")
                line = f.readline()
                if kind == "tw":
                    # the proxy's FIN first: its side keeps the TIME_WAIT
                    f.read()
                f.close()
        except OSError as e:
            self.count("flow-failed")
            print("flow-failed: %s %s -> %s: %s" % (
                kind, fmt(src, sport), fmt(dst, dport), e), file=sys.stderr)
            sock.close()
            return False
        if not self.check(line.decode(errors="replace"), dst, dport, src, sport):
            sock.close()
            return False
        if kind == "tw":
            # The proxy closed first; closing here leaves its TIME_WAIT.
            sock.close()
            self.tw.append([time.monotonic(), src, sport, dst, dport, True])
            return True
        self.est.append((sock, kind, src, sport, dst, dport))
        if len(self.est) > 16:
            self.est.pop(0)[0].close()
        return True

    @staticmethod
    def udp_exchange(sock):
        for i in range(3):
            sock.send(b"fuzz %d\n" % i)
            try:
                return sock.recv(4096)
            except socket.timeout:
                continue
        raise OSError("no reply to 3 datagrams")

    def pick_est(self, rnd, kinds, family):
        c = [f for f in self.est if f[1] in kinds and
             (":" in f[2]) == (family == socket.AF_INET6)]
        return rnd.choice(c)[1:] if c else None

    def pick_tw(self, rnd, family, fresh):
        """A TIME_WAIT tuple of family: one nothing was sent to if fresh."""
        now = time.monotonic()
        self.tw = [t for t in self.tw if now - t[0] < TW_MAX_AGE]
        c = [t for t in self.tw if (":" in t[1]) == (family == socket.AF_INET6)
             and (t[5] or not fresh)]
        return rnd.choice(c) if c else None

    def drain(self):
        """Count the SYN-ACKs answering the SYNs sent to TIME_WAIT tuples."""
        for r in self.raw:
            while True:
                try:
                    data, addr = r.recvfrom(65535)
                except BlockingIOError:
                    break
                if r.family == socket.AF_INET:
                    data = data[(data[0] & 0xF) * 4:]
                if len(data) < 14 or data[13] & 0x12 != 0x12:
                    continue
                sport, dport = struct.unpack("!HH", data[:4])
                key = (addr[0], sport, dport)
                if key in self.tw_syn:
                    self.tw_syn.remove(key)
                    self.count("flow-tw-synack")

    def close(self):
        for f in self.est:
            f[0].close()
        time.sleep(1)
        self.drain()
        for r in self.raw:
            r.close()


class Fuzzer:
    def __init__(self, args):
        self.a = args
        self.rnd = random.Random(args.seed)
        self.counts = {}
        self.flows = Flows(args.flow, self.counts)
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
        icmp = pkt.icmp4_csum(icmp)
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

    # ---------------------------------------------------------- flows
    def family(self):
        return self.rnd.choice((socket.AF_INET, socket.AF_INET6))

    def src(self, family):
        return self.a.src6 if family == socket.AF_INET6 else self.a.src4

    def l3(self, src, dst, proto, payload):
        """(ethertype, packet): an IPv4 or IPv6 header over payload."""
        if ":" in src:
            return ETH_P_IPV6, ip6(src, dst, proto, payload)
        return ETH_P_IP, ip4(src, dst, proto, payload, self.rnd)

    def tcp_seg(self, src, sport, dst, dport, flags, data=b""):
        seg = pkt.tcp(sport, dport, self.rnd.getrandbits(32),
                      self.rnd.getrandbits(32), flags) + data
        if ":" in src:
            return pkt.tcp6_csum(src, dst, seg)
        return pkt.tcp4_csum(src, dst, seg)

    def mutate(self, cat, ethertype, frame, p=0.25):
        """Send frame, with probability p with 1-3 bits flipped: past
        the IPv4 header (ip_rcv drops a bad header checksum before the
        hooks), anywhere past the IPv6 version and flow label."""
        r = self.rnd
        if r.random() < p:
            start = (frame[0] & 0xF) * 4 if ethertype == ETH_P_IP else 4
            b = bytearray(frame)
            for _ in range(r.randint(1, 3)):
                if len(b) > start:
                    b[r.randrange(start, len(b))] ^= 1 << r.randrange(8)
            frame, cat = bytes(b), cat + "-mut"
        self.send(cat, ethertype, frame)

    def flow_tuple(self, kinds):
        """A live flow of one of kinds in a random family, opened when there
        is none (or now and then, so the set changes)."""
        fam = self.family()
        f = self.flows.pick_est(self.rnd, kinds, fam)
        if f is None or self.rnd.random() < 0.01:
            self.flows.open(self.rnd.choice(kinds), self.src(fam), fam)
            f = self.flows.pick_est(self.rnd, kinds, fam)
        return f

    def flow_tcp(self):
        """A segment on an established flow's tuple: the established
        lookups; random sequence numbers keep the real flow intact."""
        f = self.flow_tuple(("tcp",))
        if f is None:
            return
        _, src, sport, dst, dport = f
        r = self.rnd
        flags = r.choice((0x10, 0x18, 0x11, 0x02, 0x12, 0x04, 0x14, 0x01))
        data = rbytes(r, r.choice((0, 0, 1, 64))) if flags & 0x10 else b""
        et, frame = self.l3(src, dst, TCP,
                            self.tcp_seg(src, sport, dst, dport, flags, data))
        self.mutate("flow-tcp", et, frame)

    def flow_udp(self):
        """A datagram on a UDP flow's tuple: the proxy answers it."""
        f = self.flow_tuple(("udp",))
        if f is None:
            return
        _, src, sport, dst, dport = f
        payload = pkt.udp(sport, dport, b"fuzz %d\n" % self.rnd.getrandbits(8))
        et, frame = self.l3(src, dst, UDP, payload)
        self.mutate("flow-udp", et, frame)

    def flow_tw(self):
        """A segment to a TIME_WAIT socket's tuple.  A SYN, to a tuple that
        nothing else was sent to, must take the TIME_WAIT socket over for
        the tproxy rule's listener (counted when the router still had the
        TIME_WAIT socket); other flags and mutations go to used tuples."""
        r = self.rnd
        fam = self.family()
        syn = r.random() < 0.15
        t = self.flows.pick_tw(r, fam, syn)
        if t is None or (not syn and r.random() < 0.05):
            self.flows.open("tw", self.src(fam), fam)
            t = self.flows.pick_tw(r, fam, syn)
            if t is None:
                return
        self.flows.drain()
        src, sport, dst, dport = t[1:5]
        if not syn:
            t[5] = False
            flags = r.choice((0x10, 0x11, 0x12, 0x04, 0x02))
            et, frame = self.l3(src, dst, TCP,
                                self.tcp_seg(src, sport, dst, dport, flags))
            self.mutate("flow-tw", et, frame)
            return
        # one SYN takes the TIME_WAIT socket over: the tuple is done
        self.flows.tw.remove(t)
        et, frame = self.l3(src, dst, TCP,
                            self.tcp_seg(src, sport, dst, dport, 0x02))
        if r.random() < 0.25:
            # a flipped bit may spoil the checksum, which TCP checks
            # after the hooks: no answer is owed
            self.mutate("flow-tw-syn", et, frame, 1)
            return
        if self.a.router_pid and \
                tcp_state(self.a.router_pid, dst, dport, src, sport) != "06":
            self.send("flow-tw-syn-nosocket", et, frame)
            return
        self.flows.tw_syn.add((dst, dport, sport))
        self.send("flow-tw-syn", et, frame)

    def flow_icmp(self):
        """An ICMP error quoting what the router sent on a flow (from the
        original destination to the client): the ICMP lookups, which
        take the quoted tuple reversed."""
        f = self.flow_tuple(("tcp", "udp"))
        if f is None:
            return
        kind, src, sport, dst, dport = f
        r = self.rnd
        proto = UDP if kind == "udp" else TCP
        if proto == TCP:
            inner_l4 = pkt.tcp(dport, sport, r.getrandbits(32), 0, 0x18)
        else:
            inner_l4 = pkt.udp(dport, sport, b"x")
        self.icmp_error("flow-icmp", src, dst, proto, inner_l4)

    def icmp_error(self, cat, src, dst, proto, inner_l4):
        """From src to dst, an ICMP error quoting dst's packet to src."""
        r = self.rnd
        if ":" in src:
            inner = ip6(dst, src, proto, inner_l4)
            # destination unreachable (codes 0-4), time exceeded; no
            # packet too big, which would shrink the valid flows' MTU
            itype, code = r.choice(((1, 0), (1, 1), (1, 3), (1, 4), (3, 0)))
        else:
            inner = ip4(dst, src, proto, inner_l4, r)
            itype, code = r.choice(((3, 0), (3, 1), (3, 3), (3, 13), (11, 0)))
        if r.random() < 0.2:
            inner = inner[:r.randint(0, len(inner))]
        msg = struct.pack("!BBHI", itype, code, 0, 0) + inner
        if ":" in src:
            msg = pkt.icmp6_csum(src, dst, msg)
            et, frame = ETH_P_IPV6, ip6(src, dst, ICMPV6, msg)
        else:
            msg = pkt.icmp4_csum(msg)
            et, frame = ETH_P_IP, ip4(src, dst, ICMP, msg, r)
        self.mutate(cat, et, frame)

    def flow_snat(self):
        """A reply on the router's own SNATed flow (to ADDR:PORT here, from
        NATADDR:NATPORT after the translation): a datagram, or an ICMP
        error quoting the router's.  The socket lookups before the reply is
        translated back must use conntrack's original tuple."""
        r = self.rnd
        src, sport, nat, nport = r.choice(self.a.snat)
        if r.random() < 0.5:
            et, frame = self.l3(src, nat, UDP,
                                pkt.udp(sport, nport, b"fuzz %d\n" % r.getrandbits(8)))
            self.mutate("flow-snat", et, frame)
            return
        self.icmp_error("flow-snat-icmp", src, nat, UDP, pkt.udp(nport, sport, b"x"))

    def run(self):
        gens = [self.v4_truncated_l4, self.v4_bad_l4, self.v4_options,
                self.v4_fragments, self.v4_icmp_error, self.v6_chain,
                self.v6_fragment, self.v6_icmp_error]
        kinds = {sp[0] for sp in self.a.flow}
        if "tcp" in kinds:
            gens += [self.flow_tcp, self.flow_tcp]
        if "udp" in kinds:
            gens += [self.flow_udp]
        if kinds & {"tcp", "udp"}:
            gens += [self.flow_icmp, self.flow_icmp]
        if "tw" in kinds:
            gens += [self.flow_tw]
        if self.a.snat:
            gens += [self.flow_snat]
        for i in range(self.a.count):
            self.rnd.choice(gens)()
            if self.a.pace and i % self.a.pace == 0:
                time.sleep(0.001)
        self.flows.close()
        for k in sorted(self.counts):
            print("%s %d" % (k, self.counts[k]))
        return 0


def tcp_state(pid, laddr, lport, raddr, rport):
    """The state (hex, as /proc/net/tcp has it) of the TCP socket
    laddr:lport <-> raddr:rport in the netns of process pid, or None."""
    v6 = ":" in laddr
    fam = socket.AF_INET6 if v6 else socket.AF_INET

    def hexaddr(a):
        b = socket.inet_pton(fam, a)
        # /proc prints each 32-bit word in host order
        return "".join("%08X" % struct.unpack("<I", b[i:i + 4])[0]
                       for i in range(0, len(b), 4))
    want = ("%s:%04X" % (hexaddr(laddr), lport),
            "%s:%04X" % (hexaddr(raddr), rport))
    with open("/proc/%d/net/tcp%s" % (pid, "6" if v6 else "")) as f:
        next(f)
        for line in f:
            w = line.split()
            if (w[1], w[2]) == want:
                return w[3]
    return None


def flow_spec(text):
    kind, addr, port = text.split(",")
    if kind not in ("tcp", "tw", "udp"):
        raise argparse.ArgumentTypeError("flow kind %r: tcp, tw or udp" % kind)
    return kind, addr, int(port)


def snat_spec(text):
    addr, port, nat, nport = text.split(",")
    return addr, int(port), nat, int(nport)


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
    p.add_argument("--router-pid", type=int, default=0,
                   help="a process in the router's netns: a SYN to a tuple "
                   "whose TIME_WAIT socket is gone there is not counted")
    p.add_argument("--flow", type=flow_spec, action="append", default=[],
                   metavar="KIND,ADDR,PORT",
                   help="real connections through tproxy (tcp, udp; tw: "
                   "to a proxy that closes first) whose tuples are fuzzed")
    p.add_argument("--snat", type=snat_spec, action="append", default=[],
                   metavar="ADDR,PORT,NATADDR,NATPORT",
                   help="a UDP flow the router sends to ADDR:PORT from "
                   "NATADDR:NATPORT (SNAT), whose replies are fuzzed")
    return Fuzzer(p.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())

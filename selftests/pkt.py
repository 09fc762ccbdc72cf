# SPDX-License-Identifier: GPL-2.0
"""Packet headers for the selftests' packet sources (pktfuzz.py,
sk_blast.py): the one place a header is laid out or a checksum computed.
Every field is the caller's; nothing here is random."""

import socket
import struct

TCP, UDP, ICMP, ICMPV6, NONE = 6, 17, 1, 58, 59
HBH, ROUTING, FRAGMENT, DSTOPTS = 0, 43, 44, 60


def csum(data):
    """The Internet checksum (RFC 1071) of data."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(src, dst, proto, payload, ident, frag=0, options=b"", tot_len=None):
    """An IPv4 header with a correct checksum (ip_rcv drops a bad one)."""
    ihl = 5 + len(options) // 4
    if tot_len is None:
        tot_len = ihl * 4 + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tot_len, ident, frag,
                      64, proto, 0, socket.inet_aton(src),
                      socket.inet_aton(dst)) + options
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def ip6(src, dst, nexthdr, payload, plen=None):
    """An IPv6 header (hop limit 64) and payload."""
    if plen is None:
        plen = len(payload)
    return struct.pack("!IHBB16s16s", 0x60000000, plen, nexthdr, 64,
                       socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst)) + payload


def tcp(sport, dport, seq, ack=0, flags=0x02, doff=5, extra=b""):
    """A TCP header, checksum 0 (tcp4_csum, or IPV6_CHECKSUM, fills it)."""
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack,
                       (doff & 0xF) << 4, flags, 65535, 0, 0) + extra


def _with_csum(data, off, pseudo=b""):
    """data with the Internet checksum of pseudo + data at offset off."""
    data = data[:off] + b"\0\0" + data[off + 2:]
    return data[:off] + struct.pack("!H", csum(pseudo + data)) + data[off + 2:]


def _pseudo6(src, dst, proto, length):
    return (socket.inet_pton(socket.AF_INET6, src) +
            socket.inet_pton(socket.AF_INET6, dst) +
            struct.pack("!IxxxB", length, proto))


def tcp4_csum(src, dst, seg):
    """seg, a TCP segment from src to dst (IPv4), with its checksum."""
    pseudo = (socket.inet_aton(src) + socket.inet_aton(dst) +
              struct.pack("!BBH", 0, TCP, len(seg)))
    return _with_csum(seg, 16, pseudo)


def tcp6_csum(src, dst, seg):
    """seg, a TCP segment from src to dst (IPv6), with its checksum."""
    return _with_csum(seg, 16, _pseudo6(src, dst, TCP, len(seg)))


def icmp4_csum(msg):
    """msg, an ICMP message, with its checksum (no pseudo header)."""
    return _with_csum(msg, 2)


def icmp6_csum(src, dst, msg):
    """msg, an ICMPv6 message from src to dst, with its checksum."""
    return _with_csum(msg, 2, _pseudo6(src, dst, ICMPV6, len(msg)))


def udp(sport, dport, payload=b"x", length=None):
    """A UDP header, checksum 0 (none, for IPv4), and payload."""
    if length is None:
        length = 8 + len(payload)
    return struct.pack("!HHHH", sport, dport, length, 0) + payload

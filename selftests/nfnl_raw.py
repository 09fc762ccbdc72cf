#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Send one nf_tables batch with a tproxy or socket expression straight to the kernel.

nft refuses some rules in userspace (bridge/netdev/arp tables, no address and
no port, ...); this tool builds the netlink messages itself (python3 standard
library only) so the tests can check that the kernel rejects them too.

One batch: NEWTABLE, NEWCHAIN (base chain at --hook), and a rule
`meta l4proto tcp; [immediate addr]; [immediate port]; tproxy`.
With --existing the table and chain (--chain) must exist and only the rule
is added; --nfproto, --l4proto, --dport match first, --mark and --verdict
come after the expression: a whole rule for traffic tests, such as
`meta nfproto ipv4 meta l4proto tcp th dport 80 tproxy to :3129
fail-closed meta mark set 1 accept` (--tproxy-flags, nft-tproxy's
extension) or `... socket uid 1001 drop` (--socket-key uid --socket-value
1001).
With --jump-from HOOK the tproxy rule goes into a regular chain "inner" and
a base chain at HOOK jumps to it (validation through a jump).
With --socket-key the rule is one socket expression instead
(`socket KEY => DREG [level LEVEL]`); --socket-key/--socket-dreg "none"
leave that attribute out, --socket-level is only sent when given.

Prints "ACCEPTED" (exit 0) or "REJECTED errno=NAME (text) msg=MSGTYPE" (exit 1);
exit 2 on a usage or socket error.
"""

import argparse
import errno
import os
import socket
import struct
import sys

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
NLM_F_ACK_TLVS = 0x200
NLMSGERR_ATTR_MSG = 1
NLA_F_NESTED = 0x8000

NFNL_MSG_BATCH_BEGIN = 0x10
NFNL_MSG_BATCH_END = 0x11
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWTABLE = 0
NFT_MSG_NEWCHAIN = 3
NFT_MSG_NEWRULE = 6
NFT_MSG_GETGEN = 16

NFTA_TABLE_NAME = 1
NFTA_CHAIN_TABLE = 1
NFTA_CHAIN_NAME = 3
NFTA_CHAIN_HOOK = 4
NFTA_CHAIN_POLICY = 5
NFTA_CHAIN_TYPE = 7
NFTA_HOOK_HOOKNUM = 1
NFTA_HOOK_PRIORITY = 2
NFTA_HOOK_DEV = 3
NFTA_RULE_TABLE = 1
NFTA_RULE_CHAIN = 2
NFTA_RULE_EXPRESSIONS = 4
NFTA_LIST_ELEM = 1
NFTA_EXPR_NAME = 1
NFTA_EXPR_DATA = 2
NFTA_DATA_VALUE = 1
NFTA_DATA_VERDICT = 2
NFTA_VERDICT_CODE = 1
NFTA_VERDICT_CHAIN = 2
NFTA_IMMEDIATE_DREG = 1
NFTA_IMMEDIATE_DATA = 2
NFTA_META_DREG = 1
NFTA_META_KEY = 2
NFTA_CMP_SREG = 1
NFTA_CMP_OP = 2
NFTA_CMP_DATA = 3
NFTA_TPROXY_FAMILY = 1
NFTA_TPROXY_REG_ADDR = 2
NFTA_TPROXY_REG_PORT = 3
NFTA_SOCKET_KEY = 1
NFTA_SOCKET_DREG = 2
NFTA_SOCKET_LEVEL = 3
NFT_PAYLOAD_TRANSPORT_HEADER = 2
NFTA_PAYLOAD_DREG = 1
NFTA_PAYLOAD_BASE = 2
NFTA_PAYLOAD_OFFSET = 3
NFTA_PAYLOAD_LEN = 4
NFTA_META_SREG = 3
# nft-tproxy's extensions: include/uapi/linux/netfilter/nftp.h
NFTA_TPROXY_NFTP_FLAGS = 16
SOCKET_KEYS = {"transparent": 0, "mark": 1, "wildcard": 2, "cgroupv2": 3, "uid": 255, "gid": 254}
SOCKET_KEY_LEN = {"transparent": 1, "wildcard": 1, "mark": 4, "cgroupv2": 8, "uid": 4, "gid": 4}

L4PROTOS = {"tcp": 6, "udp": 17, "icmp": 1, "ipv6-icmp": 58}
NFT_META_MARK = 3
NFT_META_NFPROTO = 15
NFT_META_L4PROTO = 16
NFT_CMP_EQ = 0
NFT_DROP = 0
NFT_ACCEPT = 1
NFT_JUMP = -3
NFT_REG_VERDICT = 0
NFT_REG_1 = 1
NFT_REG_2 = 2
NFT_REG32_15 = 23

TABLE_FAMILIES = {"inet": 1, "ip": 2, "arp": 3, "netdev": 5, "bridge": 7, "ip6": 10}
TPROXY_FAMILIES = {"unspec": 0, "ip": 2, "ip6": 10}
# hook numbers: NF_INET_*; bridge uses the same values for these five;
# arp: input 0, output 1; netdev: ingress 0
HOOKS = {"prerouting": 0, "input": 1, "forward": 2, "output": 3, "postrouting": 4}
ARP_HOOKS = {"input": 0, "output": 1}
NETDEV_HOOKS = {"ingress": 0}


def attr(atype, payload):
    hdr = struct.pack("=HH", 4 + len(payload), atype)
    pad = b"\0" * ((4 - len(payload) % 4) % 4)
    return hdr + payload + pad


def nest(atype, *attrs):
    return attr(atype | NLA_F_NESTED, b"".join(attrs))


def a_str(atype, text):
    return attr(atype, text.encode() + b"\0")


def a_be32(atype, value):
    return attr(atype, struct.pack("!i" if value < 0 else "!I", value))


def expr(name, *data):
    return nest(NFTA_LIST_ELEM, a_str(NFTA_EXPR_NAME, name), nest(NFTA_EXPR_DATA, *data))


def imm_data(reg, value):
    return expr("immediate", a_be32(NFTA_IMMEDIATE_DREG, reg),
                nest(NFTA_IMMEDIATE_DATA, attr(NFTA_DATA_VALUE, value)))


def imm_verdict(code):
    return expr("immediate", a_be32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT),
                nest(NFTA_IMMEDIATE_DATA, nest(NFTA_DATA_VERDICT, a_be32(NFTA_VERDICT_CODE, code))))


def cmp_eq(reg, value):
    return expr("cmp", a_be32(NFTA_CMP_SREG, reg), a_be32(NFTA_CMP_OP, NFT_CMP_EQ),
                nest(NFTA_CMP_DATA, attr(NFTA_DATA_VALUE, value)))


def meta_load(key, reg):
    return expr("meta", a_be32(NFTA_META_KEY, key), a_be32(NFTA_META_DREG, reg))


def match_prefix(args):
    """meta nfproto, meta l4proto, th dport: the rule's matches."""
    exprs = []
    if args.nfproto:
        exprs += [meta_load(NFT_META_NFPROTO, NFT_REG_1),
                  cmp_eq(NFT_REG_1, bytes([{"ipv4": 2, "ipv6": 10}[args.nfproto]]))]
    if not args.no_l4:
        exprs += [meta_load(NFT_META_L4PROTO, NFT_REG_1),
                  cmp_eq(NFT_REG_1, bytes([L4PROTOS[args.l4proto]]))]
    if args.dport is not None:
        exprs += [expr("payload", a_be32(NFTA_PAYLOAD_DREG, NFT_REG_1),
                       a_be32(NFTA_PAYLOAD_BASE, NFT_PAYLOAD_TRANSPORT_HEADER),
                       a_be32(NFTA_PAYLOAD_OFFSET, 2), a_be32(NFTA_PAYLOAD_LEN, 2)),
                  cmp_eq(NFT_REG_1, struct.pack("!H", args.dport))]
    return exprs


def action_suffix(args):
    """meta mark set, verdict: what follows the expression."""
    exprs = []
    if args.mark is not None:
        exprs += [imm_data(NFT_REG_1, struct.pack("=I", args.mark)),
                  expr("meta", a_be32(NFTA_META_KEY, NFT_META_MARK), a_be32(NFTA_META_SREG, NFT_REG_1))]
    if args.verdict:
        exprs.append(imm_verdict({"accept": NFT_ACCEPT, "drop": NFT_DROP}[args.verdict]))
    return exprs


def imm_jump(chain):
    return expr("immediate", a_be32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT),
                nest(NFTA_IMMEDIATE_DATA,
                     nest(NFTA_DATA_VERDICT, a_be32(NFTA_VERDICT_CODE, NFT_JUMP),
                          a_str(NFTA_VERDICT_CHAIN, chain))))


class Batch:
    def __init__(self):
        self.msgs = []
        self.seq = int.from_bytes(os.urandom(3), "big") + 1
        self.names = {}

    def add(self, mtype, flags, family, payload, res_id=0, name=None):
        nfgen = struct.pack("=BBH", family, 0, socket.htons(res_id))
        body = nfgen + payload
        hdr = struct.pack("=IHHII", 16 + len(body), mtype, flags, self.seq, 0)
        self.msgs.append(hdr + body)
        if name:
            self.names[self.seq] = name
        self.seq += 1

    def nft(self, cmd, flags, family, payload, name):
        self.add((NFNL_SUBSYS_NFTABLES << 8) | cmd, NLM_F_REQUEST | NLM_F_ACK | flags,
                 family, payload, name=name)


def reg_ok(reg, length):
    """Would the kernel accept a load/store of length bytes at register reg?"""
    if 1 <= reg <= 4:
        off = reg * 16
    elif 8 <= reg <= 23:
        off = 16 + (reg - 8) * 4
    else:
        return False
    return off + length <= 80


def hooknum(table_family, hook):
    table = {"arp": ARP_HOOKS, "netdev": NETDEV_HOOKS}.get(table_family, HOOKS)
    if hook not in table:
        raise SystemExit("nfnl_raw: hook %s does not exist for family %s" % (hook, table_family))
    return table[hook]


def build(args):
    fam = TABLE_FAMILIES[args.table_family]
    b = Batch()
    b.add(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, socket.AF_UNSPEC, b"", res_id=NFNL_SUBSYS_NFTABLES)
    if not args.existing:
        b.nft(NFT_MSG_NEWTABLE, NLM_F_CREATE, fam, a_str(NFTA_TABLE_NAME, args.table), "NEWTABLE")

    def base_chain(name, hook):
        h = [a_be32(NFTA_HOOK_HOOKNUM, hooknum(args.table_family, hook)),
             a_be32(NFTA_HOOK_PRIORITY, args.priority)]
        if args.table_family == "netdev":
            h.append(a_str(NFTA_HOOK_DEV, args.dev))
        b.nft(NFT_MSG_NEWCHAIN, NLM_F_CREATE, fam,
              a_str(NFTA_CHAIN_TABLE, args.table) + a_str(NFTA_CHAIN_NAME, name) +
              nest(NFTA_CHAIN_HOOK, *h) + a_str(NFTA_CHAIN_TYPE, "filter") +
              a_be32(NFTA_CHAIN_POLICY, 1), "NEWCHAIN " + name)

    def rule(chain, exprs, what):
        b.nft(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, fam,
              a_str(NFTA_RULE_TABLE, args.table) + a_str(NFTA_RULE_CHAIN, chain) +
              nest(NFTA_RULE_EXPRESSIONS, *exprs), "NEWRULE " + what)

    if args.existing:
        tproxy_chain = args.chain
    elif args.jump_from:
        b.nft(NFT_MSG_NEWCHAIN, NLM_F_CREATE, fam,
              a_str(NFTA_CHAIN_TABLE, args.table) + a_str(NFTA_CHAIN_NAME, "inner"),
              "NEWCHAIN inner")
        base_chain("outer", args.jump_from)
        tproxy_chain = "inner"
    else:
        base_chain(args.chain, args.hook)
        tproxy_chain = args.chain

    if args.socket_key is not None:
        sk = []
        if args.socket_key != "none":
            key = SOCKET_KEYS.get(args.socket_key)
            sk.append(a_be32(NFTA_SOCKET_KEY, key if key is not None else int(args.socket_key, 0)))
        if args.socket_dreg != "none":
            sk.append(a_be32(NFTA_SOCKET_DREG, int(args.socket_dreg, 0)))
        if args.socket_level is not None:
            sk.append(a_be32(NFTA_SOCKET_LEVEL, args.socket_level))
        jump = lambda: rule("outer", [imm_jump("inner")], "jump")
        if args.jump_from and args.jump_first:
            jump()
        sexprs = match_prefix(args) if args.existing else []
        sexprs.append(expr("socket", *sk))
        # a cmp on the result, so that nft lists the rule (a bare load
        # lists as nothing): `socket KEY 0`, or --socket-value
        klen = SOCKET_KEY_LEN.get(args.socket_key)
        if klen and args.socket_dreg != "none" and reg_ok(int(args.socket_dreg, 0), klen):
            sexprs.append(cmp_eq(int(args.socket_dreg, 0),
                                 args.socket_value.to_bytes(klen, sys.byteorder)))
        sexprs += action_suffix(args)
        rule(tproxy_chain, sexprs, "socket")
        if args.jump_from and not args.jump_first:
            jump()
    elif not args.no_tproxy:
        exprs = match_prefix(args)
        tp = []
        if args.tproxy_family != "none":
            if args.tproxy_family in TPROXY_FAMILIES:
                tfam = TPROXY_FAMILIES[args.tproxy_family]
            else:
                tfam = int(args.tproxy_family, 0)
            tp.append(a_be32(NFTA_TPROXY_FAMILY, tfam))
        if args.addr is not None:
            fa = socket.AF_INET6 if ":" in args.addr else socket.AF_INET
            value = socket.inet_pton(fa, args.addr)
            # fill the register tproxy reads; for a bad register (the
            # point of the case) fill a good one so only tproxy can fail
            reg = args.addr_reg if reg_ok(args.addr_reg, len(value)) else NFT_REG_2
            exprs.append(imm_data(reg, value))
            tp.append(a_be32(NFTA_TPROXY_REG_ADDR, args.addr_reg))
        if args.port is not None:
            reg = args.port_reg if reg_ok(args.port_reg, 2) else NFT_REG_1
            exprs.append(imm_data(reg, struct.pack("!H", args.port)))
            tp.append(a_be32(NFTA_TPROXY_REG_PORT, args.port_reg))
        if args.tproxy_flags is not None:
            tp.append(a_be32(NFTA_TPROXY_NFTP_FLAGS, args.tproxy_flags))
        exprs.append(expr("tproxy", *tp))
        exprs += action_suffix(args)
        jump = lambda: rule("outer", [imm_jump("inner")], "jump")
        if args.jump_from and args.jump_first:
            jump()
        rule(tproxy_chain, exprs, "tproxy")
        if args.jump_from and not args.jump_first:
            jump()
    elif args.jump_from:
        rule("outer", [imm_jump("inner")], "jump")

    b.add(NFNL_MSG_BATCH_END, NLM_F_REQUEST, socket.AF_UNSPEC, b"", res_id=NFNL_SUBSYS_NFTABLES)
    return b


def parse_error(data, off, length):
    err = struct.unpack_from("=i", data, off + 16)[0]
    flags = struct.unpack_from("=H", data, off + 6)[0]
    text = ""
    if flags & NLM_F_ACK_TLVS:
        # capped: struct nlmsgerr = int error + struct nlmsghdr (16)
        pos = off + 16 + 4 + 16
        end = off + length
        while pos + 4 <= end:
            alen, atype = struct.unpack_from("=HH", data, pos)
            if alen < 4:
                break
            if atype & 0x7fff == NLMSGERR_ATTR_MSG:
                text = data[pos + 4:pos + alen].rstrip(b"\0").decode(errors="replace")
            pos += (alen + 3) & ~3
    return err, text


def run(args):
    b = build(args)
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.settimeout(args.timeout)
    sock.bind((0, 0))
    for opt in (NETLINK_CAP_ACK, NETLINK_EXT_ACK):
        try:
            sock.setsockopt(SOL_NETLINK, opt, 1)
        except OSError:
            pass
    sock.send(b"".join(b.msgs))
    # a GETGEN after the batch: its answer marks the end of the batch's answers
    sync_seq = b.seq
    sync = struct.pack("=BBH", socket.AF_UNSPEC, 0, 0)
    sock.send(struct.pack("=IHHII", 16 + len(sync), (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN,
                          NLM_F_REQUEST | NLM_F_ACK, sync_seq, 0) + sync)
    errors = []
    done = False
    while not done:
        data = sock.recv(65536)
        off = 0
        while off + 16 <= len(data):
            length, mtype, _flags, seq, _pid = struct.unpack_from("=IHHII", data, off)
            if length < 16:
                break
            if mtype == NLMSG_ERROR:
                err, text = parse_error(data, off, length)
                if seq == sync_seq:
                    done = True
                elif err != 0:
                    errors.append((seq, -err, text))
            off += (length + 3) & ~3
    sock.close()
    if not errors:
        print("ACCEPTED")
        return 0
    seq, eno, text = errors[0]
    # 95 is both ENOTSUP and EOPNOTSUPP on Linux; the kernel means the latter
    name = "EOPNOTSUPP" if eno == errno.EOPNOTSUPP else errno.errorcode.get(eno, str(eno))
    print("REJECTED errno=%s (%s%s) msg=%s" % (name, os.strerror(eno),
                                                ": " + text if text else "", b.names.get(seq, "?")))
    return 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table-family", choices=sorted(TABLE_FAMILIES), default="ip")
    p.add_argument("--table", default="rawtest")
    p.add_argument("--hook", default="prerouting")
    p.add_argument("--chain", default="c", help="the chain of the rule (default c)")
    p.add_argument("--existing", action="store_true",
                   help="the table and --chain exist: send only the rule")
    p.add_argument("--dev", default="lo", help="netdev: device of the ingress hook")
    p.add_argument("--priority", type=int, default=-150)
    p.add_argument("--jump-from", metavar="HOOK",
                   help="tproxy in regular chain 'inner', jumped to from a base chain at HOOK")
    p.add_argument("--jump-first", action="store_true", help="add the jump rule before the tproxy rule")
    p.add_argument("--tproxy-family", default="ip",
                   help="ip, ip6, unspec, none (attribute left out) or a number")
    p.add_argument("--addr", help="address loaded into the address register")
    p.add_argument("--addr-reg", type=int, default=NFT_REG_2)
    p.add_argument("--port", type=int, help="port loaded into the port register")
    p.add_argument("--port-reg", type=int, default=NFT_REG_1)
    p.add_argument("--no-l4", action="store_true", help="no meta l4proto match before tproxy")
    p.add_argument("--l4proto", choices=sorted(L4PROTOS), default="tcp",
                   help="the meta l4proto match (default tcp)")
    p.add_argument("--nfproto", choices=("ipv4", "ipv6"), help="a meta nfproto match first")
    p.add_argument("--dport", type=int, help="a th dport match (after meta l4proto)")
    p.add_argument("--tproxy-flags", type=lambda x: int(x, 0),
                   help="NFTA_TPROXY_NFTP_FLAGS (1: fail-closed, 2: local-route)")
    p.add_argument("--mark", type=lambda x: int(x, 0), help="meta mark set MARK after the expression")
    p.add_argument("--verdict", choices=("accept", "drop"), help="a verdict at the end of the rule")
    p.add_argument("--no-tproxy", action="store_true",
                   help="control: table and chains only (is this family/hook usable at all?)")
    p.add_argument("--socket-key", metavar="KEY",
                   help="a socket expression instead of tproxy: transparent, mark, wildcard, "
                        "cgroupv2, uid, gid, a number, or none (attribute left out)")
    p.add_argument("--socket-dreg", default="1", help="socket: destination register, or none")
    p.add_argument("--socket-level", type=int, help="socket: NFTA_SOCKET_LEVEL (cgroupv2)")
    p.add_argument("--socket-value", type=lambda x: int(x, 0), default=0,
                   help="socket: the value the key is compared with (default 0)")
    p.add_argument("--timeout", type=float, default=10.0)
    args = p.parse_args()
    try:
        return run(args)
    except socket.timeout:
        print("nfnl_raw: no answer from the kernel", file=sys.stderr)
        return 2
    except OSError as e:
        print("nfnl_raw: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

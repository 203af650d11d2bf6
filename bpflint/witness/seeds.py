"""First inputs of the search, per program type: a few ordinary packets (or an
all-zero context), from which the solver or the mutator moves toward the worst path."""

from __future__ import annotations

import struct

from bpflint.interp.refinterp import MAX_USER_RINGBUF_SAMPLES, SKB_TYPES, Input, World

MAX_PACKET_BYTES = 1514  # an Ethernet frame without FCS: what test_run sends as one packet
XDP_CTX_BYTES = 24  # struct xdp_md
SKB_CTX_BYTES = 192  # struct __sk_buff
PT_REGS_BYTES = 168  # struct pt_regs (x86-64)
GENERIC_CTX_BYTES = 512  # tracepoint records, u64 argument arrays, ...
PACKET_TYPES = frozenset({"xdp", *SKB_TYPES, "flow_dissector"})
_PT_REGS_TYPES = frozenset({"kprobe", "uprobe", "usdt", "kretprobe", "uretprobe"})


def is_packet_type(prog_type: str) -> bool:
    return prog_type in PACKET_TYPES


def _eth(proto: int, payload: bytes) -> bytes:
    return bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + struct.pack(">H", proto) + payload


def _csum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(proto: int, payload: bytes, src: int = 0x0A000001, dst: int = 0x0A000002) -> bytes:
    """An IPv4 header with its total length and checksum right (parsers check both)."""
    head = struct.pack(">BBHHHBBHII", 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0,
                       src, dst)
    return head[:10] + struct.pack(">H", _csum(head)) + head[12:] + payload


def _icmp(kind: int, code: int, rest: int, payload: bytes) -> bytes:
    head = struct.pack(">BBHI", kind, code, 0, rest) + payload
    return head[:2] + struct.pack(">H", _csum(head)) + head[4:]


def _gre(proto: int, payload: bytes) -> bytes:
    return struct.pack(">HH", 0, proto) + payload


def _ipv6(nexthdr: int, payload: bytes) -> bytes:
    return struct.pack(">IHBB", 0x60000000, len(payload), nexthdr, 64) + bytes(32) + payload


def _tcp(dport: int) -> bytes:
    return struct.pack(">HHIIBBHHH", 40000, dport, 1, 0, 0x50, 0x10, 1024, 0, 0)


def _udp(dport: int) -> bytes:
    return struct.pack(">HHHH", 40000, dport, 8, 0)


def _vlans(proto: int, payload: bytes) -> bytes:
    """Two stacked tags (802.1ad outside 802.1Q), the most parsers walk."""
    return struct.pack(">HHH", 0x0001, 0x8100, 0x0001) + struct.pack(">H", proto) + payload


def _tcp_opts(dport: int) -> bytes:
    """A SYN with the longest header (doff 15): 40 bytes of 2-byte options."""
    return struct.pack(">HHIIBBHHH", 40000, dport, 1, 0, 0xF0, 0x02, 1024, 0, 0) + \
        b"\x04\x02" * 20


def _hop_by_hop(nexthdr: int, payload: bytes) -> bytes:
    return bytes([nexthdr, 0]) + bytes(6) + payload


# Ordinary packets, and deep ones: the solver moves from a seed one branch at a time,
# so a seed that already walks VLAN tags, IPv6 extension headers and TCP options
# starts next to the dear paths of most parsers.
# Per protocol: ICMP errors carrying the packet they answer (load balancers and NATs
# parse the inner header), tunnels (IPIP, IPv6-in-IPv6, GRE), UDP to 443 with a
# QUIC long header; lengths and IPv4 checksums consistent.
SEED_PACKETS = (
    _eth(0x0800, _ipv4(6, _tcp(80) + bytes(16))),
    _eth(0x86DD, _ipv6(17, _udp(53) + bytes(16))),
    bytes(64),
    _eth(0x88A8, _vlans(0x86DD, _ipv6(0, _hop_by_hop(60, _hop_by_hop(6, _tcp_opts(80)))))),
    _eth(0x88A8, _vlans(0x0800, _ipv4(6, _tcp_opts(80)))),
    # ICMP destination unreachable, fragmentation needed, MTU 1400, inner IPv4/TCP
    _eth(0x0800, _ipv4(1, _icmp(3, 4, 1400, _ipv4(6, _tcp(80), 0x0A000002, 0x0A000001)))),
    # ICMPv6 packet too big, MTU 1280, inner IPv6/TCP
    _eth(0x86DD, _ipv6(58, _icmp(2, 0, 1280, _ipv6(6, _tcp(80))))),
    _eth(0x0800, _ipv4(4, _ipv4(6, _tcp(80) + bytes(16)))),  # IPIP
    _eth(0x86DD, _ipv6(41, _ipv6(6, _tcp(80) + bytes(16)))),  # IPv6 in IPv6
    _eth(0x0800, _ipv4(47, _gre(0x0800, _ipv4(17, _udp(53) + bytes(16))))),  # GRE
    _eth(0x0800, _ipv4(17, struct.pack(">HHHH", 40000, 443, 8 + 32, 0) +
                       b"\xc0\x00\x00\x00\x01\x08" + bytes(26))),  # QUIC long header
)


def ctx_for(prog_type: str, packet: bytes, base: bytes = b"") -> bytes:
    """The context a packet runs with: __sk_buff's len and protocol follow the packet
    (as BPF_PROG_TEST_RUN sets them), other bytes come from ``base``."""
    if prog_type == "xdp":
        ctx = bytearray(base.ljust(XDP_CTX_BYTES, b"\0")[:XDP_CTX_BYTES])
        return bytes(ctx)
    if prog_type in SKB_TYPES:
        ctx = bytearray(base.ljust(SKB_CTX_BYTES, b"\0")[:SKB_CTX_BYTES])
        struct.pack_into("<I", ctx, 0, len(packet))
        if len(packet) >= 14:
            ctx[16:20] = packet[12:14] + b"\0\0"
        return bytes(ctx)
    size = PT_REGS_BYTES if prog_type in _PT_REGS_TYPES else GENERIC_CTX_BYTES
    return base.ljust(size, b"\0")[:size]


# Everything outside the program as generous as the kernel allows: every callback
# round a helper may run (the interpreter caps hash walks at the map's size), lookups
# that hit. Callback rounds are not solved for, so they start at their largest.
GENEROUS = World(callback_rounds=(MAX_USER_RINGBUF_SAMPLES,), hash_elems=1 << 20)


def seeds(prog_type: str) -> list[Input]:
    if is_packet_type(prog_type):
        return [Input(ctx=ctx_for(prog_type, p), packet=p, world=world)
                for world in (World(), GENEROUS) for p in SEED_PACKETS]
    ctx = ctx_for(prog_type, b"")
    return [Input(ctx=ctx, world=World()), Input(ctx=ctx, world=World(lookup_hits=(False,))),
            Input(ctx=ctx, world=GENEROUS)]

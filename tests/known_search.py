"""The known-count programs (tests/progs/known) and, per program, the inputs that
matter: the search space over which the reference interpreter finds the true best
and worst instruction counts (tests/test_known_counts.py).

Each space is exhaustive over what the program's count can depend on: every value of
the packet byte it reads, every packet length up to past its clamp, every position of
the byte a search loop stops at, every map value up to past its mask or clamp (plus
the type's extremes), every outcome of each map lookup. The comments say why a space
covers all inputs the verifier allows.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cases import ETH_IP, eth, ipv4, regs, skb, u64_args, xdp

from bpflint.interp.refinterp import Input, World

BYTES = range(256)
U32_EXTREMES = (0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFC0, 0xFFFF_FFFF)


@dataclass(frozen=True)
class Known:
    file: str  # under tests/progs/known
    name: str  # the program (SEC) name
    space: Callable[[], Iterable[Input]]
    # the tightness reached: insns.max / true max and true min / insns.min may not
    # pass these (a regression fails the test); 1.0: exact
    max_ratio: float = 1.0
    min_ratio: float = 1.0
    why: str = ""  # why a ratio is above 1.0


def one(inp: Input) -> Callable[[], Iterable[Input]]:
    return lambda: (inp,)


def xdp_bytes(length: int = 1, at: int = 0, pad: int = 0) -> Callable[[], Iterable[Input]]:
    """Every value of the byte at `at` of a `length`-byte packet, plus every shorter
    packet (the bounds check's early exit)."""
    def gen() -> Iterable[Input]:
        for short in range(length):
            yield xdp(bytes(short))
        for b in BYTES:
            pkt = bytearray(length + pad)
            pkt[at] = b
            yield xdp(bytes(pkt))
    return gen


def xdp_lengths(upto: int) -> Callable[[], Iterable[Input]]:
    return lambda: (xdp(bytes(n)) for n in range(upto + 1))


def xdp_pairs(a: Iterable[int], b: Iterable[int]) -> Callable[[], Iterable[Input]]:
    """Two-byte packets: every (a, b) given, and the short packets."""
    def gen() -> Iterable[Input]:
        yield from (xdp(bytes(n)) for n in range(2))
        yield from (xdp(bytes([x, y])) for x, y in itertools.product(a, b))
    return gen


def search_packets(length: int, needles: tuple[int, ...], filler: int = 0
                   ) -> Callable[[], Iterable[Input]]:
    """A search loop over `length` bytes: the count depends only on where the first
    needle sits (every position, every needle) or that none is there."""
    def gen() -> Iterable[Input]:
        yield xdp(bytes(length - 1))
        yield xdp(bytes([filler]) * length)
        for pos, needle in itertools.product(range(length), needles):
            pkt = bytearray([filler]) * length
            pkt[pos] = needle
            yield xdp(bytes(pkt))
    return gen


def continue_packets() -> Iterable[Input]:
    """k_continue: each byte is odd (skipped) or even (the long body); the count is a
    sum over the bytes, so every number of even bytes covers every count."""
    yield xdp(bytes(15))
    for evens in range(17):
        yield xdp(bytes(evens) + b"\x01" * (16 - evens))


def map_values(limit: int) -> Callable[[], Iterable[Input]]:
    """The u32 in cfg[0]: every value up to past the clamp and mask, and the extremes
    (the count depends on min(v, clamp) or v & mask only)."""
    def gen() -> Iterable[Input]:
        for v in (*range(limit), *U32_EXTREMES):
            world = World(map_contents=(("cfg", struct.pack("<I", 0), struct.pack("<I", v)),))
            yield xdp(b"", world=world)
    return gen


def lim_values() -> Iterable[Input]:
    """The u32 in lim[0], masked by 31: every value of the mask and the extremes."""
    for v in (*range(40), *U32_EXTREMES):
        world = World(map_contents=(("lim", struct.pack("<I", 0), struct.pack("<I", v)),))
        yield xdp(b"", world=world)


def ip_option_packets() -> Iterable[Input]:
    """k_ip_options walks the IPv4 options up to the first 0 byte, the header's
    length (ihl * 4) and the packet's end: every ihl (0 to 15), every position of
    the first 0 (or none), every truncation of the packet; short and non-IPv4."""
    yield from (xdp(bytes(n)) for n in range(34))
    yield xdp(eth(0x86DD, bytes(40)))
    for ihl in range(16):
        pkt = bytearray(eth(ETH_IP, ipv4(6, bytes(8), ihl=max(ihl, 5))))
        pkt[14] = 0x40 | ihl
        opts = range(34, 14 + 4 * max(ihl, 5))
        for i in opts:
            pkt[i] = 1
        for cut in range(34, len(pkt) + 1):
            yield xdp(bytes(pkt[:cut]))
        for zero_at in opts:
            with_zero = bytearray(pkt)
            with_zero[zero_at] = 0
            yield xdp(bytes(with_zero))


def with_tail_call_failing(gen: Callable[[], Iterable[Input]]) -> Callable[[], Iterable[Input]]:
    """Each input twice: the tail call taken, and its slot emptied at run time."""
    def both() -> Iterable[Input]:
        for inp in gen():
            yield inp
            yield Input(ctx=inp.ctx, packet=inp.packet, world=World(tail_call_fails=True))
    return both


def weights_filled() -> Iterable[Input]:
    """k_foreach_loop: each element's callback loops value & 7 times; the costs add
    up, so every element at each of the 8 masked values (and the extremes) covers
    the least and the most."""
    for v in (*range(9), 0xFFFF_FFFF):
        contents = tuple(("weights", struct.pack("<I", k), struct.pack("<I", v))
                         for k in range(6))
        yield xdp(b"", world=World(map_contents=contents))


def prefix_packets(want: bytes) -> Callable[[], Iterable[Input]]:
    """A byte-by-byte compare stops at the first mismatch: the first k bytes right
    and the next wrong, for every k (all right at k = len), and the short packets."""
    def gen() -> Iterable[Input]:
        yield from (xdp(want[:n]) for n in range(len(want)))
        for k in range(len(want) + 1):
            wrong = bytes([want[k] ^ 0xFF]) if k < len(want) else b""
            yield xdp((want[:k] + wrong).ljust(len(want), b"\0"))
    return gen


def table_with_seven() -> Iterable[Input]:
    """k_foreach_stop: the callback stops at the first 7; every position or none."""
    for pos in range(9):
        contents = tuple(("table", struct.pack("<I", k), struct.pack("<I", 7 if k == pos else 0))
                         for k in range(8))
        yield xdp(b"", world=World(map_contents=contents))


def lookup_outcomes(n: int) -> Callable[[], Iterable[Input]]:
    """Every hit/miss sequence of n hash-map lookups."""
    return lambda: (xdp(b"", world=World(lookup_hits=hits))
                    for hits in itertools.product((False, True), repeat=n))


def skb_lengths(upto: int) -> Callable[[], Iterable[Input]]:
    return lambda: (skb(bytes(n)) for n in range(upto + 1))


def skb_first_byte() -> Iterable[Input]:
    yield skb(b"")  # bpf_skb_load_bytes fails
    yield from (skb(bytes([b]) + bytes(13)) for b in BYTES)


def kprobe_args() -> Iterable[Input]:
    return (regs(di=v) for v in (*range(70), *U32_EXTREMES, 2**63, 2**64 - 1))


def raw_tp_args() -> Iterable[Input]:
    return (u64_args(0, v) for v in (*range(30), *U32_EXTREMES, 2**63, 2**64 - 1))


def fills(length: int, values: Iterable[int]) -> Callable[[], Iterable[Input]]:
    """Packets of one repeated byte (and the short packet): where each iteration's
    cost depends on one byte only and the costs add up, the dearest (cheapest) byte
    everywhere is the worst (best) input."""
    def gen() -> Iterable[Input]:
        yield xdp(bytes(length - 1))
        yield from (xdp(bytes([v]) * length) for v in values)
    return gen


def inner_break_packets() -> Iterable[Input]:
    """k_inner_break: the inner loop of round i stops at the first j with p[j] == i.
    No byte below 8: every round runs 8 times (the worst); each round needs its own
    position, so a permutation of 0..7 gives the fewest (0 + 1 + ... + 7)."""
    yield xdp(bytes(7))
    for pkt in (bytes(range(8)), bytes(range(7, -1, -1)), bytes([8] * 8), bytes(8),
                bytes([3, 1, 4, 0, 5, 2, 7, 6]), bytes([255] * 8)):
        yield xdp(pkt)


def vals_odd(n: int) -> Iterable[Input]:
    """k_foreach_paths: an odd value takes the longer path; costs add up per element,
    so the first k elements odd for every k covers every count."""
    for k in range(n + 1):
        contents = tuple(("vals", struct.pack("<I", e), struct.pack("<I", 1 if e < k else 0))
                         for e in range(n))
        yield xdp(b"", world=World(map_contents=contents))


NO_PKT = xdp(b"")

KNOWN: tuple[Known, ...] = (
    # branches.bpf.c
    Known("branches.bpf.c", "k_straight", one(NO_PKT)),
    Known("branches.bpf.c", "k_diamond", xdp_bytes()),
    Known("branches.bpf.c", "k_correlated", xdp_bytes()),
    Known("branches.bpf.c", "k_nested_if", xdp_bytes()),
    Known("branches.bpf.c", "k_switch", xdp_bytes()),
    Known("branches.bpf.c", "k_early_return", xdp_pairs((0, 1, 2, 255), (0, 9, 10, 11, 255))),
    Known("branches.bpf.c", "k_else_if_chain", xdp_bytes()),
    # loops.bpf.c
    Known("loops.bpf.c", "k_up16", one(NO_PKT)),
    Known("loops.bpf.c", "k_down20", one(NO_PKT)),
    Known("loops.bpf.c", "k_step2", one(NO_PKT)),
    Known("loops.bpf.c", "k_step3_le", one(NO_PKT)),
    Known("loops.bpf.c", "k_signed", one(NO_PKT)),
    Known("loops.bpf.c", "k_u8_wrap", one(NO_PKT)),
    Known("loops.bpf.c", "k_do_while", one(NO_PKT)),
    Known("loops.bpf.c", "k_body_diamond", xdp_bytes()),
    Known("loops.bpf.c", "k_parity", one(NO_PKT)),
    Known("loops.bpf.c", "k_shift_loop", xdp_bytes()),
    # nested.bpf.c
    Known("nested.bpf.c", "k_rect", one(NO_PKT)),
    Known("nested.bpf.c", "k_tri", one(NO_PKT)),
    Known("nested.bpf.c", "k_tri_le", one(NO_PKT)),
    Known("nested.bpf.c", "k_tri_down", one(NO_PKT)),
    Known("nested.bpf.c", "k_nest3", one(NO_PKT)),
    Known("nested.bpf.c", "k_tri_data", xdp_bytes()),
    # early.bpf.c
    Known("early.bpf.c", "k_search_break", search_packets(32, (0x55,))),
    Known("early.bpf.c", "k_continue", continue_packets),
    Known("early.bpf.c", "k_break_at", xdp_bytes()),
    Known("early.bpf.c", "k_two_exits", search_packets(24, (1, 2))),
    Known("early.bpf.c", "k_pkt_walk", xdp_lengths(70)),
    # bounded.bpf.c
    Known("bounded.bpf.c", "k_mask_bound", xdp_bytes()),
    Known("bounded.bpf.c", "k_min_bound", xdp_bytes()),
    Known("bounded.bpf.c", "k_map_mask", map_values(70)),
    Known("bounded.bpf.c", "k_map_min_step2", map_values(30)),
    Known("bounded.bpf.c", "k_len_bound", xdp_lengths(60)),
    Known("bounded.bpf.c", "k_data_start", xdp_bytes()),
    # bpfloop.bpf.c
    Known("bpfloop.bpf.c", "k_bpf_loop_const", one(NO_PKT)),
    Known("bpfloop.bpf.c", "k_bpf_loop_clamp", xdp_bytes()),
    Known("bpfloop.bpf.c", "k_bpf_loop_paths", xdp_bytes()),
    Known("bpfloop.bpf.c", "k_bpf_loop_stop", xdp_bytes()),
    Known("bpfloop.bpf.c", "k_bpf_loop_parity", one(NO_PKT)),
    Known("bpfloop.bpf.c", "k_bpf_loop_parity200", one(NO_PKT)),
    Known("bpfloop.bpf.c", "k_bpf_loop_stop5", one(NO_PKT)),
    # iters.bpf.c
    Known("iters.bpf.c", "k_bpf_for", one(NO_PKT)),
    Known("iters.bpf.c", "k_bpf_for_clamp", xdp_bytes()),
    Known("iters.bpf.c", "k_bpf_repeat", one(NO_PKT)),
    Known("iters.bpf.c", "k_foreach", one(NO_PKT)),
    Known("iters.bpf.c", "k_foreach_stop", table_with_seven),
    # calls.bpf.c
    Known("calls.bpf.c", "k_static_in_loop", xdp_bytes()),
    Known("calls.bpf.c", "k_global_in_loop", one(NO_PKT)),
    Known("calls.bpf.c", "k_sub_loop_twice", xdp_pairs(range(9), range(9))),
    Known("calls.bpf.c", "k_helper_loop", lookup_outcomes(6)),
    Known("calls.bpf.c", "k_tail_target", one(NO_PKT)),
    Known("calls.bpf.c", "k_tail", lambda: (NO_PKT, xdp(b"", world=World(tail_call_fails=True)))),
    # types.bpf.c
    Known("types.bpf.c", "k_tc_len", skb_lengths(50)),
    Known("types.bpf.c", "k_sock_load", skb_first_byte),
    Known("types.bpf.c", "k_kprobe", kprobe_args),
    Known("types.bpf.c", "k_raw_tp", raw_tp_args),
    # harder.bpf.c
    Known("harder.bpf.c", "k_var_step", fills(32, range(4))),  # step (b & 3) + 1
    Known("harder.bpf.c", "k_inner_break", inner_break_packets),
    Known("harder.bpf.c", "k_switch_loop", fills(8, range(4))),
    Known("harder.bpf.c", "k_mod3", one(NO_PKT)),
    Known("harder.bpf.c", "k_first_iters", one(NO_PKT)),
    Known("harder.bpf.c", "k_u16_step7", one(NO_PKT)),
    Known("harder.bpf.c", "k_signed_down3", one(NO_PKT)),
    Known("harder.bpf.c", "k_bpf_loop_tri", one(NO_PKT)),
    Known("harder.bpf.c", "k_iter_tri", one(NO_PKT)),
    Known("harder.bpf.c", "k_foreach_paths", lambda: vals_odd(8)),
    Known("harder.bpf.c", "k_bpf_loop_in_loop", one(NO_PKT)),
    # harder2.bpf.c
    Known("harder2.bpf.c", "k_square_exit", xdp_bytes()),
    Known("harder2.bpf.c", "k_doubling", xdp_bytes()),
    Known("harder2.bpf.c", "k_global_narrow", xdp_bytes()),
    Known("harder2.bpf.c", "k_static_two_sites", xdp_bytes()),
    Known("harder2.bpf.c", "k_bpf_loop_mod4", one(NO_PKT)),
    Known("harder2.bpf.c", "k_bpf_loop_map", lim_values),
    Known("harder2.bpf.c", "k_iter_first", one(NO_PKT)),
    Known("harder2.bpf.c", "k_data_tri", fills(8, range(9))),  # p[i] & 7 rounds each
    # harder3.bpf.c
    Known("harder3.bpf.c", "k_ptr_walk", xdp_lengths(60)),
    Known("harder3.bpf.c", "k_while_dec", xdp_bytes()),
    Known("harder3.bpf.c", "k_signed_bound", xdp_bytes()),
    Known("harder3.bpf.c", "k_bpf_loop_nested", one(NO_PKT)),
    Known("harder3.bpf.c", "k_chain_c", xdp_bytes()),
    Known("harder3.bpf.c", "k_chain_a", with_tail_call_failing(xdp_bytes())),
    Known("harder3.bpf.c", "k_ip_options", ip_option_packets),
    Known("harder3.bpf.c", "k_call_tri", one(NO_PKT)),
    Known("harder3.bpf.c", "k_global_tri", one(NO_PKT)),
    Known("harder3.bpf.c", "k_foreach_loop", weights_filled),
    # harder4.bpf.c
    Known("harder4.bpf.c", "k_shrink_bound", xdp_pairs((0, 255), range(4))),  # p[1] & 1
    Known("harder4.bpf.c", "k_retry", xdp_bytes()),
    Known("harder4.bpf.c", "k_memcmp", prefix_packets(b"bpflint-wcet")),
    Known("harder4.bpf.c", "k_bits", xdp_bytes()),
    Known("harder4.bpf.c", "k_csum", xdp_lengths(70)),
    Known("harder2.bpf.c", "k_two_phase", xdp_bytes(), max_ratio=1.64,
          why="the second loop starts where the first ended (20 rounds in all); each "
              "is bounded alone: 15 + 20"),
)

"""Per-program metadata of the test corpus (tests/progs/*.bpf.c).

For every source file: the extra clang flags, whether this machine's kernel
verifier accepts it, whether bpflint must report it bounded, and for every
program in it a hand-built worst-case and best-case input (the tightness test:
executed count on ``worst`` == insns.max, on ``best`` == insns.min, unless a
``max_ratio``/``min_ratio`` with a reason says why equality is impossible).

Also: input builders per context kind and hypothesis strategies producing
:class:`bpflint.interp.refinterp.Input` values for the soundness tests.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hypothesis import strategies as st

from bpflint.interp.refinterp import Input, World
from bpflint.obj.model import BpfObject

# -- packets --------------------------------------------------------------------
ETH_IP = 0x0800
ETH_IP6 = 0x86DD
ETH_VLAN = 0x8100
TCP, UDP, ICMP = 6, 17, 1


def eth(proto: int, payload: bytes = b"") -> bytes:
    return bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + struct.pack(">H", proto) + payload


def vlan(vid: int, proto: int, payload: bytes = b"") -> bytes:
    return struct.pack(">HH", vid, proto) + payload


def ipv4(proto: int, payload: bytes = b"", ihl: int = 5, ttl: int = 64,
         saddr: int = 0x0A000001) -> bytes:
    hdr = struct.pack(">BBHHHBBHII", 0x40 | ihl, 0, 20 + len(payload), 1, 0, ttl, proto, 0,
                      saddr, 0x0A000002)
    return hdr + bytes(4 * (ihl - 5)) + payload


def ipv6(nexthdr: int, payload: bytes = b"") -> bytes:
    return struct.pack(">IHBB", 0x60000000, len(payload), nexthdr, 64) + bytes(32) + payload


def ext6(nexthdr: int, hdrlen: int = 0) -> bytes:
    """An IPv6 extension header of (hdrlen + 1) * 8 bytes."""
    return bytes([nexthdr, hdrlen]) + bytes(6 + 8 * hdrlen)


def tcp(dport: int, flags: int = 0x10) -> bytes:
    return struct.pack(">HHIIBBHHH", 40000, dport, 1, 0, 0x50, flags, 1024, 0, 0)


def udp(dport: int) -> bytes:
    return struct.pack(">HHHH", 40000, dport, 8, 0)


# -- contexts -------------------------------------------------------------------
DEFAULT_WORLD = World()
REGS = ("r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8",
        "ax", "cx", "dx", "si", "di", "orig_ax", "ip", "cs", "flags", "sp", "ss")


def xdp(packet: bytes, rx_queue: int = 0, world: World = DEFAULT_WORLD) -> Input:
    """struct xdp_md; data/data_end/data_meta become packet pointers in the run."""
    ctx = struct.pack("<IIIIII", 0, 0, 0, 1, rx_queue & 0xFFFFFFFF, 0)
    return Input(ctx=ctx, packet=packet, world=world)


def skb(packet: bytes, mark: int = 0, priority: int = 0, hash_: int = 0,
        vlan_tci: int | None = None, ports: tuple[int, int] = (0, 0),
        world: World = DEFAULT_WORLD) -> Input:
    """struct __sk_buff (192 bytes): len and protocol follow the packet."""
    ctx = bytearray(192)
    proto = int.from_bytes(packet[12:14], "little") if len(packet) >= 14 else 0
    struct.pack_into("<III", ctx, 0, len(packet), 0, mark)
    struct.pack_into("<IIII", ctx, 16, proto, int(vlan_tci is not None), vlan_tci or 0, 0)
    struct.pack_into("<I", ctx, 32, priority)
    struct.pack_into("<I", ctx, 68, hash_)
    struct.pack_into("<II", ctx, 132, ports[0], ports[1])
    return Input(ctx=bytes(ctx), packet=packet, world=world)


def regs(world: World = DEFAULT_WORLD, **values: int) -> Input:
    """struct pt_regs (x86-64) for kprobe/uprobe/usdt programs."""
    return Input(ctx=_regs_bytes(values), world=world)


def _regs_bytes(values: dict[str, int]) -> bytes:
    unknown = set(values) - set(REGS)
    if unknown:
        raise ValueError(f"unknown registers {sorted(unknown)}")
    return struct.pack("<21Q", *(values.get(r, 0) & (2**64 - 1) for r in REGS))


def perf_event(world: World = DEFAULT_WORLD, sample_period: int = 0, addr: int = 0,
               **values: int) -> Input:
    return Input(ctx=_regs_bytes(values) + struct.pack("<QQ", sample_period, addr), world=world)


def sys_enter(nr: int, args: tuple[int, ...] = (), world: World = DEFAULT_WORLD) -> Input:
    """syscalls/sys_enter_* tracepoint record."""
    padded = (tuple(args) + (0,) * 6)[:6]
    return Input(ctx=struct.pack("<Qq6Q", 0, nr, *(a & (2**64 - 1) for a in padded)),
                 world=world)


def u64_args(*args: int, world: World = DEFAULT_WORLD) -> Input:
    """raw_tp (struct bpf_raw_tracepoint_args), fentry/fexit/lsm: an array of u64."""
    padded = (tuple(args) + (0,) * 6)[:6]
    return Input(ctx=struct.pack("<6Q", *(a & (2**64 - 1) for a in padded)), world=world)


def iter_task(task: bool, seq_num: int = 0, world: World = DEFAULT_WORLD) -> Input:
    """struct bpf_iter__task: meta (seq, session_id, seq_num) and task (or NULL)."""
    meta = struct.pack("<QQQ", 0, 1, seq_num)
    return Input(ctx=bytes(16), ctx_pointers=((0, meta), (8, bytes(64) if task else None)),
                 world=world)


def raw(ctx: bytes, world: World = DEFAULT_WORLD) -> Input:
    return Input(ctx=ctx, world=world)


# -- metadata -------------------------------------------------------------------
@dataclass(frozen=True)
class ProgCase:
    name: str
    worst: Input
    best: Input
    # insns.max / executed(worst) may be up to max_ratio (1.0: must be equal);
    # executed(best) / insns.min may be up to min_ratio. None: no tightness claim.
    max_ratio: float | None = 1.0
    min_ratio: float | None = 1.0
    reason: str = ""  # why a ratio is not 1.0


@dataclass(frozen=True)
class FileCase:
    file: str
    kind: str  # which strategy draws its inputs: xdp, skb, regs, ...
    programs: tuple[ProgCase, ...]
    flags: tuple[str, ...] = ()
    # True/False: the verifier's verdict; None: this machine's kernel refuses the
    # program type before verifying (fentry/lsm need BPF trampolines; EPERM here)
    kernel_loads: bool | None = True
    bounded: bool = True


ALL_HIT = World(lookup_hits=(True,))
ALL_MISS = World(lookup_hits=(False,))
# array lookups cannot fail for an in-range key, but the verifier makes programs
# test for NULL and the cost engine need not know better: the cheapest path
ARRAY_NULL = World(lookup_hits=(False,), array_lookup_null=True)
NO_PKT = b""
TCP_SYN = tcp(443, flags=0x02)

CASES: tuple[FileCase, ...] = (
    FileCase("straight_xdp.bpf.c", "xdp", (
        ProgCase("straight_xdp", xdp(bytes(64)), xdp(NO_PKT)),)),
    FileCase("branchy_tc.bpf.c", "skb", (
        ProgCase("branchy_tc",
                 # IPv4 of middle length (two length compares), mark bit 0x100, VLAN tag > 100
                 skb(eth(ETH_IP, bytes(586)), vlan_tci=200, mark=0x100),
                 skb(eth(0x0806, bytes(28)))),)),
    FileCase("parse_xdp.bpf.c", "xdp", (
        ProgCase("parse_xdp",
                 xdp(eth(ETH_VLAN, vlan(5, ETH_IP, ipv4(TCP, TCP_SYN)))),
                 xdp(NO_PKT)),)),
    FileCase("socket_filter.bpf.c", "skb", (
        ProgCase("socket_filter",
                 skb(eth(ETH_IP, ipv4(TCP, tcp(443)))),
                 skb(NO_PKT)),)),
    FileCase("kprobe_count.bpf.c", "regs", (
        ProgCase("kprobe_entry", regs(di=-100), regs(di=3)),
        ProgCase("kretprobe_exit",
                 regs(ax=0, world=World(lookup_hits=(True, False))),
                 regs(world=ALL_MISS)))),
    FileCase("tracepoint_openat.bpf.c", "sys_enter", (
        ProgCase("tp_openat", sys_enter(257, (0, 0, 0o1)),
                 sys_enter(257, (0, 0, 0o100), world=ARRAY_NULL)),)),
    FileCase("raw_tp_ringbuf.bpf.c", "u64_args", (
        ProgCase("raw_tp_enter", u64_args(0, 59, world=World(reads_fail=True)),
                 u64_args(0, 1)),)),
    FileCase("fentry_unlink.bpf.c", "u64_args", (
        ProgCase("fentry_unlink", u64_args(-100 & 0xFFFFFFFF), u64_args(3)),
        ProgCase("fexit_unlink", u64_args(0, 0, -2), u64_args(0, 0, 0))),
        kernel_loads=None),
    FileCase("lsm_file_open.bpf.c", "u64_args", (
        # denied_tgid is loader-set: the worst case denies the caller, a thread
        ProgCase("lsm_file_open",
                 u64_args(0, world=World(scalars=(5 << 32 | 6,), rodata=(("denied_tgid", 5),))),
                 u64_args(0)),),
        kernel_loads=None),
    FileCase("cgroup_skb.bpf.c", "skb", (
        ProgCase("cgroup_ingress", skb(eth(ETH_IP, bytes(10))), skb(bytes(100))),)),
    FileCase("sk_skb_verdict.bpf.c", "skb", (
        ProgCase("sk_skb_verdict", skb(bytes(64), ports=(0x0A000000, 0)), skb(bytes(4))),)),
    FileCase("uprobe_malloc.bpf.c", "regs", (
        ProgCase("uprobe_malloc", regs(di=0), regs(di=2**64 - 1, world=ARRAY_NULL)),
        ProgCase("uretprobe_malloc", regs(ax=0), regs(ax=0x1000)))),
    FileCase("usdt_probe.bpf.c", "regs", (
        # the loader writes the argument specs: the worst case takes both register
        # compares and the signed 4-byte path for both arguments, then the update
        ProgCase("usdt_query_done",
                 regs(di=7, si=5, dx=5, world=World(rodata=(
                     ("specs", int.from_bytes(bytes([2, 4, 1, 2, 4, 1]), "little")),))),
                 # the best: both from rdi, 8 bytes wide, and a negative duration
                 regs(di=-5 & (2**64 - 1), world=World(rodata=(
                     ("specs", int.from_bytes(bytes([0, 8, 0, 0, 8, 0]), "little")),)))),)),
    FileCase("syscall_prog.bpf.c", "raw", (
        ProgCase("syscall_sum",
                 raw(struct.pack("<II8QQ", 1, 12, *range(8), 0)),
                 raw(struct.pack("<II8QQ", 0, 0, *range(8), 0))),)),
    FileCase("iter_task.bpf.c", "iter", (
        ProgCase("iter_task", iter_task(task=True, seq_num=0), iter_task(task=False)),)),
    FileCase("perf_event_sample.bpf.c", "perf_event", (
        ProgCase("perf_sample", perf_event(world=World(value_fill=0x3F), cs=1),
                 perf_event(world=ARRAY_NULL)),)),
    FileCase("loop_shapes.bpf.c", "xdp", tuple(
        ProgCase(name, xdp(NO_PKT, rx_queue=0xFFFFFFFF), xdp(NO_PKT, rx_queue=0))
        for name in ("loop_lt_up", "loop_le_up", "loop_ne_up", "loop_signed_down",
                     "loop_unsigned_down", "loop_step3", "loop_signed_neg", "loop_do_while"))
        + (ProgCase("loop_break", xdp(bytes([1]) * 40), xdp(NO_PKT)),)),
    FileCase("loop_nested.bpf.c", "xdp", (
        ProgCase("nested2", xdp(NO_PKT, rx_queue=0xFFFFFFFF), xdp(NO_PKT, rx_queue=0)),
        ProgCase("nested2_triangular", xdp(NO_PKT), xdp(NO_PKT)),
        ProgCase("nested3", xdp(NO_PKT, rx_queue=7), xdp(NO_PKT, rx_queue=0)))),
    FileCase("loop_clamped.bpf.c", "xdp", (
        ProgCase("loop_clamped", xdp(bytes([255])), xdp(NO_PKT)),)),
    FileCase("ipv6_ext.bpf.c", "skb", (
        ProgCase("ipv6_ext",
                 skb(eth(ETH_IP6, ipv6(60, b"".join(ext6(60, 1) for _ in range(6))))),
                 skb(NO_PKT)),)),
    FileCase("unroll_vlan.bpf.c", "xdp", (
        ProgCase("unroll_vlan",
                 xdp(eth(ETH_VLAN, vlan(5, ETH_VLAN, vlan(7, ETH_IP6, ipv6(TCP, tcp(80)))))),
                 xdp(NO_PKT)),)),
    FileCase("calls.bpf.c", "xdp", (
        ProgCase("calls_chain", xdp(NO_PKT, rx_queue=1), xdp(NO_PKT, rx_queue=1001),
                 max_ratio=1.2,
                 reason="x + 7 and (x ^ 5) + 7 differ in parity: only one of level1's "
                        "two level3 calls can take the mix() branch"),
        # q & 15 == 0 skips sum_first's loop; 128 < q <= 255 is the cheapest clamp
        ProgCase("calls_arg_loop", xdp(NO_PKT, rx_queue=15), xdp(NO_PKT, rx_queue=144),
                 max_ratio=1.01, min_ratio=1.02,
                 reason="global_clamp's return value decides the caller's verdict "
                        "branch: its cheapest/dearest paths do not combine freely with "
                        "the caller's (engine 151..321, inputs reach 152..320)"))),
    FileCase("bpf_loop.bpf.c", "xdp", (
        ProgCase("bpf_loop_const", xdp(NO_PKT), xdp(NO_PKT)),
        ProgCase("bpf_loop_clamped", xdp(NO_PKT, rx_queue=1000), xdp(NO_PKT, rx_queue=0)),
        ProgCase("bpf_loop_early", xdp(NO_PKT, rx_queue=64), xdp(NO_PKT, rx_queue=0)))),
    FileCase("for_each_map.bpf.c", "skb", (
        ProgCase("each_array", skb(NO_PKT), skb(NO_PKT)),
        ProgCase("each_hash", skb(NO_PKT, mark=0xFFFFFFFF, world=World(hash_elems=32)),
                 skb(NO_PKT, world=World(hash_elems=0))))),
    FileCase("user_ringbuf.bpf.c", "raw", (
        # a 4096-byte ring holds at most 256 8-byte samples (8-byte record headers)
        ProgCase("drain_user_rb", raw(bytes(8), World(callback_rounds=(256,))),
                 raw(bytes(8), World(callback_rounds=(0,))),
                 max_ratio=None,
                 reason="bpflint bounds the drain by BPF_MAX_USER_RINGBUF_SAMPLES "
                        "(128Ki), not by the ring's capacity"),)),
    FileCase("find_vma.bpf.c", "perf_event", (
        ProgCase("find_vma_prog", perf_event(world=World(callback_rounds=(1,))),
                 perf_event(world=World(callback_rounds=(0,)))),)),
    FileCase("timer.bpf.c", "skb", (
        ProgCase("arm_timer", skb(NO_PKT), skb(NO_PKT, world=World(array_lookup_null=True,
                                                                      lookup_hits=(False,)))),)),
    FileCase("iter_num.bpf.c", "u64_args", (
        ProgCase("iter_for", u64_args(), u64_args()),
        ProgCase("iter_repeat", u64_args(), u64_args()),
        ProgCase("iter_raw", u64_args(0, 15), u64_args(0, 0), max_ratio=1.25,
                 reason="values 3..17 alternate parity: only every other round takes "
                        "the add branch"))),
    FileCase("iter_bits.bpf.c", "u64_args", (
        ProgCase("iter_bits", u64_args(2**64 - 1, 2**64 - 1), u64_args(0, 0)),
        ProgCase("iter_bits_too_many", u64_args(2**64 - 1, 2**64 - 1), u64_args(0, 0)),
        ProgCase("iter_bits_null", u64_args(), u64_args()))),
    FileCase("may_goto.bpf.c", "u64_args", (
        ProgCase("may_goto_loop", u64_args(0, 27), u64_args(0, 1), max_ratio=None,
                 reason="the loop is cut only by the may_goto budget (8M rounds); no "
                        "input reaches it in a test"),)),
    FileCase("tail_calls.bpf.c", "skb", (
        ProgCase("tc_stage_a", skb(bytes(200), mark=1), skb(NO_PKT, mark=0)),
        ProgCase("tc_stage_b", skb(bytes(200)), skb(NO_PKT, world=World(tail_call_fails=True))),
        ProgCase("tc_stage_c", skb(bytes(200)), skb(NO_PKT)),
        ProgCase("tc_dispatch_unknown", skb(NO_PKT), skb(NO_PKT), max_ratio=None,
                 min_ratio=None,
                 reason="the prog array has no static targets: an open edge, and the "
                        "interpreter can only run the fall-through"))),
    FileCase("maps_heavy.bpf.c", "regs", (
        ProgCase("maps_heavy",
                 # flows hit (old timestamp 0x7f.. makes now - old wrap above 1s),
                 # per_cpu_hits and recent miss: every block runs
                 regs(dx=100, world=World(lookup_hits=(True, False, False), value_fill=0x7F)),
                 regs(world=World(value_fill=0))),)),
    FileCase("v4_ops.bpf.c", "xdp", (
        ProgCase("v4_ops", xdp(bytes([0, 0, 1, 0, 0, 0, 0, 0])), xdp(NO_PKT)),),
        flags=("-mcpu=v4",)),
    FileCase("unbounded.bpf.c", "u64_args", (
        ProgCase("unbounded_loop", u64_args(0, 100), u64_args(0, 0), max_ratio=None,
                 reason="unbounded: bpflint reports max null"),),
        kernel_loads=False, bounded=False),
    FileCase("large_parser.bpf.c", "xdp", (
        ProgCase("large_parser", xdp(bytes([0x81, 1]) * 200), xdp(NO_PKT)),)),
    FileCase("rodata_config.bpf.c", "xdp", (
        # const volatile knobs take any value a loader may set: the worst case runs
        # the loop's 64-round cap with stats on, the best none with stats off (the
        # object's own 12 rounds are one configuration among them)
        ProgCase("rodata_config",
                 xdp(NO_PKT, rx_queue=1,
                     world=World(rodata=(("max_rounds", 64), ("enable_stats", 1)))),
                 xdp(NO_PKT, rx_queue=0,
                     world=World(rodata=(("max_rounds", 0), ("enable_stats", 0))))),)),
    FileCase("rodata_knobs.bpf.c", "xdp", (
        ProgCase("knob_loop",
                 xdp(NO_PKT, rx_queue=1, world=World(rodata=(("nloops", 64),))),
                 xdp(NO_PKT, world=World(rodata=(("nloops", 0),)))),
        # worst: the filter on and passed (its compare runs), the full mode
        ProgCase("knob_filter",
                 xdp(NO_PKT, rx_queue=1, world=World(rodata=(
                     ("filter_on", 1), ("targ_queue", 1), ("run_mode", 2)))),
                 xdp(NO_PKT, rx_queue=1, world=World(rodata=(
                     ("filter_on", 1), ("targ_queue", 0))))),
        ProgCase("plain_const", xdp(NO_PKT), xdp(NO_PKT)),
        ProgCase("knob_section", xdp(NO_PKT, world=World(rodata=(("cfg_rounds", 16),))),
                 xdp(NO_PKT, world=World(rodata=(("cfg_rounds", 0),)))))),
    FileCase("switch_proto.bpf.c", "skb", (
        ProgCase("switch_proto", skb(eth(ETH_IP, ipv4(ICMP, bytes(8), ttl=1))), skb(NO_PKT)),)),
    FileCase("csum_loop.bpf.c", "skb", (
        ProgCase("csum_loop", skb(eth(ETH_IP, ipv4(TCP, tcp(80), ihl=15))),
                 skb(eth(0x0806, bytes(28))), max_ratio=1.01,
                 reason="with 30 words the loop leaves through its i < 30 test, never "
                        "through the (then also reachable) i >= words break"),)),
    FileCase("loop_calls_sub.bpf.c", "u64_args", (
        # x = 53 takes step()'s longer branch in all 10 rounds, x = 0 in none
        ProgCase("loop_calls", u64_args(0, 53), u64_args(0, 0)),)),
    FileCase("growing_reads.bpf.c", "regs", (
        # the same 8 calls whatever they read
        ProgCase("growing_reads", regs(di=1), regs(world=World(reads_fail=True))),)),
)


def case_named(file: str) -> FileCase:
    for case in CASES:
        if case.file == file:
            return case
    raise KeyError(file)


# -- hypothesis strategies -------------------------------------------------------
def worlds() -> st.SearchStrategy[World]:
    small = st.integers(0, 40)
    return st.builds(
        World,
        lookup_hits=st.lists(st.booleans(), min_size=1, max_size=4).map(tuple),
        array_lookup_null=st.booleans(),
        value_fill=st.sampled_from((0, 1, 0x3F, 0x7F, 0xFF)),
        update_results=st.lists(st.sampled_from((0, -2, -7, -17)), min_size=1,
                                max_size=3).map(tuple),
        reads_fail=st.booleans(),
        ringbuf_full=st.booleans(),
        scalars=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=4).map(tuple),
        callback_rounds=st.lists(small, min_size=1, max_size=3).map(tuple),
        sample=st.binary(min_size=0, max_size=16),
        hash_elems=small,
        tail_call_fails=st.booleans(),
    )


def rodata_values(obj: BpfObject) -> st.SearchStrategy[tuple[tuple[str, int], ...]]:
    """Values a loader may set for every loader-set variable of ``obj``: its type's
    ends, the object's value, small numbers and anything in range (a struct: any
    bytes)."""
    strategies = []
    for var in (v for m in obj.maps.values() for v in m.loader_vars):
        if not var.elem_size:  # a struct: any bytes
            whole = st.integers(0, (1 << (8 * var.size)) - 1)
            strategies.append(whole.map(lambda v, name=var.name: (name, v)))
            continue
        corners = sorted({var.lo, var.hi, *(x for x in (0, 1, 2, 3, 63, 64, 65, var.default)
                                            if x is not None and var.lo <= x <= var.hi)})
        value = st.one_of(st.sampled_from(corners), st.integers(var.lo, var.hi),
                          st.integers(max(var.lo, 0), min(var.hi, 100)))
        strategies.append(value.map(lambda v, name=var.name: (name, v)))
    return st.tuples(*strategies) if strategies else st.just(())


def _l4() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.builds(tcp, st.sampled_from((22, 80, 443)), st.sampled_from((0x02, 0x10, 0x12))),
        st.builds(udp, st.sampled_from((53, 123))),
        st.binary(max_size=24),
    )


def packets() -> st.SearchStrategy[bytes]:
    """Random bytes and structured eth/vlan/ip/ip6/ext/tcp/udp packets, truncated."""
    l4 = _l4()
    proto = st.sampled_from((TCP, UDP, ICMP, 41, 47, 132, 99))
    ip4 = st.builds(lambda p, pl, ihl, ttl: ipv4(p, pl, ihl, ttl), proto, l4,
                    st.integers(5, 15), st.integers(0, 3))
    exts = st.lists(st.sampled_from((0, 43, 44, 60)), max_size=8)
    ip6 = st.builds(lambda chain, last, pl: _ip6_chain(chain, last, pl), exts, proto, l4)
    l3 = st.one_of(ip4.map(lambda p: eth(ETH_IP, p)), ip6.map(lambda p: eth(ETH_IP6, p)),
                   st.builds(lambda v, p: eth(ETH_VLAN, vlan(v, ETH_IP, p)),
                             st.integers(0, 4095), ip4))
    full = st.one_of(l3, st.binary(max_size=96))
    return st.builds(lambda p, cut: p[:cut] if cut is not None else p, full,
                     st.one_of(st.none(), st.integers(0, 80)))


def _ip6_chain(chain: list[int], last: int, payload: bytes) -> bytes:
    body = payload
    nexts = [*chain[1:], last] if chain else []
    for hdr, nxt in zip(reversed(chain), reversed(nexts), strict=True):
        body = ext6(nxt, 0 if hdr == 44 else 1) + body
    return ipv6(chain[0] if chain else last, body)


_U64 = st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 300), st.sampled_from(
    (0, 1, 2, 27, 59, 257, -100 & (2**64 - 1), -1 & (2**64 - 1), 0xFFFFFF9C)))


def inputs(kind: str) -> st.SearchStrategy[Input]:
    """Inputs for programs of one context kind (FileCase.kind)."""
    w = worlds()
    u32 = st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 120))
    if kind == "xdp":
        return st.builds(lambda p, q, world: xdp(p, q, world), packets(), u32, w)
    if kind == "skb":
        return st.builds(lambda p, m, pr, h, v, lp, world: skb(p, m, pr, h, v, (lp, 0), world),
                         packets(), u32, st.integers(0, 10), u32,
                         st.one_of(st.none(), st.integers(0, 4095)), u32, w)
    if kind == "regs":
        return st.builds(lambda vals, world: regs(world, **dict(zip(("di", "si", "dx", "ax"),
                                                                   vals, strict=True))),
                         st.tuples(_U64, _U64, _U64, _U64), w)
    if kind == "perf_event":
        return st.builds(lambda cs, ip, world: perf_event(world, cs=cs, ip=ip),
                         st.integers(0, 3), _U64, w)
    if kind == "sys_enter":
        return st.builds(lambda nr, a, world: sys_enter(nr, a, world), st.integers(0, 400),
                         st.tuples(_U64, _U64, _U64), w)
    if kind == "u64_args":
        return st.builds(lambda a, world: u64_args(*a, world=world),
                         st.tuples(_U64, st.one_of(st.integers(0, 10_000), _U64), _U64), w)
    if kind == "iter":
        return st.builds(lambda t, n, world: iter_task(t, n, world), st.booleans(),
                         st.integers(0, 5), w)
    if kind == "raw":
        return st.builds(lambda op, n, vals, world: raw(struct.pack("<II8QQ", op, n, *vals, 0),
                                                        world),
                         st.integers(0, 2), st.integers(0, 12),
                         st.lists(_U64, min_size=8, max_size=8), w)
    raise KeyError(kind)

"""The calibration benchmarks: one body of code per measured operation (an
instruction class, a helper and its variants), and what a body may rely on from the
program built around it (bpflint/kernel/calibrate/timing.py): the stack layout,
the maps of :class:`Env`, r6 = ctx, r7 = 1, r8 = a 4 KiB map value, r9 = big.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from bpflint.errors import BpfLintError
from bpflint.isa.helper_ids import HELPER_NAMES
from bpflint.isa.opcodes import ATOMIC_CMPXCHG, ATOMIC_FETCH, ATOMIC_XCHG, AluOp, JmpOp
from bpflint.kernel import bytecode as bc
from bpflint.kernel import vmlinux
from bpflint.kernel.bytecode import R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10

TUNNEL_KEY_BYTES = 44  # sizeof(struct bpf_tunnel_key)
BIG_VALUE_BYTES = 4096  # the array value r8 points to: buffers for sized helpers
PERF_RUN_BYTES = 2048  # perf_event_output bytes per run: x 8000 runs fits the buffer


class Refused(BpfLintError):
    """The kernel refused one benchmark at ``stage`` ("map", "load" or "run") for
    ``reason`` (its one-line word for it): that entry is not measured here."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"{stage} refused: {reason}")
        self.stage = stage
        self.reason = reason


@dataclass(frozen=True)
class Env:
    """Maps shared by all benchmarks (fds), created once; ``missing`` holds the maps
    this kernel would not create, with its reason: their benchmarks are refused."""

    fds: dict[str, int]
    ringbuf_bytes: int
    missing: dict[str, str] = field(default_factory=dict)

    def fd(self, name: str) -> int:
        if name not in self.fds:
            raise Refused("map", f"map {name}: {self.missing.get(name, 'not created')}")
        return self.fds[name]


@dataclass(frozen=True)
class Bench:
    key: str  # table entry: "insn.alu_mov", "helper.map_lookup_elem.map.hash", ...
    variant: str
    prog_type: str  # "xdp", "sched_cls", "raw_tracepoint", "syscall"
    body: Callable[[Env], bytes]  # one unit
    units: int
    setup: tuple[str, ...] = ()  # insn keys inside one unit that are not measured
    calls_per_unit: int = 1  # the unit holds this many of the measured operation
    size: int | None = None  # size-like argument (bytes, iterations, elements)
    pre: Callable[[Env], bytes] | None = None  # runs once before the bodies
    post: Callable[[Env], bytes] | None = None  # runs once after them (a destroy)
    extra: Callable[[Env], bytes] | None = None  # code after the epilogue (subprograms)
    stream: bool = False  # independent copies: the class's issue cost (throughput)
    key_bytes: int | None = None  # map helpers: the key size of the map measured
    # the unit holds the measured call and its counterpart (grow and shrink, create
    # and destroy): the pair's time bounds the call from above, and only 0 from below
    pair: bool = False
    # runs in a network namespace of its own with forwarding on, a default route and
    # its gateway's neighbour (timing.routed_netns): fib_lookup's whole path
    routed: bool = False
    # walks a map far bigger than the last-level cache (the *_cold maps): the figure
    # sets the entry's max; hot_max_ns keeps the dearest of the other variants
    cold: bool = False


# -- the frame a body runs in (the prologue in timing.py sets it up) ---------------

STACK_ZERO_BYTES = 320  # fp-320 .. fp-1 zeroed: keys at fp-64, values at fp-128
KEY_OFF = -64
VALUE_OFF = -128
MISS_KEY_OFF = -192  # 64 bytes of 0xff: a key no map holds
ITER_OFF = -200  # an open-coded iterator (struct bpf_iter_num, 8 bytes)
# cold-cache hash benchmarks: a map of COLD_ENTRIES keys 0..N-1 (several times the
# last-level cache), visited in a scattered order that a counter in the big value
# carries from run to run
COLD_ENTRIES = 1 << 20
COLD_COUNTER_OFF = 256  # in the big value: no other benchmark uses these bytes
# the hash-map types walked cold (timing.py makes a *_cold map of each, both key sizes)
COLD_MAP_TYPES = ("hash", "lru_hash", "percpu_hash", "lru_percpu_hash")
GOLDEN_32 = -1640531535  # 0x9E3779B1 as a signed 32-bit immediate: a scattering step
PACKET = struct.pack("<QQQ", 1, 0xFFFF_FFFF_FFFF_FFF1, 3)  # r7 = 1, r9 = big, r5 = 3


def helper_id(name: str) -> int:
    return HELPER_NAMES.index(name)


def _rot(make: Callable[[int], bytes], regs: tuple[int, ...] = (R0, R1, R3, R4)) -> \
        Callable[[Env], bytes]:
    """Independent copies (different destinations): the throughput-bound figure."""
    return lambda env: b"".join(make(r) for r in regs)


def _const(code: bytes) -> Callable[[Env], bytes]:
    return lambda env: code


def insn_benches() -> list[Bench]:
    x = "xdp"
    b: list[Bench] = []

    def add(key: str, variant: str, body: Callable[[Env], bytes], units: int = 1000,
            setup: tuple[str, ...] = (), per: int = 1, ptype: str = x) -> None:
        b.append(Bench(f"insn.{key}", variant, ptype, body, units, setup, per,
                       stream=variant.endswith("indep")))

    add("alu_mov", "mov_reg_indep", _rot(lambda r: bc.mov64(r, R7)), per=4)
    add("alu_mov", "mov_imm_indep", _rot(lambda r: bc.mov64(r, imm=7)), per=4)
    add("alu_mov", "mov32_chain", _const(bc.alu32(AluOp.MOV, R0, R0)))
    add("alu_mov", "movsx_chain", _const(bc.alu64(AluOp.MOV, R0, R0, off=8)))
    # r0 = r7; r7 = r0: a chain of 64-bit register moves (the JIT drops r0 = r0)
    add("alu_mov_reg", "mov64_reg_chain", _const(bc.mov64(R0, R7) + bc.mov64(R7, R0)),
        per=2)
    add("alu_mov_reg", "mov64_reg_indep", _rot(lambda r: bc.mov64(r, R7)), per=4)
    add("alu_simple", "add_chain", _const(bc.alu64(AluOp.ADD, R7, R5)))
    live_regs = _const(b"".join(bc.mov64(r, R7) for r in (R0, R1, R3, R4)))
    b.append(Bench("insn.alu_simple", "add_indep", x,
                   _rot(lambda r: bc.alu64(AluOp.ADD, r, imm=3)), 1000, (), 4,
                   pre=live_regs, stream=True))
    add("alu_simple", "xor32_chain", _const(bc.alu32(AluOp.XOR, R7, R5)))
    add("alu_simple", "lsh_chain", _const(bc.alu64(AluOp.LSH, R7, imm=1)))
    add("alu_simple", "arsh_reg_chain", _const(bc.alu64(AluOp.ARSH, R7, R5)))
    add("alu_mul", "mul_chain", _const(bc.alu64(AluOp.MUL, R7, R5)))
    add("alu_mul", "mul32_chain", _const(bc.alu32(AluOp.MUL, R7, R5)))
    b.append(Bench("insn.alu_mul", "mul_indep", x,
                   _rot(lambda r: bc.alu64(AluOp.MUL, r, imm=3)), 1000, (), 4,
                   pre=live_regs, stream=True))
    for op, key in ((AluOp.DIV, "alu_div"), (AluOp.MOD, "alu_mod")):
        name = key[4:]
        # a big dividend each time: the slowest quotients
        add(key, f"{name}64_reg", _const(bc.mov64(R0, R9) + bc.alu64(op, R0, R5)), 200,
            ("alu_mov",))
        add(key, f"{name}32_reg", _const(bc.mov64(R0, R9) + bc.alu32(op, R0, R5)), 200,
            ("alu_mov",))
        add(key, f"s{name}64_reg", _const(bc.mov64(R0, R9) + bc.alu64(op, R0, R5, off=1)), 200,
            ("alu_mov",))
        add(key, f"{name}64_imm", _const(bc.mov64(R0, R9) + bc.alu64(op, R0, imm=3)), 200,
            ("alu_mov",))
    add("alu_neg", "neg_chain", _const(bc.neg64(R7)))
    add("alu_end", "bswap64_chain", _const(bc.bswap(R7, 64)))
    add("alu_end", "be16_chain", _const(bc.endian_be(R7, 16)))
    add("jmp_cond_not_taken", "jeq_imm", _const(bc.jmp_imm(JmpOp.JEQ, R7, 0x1234, 1)
                                                + bc.mov64(R0, imm=1)), setup=("alu_mov",))
    add("jmp_cond_not_taken", "jgt32_reg", _const(bc.raw(0x2E, R7, R9, 1)
                                                  + bc.mov64(R0, imm=1)), setup=("alu_mov",))
    add("jmp_cond_taken", "jne_imm", _const(bc.jmp_imm(JmpOp.JNE, R7, 0x1234, 1)
                                            + bc.mov64(R0, imm=1)))
    add("jmp_cond_taken", "jlt_reg", _const(bc.jmp_reg(JmpOp.JLT, R7, R9, 1)
                                            + bc.mov64(R0, imm=1)))
    # A small loop's back edge, taken 63 times of 64: what a steady iteration's
    # closing jump costs (with the counter's add and a share of the exit's miss);
    # and with a taken forward jump in the body too, per taken jump.
    add("jmp_loop_back", "loop64", _const(bc.mov64(R1, imm=0) + bc.alu64(AluOp.ADD, R1, imm=1)
                                          + bc.jmp_imm(JmpOp.JLT, R1, 64, -2)), 50,
        per=64)
    add("jmp_loop_back", "loop64_taken2", _const(
        bc.mov64(R1, imm=0) + bc.jmp_imm(JmpOp.JNE, R7, 0x1234, 1) + bc.mov64(R0, imm=1)
        + bc.alu64(AluOp.ADD, R1, imm=1) + bc.jmp_imm(JmpOp.JLT, R1, 64, -4)), 50, per=128)

    add("jmp_ja", "ja_over", _const(bc.jmp_imm(JmpOp.JEQ, R7, 0x1234, 1) + bc.ja(1)
                                    + bc.mov64(R0, imm=1)), setup=("jmp_cond_not_taken",))
    add("may_goto", "may_goto", _const(bc.raw(0xE5, 0, 0, 1, 0) + bc.mov64(R0, imm=1)),
        setup=("alu_mov",))
    add("ld_imm64", "ld_imm64_indep", _rot(lambda r: bc.ld_imm64(r, 0x1234_5678_9ABC_DEF0)),
        per=4)
    for size in (1, 2, 4):
        add("ld_abs", f"ld_abs{size}", _const(bc.ld_abs(size, 14)), 200, ptype="sched_cls")
    # loads and stores by memory kind
    chase = bc.stx(8, R10, -8, R10) + bc.mov64(R1, R10)
    # a spilled frame pointer reloaded through itself: a dependent chain of loads
    b.append(Bench("insn.load_stack", "chain", x, _const(bc.ldx(8, R1, R1, -8)), 400,
                   pre=_const(chase)))
    add("load_stack", "indep", _rot(lambda r: bc.ldx(8, r, R10, -16)), per=4)
    add("store_stack", "stx_indep", _const(b"".join(bc.stx(8, R10, -8 * (k + 2), R7)
                                                    for k in range(4))), per=4)
    add("store_stack", "st_byte", _const(b"".join(bc.st(1, R10, -k - 9, 1)
                                                  for k in range(4))), per=4)
    add("load_ctx", "xdp_data", _rot(lambda r: bc.ldx(4, r, R6, 0)), per=4)
    add("load_ctx", "xdp_ingress_ifindex", _rot(lambda r: bc.ldx(4, r, R6, 12)), per=4)
    add("load_ctx", "skb_len", _rot(lambda r: bc.ldx(4, r, R6, 0)), per=4, ptype="sched_cls")
    add("load_ctx", "skb_ifindex", _rot(lambda r: bc.ldx(4, r, R6, 40)), per=4,
        ptype="sched_cls")
    add("store_ctx", "skb_mark", _const(bc.stx(4, R6, 8, R7)), ptype="sched_cls")
    add("store_ctx", "skb_priority", _const(bc.stx(4, R6, 32, R7)), ptype="sched_cls")
    add("load_packet", "indep", _rot(lambda r: bc.ldx(4, r, R2, 24 + 4 * r)), per=4)
    add("load_packet", "byte", _rot(lambda r: bc.ldx(1, r, R2, 40 + r)), per=4)
    add("store_packet", "stx", _const(b"".join(bc.stx(4, R2, 64 + 4 * k, R7)
                                               for k in range(4))), per=4)
    add("load_map", "indep", _rot(lambda r: bc.ldx(8, r, R8, 8 * r)), per=4)
    add("store_map", "stx", _const(b"".join(bc.stx(8, R8, 64 + 8 * k, R7)
                                            for k in range(4))), per=4)
    # A value updated in memory, iteration after iteration (a counter in a global):
    # each load waits for the store before it to be forwarded. Its latency is the
    # load's on a chain through memory (the add and the store are subtracted).
    rmw = (("load_map", R8, 8, 0, "store_map"), ("load_stack", R10, 8, -24, "store_stack"),
           ("load_packet", R2, 1, 48, "store_packet"))
    for key, base, size, off, store_key in rmw:
        add(key, "store_forward_chain", _const(
            bc.ldx(size, R0, base, off) + bc.alu64(AluOp.ADD, R0, imm=1)
            + bc.stx(size, base, off, R0)), 200, ("alu_simple", store_key))
    add("atomic_add", "add64", _const(bc.atomic(8, R8, 128, R7, AluOp.ADD)), 200)
    add("atomic_add", "or32", _const(bc.atomic(4, R8, 136, R7, AluOp.OR)), 200)
    add("atomic_fetch", "fetch_add64",
        _const(bc.mov64(R1, R7) + bc.atomic(8, R8, 144, R1, AluOp.ADD | ATOMIC_FETCH)), 200,
        ("alu_mov",))
    add("atomic_xchg", "xchg64",
        _const(bc.mov64(R1, R7) + bc.atomic(8, R8, 152, R1, ATOMIC_XCHG)), 200, ("alu_mov",))
    add("atomic_cmpxchg", "cmpxchg64",
        _const(bc.mov64(R0, R7) + bc.atomic(8, R8, 160, R7, ATOMIC_CMPXCHG)), 200,
        ("alu_mov",))
    return b


def _map_args(env: Env, name: str, key_off: int = KEY_OFF) -> bytes:
    return (bc.ld_map_fd(R1, env.fd(name)) + bc.mov64(R2, R10)
            + bc.alu64(AluOp.ADD, R2, imm=key_off))


_MAP_SETUP = ("ld_imm64", "alu_mov", "alu_simple")
_INLINED = ("jiffies64", "get_smp_processor_id")


def helper_benches() -> list[Bench]:
    x = "xdp"
    b: list[Bench] = []

    def add(key: str, variant: str, body: Callable[[Env], bytes], units: int = 32,
            setup: tuple[str, ...] = (), per: int = 1, ptype: str = x,
            size: int | None = None, extra: Callable[[Env], bytes] | None = None,
            key_bytes: int | None = None, cold: bool = False) -> None:
        b.append(Bench(f"helper.{key}", variant, ptype, body, units, setup, per, size,
                       extra=extra, key_bytes=key_bytes, cold=cold))

    def call(name: str) -> bytes:
        return bc.call_helper(helper_id(name))

    lookup, update, delete = call("map_lookup_elem"), call("map_update_elem"), \
        call("map_delete_elem")

    # Named builders bind the map name (and key) when called, not when the loop ends.
    def lookup_body(map_name: str, key_off: int = KEY_OFF) -> Callable[[Env], bytes]:
        def body(env: Env) -> bytes:
            return _map_args(env, map_name, key_off) + lookup
        return body

    def update_body(map_name: str) -> Callable[[Env], bytes]:
        def body(env: Env) -> bytes:
            return (_map_args(env, map_name) + bc.mov64(R3, R10)
                    + bc.alu64(AluOp.ADD, R3, imm=VALUE_OFF) + bc.mov64(R4, imm=0) + update)
        return body

    def delete_miss_body(map_name: str) -> Callable[[Env], bytes]:
        def body(env: Env) -> bytes:
            return _map_args(env, map_name, MISS_KEY_OFF) + delete
        return body

    def delete_hit_body(map_name: str) -> Callable[[Env], bytes]:
        put_back = update_body(map_name)

        def body(env: Env) -> bytes:
            return put_back(env) + _map_args(env, map_name) + delete
        return body

    def queue_body(map_name: str, *ops: tuple[str, int | None]) -> Callable[[Env], bytes]:
        """Queue/stack helpers on the value at VALUE_OFF; an int is the flags (r3)."""
        def body(env: Env) -> bytes:
            code = b""
            for helper, flags in ops:
                code += (bc.ld_map_fd(R1, env.fd(map_name)) + bc.mov64(R2, R10)
                         + bc.alu64(AluOp.ADD, R2, imm=VALUE_OFF))
                if flags is not None:
                    code += bc.mov64(R3, imm=flags)
                code += call(helper)
            return code
        return body

    for mtype in ("array", "percpu_array"):
        # inlined by the verifier: a few instructions, so many copies
        add(f"map_lookup_elem.map.{mtype}", f"lookup_{mtype}", lookup_body(mtype), 256,
            setup=_MAP_SETUP)
        add(f"map_update_elem.map.{mtype}", f"update_{mtype}", update_body(mtype),
            setup=_MAP_SETUP + ("alu_mov", "alu_simple", "alu_mov"))
    for mtype in ("hash", "percpu_hash", "lru_hash", "lru_percpu_hash"):
        for ks in (4, 64):
            name = f"{mtype}{ks}"
            for hit, off in (("hit", KEY_OFF), ("miss", MISS_KEY_OFF)):
                add(f"map_lookup_elem.map.{mtype}", f"lookup_{name}_{hit}",
                    lookup_body(name, off), setup=_MAP_SETUP, key_bytes=ks)
            add(f"map_update_elem.map.{mtype}", f"update_{name}", update_body(name),
                setup=_MAP_SETUP + ("alu_mov", "alu_simple", "alu_mov"), key_bytes=ks)
            add(f"map_delete_elem.map.{mtype}", f"delete_{name}_miss",
                delete_miss_body(name), setup=_MAP_SETUP, key_bytes=ks)
            # delete of a present key: an update puts it back each time; the pair's
            # cost bounds the delete from above
            add(f"map_delete_elem.map.{mtype}", f"delete_{name}_hit",
                delete_hit_body(name), setup=_MAP_SETUP, key_bytes=ks)
    def cold_key(miss: bool) -> bytes:
        """The next key of the scattered walk, at KEY_OFF: present, or (miss) not."""
        code = (bc.ldx(8, R1, R8, COLD_COUNTER_OFF) + bc.alu64(AluOp.ADD, R1, imm=1)
                + bc.stx(8, R8, COLD_COUNTER_OFF, R1) + bc.alu64(AluOp.MUL, R1, imm=GOLDEN_32)
                + bc.alu64(AluOp.AND, R1, imm=COLD_ENTRIES - 1))
        if miss:
            code += bc.alu64(AluOp.OR, R1, imm=COLD_ENTRIES)
        return code + bc.stx(4, R10, KEY_OFF, R1)

    cold_setup = ("load_map", "alu_simple", "store_map", "alu_mul", "alu_simple",
                  "store_stack")
    def cold_lookup(map_name: str, miss: bool) -> Callable[[Env], bytes]:
        return lambda env: cold_key(miss) + lookup_body(map_name)(env)

    def cold_update(map_name: str) -> Callable[[Env], bytes]:
        return lambda env: cold_key(False) + update_body(map_name)(env)

    def cold_delete(map_name: str, miss: bool) -> Callable[[Env], bytes]:
        if miss:
            return lambda env: cold_key(True) + _map_args(env, map_name) + delete
        # a present key, then put back (the map stays full for the walk's next round):
        # the pair's cost bounds the delete from above
        return lambda env: (cold_key(False) + _map_args(env, map_name) + delete
                            + update_body(map_name)(env))

    update_setup = _MAP_SETUP + ("alu_mov", "alu_simple", "alu_mov")
    # (the key's other bytes stay 0 from the prologue: 64-byte keys too)
    for mtype in COLD_MAP_TYPES:
        for ks in (4, 64):
            name = f"{mtype}{ks}_cold"
            for hit in ("hit", "miss"):
                miss = hit == "miss"
                key_setup = cold_setup + (("alu_simple",) if miss else ())
                add(f"map_lookup_elem.map.{mtype}", f"lookup_{mtype}{ks}_cold_{hit}",
                    cold_lookup(name, miss), setup=key_setup + _MAP_SETUP, key_bytes=ks,
                    cold=True)
                add(f"map_delete_elem.map.{mtype}", f"delete_{mtype}{ks}_cold_{hit}",
                    cold_delete(name, miss),
                    setup=key_setup + _MAP_SETUP + (() if miss else update_setup),
                    key_bytes=ks, cold=True)
            add(f"map_update_elem.map.{mtype}", f"update_{mtype}{ks}_cold",
                cold_update(name), setup=cold_setup + update_setup, key_bytes=ks, cold=True)
    add("map_lookup_elem.map.lpm_trie", "lookup_lpm",
        lambda env: bc.st(4, R10, KEY_OFF, 32) + _map_args(env, "lpm_trie") + lookup,
        setup=_MAP_SETUP + ("store_stack",))
    for mtype in ("queue", "stack"):
        add(f"map_peek_elem.map.{mtype}", f"peek_{mtype}",
            queue_body(mtype, ("map_peek_elem", None)), setup=_MAP_SETUP)
        # the map stays full: pop one, push it back
        add(f"map_pop_elem.map.{mtype}", f"pop_push_{mtype}",
            queue_body(mtype, ("map_pop_elem", None), ("map_push_elem", 0)),
            setup=_MAP_SETUP)
        add(f"map_push_elem.map.{mtype}", f"push_exist_{mtype}",
            queue_body(mtype, ("map_push_elem", 2)), setup=_MAP_SETUP + ("alu_mov",))
    def ringbuf_output_body(size: int) -> Callable[[Env], bytes]:
        def body(env: Env) -> bytes:
            return (bc.ld_map_fd(R1, env.fd("ringbuf")) + bc.mov64(R2, R8)
                    + bc.mov64(R3, imm=size) + bc.mov64(R4, imm=1) + call("ringbuf_output"))
        return body

    def perf_output_body(size: int) -> Callable[[Env], bytes]:
        def body(env: Env) -> bytes:  # flags: BPF_F_CURRENT_CPU, no packet bytes
            return (bc.mov64(R1, R6) + bc.ld_map_fd(R2, env.fd("perf_array"))
                    + bc.alu32(AluOp.MOV, R3, imm=-1) + bc.mov64(R4, R8)
                    + bc.mov64(R5, imm=size) + call("perf_event_output"))
        return body

    for name in ("ktime_get_ns", "ktime_get_boot_ns", "ktime_get_coarse_ns",
                 "ktime_get_tai_ns", "jiffies64", "get_prandom_u32", "get_smp_processor_id",
                 "get_numa_node_id"):
        add(name, name, _const(call(name)), 256 if name in _INLINED else 32)
    add("xdp_get_buff_len", "xdp_get_buff_len", _const(bc.mov64(R1, R6) + call(
        "xdp_get_buff_len")), setup=("alu_mov",))
    add("redirect", "redirect_xdp", _const(bc.mov64(R1, imm=1) + bc.mov64(R2, imm=0)
                                           + call("redirect")), setup=("alu_mov",) * 2)
    add("redirect_map", "redirect_map_empty",
        lambda env: bc.ld_map_fd(R1, env.fd("devmap")) + bc.mov64(R2, imm=0)
        + bc.mov64(R3, imm=0) + call("redirect_map"), setup=("ld_imm64", "alu_mov", "alu_mov"))
    for name, a, bb in (("xdp_adjust_head", 8, -8), ("xdp_adjust_tail", -8, 8),
                        ("xdp_adjust_meta", -8, 8)):
        add(name, f"{name}_pair", _const(bc.mov64(R1, R6) + bc.mov64(R2, imm=a) + call(name)
                                         + bc.mov64(R1, R6) + bc.mov64(R2, imm=bb)
                                         + call(name)), setup=("alu_mov",) * 2, per=2)
    add("check_mtu", "check_mtu", _const(
        bc.st(4, R10, VALUE_OFF, 0) + bc.mov64(R1, R6) + bc.mov64(R2, imm=0) + bc.mov64(R3, R10)
        + bc.alu64(AluOp.ADD, R3, imm=VALUE_OFF) + bc.mov64(R4, imm=0) + bc.mov64(R5, imm=0)
        + call("check_mtu")), setup=("store_stack",) + ("alu_mov",) * 5)
    add("tail_call", "tail_call_empty_slot", lambda env: bc.mov64(R1, R6)
        + bc.ld_map_fd(R2, env.fd("prog_array")) + bc.mov64(R3, imm=1) + call("tail_call"),
        256, setup=("alu_mov", "ld_imm64", "alu_mov"))
    add("tail_call", "tail_call_taken", lambda env: bc.mov64(R1, R6)
        + bc.ld_map_fd(R2, env.fd("prog_array")) + bc.mov64(R3, imm=0) + call("tail_call"),
        units=1, setup=("alu_mov", "ld_imm64", "alu_mov"))
    for size in (4, 64, 512):
        add("csum_diff", f"csum_diff_{size}", _const(
            bc.mov64(R1, imm=0) + bc.mov64(R2, imm=0) + bc.mov64(R3, R8)
            + bc.mov64(R4, imm=size) + bc.mov64(R5, imm=0) + call("csum_diff")),
            setup=("alu_mov",) * 5, size=size)
    for size in (8, 256, 2048):
        for name in ("probe_read_kernel", "probe_read_kernel_str"):
            add(name, f"{name}_{size}", _const(
                bc.mov64(R1, R8) + bc.mov64(R2, imm=size) + bc.mov64(R3, R8)
                + bc.alu64(AluOp.ADD, R3, imm=BIG_VALUE_BYTES - size)
                + call(name)), setup=("alu_mov",) * 3 + ("alu_simple",), size=size)
        add("ringbuf_output", f"ringbuf_output_{size}", ringbuf_output_body(size), units=8,
            setup=("ld_imm64",) + ("alu_mov",) * 3, size=size)
    # a sample's records fit the perf buffer (timing.PERF_BUFFER_PAGES): at most
    # 2 KiB of them a run
    for size in (8, 64, 256, 512, 1024, 2048):
        add("perf_event_output", f"perf_event_output_{size}", perf_output_body(size),
            units=min(4, PERF_RUN_BYTES // size),
            setup=("alu_mov", "ld_imm64") + ("alu_mov",) * 3, size=size)
    add("ringbuf_reserve", "reserve_discard", lambda env:
        bc.ld_map_fd(R1, env.fd("ringbuf")) + bc.mov64(R2, imm=64) + bc.mov64(R3, imm=0)
        + call("ringbuf_reserve") + bc.jmp_imm(JmpOp.JEQ, R0, 0, 3) + bc.mov64(R1, R0)
        + bc.mov64(R2, imm=1) + call("ringbuf_discard"), units=8, per=2,
        setup=("ld_imm64", "alu_mov", "alu_mov", "jmp_cond_not_taken", "alu_mov", "alu_mov"))
    add("ringbuf_submit", "reserve_submit", lambda env:
        bc.ld_map_fd(R1, env.fd("ringbuf")) + bc.mov64(R2, imm=64) + bc.mov64(R3, imm=0)
        + call("ringbuf_reserve") + bc.jmp_imm(JmpOp.JEQ, R0, 0, 3) + bc.mov64(R1, R0)
        + bc.mov64(R2, imm=1) + call("ringbuf_submit"), units=8, per=2,
        setup=("ld_imm64", "alu_mov", "alu_mov", "jmp_cond_not_taken", "alu_mov", "alu_mov"))
    add("ringbuf_query", "ringbuf_query", lambda env: bc.ld_map_fd(R1, env.fd("ringbuf"))
        + bc.mov64(R2, imm=0) + call("ringbuf_query"), setup=("ld_imm64", "alu_mov"))
    # Callback helpers: per unit = one iteration (bpf_loop) or element
    # (for_each_map_elem) with a "r0 = 0; exit" callback, whose own two instructions
    # the engine prices separately (they stay inside this figure: < 0.4 ns of slack).
    empty_cb = _const(bc.mov64(R0, imm=0) + bc.exit_())
    for iterations in (0, 1, 16, 64):
        add("loop", f"bpf_loop_{iterations}", _const(
            bc.mov64(R1, imm=iterations) + bc.ld_func(R2, 0) + bc.mov64(R3, imm=0)
            + bc.mov64(R4, imm=0) + call("loop")), units=8,
            setup=("alu_mov", "ld_imm64", "alu_mov", "alu_mov"), size=iterations,
            extra=empty_cb)

    def for_each_body(entries: int) -> Callable[[Env], bytes]:
        def body(env: Env) -> bytes:
            return (bc.ld_map_fd(R1, env.fd(f"each{entries}")) + bc.ld_func(R2, 0)
                    + bc.mov64(R3, imm=0) + bc.mov64(R4, imm=0) + call("for_each_map_elem"))
        return body

    for entries in (1, 16, 64):
        add("for_each_map_elem", f"for_each_array_{entries}", for_each_body(entries), units=8,
            setup=("ld_imm64", "ld_imm64", "alu_mov", "alu_mov"), size=entries,
            extra=empty_cb)
    # bpf-to-bpf call of "r0 = 0; exit" placed after the epilogue
    b.append(Bench("insn.call", "call_sub", x, _const(bc.call_local(0)), 64, ("alu_mov",),
                   extra=_const(bc.mov64(R0, imm=0) + bc.exit_())))
    # tc
    t = "sched_cls"
    skb = bc.mov64(R1, R6)
    for size in (4, 64, 128):
        add("skb_load_bytes", f"skb_load_bytes_{size}", _const(
            skb + bc.mov64(R2, imm=0) + bc.mov64(R3, R8) + bc.mov64(R4, imm=size)
            + call("skb_load_bytes")), ptype=t, setup=("alu_mov",) * 4, size=size)
        add("skb_load_bytes_relative", f"skb_load_bytes_relative_{size}", _const(
            skb + bc.mov64(R2, imm=0) + bc.mov64(R3, R8) + bc.mov64(R4, imm=size)
            + bc.mov64(R5, imm=1) + call("skb_load_bytes_relative")), ptype=t,
            setup=("alu_mov",) * 5, size=size)
        add("skb_store_bytes", f"skb_store_bytes_{size}", _const(
            skb + bc.mov64(R2, imm=64) + bc.mov64(R3, R8) + bc.mov64(R4, imm=size)
            + bc.mov64(R5, imm=0) + call("skb_store_bytes")), ptype=t,
            setup=("alu_mov",) * 5, size=size)
    simple_tc = {
        "get_hash_recalc": b"", "get_cgroup_classid": b"", "get_route_realm": b"",
        "get_socket_cookie": b"", "set_hash": bc.mov64(R2, imm=0x1234),
        "csum_update": bc.mov64(R2, imm=0x1234), "csum_level": bc.mov64(R2, imm=0),
        "skb_ecn_set_ce": b"", "skb_pull_data": bc.mov64(R2, imm=64),
        "skb_change_type": bc.mov64(R2, imm=0),  # PACKET_HOST
        "redirect": None,
    }
    for name, args in simple_tc.items():
        if args is None:
            continue
        add(name, f"{name}_tc", _const(skb + args + call(name)), ptype=t,
            setup=("alu_mov",) * (1 + bc.slots(args)))
    add("l3_csum_replace", "l3_csum_replace", _const(
        skb + bc.mov64(R2, imm=24) + bc.mov64(R3, imm=0) + bc.mov64(R4, imm=0x1234)
        + bc.mov64(R5, imm=2) + call("l3_csum_replace")), ptype=t, setup=("alu_mov",) * 5)
    add("l4_csum_replace", "l4_csum_replace", _const(
        skb + bc.mov64(R2, imm=50) + bc.mov64(R3, imm=0) + bc.mov64(R4, imm=0x1234)
        + bc.mov64(R5, imm=2) + call("l4_csum_replace")), ptype=t, setup=("alu_mov",) * 5)
    # the tunnel key on the zeroed stack: a 44-byte struct bpf_tunnel_key to 0.0.0.0
    add("skb_set_tunnel_key", "set_tunnel_key", _const(
        skb + bc.mov64(R2, R10) + bc.alu64(AluOp.ADD, R2, imm=VALUE_OFF)
        + bc.mov64(R3, imm=TUNNEL_KEY_BYTES) + bc.mov64(R4, imm=0)
        + call("skb_set_tunnel_key")), ptype=t,
        setup=("alu_mov", "alu_mov", "alu_simple", "alu_mov", "alu_mov"))
    add("skb_vlan_push", "vlan_push_pop", _const(
        skb + bc.mov64(R2, imm=0x0081) + bc.mov64(R3, imm=1) + call("skb_vlan_push")
        + skb + call("skb_vlan_pop")), ptype=t, setup=("alu_mov",) * 2, per=2)
    add("skb_vlan_pop", "vlan_push_pop", _const(
        skb + bc.mov64(R2, imm=0x0081) + bc.mov64(R3, imm=1) + call("skb_vlan_push")
        + skb + call("skb_vlan_pop")), ptype=t, setup=("alu_mov",) * 2, per=2)
    # tracing helpers, timed inside raw_tp and syscall programs
    for ptype in ("raw_tracepoint", "syscall"):
        for name in ("get_current_pid_tgid", "get_current_uid_gid", "get_current_task",
                     "get_current_task_btf", "get_current_cgroup_id"):
            add(name, f"{name}_{ptype[:3]}", _const(call(name)), ptype=ptype)
        add("get_current_comm", f"get_current_comm_{ptype[:3]}", _const(
            bc.mov64(R1, R8) + bc.mov64(R2, imm=16) + call("get_current_comm")),
            ptype=ptype, setup=("alu_mov",) * 2)
    add("get_current_ancestor_cgroup_id", "ancestor_cgroup", _const(
        bc.mov64(R1, imm=0) + call("get_current_ancestor_cgroup_id")), ptype="raw_tracepoint",
        setup=("alu_mov",))
    add("get_stack", "get_stack_raw_tp", _const(
        bc.mov64(R1, R6) + bc.mov64(R2, R8) + bc.mov64(R3, imm=512) + bc.mov64(R4, imm=0)
        + call("get_stack")), units=8, ptype="raw_tracepoint", setup=("alu_mov",) * 4)
    add("get_stackid", "get_stackid_raw_tp", lambda env: bc.mov64(R1, R6)
        + bc.ld_map_fd(R2, env.fd("stack_trace")) + bc.mov64(R3, imm=0)
        + call("get_stackid"), units=8, ptype="raw_tracepoint",
        setup=("alu_mov", "ld_imm64", "alu_mov"))
    add("sys_close", "sys_close_badfd", _const(bc.mov64(R1, imm=-1) + call("sys_close")),
        ptype="syscall", setup=("alu_mov",))
    b += _net_benches(call)
    b += _printk_benches(call)
    b += _map_in_map_benches(lookup_body)
    return b


AF_INET, AF_INET6 = 2, 10
FIB_LOOKUP_DIRECT, FIB_LOOKUP_OUTPUT = 1, 2
FIB_PARAMS_BYTES = 64  # sizeof(struct bpf_fib_lookup)
FIB_V4_DST = bytes([8, 8, 8, 8])  # off-link: the default route, then its gateway's neighbour
FIB_V6_DST = bytes.fromhex("20014860486000000000000000008888")


def default_route_ifindex() -> int:
    """The interface of the IPv4 default route (/proc/net/route), else lo (1): a
    fib_lookup through it walks the route and its gateway's neighbour entry."""
    import socket
    try:
        with open("/proc/net/route", encoding="ascii") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if len(fields) > 2 and fields[1] == "00000000":
                    return socket.if_nametoindex(fields[0])
    except (OSError, ValueError):
        pass
    return 1


def _stores(off: int, data: bytes) -> bytes:
    """st instructions writing ``data`` (a multiple of 4 bytes) at fp + off."""
    return b"".join(bc.st(4, R10, off + k, int.from_bytes(data[k:k + 4], "little", signed=True))
                    for k in range(0, len(data), 4))


def _net_benches(call: Callable[[str], bytes]) -> list[Bench]:
    """fib_lookup (xdp), and tc helpers that resize or redirect the packet."""
    b: list[Bench] = []
    fib = VALUE_OFF  # struct bpf_fib_lookup on the zeroed stack

    def fib_body(family: int, dst: bytes, flags: int) -> Callable[[Env], bytes]:
        def body(env: Env) -> bytes:
            # the helper writes its results (ifindex, the gateway as the destination,
            # MACs) into the parameters: every call gets them afresh
            params = (bc.st(4, R10, fib, family) + bc.st(4, R10, fib + 4, 0)
                      + bc.st(4, R10, fib + 8, default_route_ifindex())
                      + bc.st(4, R10, fib + 12, 0) + _stores(fib + 32, dst))
            return (params + bc.mov64(R1, R6) + bc.mov64(R2, R10)
                    + bc.alu64(AluOp.ADD, R2, imm=fib) + bc.mov64(R3, imm=FIB_PARAMS_BYTES)
                    + bc.mov64(R4, imm=flags) + call("fib_lookup"))
        return body

    for family, dst in ((AF_INET, FIB_V4_DST), (AF_INET6, FIB_V6_DST)):
        for flags in (0, FIB_LOOKUP_OUTPUT, FIB_LOOKUP_DIRECT | FIB_LOOKUP_OUTPUT):
            b.append(Bench("helper.fib_lookup", f"fib_lookup_v{4 if family == AF_INET else 6}"
                           f"_flags{flags}", "xdp", fib_body(family, dst, flags), 32,
                           ("store_stack",) * (4 + len(dst) // 4) + ("alu_mov",) * 3
                           + ("alu_simple", "alu_mov", "alu_mov"), routed=True))
    ifindex = 1  # lo: redirect_neigh only records it; the redirect runs after the program
    t = "sched_cls"
    skb = bc.mov64(R1, R6)
    b.append(Bench("helper.redirect_neigh", "redirect_neigh_noparams", t, _const(
        bc.mov64(R1, imm=ifindex) + bc.mov64(R2, imm=0) + bc.mov64(R3, imm=0)
        + bc.mov64(R4, imm=0) + call("redirect_neigh")), 32, ("alu_mov",) * 4))
    # struct bpf_redir_neigh { u32 nh_family; union { ipv4_nh; ipv6_nh[4] } }
    b.append(Bench("helper.redirect_neigh", "redirect_neigh_v4_nexthop", t, _const(
        bc.st(4, R10, VALUE_OFF, AF_INET) + bc.st(4, R10, VALUE_OFF + 4, 0x0100007F)
        + bc.mov64(R1, imm=ifindex) + bc.mov64(R2, R10)
        + bc.alu64(AluOp.ADD, R2, imm=VALUE_OFF) + bc.mov64(R3, imm=20)
        + bc.mov64(R4, imm=0) + call("redirect_neigh")), 32,
        ("store_stack",) * 2 + ("alu_mov",) * 2 + ("alu_simple", "alu_mov", "alu_mov")))
    # each call grows the headroom: the packet's first copies find room, later ones
    # reallocate it; 256 bytes a call reallocates every time
    for grow, units in ((14, 32), (256, 8)):
        b.append(Bench("helper.skb_change_head", f"skb_change_head_{grow}", t, _const(
            skb + bc.mov64(R2, imm=grow) + bc.mov64(R3, imm=0) + call("skb_change_head")),
            units, ("alu_mov",) * 3))
    # grow and shrink back (the test packet is 256 bytes): the pair bounds either
    for grow in (64, 1024):
        b.append(Bench("helper.skb_change_tail", f"skb_change_tail_{grow}_and_back", t, _const(
            skb + bc.mov64(R2, imm=256 + grow) + bc.mov64(R3, imm=0) + call("skb_change_tail")
            + skb + bc.mov64(R2, imm=256) + bc.mov64(R3, imm=0) + call("skb_change_tail")),
            32, ("alu_mov",) * 6, pair=True))
    # BPF_ADJ_ROOM_NET (0) and _MAC (1) on the IPv4/TCP test packet: in by 8 and out
    for mode in (0, 1):
        b.append(Bench("helper.skb_adjust_room", f"skb_adjust_room_mode{mode}_pair", t, _const(
            skb + bc.mov64(R2, imm=8) + bc.mov64(R3, imm=mode) + bc.mov64(R4, imm=0)
            + call("skb_adjust_room") + skb + bc.mov64(R2, imm=-8) + bc.mov64(R3, imm=mode)
            + bc.mov64(R4, imm=0) + call("skb_adjust_room")), 32, ("alu_mov",) * 8,
            pair=True))
    return b


def _printk_benches(call: Callable[[str], bytes]) -> list[Bench]:
    """trace_printk by its format's size: the format is the tail of the big value
    ("AAA...A" and its NUL), formatted and written to the trace buffer."""
    b = []
    for size in (8, 64, 512, 2048):
        b.append(Bench("helper.trace_printk", f"trace_printk_{size}", "xdp", _const(
            bc.mov64(R1, R8) + bc.alu64(AluOp.ADD, R1, imm=BIG_VALUE_BYTES - size)
            + bc.mov64(R2, imm=size) + call("trace_printk")), 16,
            ("alu_mov", "alu_simple", "alu_mov"), size=size))
    # three integer conversions ("%d %d %d\n" on the stack)
    fmt = b"%d %d %d\n\0\0\0"
    b.append(Bench("helper.trace_printk", "trace_printk_3_args", "xdp", _const(
        _stores(VALUE_OFF, fmt) + bc.mov64(R1, R10) + bc.alu64(AluOp.ADD, R1, imm=VALUE_OFF)
        + bc.mov64(R2, imm=10) + bc.mov64(R3, R7) + bc.mov64(R4, R9) + bc.mov64(R5, R7)
        + call("trace_printk")), 16,
        ("store_stack",) * 3 + ("alu_mov", "alu_simple") + ("alu_mov",) * 4, size=10))
    return b


def _map_in_map_benches(lookup_body: Callable[[str, int], Callable[[Env], bytes]]
                        ) -> list[Bench]:
    """map_lookup_elem on the outer map of a map-in-map (the verifier inlines both)."""
    b = []
    for mtype, keys in (("hash_of_maps", (4, 64)), ("array_of_maps", (4,))):
        for ks in keys:
            name = f"{mtype}{ks}"
            hits = (("hit", KEY_OFF), ("miss", MISS_KEY_OFF)) if mtype == "hash_of_maps" \
                else (("hit", KEY_OFF),)
            for hit, off in hits:
                b.append(Bench(f"helper.map_lookup_elem.map.{mtype}", f"lookup_in_{name}_{hit}",
                               "xdp", lookup_body(name, off), 32, _MAP_SETUP,
                               key_bytes=ks if mtype == "hash_of_maps" else None))
    return b


def kfunc_call(name: str) -> bytes:
    """A call of the kfunc ``name``; refused where the kernel's BTF has no such one."""
    btf_id = vmlinux.kfunc_id(name)
    if btf_id is None:
        raise Refused("load", f"no function {name} in {vmlinux.VMLINUX_BTF}")
    return bc.call_kfunc(btf_id)


def _iter_args(start: int, end: int) -> bytes:
    return (bc.mov64(R1, R10) + bc.alu64(AluOp.ADD, R1, imm=ITER_OFF) + bc.mov64(R2, imm=start)
            + bc.mov64(R3, imm=end))


def _iter_ptr() -> bytes:
    return bc.mov64(R1, R10) + bc.alu64(AluOp.ADD, R1, imm=ITER_OFF)


ITER_ARGS_SETUP = ("alu_mov", "alu_simple", "alu_mov", "alu_mov")


def kfunc_benches() -> list[Bench]:
    """Open-coded iterators (bpf_for, bpf_repeat): bpf_iter_num_new/next/destroy."""
    b: list[Bench] = []

    def create(end: int) -> Callable[[Env], bytes]:
        return lambda env: _iter_args(0, end) + kfunc_call("bpf_iter_num_new")

    def call_on_iter(name: str) -> Callable[[Env], bytes]:
        return lambda env: _iter_ptr() + kfunc_call(name)

    # next on a live iterator (the range outlasts every copy) and on a drained one
    for variant, end in (("next_live", 1 << 20), ("next_drained", 0)):
        b.append(Bench("kfunc.bpf_iter_num_next", variant, "xdp",
                       call_on_iter("bpf_iter_num_next"), 32, ("alu_mov", "alu_simple"),
                       pre=create(end), post=call_on_iter("bpf_iter_num_destroy")))
    # new and destroy come in pairs (the verifier rejects an iterator left alive):
    # each is priced at most what the pair costs
    def pair(env: Env) -> bytes:
        return create(1000)(env) + call_on_iter("bpf_iter_num_destroy")(env)

    for key in ("bpf_iter_num_new", "bpf_iter_num_destroy"):
        b.append(Bench(f"kfunc.{key}", "new_destroy", "xdp", pair, 32,
                       ITER_ARGS_SETUP + ("alu_mov", "alu_simple"), pair=True))
    return b

"""Measure a cost table on the running kernel with BPF_PROG_TEST_RUN.

Every figure comes from a pair of programs that differ only in a body repeated
``units`` times: P0 (prologue + epilogue) and PN (prologue + N bodies +
epilogue). The cost of one body is (t(PN) - t(P0)) / N, which removes the
test-run overhead, the prologue and the empty program's own cost.

Two clocks:
  duration  xdp and tc programs: the kernel's average over ``repeat`` runs
  inline    raw_tp and syscall programs, where test_run takes no ``repeat`` and
            reports no duration: bpf_ktime_get_ns() around the body, the
            difference returned as the program's return value

The machine may be shared, so figures are minimum-based: ``min`` is the
difference of the minima over samples (stable within a few percent) divided by
MAX_MARGIN (a whole run on a busy machine reads high), ``median``
the median of the paired differences (P0 and PN run back to back in each sample),
and ``max`` is the larger of the median and
MAX_MARGIN times the minimum, taken over the costliest variant (dependent
chains, cache-hot misses, 64-byte keys, ...). Callback helpers (bpf_loop,
for_each_map_elem) are priced per iteration / element: the size the engine passes
is the iteration count, and the callback's own instructions are priced apart.
Setup instructions inside a body (argument moves, map loads) are subtracted
using the instruction figures, with their max for a helper's min and their min
for its max.

Kernels differ: a benchmark this one refuses (a map it will not create, a program
it will not load, a test run it will not do) leaves its entry to the base table,
with the kernel's reason in [provenance.not_measured] (see calibrate()).
"""

from __future__ import annotations

import fnmatch
import functools
import mmap
import os
import platform
import statistics
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

from bpflint.cost.model import (
    FORMAT_VERSION,
    INSN_KEYS,
    MEM_KINDS,
    OPTIONAL_INSN_KEYS,
    Cost,
    CostTable,
    HelperCost,
    load_cost_table,
)
from bpflint.errors import BpfLintError
from bpflint.isa.helper_ids import HELPER_NAMES
from bpflint.isa.opcodes import ATOMIC_CMPXCHG, ATOMIC_FETCH, ATOMIC_XCHG, AluOp, JmpOp
from bpflint.kernel import btf_blob
from bpflint.kernel import bytecode as bc
from bpflint.kernel import syscall as sc
from bpflint.kernel.bytecode import R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10

PERF_BUFFER_PAGES = 8192  # 32 MiB: a full calibration sample of perf_event_output_512
TUNNEL_KEY_BYTES = 44  # sizeof(struct bpf_tunnel_key)
MAX_STACK_DEPTH = 127  # the kernel's PERF_MAX_STACK_DEPTH: a stack_trace map value
MAX_MARGIN = 1.3  # max = max(median, MAX_MARGIN * min) of the costliest variant
DEFAULT_HELPER_MAX_NS = 5000.0
SIZE_CAP_BYTES = 4096
BIG_VALUE_BYTES = 4096  # the array value r8 points to: buffers for sized helpers

METHOD = (
    "BPF_PROG_TEST_RUN on this kernel; each cost is (t(PN) - t(P0)) / N for programs that "
    "differ by N copies of the measured body (xdp/tc: kernel duration averaged over "
    "'repeat' runs; raw_tp/syscall: bpf_ktime_get_ns around the body). min = difference "
    "of minima over samples / {margin}; median = median of the paired per-sample "
    "differences; "
    "max = max(median, {margin} x min) of the costliest variant "
    "(dependent chains, misses, 64-byte keys); hash-map variants also as a line in the "
    "key size over their dearest 4- and 64-byte-key figures; argument setup subtracted. "
    "Derived: "
    "exit 0 (a subprogram's exit is priced in 'call', the entry's in the test-run "
    "baseline), load/store 'other' = envelope of measured kinds. Caches are hot: a cold "
    "miss or a contended atomic can exceed max. Defaults price what calibration did not "
    "measure. samples={samples}, repeat={repeat}."
)


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
    extra: Callable[[Env], bytes] | None = None  # code after the epilogue (subprograms)
    stream: bool = False  # independent copies: the class's issue cost (throughput)
    key_bytes: int | None = None  # map helpers: the key size of the map measured


@dataclass(frozen=True)
class Measured:
    min_ns: float
    median_ns: float
    spread_pct: float


@dataclass
class Options:
    samples: int
    repeat: int
    inline_samples: int
    unit_scale: float
    progress: Callable[[str], None] = field(default=lambda msg: None)


QUICK = Options(samples=3, repeat=2000, inline_samples=9, unit_scale=0.5)
FULL = Options(samples=7, repeat=8000, inline_samples=31, unit_scale=1.0)

# -- program skeletons ----------------------------------------------------------

_STACK_ZERO_BYTES = 320  # fp-320 .. fp-1 zeroed: keys at fp-64, values at fp-128
KEY_OFF = -64
VALUE_OFF = -128
MISS_KEY_OFF = -192  # 64 bytes of 0xff: a key no map holds
PACKET = struct.pack("<QQQ", 1, 0xFFFF_FFFF_FFFF_FFF1, 3)  # r7 = 1, r9 = big, r5 = 3


def _ctx_data_offsets(prog_type: str) -> tuple[int, int]:
    # xdp_md.data/data_end; __sk_buff.data/data_end
    return (0, 4) if prog_type == "xdp" else (76, 80)


def _prologue(env: Env, prog_type: str) -> list[bytes]:
    code = [bc.mov64(R6, R1)]
    for off in range(-_STACK_ZERO_BYTES, 0, 8):
        value = -1 if MISS_KEY_OFF <= off < MISS_KEY_OFF + 64 else 0
        code.append(bc.st(8, R10, off, value))
    code += [bc.ld_map_fd(R1, env.fd("big")), bc.mov64(R2, R10),
             bc.alu64(AluOp.ADD, R2, imm=KEY_OFF), bc.call_helper(1),
             bc.mov64(R8, R0)]
    return code


def _program(env: Env, bench: Bench, units: int) -> bytes:
    """Prologue, ``pre``, ``units`` bodies, epilogue; bail-outs jump to the epilogue."""
    inline = bench.prog_type in ("raw_tracepoint", "syscall")
    head = _prologue(env, bench.prog_type)
    checks: list[tuple[int, bytes]] = []  # (index in head, jump to patch)
    checks.append((len(head), bc.jmp_imm(JmpOp.JEQ, R8, 0, 0)))
    head.append(b"")
    if inline:
        head += [bc.call_helper(_h("ktime_get_ns")), bc.mov64(R9, R0), bc.mov64(R7, imm=1)]
    else:
        data_off, end_off = _ctx_data_offsets(bench.prog_type)
        head += [bc.ldx(4, R2, R6, data_off), bc.ldx(4, R3, R6, end_off),
                 bc.mov64(R4, R2), bc.alu64(AluOp.ADD, R4, imm=128)]
        checks.append((len(head), bc.jmp_reg(JmpOp.JGT, R4, R3, 0)))
        head.append(b"")
        head += [bc.ldx(8, R7, R2, 0), bc.ldx(8, R9, R2, 8), bc.ldx(8, R5, R2, 16)]
    pre = bench.pre(env) if bench.pre is not None else b""
    body = pre + bench.body(env) * units
    if inline:
        tail = (bc.call_helper(_h("ktime_get_ns")) + bc.alu64(AluOp.SUB, R0, R9)
                + bc.exit_())
        verdict = 0
    else:
        tail = b""
        verdict = 2 if bench.prog_type == "xdp" else 0
    positions = []
    slot = 0
    for part in head:
        positions.append(slot)
        slot += bc.slots(part) if part else 1
    out_slot = slot + bc.slots(body) + bc.slots(tail)
    for index, template in checks:
        off = out_slot - positions[index] - 1
        head[index] = template[:2] + struct.pack("<h", off) + template[4:]
    code = b"".join(head) + body + tail + bc.mov64(R0, imm=verdict) + bc.exit_()
    if bench.extra is not None and units:
        code = _point_at(code, slot, slot + bc.slots(body)) + bench.extra(env)
    return code


def _point_at(code: bytes, first: int, end: int) -> bytes:
    """Aim the body's bpf-to-bpf calls and function loads at the code appended next."""
    target = bc.slots(code)
    out = bytearray(code)
    for pc in range(first, end):
        op, regs = out[pc * 8], out[pc * 8 + 1]
        if (op == 0x85 and regs >> 4 == 1) or (op == 0x18 and regs >> 4 == 4):
            struct.pack_into("<i", out, pc * 8 + 4, target - pc - 1)
    return bytes(out)


# -- timing ---------------------------------------------------------------------

def _load(bench: Bench, code: bytes, func_starts: tuple[int, ...] = (0,)) -> int:
    """Load one benchmark; ``func_starts`` (slots) marks subprograms and callbacks,
    which then get the minimal BTF func_info the verifier asks for. A refusal raises
    Refused with the verifier's reason."""
    flags = sc.BPF_F_SLEEPABLE if bench.prog_type == "syscall" else 0
    btf_fd = 0
    if len(func_starts) > 1:
        try:
            btf_fd = sc.btf_load(btf_blob.func_btf(len(func_starts)))
        except sc.BpfSyscallError as exc:
            raise Refused("load", f"BTF for its callback: {exc.reason}") from None

    def load(log_level: int) -> int:
        return sc.prog_load(
            sc.PROG_TYPES[bench.prog_type], code, name=bench.variant, log_level=log_level,
            prog_flags=flags, prog_btf_fd=btf_fd,
            func_info=btf_blob.func_info(list(func_starts)) if btf_fd else b"",
            func_info_rec_size=btf_blob.FUNC_INFO_REC_BYTES).fd

    try:
        return load(0)
    except sc.BpfSyscallError as first:
        # Reload with a verbose log only to explain the failure.
        try:
            load(1)
        except sc.BpfSyscallError as exc:
            raise Refused("load", exc.reason) from None
        raise Refused("load", first.reason) from None
    finally:
        if btf_fd:
            sc.close(btf_fd)


def _packet(prog_type: str) -> bytes:
    if prog_type == "xdp":
        return PACKET + bytes(232)
    # Ethernet + IPv4 + TCP, so skb helpers see a well-formed packet.
    eth = bytes(6) + bytes.fromhex("020000000001") + b"\x08\x00"
    payload_len = 256 - 14
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, payload_len, 0, 0, 64, 6, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    tcp = struct.pack("!HHIIBBHHH", 1234, 80, 0, 0, 0x50, 0x02, 1024, 0, 0)
    rest = bytes(payload_len - len(ip) - len(tcp))
    frame = eth + ip + tcp + rest
    # r7/r9/r5 come from packet offsets 0/8/16: keep the MAC addresses meaningful
    # for xdp only; tc benches read whatever the header holds (scalars either way).
    return frame


def _time(env: Env, bench: Bench, fds: tuple[int, int], opts: Options,
          reset: Callable[[], None]) -> tuple[list[float], list[float]]:
    try:
        return _time_runs(bench, fds, opts, reset)
    except sc.BpfSyscallError as exc:
        raise Refused("run", exc.reason) from None


def _time_runs(bench: Bench, fds: tuple[int, int], opts: Options,
               reset: Callable[[], None]) -> tuple[list[float], list[float]]:
    data = _packet(bench.prog_type)
    t0: list[float] = []
    tn: list[float] = []
    if bench.prog_type in ("raw_tracepoint", "syscall"):
        for _ in range(opts.inline_samples):
            for fd, out in ((fds[0], t0), (fds[1], tn)):
                out.append(float(sc.prog_test_run(fd).retval))
        return t0, tn
    repeat = opts.repeat
    for _ in range(opts.samples):
        for fd, out in ((fds[0], t0), (fds[1], tn)):
            reset()
            out.append(float(sc.prog_test_run(fd, data=data, repeat=repeat).duration_ns))
    return t0, tn


def measure(env: Env, bench: Bench, opts: Options,
            reset: Callable[[], None] = lambda: None) -> Measured:
    units = max(1, round(bench.units * opts.unit_scale))
    code = _program(env, bench, units)
    starts: tuple[int, ...] = (0,)
    if bench.extra is not None:
        starts = (0, bc.slots(code) - bc.slots(bench.extra(env)))
    empty_fd = _load(bench, _program(env, bench, 0))
    try:
        fds = (empty_fd, _load(bench, code, starts))
    except BaseException:
        sc.close(empty_fd)
        raise
    try:
        t0, tn = _time(env, bench, fds, opts, reset)
    finally:
        for fd in fds:
            sc.close(fd)
    per = units * bench.calls_per_unit
    lo = (min(tn) - min(t0)) / per
    # P0 and PN run back to back in each sample, so a pair sees the same neighbours:
    # the median of the paired differences drifts far less than a difference of medians.
    med = statistics.median(b - a for a, b in zip(t0, tn, strict=True)) / per
    spread = 100.0 * (statistics.median(tn) - min(tn)) / max(min(tn), 1.0)
    return Measured(lo, med, spread)


# -- maps -----------------------------------------------------------------------

@contextmanager
def _pinned_cpu() -> Iterator[int]:
    """Keep this process on one CPU it may use: the BPF_OUTPUT perf event, whose
    buffer perf_event_output writes, then needs opening on that CPU only."""
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


@contextmanager
def environment(ringbuf_bytes: int) -> Iterator[Env]:
    with _pinned_cpu() as cpu, _maps(ringbuf_bytes, cpu) as env:
        yield env


@contextmanager
def _maps(ringbuf_bytes: int, cpu: int) -> Iterator[Env]:
    fds: dict[str, int] = {}
    missing: dict[str, str] = {}
    progs: list[int] = []

    def create(name: str, mtype: str, key: int, value: int, entries: int,
               flags: int = 0, fill: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        fds[name] = sc.map_create(sc.MAP_TYPES[mtype], key, value, entries, flags, name)
        for k, v in fill:
            sc.map_update(fds[name], k, v)

    def optional(name: str, make: Callable[[], None]) -> None:
        """A map this kernel may lack (a newer type, a perf event): its benchmarks are
        refused with the reason instead of the whole calibration."""
        try:
            make()
        except sc.BpfSyscallError as exc:
            if name in fds:
                sc.close(fds.pop(name))
            missing[name] = exc.reason

    try:
        # Every program's prologue looks this array up: without it nothing runs.
        try:
            create("big", "array", 4, BIG_VALUE_BYTES, 1,
                   fill=((bytes(4), b"A" * (BIG_VALUE_BYTES - 1) + b"\0"),))
        except sc.BpfSyscallError as exc:
            raise BpfLintError(f"calibrate needs a {BIG_VALUE_BYTES}-byte array map, which "
                               f"this kernel refuses: {exc}") from None
        for mtype in ("array", "percpu_array"):
            optional(mtype, functools.partial(create, mtype, mtype, 4, 64, 4))
        ncpu = os.cpu_count() or 1
        for mtype in ("hash", "percpu_hash", "lru_hash", "lru_percpu_hash"):
            for key_size in (4, 64):
                value = bytes(64 * (ncpu if "percpu" in mtype else 1))
                optional(f"{mtype}{key_size}", functools.partial(
                    create, f"{mtype}{key_size}", mtype, key_size, 64, 1024,
                    fill=((bytes(key_size), value),)))
        optional("lpm_trie", functools.partial(
            create, "lpm_trie", "lpm_trie", 8, 8, 64, sc.BPF_F_NO_PREALLOC,
            fill=((struct.pack("<I", 8) + bytes(4), bytes(8)),)))
        for mtype in ("queue", "stack"):
            optional(mtype, functools.partial(create, mtype, mtype, 0, 64, 4,
                                              fill=((b"", bytes(64)),) * 4))
        for entries in (1, 16, 64):
            optional(f"each{entries}",
                     functools.partial(create, f"each{entries}", "array", 4, 8, entries))
        optional("ringbuf", functools.partial(create, "ringbuf", "ringbuf", 0, 0,
                                              ringbuf_bytes))
        optional("stack_trace", functools.partial(create, "stack_trace", "stack_trace", 4,
                                                  8 * MAX_STACK_DEPTH, 1024))

        def perf_array() -> None:
            event = sc.perf_bpf_output_open(cpu)
            fds["perf_event"] = event
            create("perf_array", "perf_event_array", 4, 4, max(ncpu, cpu + 1),
                   fill=((struct.pack("<I", cpu), struct.pack("<I", event)),))

        optional("perf_array", perf_array)
        if "perf_array" in missing and "perf_event" in fds:
            sc.close(fds.pop("perf_event"))
        optional("devmap", functools.partial(create, "devmap", "devmap", 4, 4, 4))

        def prog_array() -> None:
            create("prog_array", "prog_array", 4, 4, 2)
            target = sc.prog_load(sc.PROG_TYPES["xdp"], bc.mov64(R0, imm=2) + bc.exit_(),
                                  name="tail_target", log_level=0)
            progs.append(target.fd)
            sc.map_update(fds["prog_array"], struct.pack("<I", 0), struct.pack("<I", target.fd))

        optional("prog_array", prog_array)
        yield Env(fds, ringbuf_bytes, missing)
    finally:
        for fd in [*fds.values(), *progs]:
            sc.close(fd)


@contextmanager
def buffers_reset(env: Env) -> Iterator[Callable[[], None]]:
    """Empty the ring buffer and the perf buffer (consumer position := producer
    position) before each sample, so every record of it finds room: a full buffer
    turns the helpers into their cheap failure path. A buffer that cannot be mapped
    takes its map out of the environment (its benchmarks are then refused)."""
    page = mmap.PAGESIZE
    maps: list[mmap.mmap] = []
    moves: list[Callable[[], None]] = []

    def mapped(fd_name: str, size: int, prot: int, offset: int = 0) -> mmap.mmap:
        area = mmap.mmap(env.fds[fd_name], size, mmap.MAP_SHARED, prot, offset=offset)
        maps.append(area)
        return area

    try:
        try:
            if "ringbuf" in env.fds:
                consumer = mapped("ringbuf", page,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
                producer = mapped("ringbuf", page, mmap.PROT_READ, page)

                def ring() -> None:
                    consumer[0:8] = producer[0:8]
                moves.append(ring)
        except OSError as exc:
            _drop(env, "ringbuf", f"cannot map its buffer: {exc.strerror}")
        try:
            if "perf_event" in env.fds:
                # struct perf_event_mmap_page, then the data pages; data_head at 1024,
                # data_tail at 1032 in the first page
                perf = mapped("perf_event", page * (1 + PERF_BUFFER_PAGES),
                              mmap.PROT_READ | mmap.PROT_WRITE)

                def perf_buffer() -> None:
                    perf[1032:1040] = perf[1024:1032]
                moves.append(perf_buffer)
        except OSError as exc:
            _drop(env, "perf_array", f"cannot map its perf buffer: {exc.strerror}")

        def reset() -> None:
            for move in moves:
                move()
        yield reset
    finally:
        for area in maps:
            area.close()


def _drop(env: Env, name: str, reason: str) -> None:
    """Take a map out of the environment: benchmarks that need it are refused."""
    env.missing[name] = reason
    fd = env.fds.pop(name, None)
    if fd is not None:
        sc.close(fd)


# -- benchmark bodies -----------------------------------------------------------

def _h(name: str) -> int:
    return HELPER_NAMES.index(name)


def _rot(make: Callable[[int], bytes], regs: tuple[int, ...] = (R0, R1, R3, R4)) -> \
        Callable[[Env], bytes]:
    """Independent copies (different destinations): the throughput-bound figure."""
    return lambda env: b"".join(make(r) for r in regs)


def _const(code: bytes) -> Callable[[Env], bytes]:
    return lambda env: code


def _insn_benches() -> list[Bench]:
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


def _helper_benches() -> list[Bench]:
    x = "xdp"
    b: list[Bench] = []

    def add(key: str, variant: str, body: Callable[[Env], bytes], units: int = 32,
            setup: tuple[str, ...] = (), per: int = 1, ptype: str = x,
            size: int | None = None, extra: Callable[[Env], bytes] | None = None,
            key_bytes: int | None = None) -> None:
        b.append(Bench(f"helper.{key}", variant, ptype, body, units, setup, per, size,
                       extra=extra, key_bytes=key_bytes))

    def call(name: str) -> bytes:
        return bc.call_helper(_h(name))

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
    for size in (8, 64, 512):
        add("perf_event_output", f"perf_event_output_{size}", perf_output_body(size),
            units=4, setup=("alu_mov", "ld_imm64") + ("alu_mov",) * 3, size=size)
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
    return b


# -- from measurements to a table -------------------------------------------------

@dataclass
class _Entry:
    lo: float = float("inf")
    med: float = 0.0
    hi: float = 0.0
    spread: float = 0.0
    sized: list[tuple[int, float, float]] = field(default_factory=list)  # size, lo, hi
    issue: float | None = None  # the dearest stream variant's max
    by_key: dict[int, float] = field(default_factory=dict)  # key bytes -> dearest max

    def add(self, m: Measured, setup_lo: float, setup_hi: float, bench: Bench) -> None:
        # The minimum is taken with the same margin downwards: a busy machine (an SMT
        # sibling at work, a lower clock) raises every figure of one calibration run,
        # and a program later timed on a quiet one ran below such a minimum.
        lo = max(0.0, m.min_ns / MAX_MARGIN - setup_hi)
        hi = max(m.median_ns, MAX_MARGIN * m.min_ns) - setup_lo
        self.lo = min(self.lo, lo)
        self.med = max(self.med, m.median_ns - setup_lo)
        self.hi = max(self.hi, hi, lo)
        self.spread = max(self.spread, m.spread_pct)
        if bench.size is not None:
            self.sized.append((bench.size, lo, hi))
        if bench.stream:
            self.issue = max(self.issue or 0.0, hi, lo)
        if bench.key_bytes is not None:
            self.by_key[bench.key_bytes] = max(self.by_key.get(bench.key_bytes, 0.0), hi, lo)

    def key_line(self) -> tuple[float, float] | None:
        """(base, per key byte) of a line over every key size's max: hashing and
        comparing a key grow with its length, and most maps have small keys."""
        if len(self.by_key) < 2:
            return None
        points = sorted(self.by_key.items())
        (k0, hi0), (k1, hi1) = points[0], points[-1]
        per = max(0.0, (hi1 - hi0) / (k1 - k0))
        return max(hi - per * k for k, hi in points), per


def _fit(points: list[tuple[int, float, float]]) -> tuple[float, float, float, float]:
    """(base_lo, base_hi, per_unit_lo, per_unit_hi): a line under every min point and
    one over every max point.

    The upper line rises as the two largest sizes do (how the cost grows past what was
    measured) and is lifted over every smaller point: a fixed cost the first unit pays
    (bpf_loop's first iteration, a copy's first cache line) raises the base, not the
    slope, which would otherwise charge it again for every unit up to 8M iterations.
    """
    points = sorted(points)
    (s0, lo0, _), (s1, lo1, _) = points[0], points[-1]
    per_lo = max(0.0, (lo1 - lo0) / (s1 - s0))
    base_lo = max(0.0, min(lo - per_lo * size for size, lo, _ in points))
    (sa, _, hia), (sb, _, hib) = points[-2], points[-1]
    per_hi = max(0.0, (hib - hia) / (sb - sa))
    if per_hi <= 0.0:
        # No slope above the noise (a copy of 128 bytes costs what one of 4 does): a zero
        # slope would price the size cap like the smallest size, so take the steepest
        # line the measurements allow, from the cheapest small run to the dearest big one.
        per_hi = max(0.0, (points[-1][2] - lo0) / (s1 - s0))
    base_hi = max(hi - per_hi * size for size, _, hi in points)
    return base_lo, max(base_hi, base_lo), per_lo, max(per_hi, per_lo)


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def _cost_line(name: str, lo: float, hi: float, med: float | None, spread: float | None,
               extra: str = "") -> str:
    parts = [f"min_ns = {_fmt(lo)}", f"max_ns = {_fmt(hi)}"]
    if med is not None:
        parts.append(f"median_ns = {_fmt(med)}")
    if spread is not None:
        parts.append(f"spread_pct = {spread:.1f}")
    return f"{name} = {{ {', '.join(parts)}{extra} }}"


SKIPPED = "left out by --only/--skip"


@dataclass(frozen=True)
class Calibration:
    text: str  # the table (TOML)
    refused: dict[str, str]  # entry -> "variant: stage refused: the kernel's reason"
    left_out: tuple[str, ...]  # entries --only/--skip excluded
    base_path: str  # the table what was not measured is priced from

    def summary(self) -> str:
        """One line naming what was not measured, or "" when everything was."""
        parts = [f"{key} ({why})" for key, why in self.refused.items()]
        if self.left_out:
            count = len(self.left_out)
            parts.append(f"{count} {'entry' if count == 1 else 'entries'} {SKIPPED}")
        if not parts:
            return ""
        return (f"not measured here, priced from {self.base_path} (see "
                f"[provenance.not_measured]): " + "; ".join(parts))


def bench_list() -> list[tuple[str, str]]:
    """(entry, variant) of every benchmark, in the order calibration runs them."""
    return [(b.key, b.variant) for b in (*_insn_benches(), *_helper_benches())]


def _names(key: str) -> tuple[str, ...]:
    """What a pattern may name an entry by: the entry and its dotted prefixes
    ("helper.map_lookup_elem" for "helper.map_lookup_elem.map.hash"), each also
    without its kind ("map_lookup_elem", "alu_mov")."""
    parts = key.split(".")
    prefixes = [".".join(parts[:n]) for n in range(2, len(parts) + 1)]
    return (*prefixes, *(p.split(".", 1)[1] for p in prefixes))


def _matches(key: str, pattern: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for name in _names(key))


def select(keys: Iterable[str], only: Sequence[str] = (), skip: Sequence[str] = ()
           ) -> set[str]:
    """The entries --only (default: all) and --skip keep; a pattern naming no entry is
    a usage error (a misspelt name would otherwise calibrate everything)."""
    unique = list(dict.fromkeys(keys))
    for flag, patterns in (("--only", only), ("--skip", skip)):
        for pattern in patterns:
            if not any(_matches(k, pattern) for k in unique):
                raise BpfLintError(f"calibrate {flag} {pattern!r}: names no benchmark "
                                   "(`bpflint calibrate --list` lists them)")
    return {k for k in unique if (not only or any(_matches(k, p) for p in only))
            and not any(_matches(k, p) for p in skip)}


def run_calibration(opts: Options, ringbuf_bytes: int = 1 << 24,
                    base: CostTable | None = None, only: Sequence[str] = (),
                    skip: Sequence[str] = ()) -> str:
    """Measure and return the table as TOML text (see calibrate())."""
    return calibrate(opts, ringbuf_bytes, base, only, skip).text


def calibrate(opts: Options, ringbuf_bytes: int = 1 << 24, base: CostTable | None = None,
              only: Sequence[str] = (), skip: Sequence[str] = ()) -> Calibration:
    """Measure the chosen entries on this kernel.

    An entry the kernel refuses (a map it will not create, a program it will not load,
    a test run it will not do) or that --only/--skip leave out is priced from ``base``
    (default: the shipped table) and listed with its reason in the table's
    [provenance.not_measured]. Only a bpf() that cannot load and run the simplest
    program, or a calibration that measured nothing, is an error.
    """
    ok, why = sc.bpf_usable()
    if not ok:
        raise BpfLintError(f"calibrate needs a usable bpf(): {why}")
    if base is None:
        base = load_cost_table(None)
    benches = [*_insn_benches(), *_helper_benches()]
    chosen = select((b.key for b in benches), only, skip)
    left_out = tuple(dict.fromkeys(b.key for b in benches if b.key not in chosen))
    runs = [b for b in benches if b.key in chosen]
    refused: dict[str, str] = {}
    entries: dict[str, _Entry] = {}
    with environment(ringbuf_bytes) as env, buffers_reset(env) as reset:
        for done, bench in enumerate(runs, 1):
            label = f"[{done}/{len(runs)}] {bench.key} ({bench.variant})"
            if bench.key in refused:
                opts.progress(f"{label}: not run, the entry was refused")
                continue
            opts.progress(label)
            try:
                m = measure(env, bench, opts, reset)
            except Refused as exc:
                # one refused variant leaves the entry unmeasured: its dearest case
                # may be the one that did not run
                refused[bench.key] = f"{bench.variant}: {exc}"
                entries.pop(bench.key, None)
                opts.progress(f"{label}: not measured, {exc}")
                continue
            setup = [_insn_cost(entries, base, k) for k in bench.setup]
            entries.setdefault(bench.key, _Entry()).add(
                m, sum(lo for lo, _ in setup), sum(hi for _, hi in setup), bench)
            opts.progress(f"{label}: min {m.min_ns:.2f} ns, median {m.median_ns:.2f} ns, "
                          f"spread {m.spread_pct:.1f}%")
    if not entries:
        first = next(iter(refused.items()), None)
        raise BpfLintError("calibrate: nothing was measured" + (
            f" (the kernel refused every benchmark run; {first[0]}: {first[1]})"
            if first else ""))
    not_measured = {**{k: SKIPPED for k in left_out}, **refused}
    text = _render(entries, opts, base, not_measured)
    return Calibration(text, refused, left_out, base.path)


def _insn_cost(entries: dict[str, _Entry], base: CostTable, key: str) -> tuple[float, float]:
    """(min, max) ns of an instruction class: measured here, else the base table's."""
    e = entries.get(f"insn.{key}")
    if e is not None:
        return e.lo, e.hi
    cost = base.insns[key]
    return cost.min_ns, cost.max_ns


def _exact(value: float) -> str:
    # a base table's figure is copied, not rounded: rounding could lower a max
    return repr(float(value))


def _copied_cost(name: str, cost: Cost, note: str = "") -> str:
    """A base table's entry, every field as it was."""
    parts = [f"min_ns = {_exact(cost.min_ns)}", f"max_ns = {_exact(cost.max_ns)}"]
    if cost.median_ns is not None:
        parts.append(f"median_ns = {_exact(cost.median_ns)}")
    if cost.spread_pct is not None:
        parts.append(f"spread_pct = {_exact(cost.spread_pct)}")
    if cost.issue_ns is not None:
        parts.append(f"issue_ns = {_exact(cost.issue_ns)}")
    if cost.per_key is not None:
        parts += [f"key_base_max_ns = {_exact(cost.per_key[0])}",
                  f"per_key_byte_max_ns = {_exact(cost.per_key[1])}"]
    return f"{name} = {{ {', '.join(parts)} }}" + (f"  # {note}" if note else "")


def _copied_helper(name: str, helper: HelperCost, note: str) -> list[str]:
    base = helper.base
    lines = ["", f"[helper.{name}]  # {note}",
             f"min_ns = {_exact(base.min_ns)}", f"max_ns = {_exact(base.max_ns)}"]
    if helper.max_units is not None:
        lines += [f"per_unit_min_ns = {_exact(helper.per_unit_min_ns)}",
                  f"per_unit_max_ns = {_exact(helper.per_unit_max_ns)}",
                  f"max_units = {helper.max_units}"]
    if base.median_ns is not None:
        lines.append(f"median_ns = {_exact(base.median_ns)}")
    if base.spread_pct is not None:
        lines.append(f"spread_pct = {_exact(base.spread_pct)}")
    if helper.by_map_type:
        lines.append(f"[helper.{name}.map]")
        lines += [_copied_cost(v, c) for v, c in helper.by_map_type]
    return lines


def _split_helper_key(key: str) -> tuple[str, str]:
    """"helper.map_lookup_elem.map.hash" -> ("map_lookup_elem", "hash")."""
    name, _, variant = key.removeprefix("helper.").partition(".map.")
    return name, variant


def _priced_from(key: str, base: CostTable) -> str:
    if key.startswith("helper."):
        name, variant = _split_helper_key(key)
        helper = base.helpers.get(name)
        if helper is None or (variant and helper.variant(variant) is None):
            return "[defaults] (the base table " + base.path + " has no figure)"
    return base.path


def _render(entries: dict[str, _Entry], opts: Options, base: CostTable,
            not_measured: dict[str, str]) -> str:
    method = METHOD.format(margin=MAX_MARGIN, samples=opts.samples, repeat=opts.repeat)
    lines = [
        "# bpflint cost table, written by `bpflint calibrate`.",
        "# Format: see bpflint/cost/model.py. Costs in ns; a helper's cost includes its call.",
        f"format = {FORMAT_VERSION}", "",
        "[provenance]",
        f"kernel = {_q(platform.release())}",
        f"cpu = {_q(_cpu_model())}",
        f"date = {_q(date.today().isoformat())}",
        f"method = {_q(method)}",
    ]
    if not_measured:
        lines += ["", "[provenance.not_measured]",
                  "# entry = why it was not measured here; where its figure comes from"]
        lines += [f"{_q(key)} = {_q(f'{why}; priced from {_priced_from(key, base)}')}"
                  for key, why in not_measured.items()]
    lines += [
        "",
        "[defaults]",
        "# anything calibration did not measure (a warning names it when used)",
        "helper_min_ns = 0.0", f"helper_max_ns = {DEFAULT_HELPER_MAX_NS}",
        "kfunc_min_ns = 0.0", f"kfunc_max_ns = {DEFAULT_HELPER_MAX_NS}",
        f"size_cap_bytes = {SIZE_CAP_BYTES}", "",
        "[insn]",
    ]
    copied = f"not measured here: from {base.path}"
    insn = {k.removeprefix("insn."): e for k, e in entries.items() if k.startswith("insn.")}
    # 'other' memory is the envelope of the kinds, measured here or not
    kinds = [_insn_cost(entries, base, f"{op}_{k}") for op in ("load", "store")
             for k in MEM_KINDS if k != "other"]
    derived = {
        "exit": (0.0, 0.0),
        "load_other": (min(lo for lo, _ in kinds), max(hi for _, hi in kinds)),
        "store_other": (min(lo for lo, _ in kinds), max(hi for _, hi in kinds)),
    }
    for key in (*INSN_KEYS, *OPTIONAL_INSN_KEYS):
        e = insn.get(key)
        if key in derived:
            lines.append(_cost_line(key, *derived[key], None, None) + "  # derived")
        elif e is None:
            lines.append(_copied_cost(key, base.insns[key], copied))
        else:
            issue = "" if e.issue is None else f", issue_ns = {_fmt(min(e.issue, e.hi))}"
            lines.append(_cost_line(key, e.lo, e.hi, e.med, e.spread, issue))
    helpers: dict[str, dict[str, _Entry]] = {}
    for key, e in entries.items():
        if key.startswith("helper."):
            name, variant = _split_helper_key(key)
            helpers.setdefault(name, {})[variant] = e
    # map variants not measured here: the base table's figure where it has one
    fallback: dict[str, dict[str, Cost]] = {}
    unmeasured_names: set[str] = set()
    for key in not_measured:
        if key.startswith("helper."):
            name, variant = _split_helper_key(key)
            unmeasured_names.add(name)
            got = base.helpers.get(name)
            cost = got.variant(variant) if got is not None and variant else None
            if cost is not None:
                fallback.setdefault(name, {})[variant] = cost
    for name in sorted(set(helpers) | unmeasured_names):
        variants = helpers.get(name, {})
        if not variants:
            got = base.helpers.get(name)
            if got is not None:  # else [defaults] price it, with a warning when used
                lines += _copied_helper(name, got, copied)
            continue
        lines += ["", f"[helper.{name}]"]
        whole = _Entry()
        for e in variants.values():
            whole.lo, whole.hi = min(whole.lo, e.lo), max(whole.hi, e.hi)
            whole.med, whole.spread = max(whole.med, e.med), max(whole.spread, e.spread)
            whole.sized += e.sized
        for c in fallback.get(name, {}).values():
            whole.lo, whole.hi = min(whole.lo, c.min_ns), max(whole.hi, c.max_ns)
        if len(whole.sized) >= 2:
            base_lo, base_hi, per_lo, per_hi = _fit(whole.sized)
            lines += [f"min_ns = {_fmt(base_lo)}", f"max_ns = {_fmt(base_hi)}",
                      f"per_unit_min_ns = {per_lo:.5f}", f"per_unit_max_ns = {per_hi:.5f}",
                      "max_units = 0  # unknown size: defaults.size_cap_bytes"]
        else:
            lines += [f"min_ns = {_fmt(whole.lo)}", f"max_ns = {_fmt(whole.hi)}"]
        lines += [f"median_ns = {_fmt(whole.med)}", f"spread_pct = {whole.spread:.1f}"]
        typed = {v: e for v, e in variants.items() if v}
        if typed or name in fallback:
            lines.append(f"[helper.{name}.map]")
            rows: list[tuple[str, str]] = []
            for variant, e in typed.items():
                line = e.key_line()
                keyed = "" if line is None else (f", key_base_max_ns = {_fmt(line[0])}"
                                                 f", per_key_byte_max_ns = {line[1]:.5f}")
                rows.append((variant, _cost_line(variant, e.lo, e.hi, e.med, e.spread, keyed)))
            rows += [(v, _copied_cost(v, c, copied)) for v, c in fallback.get(name, {}).items()]
            lines += [row for _, row in sorted(rows)]
    return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


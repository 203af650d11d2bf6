"""The C-level differential fuzzer: compile, let the kernel judge, analyse, execute.

For each seed :mod:`cgen_gen` writes a C program; clang -O2 -target bpf compiles it
(the corpus's tests/progs/common.h, no vmlinux.h); libbpf itself loads it (through
ctypes: it resolves the kfuncs of ``bpf_for``, checks global functions as the kernel
does, and sets the ``const volatile`` variables before load, as a skeleton would), so
the verifier's verdict is the one a real loader gets. A program it refuses does not
count. bpflint's public API analyses the object; the reference interpreter runs it on
many inputs (packets random, structured and with the program's constants planted;
array and hash map contents; loader-set values), plus the witness search's worst
input when asked. A sample of the runs also goes to the kernel (BPF_PROG_TEST_RUN on
a fresh load with the same map contents and loader-set values): return values must
agree. Every executed count must lie inside ``[insns.min, insns.max]``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import random
import re
import statistics
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from bpfc import PROGS, find_clang, host_include_flags
from cgen_gen import ARR_ENTRIES, KNOBS, PROG_NAME, RAW_TP, SOCKET, TC, XDP, CProgram, generate
from cgen_idioms import shaped_packet, str_values

from bpflint import api
from bpflint.interp.refinterp import Input, InterpError, Interpreter, StepCapExceeded, World
from bpflint.kernel import syscall as sc
from bpflint.obj.reader import load_object
from bpflint.results import ProgramResult

MASK32 = (1 << 32) - 1
MIN_PACKET = 14  # ETH_HLEN: the kernel refuses shorter test packets
SKB_CTX_BYTES = 192
SKB_CTX_IN_BYTES = 68  # through cb[4]: what BPF_PROG_TEST_RUN lets a test set
RAW_TP_ARGS = 6
LOOPBACK_IFINDEX = 1
STEP_CAP = 3_000_000
WITNESS_MAX_INSNS = 200_000
MAX_MAP_VALUE = 400  # keeps the may_goto loops (bounded by a map value) short


# -- libbpf, through ctypes ---------------------------------------------------------
class Libbpf:
    """The few libbpf calls the fuzzer needs (open, set .rodata, load, fds, close)."""

    def __init__(self) -> None:
        path = ctypes.util.find_library("bpf") or "libbpf.so.1"
        lib = ctypes.CDLL(path, use_errno=True)
        vp, cp = ctypes.c_void_p, ctypes.c_char_p
        lib.libbpf_set_print.argtypes = [vp]
        lib.libbpf_set_print.restype = vp
        lib.libbpf_set_print(None)  # quiet: the verifier's verdict is all we need
        lib.bpf_object__open_file.argtypes = [cp, vp]
        lib.bpf_object__open_file.restype = vp
        lib.bpf_object__find_map_by_name.argtypes = [vp, cp]
        lib.bpf_object__find_map_by_name.restype = vp
        lib.bpf_map__initial_value.argtypes = [vp, ctypes.POINTER(ctypes.c_size_t)]
        lib.bpf_map__initial_value.restype = vp
        lib.bpf_object__load.argtypes = [vp]
        lib.bpf_object__load.restype = ctypes.c_int
        lib.bpf_object__find_program_by_name.argtypes = [vp, cp]
        lib.bpf_object__find_program_by_name.restype = vp
        lib.bpf_program__fd.argtypes = [vp]
        lib.bpf_program__set_log_level.argtypes = [vp, ctypes.c_uint32]
        lib.bpf_program__set_log_buf.argtypes = [vp, vp, ctypes.c_size_t]
        lib.bpf_map__fd.argtypes = [vp]
        lib.bpf_object__close.argtypes = [vp]
        self.lib = lib

    def load(self, path: Path, rodata: dict[int, bytes], log: bool = False
             ) -> LoadedC | str:
        """The loaded object, or the verifier's reason (last log line) for refusing."""
        lib = self.lib
        obj = lib.bpf_object__open_file(str(path).encode(), None)
        if not obj:
            return f"libbpf cannot open: errno {ctypes.get_errno()}"
        buf = ctypes.create_string_buffer(1 << 20) if log else None
        try:
            if rodata:
                ro = lib.bpf_object__find_map_by_name(obj, b".rodata")
                size = ctypes.c_size_t()
                base = lib.bpf_map__initial_value(ro, ctypes.byref(size)) if ro else None
                if not base:
                    raise RuntimeError("no .rodata to set")
                for off, raw in rodata.items():
                    ctypes.memmove(base + off, raw, len(raw))
            prog = lib.bpf_object__find_program_by_name(obj, PROG_NAME.encode())
            if buf is not None:
                lib.bpf_program__set_log_buf(prog, ctypes.addressof(buf), len(buf))
                lib.bpf_program__set_log_level(prog, 1)
            err = lib.bpf_object__load(obj)
            if err:
                lines = [ln for ln in (buf.value.decode(errors="replace").splitlines()
                                       if buf is not None else []) if ln.strip()]
                why = lines[-1] if lines else f"errno {-err}"
                if len(lines) > 1 and lines[-1].startswith("processed"):
                    why = lines[-2]
                lib.bpf_object__close(obj)
                return why
            maps = {name: lib.bpf_map__fd(lib.bpf_object__find_map_by_name(obj, name.encode()))
                    for name in ("arr", "hmap", "strs")}
            return LoadedC(self, obj, lib.bpf_program__fd(prog), maps)
        except BaseException:
            lib.bpf_object__close(obj)
            raise


@dataclass
class LoadedC:
    libbpf: Libbpf
    obj: int
    fd: int
    map_fds: dict[str, int]

    def close(self) -> None:
        self.libbpf.lib.bpf_object__close(self.obj)


# -- inputs -----------------------------------------------------------------------------
@dataclass(frozen=True)
class RunInput:
    packet: bytes
    mark: int = 0
    priority: int = 0
    cb0: int = 0
    args: tuple[int, ...] = (0,) * RAW_TP_ARGS
    arr: tuple[int, ...] = (0,) * ARR_ENTRIES  # array map values
    hmap: tuple[tuple[int, int], ...] = ()  # hash map elements
    knobs: tuple[tuple[str, int], ...] = ()  # loader-set values (others: the default)
    strs: tuple[bytes, ...] = ()  # the strs map's values (cgen_idioms.py), if it has one
    ringbuf_full: bool = False  # bpf_ringbuf_reserve fails (interpreter only)


def make_inputs(rng: random.Random, prog: CProgram, n: int) -> list[RunInput]:
    consts = list(prog.constants)
    pool = consts + [c + 1 for c in consts] + [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0xFFFFFFFF]
    out: list[RunInput] = []
    for index in range(n):
        kind = index % 4
        length = rng.choice([c for c in consts if MIN_PACKET <= c <= 200]
                            + [MIN_PACKET, rng.randint(MIN_PACKET, 160)])
        if kind == 0:
            buf = bytearray(rng.getrandbits(8) for _ in range(length))
        elif kind == 1:
            buf = bytearray([rng.choice((0, 0xFF, 0x80, 0x7F))]) * length
        else:
            buf = bytearray(rng.getrandbits(8) for _ in range(max(length, 60)))
            if kind == 3:  # Ethernet, IPv4 (any header length), a port of the program's
                ihl = rng.randint(5, 15)
                buf[12:14] = b"\x08\x00"
                buf[14] = 0x40 | ihl
                at = 14 + 4 * ihl
                port = rng.choice(consts or [80]) & 0xFFFF
                if at + 4 <= len(buf):
                    buf[at + 2:at + 4] = struct.pack(">H", port)
            for _ in range(rng.randint(1, 8)):
                value = rng.choice(pool)
                width = rng.choice((1, 2))
                at = rng.randint(0, len(buf) - width)
                buf[at:at + width] = (value & ((1 << 8 * width) - 1)).to_bytes(
                    width, rng.choice(("little", "big")))

        def scalar() -> int:
            return rng.choice(pool) if rng.random() < 0.6 else rng.getrandbits(
                rng.choice((8, 16, 32)))

        def map_value() -> int:
            return min(rng.choice(pool), MAX_MAP_VALUE) if rng.random() < 0.6 \
                else rng.randint(0, MAX_MAP_VALUE)

        arr = tuple(map_value() if rng.random() < 0.7 else 0 for _ in range(ARR_ENTRIES))
        # any keys (the programs look up 0..8): bpf_for_each_map_elem walks exactly
        # the elements the map holds, in the interpreter as in the kernel
        hmap = tuple((rng.randrange(9) if rng.random() < 0.6 else rng.getrandbits(32),
                      map_value()) for _ in range(rng.randint(0, 5)))
        knobs = []
        for name in prog.knobs:
            width = KNOBS[name][1]
            if rng.random() < 0.7:
                top = (1 << (8 * width)) - 1
                value = rng.choice((0, 1, top, rng.choice(pool) & top,
                                    rng.randint(0, min(top, 300))))
                if name == "knob_u32" or name == "knob_u16":
                    value = min(value, 2000)  # the interpreter runs every round
                knobs.append((name, value))
        args = tuple(scalar() for _ in range(RAW_TP_ARGS))
        out.append(RunInput(bytes(buf), scalar() & MASK32, scalar() & MASK32,
                            scalar() & MASK32, args, arr, tuple(sorted(dict(hmap).items())),
                            tuple(knobs)))
    return out


def idiom_inputs(rng: random.Random, prog: CProgram, inputs: list[RunInput]
                 ) -> list[RunInput]:
    """cgen_idioms.py's shapes: every third packet one a packet walk of the program
    goes far on (IPv6 extension headers, TCP options, VLAN tags), and the strs map's
    strings. A separate random stream: the other inputs stay as they were."""
    has_strs = "struct str_val" in prog.source
    out = []
    for index, inp in enumerate(inputs):
        packet = shaped_packet(rng, prog.features) if index % 3 == 1 else None
        if packet is not None:
            inp = replace(inp, packet=packet)
        if has_strs:
            inp = replace(inp, strs=str_values(rng, prog.strings))
        if index % 5 == 4:  # the kernel's fresh ring buffer has room: not in its runs
            inp = replace(inp, ringbuf_full=True)
        out.append(inp)
    return out


def map_entries(inp: RunInput) -> tuple[tuple[str, bytes, bytes], ...]:
    arr = tuple(("arr", struct.pack("<I", k), struct.pack("<Q", v))
                for k, v in enumerate(inp.arr))
    strs = tuple(("strs", struct.pack("<I", k), v) for k, v in enumerate(inp.strs))
    return arr + strs + tuple(("hmap", struct.pack("<I", k), struct.pack("<Q", v))
                              for k, v in inp.hmap)


def _kernel_packet(prog_type: str, packet: bytes) -> bytes:
    """What the program sees: a socket filter's skb starts after the Ethernet header
    (BPF_PROG_TEST_RUN pulls it with eth_type_trans); TC and XDP see it all."""
    return packet[MIN_PACKET:] if prog_type == SOCKET else packet


def world_of(inp: RunInput) -> World:
    # reads of memory the run holds (a strs value) succeed, as the kernel's; of other
    # addresses (small numbers: never mapped) fail
    return World(lookup_hits=(False,), reads_fail=True, reads_real=True,
                 ringbuf_full=inp.ringbuf_full, map_contents=map_entries(inp), rodata=inp.knobs)


def interp_input(prog_type: str, inp: RunInput) -> Input:
    world = world_of(inp)
    seen = _kernel_packet(prog_type, inp.packet)
    if prog_type == XDP:
        ctx = struct.pack("<IIIIII", 0, 0, 0, LOOPBACK_IFINDEX, 0, 0)
    elif prog_type in (TC, SOCKET):
        buf = bytearray(SKB_CTX_BYTES)
        struct.pack_into("<I", buf, 0, len(seen))
        struct.pack_into("<I", buf, 8, inp.mark)
        struct.pack_into("<I", buf, 32, inp.priority)
        struct.pack_into("<I", buf, 48, inp.cb0)
        ctx = bytes(buf)
    else:
        ctx = struct.pack(f"<{RAW_TP_ARGS}Q", *inp.args)
    return Input(ctx=ctx, packet=seen if prog_type != RAW_TP else b"", world=world)


def interpret(obj: object, inp: Input) -> tuple[int, int]:
    """(executed instructions, r0) in the reference interpreter."""
    interp = Interpreter(obj, inp, step_cap=STEP_CAP)  # type: ignore[arg-type]
    program = interp.program_named(PROG_NAME)
    r0 = interp.run_program(program, interp.setup_ctx(program))
    return interp.count, r0


def kernel_run(libbpf: Libbpf, path: Path, prog: CProgram, inp: RunInput,
               rodata: dict[int, bytes]) -> int | str:
    """r0 of BPF_PROG_TEST_RUN on a fresh load (maps as the input says), or why not."""
    loaded = libbpf.load(path, rodata)
    if isinstance(loaded, str):
        return f"reload refused: {loaded}"
    try:
        for name, key, value in map_entries(inp):
            sc.map_update(loaded.map_fds[name], key, value)
        data, ctx = inp.packet, b""
        if prog.prog_type == TC or prog.prog_type == SOCKET:
            buf = bytearray(SKB_CTX_IN_BYTES)
            struct.pack_into("<I", buf, 8, inp.mark)
            struct.pack_into("<I", buf, 32, inp.priority)
            struct.pack_into("<I", buf, 48, inp.cb0)
            ctx = bytes(buf)
        elif prog.prog_type == RAW_TP:
            data, ctx = b"", struct.pack(f"<{RAW_TP_ARGS}Q", *inp.args)
        return sc.prog_test_run(loaded.fd, data=data, ctx=ctx).retval
    except sc.BpfSyscallError as exc:
        return f"test run failed: {exc}"
    finally:
        loaded.close()


# -- figures ------------------------------------------------------------------------------
@dataclass
class Violation:
    seed: int
    side: str
    count: int
    bound: int
    what: str  # which input (index, or "witness")


@dataclass
class Stats:
    generated: int = 0
    compiled: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    executions: int = 0
    executed_insns: int = 0
    step_capped: int = 0
    interp_errors: int = 0
    comparisons: int = 0
    mismatches: int = 0
    unbounded: int = 0
    analysis_errors: int = 0
    witnesses: int = 0
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # (seed, insns.max / highest count seen, the program's features)
    tightness: list[tuple[int, float, tuple[str, ...]]] = field(default_factory=list)
    unbounded_seeds: list[int] = field(default_factory=list)

    def merge(self, other: Stats) -> None:
        for name in ("generated", "compiled", "accepted", "executions", "executed_insns",
                     "step_capped", "interp_errors", "comparisons", "mismatches",
                     "unbounded", "analysis_errors", "witnesses"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, n in other.rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + n
        self.violations += other.violations
        self.notes += other.notes
        self.tightness += other.tightness
        self.unbounded_seeds += other.unbounded_seeds

    def summary(self) -> dict[str, object]:
        ratios = sorted(t for _s, t, _f in self.tightness)

        def pct(q: float) -> float | None:
            return round(ratios[min(len(ratios) - 1, int(q * len(ratios)))], 3) \
                if ratios else None

        return {
            "generated": self.generated, "compiled": self.compiled,
            "accepted": self.accepted, "executions": self.executions,
            "executed_insns": self.executed_insns, "step_capped": self.step_capped,
            "interpreter_errors": self.interp_errors, "comparisons": self.comparisons,
            "mismatches": self.mismatches,
            "violations_min": sum(v.side == "min" for v in self.violations),
            "violations_max": sum(v.side == "max" for v in self.violations),
            "violating_programs": len({v.seed for v in self.violations}),
            "unbounded": self.unbounded, "analysis_errors": self.analysis_errors,
            "witnesses": self.witnesses,
            "tightness_median": round(statistics.median(ratios), 3) if ratios else None,
            "tightness_p90": pct(0.9), "tightness_max": pct(1.0),
        }

    def by_feature(self) -> dict[str, tuple[int, float, float]]:
        """feature -> (programs, median, p90 of insns.max / highest seen). A may_goto
        loop's bound is its budget (millions of rounds): programs with one count in
        the may_goto row only, so the other rows show the other constructs."""
        groups: dict[str, list[float]] = {}
        for _seed, ratio, feats in self.tightness:
            for f in ("may_goto",) if "may_goto" in feats else feats:
                groups.setdefault(f, []).append(ratio)
        out = {}
        for f, rs in sorted(groups.items()):
            rs.sort()
            out[f] = (len(rs), round(statistics.median(rs), 3),
                      round(rs[min(len(rs) - 1, int(0.9 * len(rs)))], 3))
        return out


# -- one program ---------------------------------------------------------------------------
def compile_c(prog: CProgram, workdir: Path) -> Path | str:
    clang = find_clang()
    if clang is None:
        return "no clang"
    src = workdir / f"cgen{prog.seed}.bpf.c"
    out = workdir / f"cgen{prog.seed}.o"
    src.write_text(prog.source)
    argv = [clang, "-target", "bpf", "-O2", "-g", "-D__TARGET_ARCH_x86", "-I", str(PROGS),
            *host_include_flags(), "-c", str(src), "-o", str(out)]
    got = subprocess.run(argv, capture_output=True, text=True)
    if got.returncode:
        first = next((ln for ln in got.stderr.splitlines() if "error" in ln), got.stderr)
        return f"clang: {first.strip()[:200]}"
    return out


def analyse(path: Path) -> ProgramResult:
    report = api.analyze_paths([str(path)], None)
    if report.errors:
        raise RuntimeError(f"analysis failed: {report.errors[0].message}")
    (result,) = [p for p in report.programs if p.name == PROG_NAME]
    return result


def rodata_bytes(obj: object, knobs: tuple[tuple[str, int], ...]) -> dict[int, bytes]:
    """.rodata offset -> bytes of each loader-set value (for libbpf before load)."""
    mdef = obj.maps.get(".rodata")  # type: ignore[attr-defined]
    out: dict[int, bytes] = {}
    if mdef is None:
        return out
    values = dict(knobs)
    for var in mdef.loader_vars:
        if var.name in values:
            out[var.offset] = (values[var.name] & ((1 << 8 * var.size) - 1)).to_bytes(
                var.size, "little")
    return out


def check_program(seed: int, runs: int, kernel_runs: int, witness_s: float,
                  workdir: Path, stats: Stats, libbpf: Libbpf, idioms: bool = True) -> None:
    prog = generate(seed, idioms)
    stats.generated += 1
    path = compile_c(prog, workdir)
    if isinstance(path, str):
        stats.rejected[path[:70]] = stats.rejected.get(path[:70], 0) + 1
        return
    stats.compiled += 1
    first = libbpf.load(path, {}, log=True)
    if isinstance(first, str):
        key = re.sub(r"\d+", "N", first)[:70]
        stats.rejected[key] = stats.rejected.get(key, 0) + 1
        return
    first.close()
    stats.accepted += 1
    try:
        result = analyse(path)
    except Exception as exc:  # noqa: BLE001 - every analysis failure is a finding
        stats.analysis_errors += 1
        stats.notes.append(f"seed {seed}: analysis: {exc}")
        return
    lo, hi = result.insns_min, result.insns_max
    if not result.bounded or hi is None:
        stats.unbounded += 1
        stats.unbounded_seeds.append(seed)
    obj = load_object(str(path))
    rng = random.Random(seed ^ 0xC6E2)
    highest = 0

    def judge(count: int, what: str) -> None:
        if lo is not None and count < lo:
            stats.violations.append(Violation(seed, "min", count, lo, what))
        if hi is not None and count > hi:
            stats.violations.append(Violation(seed, "max", count, hi, what))

    inputs = make_inputs(rng, prog, runs)
    if idioms:
        inputs = idiom_inputs(random.Random(seed ^ 0x1D10), prog, inputs)
    for index, inp in enumerate(inputs):
        try:
            count, r0 = interpret(obj, interp_input(prog.prog_type, inp))
        except StepCapExceeded:
            stats.step_capped += 1
            if hi is not None and hi < STEP_CAP:
                stats.violations.append(Violation(seed, "max", STEP_CAP, hi, str(index)))
            continue
        except InterpError as exc:
            stats.interp_errors += 1
            stats.notes.append(f"seed {seed} input {index}: interpreter: {exc}")
            continue
        stats.executions += 1
        stats.executed_insns += count
        highest = max(highest, count)
        judge(count, str(index))
        if index < kernel_runs and not inp.ringbuf_full:
            got = kernel_run(libbpf, path, prog, inp, rodata_bytes(obj, inp.knobs))
            if isinstance(got, str):
                stats.notes.append(f"seed {seed} input {index}: {got}")
                continue
            stats.comparisons += 1
            if got != r0 & MASK32:
                stats.mismatches += 1
                stats.notes.append(f"seed {seed} input {index}: kernel r0 {got}, "
                                   f"interpreter r0 {r0 & MASK32}")
    # the witness search replays its candidates in the interpreter: skip programs whose
    # worst case is too long to run (may_goto loops: hundreds of millions of rounds)
    if witness_s > 0 and hi is not None and hi <= WITNESS_MAX_INSNS:
        from bpflint.witness.runner import witness_program

        program = next(p for p in obj.programs if p.name == PROG_NAME)
        try:
            found = witness_program(obj, program, None, seconds=witness_s,  # type: ignore[arg-type]
                                    result=result)
        except Exception as exc:  # noqa: BLE001
            stats.notes.append(f"seed {seed}: witness: {exc}")
            found = None
        w = None if found is None or found.search is None else found.search.witness
        if w is not None:
            stats.witnesses += 1
            judge(w.executed_insns, "witness")
            highest = max(highest, w.executed_insns)
    if highest and hi is not None:
        stats.tightness.append((seed, hi / highest, prog.features))


def run_seeds(seeds: range, runs: int, kernel_runs: int, witness_s: float, workdir: Path,
              progress: Callable[[int, Stats], None] | None = None,
              idioms: bool = True) -> Stats:
    stats = Stats()
    libbpf = Libbpf()
    for n, seed in enumerate(seeds):
        check_program(seed, runs, kernel_runs, witness_s, workdir, stats, libbpf, idioms)
        if progress is not None:
            progress(n + 1, stats)
    return stats


def usable() -> tuple[bool, str]:
    """Whether this machine can run the C fuzzer (clang, libbpf, bpf())."""
    if find_clang() is None:
        return False, "clang is needed"
    try:
        Libbpf()
    except OSError as exc:
        return False, f"libbpf.so cannot be loaded: {exc}"
    ok, why = sc.bpf_usable()
    return ok, why

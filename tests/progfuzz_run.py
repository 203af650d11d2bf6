"""The program-level differential fuzzer: generate, let the kernel judge, analyse,
execute, compare, minimise (issue 16, "Hunt the rest").

For each seed: :mod:`progfuzz_gen` draws a program, :mod:`progfuzz_elf` wraps it
in an object file, the kernel verifier loads it (a rejected program does not
count), bpflint's public API analyses the object file, and the reference
interpreter runs it on many inputs: random packets, boundary lengths and bytes,
and inputs built from the program's own compare constants so both sides of its
branches run. A sample of the inputs also runs in the kernel (BPF_PROG_TEST_RUN
on a freshly loaded copy, so maps start from the same contents): return value
and packet out must match the interpreter's. Every executed count must lie in
``[insns.min, insns.max]``; a violation is minimised by dropping statements
while the program still loads and still violates, and can be saved as a
regression case that ``tests/test_progfuzz.py`` replays.
"""

from __future__ import annotations

import errno
import json
import random
import re
import statistics
import struct
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from progfuzz_elf import build_object
from progfuzz_gen import (
    DATA_BYTES,
    MAPS,
    PROG_ARRAY,
    PROG_ARRAY_SLOTS,
    RODATA_BYTES,
    TC,
    XDP,
    BpfLoop,
    Call,
    Features,
    ForEach,
    GlobalRead,
    If,
    Loop,
    MapLookup,
    PktGuard,
    Program,
    Stmt,
    compile_program,
    compile_targets,
    constants,
    generate,
)

from bpflint import api
from bpflint.errors import BpfLintError
from bpflint.interp.refinterp import Input, InterpError, Interpreter, World
from bpflint.kernel import loader
from bpflint.kernel import syscall as sc
from bpflint.obj.model import BpfObject
from bpflint.obj.reader import parse_object
from bpflint.results import ProgramResult

PROG_NAME = "prog"
XDP_CTX_BYTES = 24  # struct xdp_md
SKB_CTX_BYTES = 192  # struct __sk_buff
SKB_CTX_IN_BYTES = 68  # through cb[4]: what BPF_PROG_TEST_RUN lets a test set
LOOPBACK_IFINDEX = 1  # XDP test runs arrive on the loopback device's queue 0
MIN_PACKET = 14  # ETH_HLEN: the kernel refuses shorter test packets
MASK32 = (1 << 32) - 1


@dataclass(frozen=True)
class RunInput:
    """One run: the packet, the context fields a test may set, the loader's
    configuration (cfg map values), .data as user space left it, .rodata as the
    loader set it (None: the object's default)."""

    packet: bytes
    mark: int = 0
    priority: int = 0
    cb: tuple[int, int] = (0, 0)
    cfg: tuple[int, ...] = (0, 0, 0, 0)
    data: bytes = bytes(DATA_BYTES)
    rodata: bytes | None = None

    def to_json(self) -> dict[str, object]:
        return {"packet": self.packet.hex(), "mark": self.mark, "priority": self.priority,
                "cb": list(self.cb), "cfg": list(self.cfg), "data": self.data.hex(),
                "rodata": None if self.rodata is None else self.rodata.hex()}

    @staticmethod
    def from_json(d: dict[str, object]) -> RunInput:
        rodata = d.get("rodata")
        cb = d["cb"]
        cfg = d["cfg"]
        assert isinstance(cb, list) and isinstance(cfg, list)
        return RunInput(bytes.fromhex(str(d["packet"])), int(str(d["mark"])),
                        int(str(d["priority"])), (int(cb[0]), int(cb[1])),
                        tuple(int(v) for v in cfg), bytes.fromhex(str(d["data"])),
                        None if rodata is None else bytes.fromhex(str(rodata)))


@dataclass(frozen=True)
class Outcome:
    count: int
    r0: int
    packet_out: bytes


# -- objects ----------------------------------------------------------------------------
def object_bytes(prog: Program, feats: Features, rodata: bytes | None = None) -> bytes:
    funcs = compile_program(prog, feats)
    return build_object(prog.prog_type, funcs, default_data(), rodata or default_rodata(),
                        with_btf=feats.rodata_globals,
                        targets=compile_targets(prog, feats),
                        prog_array=PROG_ARRAY if feats.tail_calls else "",
                        prog_array_slots=PROG_ARRAY_SLOTS)


def default_data() -> bytes:
    return bytes(range(1, DATA_BYTES + 1))


def default_rodata() -> bytes:
    return bytes(range(0x40, 0x40 + RODATA_BYTES))


def analyse(raw: bytes, workdir: Path) -> ProgramResult:
    """bpflint's public API on the object file, as a user would run it."""
    path = workdir / "prog.o"
    path.write_bytes(raw)
    report = api.analyze_paths([str(path)], None)
    if report.errors:
        raise BpfLintError(f"analysis failed: {report.errors[0].message}")
    (result,) = [p for p in report.programs if p.name == PROG_NAME]
    return result


def _with_data(obj: BpfObject, data: bytes) -> BpfObject:
    maps = dict(obj.maps)
    if ".data" in maps:
        maps[".data"] = replace(maps[".data"], data=data)
    return replace(obj, maps=maps)


def cfg_entries(inp: RunInput) -> tuple[tuple[str, bytes, bytes], ...]:
    return tuple(("cfg", struct.pack("<I", i), struct.pack("<Q", v & (2**64 - 1)))
                 for i, v in enumerate(inp.cfg))


# -- execution ----------------------------------------------------------------------------
def interpret(obj: BpfObject, prog_type: str, inp: RunInput) -> Outcome:
    """Run in the reference interpreter (``obj`` already carries inp.rodata)."""
    world = World(lookup_hits=(False,), map_contents=cfg_entries(inp))
    if prog_type == XDP:
        ctx = struct.pack("<IIIIII", 0, 0, 0, LOOPBACK_IFINDEX, 0, 0)
    else:
        ctx = bytearray(SKB_CTX_BYTES)
        struct.pack_into("<I", ctx, 0, len(inp.packet))
        struct.pack_into("<I", ctx, 8, inp.mark)
        struct.pack_into("<I", ctx, 32, inp.priority)
        struct.pack_into("<II", ctx, 48, *inp.cb)
        ctx = bytes(ctx)
    interp = Interpreter(_with_data(obj, inp.data), Input(ctx=ctx, packet=inp.packet,
                                                          world=world))
    program = interp.program_named(PROG_NAME)
    r0 = interp.run_program(program, interp.setup_ctx(program))
    return Outcome(interp.count, r0, interp.read_bytes(interp.packet, len(inp.packet)))


@dataclass
class Loaded:
    """The program in the kernel, with its tail-call targets loaded and put in the
    prog array's slots as the object's static initialiser says."""

    main: loader.LoadedProgram
    targets: list[loader.LoadedProgram]

    def close(self) -> None:
        for got in (self.main, *self.targets):
            got.close()


def try_load(obj: BpfObject) -> Loaded | str:
    """The loaded program if the kernel verifier accepts it (and its tail-call
    targets), else the reason."""
    programs = {p.name: p for p in obj.programs}
    try:
        main = loader.load_program(obj, programs[PROG_NAME], log_level=0)
    except sc.BpfSyscallError as exc:
        if exc.errno == errno.E2BIG:  # the verifier gave up: loading again takes as long
            return "E2BIG: the verifier's complexity limit"
        try:  # again with the verifier's log, for its reason
            loader.load_program(obj, programs[PROG_NAME], log_level=1).close()
        except sc.BpfSyscallError as exc:
            return str(exc).split(": ", 1)[-1]
        return "rejected once, accepted on a second load"
    loaded = Loaded(main, [])
    try:
        mdef = obj.maps.get(PROG_ARRAY)
        used = mdef is not None and PROG_ARRAY in main.map_fds
        for slot, name in (mdef.prog_slots if mdef is not None and used else ()):
            target = loader.load_program(obj, programs[name], log_level=0)
            loaded.targets.append(target)
            sc.map_update(main.map_fds[PROG_ARRAY], struct.pack("<I", slot),
                          struct.pack("<I", target.fd))
    except sc.BpfSyscallError as exc:
        loaded.close()
        return str(exc)
    except BaseException:
        loaded.close()
        raise
    return loaded


def loads(obj: BpfObject) -> bool:
    got = try_load(obj)
    if isinstance(got, str):
        return False
    got.close()
    return True


def kernel_run(obj: BpfObject, prog_type: str, inp: RunInput,
               loaded: Loaded | None = None) -> tuple[int, bytes]:
    """Test-run in the kernel: on ``loaded`` if given (its maps untouched since it was
    loaded), else on a fresh copy, so maps start from the same contents as the
    interpreter's; the input's map contents are set first."""
    if loaded is None:
        fresh = try_load(obj)
        if isinstance(fresh, str):
            raise BpfLintError(fresh)
        try:
            return kernel_run(obj, prog_type, inp, fresh)
        finally:
            fresh.close()
    map_fds = loaded.main.map_fds
    if "cfg" in map_fds:
        for _name, key, value in cfg_entries(inp):
            sc.map_update(map_fds["cfg"], key, value)
    if ".data" in map_fds:
        sc.map_update(map_fds[".data"], bytes(4), inp.data)
    ctx = b""
    if prog_type == TC:
        buf = bytearray(SKB_CTX_IN_BYTES)
        struct.pack_into("<I", buf, 8, inp.mark)
        struct.pack_into("<I", buf, 32, inp.priority)
        struct.pack_into("<II", buf, 48, *inp.cb)
        ctx = bytes(buf)
    got = sc.prog_test_run(loaded.main.fd, data=inp.packet, ctx=ctx,
                           data_out_size=len(inp.packet) + 64)
    return got.retval, got.data_out


# -- inputs -------------------------------------------------------------------------------
def make_inputs(rng: random.Random, prog: Program, n: int, feats: Features) -> list[RunInput]:
    consts = constants(prog)
    pool = consts + [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0xFFFFFFFF, -1]
    out: list[RunInput] = []
    for index in range(n):
        kind = index % 4
        if kind == 0:  # random
            length = rng.randint(MIN_PACKET, 160)
            packet = bytes(rng.getrandbits(8) for _ in range(length))
        elif kind == 1:  # boundary lengths and bytes
            length = rng.choice([c for c in consts if MIN_PACKET <= c <= 256]
                                + [MIN_PACKET, MIN_PACKET + 1, 64, 128])
            packet = bytes([rng.choice((0, 0xFF, 0x80, 0x7F))]) * length
        else:  # the program's constants planted in the packet
            length = rng.choice([c for c in consts if MIN_PACKET <= c <= 256]
                                + [rng.randint(MIN_PACKET, 128)])
            buf = bytearray(rng.getrandbits(8) for _ in range(length))
            for _ in range(rng.randint(1, 8)):
                value = rng.choice(pool) & (2**64 - 1)
                width = rng.choice((1, 2, 4, 8))
                order = rng.choice(("little", "big"))
                if width <= length:
                    at = rng.randint(0, length - width)
                    buf[at:at + width] = (value & ((1 << 8 * width) - 1)).to_bytes(width,
                                                                                    order)
            packet = bytes(buf)

        def scalar() -> int:
            if rng.random() < 0.6:
                return rng.choice(pool) & MASK32
            return rng.getrandbits(32) if rng.random() < 0.5 else rng.randint(0, 64)

        cfg = tuple((rng.choice(pool) if rng.random() < 0.6 else rng.getrandbits(64))
                    & (2**64 - 1) for _ in range(MAPS["cfg"][3]))
        data = bytes(rng.getrandbits(8) for _ in range(DATA_BYTES)) if rng.random() < 0.7 \
            else default_data()
        rodata = None
        if feats.rodata_globals and rng.random() < 0.7:
            rodata = bytes(rng.choice((0, 0xFF, rng.getrandbits(8))) for _ in range(RODATA_BYTES))
        out.append(RunInput(packet, scalar(), scalar(), (scalar(), scalar()), cfg, data, rodata))
    return out


# -- checking -------------------------------------------------------------------------------
@dataclass
class Violation:
    seed: int
    side: str  # "min" or "max"
    count: int
    bound: int
    prog: Program
    inp: RunInput


@dataclass
class Stats:
    generated: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    executions: int = 0
    executed_insns: int = 0
    interp_errors: int = 0
    comparisons: int = 0
    reloads_refused: int = 0  # a second load the verifier refused (its 6.18 EFAULT bug)
    mismatches: int = 0
    violations_min: int = 0
    violations_max: int = 0
    unbounded: int = 0
    analysis_errors: int = 0
    tightness: list[float] = field(default_factory=list)
    mismatch_notes: list[str] = field(default_factory=list)
    violation_list: list[Violation] = field(default_factory=list)

    def merge(self, other: Stats) -> None:
        for name in ("generated", "accepted", "executions", "executed_insns", "interp_errors",
                     "comparisons", "reloads_refused", "mismatches", "violations_min",
                     "violations_max", "unbounded", "analysis_errors"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, n in other.rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + n
        self.tightness += other.tightness
        self.mismatch_notes += other.mismatch_notes
        self.violation_list += other.violation_list

    def summary(self) -> dict[str, object]:
        tight = sorted(self.tightness)

        def pct(q: float) -> float | None:
            return round(tight[min(len(tight) - 1, int(q * len(tight)))], 3) if tight else None

        return {
            "generated": self.generated, "accepted": self.accepted,
            "executions": self.executions, "executed_insns": self.executed_insns,
            "interpreter_errors": self.interp_errors,
            "comparisons": self.comparisons, "reloads_refused": self.reloads_refused,
            "mismatches": self.mismatches,
            "violations_min": self.violations_min, "violations_max": self.violations_max,
            "violating_programs": len({v.seed for v in self.violation_list}),
            "unbounded": self.unbounded, "analysis_errors": self.analysis_errors,
            "tightness_median": round(statistics.median(tight), 3) if tight else None,
            "tightness_p90": pct(0.9), "tightness_max": round(tight[-1], 3) if tight else None,
        }


def _object_for(prog: Program, feats: Features, inp: RunInput | None,
                cache: dict[bytes | None, BpfObject]) -> BpfObject:
    key = None if inp is None else inp.rodata
    if key not in cache:
        cache[key] = parse_object("prog.o", object_bytes(prog, feats, key))
    return cache[key]


def check_program(seed: int, feats: Features, runs: int, kernel_runs: int,
                  workdir: Path, stats: Stats) -> None:
    """Generate, judge, analyse and run one program; add what happened to ``stats``."""
    prog = generate(seed, feats)
    stats.generated += 1
    raw = object_bytes(prog, feats)
    objs: dict[bytes | None, BpfObject] = {None: parse_object("prog.o", raw)}
    first = try_load(objs[None])
    if isinstance(first, str):
        key = re.sub(r"\d+", "N", first)[:70]  # one line per kind of reason
        stats.rejected[key] = stats.rejected.get(key, 0) + 1
        return
    stats.accepted += 1
    try:
        _check_accepted(seed, prog, feats, raw, objs, first, runs, kernel_runs, workdir, stats)
    finally:
        first.close()


def _check_accepted(seed: int, prog: Program, feats: Features, raw: bytes,
                    objs: dict[bytes | None, BpfObject], first: Loaded,
                    runs: int, kernel_runs: int, workdir: Path, stats: Stats) -> None:
    try:
        result = analyse(raw, workdir)
    except BpfLintError:
        stats.analysis_errors += 1
        return
    if not result.bounded or result.insns_max is None or result.insns_min is None:
        stats.unbounded += 1
    rng = random.Random(seed ^ 0x5EED)
    inputs = make_inputs(rng, prog, runs, feats)
    highest = 0
    stats_first = [True]
    for index, inp in enumerate(inputs):
        obj = _object_for(prog, feats, inp, objs)
        try:
            got = interpret(obj, prog.prog_type, inp)
        except InterpError as exc:
            stats.interp_errors += 1
            stats.mismatch_notes.append(f"seed {seed}: interpreter: {exc}")
            continue
        stats.executions += 1
        stats.executed_insns += got.count
        highest = max(highest, got.count)
        if result.insns_min is not None and got.count < result.insns_min:
            stats.violations_min += 1
            stats.violation_list.append(Violation(seed, "min", got.count, result.insns_min,
                                                  prog, inp))
        if result.insns_max is not None and got.count > result.insns_max:
            stats.violations_max += 1
            stats.violation_list.append(Violation(seed, "max", got.count, result.insns_max,
                                                  prog, inp))
        if index < kernel_runs:
            # the first comparison runs on the copy the verifier just accepted (its
            # maps are fresh); later ones load again unless the input changes .rodata
            fresh = first if stats_first[0] and inp.rodata is None else None
            stats_first[0] = False
            try:
                retval, packet_out = kernel_run(obj, prog.prog_type, inp, fresh)
            except BpfLintError as exc:
                # Linux 6.18's verifier refuses some loads of bpf_loop(0, ...) in a
                # subprogram now and then ("No program to jit", EFAULT): no comparison
                stats.reloads_refused += 1
                stats.mismatch_notes.append(f"seed {seed} input {index}: reload refused: {exc}")
                continue
            stats.comparisons += 1
            if retval != got.r0 & MASK32 or packet_out != got.packet_out:
                stats.mismatches += 1
                stats.mismatch_notes.append(
                    f"seed {seed} input {index}: kernel r0 {retval} out {packet_out.hex()}, "
                    f"interpreter r0 {got.r0 & MASK32} out {got.packet_out.hex()}")
    if highest and result.insns_max is not None:
        stats.tightness.append(result.insns_max / highest)


def run_seeds(seeds: range, feats: Features, runs: int, kernel_runs: int,
              progress: object = None) -> Stats:
    stats = Stats()
    with tempfile.TemporaryDirectory(prefix="progfuzz-") as tmp:
        for n, seed in enumerate(seeds):
            check_program(seed, feats, runs, kernel_runs, Path(tmp), stats)
            if callable(progress):
                progress(n + 1, stats)
    return stats


# -- minimisation -----------------------------------------------------------------------------
def _bodies(stmt: Stmt) -> list[tuple[str, tuple[Stmt, ...]]]:
    if isinstance(stmt, If):
        return [("body", stmt.body), ("other", stmt.other)]
    if isinstance(stmt, (PktGuard, Loop, MapLookup)):
        return [("body", stmt.body)]
    return []


def _drop_variants(stmts: tuple[Stmt, ...]) -> list[tuple[Stmt, ...]]:
    """Every block with one statement removed, or one nested statement removed."""
    out: list[tuple[Stmt, ...]] = []
    for i, stmt in enumerate(stmts):
        out.append(stmts[:i] + stmts[i + 1:])
        for name, body in _bodies(stmt):
            for smaller in _drop_variants(body):
                out.append(stmts[:i] + (replace(stmt, **{name: smaller}),) + stmts[i + 1:])
    return out


def _prune(prog: Program) -> Program:
    """Drop functions no statement names any more."""
    named: set[str] = set()

    def walk(stmts: tuple[Stmt, ...]) -> None:
        for s in stmts:
            if isinstance(s, (Call, BpfLoop, ForEach)):
                named.add(s.func)
            for _name, body in _bodies(s):
                walk(body)

    changed = True
    funcs = prog.funcs
    while changed:
        named.clear()
        for f in funcs:
            walk(f.body)
        kept = (funcs[0],) + tuple(f for f in funcs[1:] if f.name in named)
        changed = len(kept) != len(funcs)
        funcs = kept
    return prog.with_funcs(funcs)


def statements(prog: Program) -> int:
    """Statements in all functions, nested ones included (a size for the minimiser)."""
    def count(stmts: tuple[Stmt, ...]) -> int:
        return sum(1 + sum(count(body) for _name, body in _bodies(s)) for s in stmts)

    return sum(count(f.body) for f in (*prog.funcs, *prog.targets))


def violates(prog: Program, feats: Features, inp: RunInput, workdir: Path) -> int | None:
    """The executed count if ``prog`` loads and its count on ``inp`` is outside the
    analysed range, else None."""
    raw = object_bytes(prog, feats)
    try:
        obj = parse_object("prog.o", raw)
        if not loads(obj):
            return None
        result = analyse(raw, workdir)
        run_obj = obj if inp.rodata is None else parse_object(
            "prog.o", object_bytes(prog, feats, inp.rodata))
        got = interpret(run_obj, prog.prog_type, inp)
    except (BpfLintError, InterpError, ValueError):
        return None
    lo, hi = result.insns_min, result.insns_max
    if (lo is not None and got.count < lo) or (hi is not None and got.count > hi):
        return got.count
    return None


def minimise(prog: Program, feats: Features, inp: RunInput, workdir: Path) -> Program:
    """Greedy delta debugging: drop statements (anywhere, in every function) while the
    program still loads and still violates on ``inp``."""
    current = _prune(prog)
    progress = True
    while progress:
        progress = False
        for fi, func in enumerate(current.funcs):
            for body in _drop_variants(func.body):
                funcs = list(current.funcs)
                funcs[fi] = replace(func, body=body)
                candidate = _prune(current.with_funcs(tuple(funcs)))
                if violates(candidate, feats, inp, workdir) is not None:
                    current = candidate
                    progress = True
                    break
            if progress:
                break
    return current


def holes_used(prog: Program, feats: Features) -> list[str]:
    """The off-by-default generator flags a (minimised) program still relies on."""
    used: set[str] = set()

    def walk(stmts: tuple[Stmt, ...]) -> None:
        for s in stmts:
            if isinstance(s, GlobalRead) and s.section == ".rodata":
                used.add("rodata_globals")
            for _name, body in _bodies(s):
                walk(body)

    for func in prog.funcs:
        walk(func.body)
        if feats.callback_writes and func.kind != "sub" and func.kind != "main" \
                and func.writes_ptr is not None:
            used.add("callback_writes")
    return sorted(used)


def save_case(path: Path, prog: Program, feats: Features, inp: RunInput, seed: int,
              workdir: Path) -> None:
    """A regression case: the object (hex), the bytecode per function (hex), the input,
    and what was seen when it was found."""
    raw = object_bytes(prog, feats)
    result = analyse(raw, workdir)
    run_obj = parse_object("prog.o", raw if inp.rodata is None
                           else object_bytes(prog, feats, inp.rodata))
    got = interpret(run_obj, prog.prog_type, inp)
    funcs = compile_program(prog, feats)
    case = {
        "seed": seed, "prog_type": prog.prog_type,
        # a case that needs an off-by-default flag shows a hole being fixed elsewhere
        "known_holes": holes_used(prog, feats),
        "found": {"count": got.count, "insns_min": result.insns_min,
                  "insns_max": result.insns_max},
        "functions": {f.name: f.code.hex() for f in funcs},
        "object": raw.hex(),
        "rodata_run": None if inp.rodata is None else object_bytes(prog, feats,
                                                                   inp.rodata).hex(),
        "input": inp.to_json(),
        "program": repr(prog),
    }
    path.write_text(json.dumps(case, indent=1) + "\n")

"""Search for a worst-case witness of one program.

The target is the engine's bound (``insns.max``, or ``ns.max`` with ``by="ns"``) and
the lines of its worst path. With z3 installed the search is concolic: run an input,
collect the conditions of its input-dependent branches, and for each branch solve the
conditions before it plus its negation (generational search, dearest run first); the
new inputs run in turn. Without z3, or once the solver has nothing left to try, inputs
are mutated at random and kept when they run longer or reach a branch direction not
seen before. Every figure reported is an executed count, never a solver's claim.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from dataclasses import dataclass, field, replace
from typing import Any

from bpflint.cost.model import CostTable
from bpflint.interp.refinterp import (
    DEFAULT_STEP_CAP,
    Input,
    InterpError,
    StepCapExceeded,
)
from bpflint.obj.model import BpfObject, Program
from bpflint.results import ProgramResult
from bpflint.witness.format import Witness
from bpflint.witness.seeds import MAX_PACKET_BYTES, ctx_for, is_packet_type, seeds
from bpflint.witness.trace import Line, TracingInterpreter

DEFAULT_SECONDS = 10.0
SOLVER_TIMEOUT_MS = 2000
MAX_FLIPS_PER_SITE = 256  # one branch's occurrences negated at most this often (loops)


def z3_available() -> bool:
    try:
        import z3  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class Run:
    input: Input
    count: int
    ns: float
    retval: int
    lines: dict[Line, int]  # instructions per line
    branches: set[tuple[int, int, bool]]
    path: list[Any] = field(default_factory=list)  # concolic.Branch
    uses: dict[str, int] = field(default_factory=dict)
    hit_keys: dict[tuple[str, bytes], bytes] = field(default_factory=dict)
    error: str = ""
    concretized: bool = False
    unmodelled: frozenset[str] = frozenset()  # helpers run as a chosen scalar


@dataclass(frozen=True)
class SearchResult:
    witness: Witness | None
    runs: int
    method: str  # "z3", "mutation" or "z3+mutation"
    exhaustive: bool  # every feasible path of the model was run
    note: str = ""  # why reached < 1, or why there is no witness
    priced_ns: float | None = None  # the witness's run priced with the cost table
    # the witness's run: instructions it executed per source line (file, line, insns)
    lines: tuple[tuple[str, int, int], ...] = ()


class _Search:
    def __init__(self, obj: BpfObject, program: Program, result: ProgramResult, by: str,
                 table: CostTable | None, seconds: float) -> None:
        self.obj, self.program, self.result, self.by = obj, program, result, by
        self.table = table if by == "ns" else None
        self.deadline = time.monotonic() + seconds
        # by time, runs are ranked by their price in the cost table, each instruction and
        # helper at its dearest: a ranking, not comparable with ns.max (the engine knows
        # map types and sizes), so the search runs its whole time
        self.target: float = math.inf if by == "ns" else float(result.insns_max or 0)
        cap = result.insns_max
        self.step_cap = DEFAULT_STEP_CAP if cap is None else min(DEFAULT_STEP_CAP, cap + 1)
        path = getattr(result, "worst_path_ns", ()) if by == "ns" else ()
        self.worst_insns: dict[Line, int] = {}  # line -> instructions on the worst path
        for lc in path or result.worst_path:
            key = (lc.file, lc.line)
            self.worst_insns[key] = self.worst_insns.get(key, 0) + lc.insns
        self.worst_lines: set[Line] = set(self.worst_insns)
        self.order = {line: i for i, line in enumerate(self.worst_insns)}  # first visit
        self.best: Run | None = None
        self.runs = 0
        self.errors: list[str] = []
        self.seen_branches: set[tuple[int, int, bool]] = set()
        self.over: Run | None = None  # a run above the bound: a soundness bug

    def short_lines(self, run: Run) -> set[Line]:
        """Lines the worst path runs more instructions on than this run did (a missed
        line, or a loop that should go round once more)."""
        return {line for line, insns in self.worst_insns.items()
                if run.lines.get(line, 0) < insns}

    def depth(self, run: Run) -> int:
        """How far along the worst path (its lines in the order it first visits them)
        the run gets before it misses a line: the search goes on from the runs that
        follow the worst path longest, as a sequence, before it tries the others."""
        missed = [self.order[line] for line in self.worst_lines - run.lines.keys()]
        return min(missed) if missed else len(self.order)

    def score(self, run: Run) -> float:
        return run.ns if self.by == "ns" else float(run.count)

    def promise(self, run: Run) -> float:
        """Search order: the run's own score plus a share for every line of the worst
        path it visits (a run that takes a detour of the worst path may run shorter
        than one that does not, yet lead to it)."""
        scale = (self.result.ns_max if self.by == "ns" else self.result.insns_max) or 0.0
        per_line = scale / max(1, len(self.worst_lines))
        return self.score(run) + per_line * len(run.lines.keys() & self.worst_lines)

    def done(self) -> bool:
        return (self.best is not None and self.target > 0 and
                self.score(self.best) >= self.target) or time.monotonic() > self.deadline

    def note_run(self, run: Run) -> None:
        self.runs += 1
        if run.error:
            self.errors.append(run.error)
            return
        if self.result.insns_max is not None and run.count > self.result.insns_max:
            self.over = run
        if self.best is None or (self.score(run), len(run.lines.keys() & self.worst_lines)) > \
                (self.score(self.best), len(self.best.lines.keys() & self.worst_lines)):
            self.best = run

    def run_plain(self, inp: Input) -> Run:
        interp = TracingInterpreter(self.obj, inp, self.step_cap, self.table)
        return self._execute(interp, inp)

    def _execute(self, interp: TracingInterpreter, inp: Input) -> Run:
        try:
            ctx = interp.setup_ctx(self.program)
            r0 = interp.run_program(self.program, ctx)
            error = ""
        except StepCapExceeded:
            # with a bound the cap is insns.max + 1: the run passed the bound (note_run
            # reports it); without one, the run is abandoned
            r0, error = 0, "" if self.result.insns_max is not None else \
                f"more than {self.step_cap} instructions"
        except (InterpError, RecursionError) as exc:
            r0, error = 0, str(exc)
        run = Run(inp, interp.count, interp.ns, r0, interp.lines, interp.branches,
                  hit_keys=interp.hit_keys, error=error,
                  unmodelled=frozenset(interp.unmodelled))
        path = getattr(interp, "path", None)
        if path is not None:
            run.path = path
            run.uses = interp.uses  # type: ignore[attr-defined]
            run.concretized = interp.concretized  # type: ignore[attr-defined]
        return run


def find_witness(obj: BpfObject, program: Program, result: ProgramResult, by: str = "insns",
                 table: CostTable | None = None, seconds: float = DEFAULT_SECONDS,
                 use_solver: bool = True) -> SearchResult:
    """The input that runs longest among those tried, executed and counted."""
    s = _Search(obj, program, result, by, table, seconds)
    methods = []
    exhaustive = False
    unsat: list[tuple[Run, int]] = []
    if use_solver and z3_available():
        methods.append("z3")
        exhaustive, unsat = _concolic(s)
    if not s.done() and not exhaustive:
        methods.append("mutation")
        _mutate(s)
    best = s.best
    if best is None:
        reason = s.errors[0] if s.errors else "no run completed"
        return SearchResult(None, s.runs, "+".join(methods), False,
                            f"the interpreter cannot run it: {reason}")
    best = _per_key(s, best)
    witness = Witness(obj.path, program.name, program.prog_type, by, best.input, best.count,
                      result.insns_max, best.retval & 0xFFFF_FFFF,
                      tuple((m, k, v) for (m, k), v in best.hit_keys.items()))
    note = _note(s, best, exhaustive, unsat)
    if best.unmodelled:
        note += ("; " if note else "") + "helpers without a model, run as a chosen scalar " \
            "with no effect: " + ", ".join(sorted(best.unmodelled))
    return SearchResult(witness, s.runs, "+".join(methods), exhaustive, note,
                        best.ns if by == "ns" else None,
                        tuple((f, n, c) for (f, n), c in sorted(best.lines.items())))


def _per_key(s: _Search, best: Run) -> Run:
    """The best run's input with its maps written out per key: every element its
    lookups found (World.map_contents) and every other lookup a miss, which is what a
    kernel map can hold. Kept when it executes the same count and result (the ordinal
    form of the search stays otherwise: a deleted key looked up again, ...)."""
    contents = tuple((m, k, v) for (m, k), v in best.hit_keys.items())
    world = replace(best.input.world, map_contents=contents, values=(), lookup_hits=(False,))
    if world == best.input.world:
        return best
    run = s.run_plain(replace(best.input, world=world))
    if run.error or run.count != best.count or run.retval != best.retval:
        return best
    return run


def _note(s: _Search, best: Run, exhaustive: bool, unsat: list[tuple[Run, int]]) -> str:
    if s.over is not None:
        return (f"SOUNDNESS: an input executes {s.over.count} instructions, above "
                f"insns.max {s.result.insns_max}")
    if s.result.insns_max is not None and best.count >= s.result.insns_max:
        return ""
    if exhaustive:
        why = _contradiction(s, best, unsat)
        return ("the worst path is infeasible: " + why if why else
                f"the worst path is infeasible: all {s.runs} feasible paths were run and "
                f"the dearest executes {best.count} instructions")
    missed = sorted(s.worst_lines - best.lines.keys(), key=lambda line: s.order[line])
    names = [f"{m[0].rsplit('/', 1)[-1]}:{m[1]}" for m in missed[:6]]
    where = f"; worst-path lines never reached: {', '.join(names)}" if missed else ""
    failed = f"; {len(s.errors)} runs stopped in the interpreter ({s.errors[0]})" \
        if s.errors else ""
    return f"search stopped after {s.runs} runs without reaching the bound{where}{failed}"


def _contradiction(s: _Search, best: Run, unsat: list[tuple[Run, int]]) -> str:
    """'branch at line L contradicts line M': an unsatisfiable flip (of any run) toward
    a worst-path line the best run missed, with the earlier branch its unsat core names."""
    import z3

    missed = s.short_lines(best)
    for run, i in unsat:
        br = run.path[i]
        # toward a line the worst path runs more of, or on one (its other way may be
        # the rest of that line's instructions)
        if br.other_line is None or (br.other_line not in missed and br.line not in missed):
            continue
        solver = z3.Solver()
        solver.set(timeout=SOLVER_TIMEOUT_MS)
        labels = {}
        for j, prev in enumerate(run.path[:i]):
            label = z3.Bool(f"b{j}")
            labels[str(label)] = prev
            solver.assert_and_track(prev.cond, label)
        solver.add(z3.Not(br.cond))
        if solver.check() != z3.unsat:
            continue
        core = [labels[str(c)] for c in solver.unsat_core() if str(c) in labels]
        at = f"line {br.line[1]}" if br.line else f"pc {br.pc}"
        if not core:
            return (f"the branch at {at} cannot lead to line {br.other_line[1]} on any input")
        other = core[-1]
        if other.pc == br.pc:
            with_ = "the same branch taken the other way earlier in the run (a call or " \
                    "loop round on the same input)"
        else:
            with_ = f"the branch at line {other.line[1]}" if other.line else \
                f"the branch at pc {other.pc}"
        return f"the branch at {at} toward line {br.other_line[1]} contradicts {with_}"
    return ""


class _Queues:
    """Runs waiting to have their branches negated, in two orders taken in turn (by
    depth along the worst path, by promise); each run is taken once."""

    def __init__(self) -> None:
        self._by_depth: list[tuple[int, int, float, int]] = []
        self._by_promise: list[tuple[int, float, int]] = []
        self._entries: dict[int, tuple[int, int, Run]] = {}  # order -> phase, bound, run
        self._turn = 0

    def __bool__(self) -> bool:
        return bool(self._entries)

    def push(self, phase: int, depth: int, promise: float, order: int, bound: int,
             run: Run) -> None:
        heapq.heappush(self._by_depth, (phase, -depth, -promise, order))
        heapq.heappush(self._by_promise, (phase, -promise, order))
        self._entries[order] = (phase, bound, run)

    def pop(self) -> tuple[int, int, Run]:
        self._turn ^= 1
        while True:
            if self._turn:
                order = heapq.heappop(self._by_depth)[-1]
            else:
                order = heapq.heappop(self._by_promise)[-1]
            entry = self._entries.pop(order, None)
            if entry is not None:
                return entry


def _concolic(s: _Search) -> tuple[bool, list[tuple[Run, int]]]:
    import z3

    from bpflint.witness.concolic import ConcolicInterpreter, Symbols, lines_by_pc

    syms = Symbols()
    line_of = lines_by_pc(s.obj)

    def execute(inp: Input) -> Run:
        interp = ConcolicInterpreter(s.obj, inp, syms, s.step_cap, line_of, s.table)
        run = s._execute(interp, inp)
        s.note_run(run)
        return run

    # (phase, key, order, bound, run): phase 0 negates only the branches whose other
    # way leads to a line the worst path runs more of (those this run missed first);
    # phase 1, once no phase-0 work is left, negates the rest. Within a phase the two
    # queues take turns: one goes on from the runs that follow the worst path's line
    # sequence furthest (a compiler may hoist part of an early exit's line into the
    # path, which misleads it), the other from the most promising run.
    heap = _Queues()
    order = 0
    complete = True
    for inp in seeds(s.program.prog_type):
        run = execute(inp)
        complete = complete and not run.concretized
        if not run.error:
            heap.push(0, s.depth(run), s.promise(run), order, 0, run)
            order += 1
    tried: set[tuple[int, int, bool]] = set()
    paths: set[int] = set()  # signatures of the paths whose guided branches were negated
    per_site: dict[tuple[int, bool], int] = {}
    unsat: list[tuple[Run, int]] = []
    while heap and not s.done():
        phase, bound, run = heap.pop()
        # lines the worst path runs more often than this run did (a missed line, or
        # a loop that should go round once more)
        # the lines the run misses; once it visits them all, the lines it runs less
        # of than the worst path (a loop round short). Aiming at every short line
        # from the start spreads the guided flips too thin (xdp_firewall 0.74 -> 0.32)
        missing = (s.worst_lines - run.lines.keys()) or s.short_lines(run)
        sig = hash(tuple((br.pc, br.taken) for br in run.path))
        if phase == 0 and sig in paths:
            continue
        paths.add(sig)
        guided = [br.other_line in missing for br in run.path]
        solver = z3.Solver()
        solver.set(timeout=SOLVER_TIMEOUT_MS)
        solver.add(*syms.domain)
        prefix = 0
        for i, br in enumerate(run.path):
            if s.done():
                complete = False
                break
            # phase 0 negates guided branches anywhere on a new path (a branch before
            # the parent's flip may now lead on to more of the worst path); phase 1 the
            # rest, after the parent's flip only (generational search)
            if br.flippable and (guided[i] if phase == 0 else
                                 (i >= bound and not guided[i])):
                key = (prefix, br.pc, not br.taken) if phase else (sig, i, br.taken)
                site = (br.pc, not br.taken)
                if key not in tried:
                    tried.add(key)
                    if per_site.get(site, 0) >= MAX_FLIPS_PER_SITE:
                        complete = False
                    else:
                        per_site[site] = per_site.get(site, 0) + 1
                        solver.push()
                        solver.add(z3.Not(br.cond))
                        # a short packet first: one the size of the parent's, or a
                        # little longer (a witness is read by people, sent by test_run)
                        short = z3.ULE(syms.plen, max(64, len(run.input.packet)) + 64)
                        verdict = solver.check(short)
                        if verdict != z3.sat:
                            verdict = solver.check()
                        if verdict == z3.sat:
                            child_input = syms.input_from(solver.model(), run.input,
                                                          s.program.prog_type, run.uses)
                            child = execute(child_input)
                            if child.concretized:
                                complete = False
                            if not child.error:
                                heap.push(0, s.depth(child), s.promise(child), order,
                                          i + 1, child)
                                order += 1
                            else:
                                complete = False
                        elif verdict == z3.unsat:
                            unsat.append((run, i))
                        else:
                            complete = False
                        solver.pop()
            solver.add(br.cond)
            prefix = hash((prefix, br.pc, br.taken))
        if phase == 0:
            heap.push(1, s.depth(run), s.promise(run), order, bound, run)
            order += 1
    exhaustive = complete and not heap and not s.errors and s.best is not None
    return exhaustive, unsat


def _mutate(s: _Search) -> None:
    """Guided random search: mutate the best inputs, keep what runs longer or takes
    a branch direction no run took before."""
    rng = random.Random(0x19)
    pool: list[Input] = []
    if s.best is not None:
        pool.append(s.best.input)
    for inp in seeds(s.program.prog_type):
        run = s.run_plain(inp)
        s.note_run(run)
        if not run.error:
            s.seen_branches |= run.branches
            pool.append(inp)
    if not pool:
        return
    packet_type = is_packet_type(s.program.prog_type)
    while not s.done() and s.runs < 1_000_000:
        parent = rng.choice(pool[-32:]) if rng.random() < 0.5 or s.best is None else \
            s.best.input
        child = _mutant(rng, parent, s.program.prog_type, packet_type)
        run = s.run_plain(child)
        before = s.best
        s.note_run(run)
        if run.error:
            continue
        new = run.branches - s.seen_branches
        if new or s.best is not before:
            s.seen_branches |= run.branches
            pool.append(child)


def _mutant(rng: random.Random, parent: Input, prog_type: str, packet_type: bool) -> Input:
    packet = bytearray(parent.packet)
    ctx = bytearray(parent.ctx)
    world = parent.world
    for _ in range(rng.randint(1, 4)):
        what = rng.random()
        if packet_type and what < 0.55 and packet:
            i = min(int(rng.expovariate(1 / 40)), len(packet) - 1)
            flip = packet[i] ^ 1 << rng.randrange(8)
            packet[i] = rng.choice((0, 1, 0xFF, rng.randrange(256), flip))
        elif packet_type and what < 0.65:
            n = rng.choice((-8, -1, 1, 8, 64))
            size = max(0, min(MAX_PACKET_BYTES, len(packet) + n))
            packet = packet[:size].ljust(size, b"\0")
        elif what < 0.8 and ctx:
            i = rng.randrange(len(ctx))
            ctx[i] = rng.choice((0, 1, 0xFF, rng.randrange(256)))
        elif what < 0.88:
            world = replace(world, lookup_hits=tuple(rng.random() < 0.5 for _ in range(4)))
        elif what < 0.94:
            world = replace(world, scalars=tuple(rng.randrange(1 << 32) for _ in range(4)),
                            value_fill=rng.randrange(256))
        elif what < 0.97:
            world = replace(world, ringbuf_full=not world.ringbuf_full,
                            reads_fail=rng.random() < 0.5,
                            update_results=(rng.choice((0, -2, -17)),))
        else:
            world = replace(world, callback_rounds=(rng.choice((0, 1, 2, 256, 1 << 17)),),
                            hash_elems=rng.choice((0, 1, 32, 1 << 20)))
    if packet_type:
        ctx = bytearray(ctx_for(prog_type, bytes(packet), bytes(ctx)))
    return Input(ctx=bytes(ctx), packet=bytes(packet), ctx_pointers=parent.ctx_pointers,
                 world=world)

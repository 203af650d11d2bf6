"""Tail-call targets analysed once per object, not once per program that reaches them.

A program's cost follows its tail calls (engine.ProgramAnalysis._chain), so every
program of an object whose tail calls are known reaches most of the others: Cilium's
bpf_host.o has 32 programs, each reaching up to 20. Analysed inside each caller's
analysis, a target was analysed again for every program (bpf_host.o: 214 function
analyses instead of 40, 7x the time of the object without its tail calls resolved).
Here each program's entry function is analysed once per object (as a program or as
any program's target), in an analysis of its own with its own step budget, as a
program is, and what that analysis found (its result or failure, diagnostics,
notes, loader reads) is replayed into each analysis that uses it: the same in
every one, whichever came first, and so the same with any --jobs split. The
object's chains (costs with tail calls, below the first program) and their lines
are kept here too.
"""

from __future__ import annotations

from dataclasses import dataclass

from bpflint.cost.frame import FuncResult, Lines
from bpflint.cost.paths import Cost
from bpflint.cost.pricing import BlockPricing
from bpflint.isa.insn import Insn
from bpflint.obj.model import FuncKey
from bpflint.results import CallNote, Diagnostic, LoopNote

__all__ = ["ANY_DEPTH", "CUT_CHAIN", "Chain", "TargetRun", "Targets", "find_cycle", "replay",
           "snapshot"]

ANY_DEPTH = -1  # chain memo key: a result that holds at every depth its chains fit in
CUT_CHAIN = -1  # height of a result whose chain the kernel's limit cut


@dataclass(frozen=True)
class Chain:
    """A program's cost with its tail calls (engine.ProgramAnalysis._chain)."""

    cost: Cost
    height: int  # how many tail calls deep the chains it followed go; else CUT_CHAIN
    res: FuncResult  # its entry function
    tail_cost: Cost | None  # its paths through a tail call, the dearest target's included
    by_insns: str  # that target by instructions ("" where none was followed)
    by_ns: str  # and by ns
    # the targets whose runs it used, in the order they were first used (replayed
    # into an analysis that takes this result from the memo)
    closure: tuple[str, ...]


@dataclass(frozen=True)
class TargetRun:
    """What analysing one tail-call target's entry function gave."""

    res: FuncResult | None  # None where it failed
    failure: Exception | None  # Unbounded, StepBudgetExceeded or RecursionError
    diags: tuple[Diagnostic, ...]
    open_calls: tuple[tuple[str, frozenset[tuple[FuncKey, int]]], ...]
    loop_notes: tuple[tuple[tuple[str, int, str], LoopNote], ...]
    call_notes: tuple[tuple[tuple[str, int, str], CallNote], ...]
    priced: frozenset[str]
    loader_reads: tuple[tuple[str, tuple[tuple[int, Insn], ...]], ...]
    async_callbacks: frozenset[FuncKey]


class Targets:
    """An object's tail-call targets, shared by the analyses of its programs: their
    runs, and their costs with their own tail calls (by name and depth, or
    ANY_DEPTH) and the lines of those."""

    def __init__(self) -> None:
        self.runs: dict[str, TargetRun] = {}
        self.chains: dict[tuple[str, int], Chain] = {}
        self.lines: dict[tuple[str, int], Lines] = {}


def snapshot(analysis: BlockPricing, res: FuncResult | None,
             failure: Exception | None) -> TargetRun:
    return TargetRun(
        res, failure, tuple(analysis.diags),
        tuple((m, frozenset(s)) for m, s in analysis.open_calls.items()),
        tuple(analysis.loop_notes.items()), tuple(analysis.call_notes.items()),
        frozenset(analysis.priced),
        tuple((name, tuple(reads.items())) for name, reads in analysis.loader_reads.items()),
        frozenset(analysis.async_callbacks))


def replay(into: BlockPricing, run: TargetRun) -> None:
    """Merge a target's findings into a caller's analysis, as if the caller had
    analysed the target itself (notes keep the larger figure, as pricing does)."""
    for d in run.diags:
        if d not in into.diags:
            into.diags.append(d)
    for message, sites in run.open_calls:
        into.open_calls.setdefault(message, set()).update(sites)
    for key, note in run.loop_notes:
        old = into.loop_notes.get(key)
        if old is None or (old.max_runs is not None
                           and (note.max_runs is None or note.max_runs > old.max_runs)):
            into.loop_notes[key] = note
    for key, call in run.call_notes:
        old_call = into.call_notes.get(key)
        if old_call is None or not (old_call.ns >= call.ns and old_call.insns >= call.insns):
            into.call_notes[key] = call
    into.priced.update(run.priced)
    for name, reads in run.loader_reads:
        into.loader_reads.setdefault(name, {}).update(reads)
    into.async_callbacks.update(run.async_callbacks)


def find_cycle(start: str, edges: dict[str, list[str]]) -> list[str]:
    """The first cycle of tail calls reachable from ``start`` depth-first (targets in
    the order given), as ``[a, b, a]``; [] if there is none."""
    path: list[str] = []
    done: set[str] = set()  # explored without finding a cycle
    # iterative: a chain of tail-call programs may be deep
    stack: list[tuple[str, int]] = [(start, 0)]
    while stack:
        name, i = stack.pop()
        if i == 0:
            if name in path:
                return path[path.index(name):] + [name]
            if name in done:
                continue
            path.append(name)
        targets = edges.get(name, [])
        if i < len(targets):
            stack.append((name, i + 1))
            stack.append((targets[i], 0))
        else:
            path.pop()
            done.add(name)
    return []

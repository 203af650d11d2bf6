"""Witnesses for the programs of one object: which programs get one, the search per
program, and replay of a saved witness."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bpflint.cost.engine import analyze_program
from bpflint.cost.model import CostTable
from bpflint.cost.options import AnalysisOptions
from bpflint.errors import BpfLintError
from bpflint.interp.refinterp import InterpError, StepCapExceeded
from bpflint.obj.model import BpfObject, Program
from bpflint.results import ProgramResult
from bpflint.witness import format as wformat
from bpflint.witness.search import DEFAULT_SECONDS, SearchResult, find_witness
from bpflint.witness.trace import TracingInterpreter

# the interpreter's model has no context for these (struct_ops callbacks, iterators'
# kernel-pointer contexts are built by hand in the tests, ...)
_NO_CONTEXT = frozenset({"struct_ops", "ext", "unspec", ""})
REPLAY_STEP_CAP = 50_000_000


@dataclass(frozen=True)
class Outcome:
    program: Program
    result: ProgramResult
    search: SearchResult | None  # None: not searched (``skipped`` says why)
    skipped: str = ""

    def to_json(self) -> dict[str, Any]:
        """The ``witness`` object of ``analyze --witness`` and ``witness --format json``."""
        if self.search is None:
            return {"reached": None, "executed_insns": None, "note": self.skipped}
        w = self.search.witness
        doc: dict[str, Any] = {
            "reached": None if w is None or w.reached is None else round(w.reached, 4),
            "executed_insns": None if w is None else w.executed_insns,
            "by": None if w is None else w.by,
            "method": self.search.method, "runs": self.search.runs,
            "exhaustive": self.search.exhaustive, "note": self.search.note,
            "input": None if w is None else wformat.input_to_json(w.input),
        }
        if self.search.priced_ns is not None:
            doc["priced_ns"] = round(self.search.priced_ns, 1)
        return doc


def pick(obj: BpfObject, name: str | None) -> list[Program]:
    if name is None:
        return list(obj.programs)
    chosen = [p for p in obj.programs if p.name == name]
    if not chosen:
        names = ", ".join(p.name for p in obj.programs) or "none"
        raise BpfLintError(f"{obj.path}: no program {name!r} (programs: {names})")
    return chosen


def witness_program(obj: BpfObject, program: Program, table: CostTable,
                    by: str = "insns", seconds: float = DEFAULT_SECONDS,
                    use_solver: bool = True, result: ProgramResult | None = None) -> Outcome:
    if result is None:
        result = analyze_program(obj, program, table, AnalysisOptions())
    if program.prog_type in _NO_CONTEXT:
        return Outcome(program, result, None,
                       f"no input model for {program.prog_type or 'unknown'} programs")
    if not result.bounded or result.insns_max is None:
        return Outcome(program, result, None, "unbounded: there is no max to reach")
    search = find_witness(obj, program, result, by, table, seconds, use_solver)
    return Outcome(program, result, search)


@dataclass(frozen=True)
class Replay:
    executed_insns: int
    retval: int
    insns_max: int | None


def replay(obj: BpfObject, program: Program, doc: dict[str, Any], where: str,
           table: CostTable) -> Replay:
    """Execute a saved witness again and count."""
    inp = wformat.input_from_json(where, doc)
    result = analyze_program(obj, program, table, AnalysisOptions())
    interp = TracingInterpreter(obj, inp, REPLAY_STEP_CAP)
    try:
        ctx = interp.setup_ctx(program)
        r0 = interp.run_program(program, ctx)
    except StepCapExceeded:
        raise BpfLintError(f"{where}: the replay ran more than {REPLAY_STEP_CAP} "
                           "instructions") from None
    except InterpError as exc:
        raise BpfLintError(f"{where}: the interpreter cannot run it: {exc}") from None
    return Replay(interp.count, r0 & 0xFFFF_FFFF, result.insns_max)

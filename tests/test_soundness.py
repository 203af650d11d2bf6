"""The cost engine against the reference interpreter, program by program.

Soundness: for every input hypothesis draws, the executed instruction count lies
inside [insns.min, insns.max]. Tightness: the hand-built worst input reaches
insns.max and the best input insns.min, or the documented ratio bounds the gap.
"""

from __future__ import annotations

import dataclasses
import functools

import pytest
from bpfc import PROGS, compile_bpf
from cases import CASES, FileCase, Input, inputs, rodata_values
from hypothesis import HealthCheck, given, settings

from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.interp.refinterp import StepCapExceeded, run
from bpflint.obj.model import BpfObject
from bpflint.obj.reader import load_object
from bpflint.results import ProgramResult

STEP_CAP = 300_000  # far above every bounded program's worst case here
MAY_GOTO_BUDGET = 64  # the interpreter's may_goto budget: keeps runaway loops short


@functools.cache
def analysed(file: str) -> tuple[BpfObject, dict[str, ProgramResult]]:
    case = next(c for c in CASES if c.file == file)
    obj = load_object(compile_bpf(PROGS / case.file, case.flags))
    results = {p.name: analyze_program(obj, p, None, AnalysisOptions())
               for p in obj.programs}
    return obj, results


def executed(obj: BpfObject, name: str, inp: Input) -> int | None:
    try:
        return run(obj, name, inp, step_cap=STEP_CAP, may_goto_budget=MAY_GOTO_BUDGET)
    except StepCapExceeded:
        return None


def check_inside(result: ProgramResult, count: int | None, what: str) -> None:
    if count is None:  # ran past the cap: only an unbounded verdict is consistent
        assert not result.bounded or result.insns_max is not None and \
            result.insns_max > STEP_CAP, f"{result.name} ran away on {what}"
        return
    assert result.insns_min is not None and result.insns_min <= count, \
        f"{result.name}: executed {count} < insns.min {result.insns_min} on {what}"
    if result.bounded:
        assert result.insns_max is not None and count <= result.insns_max, \
            f"{result.name}: executed {count} > insns.max {result.insns_max} on {what}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file)
def test_every_drawn_input_runs_inside_the_range(case: FileCase) -> None:
    obj, results = analysed(case.file)

    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(inputs(case.kind), rodata_values(obj))
    def check(inp: Input, knobs: tuple[tuple[str, int], ...]) -> None:
        # the loader's settings of const volatile variables are inputs too
        inp = dataclasses.replace(inp, world=dataclasses.replace(inp.world, rodata=knobs))
        for prog in case.programs:
            check_inside(results[prog.name], executed(obj, prog.name, inp), repr(inp)[:200])

    check()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file)
def test_hand_built_extremes_reach_the_bounds(case: FileCase) -> None:
    obj, results = analysed(case.file)
    assert case.bounded == all(results[p.name].bounded for p in case.programs)
    for prog in case.programs:
        result = results[prog.name]
        worst = executed(obj, prog.name, prog.worst)
        best = executed(obj, prog.name, prog.best)
        check_inside(result, worst, "the worst-case input")
        check_inside(result, best, "the best-case input")
        if prog.max_ratio is not None and result.insns_max is not None:
            assert worst is not None
            ratio = result.insns_max / worst
            assert ratio <= prog.max_ratio, \
                f"{prog.name}: insns.max {result.insns_max} vs worst run {worst} " \
                f"({ratio:.3f} > {prog.max_ratio}; {prog.reason or 'no gap documented'})"
        if prog.min_ratio is not None and result.insns_min:
            assert best is not None
            ratio = best / result.insns_min
            assert ratio <= prog.min_ratio, \
                f"{prog.name}: best run {best} vs insns.min {result.insns_min} " \
                f"({ratio:.3f} > {prog.min_ratio}; {prog.reason or 'no gap documented'})"


def test_a_loop_the_kernel_rejects_is_reported_unbounded_at_its_line() -> None:
    _, results = analysed("unbounded.bpf.c")
    (result,) = results.values()
    assert not result.bounded and result.insns_max is None
    loops = [d for d in result.diagnostics if d.rule == "BPF003"]
    assert loops and loops[0].loc is not None
    assert loops[0].loc.file.endswith("unbounded.bpf.c") and loops[0].loc.line > 0


def test_timer_callbacks_are_priced_as_their_own_entry_points() -> None:
    from cases import worlds

    from bpflint.cost.engine import ASYNC_CALLBACK_TYPE, analyze_async_callbacks
    from bpflint.interp.refinterp import World, run_function

    obj, results = analysed("timer.bpf.c")
    callbacks = analyze_async_callbacks(obj, None, AnalysisOptions())
    assert [r.type for r in callbacks] == [ASYNC_CALLBACK_TYPE]
    (callback,) = callbacks
    assert callback.name not in results  # not on the arming program's path
    assert callback.bounded and callback.insns_max is not None

    @settings(max_examples=25, deadline=None, database=None)
    @given(worlds())
    def check(world: World) -> None:
        count = run_function(obj, callback.name, Input(b"", world=world))
        assert callback.insns_min is not None and callback.insns_max is not None
        assert callback.insns_min <= count <= callback.insns_max

    check()

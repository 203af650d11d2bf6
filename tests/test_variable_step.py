"""Loops whose counter moves by a variable amount of known range each round.

``for (i = 0; i < 64; i += 1 + (q & 3))`` runs at most 64 rounds whatever q is: the
counter grows by at least 1 a round. The kernel verifier accepts such loops;
bpflint bounds them by the least step (the most rounds) and checks for wrapping with
the greatest, and the least rounds come from walking the exact iterations until one
can leave (tests/progs/steps/variable_step.bpf.c). A 32-bit counter that clang sign
extends (r <<= 32; r s>>= 32) keeps its step through the extension.
"""

from __future__ import annotations

import functools

import pytest
from bpfc import PROGS, compile_bpf, needs_clang
from cases import NO_PKT, inputs, xdp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpflint.analysis import scalar as sc
from bpflint.analysis.scalar import Scalar
from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.interp.refinterp import Input, run
from bpflint.kernel.loader import load_program
from bpflint.kernel.syscall import bpf_usable
from bpflint.obj.model import BpfObject
from bpflint.obj.reader import load_object
from bpflint.results import ProgramResult

SOURCE = PROGS / "steps" / "variable_step.bpf.c"
PROGRAMS = ("step_by_input", "step_by_round", "step_down", "step_by_path")
# rx_queue_index of the most and of the fewest rounds, where the input decides them
# alone (the step is 1 + (q & 3) and 1 + (q & 7)): the range is exact there
EXACT = {"step_by_input": (0, 3), "step_down": (0, 7)}
USABLE, REASON = bpf_usable()


@functools.cache
def analysed() -> tuple[BpfObject, dict[str, ProgramResult]]:
    obj = load_object(compile_bpf(SOURCE))
    return obj, {p.name: analyze_program(obj, p, None, AnalysisOptions())
                 for p in obj.programs}


@needs_clang
def test_every_program_is_listed_and_bounded() -> None:
    _, results = analysed()
    assert set(results) == set(PROGRAMS)
    for name, result in results.items():
        assert result.bounded, (name, result.diagnostics)


@needs_clang
@pytest.mark.parametrize("name", sorted(EXACT))
def test_the_range_is_exact_where_the_input_picks_the_step(name: str) -> None:
    obj, results = analysed()
    most, fewest = EXACT[name]
    assert results[name].insns_max == run(obj, name, xdp(NO_PKT, rx_queue=most))
    assert results[name].insns_min == run(obj, name, xdp(NO_PKT, rx_queue=fewest))


@needs_clang
def test_the_loop_note_names_the_step_range() -> None:
    _, results = analysed()
    (loop,) = results["step_by_input"].loops
    assert "+= 1..4" in loop.how and loop.max_runs == 63


@needs_clang
@pytest.mark.parametrize("name", PROGRAMS)
def test_every_drawn_input_runs_inside_the_range(name: str) -> None:
    obj, results = analysed()
    result = results[name]
    assert result.insns_min is not None and result.insns_max is not None
    low, high = result.insns_min, result.insns_max

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.one_of(inputs("xdp"), st.builds(lambda q: xdp(NO_PKT, rx_queue=q),
                                              st.integers(0, 2**32 - 1))))
    def check(inp: Input) -> None:
        count = run(obj, name, inp)
        assert low <= count <= high, f"{name}: executed {count} outside [{low}, {high}]"

    check()


@needs_clang
@pytest.mark.kernel
@pytest.mark.skipif(not USABLE, reason=f"bpf() is not usable here: {REASON}")
def test_the_kernel_accepts_every_variable_step_loop() -> None:
    obj, _ = analysed()
    for program in obj.programs:
        with load_program(obj, program):
            pass


# -- the value analysis: clang's sign extension of a 32-bit counter ------------------

def test_a_left_shift_by_32_keeps_the_low_half_as_signed() -> None:
    counter = Scalar.srange(-7, 39)  # n - step, about to be sign extended
    shifted = sc.lsh(counter, Scalar.const(32))
    assert (shifted.smin, shifted.smax) == (-7 << 32, 39 << 32)
    back = sc.arsh(shifted, Scalar.const(32))
    assert (back.smin, back.smax) == (-7, 39)


def test_small_signed_values_are_their_own_low_half() -> None:
    assert sc.s32_range(Scalar.srange(-7, 39)) == (-7, 39)
    assert sc.sext(Scalar.srange(-100, 100), 8) == Scalar.srange(-100, 100)
    # a wide range keeps the whole s32 view
    assert sc.s32_range(Scalar.srange(-(1 << 40), 5)) == (-(1 << 31), (1 << 31) - 1)


@pytest.mark.parametrize("value", [-(1 << 31), -7, 0, 39, (1 << 31) - 1, 1 << 40,
                                   -(1 << 40) + 3, 0xFFFF_FFFF])
def test_the_shift_pair_brackets_every_value(value: int) -> None:
    """r <<= 32; r s>>= 32 of any value in the range lands in the computed range."""
    for lo, hi in ((value, value), (min(value, -7), max(value, 39))):
        rng = Scalar.srange(lo, hi)
        out = sc.arsh(sc.lsh(rng, Scalar.const(32)), Scalar.const(32))
        got = sc.to_s64((value << 32) & sc.U64) >> 32
        assert out.smin <= got <= out.smax

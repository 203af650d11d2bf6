"""Tightness on programs with known best and worst counts (tests/progs/known).

Programs in the shapes a grader of a WCET tool would write (diamonds, counted and
triangular loops, data-dependent exits, bounds from packets and maps, bpf_loop,
iterators, subprograms, tail calls, five program types). Their true best and worst
instruction counts come from the reference interpreter, run over every input that
matters (tests/known_search.py says why each space is exhaustive), never from
bpflint. Soundness is asserted always; tightness per program against the ratio
reached (docs/validation.md, "Known-count programs"), with MARGIN for clang's
code generation, so a loss of precision fails.
"""

from __future__ import annotations

import functools

import pytest
from bpfc import PROGS, compile_bpf, needs_clang
from known_search import KNOWN, Known

from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.interp.refinterp import Input, run_full
from bpflint.kernel import syscall as sc
from bpflint.kernel.loader import load_program
from bpflint.obj.model import BpfObject
from bpflint.obj.reader import load_object
from bpflint.results import ProgramResult

KNOWN_DIR = PROGS / "known"
MARGIN = 1.02  # clang's code generation may move a count by an instruction or two
STEP_CAP = 100_000

pytestmark = needs_clang


@functools.cache
def analysed(file: str) -> tuple[BpfObject, dict[str, ProgramResult]]:
    obj = load_object(compile_bpf(KNOWN_DIR / file))
    return obj, {p.name: analyze_program(obj, p, None, AnalysisOptions())
                 for p in obj.programs}


@functools.cache
def truth(known: Known) -> tuple[tuple[int, Input], tuple[int, Input]]:
    """(count, input) of the cheapest and the dearest run over the search space."""
    obj, _ = analysed(known.file)
    runs = [(run_full(obj, known.name, inp, step_cap=STEP_CAP)[0], inp)
            for inp in known.space()]
    assert runs, f"{known.name}: empty search space"
    return min(runs, key=lambda r: r[0]), max(runs, key=lambda r: r[0])


def test_the_set_covers_every_program_in_the_files() -> None:
    names = {k.name for k in KNOWN}
    assert len(names) == len(KNOWN) >= 40
    for file in sorted({k.file for k in KNOWN}):
        obj, _ = analysed(file)
        missing = {p.name for p in obj.programs} - names
        assert not missing, f"{file}: no search space for {sorted(missing)}"


@pytest.mark.parametrize("known", KNOWN, ids=lambda k: k.name)
def test_range_holds_the_true_counts_as_tightly_as_reached(known: Known) -> None:
    _, results = analysed(known.file)
    result = results[known.name]
    (best, _), (worst, _) = truth(known)
    assert result.bounded and result.insns_max is not None, \
        f"{known.name}: unbounded ({[d.message for d in result.diagnostics]})"
    assert result.insns_min is not None and result.insns_min <= best, \
        f"{known.name}: insns.min {result.insns_min} above a real run of {best}"
    assert worst <= result.insns_max, \
        f"{known.name}: insns.max {result.insns_max} below a real run of {worst}"
    assert result.insns_max <= worst * known.max_ratio * MARGIN, \
        f"{known.name}: insns.max {result.insns_max} vs true {worst}: looser than " \
        f"{known.max_ratio} {known.why}"
    assert best <= result.insns_min * known.min_ratio * MARGIN, \
        f"{known.name}: insns.min {result.insns_min} vs true {best}: looser than " \
        f"{known.min_ratio} {known.why}"


# -- the kernel runs the worst input the same way ------------------------------------
USABLE, REASON = sc.bpf_usable()
XDP_RUNS, XDP_REASON = sc.prog_type_runs("xdp") if USABLE else (False, REASON)
# programs whose return value tells the path taken (a trip count, a sum, an exit)
RETURNS_THE_PATH = ("k_search_break", "k_break_at", "k_two_exits", "k_bpf_loop_stop",
                    "k_global_in_loop", "k_early_return", "k_switch", "k_square_exit",
                    "k_doubling", "k_global_narrow", "k_static_two_sites", "k_call_tri",
                    "k_global_tri", "k_bits", "k_memcmp", "k_csum", "k_bpf_loop_stop5")
KERNEL_MIN_PACKET = 64  # BPF_PROG_TEST_RUN wants an Ethernet header at least


@pytest.mark.skipif(not XDP_RUNS, reason=XDP_REASON)
@pytest.mark.parametrize("name", RETURNS_THE_PATH)
def test_kernel_takes_the_worst_path_the_interpreter_takes(name: str) -> None:
    known = next(k for k in KNOWN if k.name == name)
    obj, _ = analysed(known.file)
    _, (worst, inp) = truth(known)
    padded = Input(ctx=inp.ctx, packet=inp.packet.ljust(KERNEL_MIN_PACKET, b"\0"),
                   world=inp.world)
    count, r0 = run_full(obj, name, padded, step_cap=STEP_CAP)
    assert count == worst, f"{name}: padding the worst packet changed its path"
    assert not padded.world.map_contents  # a fresh load's maps are what it saw
    program = next(p for p in obj.programs if p.name == name)
    with load_program(obj, program) as loaded:
        got = sc.prog_test_run(loaded.fd, data=padded.packet).retval
    assert got == r0 & 0xFFFF_FFFF, f"{name}: kernel returned {got}, interpreter {r0}"


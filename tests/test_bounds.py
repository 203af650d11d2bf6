"""Loop bounds on hand-assembled loops whose shape a compiler rarely emits."""

from __future__ import annotations

from bpfc import PROGS, compile_bpf, needs_clang
from fuzzgen import load_gen_synthetic

from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.isa.helper_ids import HELPER_NAMES
from bpflint.isa.opcodes import AluOp, JmpOp
from bpflint.kernel import bytecode as bc
from bpflint.obj.reader import load_object, parse_object


def _insns(code: bytes) -> tuple[int | None, int | None]:
    obj = parse_object("loop.o", load_gen_synthetic().build_object(code, "tracepoint"))
    result = analyze_program(obj, obj.programs[0], None, AnalysisOptions())
    return result.insns_min, result.insns_max


def test_a_counter_from_an_unknown_start_is_bounded_by_its_back_edge_values() -> None:
    # r0 = a u32; do r0 += 1 while (r0 < 4): whatever r0 starts at, the back edge
    # only sees 1, 2, 3, so at most 3 back edges (the kernel verifier proves it too)
    code = (bc.call_helper(HELPER_NAMES.index("get_prandom_u32"))
            + bc.alu64(AluOp.ADD, 0, imm=1) + bc.jmp_imm(JmpOp.JLT, 0, 4, -2) + bc.exit_())
    assert _insns(code) == (4, 1 + 4 * 2 + 1)


def test_a_loop_whose_exit_depends_on_the_path_taken_is_unrolled_path_by_path() -> None:
    # i += x ? 3 : 7 until i is 9, 10, 13 or 14: joined, i only grows; path by path
    # every run ends within 3 iterations (loop5.c of the kernel selftests)
    code = (bc.ldx(4, 1, 1, 0) + bc.mov64(0, imm=0)
            + bc.jmp_imm(JmpOp.JEQ, 1, 0, 2)  # 2
            + bc.alu64(AluOp.ADD, 0, imm=3) + bc.ja(1)
            + bc.alu64(AluOp.ADD, 0, imm=7)  # 5
            + bc.jmp_imm(JmpOp.JEQ, 0, 9, 4) + bc.jmp_imm(JmpOp.JEQ, 0, 10, 3)
            + bc.jmp_imm(JmpOp.JEQ, 0, 13, 2) + bc.jmp_imm(JmpOp.JEQ, 0, 14, 1)
            + bc.ja(-9)  # 10: back to 2
            + bc.exit_())
    lo, hi = _insns(code)
    # x != 0: 3, 6, 9 -> 2 + 8 + 8 + 4 + 1 = 23; x == 0: 7, 14 -> 2 + 7 + 6 + 1 = 16
    assert lo is not None and hi is not None and lo <= 16 and 23 <= hi <= 30


@needs_clang
def test_kernel_limits_bound_iterators_and_bpf_loop() -> None:
    obj = load_object(compile_bpf(PROGS / "limits" / "kernel_limits.bpf.c"))
    result = {p.name: analyze_program(obj, p, None, AnalysisOptions()) for p in obj.programs}
    assert (result["iter_huge_range"].insns_max or 1000) < 40  # E2BIG: no element
    unknown = result["iter_unknown_range"]
    # at most 1 << 23 elements (BPF_MAX_LOOPS), a few instructions each
    assert unknown.bounded and unknown.insns_max is not None
    assert 1 << 23 < unknown.insns_max < 20 << 23
    bad = result["loop_bad_flags"]
    assert bad.insns_max is not None and bad.insns_max < 20  # the callback never runs


@needs_clang
def test_for_each_over_an_inner_map_is_bounded_by_its_template() -> None:
    obj = load_object(compile_bpf(PROGS / "limits" / "map_in_map.bpf.c"))
    assert obj.maps["outer"].inner == "outer.inner"
    assert obj.maps["outer.inner"].max_entries == 32
    assert obj.maps["any_size"].inner == ""  # BPF_F_INNER_MAP: sizes vary
    result = {p.name: analyze_program(obj, p, None, AnalysisOptions()) for p in obj.programs}
    inner = result["each_inner"]
    assert inner.bounded and inner.insns_max is not None
    assert 32 * 3 < inner.insns_max < 32 * 30  # 32 callbacks of a few instructions
    assert not result["each_any_size"].bounded


def test_a_short_loop_is_run_iteration_by_iteration_not_widened() -> None:
    # two iterations of a 1,002-instruction body: the fixpoint runs them exactly (about
    # 2,000 steps, reused to bound and to cost the loop) where widening took 5+ rounds
    body = bc.alu64(AluOp.ADD, 0, imm=1) * 1000 + bc.alu64(AluOp.ADD, 1, imm=1)
    code = (bc.mov64(0, imm=0) + bc.mov64(1, imm=0) + body
            + bc.jmp_imm(JmpOp.JLT, 1, 2, -(bc.slots(body) + 1)) + bc.exit_())
    obj = parse_object("loop.o", load_gen_synthetic().build_object(code, "tracepoint"))
    result = analyze_program(obj, obj.programs[0], None, AnalysisOptions(max_steps=3_500))
    assert not result.diagnostics
    assert (result.insns_min, result.insns_max) == (2007, 2007)


def test_a_loop_cycling_between_two_states_ends_in_a_result_not_a_hang() -> None:
    # r0 = 0; loop: r0 += 1; r0 &= 1; if r0 < 2 goto loop; exit (verifier_loops1.c's
    # infinite_loop_three_jump_trick, one jump): the header sees r0 = 0, 1, 0, ...
    # The iterations come from the cache after two rounds and spend no steps, so only
    # spotting the repeated state ends the analysis: it once ran forever here.
    import threading

    code = (bc.mov64(0, imm=0) + bc.alu64(AluOp.ADD, 0, imm=1) + bc.alu64(AluOp.AND, 0, imm=1)
            + bc.jmp_imm(JmpOp.JLT, 0, 2, -3) + bc.exit_())
    obj = parse_object("cycle.o", load_gen_synthetic().build_object(code, "tracepoint"))
    results: list[object] = []
    worker = threading.Thread(target=lambda: results.append(
        analyze_program(obj, obj.programs[0], None, AnalysisOptions(max_seconds=30))),
        daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "the analysis did not end"
    result = results[0]
    assert not result.bounded and result.insns_max is None  # type: ignore[attr-defined]

"""The overlap model: a run costs the longer of its dependency chain and its issue bound."""

from __future__ import annotations

import pytest
from bpfc import PROGS, compile_bpf, needs_clang
from fuzzgen import load_gen_synthetic
from hypothesis import given, settings
from hypothesis import strategies as st
from marks import instruments_engine

from bpflint.cost.engine import ProgramAnalysis, analyze_program
from bpflint.cost.model import INSN_KEYS
from bpflint.cost.options import AnalysisOptions
from bpflint.cost.overlap import (
    ALU,
    MEMORY,
    SERIAL,
    Readiness,
    Timed,
    lane_costs,
    lane_of,
    operands,
    run_max_ns,
    steady_chain_ns,
    timed,
)
from bpflint.cost.paths import repeat
from bpflint.cost.table_file import load_cost_table, parse_cost_table
from bpflint.isa.insn import decode
from bpflint.isa.opcodes import AluOp, JmpOp
from bpflint.kernel import bytecode as bc
from bpflint.obj.reader import load_object, parse_object


def _timed(code: bytes, latency: float = 1.0, issue: float = 0.25,
           slot: float = 0.25) -> list[Timed]:
    return [timed(i, latency, issue, slot) for i in decode(code)]


def test_a_dependent_chain_pays_every_latency() -> None:
    chain = b"".join(bc.alu64(AluOp.ADD, 1, imm=k) for k in range(8))
    assert run_max_ns(_timed(chain)) == 8.0


def test_independent_instructions_pay_the_issue_bound() -> None:
    spread = b"".join(bc.alu64(AluOp.ADD, r, imm=1) for r in (1, 2, 3, 4, 5, 6, 7, 8))
    assert run_max_ns(_timed(spread)) == 2.0  # 8 x 0.25, longer than one latency
    assert run_max_ns(_timed(spread[:16])) == 1.0  # two of them: one latency


def test_mov_breaks_a_chain_and_a_read_of_its_source_continues_it() -> None:
    code = (bc.alu64(AluOp.ADD, 1, imm=1) + bc.mov64(1, imm=5)  # r1 rewritten: new chain
            + bc.alu64(AluOp.ADD, 1, imm=1) + bc.alu64(AluOp.ADD, 2, 1))  # r2 += r1
    assert run_max_ns(_timed(code)) == 3.0  # mov, add, add after it


def test_loads_wait_for_earlier_stores() -> None:
    code = (bc.alu64(AluOp.ADD, 1, imm=1) + bc.stx(8, 10, -8, 1) + bc.ldx(8, 2, 10, -8)
            + bc.alu64(AluOp.ADD, 2, imm=1))
    reads, writes = operands(decode(code)[2])
    assert MEMORY in reads and writes == (2,)
    assert run_max_ns(_timed(code)) == 4.0  # add -> store -> load -> add


def test_a_call_holds_everything_up_and_joins_keep_the_later_time() -> None:
    add = Timed(1.0, (1,), (1,), lane_costs(ALU, 0.25, 0.25))
    after = Readiness().after([add, add, 5.0, add])  # r1: 2, call to 7, r1: 8
    assert after.ready(1) == 8.0 and after.ready(2) == 7.0 and after.latest() == 8.0
    joined = after.join(Readiness().after([add]))
    assert joined.ready(1) == 8.0 and joined.floor == 7.0


def test_classes_on_separate_ports_share_the_issue_bound() -> None:
    # four independent adds, four loads, four stores: ALU lane 4 x 0.25 plus one
    # front-end slot (0.1) per memory access; the memory lane 8 x 0.25
    adds = b"".join(bc.alu64(AluOp.ADD, r, imm=1) for r in (1, 2, 3, 4))
    loads = b"".join(bc.ldx(8, r, 10, -8 * r) for r in (5, 6, 7, 8))
    stores = b"".join(bc.st(8, 10, -8 * r, 0) for r in (1, 2, 3, 4))
    mixed = _timed(adds + loads + stores, slot=0.1)  # every chain: one latency, 1 ns
    assert run_max_ns(mixed) == 2.0  # the memory lane, not the 3.0 of the plain sum
    assert abs(run_max_ns(_timed(adds + loads, slot=0.1)) - 1.4) < 1e-9  # ALU lane: 1 + 0.4
    # serial work (multiply, divide, atomics, calls) adds to every lane
    muls = b"".join(bc.alu64(AluOp.MUL, r, imm=3) for r in (0, 9))
    assert lane_of(decode(muls)[0]) == SERIAL
    assert abs(run_max_ns(_timed(adds + loads + muls, slot=0.1)) - 1.9) < 1e-9


def test_repeat_charges_overlapped_iterations_their_steady_cost() -> None:
    iteration = (5, 5, 1.0, 10.0)
    assert repeat(iteration, 2, 4, 3.0) == (10, 20, 2.0, 10.0 + 3 * 3.0)
    assert repeat(iteration, 2, 4, 30.0)[3] == 40.0  # never more than runs alone
    assert repeat(iteration, 0, 0, 3.0)[3] == 0.0


# Every class: latency 1 ns, issue 0.25 ns.
TABLE = ("format = 1\n[provenance]\nkernel = \"k\"\ncpu = \"c\"\ndate = \"d\"\n"
         "method = \"m\"\n[defaults]\nhelper_min_ns = 0.0\nhelper_max_ns = 9.0\n"
         "kfunc_min_ns = 0.0\nkfunc_max_ns = 9.0\nsize_cap_bytes = 64\n[insn]\n"
         + "".join(f"{k} = {{ min_ns = 0.1, max_ns = 1.0, issue_ns = 0.25 }}\n"
                   for k in INSN_KEYS))
TRIPS = 100


def _loop_ns(body: bytes) -> float:
    """ns.max of: r1 = 0; r2..r4 = 1; do { body; r1 += 1 } while (r1 < TRIPS)."""
    code = (bc.mov64(1, imm=0) + b"".join(bc.mov64(r, imm=1) for r in (2, 3, 4)) + body
            + bc.alu64(AluOp.ADD, 1, imm=1)
            + bc.jmp_imm(JmpOp.JLT, 1, TRIPS, -(len(body) // 8 + 2))
            + bc.mov64(0, imm=2) + bc.exit_())
    obj = parse_object("loop.o", load_gen_synthetic().build_object(code))
    result = analyze_program(obj, obj.programs[0], parse_cost_table(TABLE, "t.toml"),
                             AnalysisOptions())
    assert result.insns_max == 4 + TRIPS * (len(body) // 8 + 2) + 2
    assert result.ns_max is not None
    return result.ns_max


def test_a_loop_carried_chain_is_paid_on_every_iteration() -> None:
    # r2 *= 3 three times: each iteration waits 3 ns for the one before
    chained = _loop_ns(b"".join(bc.alu64(AluOp.MUL, 2, imm=3) for _ in range(3)))
    assert chained >= TRIPS * 3.0
    # the same work on three registers: iterations overlap down to the issue bound
    # (5 instructions x 0.25 ns + the taken jump, 1 ns)
    spread = _loop_ns(b"".join(bc.alu64(AluOp.MUL, r, imm=3) for r in (2, 3, 4)))
    assert spread <= TRIPS * 2.25 + 10
    assert spread < chained


def test_a_chain_no_later_iteration_reads_is_paid_once() -> None:
    # r2 = r1 * 27, three multiplies after the counter: 4 ns from the header to the
    # back edge, but only the counter (1 ns) is carried into the next iteration
    body = bc.mov64(2, 1) + b"".join(bc.alu64(AluOp.MUL, 2, imm=3) for _ in range(3))
    ns = _loop_ns(body)
    assert TRIPS * 1.0 <= ns <= TRIPS * 2.5
    carried = _loop_ns(bc.alu64(AluOp.ADD, 2, 1) + b"".join(bc.alu64(AluOp.MUL, 2, imm=3)
                                                            for _ in range(3)))
    assert carried >= TRIPS * 4.0  # r2 += r1 then r2 *= 27: r2 is carried, 4 ns a trip


@instruments_engine
def test_the_way_out_after_an_iteration_overlaps_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # 100 trips of three blocks of two dependent adds each (on r2, r3, r4), leaving
    # through all three on the last trip. Alone, that way out costs each block's chain
    # in turn (3 x 2 ns + 3 jumps of 1 ns); after an iteration it costs its lanes
    # (three jumps in the branch lane, 3 ns) or its chain (2 ns), whichever is longer.
    code = (bc.ldx(4, 6, 1, 16) + bc.mov64(1, imm=0)
            + b"".join(bc.mov64(r, imm=1) for r in (2, 3, 4))  # slots 0-4
            + bc.alu64(AluOp.ADD, 2, imm=1) + bc.alu64(AluOp.ADD, 2, imm=1)
            + bc.jmp_imm(JmpOp.JEQ, 6, 12345, 8)  # slot 7 -> 16
            + bc.alu64(AluOp.ADD, 3, imm=1) + bc.alu64(AluOp.ADD, 3, imm=1)
            + bc.jmp_imm(JmpOp.JEQ, 6, 54321, 5)  # slot 10 -> 16
            + bc.alu64(AluOp.ADD, 4, imm=1) + bc.alu64(AluOp.ADD, 4, imm=1)
            + bc.jmp_imm(JmpOp.JGE, 1, TRIPS, 2)  # slot 13 -> 16
            + bc.alu64(AluOp.ADD, 1, imm=1) + bc.ja(-11)  # slot 15 -> 5
            + bc.mov64(0, imm=2) + bc.exit_())
    obj = parse_object("loop.o", load_gen_synthetic().build_object(code))
    table = parse_cost_table(TABLE, "t.toml")

    def worst_ns() -> float:
        result = analyze_program(obj, obj.programs[0], table, AnalysisOptions())
        assert result.ns_max is not None and result.insns_max == 5 + TRIPS * 11 + 9 + 2
        return result.ns_max

    overlapped = worst_ns()
    steady = ProgramAnalysis._steady_ns
    monkeypatch.setattr(ProgramAnalysis, "_steady_ns",
                        lambda self, *args: (steady(self, *args)[0], {}))
    alone = worst_ns()
    assert alone - overlapped == pytest.approx(9.0 - 3.0, abs=0.01)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                       st.floats(0.0, 3.0, allow_nan=False), max_size=10),
       st.integers(1, 7))
def test_steady_chain_covers_every_chain_through_the_iterations(
        weights: dict[tuple[int, int], float], trips: int) -> None:
    """chain + (trips - 1) x steady bounds the dearest walk of up to ``trips`` edges
    (a value chain through that many iterations), found by brute force."""
    carried: dict[int, dict[int, float]] = {}
    for (a, b), w in weights.items():
        carried.setdefault(a, {})[b] = w
    chain = max(weights.values(), default=0.0)
    steady = steady_chain_ns(carried, chain, trips - 1)
    best = dict.fromkeys(range(4), 0.0)
    dearest = 0.0
    for _ in range(trips):
        best = {b: max([best[a] + w for (a, b2), w in weights.items() if b2 == b],
                       default=float("-inf")) for b in range(4)}
        dearest = max(dearest, *best.values())
    assert dearest <= chain + (trips - 1) * steady + 1e-9
    assert steady <= chain


def _table_with(extra: str) -> str:
    return TABLE.replace("call = { min_ns = 0.1, max_ns = 1.0, issue_ns = 0.25 }\n",
                         "call = { min_ns = 0.1, max_ns = 10.0 }\n") + extra


@needs_clang
def test_a_subprogram_call_overlaps_the_work_around_it_but_not_other_calls() -> None:
    # 64 calls of 10 ns each: never faster than the calls one after the other, and the
    # callee's dozen instructions and the loop's run beside them
    obj = load_object(compile_bpf(PROGS / "ns" / "pkt_driven.bpf.c"))
    program = next(p for p in obj.programs if p.name == "ns_call_loop")
    result = analyze_program(obj, program, parse_cost_table(_table_with(""), "t.toml"),
                             AnalysisOptions())
    assert result.ns_max is not None
    assert 64 * 10.0 <= result.ns_max <= 64 * 11.5


@needs_clang
@pytest.mark.parametrize("callback_ns", [10.0, 1.0])
def test_callback_iterations_overlap_the_helpers_own_cost(callback_ns: float) -> None:
    # bpf_loop of mix_cb (*h = (*h ^ index) * 31: a load, xor, multiply and store
    # chained through *h, 4 ns): each iteration pays the helper's own per-iteration
    # cost and then that chain, not the callback alone on top (its other work
    # runs beside the helper's)
    loop = ("[helper.loop]\nmin_ns = 0.0\nmax_ns = 5.0\nper_unit_min_ns = 1.0\n"
            f"per_unit_max_ns = {callback_ns}\nmax_units = 0\n")
    obj = load_object(compile_bpf(PROGS / "ns" / "pkt_driven.bpf.c"))
    program = next(p for p in obj.programs if p.name == "ns_bpf_loop")
    table = parse_cost_table(_table_with(loop), "t.toml")
    result = analyze_program(obj, program, table, AnalysisOptions())
    assert result.ns_max is not None
    assert 128 * (callback_ns + 4.0) <= result.ns_max <= 128 * (callback_ns + 4.0) + 30


@needs_clang
def test_the_worst_path_by_line_adds_up_to_the_worst_case_ns() -> None:
    # loops whose later iterations overlap, and edge-priced jumps, are attributed to
    # their lines as the total counts them
    obj = load_object(compile_bpf(PROGS / "ns" / "pkt_driven.bpf.c"))
    table = load_cost_table(None)
    for name in ("ns_alu_loop", "ns_pkt_sum", "ns_call_loop", "ns_array_ops", "ns_bpf_loop"):
        program = next(p for p in obj.programs if p.name == name)
        result = analyze_program(obj, program, table, AnalysisOptions())
        assert result.ns_max is not None and result.worst_path
        by_line = sum(line.ns for line in result.worst_path)
        assert abs(by_line - result.ns_max) <= 0.01 * result.ns_max, (name, by_line)

"""may_goto loops under the kernel's two models (bpflint/cost/may_goto.py).

Timed (Linux >= 6.15 with the JIT): a loop only may_goto ends runs until 250 ms of
its frame have passed; count (older kernels): 8M fall-throughs per frame; any (the
default): the larger of the two bounds, sound on either kernel. The kernel test runs
such a loop on this machine's kernel and checks that it runs far past 8M rounds,
inside the timed bound.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import math
import struct
from pathlib import Path

import pytest
from bpfc import PROGS, compile_bpf, find_clang

from bpflint import audit
from bpflint.analysis.bounds import MAY_GOTO_BUDGET
from bpflint.budget.config import load_config
from bpflint.cli import main
from bpflint.cost import may_goto
from bpflint.cost.engine import analyze_program
from bpflint.cost.model import CostTable
from bpflint.cost.options import AnalysisOptions
from bpflint.cost.table_file import load_cost_table
from bpflint.errors import BpfLintError
from bpflint.kernel import introspect, xlated
from bpflint.kernel import syscall as sc
from bpflint.obj.model import BpfObject
from bpflint.obj.reader import load_object
from bpflint.results import ProgramResult

needs_clang = pytest.mark.skipif(find_clang() is None, reason="clang is needed")

SPIN = PROGS / "may_goto" / "may_goto_spin.bpf.c"
ANY = AnalysisOptions()  # the default
TIMED = AnalysisOptions(may_goto="timed")
COUNT = AnalysisOptions(may_goto="count")
WINDOW_NS = 250_000_000  # NSEC_PER_SEC / 4
BATCH = 0xFFFF  # BPF_MAX_TIMED_LOOPS


# -- the arithmetic, against a model of the kernel's refresh --------------------
def kernel_fall_throughs(iteration_ns: float) -> int:
    """The fall-throughs a frame's may_goto gives a loop whose iterations each take
    ``iteration_ns``, following verifier.c's expansion and bpf_check_timed_may_goto():
    the counter starts at 0xffff, the fall-through that empties it calls the check,
    which stamps the time on its first call and refills while < 250 ms have passed."""
    clock = 0.0
    stamp: float | None = None
    falls = 0
    while True:
        falls += BATCH  # a batch: 0xffff fall-throughs, the last one calls the check
        clock += BATCH * iteration_ns
        if stamp is None:
            stamp = clock
        elif clock - stamp >= WINDOW_NS:
            return falls


@pytest.mark.parametrize("iteration_ns", [0.25, 0.389, 1.0, 3.7, 100.0, 3814.0, 3815.0,
                                          1e4, 1e6])
def test_timed_bound_covers_the_kernels_refresh_and_is_within_two_batches(
        iteration_ns: float) -> None:
    bound = may_goto.timed_iterations(iteration_ns)
    simulated = kernel_fall_throughs(iteration_ns)
    assert bound is not None and simulated <= bound
    assert bound - simulated <= 2 * BATCH + 2
    # far past the count model's 8M when iterations are cheap
    if iteration_ns < 25.0:
        assert simulated > MAY_GOTO_BUDGET


def test_timed_bound_arithmetic() -> None:
    assert may_goto.timed_iterations(1.0) == 250_000_000 + 1 + 2 * BATCH
    assert may_goto.timed_iterations(250e6) == 1 + 1 + 2 * BATCH
    assert may_goto.timed_iterations(0.0) is None  # no floor: no count follows
    assert may_goto.timed_iterations(-1.0) is None
    assert may_goto.timed_ns(2.0, 10.0) == WINDOW_NS + (2 * BATCH + 2) * 2.0 + 3 * 10.0


# -- the engine ------------------------------------------------------------------
@functools.cache
def spin() -> BpfObject:
    return load_object(str(compile_bpf(SPIN)))


@functools.cache
def table() -> CostTable:
    return load_cost_table(None)


def result(obj: BpfObject, name: str, tab: CostTable | None,
           options: AnalysisOptions = ANY) -> ProgramResult:
    program = next(p for p in obj.programs if p.name == name)
    return analyze_program(obj, program, tab, options)


# may_goto_spin: r0 = 0; loop: r0 += 1; may_goto out; goto loop; out: exit. n back
# edges execute 1 + 3 n + 2 + 1 instructions.
def spin_insns(backedges: int) -> int:
    return 4 + 3 * backedges


@needs_clang
def test_count_model_keeps_the_8m_budget() -> None:
    for tab in (None, table()):
        got = result(spin(), "may_goto_spin", tab, COUNT)
        assert got.bounded and got.insns_max == spin_insns(MAY_GOTO_BUDGET)
        assert not [d for d in got.diagnostics if d.rule == "BPF009"]


@needs_clang
def test_timed_model_bounds_by_the_cheapest_iteration() -> None:
    tab = table()
    got = result(spin(), "may_goto_spin", tab, TIMED)
    # the cheapest iteration: r0 += 1, a may_goto falling through, the jump back
    floor = tab.insns["alu_simple"].min_ns + tab.insns["may_goto"].min_ns \
        + tab.insns["jmp_ja"].min_ns
    n = may_goto.timed_iterations(floor)
    assert n is not None and n > MAY_GOTO_BUDGET
    assert got.bounded and got.insns_max is not None
    assert abs(got.insns_max - spin_insns(n)) <= 3  # floating-point order of the sum
    count = result(spin(), "may_goto_spin", tab, COUNT)
    assert count.insns_max is not None and got.insns_max > 50 * count.insns_max
    # time: the 250 ms window, plus what runs outside it; the count model's is far less
    assert got.ns_max is not None and count.ns_max is not None
    assert WINDOW_NS < got.ns_max < WINDOW_NS + 2e6
    assert count.ns_max < WINDOW_NS / 10
    # the worst path's lines still add up to ns.max
    assert math.isclose(sum(line.ns for line in got.worst_path), got.ns_max, rel_tol=1e-6)
    [note] = [d for d in got.diagnostics if d.rule == "BPF009"]
    assert note.name == "timed-may-goto" and f"{(got.insns_max - 4) // 3:,}" in note.message
    assert "250 ms" in note.message and "--may-goto count" in note.message
    assert note.loc is not None and note.loc.file.endswith("may_goto_spin.bpf.c")
    source = SPIN.read_text().splitlines()
    loop = {n for n, text in enumerate(source, 1)
            if text.strip() in ("while (1) {", "rounds++;", "cond_break;")}
    assert note.loc.line in loop


@needs_clang
def test_without_a_table_the_floor_is_the_shipped_may_goto_price() -> None:
    got = result(spin(), "may_goto_spin", None, TIMED)
    n = may_goto.timed_iterations(table().insns["may_goto"].min_ns)
    assert n is not None and got.insns_max == spin_insns(n)


@needs_clang
def test_a_loop_with_its_own_bound_is_not_bounded_by_time() -> None:
    got = result(spin(), "may_goto_counted", table())
    # 100 rounds of 8 instructions and a few more: its exit test, not may_goto
    assert got.bounded and got.insns_max is not None and got.insns_max < 1000
    assert got.ns_max is not None and got.ns_max < 1e4
    assert not [d for d in got.diagnostics if d.rule == "BPF009"]


@needs_clang
def test_collatz_loop_is_bounded_by_250_ms_not_8m_rounds() -> None:
    obj = load_object(str(compile_bpf(PROGS / "may_goto.bpf.c")))
    timed = result(obj, "may_goto_loop", table(), TIMED)
    count = result(obj, "may_goto_loop", table(), COUNT)
    assert timed.insns_max is not None and count.insns_max is not None
    assert timed.ns_max is not None and count.ns_max is not None
    assert timed.insns_max > count.insns_max and timed.ns_max > WINDOW_NS > count.ns_max
    path_ns = sum(line.ns for line in timed.worst_path)
    assert math.isclose(path_ns, timed.ns_max, rel_tol=1e-6)


@needs_clang
def test_a_table_pricing_an_iteration_at_zero_leaves_the_loop_unbounded() -> None:
    free = dataclasses.replace(table(), _priced={}, insns={
        name: dataclasses.replace(cost, min_ns=0.0) for name, cost in table().insns.items()})
    got = result(spin(), "may_goto_spin", free, TIMED)
    assert not got.bounded and got.insns_max is None
    assert not result(spin(), "may_goto_spin", free).bounded  # nor the larger of the two
    [diag] = [d for d in got.diagnostics if d.rule == "BPF003"]
    assert "timed may_goto (Linux >= 6.15): bounded by 250 ms, not by a count" in diag.message
    assert diag.loc is not None and diag.loc.file.endswith("may_goto_spin.bpf.c")
    # the count model still bounds it
    assert result(spin(), "may_goto_spin", free, COUNT).bounded


def priced_flat(per_insn_ns: float) -> CostTable:
    """The shipped table with every instruction at exactly ``per_insn_ns`` (min and
    max, no overlap): an iteration of n instructions costs n x that, no less."""
    tab = table()
    return dataclasses.replace(tab, _priced={}, insns={
        name: dataclasses.replace(cost, min_ns=per_insn_ns, max_ns=per_insn_ns,
                                  issue_ns=None)
        for name, cost in tab.insns.items()})


@needs_clang
def test_any_kernel_is_the_default_and_takes_the_larger_bound_of_the_two() -> None:
    assert ANY.may_goto == "any" == may_goto.DEFAULT_MODEL
    for tab in (None, table()):  # cheap iterations: the timed bound is the larger
        got = result(spin(), "may_goto_spin", tab)
        timed = result(spin(), "may_goto_spin", tab, TIMED)
        assert got.insns_max is not None and got.insns_max == timed.insns_max
        assert got.ns_max == timed.ns_max
    [note] = [d for d in got.diagnostics if d.rule == "BPF009"]
    assert "the larger of" in note.message and f"{MAY_GOTO_BUDGET:,}" in note.message


@needs_clang
@pytest.mark.parametrize("iteration_ns", [100.0, 31.0])
def test_any_kernel_covers_a_count_kernel_when_iterations_are_dear(
        iteration_ns: float) -> None:
    # spin's iteration is 3 instructions (r0 += 1; may_goto; goto loop), each priced at
    # iteration_ns / 3: past ~30 ns the timed bound is below 8M rounds, which a
    # kernel before 6.15 runs in full (8M x iteration_ns, about 839 ms at 100 ns)
    tab = priced_flat(iteration_ns / 3)
    got = result(spin(), "may_goto_spin", tab)
    timed = result(spin(), "may_goto_spin", tab, TIMED)
    count = result(spin(), "may_goto_spin", tab, COUNT)
    for r in (got, timed, count):
        assert r.bounded and r.insns_max is not None and r.ns_max is not None
    assert got.insns_max is not None and got.ns_max is not None
    assert count.insns_max is not None and count.ns_max is not None
    assert timed.insns_max is not None and timed.ns_max is not None
    # a count kernel runs 8M rounds: the default bounds them, in insns and in time
    assert got.insns_max >= count.insns_max == spin_insns(MAY_GOTO_BUDGET)
    assert got.ns_max >= count.ns_max >= MAY_GOTO_BUDGET * iteration_ns * (1 - 1e-9)
    # ... and the timed kernel's 250 ms too; the timed model alone falls short
    assert got.insns_max >= timed.insns_max and got.ns_max >= timed.ns_max
    assert timed.insns_max < count.insns_max and timed.ns_max < count.ns_max
    assert math.isclose(sum(line.ns for line in got.worst_path), got.ns_max, rel_tol=1e-6)
    [note] = [d for d in got.diagnostics if d.rule == "BPF009"]
    assert f"up to {MAY_GOTO_BUDGET:,} iterations" in note.message


@needs_clang
def test_any_kernel_in_every_call_of_a_subprogram() -> None:
    tab = priced_flat(100.0 / 3)
    got = result(spin(), "may_goto_in_subprog", tab)
    count = result(spin(), "may_goto_in_subprog", tab, COUNT)
    timed = result(spin(), "may_goto_in_subprog", tab, TIMED)
    assert got.ns_max is not None and count.ns_max is not None and timed.ns_max is not None
    assert got.ns_max >= max(count.ns_max, timed.ns_max)
    assert count.ns_max >= 4 * MAY_GOTO_BUDGET * 100.0 * (1 - 1e-9)


# -- the option: command line, budget file, cache --------------------------------
def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def analyzed_max(*argv: str) -> int:
    code, out, err = run_cli("analyze", "--format", "json", *argv)
    assert code == 0, err
    [program] = [p for p in json.loads(out)["programs"] if p["name"] == "may_goto_spin"]
    return int(program["insns"]["max"])


@needs_clang
def test_analyze_flag_and_the_cache_key(tmp_path: Path) -> None:
    obj = str(compile_bpf(SPIN))
    cache = ("--cache-dir", str(tmp_path / "cache"))
    timed = analyzed_max(*cache, obj)
    count = analyzed_max(*cache, "--may-goto", "count", obj)  # not the cached timed one
    assert count == spin_insns(MAY_GOTO_BUDGET) and timed > 50 * count
    assert analyzed_max(*cache, "--may-goto", "timed", obj) == timed
    assert analyzed_max(*cache, "--may-goto", "any", obj) == timed  # cheap iterations
    code, _, err = run_cli("analyze", "--may-goto", "forever", obj)
    assert code == 2 and "--may-goto" in err


@needs_clang
def test_explain_flag() -> None:
    obj = str(compile_bpf(SPIN))
    code, out, _ = run_cli("explain", obj, "-p", "may_goto_spin", "--may-goto", "count")
    assert code == 0 and f"worst case: {spin_insns(MAY_GOTO_BUDGET)} insns" in out
    code, out, _ = run_cli("explain", obj, "-p", "may_goto_spin")
    assert code == 0 and "BPF009 timed-may-goto" in out and "the larger of" in out
    code, out, _ = run_cli("explain", obj, "-p", "may_goto_spin", "--may-goto", "timed")
    assert code == 0 and "BPF009 timed-may-goto" in out and "the larger of" not in out


def test_budget_file_key(tmp_path: Path) -> None:
    path = tmp_path / "bpfbudget.toml"
    path.write_text('[analyze]\nmay_goto = "count"\n')
    assert load_config(path).may_goto == "count"
    path.write_text('[analyze]\nmay_goto = "any"\n')
    assert load_config(path).may_goto == "any"
    path.write_text("[analyze]\n")
    assert load_config(path).may_goto is None
    path.write_text('[analyze]\nobjects = []\nmay_goto = "8M"\n')
    with pytest.raises(BpfLintError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3: key 'analyze.may_goto'") and "\n" not in message
    assert '"count"' in message


@needs_clang
def test_check_uses_the_budget_files_model_and_the_flag_overrides_it(tmp_path: Path) -> None:
    obj = tmp_path / "spin.o"
    obj.write_bytes(compile_bpf(SPIN).read_bytes())
    budget = spin_insns(MAY_GOTO_BUDGET) + 1000  # the count model's worst case fits
    config = tmp_path / "bpfbudget.toml"
    base = f'[analyze]\nobjects = ["spin.o"]\n{{}}\n[[budget]]\nprogram = "may_goto_spin"\n' \
        f'max_insns = {budget}\n'
    config.write_text(base.format('may_goto = "count"'))
    check = ("check", "--no-cache", "--config", str(config))
    code, out, err = run_cli(*check)
    assert code == 0, out + err
    code, out, err = run_cli(*check, "--may-goto", "timed")
    assert code == 1 and "may_goto_spin" in out + err
    config.write_text(base.format(""))  # the default: any, here the timed bound
    code, out, err = run_cli(*check)
    assert code == 1 and "may_goto_spin" in out + err


# -- audit: the running kernel's model, from its expansion -----------------------
def _code(*slots: tuple[int, int, int, int, int]) -> bytes:
    return b"".join(struct.pack("<BBhi", op, (src << 4) | dst, off, imm)
                    for op, dst, src, off, imm in slots)


@pytest.mark.parametrize("timed", [False, True])
def test_translated_code_tells_the_kernels_may_goto_model(timed: bool) -> None:
    ax = 11  # the verifier's expansions (verifier.c do_misc_fixups), counter at r10-16
    expansion = [(0x79, ax, 10, -16, 0), (0x15, ax, 0, 5 if timed else 2, 0),
                 (0x17, ax, 0, 0, 1)]
    if timed:
        expansion += [(0x55, ax, 0, 2, 0), (0xB7, ax, 0, 0, -16), (0x85, 0, 0, 0, 99)]
    expansion += [(0x7B, 10, ax, -16, 0)]
    # after an ld_imm64, whose second half is data
    code = _code((0x18, 1, 0, 0, 7), (0, 0, 0, 0, 0), *expansion, (0xB7, 0, 0, 0, 0),
                 (0x95, 0, 0, 0, 0))
    assert xlated.may_goto_model(code) == ("timed" if timed else "count")
    assert xlated.may_goto_model(_code((0xB7, 0, 0, 0, 0), (0x95, 0, 0, 0, 0))) is None


# -- on this machine's kernel ----------------------------------------------------
USABLE, REASON = sc.bpf_usable()


@needs_clang
@pytest.mark.skipif(not USABLE, reason=REASON)
def test_the_kernel_runs_a_may_goto_loop_past_8m_rounds_inside_the_timed_bound() -> None:
    from bpflint.kernel.loader import load_program

    obj = spin()
    program = next(p for p in obj.programs if p.name == "may_goto_spin")
    loaded = load_program(obj, program)
    try:
        run = sc.prog_test_run(loaded.fd, data=bytes(64), repeat=1)
        info = introspect._ProgInfo()
        sc.obj_get_info(loaded.fd, info)
        kernel = introspect.read_program(int(info.id))
        assert kernel is not None
        audited = audit.audit_program(kernel, [], table(), TIMED).result
        audited_count = audit.audit_program(kernel, [], table(), COUNT).result
    finally:
        loaded.close()
    rounds = run.retval  # r0 += 1 runs once per fall-through, and once more
    executed = 3 * rounds + 1
    timed = result(obj, "may_goto_spin", table())
    count = result(obj, "may_goto_spin", table(), COUNT)
    assert timed.insns_max is not None and count.insns_max is not None
    # audit follows the running kernel's model, whatever it is asked for
    assert audited is not None and audited_count is not None
    assert audited.insns_max == audited_count.insns_max
    model = xlated.may_goto_model(kernel.xlated)
    if rounds == MAY_GOTO_BUDGET + 1:  # a count-model kernel (before 6.15, or no JIT)
        assert executed == count.insns_max and model == "count"
        pytest.skip("this kernel's may_goto is count-based: the count model is exact")
    assert model == "timed"
    assert audited.ns_max is not None and audited.ns_max >= WINDOW_NS
    # timed: 250 ms of rounds, far past BPF_MAX_LOOPS; the count model's bound is not
    # sound here, the timed one is
    assert rounds > MAY_GOTO_BUDGET and (rounds - 1) % BATCH == 0, rounds
    assert count.insns_max < executed <= timed.insns_max
    assert run.duration_ns >= WINDOW_NS
    assert timed.ns_max is not None and timed.ns_max >= WINDOW_NS


@needs_clang
@pytest.mark.skipif(not USABLE, reason=REASON)
def test_each_call_of_a_subprogram_gets_its_own_window() -> None:
    from bpflint.kernel.loader import load_program

    obj = spin()
    program = next(p for p in obj.programs if p.name == "may_goto_in_subprog")
    with load_program(obj, program) as loaded:
        run = sc.prog_test_run(loaded.fd, data=bytes(64), repeat=1)
    # four calls of spin_sub(i), each returning i + its fall-throughs + 1
    fall_throughs = run.retval - (0 + 1 + 2 + 3) - 4
    timed = result(obj, "may_goto_in_subprog", table())
    count = result(obj, "may_goto_in_subprog", table(), COUNT)
    assert timed.insns_max is not None and count.insns_max is not None
    assert timed.ns_max is not None
    if fall_throughs == 4 * MAY_GOTO_BUDGET:
        pytest.skip("this kernel's may_goto is count-based")
    # 4 x 250 ms: the budget is per frame, and bpflint's bound is per call
    assert run.duration_ns >= 4 * WINDOW_NS and timed.ns_max >= 4 * WINDOW_NS
    # each fall-through is an iteration of 3 instructions
    assert count.insns_max < 3 * fall_throughs <= timed.insns_max

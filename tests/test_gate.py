"""Budget matching, verdicts and baseline comparison on hand-made results."""

from __future__ import annotations

from pathlib import Path

import pytest
from gate_helpers import HOT, config, program

from bpflint.budget.baseline import from_results
from bpflint.budget.gate import check_config_use, evaluate, match_budget
from bpflint.errors import BpfLintError
from bpflint.results import AnalysisReport, Diagnostic, ObjectError, SourceLoc

BUDGETS = """\
[[budget]]
max_insns = 10000

[[budget]]
type = "xdp"
max_insns = 1000

[[budget]]
object = "fw.bpf.o"
max_insns = 900

[[budget]]
section = "tracepoint/*"
max_time = "1us"

[[budget]]
section = "tracepoint/syscalls/*"
max_time = "800ns"

[[budget]]
program = "xdp_special"
max_insns = 50
"""


def report(*programs, errors=()) -> AnalysisReport:  # type: ignore[no-untyped-def]
    return AnalysisReport(tuple(programs), tuple(errors))


def test_most_specific_budget_wins_in_the_documented_order(tmp_path: Path) -> None:
    cfg = config(tmp_path, BUDGETS)
    cases = {
        # program name beats everything
        program("xdp_special"): 6,
        # object beats type
        program("xdp_a"): 3,
        # type beats default
        program("xdp_b", obj="other.bpf.o"): 2,
        # default when nothing else matches
        program("kp", type_="kprobe", section="kprobe/x", obj="o.o"): 1,
        # the longer literal section glob beats the shorter one
        program("tp", type_="tracepoint", section="tracepoint/syscalls/sys_enter_read",
                obj="t.o"): 5,
        program("tp2", type_="tracepoint", section="tracepoint/sched/switch", obj="t.o"): 4,
    }
    for result, number in cases.items():
        match = match_budget(result, cfg.budgets, cfg.root)
        assert match.budget is not None and match.budget.number == number, result.name
    why = match_budget(program("xdp_special"), cfg.budgets, cfg.root)
    assert why.reason.startswith("program 'xdp_special' is 'xdp_special'")
    assert "more specific than #3, #2, #1" in why.reason


def test_object_glob_with_a_slash_matches_the_path_relative_to_the_config(
        tmp_path: Path) -> None:
    cfg = config(tmp_path, '[[budget]]\nobject = "build/*.o"\nmax_insns = 5\n')
    inside = program("p", obj=str(tmp_path / "build" / "x.o"))
    elsewhere = program("p", obj=str(tmp_path / "other" / "x.o"))
    assert match_budget(inside, cfg.budgets, cfg.root).budget is not None
    assert match_budget(elsewhere, cfg.budgets, cfg.root).budget is None


def test_over_budget_fails_with_the_hottest_line_as_location(tmp_path: Path) -> None:
    cfg = config(tmp_path, '[[budget]]\ntype = "xdp"\nmax_insns = 1000\nmax_time = "1us"\n')
    gate = evaluate(report(program("ok"), program("big", insns_max=1200, ns_max=1500.0,
                                                  hot=HOT)), cfg, None)
    assert [v.key for v in gate.programs] == ["fw.bpf.o:xdp:big", "fw.bpf.o:xdp:ok"]
    big = gate.programs[0]
    assert big.status == "fail" and gate.exit_code == 1
    assert [f.rule for f in big.findings] == ["BPF001", "BPF001"]
    assert "1200 insns exceeds the budget of 1000 insns" in big.findings[0].message
    assert "1.50us exceeds the budget of 1us" in big.findings[1].message
    assert big.findings[0].loc == SourceLoc("fw.bpf.c", 12)
    assert gate.programs[1].status == "pass"


def test_exactly_at_budget_passes(tmp_path: Path) -> None:
    cfg = config(tmp_path, '[[budget]]\nmax_insns = 100\nmax_time = "500ns"\n')
    assert evaluate(report(program("p")), cfg, None).exit_code == 0


def test_warn_only_reports_failure_but_exits_zero(tmp_path: Path) -> None:
    cfg = config(tmp_path, "warn_only = true\n[[budget]]\nmax_insns = 10\n")
    gate = evaluate(report(program("p")), cfg, None)
    assert gate.failures and gate.exit_code == 0 and gate.verdict == "fail"
    cfg2 = config(tmp_path, "[[budget]]\nmax_insns = 10\n")
    assert evaluate(report(program("p")), cfg2, None, warn_only=True).exit_code == 0
    assert evaluate(report(program("p")), cfg2, None).exit_code == 1


@pytest.mark.parametrize(("policy", "status", "code"), [
    ("fail", "fail", 1), ("warn", "warn", 0), ("ignore", "pass", 0)])
def test_unbounded_policy(tmp_path: Path, policy: str, status: str, code: int) -> None:
    cfg = config(tmp_path, f'[regression]\nunbounded = "{policy}"\n'
                           '[[budget]]\nmax_insns = 10\n')
    diag = Diagnostic("BPF003", "unbounded-loop", "loop at fw.bpf.c:30 has no bound",
                      SourceLoc("fw.bpf.c", 30))
    gate = evaluate(report(program("loop", bounded=False, diagnostics=(diag,))), cfg, None)
    verdict = gate.programs[0]
    assert (verdict.status, gate.exit_code) == (status, code)
    if policy != "ignore":
        assert verdict.findings[0].rule == "BPF003"
        assert verdict.findings[0].loc == SourceLoc("fw.bpf.c", 30)
    # an unbounded program is never "within" a budget by accident
    assert not any(f.rule == "BPF001" for f in verdict.findings)


@pytest.mark.parametrize(("policy", "status"), [("fail", "fail"), ("warn", "warn"),
                                                ("ignore", "pass")])
def test_unmatched_policy(tmp_path: Path, policy: str, status: str) -> None:
    cfg = config(tmp_path, f'[regression]\nunmatched = "{policy}"\n'
                           '[[budget]]\ntype = "kprobe"\nmax_insns = 10\n')
    verdict = evaluate(report(program("p")), cfg, None).programs[0]
    assert verdict.status == status
    assert (verdict.findings[0].rule if verdict.findings else None) == \
        (None if policy == "ignore" else "BPF004")


def test_missing_cost_on_a_bounded_program_fails(tmp_path: Path) -> None:
    cfg = config(tmp_path, '[[budget]]\nmax_time = "1us"\n')
    verdict = evaluate(report(program("p", ns_max=None)), cfg, None).programs[0]
    assert verdict.status == "fail" and verdict.findings[0].rule == "BPF006"


def test_regression_under_budget_but_over_the_allowance_fails(tmp_path: Path) -> None:
    cfg = config(tmp_path, '[regression]\nallowed = "5%"\n[[budget]]\nmax_insns = 100000\n')
    before = from_results([program("p", insns_max=1000, ns_max=500.0)], "base")
    ok = evaluate(report(program("p", insns_max=1050, ns_max=520.0)), cfg, before)
    assert ok.exit_code == 0 and ok.programs[0].insns_delta == 50
    bad = evaluate(report(program("p", insns_max=1051, ns_max=500.0)), cfg, before)
    assert bad.exit_code == 1
    finding = bad.programs[0].findings[0]
    assert finding.rule == "BPF002" and "from 1000 to 1051 insns (+5.1%)" in finding.message


def test_a_regression_message_never_shows_a_figure_within_the_allowance(
        tmp_path: Path) -> None:
    cfg = config(tmp_path, '[regression]\nallowed = "5%"\n[[budget]]\nmax_insns = 100000\n')
    before = from_results([program("p", insns_max=10000, ns_max=500.0)], "base")
    exact = evaluate(report(program("p", insns_max=10500, ns_max=500.0)), cfg, before)
    assert exact.exit_code == 0  # exactly +5.0%: within the allowance
    over = evaluate(report(program("p", insns_max=10504, ns_max=500.0)), cfg, before)
    message = over.programs[0].findings[0].message
    assert "(+5.04%), more than the allowed 5%" in message, message


def test_an_unchanged_program_does_not_regress_against_its_rounded_baseline(
        tmp_path: Path) -> None:
    cfg = config(tmp_path, '[regression]\nallowed = "5%"\n[[budget]]\nmax_insns = 100000\n')
    same = program("p", insns_max=2, ns_max=0.338)
    before = from_results([same], "base")  # stores 0.3 ns
    verdict = evaluate(report(same), cfg, before)
    assert verdict.exit_code == 0, verdict.programs[0].findings
    assert verdict.programs[0].ns_delta == 0.0
    grown = evaluate(report(program("p", insns_max=2, ns_max=0.38)), cfg, before)
    assert grown.exit_code == 1  # 0.3 -> 0.4 ns is still a change the gate sees


def test_absolute_allowances_apply_to_their_own_measure(tmp_path: Path) -> None:
    before = from_results([program("p", insns_max=1000, ns_max=500.0)], "base")
    insns = config(tmp_path, '[regression]\nallowed = "+200 insns"\n')
    assert evaluate(report(program("p", insns_max=1200, ns_max=5000.0)), insns, before
                    ).programs[0].findings[-1].rule == "BPF004"  # only unmatched, no BPF002
    assert any(f.rule == "BPF002" for f in evaluate(
        report(program("p", insns_max=1201)), insns, before).programs[0].findings)
    ns = config(tmp_path, '[regression]\nallowed = "+50ns"\n')
    assert any(f.rule == "BPF002" for f in evaluate(
        report(program("p", ns_max=551.0)), ns, before).programs[0].findings)


def test_bounded_to_unbounded_is_a_regression(tmp_path: Path) -> None:
    cfg = config(tmp_path, '[regression]\nallowed = "5%"\nunbounded = "ignore"\n'
                           '[[budget]]\nmax_insns = 10000\n')
    before = from_results([program("p")], "base")
    verdict = evaluate(report(program("p", bounded=False)), cfg, before).programs[0]
    assert [f.rule for f in verdict.findings] == ["BPF002"]
    assert "now unbounded" in verdict.findings[0].message


def test_new_removed_and_renamed_programs(tmp_path: Path) -> None:
    cfg = config(tmp_path, '[regression]\nallowed = "5%"\n[[budget]]\nmax_insns = 10000\n')
    before = from_results([
        program("kept"),
        program("moved", section="xdp.frags", insns_max=100),
        program("gone"),
    ], "base")
    now = report(program("kept"), program("moved", section="xdp", insns_max=200),
                 program("fresh"))
    gate = evaluate(now, cfg, before)
    by_key = {v.key: v for v in gate.programs}
    assert by_key["fw.bpf.o:xdp:kept"].change == "same"
    assert by_key["fw.bpf.o:xdp:fresh"].change == "new"
    assert by_key["fw.bpf.o:xdp:fresh"].status == "pass"
    moved = by_key["fw.bpf.o:xdp:moved"]
    assert moved.change == "renamed" and moved.renamed_from == "fw.bpf.o:xdp.frags:moved"
    assert moved.status == "fail"  # compared with its old self: +100%
    gone = by_key["fw.bpf.o:xdp:gone"]
    assert gone.change == "removed" and gone.status == "removed" and gone.result is None
    assert gate.programs[-1] is gone  # removed ones listed last
    assert gate.exit_code == 1


def test_object_errors_make_exit_two(tmp_path: Path) -> None:
    cfg = config(tmp_path, "[[budget]]\nmax_insns = 10000\n")
    gate = evaluate(report(program("p"), errors=(ObjectError("bad.o", "not ELF"),)), cfg, None)
    assert gate.exit_code == 2 and gate.verdict == "error"


def test_engine_diagnostics_become_notes(tmp_path: Path) -> None:
    cfg = config(tmp_path, "[[budget]]\nmax_insns = 10000\n")
    diag = Diagnostic("BPF005", "open-tail-call", "tail call through jmp_table", None)
    verdict = evaluate(report(program("p", diagnostics=(diag,))), cfg, None).programs[0]
    assert verdict.status == "pass"
    assert [(f.rule, f.level) for f in verdict.findings] == [("BPF005", "note")]


def test_a_budget_or_tail_call_that_matches_no_program_is_a_config_error(
        tmp_path: Path) -> None:
    cfg = config(tmp_path, '[[budget]]\nmax_insns = 1\n\n[[budget]]\ntype = "xpd"\n'
                           'max_insns = 10\n')
    with pytest.raises(BpfLintError, match=r"bpfbudget.toml:4: key 'budget\[2\]': matches no "
                                           r"program .*did you mean 'xdp'\?"):
        check_config_use(cfg, [program("p")])
    tail = config(tmp_path, '[tail_calls]\njmp = ["p", "tial"]\n')
    with pytest.raises(BpfLintError, match=r":2: key 'tail_calls.jmp': program 'tial' is not"
                                           r" in the analysed objects; did you mean 'tail'"):
        check_config_use(tail, [program("p"), program("tail")])
    check_config_use(config(tmp_path, '[[budget]]\ntype = "xdp"\nmax_insns = 1\n'),
                     [program("p")])


def test_an_old_bare_name_key_pairs_only_when_unambiguous(tmp_path: Path) -> None:
    cfg = config(tmp_path, '[regression]\nallowed = "5%"\n[[budget]]\nmax_insns = 10000\n')
    old = from_results([program("p", obj="fw.bpf.o", insns_max=100)], "old")
    assert list(old.entries) == ["fw.bpf.o:xdp:p"]  # a baseline from before path keys
    one = evaluate(report(program("p", obj=str(tmp_path / "build" / "fw.bpf.o"),
                                  insns_max=300)), cfg, old)
    [verdict] = one.programs
    assert verdict.key == "build/fw.bpf.o:xdp:p" and verdict.change == "same"
    assert verdict.status == "fail"  # compared with the old entry: +200%
    two = evaluate(report(program("p", obj=str(tmp_path / "a" / "fw.bpf.o")),
                          program("p", obj=str(tmp_path / "b" / "fw.bpf.o"))), cfg, old)
    changes = {v.key: v.change for v in two.programs}
    assert changes == {"a/fw.bpf.o:xdp:p": "new", "b/fw.bpf.o:xdp:p": "new",
                       "fw.bpf.o:xdp:p": "removed"}

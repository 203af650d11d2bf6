"""The worst path by time (worst_path_ns) beside the worst path by instructions.

tests/progs/ns/helper_branch.bpf.c has a branch long in instructions and a short
one that calls bpf_map_update_elem: the two worst paths take different branches,
and whatever explains a time figure must follow the second.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from bpfc import PROGS, compile_bpf, needs_clang
from gate_helpers import config

from bpflint.budget.baseline import from_results
from bpflint.budget.gate import evaluate
from bpflint.cli import main
from bpflint.commands import explain
from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.cost.table_file import load_cost_table
from bpflint.obj.reader import load_object
from bpflint.report import github, markdown, sarif, text
from bpflint.results import AnalysisReport, LineCost, ProgramResult

SOURCE = PROGS / "ns" / "helper_branch.bpf.c"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def line_of(needle: str, source: Path = SOURCE) -> int:
    lines = source.read_text().splitlines()
    return next(n for n, text in enumerate(lines, 1) if needle in text)


def path_adds_up(path: tuple[LineCost, ...], ns_max: float) -> bool:
    """The tolerance the lines of worst_path_ns keep to ns.max: each figure is
    rounded to 0.001 ns, so at most 0.0005 ns a line and 0.0005 ns for ns.max
    (the overlap model shares a run's ns out over its lines exactly)."""
    return abs(sum(c.ns for c in path) - ns_max) <= 0.0005 * (len(path) + 1) + 1e-9


@pytest.fixture(scope="module")
def result() -> ProgramResult:
    obj = load_object(compile_bpf(SOURCE))
    program = next(p for p in obj.programs if p.name == "helper_branch")
    return analyze_program(obj, program, load_cost_table(None), AnalysisOptions())


@needs_clang
def test_the_time_path_goes_through_the_helper_and_adds_up(result: ProgramResult) -> None:
    helper = line_of("bpf_map_update_elem(&seen")
    arithmetic = line_of("h *= 0x5bd1e995")
    by_time = {c.line for c in result.worst_path_ns}
    by_insns = {c.line for c in result.worst_path}
    assert helper in by_time and arithmetic not in by_time
    assert arithmetic in by_insns and helper not in by_insns
    assert result.ns_max is not None and result.insns_max is not None
    assert path_adds_up(result.worst_path_ns, result.ns_max)
    assert sum(c.insns for c in result.worst_path) == result.insns_max
    # the instruction path alone explains much less than the headline time
    assert sum(c.ns for c in result.worst_path) < 0.5 * result.ns_max
    assert max(result.worst_path_ns, key=lambda c: c.ns).line == helper


def test_the_examples_time_paths_add_up() -> None:
    table = load_cost_table(None)
    checked = 0
    for path in sorted(EXAMPLES.glob("*/*.bpf.o")):
        obj = load_object(str(path))
        for program in obj.programs:
            got = analyze_program(obj, program, table, AnalysisOptions())
            assert got.ns_max is not None, program.name
            assert path_adds_up(got.worst_path_ns, got.ns_max), program.name
            assert sum(c.insns for c in got.worst_path) == got.insns_max, program.name
            checked += 1
    assert checked >= 8


def test_stage_udp_is_explained_by_its_map_update() -> None:
    # the example: the bpf_map_update_elem branch drives stage_udp's time
    obj = load_object(str(EXAMPLES / "tc-tailcall" / "classifier.bpf.o"))
    program = next(p for p in obj.programs if p.name == "stage_udp")
    got = analyze_program(obj, program, load_cost_table(None), AnalysisOptions())
    source = EXAMPLES / "tc-tailcall" / "classifier.bpf.c"
    update = line_of("bpf_map_update_elem(&dns_buckets", source)
    assert update in {c.line for c in got.worst_path_ns}
    assert update not in {c.line for c in got.worst_path}
    rendered = explain.render(got, 3, by_ns=True)
    first = next(line for line in rendered.splitlines() if "classifier.bpf.c:" in line)
    assert first.endswith(f"classifier.bpf.c:{update}")


@needs_clang
def test_a_time_budget_failure_points_at_the_helper(tmp_path: Path,
                                                     result: ProgramResult) -> None:
    helper = line_of("bpf_map_update_elem(&seen")
    assert result.ns_max is not None
    cfg = config(tmp_path, f'[[budget]]\nprogram = "helper_branch"\nmax_insns = 1000\n'
                           f'max_time = "{result.ns_max / 2:.1f}ns"\n')
    report = evaluate(AnalysisReport((result,), ()), cfg, None)
    [verdict] = report.programs
    [finding] = [f for f in verdict.findings if f.rule == "BPF001"]
    assert finding.loc is not None and finding.loc.line == helper
    root = PROGS.parent.parent
    annotation = github.render(report, root)
    assert f"line={helper}," in annotation
    [sarif_result] = sarif.to_sarif(report, root)["runs"][0]["results"]
    assert sarif_result["locations"][0]["physicalLocation"]["region"]["startLine"] == helper
    details = text.render(report)
    assert "hottest source lines on the worst path by time" in details
    hot = details.split("by time:")[1].splitlines()[1]
    assert f":{helper} " in hot
    summary = markdown.render(report)  # the job summary's hottest lines
    assert f"{SOURCE.name}:{helper}`" in summary.split("worst path by time:")[1]


@needs_clang
def test_an_instruction_budget_failure_keeps_the_instruction_path(
        tmp_path: Path, result: ProgramResult) -> None:
    arithmetic = {c.line for c in result.worst_path if "h *=" in c.text}
    assert result.insns_max is not None
    cfg = config(tmp_path, f'[[budget]]\nprogram = "helper_branch"\n'
                           f"max_insns = {result.insns_max - 1}\n")
    report = evaluate(AnalysisReport((result,), ()), cfg, None)
    [finding] = [f for f in report.programs[0].findings if f.rule == "BPF001"]
    assert finding.loc is not None and finding.loc.line in arithmetic | {
        max(result.worst_path, key=lambda c: c.insns).line}
    assert "by time" not in text.render(report)


@needs_clang
def test_json_and_explain_carry_both_paths(capsys: pytest.CaptureFixture[str]) -> None:
    obj = compile_bpf(SOURCE)
    helper = line_of("bpf_map_update_elem(&seen")
    assert main(["analyze", "--no-cache", "--format", "json", str(obj)]) == 0
    [doc] = json.loads(capsys.readouterr().out)["programs"]
    assert helper in {c["line"] for c in doc["worst_path_ns"]}
    assert helper not in {c["line"] for c in doc["worst_path"]}
    assert abs(sum(c["ns"] for c in doc["worst_path_ns"]) - doc["ns"]["max"]) \
        <= 0.0005 * (len(doc["worst_path_ns"]) + 1)
    assert main(["explain", str(obj)]) == 0  # by time: the default
    out = capsys.readouterr().out
    assert "worst path by time" in out
    assert f"helper_branch.bpf.c:{helper}" in out.split("LOCATION")[1].splitlines()[1]
    assert main(["explain", "--by", "insns", str(obj)]) == 0
    out = capsys.readouterr().out
    assert "worst path by instructions" in out
    assert f"helper_branch.bpf.c:{helper}\n" not in out


# loops (summarised and unrolled), bpf_loop and other callbacks, bpf-to-bpf calls,
# tail calls, iterators, may_goto, overlapped iterations
SHAPES = ("bpf_loop", "loop_nested", "loop_shapes", "calls", "tail_calls", "iter_num",
          "may_goto", "loop_calls_sub", "for_each_map", "csum_loop", "ns/pkt_driven",
          "large_parser", "switch_proto")


@needs_clang
@pytest.mark.parametrize("name", SHAPES)
def test_every_shape_of_time_path_adds_up(name: str) -> None:
    obj = load_object(compile_bpf(PROGS / f"{name}.bpf.c"))
    table = load_cost_table(None)
    checked = 0
    for program in obj.programs:
        got = analyze_program(obj, program, table, AnalysisOptions())
        if not got.bounded or got.ns_max is None:
            continue
        assert path_adds_up(got.worst_path_ns, got.ns_max), (program.name, got.ns_max)
        assert sum(c.insns for c in got.worst_path) == got.insns_max, program.name
        # no path is dearer in time than the one reported as the dearest
        assert sum(c.ns for c in got.worst_path) <= got.ns_max + 0.0005 * (
            len(got.worst_path) + 1), program.name
        checked += 1
    assert checked


@needs_clang
def test_a_time_regression_points_at_the_helper(tmp_path: Path, result: ProgramResult) -> None:
    helper = line_of("bpf_map_update_elem(&seen")
    assert result.ns_max is not None and result.insns_max is not None
    before = dataclasses.replace(result, ns_max=result.ns_max / 2)
    cfg = config(tmp_path, '[[budget]]\nprogram = "helper_branch"\nmax_insns = 1000\n'
                           '[regression]\nallowed = "5%"\n')
    report = evaluate(AnalysisReport((result,), ()), cfg,
                      from_results((before,), "base", cfg.root))
    [finding] = [f for f in report.programs[0].findings if f.rule == "BPF002"]
    assert finding.by_ns and finding.loc is not None and finding.loc.line == helper

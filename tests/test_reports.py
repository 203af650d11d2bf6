"""Every report format renders the same GateReport; SARIF validates against 2.1.0."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

import jsonschema
import pytest
from gate_helpers import HOT, config, program

from bpflint.budget.baseline import from_results
from bpflint.budget.gate import GateReport, evaluate
from bpflint.commands import check
from bpflint.errors import BpfLintError
from bpflint.report import check_json, github, markdown, sarif, text
from bpflint.results import AnalysisReport, Diagnostic, SourceLoc

# the official SARIF 2.1.0 schema (a copy of the one in ../shared/)
SCHEMA = Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json"


def gate_report(tmp_path: Path, *, warn_only: bool = False) -> GateReport:
    """In tmp_path: src/fw.bpf.c exists; one failing, one passing, one new, one gone."""
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "fw.bpf.c").write_text("// source\n" * 30)
    cfg = config(tmp_path, '[regression]\nallowed = "5%"\n'
                           '[[budget]]\ntype = "xdp"\nmax_insns = 1000\nmax_time = "1us"\n')
    hot = tuple(cost.__class__("src/fw.bpf.c", cost.line, cost.insns, cost.ns, cost.text)
                for cost in HOT)
    obj = str(tmp_path / "build" / "fw.bpf.o")
    before = from_results([program("big", obj=obj, insns_max=900, ns_max=800.0),
                           program("small", obj=obj, insns_max=100, ns_max=500.0),
                           program("gone", obj=obj)], "bpf-baseline.json", root=tmp_path)
    now = AnalysisReport((
        program("small", obj=obj, insns_max=90, ns_max=450.0),
        program("big", obj=obj, insns_max=1200, ns_max=1500.0, hot=hot,
                diagnostics=(Diagnostic("BPF005", "open-tail-call", "tail call, no targets",
                                        SourceLoc("/elsewhere/x.c", 4)),)),
        program("fresh", obj=obj),
    ), ())
    return evaluate(now, cfg, before, warn_only=warn_only)


def test_text_table_is_aligned_worst_first_with_hot_lines(tmp_path: Path) -> None:
    out = text.render(gate_report(tmp_path))
    lines = out.splitlines()
    assert lines[0].split() == ["VERDICT", "PROGRAM", "BUDGET", "MIN", "MAX", "BASELINE",
                                "DELTA"]
    assert lines[1].startswith("FAIL") and "fw.bpf.o:xdp:big" in lines[1]
    assert "1200 insns" in lines[1] and "+300 (+33.3%)" in lines[1]
    assert lines[1].index("1200 insns") == lines[0].index("MAX")  # aligned columns
    assert lines[2].index("1.50us") == lines[0].index("MAX")
    assert "(new)" in out and "(removed)" in out
    hot = out[out.index("hottest source lines"):].splitlines()[1:4]
    assert [h.split()[0] for h in hot] == ["src/fw.bpf.c:12", "src/fw.bpf.c:14",
                                           "src/fw.bpf.c:9"]
    assert "for (i = 0; i < n; i++)" in hot[0]
    assert "\x1b[" not in out
    assert out.rstrip().endswith("over budget or regressed against bpf-baseline.json")


def test_text_colour_only_when_asked(tmp_path: Path) -> None:
    coloured = text.render(gate_report(tmp_path), colour=True)
    assert "\x1b[1;31mFAIL" in coloured
    plain = [line.replace("\x1b[1;31m", "").replace("\x1b[32m", "").replace("\x1b[2m", "")
             .replace("\x1b[0m", "") for line in coloured.splitlines()]
    assert plain == text.render(gate_report(tmp_path)).splitlines()


def test_text_warn_only_says_so(tmp_path: Path) -> None:
    out = text.render(gate_report(tmp_path, warn_only=True))
    assert "FAIL (warn-only)" in out and "not failing the build" in out


def test_explain_match(tmp_path: Path) -> None:
    out = text.render_explain(gate_report(tmp_path))
    assert "fw.bpf.o:xdp:big: budget #1 (line 3: type 'xdp'): type 'xdp' is 'xdp'" in out
    assert "gone" not in out


def test_check_json_extends_the_design_contract(tmp_path: Path) -> None:
    data = json.loads(check_json.render(gate_report(tmp_path)))
    assert data["version"] == 1 and data["verdict"] == "fail" and data["exit_code"] == 1
    big = data["programs"][0]
    for key in ("object", "section", "name", "type", "bounded", "insns", "ns", "source",
                "worst_path"):
        assert key in big
    assert big["insns"]["max"] == 1200 and big["verdict"] == "fail"
    assert big["budget"]["max_insns"] == 1000 and big["budget"]["max_ns"] == 1000.0
    assert big["baseline"]["insns"]["max"] == 900 and big["delta"]["insns"] == 300
    assert {f["rule"] for f in big["findings"]} == {"BPF001", "BPF002", "BPF005"}
    assert [r["key"] for r in data["removed"]] == ["build/fw.bpf.o:xdp:gone"]


def test_sarif_validates_and_locates_findings_inside_the_workspace(tmp_path: Path) -> None:
    document = json.loads(sarif.render(gate_report(tmp_path), tmp_path))
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    run = document["runs"][0]
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert rule_ids[:6] == ["BPF001", "BPF002", "BPF003", "BPF004", "BPF005", "BPF006"]
    by_rule: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for result in run["results"]:
        by_rule.setdefault(result["ruleId"], []).append(result)
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
    over = by_rule["BPF001"][0]["locations"][0]["physicalLocation"]
    assert over == {"artifactLocation": {"uri": "src/fw.bpf.c", "uriBaseId": "%SRCROOT%"},
                    "region": {"startLine": 12}}
    # a source outside the workspace falls back to the object, with no line
    tail = by_rule["BPF005"][0]["locations"][0]["physicalLocation"]
    assert tail == {"artifactLocation": {"uri": "build/fw.bpf.o", "uriBaseId": "%SRCROOT%"}}
    assert by_rule["BPF005"][0]["level"] == "note"
    prints = [r["partialFingerprints"]["bpflintFinding/v1"] for r in run["results"]]
    assert len(set(prints)) == len(prints)
    again = json.loads(sarif.render(gate_report(tmp_path), tmp_path))
    assert prints == [r["partialFingerprints"]["bpflintFinding/v1"]
                      for r in again["runs"][0]["results"]]
    for result in run["results"]:
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert not uri.startswith(("/", "..")) and "/../" not in uri


def test_sarif_object_outside_workspace_uses_its_bare_name(tmp_path: Path) -> None:
    where = sarif.locate(SourceLoc("../../etc/passwd", 1), "/outside/dir/x.o", tmp_path)
    assert where == sarif.Location("x.o", None)


def test_github_escaping() -> None:
    assert github.escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert github.escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_github_annotations_at_file_and_line(tmp_path: Path) -> None:
    out = github.render(gate_report(tmp_path), tmp_path).splitlines()
    assert out[0].startswith("::error file=src/fw.bpf.c,line=12,title=BPF001 over-budget%3A big::")
    assert "big: worst case 1200 insns exceeds" in out[0]
    assert out[-1].startswith("::notice file=build/fw.bpf.o,title=BPF005")


def test_github_annotations_are_capped_with_a_summary(tmp_path: Path) -> None:
    out = github.render(gate_report(tmp_path), tmp_path, limit=2).splitlines()
    assert len(out) == 3 and all(line.startswith("::error ") for line in out[:2])
    # big has 2 over-budget, 2 regression errors and 1 note: 3 left out
    assert out[-1].startswith("::notice::bpflint: 3 more finding(s) not annotated")


def test_github_step_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    github.append_step_summary(gate_report(tmp_path))
    content = summary.read_text()
    assert content.startswith("earlier step\n" + markdown.MARKER)


def test_markdown_table(tmp_path: Path) -> None:
    out = markdown.render(gate_report(tmp_path))
    lines = out.splitlines()
    assert lines[0] == "<!-- bpflint-report -->" and lines[1] == markdown.HEADING
    assert "| | Program | Budget | Before | After | Delta |" in lines
    row = next(line for line in lines
               if "`build/fw.bpf.o:xdp:big`" in line and line.startswith("|"))
    assert "1000 insns / 1us" in row and "900 insns / 800ns" in row
    assert "1200 insns / 1.50us" in row and "\u25b2 +300 insns (+33.3%)" in row
    small = next(line for line in lines if "`build/fw.bpf.o:xdp:small`" in line)
    assert "\u25bc -10 insns (-10.0%)" in small and "\u25bc -50.0ns" in small
    assert "| new |" in out and "| removed |" in out
    assert "`src/fw.bpf.c:12`" in out


def parse_outputs(argv: list[str]) -> list[list[str | None]] | None:
    parser = argparse.ArgumentParser(exit_on_error=False)
    check.add_arguments(parser)
    return parser.parse_args(argv).outputs  # type: ignore[no-any-return]


def test_formats_pair_with_the_following_output() -> None:
    pairs = parse_outputs(["--format", "text", "--format", "sarif", "--output", "out.sarif",
                           "--format", "markdown", "--output", "c.md"])
    plan = check.plan_outputs(pairs, {})
    assert plan == [("text", None), ("sarif", Path("out.sarif")), ("markdown", Path("c.md"))]
    assert check.plan_outputs(None, {}) == [("text", None)]


def test_github_auto_selected_on_actions_unless_stdout_holds_a_document() -> None:
    assert check.plan_outputs(None, {"GITHUB_ACTIONS": "true"}) == [("text", None),
                                                                     ("github", None)]
    json_out = parse_outputs(["--format", "json"])
    assert check.plan_outputs(json_out, {"GITHUB_ACTIONS": "true"}) == [("json", None)]


def test_two_documents_on_stdout_is_a_usage_error() -> None:
    with pytest.raises(BpfLintError, match="would all go to standard output"):
        check.plan_outputs(parse_outputs(["--format", "json", "--format", "sarif"]), {})


@pytest.mark.parametrize("argv", [["--output", "x"],
                                  ["--format", "sarif", "--output", "a", "--output", "b"]])
def test_output_without_its_format_is_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_outputs(argv)


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_colour_only_on_a_tty_without_no_color() -> None:
    assert check.use_colour(_Stream(True), {})  # type: ignore[arg-type]
    assert not check.use_colour(_Stream(False), {})  # type: ignore[arg-type]
    assert not check.use_colour(_Stream(True), {"NO_COLOR": "1"})  # type: ignore[arg-type]


def test_sarif_rule_levels_agree_with_their_results(tmp_path: Path) -> None:
    """BPF005 (an engine note) was declared level error while its results were notes."""
    document = json.loads(sarif.render(gate_report(tmp_path), tmp_path))
    run = document["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    level = {rule["id"]: rule["defaultConfiguration"]["level"] for rule in rules}
    assert level["BPF005"] == "note" and level["BPF001"] == "error"
    results = run["results"]
    assert {r["ruleId"] for r in results} >= {"BPF001", "BPF005"}
    for result in results:  # this config keeps every policy at its default
        assert result["level"] == level[result["ruleId"]], result


def _anchors(markdown_text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to '-'."""
    anchors = set()
    for line in markdown_text.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add("".join(c for c in title if c.isalnum() or c in " -_").replace(" ", "-"))
    return anchors


def _engine_rule_ids() -> set[str]:
    """Every rule id the package's source can emit: docs/rules.md must describe each."""
    package = Path(__file__).resolve().parents[1] / "bpflint"
    return {match for path in package.rglob("*.py")
            for match in re.findall(r'"(BPF\d{3})"', path.read_text())}


def test_every_help_uri_names_an_anchor_of_docs_rules(tmp_path: Path) -> None:
    rules_md = Path(__file__).resolve().parents[1] / "docs" / "rules.md"
    anchors = _anchors(rules_md.read_text())
    document = json.loads(sarif.render(gate_report(tmp_path), tmp_path))
    rules = document["runs"][0]["tool"]["driver"]["rules"]
    ids = {rule["id"] for rule in rules} | set(sarif.DEFAULT_LEVEL)
    assert ids >= {"BPF001", "BPF002", "BPF003", "BPF004", "BPF005", "BPF006", "BPF007",
                   "BPF008"}
    for rule in rules:
        page, _, anchor = rule["helpUri"].partition("#")
        assert page.endswith("/docs/rules.md") and anchor in anchors, rule["helpUri"]
    assert {rule_id.lower() for rule_id in ids | _engine_rule_ids()} <= anchors
    assert _engine_rule_ids() <= set(sarif.DEFAULT_LEVEL)


def test_a_regression_says_how_to_accept_it(tmp_path: Path) -> None:
    cfg = config(tmp_path, 'baseline = "bpf-baseline.json"\n[regression]\nallowed = "5%"\n'
                           '[[budget]]\nmax_insns = 100000\n')
    before = from_results([program("p", insns_max=100)], "bpf-baseline.json", root=tmp_path)
    report = evaluate(AnalysisReport((program("p", insns_max=200),), ()), cfg, before)
    args = argparse.Namespace(base=None, config=Path("bpf/bpfbudget.toml"))
    hint = check.accept_hint(cfg, args, report)
    assert hint is not None and "`bpflint baseline --config bpf/bpfbudget.toml`" in hint
    report = dataclasses.replace(report, accept_hint=hint)
    assert f"hint: {hint}" in text.render(report)
    assert "bpflint baseline --config bpf/bpfbudget.toml" in markdown.render(report)
    on_base = check.accept_hint(cfg, argparse.Namespace(base="origin/main", config=None), report)
    assert on_base is not None and "raise [regression] allowed" in on_base
    within = evaluate(AnalysisReport((program("p", insns_max=101),), ()), cfg, before)
    assert check.accept_hint(cfg, args, within) is None


def test_line_zero_is_never_shown_as_a_line(tmp_path: Path) -> None:
    cfg = config(tmp_path, '[[budget]]\nmax_insns = 10\n')
    zero = (HOT[0].__class__("sockex3_kern.c", 0, 700, 900.0, ""),)
    report = evaluate(AnalysisReport((program("p", insns_max=700, hot=zero),), ()), cfg, None)
    shown = text.render(report) + markdown.render(report)
    assert "sockex3_kern.c" in shown and "sockex3_kern.c:0" not in shown

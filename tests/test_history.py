"""`bpflint history` and the HTML report's trends: the baseline file's git history."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from gate_helpers import config, program

from bpflint.budget.baseline import from_results, to_json_text
from bpflint.budget.gate import evaluate
from bpflint.budget.history import baseline_history
from bpflint.cli import main
from bpflint.commands.history import sparkline
from bpflint.report import html
from bpflint.results import AnalysisReport

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is needed")
NS = (400.0, 900.0, 650.0)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t",
                    "-c", "commit.gpgsign=false", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    baseline = repo / "bpf-baseline.json"
    for number, ns in enumerate(NS):
        results = [program("fw", ns_max=ns, insns_max=100 + number)]
        if number:  # a program added in the second commit
            results.append(program("late", ns_max=10.0 * number))
        baseline.write_text(to_json_text(from_results(results, "x")))
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"baseline {number}")
    (repo / "other.txt").write_text("not the baseline\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "unrelated")
    return repo


@needs_git
def test_history_follows_the_commits_of_the_baseline(repo: Path) -> None:
    history = baseline_history(repo / "bpf-baseline.json")
    assert history is not None
    assert [r.subject for r in history.revisions] == ["baseline 0", "baseline 1", "baseline 2"]
    fw = history.programs["fw.bpf.o:xdp:fw"]
    assert [p.ns_max for p in fw] == list(NS)
    assert [p.insns_max for p in fw] == [100, 101, 102]
    assert [p.ns_max for p in history.programs["fw.bpf.o:xdp:late"]] == [10.0, 20.0]
    assert len(baseline_history(repo / "bpf-baseline.json", limit=2).revisions) == 2


@needs_git
def test_history_command(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "--baseline", str(repo / "bpf-baseline.json")]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("fw.bpf.o:xdp:fw "))
    assert "▁█▅" in row and "400ns -> 650ns (+62.5%)" in row and "insns 100 -> 102" in row
    late = next(line for line in out.splitlines() if line.startswith("fw.bpf.o:xdp:late"))
    assert "·▁█" in late
    assert main(["history", "--format", "json", "--baseline",
                 str(repo / "bpf-baseline.json")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["ns_max"] for p in doc["programs"]["fw.bpf.o:xdp:fw"]] == list(NS)


def test_history_outside_git_is_a_one_line_error(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "bpf-baseline.json"
    baseline.write_text(to_json_text(from_results([program("fw")], "x")))
    assert main(["history", "--baseline", str(baseline)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no git history" in err[0] and str(baseline) in err[0]


def test_sparkline() -> None:
    assert sparkline([1.0, 2.0, None, 3.0]) == "▁▅·█"
    assert sparkline([5.0, 5.0]) == "▁▁"
    assert sparkline([None]) == "·"


@needs_git
def test_the_html_report_draws_each_trend(repo: Path, tmp_path: Path) -> None:
    history = baseline_history(repo / "bpf-baseline.json")
    now = program("fw", ns_max=700.0)
    cfg = config(tmp_path, '[[budget]]\nprogram = "fw"\nmax_time = "1us"\n')
    report = evaluate(AnalysisReport((now,), ()), cfg, None)
    page = html.render_check(report, history)
    assert "trend (baseline history, now)" in page
    svg = re.search(r'<svg class="trend"[^>]*><title>([^<]*)</title>'
                    r'<polyline points="([^"]+)"/>', page)
    assert svg is not None
    assert svg.group(1) == "400ns → 900ns → 650ns → 700ns"
    assert len(svg.group(2).split()) == 4  # three commits, then this run

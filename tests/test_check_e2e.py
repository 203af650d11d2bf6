"""`bpflint check` and `bpflint baseline` end to end, on a temporary git repository
holding the example project in tests/data/gate_project (sources compiled by the
build step, objects analysed by the real engine).

Tests that need real costs fail, on purpose, while the engine reports none.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from bpfc import find_clang

PROJECT = Path(__file__).parent / "data" / "gate_project"
# the official SARIF 2.1.0 schema (a copy of the one in ../shared/)
SCHEMA = Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json"
ROUNDS = re.compile(r"#define ROUNDS \d+")

pytestmark = pytest.mark.skipif(find_clang() is None, reason="no clang to build the project")


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True,
                          check=True, timeout=60)
    return done.stdout


def bpflint(repo: Path, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("GITHUB_") and k != "NO_COLOR"}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "bpflint", *args], cwd=repo, env=environ,
                          capture_output=True, text=True, timeout=300)


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def set_rounds(repo: Path, rounds: int) -> None:
    source = repo / "src" / "fw.bpf.c"
    source.write_text(ROUNDS.sub(f"#define ROUNDS {rounds}", source.read_text()))


def hot_lines(repo: Path) -> set[int]:
    lines = (repo / "src" / "fw.bpf.c").read_text().splitlines()
    return {number for number, line in enumerate(lines, start=1) if "/* HOT */" in line}


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(PROJECT, root)
    git(root, "init", "-q", "-b", "main")
    commit(root, "example project")
    return root


def costs(repo: Path) -> dict[str, dict[str, Any]]:
    """Per program key, its check JSON; asserts the analysis produced costs."""
    done = bpflint(repo, "check", "--format", "json")
    assert done.returncode in (0, 1), done.stderr
    programs = {p["key"]: p for p in json.loads(done.stdout)["programs"]}
    assert set(programs) == {"src/fw.bpf.o:xdp:xdp_mix", "src/fw.bpf.o:xdp:xdp_pass",
                             "src/trace.bpf.o:tracepoint/syscalls/sys_enter_openat:count_openat"}
    missing = [key for key, p in programs.items()
               if not p["bounded"] or p["insns"]["max"] is None or p["ns"]["max"] is None]
    assert not missing, (f"analysis produced no costs for {missing}: these tests wait for "
                         "the cost engine (bpflint.cost.engine.analyze_program)")
    return programs


def test_within_budget_passes(repo: Path) -> None:
    costs(repo)
    done = bpflint(repo, "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bpflint: PASS: 3 program(s) within budget" in done.stdout
    assert "Traceback" not in done.stderr


def test_over_budget_fails_naming_the_program_and_its_hottest_lines(repo: Path) -> None:
    before = costs(repo)["src/fw.bpf.o:xdp:xdp_mix"]["insns"]["max"]
    config = repo / "bpfbudget.toml"
    config.write_text(config.read_text() +
                      f'\n[[budget]]\nprogram = "xdp_mix"\nmax_insns = {before * 2}\n')
    commit(repo, "tight budget for xdp_mix")
    assert bpflint(repo, "check").returncode == 0
    set_rounds(repo, 16 * 8)
    commit(repo, "more rounds")

    done = bpflint(repo, "check", "--format", "text", "--format", "sarif", "--output",
                   "out.sarif", "--format", "github")
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"^FAIL\s+src/fw\.bpf\.o:xdp:xdp_mix", done.stdout, re.M)
    assert re.search(r"^PASS\s+src/fw\.bpf\.o:xdp:xdp_pass", done.stdout, re.M)
    hot = done.stdout[done.stdout.index("hottest source lines"):].splitlines()[1:4]
    hot_numbers = {int(m.group(1)) for line in hot
                   if (m := re.search(r"fw\.bpf\.c:(\d+)", line))}
    assert hot_numbers & hot_lines(repo), hot

    sarif = json.loads((repo / "out.sarif").read_text())
    jsonschema.validate(sarif, json.loads(SCHEMA.read_text()))
    over = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "BPF001"]
    assert over
    location = over[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "src/fw.bpf.c"
    assert location["region"]["startLine"] in hot_lines(repo)

    errors = [line for line in done.stdout.splitlines() if line.startswith("::error ")]
    assert errors and all("title=BPF001" in line or "title=BPF002" in line for line in errors)
    match = re.match(r"::error file=src/fw\.bpf\.c,line=(\d+),title=BPF001 over-budget%3A "
                     r"xdp_mix::", errors[0])
    assert match and int(match.group(1)) in hot_lines(repo), errors[0]


def test_regression_under_budget_but_over_the_allowance_fails(repo: Path) -> None:
    costs(repo)
    done = bpflint(repo, "baseline")
    assert done.returncode == 0, done.stderr
    baseline = json.loads((repo / "bpf-baseline.json").read_text())
    assert len(baseline["programs"]) == 3
    commit(repo, "baseline")
    assert bpflint(repo, "check").returncode == 0

    set_rounds(repo, 20)  # +25% on the loop, still far under the 100000-insn budget
    done = bpflint(repo, "check", "--format", "json")
    assert done.returncode == 1, done.stderr
    mix = next(p for p in json.loads(done.stdout)["programs"] if p["name"] == "xdp_mix")
    assert [f["rule"] for f in mix["findings"] if f["level"] == "error"][0] == "BPF002"
    assert not any(f["rule"] == "BPF001" for f in mix["findings"])
    assert mix["delta"]["insns"] > 0


def test_base_ref_without_a_baseline_file(repo: Path) -> None:
    costs(repo)
    assert not (repo / "bpf-baseline.json").exists()
    set_rounds(repo, 20)
    source = repo / "src" / "fw.bpf.c"
    # xdp_pass moves to another section; a new program appears
    text = source.read_text().replace('SEC("xdp")\nint xdp_pass', 'SEC("xdp.frags")\nint xdp_pass')
    source.write_text(text + '\nSEC("xdp")\nint xdp_new(struct xdp_md *ctx)\n{\n'
                             '\treturn XDP_DROP;\n}\n')
    commit(repo, "more rounds, renamed section, new program")

    done = bpflint(repo, "check", "--base", "HEAD~1", "--format", "json", "--format",
                   "markdown", "--output", "comment.md")
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert data["baseline"] == "git ref HEAD~1"
    by_name = {p["name"]: p for p in data["programs"]}
    assert by_name["xdp_mix"]["change"] == "same" and by_name["xdp_mix"]["verdict"] == "fail"
    assert by_name["xdp_pass"]["change"] == "renamed"
    assert by_name["xdp_pass"]["renamed_from"] == "src/fw.bpf.o:xdp:xdp_pass"
    assert by_name["xdp_new"]["change"] == "new"
    comment = (repo / "comment.md").read_text()
    assert comment.startswith("<!-- bpflint-report -->") and "\u25b2" in comment

    same = bpflint(repo, "check", "--base", "HEAD")
    assert same.returncode == 0, same.stdout + same.stderr
    # the temporary worktree is gone
    assert git(repo, "worktree", "list").count("\n") == 1


def test_base_ref_errors_are_one_line(repo: Path) -> None:
    done = bpflint(repo, "check", "--base", "no-such-branch")
    assert done.returncode == 2
    assert done.stderr.strip() == f"bpflint: error: --base no-such-branch: no such commit in " \
                                  f"{repo.resolve()}"


def test_config_typo_exits_two_with_line_and_suggestion(repo: Path) -> None:
    config = repo / "bpfbudget.toml"
    config.write_text(config.read_text().replace("max_insns = 100000\nmax_time = \"1ms\"\n\n",
                                                 "max_insn = 100000\nmax_time = \"1ms\"\n\n", 1))
    line = config.read_text().splitlines().index("max_insn = 100000") + 1
    done = bpflint(repo, "check")
    assert done.returncode == 2
    assert done.stderr == (f"bpflint: error: bpfbudget.toml:{line}: key 'budget[1].max_insn': "
                           "unknown key; did you mean 'max_insns'?\n")
    assert done.stdout == ""


def test_budget_matching_nothing_exits_two(repo: Path) -> None:
    config = repo / "bpfbudget.toml"
    config.write_text(config.read_text().replace('type = "xdp"', 'type = "xpd"'))
    done = bpflint(repo, "check")
    assert done.returncode == 2
    assert "key 'budget[1]': matches no program" in done.stderr
    assert "did you mean 'xdp'?" in done.stderr


def test_explain_match(repo: Path) -> None:
    lines = (repo / "bpfbudget.toml").read_text().splitlines()
    first, second = [n for n, line in enumerate(lines, start=1) if line == "[[budget]]"]
    done = bpflint(repo, "check", "--explain-match")
    assert done.returncode in (0, 1), done.stderr
    assert (f"src/fw.bpf.o:xdp:xdp_mix: budget #1 (line {first}: type 'xdp'): type 'xdp' is 'xdp'"
            in done.stdout)
    assert (f"count_openat: budget #2 (line {second}: section 'tracepoint/syscalls/*'): "
            "section 'tracepoint/syscalls/*' matches 'tracepoint/syscalls/sys_enter_openat'"
            in done.stdout)


def test_github_actions_environment(repo: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    done = bpflint(repo, "check", env={"GITHUB_ACTIONS": "true",
                                       "GITHUB_STEP_SUMMARY": str(summary),
                                       "GITHUB_WORKSPACE": str(repo)})
    assert done.returncode in (0, 1), done.stderr
    assert "VERDICT" in done.stdout  # text stays, github is added
    assert summary.read_text().startswith("<!-- bpflint-report -->")


def test_killed_baseline_run_keeps_the_old_file(repo: Path) -> None:
    old = '{"version": 1, "programs": {}}\n'
    (repo / "bpf-baseline.json").write_text(old)
    script = ("import os, signal, sys\n"
              "from bpflint.budget import baseline\n"
              "baseline.os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"
              "from bpflint.cli import main\n"
              "sys.exit(main(['baseline']))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert (repo / "bpf-baseline.json").read_text() == old


def test_failing_baseline_run_keeps_the_old_file(repo: Path) -> None:
    old = '{"version": 1, "programs": {}}\n'
    (repo / "bpf-baseline.json").write_text(old)
    (repo / "src" / "broken.bpf.c").write_text("int x = ;\n")
    done = bpflint(repo, "baseline")
    assert done.returncode == 2
    assert done.stderr.startswith("bpflint: error: ") and "broken.bpf.c" in done.stderr
    assert (repo / "bpf-baseline.json").read_text() == old

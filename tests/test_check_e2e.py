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
from bpfc import find_clang, host_include_flags

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


# ---------------------------------------------------------------- issue 17: no silent pass

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def objects_project(root: Path, build: str | None) -> Path:
    """The gate project built by its own Makefile into build/, which git ignores:
    [analyze] names the objects, and only the sources are committed."""
    shutil.copytree(PROJECT, root)
    includes = " ".join(host_include_flags())
    (root / "Makefile").write_text(
        "CLANG ?= clang\n"
        "all: build/fw.bpf.o build/trace.bpf.o\n"
        "build/%.bpf.o: src/%.bpf.c\n"
        "\tmkdir -p build\n"
        f"\t$(CLANG) -target bpf -O2 -g {includes} -c $< -o $@\n")
    (root / ".gitignore").write_text(".bpflint-cache/\nbuild/\n")
    config = root / "bpfbudget.toml"
    analyze = 'objects = ["build/*.bpf.o"]\n'
    if build is not None:
        analyze += f"build = {build}\n"
    config.write_text(config.read_text().replace('sources = ["src/*.bpf.c"]\n', analyze)
                      .replace('baseline = "bpf-baseline.json"\n', ""))
    git(root, "init", "-q", "-b", "main")
    make(root)
    commit(root, "objects built by make")
    return root


def make(root: Path) -> None:
    clang = find_clang()
    assert clang is not None
    subprocess.run(["make", "-s", f"CLANG={clang}"], cwd=root, check=True, timeout=120,
                   capture_output=True)


def clang_env() -> dict[str, str]:
    clang = find_clang()
    assert clang is not None
    return {"CLANG": clang}


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_base_without_the_objects_is_an_error_not_all_new(tmp_path: Path) -> None:
    repo = objects_project(tmp_path / "project", build=None)
    set_rounds(repo, 20)
    make(repo)
    done = bpflint(repo, "check", "--base", "HEAD")
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("bpflint: error: --base HEAD: build/")
    assert "is not committed" in line and "[analyze] build" in line
    assert "(new)" not in done.stdout
    assert git(repo, "worktree", "list").count("\n") == 1


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_base_runs_the_configured_build_and_finds_the_regression(tmp_path: Path) -> None:
    repo = objects_project(tmp_path / "project", build='["make", "-s"]')
    assert bpflint(repo, "check", "--base", "HEAD", env=clang_env()).returncode == 0
    set_rounds(repo, 20)  # +25% on xdp_mix's loop
    make(repo)
    done = bpflint(repo, "check", "--base", "HEAD", "--format", "json", env=clang_env())
    assert done.returncode == 1, done.stdout + done.stderr
    by_name = {p["name"]: p for p in json.loads(done.stdout)["programs"]}
    assert by_name["xdp_mix"]["change"] == "same" and by_name["xdp_mix"]["key"] == \
        "build/fw.bpf.o:xdp:xdp_mix"
    assert {f["rule"] for f in by_name["xdp_mix"]["findings"]} == {"BPF002"}
    assert by_name["xdp_pass"]["change"] == "same"
    assert git(repo, "worktree", "list").count("\n") == 1  # the checkout is gone

    broken = repo / "bpfbudget.toml"
    broken.write_text(broken.read_text().replace('["make", "-s"]', '["make", "no-such-target"]'))
    commit(repo, "a build command that fails")
    failed = bpflint(repo, "check", "--base", "HEAD", env=clang_env())
    assert failed.returncode == 2
    [line] = failed.stderr.splitlines()
    assert line.startswith("bpflint: error: --base HEAD: build command `make no-such-target` "
                           "failed (exit 2)"), line


def compile_to(source: Path, out: Path) -> None:
    clang = find_clang()
    assert clang is not None
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([clang, "-target", "bpf", "-O2", "-g", *host_include_flags(), "-c",
                    str(source), "-o", str(out)], check=True, timeout=120)


def test_same_object_name_in_two_directories(tmp_path: Path) -> None:
    """a/fw.bpf.o and b/fw.bpf.o, different code: two baseline entries, and no false
    regression on the next check."""
    root = tmp_path / "project"
    root.mkdir()
    source = root / "fw.bpf.c"
    source.write_text((PROJECT / "src" / "fw.bpf.c").read_text())
    compile_to(source, root / "a" / "fw.bpf.o")
    source.write_text(ROUNDS.sub("#define ROUNDS 64", source.read_text()))
    compile_to(source, root / "b" / "fw.bpf.o")
    (root / "bpfbudget.toml").write_text(
        'baseline = "bpf-baseline.json"\n[analyze]\nobjects = ["*/fw.bpf.o"]\n'
        '[regression]\nallowed = "5%"\n[[budget]]\ntype = "xdp"\nmax_insns = 100000\n')
    written = bpflint(root, "baseline")
    assert written.returncode == 0, written.stderr
    assert "wrote 4 program(s)" in written.stderr
    keys = json.loads((root / "bpf-baseline.json").read_text())["programs"]
    assert sorted(keys) == ["a/fw.bpf.o:xdp:xdp_mix", "a/fw.bpf.o:xdp:xdp_pass",
                            "b/fw.bpf.o:xdp:xdp_mix", "b/fw.bpf.o:xdp:xdp_pass"]
    assert keys["a/fw.bpf.o:xdp:xdp_mix"]["insns"]["max"] < \
        keys["b/fw.bpf.o:xdp:xdp_mix"]["insns"]["max"]
    done = bpflint(root, "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bpflint: PASS: 4 program(s)" in done.stdout


def test_old_baseline_keys_still_pair(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    compile_to(PROJECT / "src" / "fw.bpf.c", root / "build" / "fw.bpf.o")
    (root / "bpfbudget.toml").write_text(
        'baseline = "bpf-baseline.json"\n[analyze]\nobjects = ["build/*.bpf.o"]\n'
        '[regression]\nallowed = "5%"\n[[budget]]\ntype = "xdp"\nmax_insns = 100000\n')
    assert bpflint(root, "baseline").returncode == 0
    data = json.loads((root / "bpf-baseline.json").read_text())
    # the baseline as bpflint wrote it before keys had paths
    old = {key.replace("build/", ""): {**entry, "object": "fw.bpf.o"}
           for key, entry in data["programs"].items()}
    (root / "bpf-baseline.json").write_text(json.dumps({**data, "programs": old}))
    done = bpflint(root, "check", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert {p["change"] for p in report["programs"]} == {"same"} and report["removed"] == []


def test_nothing_found_is_an_error_unless_expected(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "empty").mkdir(parents=True)
    config = root / "bpfbudget.toml"
    config.write_text('[analyze]\nobjects = ["*.bpf.o"]\n[[budget]]\nmax_insns = 100\n')
    done = bpflint(root, "check", "empty")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines()[-1] == (
        "bpflint: error: bpfbudget.toml: no BPF program found in empty; set [analyze] "
        "allow_empty = true if that is expected")
    assert "PASS" not in done.stdout
    config.write_text(config.read_text().replace("[analyze]\n", "[analyze]\nallow_empty = true\n"))
    allowed = bpflint(root, "check", "empty")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr


def test_an_unreadable_object_is_one_line_on_stderr(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    compile_to(PROJECT / "src" / "fw.bpf.c", root / "fw.bpf.o")
    (root / "broken.bpf.o").write_bytes(b"\x7fELF not really an object")
    (root / "bpfbudget.toml").write_text('[analyze]\nobjects = ["*.bpf.o"]\n'
                                         '[[budget]]\nmax_insns = 100000\n')
    done = bpflint(root, "check")
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("bpflint: error: broken.bpf.o: "), line
    assert not any(out.startswith("error:") for out in done.stdout.splitlines())
    assert "could not be analysed: broken.bpf.o" in done.stdout


def test_one_path_for_each_source_file_in_every_format(tmp_path: Path) -> None:
    """The committed example names its sources "././parse.h" in BTF; every report
    names it as the repository does: fw/parse.h."""
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "xdp-firewall", repo / "fw",
                    ignore=shutil.ignore_patterns(".bpflint-cache"))
    config = repo / "fw" / "bpfbudget.toml"
    config.write_text(config.read_text().replace("max_insns = 800", "max_insns = 100"))
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "firewall")
    done = bpflint(repo / "fw", "check", "--format", "json", "--format", "sarif", "--output",
                   "out.sarif", "--format", "github", "--output", "out.github",
                   "--format", "markdown", "--output", "out.md", "--format", "text",
                   "--output", "out.txt")
    assert done.returncode == 1, done.stdout + done.stderr
    wanted = {"fw/parse.h", "fw/firewall.bpf.c"}
    program = json.loads(done.stdout)["programs"][0]
    assert program["object"] == "fw/firewall.bpf.o"
    assert {c["file"] for c in program["worst_path"]} == wanted
    assert {f["source"]["file"] for f in program["findings"]} <= wanted
    sarif = json.loads((repo / "fw" / "out.sarif").read_text())
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"]
            for result in sarif["runs"][0]["results"] for loc in result["locations"]}
    assert uris and uris <= wanted
    shown = " ".join((repo / "fw" / name).read_text() for name in ("out.md", "out.txt"))
    places = set(re.findall(r"[\w./-]*(?:parse\.h|firewall\.bpf\.c)", shown))
    assert places and places <= wanted, places
    assert "file=fw/" in (repo / "fw" / "out.github").read_text()
    explained = bpflint(repo, "explain", "fw/firewall.bpf.o")
    places = set(re.findall(r"[\w./-]*(?:parse\.h|firewall\.bpf\.c)", explained.stdout))
    assert places and places <= wanted, places


def test_the_compile_cache_is_ignored_by_git(tmp_path: Path) -> None:
    root = tmp_path / "project"
    shutil.copytree(PROJECT, root)
    (root / ".gitignore").unlink()  # the user's repository does not know about the cache
    git(root, "init", "-q", "-b", "main")
    commit(root, "project")
    assert bpflint(root, "check").returncode in (0, 1)
    assert (root / ".bpflint-cache" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert git(root, "status", "--porcelain") == ""


def test_program_names_get_a_did_you_mean(tmp_path: Path) -> None:
    obj = EXAMPLES / "xdp-firewall" / "firewall.bpf.o"
    done = bpflint(tmp_path, "explain", str(obj), "-p", "xdp_firewal")
    assert done.returncode == 2
    assert done.stderr == (f"bpflint: error: {obj}: no program named 'xdp_firewal'; did you "
                           "mean 'xdp_firewall'? (programs: xdp_firewall)\n")
    part = bpflint(tmp_path, "explain", str(obj), "-p", "firewall")
    assert "did you mean 'xdp_firewall'?" in part.stderr
    disasm = bpflint(tmp_path, "disasm", str(obj), "-p", "xdp_firewal")
    assert disasm.returncode == 2 and "did you mean 'xdp_firewall'?" in disasm.stderr
    measure = bpflint(tmp_path, "measure", "--help")
    assert "--program NAME, -p NAME" in measure.stdout


def test_analyze_diagnostics_name_the_object_path_and_no_line_zero(tmp_path: Path) -> None:
    """Two objects of the same name in two directories: each diagnostic says which."""
    for name in ("a", "b"):
        compile_to(Path(__file__).parent / "progs" / "unbounded.bpf.c",
                   tmp_path / name / "loop.bpf.o")
    done = bpflint(tmp_path, "analyze", "a", "b")
    diagnostics = [line for line in done.stdout.splitlines() if ": BPF" in line]
    assert {line.split(":")[0] for line in diagnostics} == {"a/loop.bpf.o", "b/loop.bpf.o"}
    assert not re.search(r"\.c:0\b", done.stdout)

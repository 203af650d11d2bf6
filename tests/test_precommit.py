"""The pre-commit hook, run by the real pre-commit against a copy of this checkout.

pre-commit installs the hook repository with pip into its own virtualenv (PyPI is
used for the build backend and pyelftools), so this test needs the network once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_make import CLANG, copy_example, push_firewall_over_budget, run_make

ROOT = Path(__file__).resolve().parents[1]

# What `git ls-files` would hold: the checkout minus .gitignore'd build products.
_IGNORED_NAMES = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".mypy_cache",
    ".ruff_cache", ".hypothesis", ".bpflint-cache",
)
_IGNORED_DIRS = {ROOT / "build", ROOT / "tests" / "build"}  # not bpflint/build


def _ignored(directory: str, names: list[str]) -> set[str]:
    skipped = set(_IGNORED_NAMES(directory, names))
    return skipped | {name for name in names if Path(directory, name) in _IGNORED_DIRS}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("git") is None, reason="needs git"),
    pytest.mark.skipif(CLANG is None or shutil.which("make") is None,
                       reason="needs clang and make to rebuild the changed object"),
]


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bpflint test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "bpflint test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def copy_checkout(dest: Path) -> Path:
    """This checkout's source files, as a clone would have them."""
    shutil.copytree(ROOT, dest, ignore=_ignored)
    readme = dest / "README.md"
    if not readme.exists():  # pyproject names it; pip refuses to build without it
        readme.write_text("bpflint\n")
    return dest


def hook_repository(dest: Path) -> tuple[Path, str]:
    """A git copy of this checkout, committed, so pre-commit can clone a fixed rev."""
    copy_checkout(dest)
    git(dest, "init", "-q", "-b", "main")
    return dest, commit_all(dest, "bpflint under test")


def pre_commit(project: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1",
           "PRE_COMMIT_COLOR": "never", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )


def test_hook_runs_on_every_commit() -> None:
    """No file pattern: a plain header, a .c file, the baseline or a cost table named
    anything can change a result, so the hook runs whatever the commit touches."""
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["entry"] == "bpflint check" and hook["language"] == "python"
    assert hook["pass_filenames"] is False and hook["require_serial"] is True
    assert hook["always_run"] is True
    assert "files" not in hook and "types" not in hook


def test_pre_commit_passes_under_budget_and_fails_after_a_costly_commit(tmp_path: Path) -> None:
    hooks, rev = hook_repository(tmp_path / "bpflint")
    project = copy_example("xdp-firewall", tmp_path)
    config = {"repos": [{"repo": str(hooks), "rev": rev, "hooks": [{"id": "bpflint"}]}]}
    (project / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "firewall within budget")

    home = tmp_path / "pre-commit-home"
    ok = pre_commit(project, home)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "bpflint (BPF runtime budget)" in ok.stdout and "Passed" in ok.stdout

    push_firewall_over_budget(project)
    made = run_make(project, "all")
    assert made.returncode == 0, made.stderr
    commit_all(project, "parse the whole packet")

    failed = pre_commit(project, home)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Failed" in failed.stdout
    assert "xdp_firewall" in failed.stdout  # the hook's output names the program


def test_a_header_only_change_that_breaks_the_budget_fails_the_commit(tmp_path: Path) -> None:
    """The hook installed with `pre-commit install`: a commit that touches only a
    plain .h (the objects are built by bpflint from [analyze] sources, not committed)
    must be refused when it pushes a program over budget."""
    hooks, rev = hook_repository(tmp_path / "bpflint")
    project = copy_example("xdp-firewall", tmp_path)
    (project / "firewall.bpf.o").unlink()
    (project / ".gitignore").write_text("*.o\n.bpflint-cache/\n")
    config = project / "bpfbudget.toml"
    config.write_text(config.read_text().replace('objects = ["*.bpf.o"]',
                                                 'sources = ["*.bpf.c"]'))
    (project / "bpf-baseline.json").unlink()
    config.write_text(config.read_text().replace('baseline = "bpf-baseline.json"\n', ""))
    hook_config = {"repos": [{"repo": str(hooks), "rev": rev, "hooks": [{"id": "bpflint"}]}]}
    (project / ".pre-commit-config.yaml").write_text(yaml.safe_dump(hook_config))
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "firewall within budget")
    home = tmp_path / "pre-commit-home"
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1",
           "PRE_COMMIT_COLOR": "never", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    env.pop("VIRTUAL_ENV", None)
    installed = subprocess.run([sys.executable, "-m", "pre_commit", "install"], cwd=project,
                               env=env, capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    header = project / "parse.h"
    header.write_text(header.read_text().replace("#define TCP_OPT_MAX 10",
                                                 "#define TCP_OPT_MAX 40"))
    git(project, "add", "parse.h")
    done = subprocess.run(["git", "commit", "-q", "-m", "walk more TCP options"], cwd=project,
                          env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "bpflint (BPF runtime budget)" in output and "Failed" in output, output
    assert "xdp_firewall" in output and "BPF001" in output, output
    # the commit did not go in: HEAD still has the old header
    assert "TCP_OPT_MAX 10" in git(project, "show", "HEAD:parse.h")

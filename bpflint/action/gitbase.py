"""The commit a pull request is compared with: the merge base of HEAD and the
target branch, not the branch's tip.

Comparing with the tip would count every change merged into the target branch since
the pull request branched as the pull request's own. actions/checkout leaves a
one-commit-deep clone, so the target branch is fetched and the history deepened in
steps until the two meet (``--unshallow`` last). Every git command is an argv list.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bpflint.errors import BpfLintError

GIT_TIMEOUT_S = 600.0
# commits fetched per round while looking for the merge base in a shallow clone
FIRST_DEPTH = 50
DEEPEN_STEPS = (100, 1000)


@dataclass(frozen=True)
class Base:
    """What to pass to ``check --base``, and how it was chosen (for the log)."""

    commit: str
    tip: str  # the ref the merge base was taken with, e.g. refs/remotes/origin/main
    detail: str


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise BpfLintError("comparing with the base branch needs git, and no git was "
                           "found on PATH") from None
    except subprocess.TimeoutExpired:
        raise BpfLintError(f"git {args[0]} took more than {GIT_TIMEOUT_S:.0f}s") from None


def _ok(args: list[str], cwd: Path) -> str | None:
    done = _git(args, cwd)
    return done.stdout.strip() if done.returncode == 0 else None


def _log_fetch(args: list[str], cwd: Path) -> bool:
    """Run a git fetch; its failure is not an error by itself (the caller decides)."""
    print(f"bpflint: git {' '.join(args)}", file=sys.stderr)
    done = _git(args, cwd)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["failed"]
        reason = next((line for line in lines if line.startswith(("fatal:", "error:"))),
                      lines[-1])
        print(f"bpflint: git fetch failed: {reason}", file=sys.stderr)
    return done.returncode == 0


def _commit(ref: str, cwd: Path) -> str | None:
    return _ok(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
               cwd)


def _is_branch_name(name: str, cwd: Path) -> bool:
    return _ok(["check-ref-format", "--branch", name], cwd) is not None


def _is_shallow(cwd: Path) -> bool:
    return _ok(["rev-parse", "--is-shallow-repository"], cwd) == "true"


def merge_base(ref: str, cwd: Path, remote: str = "origin") -> Base:
    """The merge base of HEAD and ``ref`` (a branch of ``remote``, or any local
    revision), fetching and deepening history as needed."""
    if not ref or ref.startswith("-") or any(c.isspace() or c in "\0" for c in ref):
        raise BpfLintError(f"base-ref {ref!r}: not a git ref name")
    head = _commit("HEAD", cwd)
    if head is None:
        raise BpfLintError(f"{cwd}: not inside a git checkout with a commit (HEAD)")
    fetch_spec = ""
    tip = ""
    # a commit id the checkout has needs no fetch (and is no branch name on origin)
    local_commit = re.fullmatch(r"[0-9a-f]{7,64}", ref) is not None and \
        _commit(ref, cwd) is not None
    if not local_commit and _is_branch_name(ref, cwd):
        tracking = f"refs/remotes/{remote}/{ref}"
        fetch_spec = f"+refs/heads/{ref}:{tracking}"
        depth = [f"--depth={FIRST_DEPTH}"] if _is_shallow(cwd) else []
        if _log_fetch(["fetch", "--no-tags", "--no-recurse-submodules", *depth, remote,
                       fetch_spec], cwd):
            tip = tracking
        else:
            fetch_spec = ""
    if not tip:
        if _commit(ref, cwd) is None:
            raise BpfLintError(f"base-ref {ref}: no branch of that name on {remote} and no "
                               "such revision in the checkout")
        tip = ref
    found = _ok(["merge-base", "HEAD", tip], cwd)
    # A shallow clone hides the common ancestor: deepen both sides (HEAD by its
    # commit id, which GitHub serves for any reachable commit) until they meet.
    rounds = [[f"--deepen={n}"] for n in DEEPEN_STEPS] + [["--unshallow"]]
    for extra in rounds:
        if found is not None or not _is_shallow(cwd):
            break
        fetch = ["fetch", "--no-tags", "--no-recurse-submodules", *extra, remote]
        if not _log_fetch([*fetch, *(s for s in (fetch_spec, head) if s)], cwd):
            # a server that refuses a commit id still deepens the branch
            _log_fetch([*fetch, *([fetch_spec] if fetch_spec else [])], cwd)
        found = _ok(["merge-base", "HEAD", tip], cwd)
    if found is None:
        raise BpfLintError(f"base-ref {ref}: HEAD and {tip} have no common ancestor")
    tip_commit = _commit(tip, cwd) or tip
    shown = tip.removeprefix("refs/remotes/")
    detail = (f"merge base of HEAD and {shown} ({found[:12]})" if found != tip_commit
              else f"tip of {shown} ({found[:12]})")
    return Base(commit=found, tip=tip, detail=detail)

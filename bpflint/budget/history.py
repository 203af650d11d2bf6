"""The worst cases recorded in the baseline file's git history: one point per commit
that changed it, oldest first (`bpflint history`, the HTML report's trends)."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bpflint.budget.baseline import Baseline, read_baseline
from bpflint.errors import BpfLintError

GIT_TIMEOUT_S = 60.0
DEFAULT_LIMIT = 30


@dataclass(frozen=True)
class Revision:
    commit: str  # full hash
    date: str  # committer date, YYYY-MM-DD
    subject: str


@dataclass(frozen=True)
class Point:
    revision: Revision
    bounded: bool
    insns_max: int | None
    ns_max: float | None


@dataclass(frozen=True)
class History:
    baseline: Path
    revisions: tuple[Revision, ...]  # oldest first
    # program key -> its point at each revision that has it, oldest first
    programs: dict[str, tuple[Point, ...]]
    skipped: tuple[str, ...] = ()  # revisions whose file was not a readable baseline


def _git(args: list[str], cwd: Path) -> str | None:
    """git's output, or None when git is missing or fails (outside a repository)."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def baseline_history(baseline: Path, limit: int = DEFAULT_LIMIT) -> History | None:
    """The last ``limit`` committed versions of ``baseline``; None when it is not in a
    git repository or git has no commit of it."""
    directory = baseline.resolve().parent
    top = _git(["rev-parse", "--show-toplevel"], directory)
    if top is None:
        return None
    relative = baseline.resolve().relative_to(Path(top.strip()).resolve()).as_posix()
    log = _git(["log", f"-n{max(limit, 1)}", "--format=%H%x09%cs%x09%s",
                "HEAD", "--", relative], Path(top.strip()))
    if not log:
        return None
    revisions = []
    for row in log.splitlines():
        commit, date, subject = (row.split("\t", 2) + ["", ""])[:3]
        revisions.append(Revision(commit, date, subject))
    revisions.reverse()
    programs: dict[str, list[Point]] = {}
    kept: list[Revision] = []
    skipped: list[str] = []
    for revision in revisions:
        text = _git(["show", f"{revision.commit}:{relative}"], Path(top.strip()))
        recorded = _parse(text, revision) if text is not None else None
        if recorded is None:
            skipped.append(revision.commit[:12])
            continue
        kept.append(revision)
        for key, entry in recorded.entries.items():
            programs.setdefault(key, []).append(
                Point(revision, entry.bounded, entry.insns_max, entry.ns_max))
    return History(baseline, tuple(kept), {k: tuple(v) for k, v in sorted(programs.items())},
                   tuple(skipped))


def _parse(text: str, revision: Revision) -> Baseline | None:
    """The baseline as committed, by the reader `check` uses (a file, so its checks and
    messages stay in one place)."""
    with tempfile.TemporaryDirectory(prefix="bpflint-history-") as tmp:
        path = Path(tmp) / f"{revision.commit[:12]}.json"
        path.write_text(text, encoding="utf-8")
        try:
            return read_baseline(path)
        except BpfLintError:
            return None

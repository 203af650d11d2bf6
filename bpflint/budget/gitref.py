"""`check --base REF`: a temporary, detached git worktree of REF, always removed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bpflint.errors import BpfLintError

GIT_TIMEOUT_S = 300.0


def _git(args: list[str], cwd: Path) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise BpfLintError("--base needs git, and no git was found on PATH") from None
    except subprocess.TimeoutExpired:
        raise BpfLintError(f"git {args[0]} took more than {GIT_TIMEOUT_S:.0f}s") from None
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise BpfLintError(f"git {args[0]}: {detail}")
    return done.stdout.strip()


def repo_root(start: Path) -> Path | None:
    """The top of the git work tree holding ``start``, or None outside one."""
    try:
        return Path(_git(["rev-parse", "--show-toplevel"], start.resolve()))
    except BpfLintError:
        return None


def tracked_files(paths: Sequence[Path], top: Path) -> list[Path]:
    """Those of ``paths`` (inside the work tree at ``top``) that git tracks, resolved."""
    inside = []
    for path in paths:
        try:
            inside.append(path.resolve().relative_to(top.resolve()).as_posix())
        except ValueError:
            continue
    if not inside:
        return []
    listed = _git(["ls-files", "-z", "--full-name", "--", *(f":(literal){p}" for p in inside)],
                  top)
    return [(top / name).resolve() for name in listed.split("\0") if name]


def _commit_of(ref: str, top: Path) -> str:
    if not ref or ref.startswith("-"):
        raise BpfLintError(f"--base {ref!r}: not a git revision")
    try:
        return _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
                    top)
    except BpfLintError:
        raise BpfLintError(f"--base {ref}: no such commit in {top}") from None


@contextmanager
def worktree_at(ref: str, start: Path) -> Iterator[tuple[Path, Path]]:
    """Yield (repository top, worktree top) for a detached checkout of ``ref``.

    The worktree is removed however the block ends (error, Ctrl-C), and pruned so
    git does not keep a record of it.
    """
    top = repo_root(start)
    if top is None:
        raise BpfLintError(f"--base {ref}: {start.resolve()} is not inside a git repository")
    commit = _commit_of(ref, top)
    import shutil  # here: every check asks for repo_root, few for a worktree
    import tempfile

    holder = Path(tempfile.mkdtemp(prefix="bpflint-base-"))
    tree = holder / "tree"
    try:
        _git(["worktree", "add", "--detach", "--quiet", str(tree), commit], top)
        yield top, tree
    finally:
        if tree.exists():
            try:
                _git(["worktree", "remove", "--force", str(tree)], top)
            except BpfLintError:
                pass  # the rmtree and prune below still clean up
        shutil.rmtree(holder, ignore_errors=True)
        try:
            _git(["worktree", "prune"], top)
        except BpfLintError:
            pass


def map_into(path: Path, top: Path, tree: Path) -> Path:
    """The path in the worktree that corresponds to ``path`` in the repository."""
    try:
        relative = path.resolve().relative_to(top.resolve())
    except ValueError:
        raise BpfLintError(f"{path}: outside the git repository {top}; --base cannot "
                           "find it at another revision") from None
    return tree / relative

"""`[analyze] build`: the user's own build command, run where `check --base` needs the
objects of another revision (a temporary checkout of it).

An argv list, never a shell string: nothing from a file name or a ref can become
shell code. Its output is kept and only its last lines shown when it fails.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bpflint.errors import BpfLintError

BUILD_TIMEOUT_S = 1800.0


def run_build(argv: Sequence[str], cwd: Path, what: str) -> None:
    """Run ``argv`` in ``cwd``; a failure is a one-line BpfLintError naming ``what``."""
    shown = shlex.join(argv)
    try:
        done = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True,
                              errors="replace", stdin=subprocess.DEVNULL,
                              timeout=BUILD_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise BpfLintError(f"{what}: build command `{shown}`: {argv[0]} not found") from None
    except PermissionError:
        raise BpfLintError(f"{what}: build command `{shown}`: {argv[0]} is not "
                           "executable") from None
    except subprocess.TimeoutExpired:
        raise BpfLintError(f"{what}: build command `{shown}` took more than "
                           f"{BUILD_TIMEOUT_S:.0f}s") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines()
                 if line.strip()]
        detail = f": {lines[-1]}" if lines else ""
        raise BpfLintError(f"{what}: build command `{shown}` failed (exit "
                           f"{done.returncode}){detail}")

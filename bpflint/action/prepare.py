"""The Action's first step after installing bpflint: where the result cache lives and
the actions/cache keys for it.

bpflint keys cached results by object, code version and cost table already; the
actions/cache key starts with the version and the cost table's hash so an upgrade or
a new table starts a fresh cache instead of dragging stale entries along. The cache
is restored by that prefix (the newest match); the check step names the key it is
saved under.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from bpflint import __version__
from bpflint.action.runner import env_input, set_output
from bpflint.budget.config import find_config, load_config
from bpflint.cache import default_cache_dir
from bpflint.errors import BpfLintError


def _option(args: Sequence[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def cost_table_bytes(workdir: Path, config: Path, args: Sequence[str]) -> bytes:
    """The cost table this run prices with: --cost-table, else the budget file's
    cost_table, else the one shipped with bpflint. Unreadable: b"" (check reports it)."""
    chosen = _option(args, "--cost-table")
    path: Path | None = workdir / chosen if chosen else None
    if path is None:
        try:
            path = load_config(find_config(config)).cost_table
        except BpfLintError:
            return b""
    try:
        if path is None:
            return (importlib.resources.files("bpflint") / "data" / "costs.toml").read_bytes()
        return path.read_bytes()
    except OSError:
        return b""


def run(environ: Mapping[str, str]) -> int:
    workdir = Path(environ.get("GITHUB_WORKSPACE") or ".") / \
        env_input(environ, "WORKING_DIRECTORY", ".")
    try:
        args = shlex.split(env_input(environ, "ARGS"))
    except ValueError:
        args = []  # the check step reports it
    config = workdir / env_input(environ, "CONFIG", "bpfbudget.toml")
    cache_dir = default_cache_dir(environ)
    table = hashlib.sha256(cost_table_bytes(workdir, config, args)).hexdigest()[:16]
    prefix = f"bpflint-{__version__}-{environ.get('RUNNER_OS', os.name)}-{table}-"
    run_id = f"{environ.get('GITHUB_RUN_ID', '0')}-{environ.get('GITHUB_RUN_ATTEMPT', '1')}"
    set_output(environ, "cache-dir", str(cache_dir))
    set_output(environ, "cache-key", prefix + run_id)
    set_output(environ, "cache-restore-key", prefix)
    print(f"bpflint {__version__}: result cache {cache_dir}, key {prefix}{run_id}")
    return 0

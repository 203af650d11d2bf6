"""What a caller sets for one analysis run.

Kept out of the engine's module: the engine may be compiled (bpflint/native.py),
and a compiled frozen dataclass cannot be unpickled, which sending options to a
worker process needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bpflint.obj.loader_vars import RodataPin


@dataclass(frozen=True)
class AnalysisOptions:
    """How to analyse: limits, tail-call targets, pinned variables, may_goto."""

    max_steps: int = 5_000_000  # abstract-interpretation steps per program
    max_seconds: float = 120.0  # CPU-time budget per program (fixpoint.Budget)
    # prog-array map name -> program names its slots may hold (from bpfbudget.toml)
    tail_call_targets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # loader-set variables pinned by [rodata] and --set, in that order (later wins)
    rodata: tuple[RodataPin, ...] = ()
    # how the kernel bounds may_goto loops (bpflint/cost/may_goto.py): "any" (the
    # larger bound of the other two: sound on every kernel), "timed" (Linux 6.15 on
    # with the x86-64/arm64 JIT: 250 ms per frame) or "count" (8M per frame)
    may_goto: str = "any"

"""A callee's cost as its caller sees it (bpf-to-bpf calls and callbacks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bpflint.cost.frame import FuncResult, Unbounded, merge
from bpflint.cost.paths import Cost, add

if TYPE_CHECKING:
    from bpflint.cost.pricing import BlockPricing


def callee_total(res: FuncResult, analysis: BlockPricing, prog_type: str) -> Cost:
    """A callee's cost as its caller sees it; a tail call from a subprogram runs the
    target and then returns to the caller, so the target's cost joins the callee's."""
    cost = res.ret
    if res.tail is not None:
        tail = res.tail
        if res.tail_targets:
            worst = None
            for target in sorted(res.tail_targets):
                c, _ = analysis.program_cost(target, 1)
                worst = c if worst is None else merge(worst, c)
            assert worst is not None
            tail = add(tail, worst)
        cost = tail if cost is None else merge(cost, tail)
    if cost is None:  # the callee never returns: as unbounded as an endless loop
        raise Unbounded(analysis.diag("BPF003", "no-exit",
                                      "a called function has no path that returns", None))
    return cost

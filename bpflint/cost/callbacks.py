"""How often a callback helper runs its callback, and with what arguments: bpf_loop
by its nr_loops argument (capped by the kernel's limit), bpf_for_each_map_elem by the
map's max_entries, bpf_find_vma at most once, bpf_user_ringbuf_drain up to the
kernel's sample limit. The range is before any early stop: the caller lowers the
least to 1 where the callback may return 1."""

from __future__ import annotations

import math
from collections.abc import Callable

from bpflint.analysis import calls
from bpflint.analysis import scalar as sc
from bpflint.analysis.scalar import Scalar
from bpflint.analysis.state import Kind, Val, scalar
from bpflint.cost.frame import (
    BPF_LOOP_MAX,
    USER_RINGBUF_MAX_SAMPLES,
    CalleeOverlap,
    Lines,
    foreign_val,
    merge,
)
from bpflint.cost.model import CostTable
from bpflint.cost.overlap import CALL, CALL_READS, MEMORY, add_lanes, issue_bound, lane_costs
from bpflint.cost.paths import Cost
from bpflint.obj.model import FuncKey, MapDef


def callback_runs(hid: int, regs: tuple[Val, ...], mapdef: MapDef | None
                  ) -> tuple[int, int, list[Val]]:
    """[lo, hi] runs of helper ``hid``'s callback and the arguments of each run;
    ``mapdef``: the map in r1 where bpflint knows it."""
    mem = Val(Kind.MEM, Scalar.const(0))
    if hid == calls.LOOP:
        nr = regs[1].s if regs[1].kind == Kind.SCALAR else sc.UNKNOWN
        nr = sc.low32(nr)  # nr_loops is a u32
        hi = min(nr.umax, BPF_LOOP_MAX)
        lo = nr.umin if nr.umin <= BPF_LOOP_MAX else 0
        # bpf_loop returns -EINVAL before the first iteration when flags != 0
        flags = regs[4].s if regs[4].kind == Kind.SCALAR else sc.UNKNOWN
        if flags.umin > 0:
            lo = hi = 0
        elif not flags.is_const:
            lo = 0
        args = [scalar(Scalar.urange(0, max(hi - 1, 0))), foreign_val(regs[3])]
    elif hid == calls.FOR_EACH_MAP_ELEM:
        name = regs[1].ref if regs[1].kind == Kind.MAP_PTR else None
        assert mapdef is not None  # BlockPricing prices an unknown map apart
        hi = mapdef.max_entries
        lo = hi if mapdef.type_name in ("array", "percpu_array") else 0
        args = [regs[1], mem, Val(Kind.MAP_VALUE, Scalar.const(0), name), foreign_val(regs[3])]
    elif hid == calls.FIND_VMA:
        lo, hi = 0, 1
        args = [mem, mem, foreign_val(regs[4])]
    else:  # user_ringbuf_drain
        lo, hi = 0, USER_RINGBUF_MAX_SAMPLES
        args = [mem, foreign_val(regs[3])]
    return lo, hi, args


def overlapped_iterations(table: CostTable | None, hid: int, cb_cost: Cost,
                          overlap: CalleeOverlap | None, iterations: int) -> float:
    """What overlapping a callback helper's iterations saves on its worst case.

    The helper runs the callback in a loop (the verifier inlines bpf_loop into
    one): as in a loop calling a subprogram, an iteration after the first costs
    the longer of its issue bound (the calibrated per-iteration cost in the CALL
    lane next to the callback's lanes) and the chain the iterations carry
    through memory, never more than an iteration alone. That chain is paid
    after the helper's own per-iteration cost, not beside it: a callback's
    state is memory its caller passed, and the call's prologue and epilogue
    spill and reload around it (measured here: a bpf_loop of a 4-instruction
    read-modify-write callback ran at 1.0, 2.0 and 2.5 ns an iteration in
    different runs, the helper's empty iterations at 0.7-1.0 ns)."""
    per_unit = table.per_unit_max_ns(hid) if table is not None else None
    if overlap is None or per_unit is None or iterations < 2 or math.isinf(cb_cost[3]):
        return 0.0
    lanes = add_lanes(overlap.lanes, lane_costs(CALL, per_unit, 0.0))
    chain = per_unit + overlap.read_latency[CALL_READS.index(MEMORY)]
    alone = per_unit + cb_cost[3]
    steady = min(alone, max(issue_bound(lanes), chain))
    return (iterations - 1) * (alone - steady)


def dearest_callback(keys: tuple[FuncKey, ...],
                     price: Callable[[FuncKey], tuple[Cost, Lines, CalleeOverlap | None, Val]]
                     ) -> tuple[Cost, Lines, CalleeOverlap | None, bool]:
    """The cost of a callback that may be any of ``keys`` (clang loads the address
    before a branch and calls after the join, or merges two calls into one): the
    envelope of their costs, the dearest one's lines, no overlap of iterations unless
    there is one candidate, and whether every candidate always returns 0 (the helper
    then runs every iteration). ``price``: a candidate's cost, lines, overlap, r0."""
    total: Cost | None = None
    lines: Lines = {}
    overlap: CalleeOverlap | None = None
    always_continues = True
    for key in keys:
        cost, cb_lines, cb_overlap, ret = price(key)
        if total is None or cost[1] > total[1]:
            lines = cb_lines
        total = cost if total is None else merge(total, cost)
        overlap = cb_overlap if len(keys) == 1 else None
        always_continues = always_continues and ret.kind == Kind.SCALAR and ret.s.umax == 0
    assert total is not None
    return total, lines, overlap, always_continues

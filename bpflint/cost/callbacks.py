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
from bpflint.cfg.graph import Cfg
from bpflint.cost.frame import (
    BPF_LOOP_MAX,
    PATH_INSNS,
    USER_RINGBUF_MAX_SAMPLES,
    CalleeOverlap,
    Lines,
    add_path_lines,
    foreign_val,
    merge,
)
from bpflint.cost.model import CostTable
from bpflint.cost.overlap import CALL, CALL_READS, MEMORY, add_lanes, issue_bound, lane_costs
from bpflint.cost.paths import Cost, Count
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


# A bpf_loop of at most BY_INDEX_RUNS runs has its callback analysed once per index,
# while runs x the callback's instructions stay within BY_INDEX_INSNS.
BY_INDEX_RUNS = 256
BY_INDEX_INSNS = 16384
# the instructions of the first lo runs at least and of all hi at most, and the lines
# of that worst path (callback_by_index)
ByIndex = tuple[tuple[Count, Count], Lines] | None


def callback_by_index(hid: int, lo: int, hi: int, args: list[Val], cb_cfg: Cfg,
                      run: Callable[[list[Val]], tuple[Cost, Lines, Val]]) -> ByIndex:
    """bpf_loop's callback run by run: its i-th run gets r1 = i, so a callback that
    branches on its index (`if (idx & 1)`, a loop up to idx, `return idx == 5`) is
    priced for what each run does instead of its dearest run every time: the most
    adds up the runs to the first that surely returns non-zero (the helper stops
    there), the least the first ``lo`` (the runs before ``nr_loops`` can end) to the
    first that may. Sound as the analysis of the callback is: each run's entry state
    is the general one with r1 exact. None where the count is not small or the
    callback never reads its index (the general price then stands)."""
    cb_insns = sum(len(b.insns) for b in cb_cfg.blocks)
    if hid != calls.LOOP or hi < 2 or hi > BY_INDEX_RUNS or hi * cb_insns > BY_INDEX_INSNS \
            or not _reads_r1_first(cb_cfg):
        return None
    least: Count = 0
    most: Count = 0
    lines: Lines = {}
    may_have_stopped = False
    for index in range(hi):
        cost, cb_lines, ret = run([scalar(Scalar.const(index)), *args[1:]])
        if index < lo and not may_have_stopped:
            least += cost[0]
        most += cost[1]
        add_path_lines(lines, cb_lines, 1, 1.0, PATH_INSNS)
        if ret.kind != Kind.SCALAR:
            may_have_stopped = True
        elif ret.s.umin > 0:  # stops here, whatever came before
            break
        elif ret.s.umax > 0:
            may_have_stopped = True
    return (least, most), lines


_ALU_CLASSES = (0x04, 0x07)
_MOV = 0xB0


def _reads_r1_first(cfg: Cfg) -> bool:
    """Whether some path from the entry reads r1 before writing it (any call counts
    as a read: r1 is an argument). Only a speed filter: a wrong answer either way
    costs precision or time, never soundness."""
    seen: set[int] = set()
    work = [0]
    while work:
        b = work.pop()
        if b in seen:
            continue
        seen.add(b)
        written = False
        for insn in cfg.blocks[b].insns:
            op = insn.opcode
            cls = op & 0x07
            from_reg = op & 0x08 != 0
            if cls in _ALU_CLASSES:
                if (from_reg and insn.src == 1) or (insn.dst == 1 and op & 0xF0 != _MOV):
                    return True
                written = insn.dst == 1
            elif cls == 0x01:  # LDX: r1 as the base, or loaded into
                if insn.src == 1:
                    return True
                written = insn.dst == 1
            elif cls in (0x02, 0x03):  # ST, STX (atomics too)
                if insn.dst == 1 or (cls == 0x03 and insn.src == 1):
                    return True
            elif cls == 0x00:  # ld_imm64; legacy packet loads clobber r1-r5
                if op != 0x18:
                    return True
                written = insn.dst == 1
            elif op & 0xF0 == 0x80 or (op & 0xF0 not in (0x00, 0x90) and
                                        (insn.dst == 1 or (from_reg and insn.src == 1))):
                return True  # a call, or a compare of r1
            if written:
                break
        if not written:
            work.extend(cfg.blocks[b].succs)
    return False


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

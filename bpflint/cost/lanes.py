"""Issue lanes and dependency chains over priced blocks: how a loop's iterations
and a called function overlap the work around them (bpflint/cost/overlap.py holds
the model of one straight run)."""

from __future__ import annotations

import math
from collections.abc import Container, Iterable
from typing import Final

from bpflint.analysis.fixpoint import (
    Flow,
)
from bpflint.cfg.graph import Block, Cfg
from bpflint.cfg.loops import Loop, LoopForest
from bpflint.cost.frame import (
    BlockInfo,
    FuncContext,
    Lines,
    TimedKey,
)
from bpflint.cost.model import CostTable
from bpflint.cost.overlap import (
    ALU,
    BRANCH,
    MEMORY,
    PARALLEL_LANES,
    SERIAL,
    Readiness,
    Timed,
    lane_costs,
    run_max_ns,
    timed,
)
from bpflint.cost.paths import (
    ZERO_COST,
    Cost,
    LanesNs,
    LoopSummary,
)
from bpflint.isa.insn import Insn
from bpflint.isa.opcodes import Cls

_CLS_STX: Final = int(Cls.STX)


class Run:
    """The non-call instructions since the last call of a block, priced together by
    the overlap model; their worst-case ns is shared out over their source lines in
    proportion to each one's latency."""

    def __init__(self, known: dict[TimedKey, Timed], slot_ns: float) -> None:
        self.timed: list[Timed] = []
        self.latency: list[tuple[tuple[str, int] | None, float]] = []
        self.known = known  # shared Timed values
        self.slot_ns = slot_ns

    def add(self, insn: Insn, key: tuple[str, int] | None, latency_ns: float,
            issue_ns: float) -> Timed:
        # what timed() reads of the instruction (operands: the atomic operation of
        # an STX), so equal instructions anywhere in the object share one value
        op = insn.opcode
        known_key = (op, insn.dst, insn.src, insn.imm if op & 0x07 == _CLS_STX else 0,
                     latency_ns, issue_ns)
        got = self.known.get(known_key)
        if got is None:
            got = timed(insn, latency_ns, issue_ns, self.slot_ns)
            self.known[known_key] = got
        self.timed.append(got)  # add_step, written out: this runs for every instruction
        self.latency.append((key, latency_ns))
        return got

    def add_step(self, step: Timed, key: tuple[str, int] | None, share_ns: float) -> None:
        """``share_ns``: the weight of ``key`` in the run's ns shared out over lines."""
        self.timed.append(step)
        self.latency.append((key, share_ns))

    def flush(self, lines: Lines) -> Cost:
        if not self.timed:
            return ZERO_COST
        ns = run_max_ns(self.timed)
        whole = sum(lat for _, lat in self.latency)
        for key, lat in self.latency:
            if key is not None and whole > 0:
                share = ns * lat / whole
                line = lines[key]
                line[1] += share
                line[3] += share
        self.timed, self.latency = [], []
        return (0, 0, 0.0, ns)


def jump_ns(table: CostTable | None, block: Block) -> dict[int, tuple[float, float]]:
    """ns of a block's closing conditional jump, per successor (taken or not)."""
    last = block.last
    if table is None or not last.is_conditional_jump or last.is_may_goto \
            or len(block.succs) != 2 or block.succs[0] == block.succs[1]:
        return {}
    fall = table.insns.get("jmp_cond_not_taken")
    taken = table.insns.get("jmp_cond_taken")
    if fall is None or taken is None:
        return {}
    # Only the maximum depends on the direction: pipelined, predicted jumps can
    # cost less than calibration's dependent-chain minimum, so both directions
    # keep the smaller minimum.
    low = min(fall.min_ns, taken.min_ns)
    return {block.succs[0]: (low, fall.max_ns), block.succs[1]: (low, taken.max_ns)}


# Loops up to this size have their carried chains taken apart value by value (one
# more pass over the body per value); bigger ones keep the longest chain.
CYCLE_ANALYSIS_MAX_INSNS = 256


# Functions up to this size overlap their callers (a pass over the body per argument
# in every calling context); bigger ones, where the call's own cost is a small part,
# are barriers as helpers are.
CALLEE_OVERLAP_MAX_INSNS = 1024


RESULT = (0, MEMORY)  # what a called function leaves its caller: r0 and memory


LOOP_VALUES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, MEMORY)  # what an iteration hands the next


def busy_lanes(blocks: dict[int, BlockInfo], body: Iterable[int] | None = None
                ) -> list[int]:
    """The lanes some block (of ``body``) adds to: the others cost only serial work,
    which the ALU lane's path also pays. ALU and branch always: jumps add to them."""
    infos = blocks.values() if body is None else [blocks[b] for b in body if b in blocks]
    return [ALU, BRANCH] + [lane for lane in PARALLEL_LANES if lane not in (ALU, BRANCH)
                            and any(info.lanes[lane] for info in infos)]


def lanes_edge_ns(blocks: dict[int, BlockInfo], lanes: list[int], slot_ns: float,
                  back_edge: tuple[int, float] | None) -> LanesNs:
    """Block costs in ns, for each of ``lanes``, as their serial work plus what they
    add to that lane, the closing jump on its edge included: the lanes of a loop
    iteration's issue bound, solved together (paths.solve_lanes).
    ``back_edge``: (the loop's header, the most a jump back to it costs)."""
    def cost(b: int, succ: int | None) -> list[float]:
        info = blocks[b]
        back_ns = back_edge[1] if back_edge is not None and succ == back_edge[0] else math.inf
        jump = info.edge_ns.get(succ) if succ is not None else None
        branch = lane_costs(BRANCH, min(jump[1], back_ns), slot_ns) if jump is not None \
            else None
        serial = info.lanes[SERIAL]
        out: list[float] = []
        for lane in lanes:
            ns = serial + info.lanes[lane]
            if lane == BRANCH and info.goto_ns > back_ns:
                ns -= info.goto_ns - back_ns
            if branch is not None:
                ns += branch[lane]
            out.append(ns)
        return out
    return cost


def chain_end(cfg: Cfg, forest: LoopForest, loop: Loop | None,
               blocks: dict[int, BlockInfo], summaries: dict[int, LoopSummary],
               edges: Container[tuple[int, int]], start: Readiness
               ) -> tuple[Readiness | None, Readiness | None]:
    """When each value is ready at the loop's back edges and at its exits (each
    joined over the ways there), given when they are at its header; ``loop`` None:
    at the function's exits, from its entry. Over every path of one iteration; inner
    loops and helper calls hold everything up for their whole cost. None where no
    path gets."""
    header = loop.header if loop is not None else 0
    into: dict[int, Readiness] = {header: start}
    back: Readiness | None = None
    leave: Readiness | None = None
    # (no closures here: compiled, they and their environment made a cycle per call)
    root = loop.header if loop is not None else None
    for b in (loop.order if loop is not None else cfg.rpo):
        ready = into.get(b)
        if ready is None:
            continue
        inner, holder = None, forest.innermost.get(b)
        while holder is not None and holder != root:  # the child loop holding b
            inner, holder = holder, forest.loops[holder].parent
        if inner is not None:
            if b != inner:
                continue  # an inner loop is passed at its header
            summary = summaries.get(inner)
            if summary is None:
                return Readiness(math.inf), Readiness(math.inf)
            if not summary.totals:
                continue  # a loop no path leaves
            out = ready.after([max(c[3] for c in summary.totals.values())])
            for src, dst in forest.loops[inner].exits:
                if (src, dst) in edges:
                    back, leave = _reach(loop, into, back, leave, dst, out)
            continue
        info = blocks.get(b)
        if info is None:
            continue
        out = ready.after(info.steps)
        if info.exits:  # exit, a successful tail call
            leave = _join(leave, out)
        for succ in set(cfg.blocks[b].succs):
            if (b, succ) in edges:
                back, leave = _reach(loop, into, back, leave, succ, out)
    return back, leave


def _join(old: Readiness | None, ready: Readiness) -> Readiness:
    return ready if old is None else old.join(ready)


def _reach(loop: Loop | None, into: dict[int, Readiness], back: Readiness | None,
           leave: Readiness | None, target: int, ready: Readiness
           ) -> tuple[Readiness | None, Readiness | None]:
    """``ready`` gets to ``target``: a back edge, a block of the loop, or out of it.
    Returns back and leave, updated."""
    if loop is not None and target == loop.header:
        return _join(back, ready), leave
    if loop is None or target in loop.body:
        into[target] = _join(into.get(target), ready)
        return back, leave
    return back, _join(leave, ready)


def chains_from(ctx: FuncContext, loop: Loop | None, blocks: dict[int, BlockInfo],
                 summaries: dict[int, LoopSummary], flow: Flow, sources: tuple[int, ...]
                 ) -> list[tuple[int, dict[int, float]]]:
    """Per source value: the longest chain from it (at the loop's header, or the
    function's entry) to each value at the back edges (exits) that depends on it.
    The source is made ready far later than the rest: what it feeds ends after
    that, what it does not feed before."""
    late = 1e9
    out = []
    for source in sources:
        back, leave = chain_end(ctx.cfg, ctx.forest, loop, blocks, summaries,
                                 flow.edge_out, Readiness(0.0, {source: late}))
        end = back if loop is not None else leave
        ends: dict[int, float] = {}
        if end is not None:
            for value in LOOP_VALUES:
                latency = end.ready(value) - late
                if latency >= 0.0:
                    ends[value] = latency
        out.append((source, ends))
    return out

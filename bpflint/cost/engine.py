"""The cost engine: [min, max] instructions and nanoseconds of every program.

For each function reached from a program's entry (per calling context), the
value analysis gives abstract states, the loop analysis gives trip bounds, and
the path solver (bpflint/cost/paths.py) gives the cheapest and dearest paths.
bpf-to-bpf calls add their callee's cost; callback helpers add the callback's
cost times their iteration range; successful tail calls add the target
program's cost, up to the kernel's chain limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass

from bpflint.analysis import calls
from bpflint.analysis import scalar as sc
from bpflint.analysis.bounds import (
    MAY_GOTO_BUDGET,
    LoopBound,
    bound_loop,
    count_iterations,
    loop_entry,
    unroll_loop,
)
from bpflint.analysis.fixpoint import (
    BlockView,
    Budget,
    Flow,
    InsnView,
    Iteration,
    Iterations,
    StepBudgetExceeded,
    Views,
    analyze_function,
    insn_view,
    run_iteration,
    step,
)
from bpflint.analysis.scalar import Scalar
from bpflint.analysis.sizes import CallSizes, call_sizes
from bpflint.analysis.state import (
    CALLER_STACK,
    STACK_OR_OTHER,
    UNINIT,
    UNKNOWN,
    Kind,
    State,
    Val,
    join_val,
    leq_state,
    scalar,
)
from bpflint.analysis.transfer import Env, Machine
from bpflint.cfg.graph import RET_OPCODES, Block, Cfg, build_cfg, is_tail_call
from bpflint.cfg.loops import Loop, LoopForest, body_insns, find_loops
from bpflint.cost import may_goto
from bpflint.cost.callee_writes import CalleeWrites
from bpflint.cost.model import CostTable
from bpflint.cost.model import helper_name as model_helper_name
from bpflint.cost.options import AnalysisOptions
from bpflint.cost.overlap import (
    ALU,
    BRANCH,
    CALL,
    CALL_READS,
    MEMORY,
    NO_LANES,
    PARALLEL_LANES,
    SERIAL,
    Lanes,
    Readiness,
    Timed,
    add_lanes,
    call_step,
    issue_bound,
    lane_costs,
    run_max_ns,
    steady_chain_ns,
    sum_lanes,
    timed,
)
from bpflint.cost.paths import (
    LATCH,
    RET,
    TAIL,
    ZERO_COST,
    Cost,
    Count,
    EdgeCost,
    LoopSummary,
    Node,
    Piece,
    Region,
    Target,
    add,
    scale,
    solve_region,
    summarise_loop,
)
from bpflint.isa.insn import Insn
from bpflint.isa.opcodes import CLS_STX, Cls
from bpflint.obj.model import BpfObject, FuncKey, Function, Program
from bpflint.results import (
    CallNote,
    Diagnostic,
    LineCost,
    LoaderSetting,
    LoopNote,
    ProgramResult,
    SourceLoc,
)

MAX_CALL_FRAMES = 8  # the kernel's MAX_CALL_FRAMES
MAX_TAIL_CALLS = 33  # the kernel's MAX_TAIL_CALL_CNT
BPF_LOOP_MAX = 1 << 23  # bpf_loop rejects larger nr_loops with -E2BIG
USER_RINGBUF_MAX_SAMPLES = 128 * 1024  # BPF_MAX_USER_RINGBUF_SAMPLES
UNROLL_STEPS = 100_000  # abstract unrolling of one loop gives up after this many steps
MAY_GOTO_UNROLL_STEPS = 10_000  # ... and of a loop the timed may_goto budget bounds
BLOCK_MEMO_KEPT = 200_000  # priced blocks a program keeps before starting afresh
PER_ITERATION_STEPS = 20_000  # cost loops this small iteration by iteration ...
SHARPEN_STEPS = 200_000  # ... until a program has spent this much on it

# A sized helper call whose size bpflint bounds only by the buffer it points at, at
# more than this many bytes, gets a diagnostic naming the call (64 KiB: the most a
# packet pointer can cover; a larger bound is rarely what the author meant).
LOOSE_SIZE_BYTES = 1 << 16

# (opcode, dst, src, imm of an STX, latency ns, issue ns): what a Timed is made of
TimedKey = tuple[int, int, int, int, float, float]

# Lines are keyed by (file, line); the value is [insns, ns] on the worst path by
# instructions, then [insns, ns] on the worst path by ns (PATH_INSNS, PATH_NS: where
# each path's pair starts). A line on one path only has zeros in the other's pair.
Lines = dict[tuple[str, int], list[float]]
PATH_INSNS = 0
PATH_NS = 2


class Unbounded(Exception):
    """A construct makes the cost unbounded; carries the diagnostic."""

    def __init__(self, diag: Diagnostic) -> None:
        super().__init__(diag.message)
        self.diag = diag


@dataclass
class FuncResult:
    ret: Cost | None  # paths leaving through exit
    tail: Cost | None  # paths leaving through a successful tail call (entry function)
    ret_val: Val
    lines_ret: Lines
    lines_tail: Lines
    tail_targets: frozenset[str]
    open_tail_maps: frozenset[str]
    # a called function that returns (no tail call): how it overlaps its caller's
    # work (overlap.py); None where it is a barrier
    as_callee: CalleeOverlap | None = None


@dataclass(frozen=True)
class CalleeOverlap:
    lanes: Lanes  # per lane, the dearest path's serial work plus that lane
    # per operand of overlap.CALL_READS: the longest chain from it to the result
    # (r0 or memory) at an exit
    read_latency: tuple[float, ...]


@dataclass(frozen=True)
class _Ctx:
    """What every step of one function context's analysis needs."""

    cfg: Cfg
    forest: LoopForest
    thresholds: tuple[int, ...]
    env: Env
    prog_type: str
    tail_targets: set[str]
    open_maps: set[str]
    iterations: Iterations  # loop iterations already run (fixpoint.run_iteration)


@dataclass
class _BlockInfo:
    cost: Cost
    lines: Lines
    exits: list[Target]
    edge_ns: dict[int, tuple[float, float]]  # successor -> cost of the jump taking it
    # for loops (overlap.py): what the block adds to each lane of the issue bound
    # (its edge-priced jump aside), and its instructions (calls as their ns) to
    # follow chains through
    lanes: Lanes = NO_LANES
    goto_ns: float = 0.0  # the BRANCH lane's share of a closing unconditional jump
    steps: tuple[Timed | float, ...] = ()
    jump_line: tuple[str, int] | None = None  # where the edge-priced jump's ns go


def _loc(insn: Insn | None) -> SourceLoc | None:
    if insn is None or insn.line is None:
        return None
    return SourceLoc(insn.line.file, insn.line.line)


def _add_lines(into: Lines, lines: Lines, mult: Count, ns_mult: float | None = None) -> None:
    """Both paths' lines, instructions ``mult`` times and ns ``ns_mult`` times."""
    ns_mult = mult if ns_mult is None else ns_mult
    for key, (i, n, i_ns, n_ns) in lines.items():
        cur = into.get(key)
        if cur is None:
            into[key] = [i * mult, n * ns_mult, i_ns * mult, n_ns * ns_mult]
        else:
            cur[0] += i * mult
            cur[1] += n * ns_mult
            cur[2] += i_ns * mult
            cur[3] += n_ns * ns_mult


def _add_path_lines(into: Lines, lines: Lines, mult: Count, ns_mult: float, at: int) -> None:
    """One path's pair (``at``: PATH_INSNS or PATH_NS) of ``lines`` into the same pair."""
    for key, v in lines.items():
        cur = into.get(key)
        if cur is None:
            cur = into[key] = [0, 0.0, 0, 0.0]
        cur[at] += v[at] * mult
        cur[at + 1] += v[at + 1] * ns_mult


def _pick(by_insns: Lines, by_ns: Lines) -> Lines:
    """Fresh lines: the pair of the path by instructions from ``by_insns``, the pair
    of the path by ns from ``by_ns`` (the two worst cases may take different ways)."""
    out: Lines = {}
    _add_path_lines(out, by_insns, 1, 1.0, PATH_INSNS)
    _add_path_lines(out, by_ns, 1, 1.0, PATH_NS)
    return out


class ProgramAnalysis:
    """Analysis state shared by every function context of one object."""

    def __init__(self, obj: BpfObject, table: CostTable | None, options: AnalysisOptions,
                 budget: Budget) -> None:
        self.obj = obj
        self.table = table
        self.options = options
        self.budget = budget
        self.cfgs: dict[FuncKey, tuple[Cfg, LoopForest, tuple[int, ...]]] = {}
        self.memo: dict[tuple[FuncKey, str, State], FuncResult] = {}
        self.chain: list[FuncKey] = []
        self.diags: list[Diagnostic] = []
        self.loose_sizes: set[tuple[int, str]] = set()  # (pc, argument) diagnosed
        self.async_callbacks: set[FuncKey] = set()
        self.program_memo: dict[tuple[str, int], tuple[Cost, Lines]] = {}
        self.priced: set[str] = set()  # helper/kfunc names looked up in the table
        self.sharpen_left = SHARPEN_STEPS
        # Timed values of priced instructions, by what they are made of (_Run.add)
        self.timed: dict[TimedKey, Timed] = {}
        # Priced blocks by (id(block), program type, call chain, what pricing read of
        # the state): (its costs, tail-call targets and open maps it added). Keyed by
        # id(): the blocks live in ``cfgs``, as long as this analysis.
        self.block_memo: dict[tuple[int, str, tuple[FuncKey, ...], tuple[InsnView, ...]],
                              tuple[_BlockInfo, frozenset[str], frozenset[str]]] = {}
        self.last_reads: dict[int, int] = {}  # id(block) -> _last_state_read(block)
        # loader-set variables read on the analysed paths -> the loads reading them
        self.loader_reads: dict[str, dict[int, Insn]] = {}
        # what callees write of their callers' frames (a caller forgets only that)
        self.callee_writes = CalleeWrites(obj, budget, self._structure_of, self.loader_reads)
        # for the cost map: loop bounds and priced calls by source line, the widest
        # over calling contexts
        self.loop_notes: dict[tuple[str, int, str], LoopNote] = {}
        self.call_notes: dict[tuple[str, int, str], CallNote] = {}


    def _note_loop(self, insn: Insn, kind: str, max_runs: int | None, how: str) -> None:
        loc = insn.line
        if loc is None:
            return
        key = (loc.file, loc.line, kind)
        old = self.loop_notes.get(key)
        if old is None or (old.max_runs is not None
                           and (max_runs is None or max_runs > old.max_runs)):
            self.loop_notes[key] = LoopNote(loc.file, loc.line, kind, max_runs, how)

    def _note_call(self, insn: Insn, where: tuple[str, int], cost: Cost) -> None:
        if insn.is_kfunc_call:
            name = insn.reloc.symbol if insn.reloc is not None else f"kfunc#{insn.imm}"
        else:
            name = calls.helper_name(insn.imm)
        key = (where[0], where[1], name)
        old = self.call_notes.get(key)
        if math.isinf(cost[1]) or (old is not None and old.ns >= cost[3]
                                   and old.insns >= cost[1]):
            return
        self.call_notes[key] = CallNote(where[0], where[1], name, int(cost[1]),
                                        round(cost[3], 3))

    # -- per-function structure ----------------------------------------------
    def structure(self, func: Function) -> tuple[Cfg, LoopForest, tuple[int, ...]]:
        got = self.cfgs.get(func.key)
        if got is None:
            cfg = build_cfg(func)
            forest = find_loops(cfg)
            thresholds = _thresholds(func)
            got = (cfg, forest, thresholds)
            self.cfgs[func.key] = got
        return got

    def _structure_of(self, key: FuncKey) -> tuple[Cfg, LoopForest, tuple[int, ...]] | None:
        func = self.obj.functions.get(key)
        return self.structure(func) if func is not None else None

    def diag(self, rule: str, name: str, message: str, insn: Insn | None) -> Diagnostic:
        d = Diagnostic(rule, name, message, _loc(insn))
        if d not in self.diags:
            self.diags.append(d)
        return d

    # -- one function in one context -----------------------------------------
    def function(self, key: FuncKey, entry: State, prog_type: str) -> FuncResult:
        func = self.obj.functions.get(key)
        if func is None:
            raise Unbounded(self.diag("BPF007", "bad-call",
                                      f"call to unknown function at {key[0]}+{key[1]}", None))
        if key in self.chain:
            raise Unbounded(self.diag("BPF007", "recursion",
                                      f"recursive call of {func.name} (the kernel rejects it)",
                                      func.insns[0]))
        if len(self.chain) >= MAX_CALL_FRAMES:
            raise Unbounded(self.diag("BPF007", "call-depth",
                                      f"call chain deeper than {MAX_CALL_FRAMES} frames at "
                                      f"{func.name}", func.insns[0]))
        memo_key = (key, prog_type, entry)
        got = self.memo.get(memo_key)
        if got is not None:
            return got
        self.chain.append(key)
        try:
            result = self._analyze(func, entry, prog_type)
        finally:
            self.chain.pop()
        self.memo[memo_key] = result
        return result

    def _analyze(self, func: Function, entry: State, prog_type: str) -> FuncResult:
        cfg, forest, thresholds = self.structure(func)
        env = Env(prog_type, self.obj.maps, self.loader_reads,
                  self.callee_writes.hook(prog_type))
        if forest.irreducible:
            b, _ = forest.irreducible[0]
            raise Unbounded(self.diag("BPF003", "irreducible-loop",
                                      f"irreducible control flow in {func.name}",
                                      cfg.blocks[b].last))
        self.budget.check_clock()
        # Loop iterations the fixpoint runs are run again to bound and to cost loops.
        iterations = Iterations()
        flow = analyze_function(cfg, forest, entry, env, _no_subcall, self.budget, thresholds,
                                iterations)
        blocks: dict[int, _BlockInfo] = {}
        ret_val: Val | None = None
        tail_targets: set[str] = set()
        open_maps: set[str] = set()
        for b in cfg.rpo:
            state = flow.block_in.get(b)
            if state is None:
                continue
            info, r0 = self._cost_block(cfg, b, state, env, prog_type, tail_targets, open_maps,
                                        iterations.views)
            blocks[b] = info
            if r0 is not None:
                ret_val = r0 if ret_val is None else join_val(ret_val, r0)

        ctx = _Ctx(cfg, forest, thresholds, env, prog_type, tail_targets, open_maps,
                   iterations)
        summaries = self._summaries(ctx, sorted(forest.loops), flow, blocks)
        region = solve_region(cfg, forest, None, _costs(blocks), _exits(blocks), flow.edge_out,
                              summaries)
        if any(math.isinf(c[1]) for c in region.cost.values()):
            for header, summary in summaries.items():
                parent = forest.loops[header].parent
                if _is_unbounded(summary) and (parent is None or parent not in summaries
                                               or _is_unbounded(summaries[parent])):
                    cause, read = self._loader_cause(cfg, forest.loops[header], func)
                    self.diag("BPF003", "unbounded-loop",
                              f"no bound proven for the loop in {func.name} "
                              f"({summary.bound.how}){cause}",
                              read or cfg.blocks[header].insns[0])
        as_callee = None
        if self.table is not None and len(self.chain) > 1 and TAIL not in region.cost \
                and RET in region.cost and not math.isinf(region.cost[RET][3]) \
                and len(func.insns) <= CALLEE_OVERLAP_MAX_INSNS:
            as_callee = self._callee_overlap(ctx, flow, blocks, summaries)
        lines_ret: Lines = {}
        lines_tail: Lines = {}
        for at in (PATH_INSNS, PATH_NS):
            if RET in region.cost:
                _expand(region, RET, 1, blocks, summaries, lines_ret, None, at)
            if TAIL in region.cost:
                _expand(region, TAIL, 1, blocks, summaries, lines_tail, None, at)
        return FuncResult(region.cost.get(RET), region.cost.get(TAIL), ret_val or UNKNOWN,
                          lines_ret, lines_tail, frozenset(tail_targets), frozenset(open_maps),
                          as_callee)

    def _loader_cause(self, cfg: Cfg, loop: Loop, func: Function) -> tuple[str, Insn | None]:
        """Names the loader-set variables an unbounded loop reads (in its body, else
        anywhere in its function): pinning them may bound it. The read in the loop
        (its condition, as a rule) is where the diagnostic points."""
        if not self.loader_reads:
            return "", None
        body = [insn for b in loop.order for insn in cfg.blocks[b].insns]
        in_loop = [insn for insn in body if any(id(insn) in insns
                                                 for insns in self.loader_reads.values())]
        names = sorted(name for name, insns in self.loader_reads.items()
                       if any(id(insn) in insns for insn in in_loop))
        if not names:
            names = sorted(name for name, insns in self.loader_reads.items()
                           if any(id(insn) in insns for insn in func.insns))
        if not names:
            return "", None
        types = {var.name: var.type_name for m in self.obj.maps.values()
                 for var in m.loader_vars}
        listed = ", ".join(f"{name} (any {types.get(name, '?')} unless pinned)"
                           for name in names)
        read = next((insn for insn in in_loop if insn.line is not None), None)
        return (f"; it reads the loader-set variable {listed}: pin it with "
                f"--set {names[0]}=N or [rodata]"), read

    def _callee_overlap(self, ctx: _Ctx, flow: Flow, blocks: dict[int, _BlockInfo],
                        summaries: dict[int, LoopSummary]) -> CalleeOverlap:
        """A function's dearest path in each lane and its longest chain."""
        assert self.table is not None
        lanes = [0.0] * len(NO_LANES)
        for lane in _busy_lanes(blocks):
            costs = _lane_costs(blocks, lane, self.table.slot_ns, None)
            region = solve_region(ctx.cfg, ctx.forest, None, costs, _exits(blocks),
                                  flow.edge_out, summaries)
            lanes[lane] = region.cost[RET][3] if RET in region.cost else 0.0
        chains = tuple(max(ends.get(r, 0.0) for r in RESULT)
                       for _, ends in _chains_from(ctx, None, blocks, summaries, flow,
                                                   CALL_READS))
        return CalleeOverlap((lanes[0], lanes[1], lanes[2], lanes[3], 0.0), chains)

    def _summaries(self, ctx: _Ctx, headers: list[int], flow: Flow,
                   blocks: dict[int, _BlockInfo]) -> dict[int, LoopSummary]:
        """Summaries of the given loops, innermost first, with the states in ``flow``."""
        forest = ctx.forest
        summaries: dict[int, LoopSummary] = {}
        for header in sorted(headers, key=lambda h: len(forest.loops[h].body)):
            if header not in flow.block_in:
                continue
            loop = forest.loops[header]
            bound = self._bound(ctx, header, flow)
            time_cap_ns = math.inf
            if bound.may_goto and self.options.may_goto == "timed":
                bound, time_cap_ns = self._timed_may_goto(ctx, loop, bound, flow, blocks,
                                                          summaries)
            steady_ns, exit_ns = self._steady_ns(ctx, loop, flow, blocks, summaries,
                                                 bound.max_backedges)
            summary = summarise_loop(ctx.cfg, forest, header, bound, _costs(blocks),
                                     _exits(blocks), flow.edge_out, summaries, blocks,
                                     steady_ns, exit_ns, time_cap_ns)
            if bound.max_backedges is not None:
                work = (bound.max_backedges + 1) * body_insns(ctx.cfg, loop)
                # Iteration-by-iteration costing is exact but costs as much as
                # interpreting the loop: needed when an inner loop is bounded only
                # per outer iteration, else spent on small loops while a
                # per-program allowance lasts.
                if _is_unbounded(summary) or work <= min(PER_ITERATION_STEPS,
                                                         self.sharpen_left):
                    self.sharpen_left -= work
                    unrolled = self._unrolled_summary(ctx, loop, flow,
                                                      bound.max_backedges + 1, steady_ns,
                                                      exit_ns)
                    if unrolled is not None:
                        summary = unrolled
            summaries[header] = summary
            self._note_loop(ctx.cfg.blocks[header].insns[0], "loop",
                            summary.bound.max_backedges, summary.bound.how)
        return summaries

    def _timed_may_goto(self, ctx: _Ctx, loop: Loop, bound: LoopBound, flow: Flow,
                        blocks: dict[int, _BlockInfo], summaries: dict[int, LoopSummary]
                        ) -> tuple[LoopBound, float]:
        """A loop the timed may_goto budget bounds (bpflint/cost/may_goto.py): its back
        edges from 250 ms over its cheapest iteration, unless another bound is lower,
        and the most time its iterations take."""
        region = solve_region(ctx.cfg, ctx.forest, loop.header, _costs(blocks),
                              _exits(blocks), flow.edge_out, summaries)
        iteration = region.cost.get(LATCH)
        if iteration is None:
            return bound, math.inf
        table = self.table
        # every iteration runs a may_goto: its price is a floor without a table too
        floor_ns = table.insns["may_goto"].min_ns if table is not None \
            else may_goto.shipped_may_goto_min_ns()
        if table is not None:
            floor_ns = max(floor_ns, iteration[2])
        n = may_goto.timed_iterations(floor_ns)
        other = bound.max_backedges
        if n is None:
            if other is None:
                return LoopBound(loop.header, None, 0, may_goto.UNBOUNDED_HOW, True), math.inf
            return bound, math.inf
        if other is not None and other <= n:
            return bound, math.inf
        line = _loop_line(ctx.cfg, loop)
        # one note per loop, though it is bounded again in other contexts
        if not any(d.rule == "BPF009" and d.loc == _loc(line) for d in self.diags):
            self.diag("BPF009", "timed-may-goto", may_goto.describe(n, floor_ns), line)
        refresh_ns = table.defaults.helper.max_ns if table is not None else 0.0
        cap_ns = may_goto.timed_ns(iteration[3], refresh_ns) if table is not None \
            else math.inf
        return LoopBound(loop.header, n, bound.min_backedges,
                         f"timed may_goto: at most {n} iterations in 250 ms", True), cap_ns

    def _steady_ns(self, ctx: _Ctx, loop: Loop, flow: Flow, blocks: dict[int, _BlockInfo],
                   summaries: dict[int, LoopSummary], later: int | None
                   ) -> tuple[float, dict[Target, float]]:
        """What an iteration after the first adds at most, once iterations overlap:
        the longer of the loop-carried dependency chain and the iteration's issue
        bound (overlap.py); and, per way out, what the part of an iteration that
        leaves the loop adds after an iteration before it, by the same rule. Over
        the states of ``flow``, which hold every iteration's, so it bounds each."""
        if self.table is None:
            return math.inf, {}
        # The fullest lane over every path: for each lane, its dearest path (the
        # serial work in all of them), then the dearest of those. On any one path
        # the issue bound is at most that.
        issue = 0.0
        leave_issue: dict[Target, float] = {}
        # A steady iteration's back edge costs at most what a small loop's does
        # (calibration's taken-jump figures are from long runs of distinct jumps).
        back_edge = (loop.header, self.table.insns["jmp_loop_back"].max_ns)
        for lane in _busy_lanes(blocks, loop.body):
            costs = _lane_costs(blocks, lane, self.table.slot_ns, back_edge)
            region = solve_region(ctx.cfg, ctx.forest, loop.header, costs,
                                  _exits(blocks), flow.edge_out, summaries)
            iteration = region.cost.get(LATCH)
            if iteration is None:
                return math.inf, {}
            issue = max(issue, iteration[3])
            for target, cost in region.cost.items():
                if target != LATCH:
                    leave_issue[target] = max(leave_issue.get(target, 0.0), cost[3])
        back, leave = _chain_end(ctx.cfg, ctx.forest, loop, blocks, summaries,
                                 flow.edge_out, Readiness())
        chain = back.latest() if back is not None else 0.0
        leave_chain = leave.latest() if leave is not None else 0.0
        exits = {target: max(ns, leave_chain) for target, ns in leave_issue.items()}
        if chain <= issue or math.isinf(chain) \
                or body_insns(ctx.cfg, loop) > CYCLE_ANALYSIS_MAX_INSNS:
            return max(issue, chain), exits
        # Chain-bound: an iteration adds what the loop-carried chains' worst cycle
        # does per iteration, not the longest chain through one iteration (a value
        # computed from the counter that no later iteration reads ends once).
        carried = {source: ends for source, ends in
                   _chains_from(ctx, loop, blocks, summaries, flow, LOOP_VALUES)}
        return max(issue, steady_chain_ns(carried, chain, later)), exits

    def _unrolled_summary(self, ctx: _Ctx, loop: Loop, flow: Flow, limit: int,
                          steady_ns: float, exit_ns: Mapping[Target, float]
                          ) -> LoopSummary | None:
        """Cost a loop iteration by iteration, each from its own exact entry state.

        Tighter than bound x dearest iteration when iterations differ (an inner
        loop whose trip count depends on the outer counter, a branch on the
        counter), and it bounds inner loops that are bounded only per outer
        iteration, as the verifier does. None when the loop does not finish
        within ``limit`` iterations or stops making progress.
        """
        cfg, forest, h = ctx.cfg, ctx.forest, loop.header
        entry = loop_entry(cfg, loop, flow)
        if entry is None:
            return None
        state = entry
        inner = _descendants(forest, h)
        iterations: list[Piece] = []
        iterate = self._iterate(ctx, loop)
        visited = {state}
        for _ in range(max(limit, 0) + 1):
            block_in, edge_out, nxt = iterate(state)
            flow_k = Flow(block_in, edge_out)
            blocks_k = {}
            for b, st in block_in.items():
                blocks_k[b], _ = self._cost_block(cfg, b, st, ctx.env, ctx.prog_type,
                                                  ctx.tail_targets, ctx.open_maps,
                                                  ctx.iterations.views)
            summaries_k = self._summaries(ctx, inner, flow_k, blocks_k)
            region = solve_region(cfg, forest, h, _costs(blocks_k), _exits(blocks_k),
                                  edge_out, summaries_k)
            iterations.append(Piece(region, LATCH, 1, blocks_k, summaries_k))
            if nxt is None:
                break
            if nxt in visited or leq_state(nxt, state):
                return None  # a state seen before: it may cycle forever
            visited.add(nxt)
            state = nxt
        else:
            return None
        totals: dict[Target, Cost] = {}
        pieces: dict[Target, list[Piece]] = {}
        pieces_ns: dict[Target, list[Piece]] = {}
        prefix: Cost = ZERO_COST
        first_exit: int | None = None
        for j, it in enumerate(iterations):
            for target, cost in it.region.cost.items():
                if target == LATCH:
                    continue
                first_exit = j if first_exit is None else first_exit
                ns_mult = None
                if j and cost[3] > exit_ns.get(target, math.inf):  # after an iteration
                    ns_mult = exit_ns[target] / cost[3]
                    cost = (cost[0], cost[1], cost[2], exit_ns[target])
                cand = add(prefix, cost)
                old = totals.get(target)
                chosen: list[Piece] | None = None
                if old is None or cand[1] > old[1]:
                    chosen = iterations[:j] + [Piece(it.region, target, 1, it.context,
                                                     it.summaries, ns_mult)]
                    pieces[target] = chosen
                if old is None or cand[3] > old[3]:
                    pieces_ns[target] = chosen or iterations[:j] + [
                        Piece(it.region, target, 1, it.context, it.summaries, ns_mult)]
                totals[target] = cand if old is None else _merge(old, cand)
            latch = it.region.cost.get(LATCH)
            if latch is None:
                break
            if j and latch[3] > steady_ns:  # overlapping the iteration before it
                it.ns_mult = steady_ns / latch[3]
                latch = (latch[0], latch[1], latch[2], steady_ns)
            prefix = add(prefix, latch)
        n = len(iterations) - 1
        bound = LoopBound(h, n, first_exit or 0, f"unrolled: at most {n} iterations")
        return LoopSummary(bound, totals, pieces, pieces_ns)

    def _bound(self, ctx: _Ctx, header: int, flow: Flow) -> LoopBound:
        """Induction variables (cheap, any trip count), else abstract unrolling. But
        first, where the fixpoint ran the loop iteration by iteration to its end,
        its iterations are counted from the cache: exact, and free, where the
        induction prover would walk the whole body once more."""
        cfg, forest, env = ctx.cfg, ctx.forest, ctx.env
        loop = forest.loops[header]
        limit = min(UNROLL_STEPS, self.budget.left) // max(body_insns(cfg, loop), 1)
        entry = loop_entry(cfg, loop, flow)
        if entry is not None:
            counted = count_iterations(cfg, loop, entry, limit,
                                       lambda state: ctx.iterations.get(header, state))
            if counted is not None:
                return counted
        timed = self.options.may_goto == "timed"
        bound = bound_loop(cfg, forest, loop, flow, env, None if timed else MAY_GOTO_BUDGET)
        if bound.max_backedges is not None and not bound.may_goto:
            return bound
        # a may_goto budget (8M, or _timed_may_goto's) is large: the loop's own exit
        # test may give a far smaller bound, as unrolling it shows (within a smaller
        # allowance: a loop that only may_goto ends runs the whole of it)
        if bound.may_goto:
            limit = min(limit, MAY_GOTO_UNROLL_STEPS // max(body_insns(cfg, loop), 1))
        unrolled = unroll_loop(cfg, loop, flow, env, self.budget, limit,
                               self._iterate(ctx, loop))
        if unrolled is None or unrolled.max_backedges is None:
            return bound
        if bound.max_backedges is not None and bound.max_backedges < unrolled.max_backedges:
            return bound
        return unrolled

    def _iterate(self, ctx: _Ctx, loop: Loop) -> Callable[[State], Iteration]:
        """One iteration of ``loop`` from a header state; the fixpoint may have run it."""
        def iterate(state: State) -> Iteration:
            return run_iteration(ctx.cfg, ctx.forest, loop.header, state, ctx.env,
                                 _no_subcall, self.budget, ctx.thresholds, ctx.iterations)
        return iterate

    # -- costs of the instructions of one block -------------------------------
    def _cost_block(self, cfg: Cfg, b: int, state: State, env: Env, prog_type: str,
                    tail_targets: set[str], open_maps: set[str], views: Views
                    ) -> tuple[_BlockInfo, Val | None]:
        """A block's costs from one entry state, and r0 at its exit (None: no exit).

        A block's price reads the state only where the block touches memory (which
        kind) and at calls (their arguments): those views are its memo key, so a
        loop body costed once per iteration is priced once. The views come from the
        fixpoint's walk of the block from the same state where it made one, else
        from walking it here."""
        block = cfg.blocks[b]
        view = views.get(block, state)
        reads, r0 = view if view is not None else self._block_view(block, state, env, prog_type)
        key = (id(block), prog_type, tuple(self.chain), reads)
        got = self.block_memo.get(key)
        if got is None:
            tails: set[str] = set()
            opens: set[str] = set()
            info = self._price_block(block, reads, prog_type, tails, opens)
            if len(self.block_memo) >= BLOCK_MEMO_KEPT:
                self.block_memo.clear()
            got = self.block_memo[key] = (info, frozenset(tails), frozenset(opens))
        info, tails_added, opens_added = got
        tail_targets.update(tails_added)
        open_maps.update(opens_added)
        return info, r0

    def _block_view(self, block: Block, state: State, env: Env, prog_type: str) -> BlockView:
        """Walk a block for its view (fixpoint.BlockView), bpf-to-bpf calls returning
        what the callee returns."""
        m = Machine(state)
        reads: list[InsnView] = []
        r0: Val | None = None
        # Pricing reads the state only at memory accesses, calls and exits: past
        # the last of them the block need not be interpreted.
        interpret_until = self.last_reads.get(id(block))
        if interpret_until is None:
            interpret_until = self.last_reads[id(block)] = _last_state_read(block)
        insns = block.insns
        for index in range(interpret_until + 1):
            insn = insns[index]
            reads.append(insn_view(m, insn))
            if insn.is_exit:
                r0 = m.regs[0]
            elif index < interpret_until and not insn.is_branch:
                step(m, insn, env, lambda i, mm: self._subcall_result(i, mm.regs, prog_type))
        reads.extend([None] * (len(insns) - len(reads)))
        return tuple(reads), r0

    def _price_block(self, block: Block, reads: tuple[InsnView, ...], prog_type: str,
                     tail_targets: set[str], open_maps: set[str]) -> _BlockInfo:
        table = self.table
        # the block's cost so far, field by field, summed in instruction order
        n_lo: Count = 0
        n_hi: Count = 0
        lo_sum = 0.0
        hi_sum = 0.0
        lines: Lines = {}
        exits: list[Target] = []
        edge_ns = self._jump_ns(block)
        run = _Run(self.timed, table.slot_ns if table is not None else 0.0)
        steps: list[Timed | float] = []
        goto_ns = 0.0
        last_insn = block.last
        n_reads = len(reads)
        for index, insn in enumerate(block.insns):
            src_line = insn.line
            key = (src_line.file, src_line.line) if src_line is not None else None
            line = None
            if key is not None:
                line = lines.get(key)
                if line is None:
                    line = lines[key] = [0, 0.0, 0, 0.0]
                line[0] += 1
                line[2] += 1
            read = reads[index] if index < n_reads else None
            op = insn.opcode
            if op != 0x85:  # not a call (the opcode byte: Insn's properties cost a call)
                n_lo += 1
                n_hi += 1
                if op in RET_OPCODES:
                    exits.append(RET)
                if table is None or (edge_ns and insn is last_insn):
                    continue  # free, or priced on the edges instead
                lo, hi, issue = table.insn_price(insn, read if isinstance(read, str) else None)
                lo_sum += lo
                # priced with the rest of its run between calls (overlap.py)
                timed_insn = run.add(insn, key, hi, issue)
                if insn is last_insn and (op == 0x05 or op == 0x06):
                    goto_ns = timed_insn.lanes[BRANCH]
                steps.append(timed_insn)
                continue
            assert isinstance(read, tuple)
            extra: Lines = {}
            cost = self._call_cost(insn, read, prog_type, extra, tail_targets, open_maps)
            if not insn.is_pseudo_call and key is not None:
                self._note_call(insn, key, cost)
            overlap = self._call_overlap(insn, read, prog_type)
            if edge_ns and insn is last_insn:
                cost = (cost[0], cost[1], 0.0, 0.0)  # priced on the edges instead
            elif overlap is not None:
                # one step of the run (overlap.py); the callee's lines keep their
                # instructions, the call's line takes its share of the run's ns
                call_ns = self._ns(insn, None)
                step_ = call_step(tuple(lat + call_ns[0] for lat in overlap.read_latency),
                                  add_lanes(overlap.lanes, lane_costs(CALL, call_ns[1], 0.0)))
                run.add_step(step_, key, cost[3])
                steps.append(step_)
                cost = (cost[0], cost[1], cost[2], 0.0)
                for callee_line in extra.values():
                    callee_line[1] = callee_line[3] = 0.0
            else:
                hi_sum += run.flush(lines)[3]
                if cost[3]:
                    steps.append(cost[3])
            n_lo += cost[0]
            n_hi += cost[1]
            lo_sum += cost[2]
            hi_sum += cost[3]
            if line is not None:
                line[1] += cost[3] - _callee_ns(extra, PATH_INSNS)
                line[3] += cost[3] - _callee_ns(extra, PATH_NS)
            _add_lines(lines, extra, 1)
            if is_tail_call(insn):
                exits.append(TAIL)
        if block.falls_off:
            exits.append(RET)
        hi_sum += run.flush(lines)[3]
        lanes = sum_lanes(steps)
        last = last_insn.line
        jump_line = (last.file, last.line) if edge_ns and last is not None else None
        return _BlockInfo((n_lo, n_hi, lo_sum, hi_sum), lines, exits, edge_ns, lanes, goto_ns,
                          tuple(steps), jump_line)

    def _call_overlap(self, insn: Insn, regs: tuple[Val, ...], prog_type: str
                      ) -> CalleeOverlap | None:
        """How a bpf-to-bpf call overlaps its caller, None for other instructions (and
        for calls priced as barriers)."""
        if not insn.is_pseudo_call or self.table is None or insn.reloc is None \
                or insn.reloc.func is None:
            return None
        try:  # memoised: _call_cost analysed this callee in this context already
            callee = self.function(insn.reloc.func, _callee_entry(regs[1:6]), prog_type)
        except Unbounded:
            return None
        return callee.as_callee

    def _jump_ns(self, block: Block) -> dict[int, tuple[float, float]]:
        """ns of a block's closing conditional jump, per successor (taken or not)."""
        last = block.last
        if self.table is None or not last.is_conditional_jump or last.is_may_goto \
                or len(block.succs) != 2 or block.succs[0] == block.succs[1]:
            return {}
        fall = self.table.insns.get("jmp_cond_not_taken")
        taken = self.table.insns.get("jmp_cond_taken")
        if fall is None or taken is None:
            return {}
        # Only the maximum depends on the direction: pipelined, predicted jumps can
        # cost less than calibration's dependent-chain minimum, so both directions
        # keep the smaller minimum.
        low = min(fall.min_ns, taken.min_ns)
        return {block.succs[0]: (low, fall.max_ns), block.succs[1]: (low, taken.max_ns)}

    def _subcall_result(self, insn: Insn, regs: list[Val], prog_type: str) -> Val:
        target = insn.reloc.func if insn.reloc is not None else None
        if target is None:
            return UNKNOWN
        try:
            return self.function(target, _callee_entry(regs[1:6]), prog_type).ret_val
        except Unbounded:
            return UNKNOWN

    def _ns(self, insn: Insn, kind: str | None) -> tuple[float, float]:
        if self.table is None:
            return (0.0, 0.0)
        return self.table.insn_ns(insn, kind)

    def _call_cost(self, insn: Insn, regs: tuple[Val, ...], prog_type: str, lines: Lines,
                   tail_targets: set[str], open_maps: set[str]) -> Cost:
        """A call's cost from the registers r0..r5 before it."""
        if insn.is_pseudo_call:
            lo, hi = self._ns(insn, None)
            target = insn.reloc.func if insn.reloc is not None else None
            if target is None:
                raise Unbounded(self.diag("BPF007", "bad-call", "unresolved bpf-to-bpf call",
                                          insn))
            callee = self.function(target, _callee_entry(regs[1:6]), prog_type)
            callee_cost = _callee_total(callee, self, prog_type)
            _add_lines(lines, callee.lines_ret, 1)
            return add((1, 1, lo, hi), callee_cost)
        if insn.is_kfunc_call:
            name = insn.reloc.symbol if insn.reloc is not None else f"kfunc#{insn.imm}"
            self.priced.add(name)
            lo, hi = self.table.kfunc_ns(name) if self.table else (0.0, 0.0)
            return (1, 1, lo, hi)
        return self._helper_cost(insn, regs, prog_type, lines, tail_targets, open_maps)

    def _helper_cost(self, insn: Insn, regs: tuple[Val, ...], prog_type: str, lines: Lines,
                     tail_targets: set[str], open_maps: set[str]) -> Cost:
        hid = insn.imm
        map_type, key_size = None, None
        if regs[1].kind == Kind.MAP_PTR and isinstance(regs[1].ref, str):
            mapdef = self.obj.maps.get(regs[1].ref)
            if mapdef:
                map_type, key_size = mapdef.type_name, mapdef.key_size
        sizes = call_sizes(hid, regs, self.obj.maps)
        size = None if sizes is None else (sizes.lo, sizes.hi)
        base = (1, 1, 0.0, 0.0)
        name = model_helper_name(hid)
        self.priced.update((name, f"{name}[{map_type}]"))
        if hid == calls.TAIL_CALL:
            self._tail_call(insn, regs, tail_targets, open_maps)
        if hid in calls.CALLBACK_ARG and hid != calls.TIMER_SET_CALLBACK:
            iters, cb_cost, cb_lines, overlap = self._callback(insn, regs, hid, prog_type)
            if self.table is not None:
                lo, hi = self.table.helper_ns(hid, map_type, iters)
                base = (1, 1, lo, hi)
            cb_total = scale(cb_cost, iters[0], iters[1])
            ns_mult = float(iters[1])
            saved = self._overlapped_iterations(hid, cb_cost, overlap, iters[1])
            if saved:
                cb_total = (*cb_total[:3], cb_total[3] - saved)
                ns_mult *= cb_total[3] / (cb_total[3] + saved)
            _add_lines(lines, cb_lines, iters[1], ns_mult)
            self._note_loop(insn, "callback", iters[1], f"{calls.helper_name(hid)}: "
                            f"{iters[0]} to {iters[1]} callback runs")
            return add(base, cb_total)
        if hid == calls.TIMER_SET_CALLBACK:
            cb = regs[2]
            if cb.kind == Kind.FUNC and isinstance(cb.ref, tuple):
                self.async_callbacks.add(cb.ref)
        if self.table is not None:
            lo, hi = self.table.helper_ns(hid, map_type, size, key_size)
            base = (1, 1, lo, hi)
        if sizes is not None:
            self._loose_size(insn, hid, sizes, base[3])
        return base

    def _loose_size(self, insn: Insn, hid: int, sizes: CallSizes, max_ns: float) -> None:
        """Say where a large size bound comes from when the value analysis did not
        bound the size itself: the number alone would look like a bug."""
        for arg in sizes.args:
            if not arg.capped or arg.hi <= LOOSE_SIZE_BYTES:
                continue
            where = "" if insn.line is not None else f" (instruction {insn.pc})"
            priced = f", priced at up to {max_ns / 1000:.1f}us" if max_ns else ""
            message = (f"{arg.what} of {calls.helper_name(hid)}"
                       f"{where} is bounded only by {arg.buffer}: up to {arg.hi} bytes"
                       f"{priced}; bound it in the program (n &= MASK, or "
                       f"if (n > MAX) return) to tighten the worst case")
            if (insn.pc, arg.what) not in self.loose_sizes:  # first context only
                self.loose_sizes.add((insn.pc, arg.what))
                self.diag("BPF008", "loose-size-bound", message, insn)

    def _tail_call(self, insn: Insn, regs: tuple[Val, ...], tail_targets: set[str],
                   open_maps: set[str]) -> None:
        prog_map = regs[2]
        name = prog_map.ref if prog_map.kind == Kind.MAP_PTR else None
        if not isinstance(name, str):
            open_maps.add("?")
            self.diag("BPF005", "open-tail-call",
                      "tail call through a map bpflint cannot identify", insn)
            return
        configured = self.options.tail_call_targets.get(name)
        if configured:
            tail_targets.update(configured)
            return
        mapdef = self.obj.maps.get(name)
        index = regs[3].s if regs[3].kind == Kind.SCALAR else sc.UNKNOWN
        slots = [prog for slot, prog in (mapdef.prog_slots if mapdef else ())
                 if index.umin <= slot <= index.umax]
        if not slots:
            open_maps.add(name)
            self.diag("BPF005", "open-tail-call",
                      f"tail call through prog array '{name}' with no known targets "
                      "(add them under [tail_calls] in bpfbudget.toml)", insn)
            return
        tail_targets.update(slots)

    def _overlapped_iterations(self, hid: int, cb_cost: Cost, overlap: CalleeOverlap | None,
                               iterations: int) -> float:
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
        per_unit = self.table.per_unit_max_ns(hid) if self.table is not None else None
        if overlap is None or per_unit is None or iterations < 2 or math.isinf(cb_cost[3]):
            return 0.0
        lanes = add_lanes(overlap.lanes, lane_costs(CALL, per_unit, 0.0))
        chain = per_unit + overlap.read_latency[CALL_READS.index(MEMORY)]
        alone = per_unit + cb_cost[3]
        steady = min(alone, max(issue_bound(lanes), chain))
        return (iterations - 1) * (alone - steady)

    def _callback(self, insn: Insn, regs: tuple[Val, ...], hid: int, prog_type: str
                  ) -> tuple[tuple[int, int], Cost, Lines, CalleeOverlap | None]:
        cb = regs[calls.CALLBACK_ARG[hid]]
        if cb.kind != Kind.FUNC or not isinstance(cb.ref, tuple):
            raise Unbounded(self.diag("BPF003", "unknown-callback",
                                      f"{calls.helper_name(hid)} with a callback bpflint "
                                      "cannot identify", insn))
        cb_key: FuncKey = cb.ref
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
            args = [scalar(Scalar.urange(0, max(hi - 1, 0))), _foreign(regs[3])]
        elif hid == calls.FOR_EACH_MAP_ELEM:
            name = regs[1].ref if regs[1].kind == Kind.MAP_PTR else None
            mapdef = self.obj.maps.get(name) if isinstance(name, str) else None
            if mapdef is None:
                raise Unbounded(self.diag("BPF003", "unknown-map",
                                          "bpf_for_each_map_elem over a map bpflint cannot "
                                          "identify", insn))
            hi = mapdef.max_entries
            lo = hi if mapdef.type_name in ("array", "percpu_array") else 0
            args = [regs[1], mem, Val(Kind.MAP_VALUE, Scalar.const(0), name), _foreign(regs[3])]
        elif hid == calls.FIND_VMA:
            lo, hi = 0, 1
            args = [mem, mem, _foreign(regs[4])]
        else:  # user_ringbuf_drain
            lo, hi = 0, USER_RINGBUF_MAX_SAMPLES
            args = [mem, _foreign(regs[3])]
        result = self.function(cb_key, _callee_entry(args, foreign=False), prog_type)
        cb_cost = _callee_total(result, self, prog_type)
        ret = result.ret_val
        # The helper stops early when the callback returns 1; if it cannot, every
        # iteration runs.
        always_continues = ret.kind == Kind.SCALAR and ret.s.umax == 0
        if not always_continues:
            lo = min(lo, 1)
        return (lo, hi), cb_cost, result.lines_ret, result.as_callee

    # -- whole programs, tail calls included ----------------------------------
    def program_cost(self, program_name: str, depth: int) -> tuple[Cost, Lines]:
        """Cost of running a program that was reached after ``depth`` tail calls."""
        memo = self.program_memo.get((program_name, depth))
        if memo is not None:
            return memo
        prog = next((p for p in self.obj.programs if p.name == program_name), None)
        if prog is None:
            raise Unbounded(self.diag("BPF005", "open-tail-call",
                                      f"tail-call target '{program_name}' is not a program "
                                      "of this object", None))
        res = self.function(prog.entry, _program_entry(), prog.prog_type)
        # copies: the memoised function result's lines must not grow
        cost, lines = res.ret, _pick(res.lines_ret, res.lines_ret)
        if res.tail is not None:
            tail_cost, tail_lines = res.tail, _pick(res.lines_tail, res.lines_tail)
            if res.tail_targets and depth < MAX_TAIL_CALLS:
                worst: Cost | None = None
                worst_insns: Lines = {}  # the target dearest by instructions
                worst_ns: Lines = {}  # and by ns
                for target in sorted(res.tail_targets):
                    c, ln = self.program_cost(target, depth + 1)
                    if worst is None or c[1] > worst[1]:
                        worst_insns = ln
                    if worst is None or c[3] > worst[3]:
                        worst_ns = ln
                    worst = c if worst is None else _merge(worst, c)
                assert worst is not None
                tail_cost = add(tail_cost, worst)
                _add_lines(tail_lines, _pick(worst_insns, worst_ns), 1)
            if cost is None:
                lines = tail_lines
            else:
                lines = _pick(tail_lines if tail_cost[1] > cost[1] else lines,
                              tail_lines if tail_cost[3] > cost[3] else lines)
            cost = tail_cost if cost is None else _merge(cost, tail_cost)
        if cost is None:  # no path ends: an infinite loop for all the analysis knows
            raise Unbounded(self.diag("BPF003", "no-exit",
                                      f"no path of {prog.name} reaches exit",
                                      self.obj.functions[prog.entry].insns[0]))
        self.program_memo[(program_name, depth)] = (cost, lines)
        return cost, lines


class _Run:
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
        known_key = (op, insn.dst, insn.src, insn.imm if op & 0x07 == CLS_STX else 0,
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


def _costs(blocks: dict[int, _BlockInfo]) -> EdgeCost:
    def cost(b: int, succ: int | None) -> Cost:
        info = blocks[b]
        jump = info.edge_ns.get(succ) if succ is not None else None
        if jump is None:
            return info.cost
        c = info.cost
        return (c[0], c[1], c[2] + jump[0], c[3] + jump[1])
    return cost


# Loops up to this size have their carried chains taken apart value by value (one
# more pass over the body per value); bigger ones keep the longest chain.
CYCLE_ANALYSIS_MAX_INSNS = 256
# Functions up to this size overlap their callers (a pass over the body per argument
# in every calling context); bigger ones, where the call's own cost is a small part,
# are barriers as helpers are.
CALLEE_OVERLAP_MAX_INSNS = 1024
RESULT = (0, MEMORY)  # what a called function leaves its caller: r0 and memory
LOOP_VALUES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, MEMORY)  # what an iteration hands the next


def _busy_lanes(blocks: dict[int, _BlockInfo], body: Iterable[int] | None = None
                ) -> list[int]:
    """The lanes some block (of ``body``) adds to: the others cost only serial work,
    which the ALU lane's path also pays. ALU and branch always: jumps add to them."""
    infos = blocks.values() if body is None else [blocks[b] for b in body if b in blocks]
    return [ALU, BRANCH] + [lane for lane in PARALLEL_LANES if lane not in (ALU, BRANCH)
                            and any(info.lanes[lane] for info in infos)]


def _lane_costs(blocks: dict[int, _BlockInfo], lane: int, slot_ns: float,
                back_edge: tuple[int, float] | None) -> EdgeCost:
    """Block costs in ns as their serial work plus what they add to ``lane``, the
    closing jump on its edge included: one lane of a loop iteration's issue bound.
    ``back_edge``: (the loop's header, the most a jump back to it costs)."""
    full = _costs(blocks)

    def cost(b: int, succ: int | None) -> Cost:
        c, info = full(b, succ), blocks[b]
        ns = info.lanes[SERIAL] + info.lanes[lane]
        back_ns = back_edge[1] if back_edge is not None and succ == back_edge[0] else math.inf
        if lane == BRANCH and info.goto_ns > back_ns:
            ns -= info.goto_ns - back_ns
        jump = info.edge_ns.get(succ) if succ is not None else None
        if jump is not None:
            ns += lane_costs(BRANCH, min(jump[1], back_ns), slot_ns)[lane]
        return (c[0], c[1], c[2], ns)
    return cost


def _chain_end(cfg: Cfg, forest: LoopForest, loop: Loop | None,
               blocks: dict[int, _BlockInfo], summaries: dict[int, LoopSummary],
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

    def join(old: Readiness | None, ready: Readiness) -> Readiness:
        return ready if old is None else old.join(ready)

    def reach(target: int, ready: Readiness) -> None:
        nonlocal back, leave
        if loop is not None and target == header:
            back = join(back, ready)
        elif loop is None or target in loop.body:
            into[target] = join(into.get(target), ready)
        else:
            leave = join(leave, ready)

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
                    reach(dst, out)
            continue
        info = blocks.get(b)
        if info is None:
            continue
        out = ready.after(info.steps)
        if info.exits:  # exit, a successful tail call
            leave = join(leave, out)
        for succ in set(cfg.blocks[b].succs):
            if (b, succ) in edges:
                reach(succ, out)
    return back, leave


def _chains_from(ctx: _Ctx, loop: Loop | None, blocks: dict[int, _BlockInfo],
                 summaries: dict[int, LoopSummary], flow: Flow, sources: tuple[int, ...]
                 ) -> list[tuple[int, dict[int, float]]]:
    """Per source value: the longest chain from it (at the loop's header, or the
    function's entry) to each value at the back edges (exits) that depends on it.
    The source is made ready far later than the rest: what it feeds ends after
    that, what it does not feed before."""
    late = 1e9
    out = []
    for source in sources:
        back, leave = _chain_end(ctx.cfg, ctx.forest, loop, blocks, summaries,
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


def _exits(blocks: dict[int, _BlockInfo]) -> Callable[[int], list[Target]]:
    return lambda b: blocks[b].exits


def _descendants(forest: LoopForest, header: int) -> list[int]:
    out: list[int] = []
    work = list(forest.loops[header].children)
    while work:
        h = work.pop()
        out.append(h)
        work.extend(forest.loops[h].children)
    return out


def _loop_line(cfg: Cfg, loop: Loop) -> Insn | None:
    """The instruction that names a loop's source line: its header's first with line
    info, else its may_goto's."""
    header = cfg.blocks[loop.header].insns
    found = next((insn for insn in header if insn.line is not None), None)
    if found is not None:
        return found
    body = [insn for b in loop.order for insn in cfg.blocks[b].insns]
    return next((insn for insn in body if insn.is_may_goto and insn.line is not None),
                header[0])


def _is_unbounded(summary: LoopSummary) -> bool:
    return any(math.isinf(c[1]) for c in summary.totals.values())


def _merge(a: Cost, b: Cost) -> Cost:
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def _callee_ns(lines: Lines, at: int) -> float:
    return sum(v[at + 1] for v in lines.values())


def _callee_total(res: FuncResult, analysis: ProgramAnalysis, prog_type: str) -> Cost:
    """A callee's cost as its caller sees it; a tail call from a subprogram runs the
    target and then returns to the caller, so the target's cost joins the callee's."""
    cost = res.ret
    if res.tail is not None:
        tail = res.tail
        if res.tail_targets:
            worst = None
            for target in sorted(res.tail_targets):
                c, _ = analysis.program_cost(target, 1)
                worst = c if worst is None else _merge(worst, c)
            assert worst is not None
            tail = add(tail, worst)
        cost = tail if cost is None else _merge(cost, tail)
    if cost is None:  # the callee never returns: as unbounded as an endless loop
        raise Unbounded(analysis.diag("BPF003", "no-exit",
                                      "a called function has no path that returns", None))
    return cost


def _foreign(v: Val) -> Val:
    """A value passed into another frame: the caller's stack is plain memory there.
    A STACK_OR_OTHER value (a caller's stack pointer, other memory, or data) is an
    unknown scalar there: the callee reads and writes through it as through memory
    of no particular kind, and compares it as data (if (n > 20) return)."""
    if v.kind == Kind.STACK:
        if v.ref == STACK_OR_OTHER:
            return UNKNOWN
        return Val(Kind.MEM, v.s, CALLER_STACK, v.maybe_null)
    return v


def _callee_entry(args: list[Val] | tuple[Val, ...], foreign: bool = True) -> State:
    regs = [UNINIT] * 11
    for i, v in enumerate(args[:5]):
        regs[1 + i] = _foreign(v) if foreign else v
    regs[10] = Val(Kind.STACK, Scalar.const(0))
    return State(tuple(regs), ())


def _program_entry() -> State:
    regs = [UNINIT] * 11
    regs[1] = Val(Kind.CTX, Scalar.const(0))
    regs[10] = Val(Kind.STACK, Scalar.const(0))
    return State(tuple(regs), ())


def _last_state_read(block: Block) -> int:
    """Index of the block's last instruction whose price or effect on the result
    depends on the machine state (memory access, call, exit); -1 if none."""
    for index in range(len(block.insns) - 1, -1, -1):
        insn = block.insns[index]
        if insn.opcode & 0x07 in (Cls.LDX, Cls.ST, Cls.STX) or insn.is_call or insn.is_exit:
            return index
    return -1


def _no_subcall(insn: Insn, m: Machine) -> Val:
    return UNKNOWN


def _thresholds(func: Function) -> tuple[int, ...]:
    """Widening thresholds: constants the function compares against, and neighbours."""
    values = {0, 1, sc.U32, sc.U64, (1 << 31) - 1, -(1 << 31), sc.S64_MAX, sc.S64_MIN}
    for insn in func.insns:
        if insn.is_conditional_jump and not insn.opcode & 0x08:
            for v in (insn.imm, insn.imm & sc.U32, insn.imm & sc.U64):
                values.update((v - 1, v, v + 1))
    return tuple(sorted(values))


def _expand(region: Region, target: Target, mult: Count, blocks: dict[int, _BlockInfo],
            summaries: dict[int, LoopSummary], into: Lines, ns_mult: float | None = None,
            at: int = PATH_INSNS) -> None:
    """Accumulate the source lines of the most expensive path to ``target`` (by
    instructions, or by ns: ``at``) into that path's pair of ``into``, its
    instructions ``mult`` times and its ns ``ns_mult`` times (overlapped loop
    iterations count less than whole ones)."""
    ns_mult = mult if ns_mult is None else ns_mult
    by_ns = at == PATH_NS
    path = region.path_to(target, by_ns)
    for i, node in enumerate(path):
        nxt = path[i + 1] if i + 1 < len(path) else None
        if node[0] == "b":
            info = blocks[node[1]]
            _add_path_lines(into, info.lines, mult, ns_mult, at)
            succ = _successor(nxt, target, path)
            jump = info.edge_ns.get(succ) if succ is not None else None
            if jump is not None and info.jump_line is not None:
                into.setdefault(info.jump_line, [0, 0.0, 0, 0.0])[at + 1] += jump[1] * ns_mult
            continue
        summary = summaries[node[1]]
        for piece in summary.pieces_by(by_ns).get(_exit_key(nxt, target, summary), []):
            if piece.mult and piece.target in piece.region.cost:
                piece_ns = piece.mult if piece.ns_mult is None else piece.ns_mult
                _expand(piece.region, piece.target, mult * piece.mult, piece.context,
                        piece.summaries, into, ns_mult * piece_ns, at)


def _successor(nxt: Node | None, target: Target, path: list[Node]) -> int | None:
    """The block a path's node leaves to: the next node's, the loop header for a back
    edge (a loop region's path starts at its header), or an outside block."""
    if nxt is not None:
        return nxt[1]
    if target == LATCH:
        return path[0][1]
    if isinstance(target, tuple) and target[0] == "x":
        return int(target[1])
    return None


def _exit_key(nxt: Node | None, target: Target, summary: LoopSummary) -> Target:
    if nxt is not None:
        return ("x", nxt[1])
    if target in summary.totals:
        return target
    # target is LATCH of the enclosing loop: the inner loop left towards its header
    for key in summary.totals:
        if isinstance(key, tuple):
            return key
    return target


def _reachable(obj: BpfObject, entry: FuncKey) -> list[FuncKey]:
    """The entry function and every function it calls or passes as a callback."""
    seen = [entry]
    work = [entry]
    while work:
        func = obj.functions.get(work.pop())
        if func is None:
            continue
        for insn in func.insns:
            ref = insn.reloc
            if ref is not None and ref.func is not None and ref.func not in seen:
                seen.append(ref.func)
                work.append(ref.func)
    return seen


def _static_insns(obj: BpfObject, entry: FuncKey) -> int:
    return sum(len(obj.functions[k].insns) for k in _reachable(obj, entry)
               if k in obj.functions)


# The source text of every line of the object analysed last: an object's programs
# are analysed one after the other, and collecting it took as long as costing a
# small program.
_LAST_TEXTS: list[tuple[BpfObject, dict[tuple[str, int], str]]] = []


def _line_texts(obj: BpfObject) -> dict[tuple[str, int], str]:
    if _LAST_TEXTS and _LAST_TEXTS[0][0] is obj:
        return _LAST_TEXTS[0][1]
    texts: dict[tuple[str, int], str] = {}
    for func in obj.functions.values():
        for insn in func.insns:
            if insn.line is not None:
                texts.setdefault((insn.line.file, insn.line.line), insn.line.text)
    _LAST_TEXTS[:] = [(obj, texts)]
    return texts


def _line_costs(lines: Lines, obj: BpfObject, has_ns: bool, at: int = PATH_INSNS
                ) -> tuple[LineCost, ...]:
    """The lines of one worst path (``at``); a line the other path alone visits has
    nothing in this path's pair."""
    texts = _line_texts(obj)
    return tuple(LineCost(f, ln, int(round(v[at])), round(v[at + 1], 3) if has_ns else 0.0,
                          texts.get((f, ln), ""))
                 for (f, ln), v in lines.items() if ln > 0 and (v[at] or v[at + 1]))


def analyze_program(obj: BpfObject, program: Program, table: CostTable | None,
                    options: AnalysisOptions) -> ProgramResult:
    analysis = ProgramAnalysis(obj, table, options,
                               Budget(options.max_steps, options.max_seconds))
    return _result(analysis, program.entry, program.section, program.name,
                   program.prog_type,
                   lambda: analysis.program_cost(program.name, 0) if _is_named(obj, program)
                   else _single(analysis, program))


ASYNC_CALLBACK_TYPE = "timer_callback"


def analyze_async_callbacks(obj: BpfObject, table: CostTable | None,
                            options: AnalysisOptions) -> list[ProgramResult]:
    """Timer callbacks run later, on their own: each is priced as an entry point
    (type "timer_callback", named after the function, in its arming program's section)."""
    results = []
    for key, program in _timer_callbacks(obj).items():
        analysis = ProgramAnalysis(obj, table, options,
                                   Budget(options.max_steps, options.max_seconds))
        mem = Val(Kind.MEM, Scalar.const(0))
        entry = _callee_entry([mem, mem, mem], foreign=False)  # (map, key, value)

        def compute(analysis: ProgramAnalysis = analysis, key: FuncKey = key,
                    entry: State = entry, program: Program = program) -> tuple[Cost, Lines]:
            res = analysis.function(key, entry, program.prog_type)
            return _callee_total(res, analysis, program.prog_type), res.lines_ret

        results.append(_result(analysis, key, program.section, obj.functions[key].name,
                               ASYNC_CALLBACK_TYPE, compute))
    return results


def _timer_callbacks(obj: BpfObject) -> dict[FuncKey, Program]:
    """Functions handed to bpf_timer_set_callback, with a program that arms each."""
    found: dict[FuncKey, Program] = {}
    for program in obj.programs:
        for key in _reachable(obj, program.entry):
            insns = obj.functions[key].insns
            for i, insn in enumerate(insns):
                if not (insn.is_helper_call and insn.imm == calls.TIMER_SET_CALLBACK):
                    continue
                for prev in reversed(insns[:i]):  # the last write to r2 before the call
                    if prev.is_call or prev.is_branch:
                        break
                    if prev.dst == 2 and prev.opcode & 0x07 not in (2, 3):
                        ref = prev.reloc
                        if prev.is_ld_imm64 and ref is not None and ref.func is not None \
                                and ref.func in obj.functions:
                            found.setdefault(ref.func, program)
                        break
    return found


def _result(analysis: ProgramAnalysis, entry: FuncKey, section: str, name: str, kind: str,
            compute: Callable[[], tuple[Cost, Lines]]) -> ProgramResult:
    obj, table = analysis.obj, analysis.table
    entry_func = obj.functions[entry]
    bounded = True
    cost: Cost | None = None
    lines: Lines = {}
    try:
        cost, lines = compute()
    except Unbounded:
        bounded = False
    except StepBudgetExceeded as exc:
        bounded = False
        analysis.diag("BPF006", "analysis-limit", f"analysis stopped: {exc}",
                      entry_func.insns[0])
    except RecursionError:
        bounded = False
        analysis.diag("BPF006", "analysis-limit", "analysis stopped: nesting too deep",
                      entry_func.insns[0])
    if cost is not None and math.isinf(cost[1]):
        bounded = False
    has_ns = table is not None
    worst = _line_costs(lines, obj, has_ns) if bounded else ()
    worst_ns = _line_costs(lines, obj, has_ns, PATH_NS) if bounded and has_ns else ()
    min_insns = int(cost[0]) if cost is not None else None
    min_ns = round(cost[2], 3) if cost is not None and has_ns else None
    return ProgramResult(
        object=obj.path,
        section=section,
        name=name,
        type=kind,
        insn_count=_static_insns(obj, entry),
        bounded=bounded,
        insns_min=min_insns,
        insns_max=int(cost[1]) if bounded and cost is not None else None,
        ns_min=min_ns,
        ns_max=round(cost[3], 3) if bounded and cost is not None and has_ns else None,
        source=_loc(entry_func.insns[0]),
        worst_path=worst,
        worst_path_ns=worst_ns,
        loops=tuple(analysis.loop_notes[k] for k in sorted(analysis.loop_notes)),
        calls=tuple(analysis.call_notes[k] for k in sorted(analysis.call_notes)),
        line_costs=tuple(sorted(worst, key=lambda lc: (-lc.insns, lc.file, lc.line))),
        diagnostics=tuple(analysis.diags),
        warnings=tuple(f"no cost known for {n}; using the table's default"
                       for n in (table.missing() if table else ())
                       if n in analysis.priced),
        loader_set=_loader_settings(obj, analysis.loader_reads),
    )


def _loader_settings(obj: BpfObject, reads: Mapping[str, object]) -> tuple[LoaderSetting, ...]:
    if not reads:
        return ()
    found: dict[str, LoaderSetting] = {}
    for mapdef in obj.maps.values():
        for var in mapdef.loader_vars:
            if var.name in reads and var.name not in found:
                found[var.name] = LoaderSetting(var.name, var.type_name, var.lo, var.hi,
                                                var.default, var.pinned)
    return tuple(found[name] for name in sorted(found))


def _is_named(obj: BpfObject, program: Program) -> bool:
    return sum(1 for p in obj.programs if p.name == program.name) == 1


def _single(analysis: ProgramAnalysis, program: Program) -> tuple[Cost, Lines]:
    """A program whose name is not unique in the object (no tail calls resolvable)."""
    res = analysis.function(program.entry, _program_entry(), program.prog_type)
    cost = res.ret if res.tail is None else res.tail if res.ret is None else \
        _merge(res.ret, res.tail)
    if cost is None:
        raise Unbounded(analysis.diag("BPF003", "no-exit",
                                      f"no path of {program.name} reaches exit", None))
    return cost, res.lines_ret

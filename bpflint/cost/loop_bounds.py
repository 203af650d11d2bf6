"""Bounding and summarising the loops of one function context: trip bounds from the
value analysis, the timed may_goto budget, the steady-state cost of an iteration
(issue lanes and chains, lanes.py), and costing small loops iteration by iteration."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping

from bpflint.analysis.bounds import MAY_GOTO_BUDGET, LoopBound, bound_loop
from bpflint.analysis.fixpoint import (
    Flow,
    Iteration,
    StateKey,
    run_iteration,
)
from bpflint.analysis.state import leq_state
from bpflint.analysis.unroll import count_iterations, loop_entry, unroll_loop, walk_iterations
from bpflint.cfg.graph import Cfg
from bpflint.cfg.loops import Loop, body_insns
from bpflint.cost import may_goto
from bpflint.cost.frame import (
    MAY_GOTO_UNROLL_STEPS,
    PER_ITERATION_STEPS,
    UNROLL_STEPS,
    BlockInfo,
    CalleeOverlap,
    FuncContext,
    SteadyKey,
    descendants,
    edge_costs,
    exit_targets,
    is_unbounded,
    loop_line,
    merge,
    no_subcall,
    source_loc,
)
from bpflint.cost.lanes import (
    CYCLE_ANALYSIS_MAX_INSNS,
    LOOP_VALUES,
    RESULT,
    busy_lanes,
    chain_end,
    chains_from,
    lanes_edge_ns,
)
from bpflint.cost.overlap import (
    CALL_READS,
    NO_LANES,
    Readiness,
    steady_chain_ns,
)
from bpflint.cost.paths import (
    LATCH,
    RET,
    ZERO_COST,
    Cost,
    LoopSummary,
    Piece,
    Region,
    Target,
    add,
    solve_lanes,
    solve_region,
    summarise_loop,
)
from bpflint.cost.pricing import BlockPricing
from bpflint.isa.insn import Insn
from bpflint.obj.model import Function


class LoopBounds(BlockPricing):
    """Loop trip bounds and loop summaries (the timed may_goto budget, steady-state
    iterations, iteration-by-iteration costing), and a callee's overlap."""

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

    def _callee_overlap(self, ctx: FuncContext, flow: Flow, blocks: dict[int, BlockInfo],
                        summaries: dict[int, LoopSummary]) -> CalleeOverlap:
        """A function's dearest path in each lane and its longest chain."""
        assert self.table is not None
        lanes = [0.0] * len(NO_LANES)
        busy = busy_lanes(blocks)
        ns = solve_lanes(ctx.cfg, ctx.forest, None,
                         lanes_edge_ns(blocks, busy, self.table.slot_ns, None), len(busy),
                         exit_targets(blocks), flow.edge_out, summaries)
        for i, lane in enumerate(busy):
            lanes[lane] = ns[RET][i] if RET in ns else 0.0
        chains = tuple(max(ends.get(r, 0.0) for r in RESULT)
                       for _, ends in chains_from(ctx, None, blocks, summaries, flow,
                                                   CALL_READS))
        return CalleeOverlap((lanes[0], lanes[1], lanes[2], lanes[3], 0.0), chains)

    def _summaries(self, ctx: FuncContext, headers: list[int], flow: Flow,
                   blocks: dict[int, BlockInfo]) -> dict[int, LoopSummary]:
        """Summaries of the given loops, innermost first, with the states in ``flow``."""
        forest = ctx.forest
        summaries: dict[int, LoopSummary] = {}
        for header in sorted(headers, key=lambda h: len(forest.loops[h].body)):
            if header not in flow.block_in:
                continue
            loop = forest.loops[header]
            bound = self._bound(ctx, header, flow)
            time_cap_ns = math.inf
            if bound.may_goto and self.options.may_goto != "count":
                bound, time_cap_ns = self._timed_may_goto(ctx, loop, bound, flow, blocks,
                                                          summaries)
            steady_ns, exit_ns = self._steady_ns(ctx, loop, flow, blocks, summaries,
                                                 bound.max_backedges)
            summary = summarise_loop(ctx.cfg, forest, header, bound, edge_costs(blocks),
                                     exit_targets(blocks), flow.edge_out, summaries, blocks,
                                     steady_ns, exit_ns, time_cap_ns)
            if bound.max_backedges is not None:
                work = (bound.max_backedges + 1) * body_insns(ctx.cfg, loop)
                # Iteration-by-iteration costing is exact but costs as much as
                # interpreting the loop: needed when an inner loop is bounded only
                # per outer iteration, else spent on small loops while a
                # per-program allowance lasts. A variable step's bound (range over
                # the least step) may be far above what the loop runs: walking that
                # many iterations is left to loops abstract unrolling could walk.
                needed = is_unbounded(summary) and (not bound.variable_step
                                                    or work <= UNROLL_STEPS)
                if needed or work <= min(PER_ITERATION_STEPS, self.sharpen_left):
                    self.sharpen_left -= work
                    unrolled = self._unrolled_summary(ctx, loop, flow,
                                                      bound.max_backedges + 1, steady_ns,
                                                      exit_ns)
                    # (both are sound: an iteration whose inner loop the walk
                    # cannot bound must not undo the bound the summary has)
                    if unrolled is not None and not (is_unbounded(unrolled)
                                                     and not is_unbounded(summary)):
                        summary = unrolled
            summaries[header] = summary
            self._note_loop(ctx.cfg.blocks[header].insns[0], "loop",
                            summary.bound.max_backedges, summary.bound.how)
        return summaries

    def _timed_may_goto(self, ctx: FuncContext, loop: Loop, bound: LoopBound, flow: Flow,
                        blocks: dict[int, BlockInfo], summaries: dict[int, LoopSummary]
                        ) -> tuple[LoopBound, float]:
        """A loop the may_goto budget bounds (bpflint/cost/may_goto.py): under the
        timed model its back edges from 250 ms over its cheapest iteration, unless
        another bound is lower, and the most time its iterations take; under the any
        model the larger of that and the count model's."""
        region = solve_region(ctx.cfg, ctx.forest, loop.header, edge_costs(blocks),
                              exit_targets(blocks), flow.edge_out, summaries)
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
            return bound, math.inf  # the count model's is at most ``other`` too
        refresh_ns = table.defaults.helper.max_ns if table is not None else 0.0
        cap_ns = may_goto.timed_ns(iteration[3], refresh_ns) if table is not None \
            else math.inf
        how = f"timed may_goto: at most {n} iterations in 250 ms"
        note = may_goto.describe(n, floor_ns)
        if self.options.may_goto == "any":
            # the larger of the two models: the count model's back edges, and its
            # time at the dearest iteration each (at least what it prices them at)
            counted = bound_loop(ctx.cfg, ctx.forest, loop, flow, ctx.env,
                                 MAY_GOTO_BUDGET).max_backedges
            if counted is None:
                return LoopBound(loop.header, None, 0, "may_goto: no count bound", True), \
                    math.inf
            counted = counted if other is None else min(counted, other)
            note = may_goto.describe_any(max(n, counted), n, counted, floor_ns)
            if counted > n:
                how = f"may_goto, any kernel: at most {counted} iterations (count model)"
                n = counted
            else:
                how = f"may_goto, any kernel: at most {n} iterations in 250 ms (timed model)"
            cap_ns = max(cap_ns, counted * iteration[3])
        line = loop_line(ctx.cfg, loop)
        # one note per loop, though it is bounded again in other contexts
        if not any(d.rule == "BPF009" and d.loc == source_loc(line) for d in self.diags):
            self.diag("BPF009", "timed-may-goto", note, line)
        return LoopBound(loop.header, n, bound.min_backedges, how, True), cap_ns

    def _steady_ns(self, ctx: FuncContext, loop: Loop, flow: Flow, blocks: dict[int, BlockInfo],
                   summaries: dict[int, LoopSummary], later: int | None
                   ) -> tuple[float, dict[Target, float]]:
        """What an iteration after the first adds at most, once iterations overlap:
        the longer of the loop-carried dependency chain and the iteration's issue
        bound (overlap.py); and, per way out, what the part of an iteration that
        leaves the loop adds after an iteration before it, by the same rule. Over
        the states of ``flow``, which hold every iteration's, so it bounds each."""
        if self.table is None:
            return math.inf, {}
        # An innermost loop's parts depend on its blocks' prices and feasible edges
        # alone: the same in every outer iteration that prices them alike.
        key: SteadyKey | None = None
        if not loop.children:
            edges = flow.edge_out
            infos = tuple([blocks.get(b) for b in loop.order])
            key = (loop.header, tuple([id(info) for info in infos]),
                   frozenset([(b, s) for b in loop.order for s in ctx.cfg.blocks[b].succs
                              if (b, s) in edges]))
            got = ctx.steady.get(key)
            if got is None:
                issue, exits, chain, carried = self._steady_parts(ctx, loop, flow, blocks,
                                                                  summaries)
                ctx.steady[key] = (infos, issue, exits, chain, carried)
            else:
                _, issue, exits, chain, carried = got
        else:
            issue, exits, chain, carried = self._steady_parts(ctx, loop, flow, blocks,
                                                              summaries)
        if carried is None:
            return max(issue, chain), exits
        return max(issue, steady_chain_ns(carried, chain, later)), exits

    def _steady_parts(self, ctx: FuncContext, loop: Loop, flow: Flow,
                      blocks: dict[int, BlockInfo], summaries: dict[int, LoopSummary]
                      ) -> tuple[float, dict[Target, float], float,
                                 dict[int, dict[int, float]] | None]:
        """_steady_ns but for ``later``: the issue bound, the ns to leave by each way
        out, the longest chain, and the loop-carried chains where they decide."""
        assert self.table is not None
        # The fullest lane over every path: for each lane, its dearest path (the
        # serial work in all of them), then the dearest of those. On any one path
        # the issue bound is at most that.
        issue = 0.0
        leave_issue: dict[Target, float] = {}
        # A steady iteration's back edge costs at most what a small loop's does
        # (calibration's taken-jump figures are from long runs of distinct jumps).
        back_edge = (loop.header, self.table.insns["jmp_loop_back"].max_ns)
        lanes = busy_lanes(blocks, loop.body)
        # every lane in one walk: the same sums, lane by lane, as one solve_region each
        ns = solve_lanes(ctx.cfg, ctx.forest, loop.header,
                         lanes_edge_ns(blocks, lanes, self.table.slot_ns, back_edge),
                         len(lanes), exit_targets(blocks), flow.edge_out, summaries)
        if lanes and LATCH not in ns:
            return math.inf, {}, 0.0, None
        for i in range(len(lanes)):
            issue = max(issue, ns[LATCH][i])
            for target, lane_ns in ns.items():
                if target != LATCH:
                    leave_issue[target] = max(leave_issue.get(target, 0.0), lane_ns[i])
        back, leave = chain_end(ctx.cfg, ctx.forest, loop, blocks, summaries,
                                 flow.edge_out, Readiness())
        chain = back.latest() if back is not None else 0.0
        leave_chain = leave.latest() if leave is not None else 0.0
        exits = {target: max(ns, leave_chain) for target, ns in leave_issue.items()}
        if chain <= issue or math.isinf(chain) \
                or body_insns(ctx.cfg, loop) > CYCLE_ANALYSIS_MAX_INSNS:
            return issue, exits, chain, None
        # Chain-bound: an iteration adds what the loop-carried chains' worst cycle
        # does per iteration, not the longest chain through one iteration (a value
        # computed from the counter that no later iteration reads ends once).
        carried = {source: ends for source, ends in
                   chains_from(ctx, loop, blocks, summaries, flow, LOOP_VALUES)}
        return issue, exits, chain, carried

    def _unrolled_summary(self, ctx: FuncContext, loop: Loop, flow: Flow, limit: int,
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
        inner = descendants(forest, h)
        iterations: list[Piece] = []
        iterate = self._iterate(ctx, loop)
        at = StateKey(h, state)
        visited = {at}
        solved: dict[Hashable, Region] = {}
        # Iterations priced alike share one blocks dict (by the identity of the
        # priced blocks, which the dict keeps alive), its region key and its regions
        # by feasible edges: the worst path's lines are then expanded once per
        # distinct pricing (expand.py).
        contexts: dict[tuple[tuple[int, int], ...], _Priced] = {}
        views = ctx.iterations.views
        for _ in range(max(limit, 0) + 1):
            block_in, edge_out, nxt = iterate(at)
            blocks_k: dict[int, BlockInfo] = {}
            for b, st in block_in.items():
                blocks_k[b], _ = self._cost_block(cfg, b, st, ctx.env, ctx.prog_type,
                                                  ctx.tail_targets, ctx.open_maps, views)
            ckey = tuple([(b, id(info)) for b, info in blocks_k.items()])
            priced = contexts.get(ckey)
            if priced is None:
                priced = contexts[ckey] = _Priced(blocks_k, _blocks_key(blocks_k))
            blocks_k = priced.blocks
            summaries_k = self._summaries(ctx, inner, Flow(block_in, edge_out), blocks_k) \
                if inner else {}
            edges = frozenset(edge_out)
            region = priced.regions.get(edges) if not summaries_k else None
            if region is None:
                # An innermost loop's iterations mostly price alike: its region is a
                # function of the block costs, ways out and feasible edges alone
                # (the lines stay each iteration's own, in its Piece's context).
                key = None if summaries_k else (priced.key, edges)
                region = solved.get(key) if key is not None else None
                if region is None:
                    region = solve_region(cfg, forest, h, edge_costs(blocks_k),
                                          exit_targets(blocks_k), edge_out, summaries_k)
                    if key is not None:
                        solved[key] = region
                if not summaries_k:
                    priced.regions[edges] = region
            iterations.append(Piece(region, LATCH, 1, blocks_k, summaries_k))
            if nxt is None:
                break
            known = len(visited)
            at = StateKey(h, nxt)
            visited.add(at)  # (one look-up: nxt was in it if it did not grow)
            if len(visited) == known or leq_state(nxt, state):
                return None  # a state seen before: it may cycle forever
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
                totals[target] = cand if old is None else merge(old, cand)
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

    def _bound(self, ctx: FuncContext, header: int, flow: Flow) -> LoopBound:
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
                                       ctx.iterations.get)
            if counted is not None:
                return counted
        # "any" and "timed" both start from the bounds other than the may_goto count
        # (_timed_may_goto adds the models' own)
        timed = self.options.may_goto != "count"
        bound = bound_loop(cfg, forest, loop, flow, env, None if timed else MAY_GOTO_BUDGET)
        if bound.max_backedges is not None and not bound.may_goto:
            if bound.variable_step and entry is not None:
                # the least step gives the most rounds; the fewest are where the
                # exact iterations first leave (walking at most as many as the
                # bound allows, the walk abstract unrolling would have spent), and
                # where the walk ends, its count is exact
                counted, least = walk_iterations(cfg, loop, entry,
                                                 min(limit, bound.max_backedges + 1),
                                                 self._iterate(ctx, loop))
                if counted is not None and counted.max_backedges is not None \
                        and counted.max_backedges < bound.max_backedges:
                    return counted
                bound = LoopBound(header, bound.max_backedges,
                                  min(least, bound.max_backedges), bound.how,
                                  bound.may_goto, bound.variable_step)
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

    def _iterate(self, ctx: FuncContext, loop: Loop) -> Callable[[StateKey], Iteration]:
        """One iteration of ``loop`` from a header state; the fixpoint may have run it."""
        def iterate(key: StateKey) -> Iteration:
            return run_iteration(ctx.cfg, ctx.forest, key, ctx.env, no_subcall,
                                 self.budget, ctx.thresholds, ctx.iterations)
        return iterate


class _Priced:
    """One pricing of an iteration's blocks (_unrolled_summary)."""

    __slots__ = ("blocks", "key", "regions")

    def __init__(self, blocks: dict[int, BlockInfo], key: Hashable) -> None:
        self.blocks = blocks
        self.key = key
        self.regions: dict[frozenset[tuple[int, int]], Region] = {}


def _blocks_key(blocks: dict[int, BlockInfo]) -> Hashable:
    """All that solve_region reads of an iteration's blocks without inner loops: each
    block's cost, jump prices and ways out (and which edges are feasible: beside it)."""
    return tuple([(b, info.cost, tuple(info.edge_ns.items()), tuple(info.exits))
                  for b, info in blocks.items()])

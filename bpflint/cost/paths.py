"""Cheapest and most expensive paths over the loop tree of one function.

Each loop is collapsed, innermost first, into a summary: the cost of one
iteration (header to a back edge) and of leaving it (header to each exit), so
a loop entered once costs at most ``max_backedges * iteration + exit`` and at
least ``min_backedges * iteration + exit``. With loops collapsed every region is
a DAG, and reverse postorder is a topological order of it.

Costs are 4-tuples (insns_min, insns_max, ns_min, ns_max); an unbounded
maximum is ``math.inf``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from bpflint.analysis.bounds import LoopBound
from bpflint.cfg.graph import Cfg
from bpflint.cfg.loops import LoopForest

# An instruction count: an int, exact however large (bpf_loop in bpf_loop passes 2**53),
# or math.inf. Not float: compiled (bpflint/native.py), a float is a C double.
Count = int | float
Cost = tuple[Count, Count, float, float]  # insns min, insns max, ns min, ns max
ZERO_COST: Cost = (0, 0, 0.0, 0.0)
RET = "RET"  # leaving the function through exit
TAIL = "TAIL"  # leaving the program through a successful tail call
LATCH = "LATCH"  # taking a back edge of the loop being summarised

Node = tuple[str, int]  # ("b", block) or ("l", loop header)
# cost of running block b and leaving it to successor s (None: leaving the function);
# the edge matters because a taken conditional jump costs more than a fall-through
EdgeCost = Callable[[int, "int | None"], Cost]
Target = Hashable  # a Node, or RET / TAIL / LATCH, or ("x", block outside the region)


def add(a: Cost, b: Cost) -> Cost:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


def scale(a: Cost, lo: int, hi: Count) -> Cost:
    # Run zero times, even an unbounded cost is nothing: inf * 0 would be NaN, which a
    # callback never called in some state (bpf_loop with nr_loops 0) turned into a crash.
    return (a[0] * lo if lo else 0, a[1] * hi if a[1] and hi else 0,
            a[2] * lo if lo else 0.0, a[3] * hi if a[3] and hi else 0.0)


@dataclass
class Region:
    """Best costs from a region's entry to each target, and the most expensive paths."""

    cost: dict[Target, Cost]
    pred: dict[Target, Node]  # predecessor on the path with the most instructions
    pred_ns: dict[Target, Node]  # predecessor on the path with the most ns

    def path_to(self, target: Target, by_ns: bool = False) -> list[Node]:
        """The dearest path to ``target`` by instructions, or by ns: a region is a
        DAG solved in topological order, so following the argmax predecessors
        gives a path whose cost is the maximum."""
        pred = self.pred_ns if by_ns else self.pred
        path: list[Node] = []
        node = pred.get(target)
        while node is not None:
            path.append(node)
            node = pred.get(node)
        path.reverse()
        return path


@dataclass
class Piece:
    """Part of a loop's most expensive run: ``mult`` times the path to ``target`` in
    ``region``; ``context`` and ``summaries`` are the block costs and inner-loop
    summaries that region was solved with (for source-line attribution)."""

    region: Region
    target: Target
    mult: Count
    context: Any
    summaries: dict[int, LoopSummary]
    ns_mult: float | None = None  # the path's ns count this often (None: ``mult``)


@dataclass
class LoopSummary:
    bound: LoopBound
    totals: dict[Target, Cost]  # cost of entering the loop and leaving to each target
    pieces: dict[Target, list[Piece]]  # how the run with the most insns to each target goes
    # how the run with the most ns goes, where it differs (None: as ``pieces``)
    pieces_ns: dict[Target, list[Piece]] | None = None

    def pieces_by(self, by_ns: bool) -> dict[Target, list[Piece]]:
        return self.pieces_ns if by_ns and self.pieces_ns is not None else self.pieces


def solve_region(cfg: Cfg, forest: LoopForest, header: int | None,
                 block_cost: EdgeCost, block_exits: Callable[[int], list[Target]],
                 edges: Container[tuple[int, int]], summaries: dict[int, LoopSummary]
                 ) -> Region:
    """Best paths from the region's entry to each of its targets.

    ``header`` None is the function body; else the loop with that header, whose
    back edges lead to LATCH. ``block_exits(b)`` names the non-edge ways a block
    leaves the function (RET, TAIL).
    """
    entry, nodes, tos = _plan(cfg, forest, header)
    reach: dict[Target, Cost] = {entry: ZERO_COST}
    pred: dict[Target, Node] = {}
    pred_ns: dict[Target, Node] = {}
    for node, succs in nodes:
        here = reach.get(node)
        if here is None:
            continue
        b = node[1]
        out: list[tuple[Target, Cost]] = []
        if node[0] == "b":
            for s, target in succs:
                if (b, s) in edges:
                    out.append((target, block_cost(b, s)))
            for special in block_exits(b):
                out.append((special, block_cost(b, None)))
        else:
            for target, total in summaries[b].totals.items():
                if isinstance(target, tuple) and target[0] == "x":
                    target = _to(tos, forest, header, target[1])
                out.append((target, total))
        for target, edge_cost in out:
            c = add(here, edge_cost)
            old = reach.get(target)
            if old is None:
                reach[target] = c
                pred[target] = node
                pred_ns[target] = node
            else:
                if c[1] > old[1]:
                    pred[target] = node
                if c[3] > old[3]:
                    pred_ns[target] = node
                reach[target] = (min(old[0], c[0]), max(old[1], c[1]), min(old[2], c[2]),
                                 max(old[3], c[3]))
    targets = {t: c for t, c in reach.items() if not (isinstance(t, tuple) and t[0] in "bl")}
    return Region(targets, pred, pred_ns)


# The ns of running block b and leaving it to successor s (None: leaving the
# function) under each of several pricings (issue lanes, lanes.py).
LanesNs = Callable[[int, "int | None"], list[float]]


def solve_lanes(cfg: Cfg, forest: LoopForest, header: int | None, lanes_ns: LanesNs,
                lanes: int, block_exits: Callable[[int], list[Target]],
                edges: Container[tuple[int, int]], summaries: dict[int, LoopSummary]
                ) -> dict[Target, list[float]]:
    """The most ns to each target of the region under ``lanes`` pricings at once:
    solve_region's cost[3] for each, from the very same additions and comparisons,
    in one walk of the region (which nodes are reached does not depend on prices).
    Inner loops cost their summaries' ns under every pricing."""
    entry, nodes, tos = _plan(cfg, forest, header)
    reach: dict[Target, list[float]] = {entry: [0.0] * lanes}
    for node, succs in nodes:
        here = reach.get(node)
        if here is None:
            continue
        b = node[1]
        out: list[tuple[Target, list[float]]] = []
        if node[0] == "b":
            for s, target in succs:
                if (b, s) in edges:
                    out.append((target, lanes_ns(b, s)))
            for special in block_exits(b):
                out.append((special, lanes_ns(b, None)))
        else:
            for target, total in summaries[b].totals.items():
                if isinstance(target, tuple) and target[0] == "x":
                    target = _to(tos, forest, header, target[1])
                out.append((target, [total[3]] * lanes))
        for target, cost in out:
            c = [here[i] + cost[i] for i in range(lanes)]
            old = reach.get(target)
            reach[target] = c if old is None else \
                [c[i] if c[i] > old[i] else old[i] for i in range(lanes)]  # max(old, c)
    return {t: c for t, c in reach.items() if not (isinstance(t, tuple) and t[0] in "bl")}


# A region's entry and its nodes in the order they are solved, each with its
# successors and where an edge to each leads (for a block; none for an inner loop),
# and where edges to other blocks lead, filled in as they are met: the same in every
# solve of the region, which pricings, feasible edges and summaries alone change.
Plan = tuple[Node, list[tuple[Node, list[tuple[int, Target]]]], dict[int, Target]]
# id(forest) -> the CFG and forest (kept: their ids stay theirs) and plans by header;
# a few functions' worth (a callee's is solved in the middle of its caller's), not
# every function's: they would keep each CFG alive.
_PLANS: dict[int, tuple[Cfg, LoopForest, dict[int | None, Plan]]] = {}
FUNCTIONS_PLANNED = 8


def _plan(cfg: Cfg, forest: LoopForest, header: int | None) -> Plan:
    got = _PLANS.get(id(forest))
    if got is None or got[0] is not cfg or got[1] is not forest:
        if len(_PLANS) >= FUNCTIONS_PLANNED:
            _PLANS.clear()
        got = _PLANS[id(forest)] = (cfg, forest, {})
    plans = got[2]
    plan = plans.get(header)
    if plan is not None:
        return plan
    loop = forest.loops[header] if header is not None else None
    body = loop.body if loop is not None else None
    entry: Node = ("b", header) if header is not None else ("b", 0)
    if header is None and 0 in forest.loops:
        entry = ("l", 0)
    tos: dict[int, Target] = {}
    nodes: list[tuple[Node, list[tuple[int, Target]]]] = []
    for b in (loop.order if loop is not None else cfg.rpo):
        node = _node_of(forest, body, header, b)
        if node is None:
            continue
        if node[0] == "l":
            if node[1] == b:  # a loop node is solved at its header's position
                nodes.append((node, []))
            continue
        nodes.append((node, [(s, _to(tos, forest, header, s))
                             for s in set(cfg.blocks[b].succs)]))
    plan = plans[header] = (entry, nodes, tos)
    return plan


def _node_of(forest: LoopForest, body: frozenset[int] | None, header: int | None,
             b: int) -> Node | None:
    """The region node holding block b, or None if b is outside the region."""
    if body is not None and b not in body:
        return None
    inner = forest.innermost.get(b)
    # climb to the child loop of this region that holds b
    child = None
    while inner is not None and inner != header:
        child = inner
        inner = forest.loops[inner].parent
    if child is not None:
        return ("l", child)
    return ("b", b)


def _to(tos: dict[int, Target], forest: LoopForest, header: int | None, b: int) -> Target:
    """Where an edge to block b leads in the region (kept in ``tos``)."""
    got = tos.get(b)
    if got is None:
        if header is not None and b == header:
            got = LATCH
        else:
            n = _node_of(forest, None if header is None else forest.loops[header].body,
                         header, b)
            got = n if n is not None else ("x", b)
        tos[b] = got
    return got


def repeat(iteration: Cost, lo: int, hi: Count, steady_ns: float) -> Cost:
    """``iteration`` run lo to hi times, where every run after the first adds at most
    ``steady_ns`` (overlapping iterations) and never more than a run alone."""
    total = scale(iteration, lo, hi)
    if hi >= 1 and not math.isinf(hi):
        ns_max = iteration[3] + (hi - 1) * min(iteration[3], steady_ns)
        total = (total[0], total[1], total[2], ns_max)
    return total


def summarise_loop(cfg: Cfg, forest: LoopForest, header: int, bound: LoopBound,
                   block_cost: EdgeCost, block_exits: Callable[[int], list[Target]],
                   edges: Container[tuple[int, int]], summaries: dict[int, LoopSummary],
                   context: Any, steady_ns: float = math.inf,
                   exit_ns: Mapping[Target, float] | None = None,
                   repeat_ns_cap: float = math.inf) -> LoopSummary:
    """Summarise a loop as ``bound`` back edges of its dearest iteration plus an exit;
    back edges after the first cost at most ``steady_ns`` each (see ``repeat``), and
    the way out to a target after one of them at most ``exit_ns[target]``; all the
    back edges together at most ``repeat_ns_cap`` ns (a loop bounded by time)."""
    region = solve_region(cfg, forest, header, block_cost, block_exits, edges, summaries)
    iteration = region.cost.get(LATCH)
    hi = bound.max_backedges
    totals: dict[Target, Cost] = {}
    pieces: dict[Target, list[Piece]] = {}
    for target, exit_cost in region.cost.items():
        if target == LATCH:
            continue
        if iteration is None:
            totals[target] = exit_cost
            pieces[target] = [Piece(region, target, 1, context, summaries)]
            continue
        leave = exit_cost
        exit_mult = None
        cap = (exit_ns or {}).get(target, math.inf)
        if hi and exit_cost[3] > cap:
            # overlapping the iteration before it; with no iteration before, the way
            # out alone costs less than one iteration and this way out together
            leave = (exit_cost[0], exit_cost[1], exit_cost[2],
                     max(cap, exit_cost[3] - iteration[3]))
            exit_mult = leave[3] / exit_cost[3]
        repeated = repeat(iteration, bound.min_backedges, math.inf if hi is None else hi,
                          steady_ns)
        if repeated[3] > repeat_ns_cap:
            repeated = (repeated[0], repeated[1], repeated[2], repeat_ns_cap)
        totals[target] = add(repeated, leave)
        runs = hi or 0
        ns_runs = min(repeat(iteration, 0, runs, steady_ns)[3], repeat_ns_cap) \
            / iteration[3] if iteration[3] else runs
        pieces[target] = [Piece(region, LATCH, runs, context, summaries, ns_runs),
                          Piece(region, target, 1, context, summaries, exit_mult)]
    return LoopSummary(bound, totals, pieces)

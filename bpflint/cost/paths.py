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
    loop = forest.loops[header] if header is not None else None
    body = loop.body if loop else None

    def node_of(b: int) -> Node | None:
        return _node_of(forest, body, header, b)

    entry: Node = ("b", header) if header is not None else ("b", 0)
    if header is None and 0 in forest.loops:
        entry = ("l", 0)
    elif header is not None:
        entry = ("b", header)
    reach: dict[Target, Cost] = {entry: ZERO_COST}
    pred: dict[Target, Node] = {}
    pred_ns: dict[Target, Node] = {}
    done: set[Node] = set()
    for b in (loop.order if loop is not None else cfg.rpo):
        node = node_of(b)
        if node is None or node in done or node not in reach:
            continue
        if node[0] == "l" and node[1] != b:
            continue  # a loop node is handled at its header's position
        done.add(node)
        here = reach[node]
        for target, edge_cost in _out_edges(cfg, forest, node, header, node_of, block_cost,
                                           block_exits, edges, summaries):
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
    loop = forest.loops[header] if header is not None else None
    body = loop.body if loop else None
    entry: Node = ("b", header) if header is not None else ("b", 0)
    if header is None and 0 in forest.loops:
        entry = ("l", 0)
    reach: dict[Target, list[float]] = {entry: [0.0] * lanes}
    done: set[Node] = set()
    for b in (loop.order if loop is not None else cfg.rpo):
        node = _node_of(forest, body, header, b)
        if node is None or node in done or node not in reach:
            continue
        if node[0] == "l" and node[1] != b:
            continue  # a loop node is handled at its header's position
        done.add(node)
        here = reach[node]
        out: list[tuple[Target, list[float]]] = []
        if node[0] == "b":
            for s in set(cfg.blocks[b].succs):
                if (b, s) in edges:
                    out.append((_to(forest, body, header, s), lanes_ns(b, s)))
            for special in block_exits(b):
                out.append((special, lanes_ns(b, None)))
        else:
            for target, total in summaries[node[1]].totals.items():
                if isinstance(target, tuple) and target[0] == "x":
                    target = _to(forest, body, header, target[1])
                out.append((target, [total[3]] * lanes))
        for target, cost in out:
            c = [here[i] + cost[i] for i in range(lanes)]
            old = reach.get(target)
            reach[target] = c if old is None else \
                [c[i] if c[i] > old[i] else old[i] for i in range(lanes)]  # max(old, c)
    return {t: c for t, c in reach.items() if not (isinstance(t, tuple) and t[0] in "bl")}


def _to(forest: LoopForest, body: frozenset[int] | None, header: int | None,
        b: int) -> Target:
    """Where an edge to block b leads in the region (_out_edges' to)."""
    if header is not None and b == header:
        return LATCH
    n = _node_of(forest, body, header, b)
    return n if n is not None else ("x", b)


def _out_edges(cfg: Cfg, forest: LoopForest, node: Node, header: int | None,
               node_of: Callable[[int], Node | None], block_cost: EdgeCost,
               block_exits: Callable[[int], list[Target]], edges: Container[tuple[int, int]],
               summaries: dict[int, LoopSummary]) -> list[tuple[Target, Cost]]:
    out: list[tuple[Target, Cost]] = []

    def to(b: int) -> Target:
        if header is not None and b == header:
            return LATCH
        n = node_of(b)
        return n if n is not None else ("x", b)

    if node[0] == "b":
        b = node[1]
        for s in set(cfg.blocks[b].succs):
            if (b, s) in edges:
                out.append((to(s), block_cost(b, s)))
        for special in block_exits(b):
            out.append((special, block_cost(b, None)))
        return out
    summary = summaries[node[1]]
    for target, total in summary.totals.items():
        if isinstance(target, tuple) and target[0] == "x":
            out.append((to(target[1]), total))
        else:
            out.append((target, total))
    return out


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

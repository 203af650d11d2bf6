"""Forward abstract interpretation of one function to a fixpoint.

Worklist in reverse postorder; states join at merge points. A loop is first run
iteration by iteration (short loops end that way, exactly); the others' headers
widen (to the next constant the program compares against) after a few rounds, and
two descending rounds then narrow what widening overshot.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from bpflint.analysis.state import (
    State,
    join_state,
    join_states,
    leq_state,
    widen_state,
)
from bpflint.analysis.transfer import Env
from bpflint.analysis.walk import (
    STATES_KEPT,
    BlockView,
    Budget,
    CallResult,
    Iteration,
    Views,
    dag_order,
    join_views,
    run_block,
    run_dag,
)

# What other stages take from the fixpoint and walk.py now holds: re-exported.
from bpflint.analysis.walk import InsnView as InsnView
from bpflint.analysis.walk import StepBudgetExceeded as StepBudgetExceeded
from bpflint.analysis.walk import insn_view as insn_view
from bpflint.analysis.walk import step as step
from bpflint.cfg.graph import Cfg
from bpflint.cfg.loops import LoopForest, body_insns

WIDEN_AFTER = 3  # visits of a loop header before widening kicks in
WIDEN_WITH_THRESHOLDS = 2  # widenings of a header that stop at thresholds
NARROW_ROUNDS = 2


@dataclass(frozen=True)
class Flow:
    block_in: dict[int, State]  # blocks absent are unreachable
    # The feasible edges, with the state on each. Inside a loop the fixpoint ran
    # iteration by iteration, only edges into loop headers and out of the loop carry
    # the join over every iteration; on the others only feasibility counts (their
    # state is one iteration's, as joining them all would cost more than it gives).
    edge_out: dict[tuple[int, int], State]


EAGER_ITERATIONS = 16  # iterations' worth of steps a loop is run for before it is widened


class StateKey:
    """A loop header and a state at it, as a dict key whose hash is computed once.
    A state's hash walks every register and stack slot (2-6 us), and a loop walked
    iteration by iteration hashed each header state three times (the cache's look-up,
    its store, the walk's set of states seen); one key serves all three."""

    __slots__ = ("header", "state", "_hash")

    def __init__(self, header: int, state: State) -> None:
        self.header = header
        self.state = state
        self._hash = hash((header, state))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StateKey) and self._hash == other._hash \
            and self.header == other.header \
            and (self.state is other.state or self.state == other.state)


class Iterations:
    """Loop iterations already run, by (header, entry state): the fixpoint, unrolling
    for a bound and iteration-by-iteration costing walk the same ones in one
    function context. Bounded by the block states it holds, not by entries: a
    short loop's iterations are small, a big unrolled body's are not. ``views``:
    what the blocks it walked showed pricing (Views)."""

    __slots__ = ("runs", "states", "views", "dags")

    def __init__(self) -> None:
        self.runs: dict[StateKey, Iteration] = {}
        self.states = 0
        self.views = Views()
        # header -> its loop's blocks in RPO when one iteration of it is a DAG
        # (dag_order), else None
        self.dags: dict[int, tuple[int, ...] | None] = {}

    def get(self, key: StateKey) -> Iteration | None:
        return self.runs.get(key)

    def put(self, key: StateKey, iteration: Iteration) -> None:
        if self.states + len(iteration[0]) > STATES_KEPT:
            self.runs.clear()
            self.states = 0
        self.runs[key] = iteration
        self.states += len(iteration[0])


def propagate(cfg: Cfg, forest: LoopForest, region: frozenset[int] | None, start: int,
              entry: State, env: Env, subcall: CallResult, budget: Budget,
              thresholds: tuple[int, ...], collect: int | None = None,
              iterations: Iterations | None = None
              ) -> tuple[dict[int, State], dict[tuple[int, int], State], State | None]:
    """Run the worklist from ``start`` over ``region`` (None: the whole function).

    Edges into ``collect`` are not followed: their states are joined and returned,
    which is one iteration of the loop headed by ``collect`` when it is ``start``.
    Where a loop header was widened, descending rounds then narrow the states again
    (a loop bounded by a value known only here, ``i < j`` with ``j`` exact in one
    outer iteration, gets its exact range back instead of the widening threshold).

    With ``iterations``, a loop met inside the region is first run iteration by
    iteration from its entry state, as the kernel verifier does: a loop that ends
    within EAGER_ITERATIONS iterations' worth of steps gets the join of its
    iterations' exact states, with no widening, in about as many rounds as widening
    would take; the others are widened from the states those iterations reached.
    """
    return _Worklist(cfg, forest, region, start, entry, env, subcall, budget, thresholds,
                     collect, iterations).run()


class _Worklist:
    """One propagate() run; an object, not closures: compiled, those and their shared
    environment formed a cycle per run, its states left to the cycle collector."""

    def __init__(self, cfg: Cfg, forest: LoopForest, region: frozenset[int] | None,
                 start: int, entry: State, env: Env, subcall: CallResult, budget: Budget,
                 thresholds: tuple[int, ...], collect: int | None,
                 iterations: Iterations | None) -> None:
        self.cfg, self.forest, self.region, self.start = cfg, forest, region, start
        self.env, self.subcall, self.budget = env, subcall, budget
        self.thresholds, self.collect, self.iterations = thresholds, collect, iterations
        self.order = cfg.rpo_index
        self.block_in: dict[int, State] = {start: entry}
        self.edge_out: dict[tuple[int, int], State] = {}
        self.visits: dict[int, int] = {}
        self.headers = forest.loops
        self.collected: State | None = None
        self.eager: dict[int, State] = {}  # header run eagerly -> its entry state
        self.widen_only: set[int] = set()  # headers whose loop did not end eagerly
        self.ran_eagerly: set[int] = set()  # blocks of loops that did
        self.work: list[tuple[int, int]] = [(self.order[start], start)]
        self.queued: set[int] = {start}
        self.widened = False
        self.views = iterations.views if iterations is not None else None

    def process(self, b: int) -> list[tuple[int, State]]:
        self.budget.spend(len(self.cfg.blocks[b].insns))
        return run_block(self.cfg.blocks[b], self.block_in[b], self.env, self.subcall,
                         self.views)

    def queue(self, b: int) -> None:
        if b not in self.queued:
            self.queued.add(b)
            heapq.heappush(self.work, (self.order[b], b))

    def feed(self, b: int, succ: int, st: State) -> None:
        """The state ``st`` leaves ``b`` towards ``succ``."""
        self.edge_out[(b, succ)] = st
        if succ == self.collect:
            collected = self.collected
            self.collected = st if collected is None else join_state(collected, st)
            return
        if self.region is not None and succ not in self.region:
            return
        eager = self.eager
        entry_st = eager.get(succ)
        if entry_st is not None:
            if not leq_state(st, entry_st):
                eager[succ] = join_state(entry_st, st)
                self.queue(succ)
            return
        block_in = self.block_in
        old = block_in.get(succ)
        headers = self.headers
        if old is None:
            if self.iterations is not None and succ in headers and succ != self.start \
                    and succ not in self.widen_only:
                eager[succ] = st
            new = st
        elif leq_state(st, old):
            return
        else:
            visits = self.visits
            visits[succ] = visits.get(succ, 0) + 1
            new = join_state(old, st)
            if succ in headers and visits[succ] >= WIDEN_AFTER:
                # Thresholds for the first few widenings, then straight to the
                # extremes: a bound that keeps growing past every threshold would
                # otherwise cost one round of the loop per threshold.
                rounds = visits[succ] - WIDEN_AFTER
                new = widen_state(old, new, self.thresholds
                                  if rounds < WIDEN_WITH_THRESHOLDS else ())
                self.widened = True
            if new == old:
                return  # nothing new: revisiting would repeat the last visit
        block_in[succ] = new
        self.queue(succ)

    def run_eagerly(self, h: int) -> State | None:
        """Run the loop at ``h`` iteration by iteration. None if it ended; else the
        join of the header states it went through, to widen from."""
        iterations = self.iterations
        assert iterations is not None
        cfg, headers, views, budget = self.cfg, self.headers, self.views, self.budget
        block_in, edge_out = self.block_in, self.edge_out
        loop = headers[h]
        state = self.eager[h]
        seen = state
        # The iterations run, each with its blocks' views (read now: the views may
        # drop them later). Joined only once the loop has ended: a loop that does
        # not end is widened instead, and joining its iterations would be wasted.
        runs: list[tuple[Iteration, list[BlockView | None] | None]] = []
        size = body_insns(cfg, loop)
        allowed = EAGER_ITERATIONS * size
        before = budget.left
        # Iterations the cache already holds spend no steps: count them by the body's
        # size, and stop at a header state seen before (r0 = (r0 + 1) & 1 cycles
        # between two states forever, each from the cache).
        key = StateKey(h, state)
        visited = {key}
        cached_work = 0
        blocks = cfg.blocks
        while True:
            got = iterations.runs.get(key)
            if got is not None:
                cached_work += size
            else:
                got = _new_iteration(cfg, self.forest, key, self.env, self.subcall,
                                     budget, self.thresholds, iterations)
            runs.append((got, None if views is None else
                         [views.get(blocks[x], st) for x, st in got[0].items()]))
            nxt = got[2]
            if nxt is None:
                break
            seen = join_state(seen, nxt)
            known = len(visited)
            nxt_key = StateKey(h, nxt)
            visited.add(nxt_key)  # (one look-up: nxt was in it if it did not grow)
            if len(visited) == known or leq_state(nxt, state) \
                    or before - budget.left + cached_work > allowed:
                return seen  # no progress, or too long: widen instead
            state, key = nxt, nxt_key
        # each block's states over the iterations, joined in one go (join_states)
        ins_all: dict[int, list[State]] = {}
        # the views of the states joined into ins (None: one was not recorded)
        ins_views: dict[int, BlockView | None] = {}
        outs: dict[tuple[int, int], State] = {}
        for (its_in, its_out, _), its_views in runs:
            for i, (x, st) in enumerate(its_in.items()):
                view = its_views[i] if its_views is not None else None
                those = ins_all.get(x)
                if those is not None:
                    those.append(st)
                    old_view = ins_views[x]
                    ins_views[x] = None if old_view is None or view is None \
                        else join_views(old_view, view)
                else:
                    ins_all[x] = [st]
                    ins_views[x] = view
            for e, st in its_out.items():
                if e not in outs:
                    outs[e] = st
                elif e[1] in headers or e[1] not in loop.body:
                    outs[e] = join_state(outs[e], st)
                # else an edge inside the body: that it is feasible is what counts
        for x, those in ins_all.items():
            st = join_states(those)
            if x in block_in:
                block_in[x] = join_state(block_in[x], st)
                continue
            block_in[x] = st
            # Pricing reads the joined state's view: the join of the iterations'
            # views covers every iteration without walking the block again.
            view = ins_views[x]
            if views is not None and view is not None and views.get(cfg.blocks[x], st) is None:
                views.put(cfg.blocks[x], st, view)
        self.ran_eagerly.update(loop.body)
        for e, st in outs.items():
            old = edge_out.get(e)
            joined = st if old is None else join_state(old, st)
            if e[1] in loop.body:
                edge_out[e] = joined
            else:
                self.feed(e[0], e[1], joined)
        return None

    def run(self) -> tuple[dict[int, State], dict[tuple[int, int], State], State | None]:
        cfg, headers, work, queued = self.cfg, self.headers, self.work, self.queued
        block_in, edge_out, eager = self.block_in, self.edge_out, self.eager
        while work:
            _, b = heapq.heappop(work)
            queued.discard(b)
            if b in eager:
                seen = self.run_eagerly(b)
                if seen is None:
                    continue
                # Widen from the header states the exact iterations reached (every one
                # is reachable), widening at the next join: those iterations were the
                # rounds before widening. States an earlier eager run left in the body
                # go: joins of exact iterations are not closed under the body's
                # transfer, so the worklist must not take them for a fixpoint.
                for x in headers[b].body:
                    block_in.pop(x, None)
                    for succ in cfg.blocks[x].succs:
                        edge_out.pop((x, succ), None)
                self.ran_eagerly.difference_update(headers[b].body)
                del eager[b]
                block_in[b] = seen
                self.visits[b] = WIDEN_AFTER - 1
                self.widen_only.add(b)
            outs = self.process(b)
            merged: dict[int, State] = {}
            for succ, st in outs:
                merged[succ] = join_state(merged[succ], st) if succ in merged else st
            for succ in cfg.blocks[b].succs:
                if succ not in merged:
                    edge_out.pop((b, succ), None)
            for succ, st in merged.items():
                self.feed(b, succ, st)
        collect, region = self.collect, self.region
        if self.widened:
            blocks = [b for b in cfg.rpo if region is None or b in region]
            # Loops run iteration by iteration hold exact joins: nothing to narrow, and
            # their inner edges' states are one iteration's (below).
            blocks = [b for b in blocks if b not in self.ran_eagerly]
            for _ in range(NARROW_ROUNDS):
                _narrow(cfg, blocks, self.start, block_in, edge_out, self)
            if collect is not None:
                into = [edge_out[(p, collect)] for p in cfg.preds[collect]
                        if (p, collect) in edge_out]
                collected = None
                for st in into:
                    collected = st if collected is None else join_state(collected, st)
                self.collected = collected
        return block_in, edge_out, self.collected


def run_iteration(cfg: Cfg, forest: LoopForest, key: StateKey, env: Env,
                  subcall: CallResult, budget: Budget, thresholds: tuple[int, ...],
                  iterations: Iterations) -> Iteration:
    """One iteration of the loop at ``key.header`` from ``key.state``, each computed
    once."""
    got = iterations.runs.get(key)
    if got is None:
        got = _new_iteration(cfg, forest, key, env, subcall, budget, thresholds, iterations)
    return got


def _new_iteration(cfg: Cfg, forest: LoopForest, key: StateKey, env: Env,
                   subcall: CallResult, budget: Budget, thresholds: tuple[int, ...],
                   iterations: Iterations) -> Iteration:
    """run_iteration where ``iterations`` does not hold it yet (under ``key``)."""
    header, state = key.header, key.state
    dags = iterations.dags
    if header in dags:
        order = dags[header]
    else:
        order = dags[header] = dag_order(cfg, forest, header)
    if order is not None:
        got = run_dag(cfg, order, forest.loops[header].body, header, state, env, subcall,
                       budget, iterations.views)
    else:
        got = propagate(cfg, forest, forest.loops[header].body, header, state, env,
                        subcall, budget, thresholds, collect=header, iterations=iterations)
    iterations.put(key, got)
    return got


def analyze_function(cfg: Cfg, forest: LoopForest, entry: State, env: Env,
                     subcall: CallResult, budget: Budget, thresholds: tuple[int, ...],
                     iterations: Iterations | None = None) -> Flow:
    block_in, edge_out, _ = propagate(cfg, forest, None, 0, entry, env, subcall, budget,
                                      thresholds, iterations=iterations)
    return Flow(block_in, edge_out)


def _narrow(cfg: Cfg, blocks: list[int], start: int, block_in: dict[int, State],
            edge_out: dict[tuple[int, int], State], run: _Worklist) -> None:
    """One descending round: recompute every state (but the start's) from its
    predecessors' outputs. From a sound post-fixpoint this gives another one."""
    for b in blocks:
        if b != start:
            ins = [edge_out[(p, b)] for p in cfg.preds[b] if (p, b) in edge_out]
            if not ins:  # unreachable now: so are its edges
                block_in.pop(b, None)
                for succ in cfg.blocks[b].succs:
                    edge_out.pop((b, succ), None)
                continue
            st = ins[0]
            for other in ins[1:]:
                st = join_state(st, other)
            block_in[b] = st
        if b not in block_in:
            continue
        outs = run.process(b)
        merged: dict[int, State] = {}
        for succ, st in outs:
            merged[succ] = join_state(merged[succ], st) if succ in merged else st
        for succ in set(cfg.blocks[b].succs):
            if succ in merged:
                edge_out[(b, succ)] = merged[succ]
            else:
                edge_out.pop((b, succ), None)

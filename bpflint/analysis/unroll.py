"""Loop bounds by abstract unrolling, as the kernel verifier does: the exact
(unwidened) header state after each back edge, iteration by iteration, else one state
per path. Where the induction-variable argument of bounds.py finds no bound, a loop
whose every run ends within the walked iterations is still bounded, and the
iterations before the first one that can leave it give the least trip count.
"""

from __future__ import annotations

from collections.abc import Callable

from bpflint.analysis.bounds import LoopBound, unknown_result
from bpflint.analysis.fixpoint import Budget, Flow, Iteration, StateKey, run_block
from bpflint.analysis.state import State, join_state, leq_state
from bpflint.analysis.transfer import Env
from bpflint.cfg.graph import Cfg
from bpflint.cfg.loops import Loop


def loop_entry(cfg: Cfg, loop: Loop, flow: Flow) -> State | None:
    """The join of the states entering ``loop`` from outside it."""
    h = loop.header
    entries = [flow.edge_out[(p, h)] for p in cfg.preds[h]
               if p not in loop.body and (p, h) in flow.edge_out]
    if not entries:
        return None
    state = entries[0]
    for other in entries[1:]:
        state = join_state(state, other)
    return state


def unroll_loop(cfg: Cfg, loop: Loop, flow: Flow, env: Env, budget: Budget,
                max_iterations: int, iterate: Callable[[StateKey], Iteration]
                ) -> LoopBound | None:
    """Bound a loop by abstract unrolling, as the kernel verifier does: iteration by
    iteration (count_iterations), else path by path."""
    entry = loop_entry(cfg, loop, flow)
    if entry is None:
        return LoopBound(loop.header, 0, 0, "unreachable")
    counted = count_iterations(cfg, loop, entry, max_iterations, iterate)
    if counted is not None:
        return counted
    return _unroll_paths(cfg, loop, entry, env, budget, max_iterations)


def count_iterations(cfg: Cfg, loop: Loop, entry: State, max_iterations: int,
                     iterate: Callable[[StateKey], Iteration | None]) -> LoopBound | None:
    """The loop's bound from its iterations, each from the exact (unwidened) header
    state after k back edges: the first k whose back edges are all infeasible. None
    when a header state repeats or stops changing (it may run forever for all we
    know), past ``max_iterations``, or when ``iterate`` gives no iteration. Also
    gives the earliest iteration that can leave the loop. ``iterate`` runs one
    iteration from a header state, given as its StateKey (fixpoint.run_iteration,
    which keeps what it computes for the fixpoint and the cost engine).
    """
    return walk_iterations(cfg, loop, entry, max_iterations, iterate)[0]


SHRINK_ITERATIONS = 256  # header states below the one before them a walk follows


def walk_iterations(cfg: Cfg, loop: Loop, entry: State, max_iterations: int,
                    iterate: Callable[[StateKey], Iteration | None]
                    ) -> tuple[LoopBound | None, int]:
    """count_iterations' walk: its bound (None: not found), and the back edges every
    run of the loop takes at least, the iterations before the first one that can
    leave it. Where the walk gives up, the iterations it did walk without a way out
    still count: each header state holds every real one after as many back edges."""
    h = loop.header
    leaves = [b for b in loop.body if cfg.blocks[b].ends_in_exit or
              cfg.blocks[b].ends_in_tail_call]
    first_exit: int | None = None
    state = entry
    key = StateKey(h, state)
    visited = {key}
    shrinking = 0
    for k in range(max_iterations + 1):
        got = iterate(key)
        if got is None:
            return None, k if first_exit is None else first_exit
        block_in, edge_out, nxt = got
        if first_exit is None and (any(e in edge_out for e in loop.exits) or
                                   any(b in block_in for b in leaves)):
            first_exit = k
        if nxt is None:
            least = k if first_exit is None else first_exit
            return LoopBound(h, k, least, f"unrolled: at most {k} iterations"), least
        known = len(visited)
        key = StateKey(h, nxt)
        visited.add(key)  # (one look-up: nxt was in it if it did not grow)
        if len(visited) == known:
            return None, k + 1 if first_exit is None else first_exit
        # a header state below the one it came from is no repetition: each run it
        # holds ran one more iteration (`while (x) x >>= 1` shrinks x's range until
        # the back edge is infeasible, as the verifier sees it). But a range shrinking
        # by one per iteration may take 2^32 of them: give up after SHRINK_ITERATIONS.
        if leq_state(nxt, state):
            shrinking += 1
            if shrinking > SHRINK_ITERATIONS:
                return None, k + 1 if first_exit is None else first_exit
        state = nxt
    return None, max_iterations + 1 if first_exit is None else first_exit


PATH_STATES = 64  # distinct header states one iteration may hand to the next
PATH_EDGES = 4096  # edges one iteration's path walk may follow
PATH_ITERATIONS = 256  # the path-by-path walk is for short loops


def _unroll_paths(cfg: Cfg, loop: Loop, entry: State, env: Env, budget: Budget,
                  max_iterations: int) -> LoopBound | None:
    """Unroll keeping one state per path, as the kernel verifier does, where joining
    them loses the bound: ``i += skb->len ? 3 : 7`` until ``i`` is 9, 10, 13 or 14
    ends within 3 iterations on every path, but the joined ``i`` grows forever.
    Only for innermost loops, within PATH_STATES states and PATH_EDGES edges."""
    if loop.children:
        return None
    h = loop.header
    leaves = {b for b in loop.body if cfg.blocks[b].ends_in_exit or
              cfg.blocks[b].ends_in_tail_call}
    frontier = [entry]
    first_exit: int | None = None
    for k in range(min(max_iterations, PATH_ITERATIONS) + 1):
        nxt: list[State] = []
        for state in frontier:
            walked = _iteration_paths(cfg, loop, state, env, budget, leaves)
            if walked is None:
                return None
            latch_states, exits = walked
            if exits and first_exit is None:
                first_exit = k
            nxt += [s for s in latch_states if not any(leq_state(s, o) for o in nxt)]
        if not nxt:
            return LoopBound(h, k, k if first_exit is None else first_exit,
                             f"unrolled path by path: at most {k} iterations")
        # a header state covered by one it came from can repeat that iteration forever
        if len(nxt) > PATH_STATES or any(leq_state(s, o) for s in nxt for o in frontier):
            return None
        frontier = nxt
    return None


def _iteration_paths(cfg: Cfg, loop: Loop, entry: State, env: Env, budget: Budget,
                     leaves: set[int]) -> tuple[list[State], bool] | None:
    """Walk every path of one iteration from the header without joining states:
    the states reaching a back edge, and whether some path leaves the loop."""
    h = loop.header
    work = [(h, entry)]
    latch_states: list[State] = []
    exits = False
    edges = 0
    while work:
        b, state = work.pop()
        block = cfg.blocks[b]
        budget.spend(len(block.insns))
        exits = exits or b in leaves
        for succ, out in run_block(block, state, env, unknown_result):
            edges += 1
            if edges > PATH_EDGES:
                return None
            if succ == h:
                latch_states.append(out)
            elif succ in loop.body:
                work.append((succ, out))
            else:
                exits = True
    return latch_states, exits

"""Shortcuts in costing loops iteration by iteration must not change a result.

One iteration of an innermost loop whose body is a DAG runs each block once in RPO
(walk.run_dag) instead of through the worklist; a worst path's lines are replayed
for iterations priced alike (expand.py); an innermost loop's steady-state parts are
kept per pricing (LoopBounds._steady_ns). Each is checked against the long way.
"""

from __future__ import annotations

import pytest
from bpfc import PROGS, compile_bpf, needs_clang
from marks import instruments_engine

from bpflint.analysis import fixpoint, walk
from bpflint.analysis.state import State
from bpflint.analysis.transfer import Env
from bpflint.analysis.walk import Budget, CallResult, Iteration, Views
from bpflint.cfg.graph import Cfg
from bpflint.cfg.loops import find_loops
from bpflint.cost import expand, loop_bounds
from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.cost.table_file import load_cost_table
from bpflint.obj.reader import load_object
from bpflint.results import ProgramResult

pytestmark = [needs_clang, instruments_engine]

# nested loops whose inner bound depends on the outer counter, loop shapes (breaks,
# continues, exits from the body), loops around calls and growing reads
SOURCES = ("loop_nested.bpf.c", "loop_shapes.bpf.c", "loop_calls_sub.bpf.c",
           "growing_reads.bpf.c", "csum_loop.bpf.c", "loop_clamped.bpf.c")


def _results(source: str) -> list[ProgramResult]:
    obj = load_object(compile_bpf(PROGS / source))
    table = load_cost_table(None)
    return [analyze_program(obj, program, table, AnalysisOptions())
            for program in obj.programs]


def _views_by_value(views: Views) -> list[tuple[int, State, walk.BlockView]]:
    return sorted(((id_block, state, view)
                   for (id_block, _), (state, view) in views.by_state.items()),
                  key=repr)


@pytest.mark.parametrize("source", SOURCES)
def test_a_dag_iteration_is_the_worklists(source: str, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    """Every iteration run_dag runs, the worklist (propagate with collect=header)
    runs too: the same block states, edge states, back-edge join and block views."""
    checked: list[int] = []
    run_dag = walk.run_dag

    def both(cfg: Cfg, order: tuple[int, ...], body: frozenset[int], header: int,
             entry: State, env: Env, subcall: CallResult, budget: Budget, views: Views
             ) -> Iteration:
        got = run_dag(cfg, order, body, header, entry, env, subcall, budget, views)
        mine, theirs = Views(), Views()
        fast = run_dag(cfg, order, body, header, entry, env, subcall, Budget(10**9, 1e9),
                       mine)
        iterations = fixpoint.Iterations()
        iterations.views = theirs
        slow = fixpoint.propagate(cfg, find_loops(cfg), body, header, entry, env, subcall,
                                  Budget(10**9, 1e9), (), collect=header,
                                  iterations=iterations)
        assert fast == slow == got
        assert list(fast[0]) == list(slow[0])  # the same order, too: pricing follows it
        assert list(fast[1]) == list(slow[1])
        assert _views_by_value(mine) == _views_by_value(theirs)
        checked.append(header)
        return got

    monkeypatch.setattr(fixpoint, "run_dag", both)
    _results(source)
    assert checked  # some loop ran as a DAG


@pytest.mark.parametrize("source", SOURCES)
def test_results_are_the_same_without_the_shortcuts(source: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _results(source)
    # every iteration through the worklist
    monkeypatch.setattr(fixpoint, "dag_order", lambda cfg, forest, header: None)
    # every piece's path walked afresh, none replayed
    monkeypatch.setattr(expand, "_flat_path", lambda region, target, blocks, at: None)
    monkeypatch.setattr(expand, "_alike", lambda *args: False)
    # an innermost loop's steady-state parts computed every time
    steady_ns = loop_bounds.LoopBounds._steady_ns

    def afresh(self: loop_bounds.LoopBounds, ctx: loop_bounds.FuncContext,
               *args: object) -> object:
        ctx.steady.clear()
        return steady_ns(self, ctx, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(loop_bounds.LoopBounds, "_steady_ns", afresh)
    assert _results(source) == fast

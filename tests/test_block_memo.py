"""The engine prices a block once per view of the state its price reads.

A loop costed iteration by iteration visits each block of its body once per
iteration; only the memory kinds and call arguments the block reads decide its
price, so those iterations share one pricing. The memo must not change a result.
"""

from __future__ import annotations

import pytest
from bpfc import PROGS, compile_bpf, needs_clang

from bpflint.analysis.fixpoint import Budget, Views
from bpflint.analysis.state import State
from bpflint.analysis.transfer import Env
from bpflint.cfg.graph import Block
from bpflint.cost import engine
from bpflint.cost.engine import AnalysisOptions, analyze_program
from bpflint.cost.model import load_cost_table
from bpflint.obj.reader import load_object
from bpflint.results import ProgramResult

pytestmark = needs_clang

# loops (costed per iteration), bpf-to-bpf calls, tail calls, callbacks, maps
SOURCES = ("loop_nested.bpf.c", "loop_shapes.bpf.c", "calls.bpf.c", "tail_calls.bpf.c",
           "bpf_loop.bpf.c", "maps_heavy.bpf.c", "loop_calls_sub.bpf.c", "growing_reads.bpf.c")


def _results(source: str) -> list[ProgramResult]:
    obj = load_object(compile_bpf(PROGS / source))
    table = load_cost_table(None)
    return [analyze_program(obj, program, table, AnalysisOptions())
            for program in obj.programs]


@pytest.mark.parametrize("source", SOURCES)
def test_results_are_the_same_when_every_block_is_priced_afresh(
        source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    memoised = _results(source)
    # a memo that holds one entry is emptied before every store: each block visit
    # with a new view prices again
    monkeypatch.setattr(engine, "BLOCK_MEMO_KEPT", 1)
    assert _results(source) == memoised


def test_a_loop_costed_per_iteration_prices_each_block_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    obj = load_object(compile_bpf(PROGS / "loop_nested.bpf.c"))
    priced: list[int] = []
    visits: list[int] = []
    price = engine.ProgramAnalysis._price_block
    cost = engine.ProgramAnalysis._cost_block

    def counting_price(self: engine.ProgramAnalysis, block: object, *args: object) -> object:
        priced.append(id(block))
        return price(self, block, *args)  # type: ignore[arg-type]

    def counting_cost(self: engine.ProgramAnalysis, cfg: object, b: int,
                      *args: object) -> object:
        visits.append(id(cfg.blocks[b]))  # type: ignore[attr-defined]
        return cost(self, cfg, b, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(engine.ProgramAnalysis, "_price_block", counting_price)
    monkeypatch.setattr(engine.ProgramAnalysis, "_cost_block", counting_cost)
    for program in obj.programs:
        analyze_program(obj, program, load_cost_table(None), AnalysisOptions())
    # the nested loops' bodies are visited once per iteration, priced once
    assert len(visits) > 4 * len(set(visits))
    assert len(priced) <= 2 * len(set(priced))


def test_views_from_the_fixpoint_are_the_views_pricing_would_take(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the fixpoint walked a block from the very state pricing starts from, its
    view is used; it must be the one walking the block again gives."""
    obj = load_object(compile_bpf(PROGS / "loop_nested.bpf.c"))
    checked: list[int] = []
    get = Views.get
    prog_type = ""

    def checking_get(self: Views, block: Block, state: State) -> object:
        got = get(self, block, state)
        if got is not None:
            analysis = engine.ProgramAnalysis(obj, None, AnalysisOptions(), Budget(10**6, 60))
            env = Env(prog_type, obj.maps)
            assert got == analysis._block_view(block, state, env, prog_type)
            checked.append(id(block))
        return got

    monkeypatch.setattr(Views, "get", checking_get)
    for program in obj.programs:
        prog_type = program.prog_type
        analyze_program(obj, program, load_cost_table(None), AnalysisOptions())
    assert len(checked) > 10

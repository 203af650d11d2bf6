"""The engine prices a block once per view of the state its price reads.

A loop costed iteration by iteration visits each block of its body once per
iteration; only the memory kinds and call arguments the block reads decide its
price, so those iterations share one pricing. The memo must not change a result.
"""

from __future__ import annotations

import pytest
from bpfc import PROGS, compile_bpf, needs_clang
from marks import instruments_engine

from bpflint.analysis.fixpoint import BlockView, Budget, InsnView, Views, join_views
from bpflint.analysis.scalar import Scalar
from bpflint.analysis.state import Kind, State, Val, const, join_val, leq_val
from bpflint.analysis.transfer import Env, mem_kind
from bpflint.cfg.graph import Block
from bpflint.cost import engine, pricing
from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.cost.shared_prices import SharedPrices
from bpflint.cost.table_file import load_cost_table
from bpflint.obj.reader import load_object
from bpflint.results import ProgramResult

pytestmark = needs_clang

# loops (costed per iteration), bpf-to-bpf calls, tail calls, callbacks, maps
SOURCES = ("loop_nested.bpf.c", "loop_shapes.bpf.c", "calls.bpf.c", "tail_calls.bpf.c",
           "bpf_loop.bpf.c", "maps_heavy.bpf.c", "loop_calls_sub.bpf.c", "growing_reads.bpf.c")


# unrolled loops calling helpers (their copies share prices), tail calls among them
UNROLLED = "memo/unrolled_calls.bpf.c"


def _results(source: str) -> list[ProgramResult]:
    obj = load_object(compile_bpf(PROGS / source))
    table = load_cost_table(None)
    return [analyze_program(obj, program, table, AnalysisOptions())
            for program in obj.programs]


@instruments_engine
@pytest.mark.parametrize("source", SOURCES)
def test_results_are_the_same_when_every_block_is_priced_afresh(
        source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    memoised = _results(source)
    # a memo that holds one entry is emptied before every store: each block visit
    # with a new view prices again
    monkeypatch.setattr(pricing, "BLOCK_MEMO_KEPT", 1)
    assert _results(source) == memoised


@instruments_engine
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


def _priced_apart(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make every block price on its own (as if no two held the same instructions);
    the list fills with the blocks priced."""
    price = engine.ProgramAnalysis._price_block
    priced: list[int] = []
    blocks: list[Block] = []  # held: their ids stay theirs

    def own_content(self: SharedPrices, block: Block) -> int:
        blocks.append(block)
        self.content_of[id(block)] = len(blocks)
        return len(blocks)

    def counting_price(self: engine.ProgramAnalysis, block: Block, *args: object) -> object:
        priced.append(id(block))
        return price(self, block, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(SharedPrices, "content", own_content)
    monkeypatch.setattr(engine.ProgramAnalysis, "_price_block", counting_price)
    return priced


@instruments_engine
@pytest.mark.parametrize("source", [*SOURCES, UNROLLED])
def test_results_are_the_same_when_no_block_takes_another_s_price(
        source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = _results(source)
    _priced_apart(monkeypatch)
    assert _results(source) == shared


@instruments_engine
def test_copies_of_an_unrolled_body_are_priced_once(monkeypatch: pytest.MonkeyPatch) -> None:
    shared = _results(UNROLLED)
    with monkeypatch.context() as patched:
        apart = _priced_apart(patched)
        assert _results(UNROLLED) == shared
    price = engine.ProgramAnalysis._price_block
    priced: list[int] = []

    def counting_price(self: engine.ProgramAnalysis, block: Block, *args: object) -> object:
        priced.append(id(block))
        return price(self, block, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(engine.ProgramAnalysis, "_price_block", counting_price)
    _results(UNROLLED)
    # the loops' copies took their first copy's prices; the BPF008 finding and the
    # four tail calls BPF005 counts are there all the same
    assert len(priced) < len(apart)
    reads, tails = shared
    assert [d.rule for d in reads.diagnostics] == ["BPF008"]
    assert any(d.rule == "BPF005" and "4 such calls" in d.message for d in tails.diagnostics)


def _covers(got: BlockView, walked: BlockView) -> bool:
    """Every read of ``walked`` is below the one of ``got`` (join_views' promise)."""
    def entry(g: InsnView, w: InsnView) -> bool:
        if g == w:
            return True
        if isinstance(g, str):
            return g == "other" and isinstance(w, str)
        return isinstance(g, tuple) and isinstance(w, tuple) \
            and all(leq_val(b, a) for a, b in zip(g, w, strict=True))
    return all(entry(g, w) for g, w in zip(got[0], walked[0], strict=True)) and (
        got[1] == walked[1] or (got[1] is not None and walked[1] is not None
                                and leq_val(walked[1], got[1])))


def test_join_of_views_covers_both() -> None:
    ptr_a = Val(Kind.STACK, Scalar.const(-8))
    ptr_b = Val(Kind.MAP_VALUE, Scalar.const(0), "m")
    a: BlockView = (("stack", None, (const(1), const(2))), const(0))
    b: BlockView = (("map", None, (const(1), const(3))), const(1))
    joined = join_views(a, b)
    assert joined[0][0] == "other" and joined[0][1] is None
    assert _covers(joined, a) and _covers(joined, b)
    assert not _covers(a, b) and join_views(a, a) == a
    assert mem_kind(join_val(ptr_a, ptr_b)) == "other"  # what a joined walk would read


@instruments_engine
@pytest.mark.parametrize("source", ["loop_nested.bpf.c", "loop_shapes.bpf.c",
                                    "growing_reads.bpf.c"])
def test_views_from_the_fixpoint_cover_the_views_pricing_would_take(
        source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the fixpoint walked a block from the very state pricing starts from, its
    view is used: it must be the one walking the block again gives, or (a state the
    fixpoint joined from a loop's iterations without walking it) cover it."""
    obj = load_object(compile_bpf(PROGS / source))
    checked: list[int] = []
    get = Views.get
    prog_type = ""

    def checking_get(self: Views, block: Block, state: State) -> object:
        got = get(self, block, state)
        if got is not None:
            analysis = engine.ProgramAnalysis(obj, None, AnalysisOptions(), Budget(10**6, 60))
            env = Env(prog_type, obj.maps)
            assert _covers(got, analysis._block_view(block, state, env, prog_type))
            checked.append(id(block))
        return got

    monkeypatch.setattr(Views, "get", checking_get)
    for program in obj.programs:
        prog_type = program.prog_type
        analyze_program(obj, program, load_cost_table(None), AnalysisOptions())
    assert len(checked) > 5

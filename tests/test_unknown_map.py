"""bpf_for_each_map_elem over a map bpflint cannot identify (an object without BTF:
its .maps definitions are unreadable) is unbounded in its worst case, but its best
case is still known: the callback may run no time at all (an empty hash map). Such a
program used to lose its minimum too (insns.min null)."""

from __future__ import annotations

import pytest
from bpfc import PROGS, compile_bpf, needs_clang
from cases import NO_PKT, skb

from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.interp.refinterp import World, run
from bpflint.obj.reader import load_object

SOURCE = PROGS / "for_each_map.bpf.c"


@needs_clang
@pytest.mark.parametrize("name", ["each_array", "each_hash"])
def test_an_unknown_map_leaves_the_best_case_known(name: str) -> None:
    blind = load_object(compile_bpf(SOURCE, ("-g0",)))
    seen = load_object(compile_bpf(SOURCE))
    result = analyze_program(blind, next(p for p in blind.programs if p.name == name), None,
                             AnalysisOptions())
    assert not result.bounded and result.insns_max is None and result.ns_max is None
    assert [d.name for d in result.diagnostics if d.rule == "BPF003"] == ["unknown-map"]
    assert result.insns_min is not None and result.ns_min is None  # no cost table given
    # the best case runs the callback no time: no more than the BTF build's best case
    # of the hash map (which may be empty), and never above a real run
    known = analyze_program(seen, next(p for p in seen.programs if p.name == name), None,
                            AnalysisOptions())
    assert known.insns_min is not None and result.insns_min <= known.insns_min
    for elems in (0, 1, 32):
        count = run(seen, name, skb(NO_PKT, mark=0xFFFFFFFF, world=World(hash_elems=elems)))
        assert result.insns_min <= count
    empty = run(seen, "each_hash", skb(NO_PKT, world=World(hash_elems=0)))
    if name == "each_hash":
        assert result.insns_min == empty  # exact: the same code, the callback not run

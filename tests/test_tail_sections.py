"""Tail calls declared the iproute2 way (Cilium's datapath): legacy struct bpf_elf_map
prog arrays with an .id, filled from sections "ID/KEY"; chains, cycles, and the
sharing of tail-call targets between an object's programs.

Found on a fresh Cilium build (bpf_lxc.o, bpf_host.o, ... of cilium main, January
2025): every internal tail call was an open edge (BPF005) and each program's figure
stopped at its first tail call; read as Cilium's loader fills them, the chains are
costed, and bpf_host.o's from-netdev and NAT programs form cycles (BPF010).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from bpfc import PROGS, compile_bpf, needs_clang

from bpflint.api import analyze_paths
from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.cost.table_file import load_cost_table
from bpflint.obj.model import BpfObject
from bpflint.obj.reader import load_object
from bpflint.obj.tail_sections import parse_tail_section, section_tail_slots
from bpflint.results import ProgramResult

SOURCE = PROGS / "tailsec" / "elf_map_tail.bpf.c"
MAX_TAIL_CALLS = 33


@pytest.mark.parametrize(("section", "parsed"), [
    ("2/15", (2, 15)), ("1/0x0515", (1, 0x515)), ("7/0X1f", (7, 31)), ("3/017", (3, 15)),
    ("2/0", (2, 0)), ("tc", None), ("2/15a", None), ("2/", None), ("/1", None),
    ("kprobe/sys_open", None), ("2/08", None), ("xdp/1", None), ("2/1/3", None),
])
def test_parse_tail_section(section: str, parsed: tuple[int, int] | None) -> None:
    assert parse_tail_section(section) == parsed


@pytest.fixture(scope="module")
def obj() -> BpfObject:
    return load_object(_compiled())


def _compiled() -> Path:
    return compile_bpf(SOURCE)


def _analyze(obj: BpfObject) -> dict[str, ProgramResult]:
    table, options = load_cost_table(None), AnalysisOptions()
    return {p.name: analyze_program(obj, p, table, options) for p in obj.programs}


def _without_slots(obj: BpfObject) -> BpfObject:
    return replace(obj, maps={n: replace(m, prog_slots=()) for n, m in obj.maps.items()})


@needs_clang
def test_sections_fill_the_slots_of_the_map_with_their_id(obj: BpfObject) -> None:
    assert obj.maps["calls"].prog_slots == ((1, "stage_one"), (3, "stage_three"))
    # hex and octal slots ("7/0x0", "7/01") go to the map whose .id is 7
    assert obj.maps["ring"].prog_slots == ((0, "ping"), (1, "pong"))
    assert any("prog array calls: 2 slots filled by the programs of sections '2/<slot>'"
               in note for note in obj.notes)


@needs_clang
def test_chain_is_costed_through_both_tail_calls(obj: BpfObject) -> None:
    res, bare = _analyze(obj), _analyze(_without_slots(obj))
    # unresolved, each tail call is an open edge and the figure stops there
    assert all(any(d.rule == "BPF005" for d in bare[n].diagnostics)
               for n in ("entry", "stage_one"))
    # stage_three's own open tail call (a map without .id) is the only one left, and
    # it is reported on every program whose chain reaches it
    for name in ("entry", "stage_one", "stage_three"):
        assert [d.message for d in res[name].diagnostics if d.rule == "BPF005"] == [
            "tail call through prog array 'dynamic' with no known targets (add them "
            "under [tail_calls] in bpfbudget.toml)"], name
    assert res["entry"].tail_call_targets == ("stage_one",)
    assert res["stage_one"].tail_call_targets == ("stage_three",)
    three, one, entry = res["stage_three"], res["stage_one"], res["entry"]
    assert three.insns_max == bare["stage_three"].insns_max
    # a tail call's path: the caller's instructions up to the call (its open figure
    # less the failed call's `r0 = ..; exit`), then the target's worst case
    assert one.insns_max == bare["stage_one"].insns_max - 2 + three.insns_max
    assert entry.insns_max == bare["entry"].insns_max - 2 + one.insns_max
    assert entry.ns_max is not None and one.ns_max is not None and entry.ns_max > one.ns_max
    # the worst path runs through all three programs' lines
    text = SOURCE.read_text().splitlines()
    path_lines = {text[lc.line - 1].strip() for lc in entry.worst_path}
    assert {"acc ^= skb->mark;", "acc += skb->len;", "if (skb->mark)"} <= path_lines


@needs_clang
def test_variable_index_into_section_slots_stays_open(obj: BpfObject) -> None:
    dispatch = _analyze(obj)["dispatch"]
    assert dispatch.tail_call_targets == ()
    assert [d.message for d in dispatch.diagnostics if d.rule == "BPF005"] == [
        "tail call through prog array 'calls' with no known targets (add them under "
        "[tail_calls] in bpfbudget.toml)"]


@needs_clang
def test_cycle_runs_to_the_kernel_limit_and_says_so(obj: BpfObject) -> None:
    res, bare = _analyze(obj), _analyze(_without_slots(obj))
    ping, pong = bare["ping"].insns_max, bare["pong"].insns_max
    assert ping is not None and pong is not None
    # 1 + 33 programs: ping at the even depths, pong at the odd ones; the last one's
    # tail call is not followed (the kernel fails it) and it returns
    expected = 17 * (ping - 2) + 16 * (pong - 2) + pong
    assert res["ping"].insns_max == expected
    notes = [d for d in res["ping"].diagnostics if d.rule == "BPF010"]
    assert len(notes) == 1 and "(ping -> pong -> ping)" in notes[0].message
    assert f"limit of {MAX_TAIL_CALLS} chained calls" in notes[0].message
    assert not any(d.rule == "BPF010" for d in res["entry"].diagnostics)


@needs_clang
def test_shared_targets_give_what_each_program_alone_gives(obj: BpfObject) -> None:
    """The object's programs share their tail-call targets' analyses (targets.py):
    each result must be what that program analysed alone gives, in any order and
    with any --jobs split."""
    alone = _analyze(obj)
    table, options = load_cost_table(None), AnalysisOptions()
    for jobs in (1, 2):
        outcome = analyze_paths([str(_compiled())], table, options, jobs=jobs)
        shared = {r.name: r for r in outcome.programs}
        assert shared == alone, jobs
    # in reverse order, the targets are analysed first and then reused
    table, options = load_cost_table(None), AnalysisOptions()
    from bpflint.cost.targets import Targets

    targets = Targets()
    backwards = {p.name: analyze_program(obj, p, table, options, targets)
                 for p in reversed(obj.programs)}
    assert backwards == alone


def test_slots_need_one_prog_array_per_id_and_one_section_per_slot() -> None:
    from bpflint.obj.model import MapDef, Program

    def prog(name: str, section: str) -> Program:
        return Program(name, section, "sched_cls", "", (section, 0), False)

    array = MapDef("calls", 3, "prog_array", 4, 4, 4, section="maps")
    other = MapDef("other", 3, "prog_array", 4, 4, 4, section="maps")
    hashed = MapDef("h", 1, "hash", 4, 4, 4, section="maps")
    maps = {"calls": array, "other": other, "h": hashed}
    one = [prog("a", "2/1"), prog("b", "2/9"), prog("c", "3/0")]
    got, notes = section_tail_slots(maps, {"calls": 2, "h": 3}, one)
    # slot 9 is past max_entries; id 3 is a hash map, not a prog array
    assert got["calls"].prog_slots == ((1, "a"),) and len(notes) == 1
    assert got["h"].prog_slots == () and got["other"].prog_slots == ()
    # two maps with id 2: the loaders refuse it, nothing is filled
    got, notes = section_tail_slots(maps, {"calls": 2, "other": 2}, one)
    assert got == maps and notes == []
    # two sections for slot 1: which one the loader keeps is unknown, the calls stay open
    got, notes = section_tail_slots(maps, {"calls": 2}, [prog("a", "2/1"), prog("b", "2/01")])
    assert got == maps and "stay open" in notes[0]


@needs_clang
def test_explain_names_the_tail_calls_it_follows(capsys: pytest.CaptureFixture[str]) -> None:
    from bpflint.cli import main

    assert main(["explain", "-p", "entry", "--top", "0", str(_compiled())]) == 0
    out = capsys.readouterr().out
    assert "tail calls to stage_one: their worst case (and their tail calls') is included" \
        in out
    assert "acc ^= skb->mark;" in out  # stage_three's line, two tail calls down


def test_find_cycle_is_the_first_depth_first() -> None:
    from bpflint.cost.targets import find_cycle

    assert find_cycle("a", {"a": ["b", "c"], "b": ["d"], "c": ["a"], "d": []}) == ["a", "c", "a"]
    assert find_cycle("a", {"a": ["b"], "b": ["b"]}) == ["b", "b"]
    assert find_cycle("a", {"a": ["b"], "b": []}) == []
    # a diamond is no cycle; a chain deeper than Python's recursion limit is walked
    assert find_cycle("a", {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}) == []
    deep = {str(i): [str(i + 1)] for i in range(5000)}
    assert find_cycle("0", deep) == []


@needs_clang
def test_reference_interpreter_runs_the_chain_to_its_worst_case(obj: BpfObject) -> None:
    """The interpreter follows the same slots (MapDef.prog_slots): a packet that takes
    every tail call and branch runs exactly the reported worst case, one that takes
    none the best; and the ping/pong cycle runs its 34 programs to the kernel's limit."""
    from cases import NO_PKT, skb

    from bpflint.interp.refinterp import run

    res = _analyze(obj)
    assert run(obj, "entry", skb(bytes(100), mark=1)) == res["entry"].insns_max
    assert run(obj, "entry", skb(NO_PKT, mark=0)) == res["entry"].insns_min
    assert run(obj, "ping", skb(NO_PKT)) == res["ping"].insns_max

"""Worst-case witnesses (bpflint/witness, docs/witness.md): the search reaches the
hand-built worst cases of tests/cases.py, witnesses replay, the JSON carries them, and
`measure --worst` times one on the kernel."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from bpfc import PROGS, compile_bpf
from cases import CASES, FileCase, ProgCase

from bpflint.cli import main
from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.cost.table_file import load_cost_table
from bpflint.interp.refinterp import run
from bpflint.kernel.syscall import bpf_usable, prog_type_runs
from bpflint.obj.model import BpfObject
from bpflint.obj.reader import load_object
from bpflint.witness import format as wformat
from bpflint.witness.runner import replay, witness_program

TABLE = load_cost_table(None)
USABLE, REASON = bpf_usable()


def _case(file: str, name: str) -> tuple[FileCase, ProgCase]:
    fc = next(c for c in CASES if c.file == file)
    return fc, next(p for p in fc.programs if p.name == name)


def _object(fc: FileCase) -> BpfObject:
    return load_object(str(compile_bpf(PROGS / fc.file, fc.flags)))


# programs whose hand-built worst input reaches insns.max exactly (max_ratio 1.0)
EXACT = [("parse_xdp.bpf.c", "parse_xdp"), ("branchy_tc.bpf.c", "branchy_tc"),
         ("socket_filter.bpf.c", "socket_filter"), ("ipv6_ext.bpf.c", "ipv6_ext"),
         ("unroll_vlan.bpf.c", "unroll_vlan"), ("loop_shapes.bpf.c", "loop_break"),
         ("maps_heavy.bpf.c", "maps_heavy"), ("tracepoint_openat.bpf.c", "tp_openat"),
         ("kprobe_count.bpf.c", "kretprobe_exit")]


@pytest.mark.parametrize("file, name", EXACT)
def test_witness_reaches_the_hand_built_worst_case(file: str, name: str) -> None:
    fc, case = _case(file, name)
    assert case.max_ratio == 1.0
    obj = _object(fc)
    program = next(p for p in obj.programs if p.name == name)
    hand = run(obj, name, case.worst)
    out = witness_program(obj, program, TABLE, seconds=20)
    assert out.search is not None and out.search.witness is not None, out
    w = out.search.witness
    assert out.result.insns_max == hand  # the case's claim, checked again here
    assert w.executed_insns == hand and w.reached == 1.0
    assert out.search.note == ""
    # the figure is an execution: running the witness's input again gives it
    assert run(obj, name, w.input) == w.executed_insns


def test_an_infeasible_worst_path_is_named() -> None:
    """calls_chain: the engine adds two mix() branches only one of which any input
    takes (tests/cases.py's reason); the search runs every path and says so."""
    fc, case = _case("calls.bpf.c", "calls_chain")
    obj = _object(fc)
    program = next(p for p in obj.programs if p.name == "calls_chain")
    out = witness_program(obj, program, TABLE, seconds=20)
    assert out.search is not None and out.search.witness is not None
    w = out.search.witness
    hand = run(obj, "calls_chain", case.worst)
    assert w.executed_insns >= hand  # at least as dear as the hand-built worst case
    assert w.reached is not None and w.reached < 1.0
    assert out.search.exhaustive
    assert out.search.note.startswith("the worst path is infeasible")


def test_the_contradicting_branch_is_named() -> None:
    """calls_arg_loop: global_clamp's result decides the caller's branch; z3's unsat
    core names the branch the worst path's way contradicts."""
    fc, case = _case("calls.bpf.c", "calls_arg_loop")
    obj = _object(fc)
    program = next(p for p in obj.programs if p.name == "calls_arg_loop")
    out = witness_program(obj, program, TABLE, seconds=20)
    assert out.search is not None and out.search.witness is not None
    assert out.search.witness.executed_insns == run(obj, "calls_arg_loop", case.worst)
    assert re.fullmatch(r"the worst path is infeasible: the branch at line \d+ toward line "
                        r"\d+ contradicts the branch at line \d+", out.search.note), \
        out.search.note


def test_guided_search_without_the_solver() -> None:
    fc, case = _case("parse_xdp.bpf.c", "parse_xdp")
    obj = _object(fc)
    program = obj.programs[0]
    out = witness_program(obj, program, TABLE, seconds=3, use_solver=False)
    assert out.search is not None and out.search.method == "mutation"
    w = out.search.witness
    assert w is not None and 0 < w.executed_insns <= out.result.insns_max
    assert run(obj, program.name, w.input) == w.executed_insns


def test_replay_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fc, _ = _case("ipv6_ext.bpf.c", "ipv6_ext")
    path = str(compile_bpf(PROGS / fc.file, fc.flags))
    code = main(["witness", path, "-p", "ipv6_ext", "--output", str(tmp_path),
                 "--seconds", "20"])
    out, err = capsys.readouterr()
    assert code == 0, err
    saved = tmp_path / "ipv6_ext.witness.json"
    doc = json.loads(saved.read_text())
    assert doc["format"] == "bpflint-witness" and doc["program"] == "ipv6_ext"
    assert f"executed {doc['executed_insns']} of {doc['insns_max']} insns" in out
    obj = load_object(path)
    got = replay(obj, obj.programs[0], wformat.loads(str(saved), saved.read_text()),
                 str(saved), TABLE)
    assert got.executed_insns == doc["executed_insns"] and got.retval == doc["retval"]
    code = main(["witness", path, "--replay", str(saved)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith(f"ipv6_ext: executed {doc['executed_insns']} of ") and \
        "(as saved)" in out
    # an edited witness replays to a different count: the replay really executes
    doc["input"]["packet"] = ""
    saved.write_text(json.dumps(doc))
    code = main(["witness", path, "--replay", str(saved)])
    out, _ = capsys.readouterr()
    assert code == 0 and "(saved: " in out


@pytest.mark.parametrize("content, message", [
    ("not json", "not JSON"),
    ('{"format": "x"}', "not a bpflint witness"),
    ('{"format": "bpflint-witness", "version": 1, "input": {"packet": "zz"}}',
     "input.packet is not hex"),
    ('{"format": "bpflint-witness", "version": 1, "input": {"world": {"nope": 1}}}',
     "unknown world field 'nope'"),
])
def test_bad_witness_file_is_one_line_exit_2(tmp_path: Path, content: str, message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = str(compile_bpf(PROGS / "parse_xdp.bpf.c"))
    bad = tmp_path / "w.json"
    bad.write_text(content)
    code = main(["witness", path, "-p", "parse_xdp", "--replay", str(bad)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and str(bad) in err


WITNESS_SCHEMA = {
    "type": "object",
    "required": ["reached", "executed_insns", "by", "method", "runs", "exhaustive", "note",
                 "input"],
    "properties": {
        "reached": {"type": ["number", "null"], "minimum": 0},
        "executed_insns": {"type": ["integer", "null"], "minimum": 0},
        "by": {"enum": ["insns", "ns", None]},
        "method": {"type": "string"},
        "runs": {"type": "integer"},
        "exhaustive": {"type": "boolean"},
        "note": {"type": "string"},
        "input": {"type": ["object", "null"], "required": ["packet", "ctx", "world"],
                  "properties": {"packet": {"type": "string", "pattern": "^([0-9a-f]{2})*$"},
                                 "ctx": {"type": "string", "pattern": "^([0-9a-f]{2})*$"},
                                 "world": {"type": "object"}}},
    },
}


def test_analyze_witness_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(compile_bpf(PROGS / "branchy_tc.bpf.c"))
    code = main(["analyze", "--format", "json", "--no-cache", "--witness",
                 "--witness-seconds", "10", path])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    (prog,) = doc["programs"]
    assert prog["insns"]["max"] > 0 and prog["worst_path"]  # the contract's fields stay
    jsonschema.validate(prog["witness"], WITNESS_SCHEMA)
    w = prog["witness"]
    assert w["executed_insns"] == round(w["reached"] * prog["insns"]["max"])
    obj = load_object(path)
    from bpflint.interp.refinterp import Input
    inp = Input(ctx=bytes.fromhex(w["input"]["ctx"]), packet=bytes.fromhex(w["input"]["packet"]),
                world=wformat.world_from_json("json", w["input"]["world"]))
    assert run(obj, prog["name"], inp) == w["executed_insns"]


def test_unbounded_program_gets_no_witness() -> None:
    fc = next(c for c in CASES if not c.bounded)
    obj = _object(fc)
    program = obj.programs[0]
    out = witness_program(obj, program, TABLE, seconds=2)
    assert out.search is None and "unbounded" in out.skipped
    assert out.to_json()["reached"] is None


@pytest.mark.kernel
@pytest.mark.skipif(not USABLE, reason=REASON)
def test_measure_worst_times_the_witness(capsys: pytest.CaptureFixture[str]) -> None:
    ok, why = prog_type_runs("xdp")
    if not ok:
        pytest.skip(why)
    path = str(compile_bpf(PROGS / "parse_xdp.bpf.c"))
    code = main(["measure", path, "-p", "parse_xdp", "--worst", "--repeat", "2000",
                 "--seconds", "20"])
    out, err = capsys.readouterr()
    assert code == 0, err
    match = re.search(r"worst case: this packet makes parse_xdp take (-?\d+) ns; the bound "
                      r"is (\d+) ns \(the interpreter executes (\d+) of (\d+) insns", out)
    assert match, out
    obj = load_object(path)
    result = analyze_program(obj, obj.programs[0], TABLE, AnalysisOptions())
    assert int(match[4]) == result.insns_max
    assert 0 < int(match[3]) <= int(match[4])
    # the kernel ran the same path as the interpreter: same return value
    assert "took another way" not in out


def test_witness_by_time_and_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(compile_bpf(PROGS / "parse_xdp.bpf.c"))
    code = main(["witness", path, "--by", "ns", "--seconds", "10"])
    out, err = capsys.readouterr()
    assert code == 0, err
    match = re.search(r"executed (\d+) of (\d+) insns.*; priced (\d+) ns", out)
    assert match and 0 < int(match[1]) <= int(match[2]) and int(match[3]) > 0, out
    code = main(["witness", path, "--format", "json", "--seconds", "10"])
    out, err = capsys.readouterr()
    assert code == 0, err
    (prog,) = json.loads(out)["programs"]
    jsonschema.validate(prog["witness"], WITNESS_SCHEMA)
    assert prog["witness"]["executed_insns"] <= prog["insns"]["max"]


def test_map_values_knobs_and_kconfig_are_solved_and_replayed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """world_choices' worst path needs a hash value field of 0x1234 (bytes no single
    value_fill makes), a loader-set knob, a .kconfig value, a .bss word of 1000 or
    more and a lookup in a per-CPU array user space sizes: the witness solves each,
    and its file replays them."""
    path = str(compile_bpf(PROGS / "witness" / "world_choices.bpf.c"))
    code = main(["witness", path, "--output", str(tmp_path), "--seconds", "20"])
    out, err = capsys.readouterr()
    assert code == 0, err
    saved = tmp_path / "world_choices.witness.json"
    doc = json.loads(saved.read_text())
    assert doc["version"] == 2 and doc["reached"] == 1.0, out
    world = doc["input"]["world"]
    assert world["rodata"]["slow_mode"] != 0 and world["rodata"]["CONFIG_HZ"] == 250
    budget = bytes.fromhex(world["globals"][".bss"])  # budget_left, the one .bss word
    assert int.from_bytes(budget[:4].ljust(4, b"\0"), "little") >= 1000
    # the maps as user space must fill them; every other lookup misses
    (value,) = doc["maps"]["cfgs"].values()
    assert int.from_bytes(bytes.fromhex(value)[:4], "little") == 0x1234
    assert world["lookup_hits"] == [False]
    obj = load_object(path)
    inp = wformat.input_from_json(str(saved), doc)
    assert run(obj, "world_choices", inp) == doc["executed_insns"] == doc["insns_max"]
    # the replay loads "maps": without the entry the lookup misses and the run is short
    doc["maps"] = {}
    saved.write_text(json.dumps(doc))
    code = main(["witness", path, "--replay", str(saved)])
    out, _ = capsys.readouterr()
    assert code == 0 and "(saved: " in out


def test_version_1_witness_files_still_replay() -> None:
    """Version 1 listed the hash keys that hit, for measure only: its maps are not
    loaded into the replay (its lookup_hits already say hit)."""
    doc = {"format": "bpflint-witness", "version": 1, "input": {
        "packet": "00" * 64, "world": {"lookup_hits": [True]}},
        "maps": {"cfgs": {"00000000": "0000000000000000"}}}
    inp = wformat.input_from_json("v1.json", wformat.loads("v1.json", json.dumps(doc)))
    assert inp.world.map_contents == () and inp.world.lookup_hits == (True,)


def test_the_corpus_benchmark_prints_share_median_p10_and_the_lowest(tmp_path: Path) -> None:
    """benchmarks/witness_corpus.py over a directory: the figures README quotes."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    fc, _ = _case("calls.bpf.c", "calls_chain")
    obj = tmp_path / "objs" / "calls.o"
    obj.parent.mkdir()
    obj.write_bytes(compile_bpf(PROGS / fc.file, fc.flags).read_bytes())
    out_json = tmp_path / "rows.json"
    proc = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "witness_corpus.py"), str(obj.parent),
         "--types", "xdp", "--seconds", "5", "--json", str(out_json)],
        capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(out_json.read_text())
    reached = sorted(r["reached"] for r in rows)
    assert rows and all(r["type"] == "xdp" for r in rows)
    n = len(reached)
    assert f"all: witnessed {n}/{n} (100.0 %)" in proc.stdout
    median = (reached[(n - 1) // 2] + reached[n // 2]) / 2
    assert f"reached median {median:.3f}, p10 {reached[max(0, -(-n // 10) - 1)]:.3f}" \
        in proc.stdout
    # the lowest is calls_chain, whose worst path is infeasible, and the reason says so
    lowest = proc.stdout.split("lowest:\n")[1].splitlines()[0]
    assert "calls_chain" in lowest and "infeasible" in lowest

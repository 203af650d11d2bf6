"""BPF005 once per program, at the caller's line (bpflint/cost/callsites.py).

A program with twelve unresolved tail calls used to get twelve findings, and one
calling ``bpf_tail_call_static`` got a finding in libbpf's bpf_helpers.h (the
inline asm's line in BTF). tests/progs/callsites/open_tail_calls.bpf.c has three
static tail calls in one program and a plain one in another.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jsonschema
from bpfc import PROGS, compile_bpf, needs_clang
from gate_helpers import config, program

from bpflint.budget.gate import evaluate
from bpflint.cost.callsites import caller_insn, fold_call_sites, is_library_line
from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.isa.insn import Insn
from bpflint.isa.meta import SourceLine
from bpflint.isa.opcodes import Opcode
from bpflint.obj.reader import load_object
from bpflint.report import json as json_report
from bpflint.report import sarif
from bpflint.results import AnalysisReport, Diagnostic, ProgramResult, SourceLoc

SOURCE = PROGS / "callsites" / "open_tail_calls.bpf.c"
SCHEMA = Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json"


@functools.cache
def analysed() -> dict[str, ProgramResult]:
    obj = load_object(compile_bpf(SOURCE))
    return {p.name: analyze_program(obj, p, None, AnalysisOptions()) for p in obj.programs}


def _source_line(text: str) -> int:
    return next(n for n, line in enumerate(SOURCE.read_text().splitlines(), 1) if text in line)


@needs_clang
def test_three_open_tail_calls_are_one_finding_in_the_programs_own_file() -> None:
    (finding,) = [d for d in analysed()["dispatch_static"].diagnostics if d.rule == "BPF005"]
    assert finding.loc is not None and finding.loc.file.endswith("open_tail_calls.bpf.c")
    assert "3 such calls" in finding.message
    assert finding.related and finding.related[0] == finding.loc
    assert all(loc.file == finding.loc.file for loc in finding.related)
    # BTF has no inlined call sites: the lines are the nearest of the caller's own,
    # between the first static call and the function's last line
    first, last = _source_line("&jumps, 1)"), _source_line("return 0;")
    assert all(first <= loc.line <= last for loc in finding.related)


@needs_clang
def test_a_single_open_tail_call_keeps_its_line_and_message() -> None:
    (finding,) = [d for d in analysed()["dispatch_once"].diagnostics if d.rule == "BPF005"]
    assert finding.loc is not None and finding.loc.line == _source_line("bpf_tail_call(skb")
    assert finding.message.endswith("bpfbudget.toml)") and finding.related == ()


def _insn(pc: int, file: str, line: int) -> Insn:
    return Insn(pc, Opcode(0xB7), 0, 0, 0, 0, line=SourceLine(file, line, 0, ""))


def test_a_library_line_moves_to_the_nearest_line_of_the_callers_file() -> None:
    header = "/usr/include/bpf/bpf_helpers.h"
    insns = (_insn(0, "x.bpf.c", 10), _insn(1, header, 169), _insn(2, header, 169),
             _insn(3, header, 169), _insn(4, "x.bpf.c", 12))
    assert caller_insn(insns, insns[3]).line == insns[4].line  # nearest: after
    assert caller_insn(insns, insns[1]).line == insns[0].line  # nearest: before
    assert caller_insn(insns, insns[0]) is insns[0]  # the user's own line stays
    only_header = (_insn(0, header, 1),)
    assert caller_insn(only_header, only_header[0]) is only_header[0]
    assert is_library_line(SourceLine("/work/inc/vmlinux.h", 1, 0, ""))
    assert not is_library_line(SourceLine("src/lib/tailcall.h", 1, 0, ""))


def test_folding_keeps_other_findings_and_their_order() -> None:
    msg = "tail call through prog array 'jmp' with no known targets"
    diags = [Diagnostic("BPF008", "loose-size-bound", "size", SourceLoc("a.c", 3)),
             Diagnostic("BPF005", "open-tail-call", msg, SourceLoc("a.c", 9)),
             Diagnostic("BPF003", "unbounded-loop", "loop", SourceLoc("a.c", 5)),
             Diagnostic("BPF005", "open-tail-call", msg, SourceLoc("a.c", 7)),
             Diagnostic("BPF005", "open-tail-call", "other map", SourceLoc("a.c", 1))]
    folded = fold_call_sites(diags, {msg: 3, "other map": 1})
    assert [d.rule for d in folded] == ["BPF008", "BPF005", "BPF003", "BPF005"]
    assert folded[1].loc == SourceLoc("a.c", 7)
    assert folded[1].related == (SourceLoc("a.c", 7), SourceLoc("a.c", 9))
    assert folded[1].message == f"{msg}; 3 such calls (lines 7, 9 of a.c)"
    assert folded[3] == diags[4]


def test_json_and_sarif_carry_the_other_call_sites(tmp_path: Path) -> None:
    (tmp_path / "x.bpf.c").write_text("// source\n" * 40)
    sites = (SourceLoc(str(tmp_path / "x.bpf.c"), 26), SourceLoc(str(tmp_path / "x.bpf.c"), 31))
    diag = Diagnostic("BPF005", "open-tail-call", "tail call; 2 such calls", sites[0], sites)
    result = program("entry", obj=str(tmp_path / "x.bpf.o"), diagnostics=(diag,))
    doc = json.loads(json_report.render(AnalysisReport((result,), ())))
    (entry,) = doc["programs"][0]["diagnostics"]
    assert [loc["line"] for loc in entry["related"]] == [26, 31]
    report = evaluate(AnalysisReport((result,), ()), config(tmp_path, ""), None)
    document = sarif.to_sarif(report, tmp_path)
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    (found,) = [r for r in document["runs"][0]["results"] if r["ruleId"] == "BPF005"]
    assert found["locations"][0]["physicalLocation"]["region"] == {"startLine": 26}
    assert [r["physicalLocation"]["region"]["startLine"]
            for r in found["relatedLocations"]] == [31]

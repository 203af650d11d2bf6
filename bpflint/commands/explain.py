"""`bpflint explain OBJ --program NAME`: where the worst case spends its time.

Prints the program's source lines with the instructions and nanoseconds each
contributes to the most expensive path (loop bodies multiplied by their trip
bounds, callees and callbacks included), hottest first, like a profiler.

Two paths can be the most expensive: the one with the most nanoseconds and the one
with the most instructions (a helper call on a short branch takes the first away
from the second). ``--by ns`` (the default when the program has a time estimate)
follows the first: its lines add up to the headline ``ns.max``; ``--by insns``
the second: its lines add up to ``insns.max``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bpflint.budget import gitref
from bpflint.commands import COMMANDS
from bpflint.commands.analyze import load_table, printable, write_output
from bpflint.commands.names import find_program
from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.errors import BpfLintError
from bpflint.obj.model import Program
from bpflint.obj.reader import load_object
from bpflint.report import html
from bpflint.report.paths import PathNamer
from bpflint.report.paths import where as place
from bpflint.report.text import hottest_lines
from bpflint.results import AnalysisReport, ProgramResult

NAME = "explain"
HELP = COMMANDS[NAME]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("object", metavar="OBJ", help="BPF object file")
    parser.add_argument("--program", "-p", metavar="NAME",
                        help="program to explain (required when the object has several)")
    parser.add_argument("--top", type=int, default=20, metavar="N",
                        help="show the N hottest lines (default: 20; 0 for all)")
    parser.add_argument("--by", choices=("ns", "insns"),
                        help="follow the worst path by time or by instructions (default: "
                             "ns, or insns where the program has no time estimate)")
    parser.add_argument("--cost-table", metavar="FILE",
                        help="cost table (TOML) written by `bpflint calibrate`")
    parser.add_argument("--format", choices=("text", "html"), default="text",
                        help="text (default), or html: the cost map of every program of "
                             "OBJ (or of --program), one self-contained page")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="write the report to FILE instead of standard output")


def run(args: argparse.Namespace) -> int:
    obj = load_object(args.object)
    program: Program | None
    table = load_table(args.cost_table)
    if args.format == "html":
        chosen = list(obj.programs) if args.program is None else \
            [find_program(obj.programs, args.program, args.object)]
        results = tuple(analyze_program(obj, p, table, AnalysisOptions()) for p in chosen)
        page = html.render_analysis(AnalysisReport(results, ()), by_ns=args.by != "insns")
        write_output(args.output, page)
        return 0
    if args.program is None:
        if len(obj.programs) != 1:
            names = ", ".join(p.name for p in obj.programs) or "none"
            raise BpfLintError(f"{args.object}: name a program with --program ({names})")
        program = obj.programs[0]
    else:
        program = find_program(obj.programs, args.program, args.object)
    result = analyze_program(obj, program, table, AnalysisOptions())
    # source paths as every report names them: relative to the repository ("parse.h"
    # under the object's project, not BTF's "././parse.h")
    namer = PathNamer(gitref.repo_root(Path.cwd()) or Path.cwd())
    by_ns = args.by == "ns" or (args.by is None and result.ns_max is not None)
    write_output(args.output, render(namer.result(result), args.top, by_ns))
    return 0


def render(result: ProgramResult, top: int, by_ns: bool = False) -> str:
    out = [f"{printable(result.name)} ({result.section}, {result.type}): "
           f"{result.insn_count} instructions"]
    if result.bounded:
        out.append(f"  worst case: {result.insns_max} insns, {_ns(result.ns_max)}; "
                   f"best case: {result.insns_min} insns, {_ns(result.ns_min)}")
    else:
        out.append(f"  worst case: unbounded; best case: {result.insns_min} insns")
    for diag in result.diagnostics:
        where = f"{place(diag.loc.file, diag.loc.line)}: " if diag.loc else ""
        out.append(f"  {diag.rule} {diag.name}: {where}{printable(diag.message)}")
    ranked = hottest_lines(result, len(result.worst_path_ns) + len(result.line_costs)
                           + len(result.worst_path), by_ns)
    lines = ranked[:top] if top > 0 else ranked
    if not lines:
        out.append("  (no source line information: compile with -g for a per-line view)"
                   if result.bounded else "")
        return "\n".join(out) + "\n"
    out.append("")
    if by_ns:
        total_ns = result.ns_max or 1.0
        out.append(f"  worst path by time: its {len(ranked)} lines add up to "
                   f"{_ns(sum(lc.ns for lc in ranked))} (--by insns for the path with the "
                   "most instructions)")
        out.append("")
        out.append(f"{'NS':>10} {'%':>6} {'INSNS':>10}  LOCATION")
    else:
        total = result.insns_max or 1
        out.append(f"  worst path by instructions: its {len(ranked)} lines add up to "
                   f"{sum(lc.insns for lc in ranked)} insns")
        out.append("")
        out.append(f"{'INSNS':>10} {'%':>6} {'NS':>10}  LOCATION")
    for lc in lines:
        if by_ns:
            share = 100.0 * lc.ns / total_ns
            out.append(f"{_ns(lc.ns):>10} {share:>5.1f}% {lc.insns:>10}  {place(lc.file, lc.line)}")
        else:
            share = 100.0 * lc.insns / total
            out.append(f"{lc.insns:>10} {share:>5.1f}% {_ns(lc.ns):>10}  {place(lc.file, lc.line)}")
        if lc.text:
            out.append(f"{'':>30}  {printable(lc.text.strip())}")
    return "\n".join(out) + "\n"


def _ns(value: float | None) -> str:
    if value is None:
        return "- ns"
    if value >= 1000:
        return f"{value / 1000:.2f}us"
    return f"{value:.1f}ns"

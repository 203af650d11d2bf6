"""`bpflint explain OBJ --program NAME`: where the worst case spends its time.

Prints the program's source lines with the instructions and nanoseconds each
contributes to the most expensive path (loop bodies multiplied by their trip
bounds, callees and callbacks included), hottest first, like a profiler.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bpflint.budget import gitref
from bpflint.commands import COMMANDS
from bpflint.commands.analyze import load_table, printable
from bpflint.commands.names import find_program
from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.errors import BpfLintError
from bpflint.obj.model import Program
from bpflint.obj.reader import load_object
from bpflint.report.paths import PathNamer
from bpflint.report.paths import where as place
from bpflint.results import ProgramResult

NAME = "explain"
HELP = COMMANDS[NAME]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("object", metavar="OBJ", help="BPF object file")
    parser.add_argument("--program", "-p", metavar="NAME",
                        help="program to explain (required when the object has several)")
    parser.add_argument("--top", type=int, default=20, metavar="N",
                        help="show the N hottest lines (default: 20; 0 for all)")
    parser.add_argument("--cost-table", metavar="FILE",
                        help="cost table (TOML) written by `bpflint calibrate`")


def run(args: argparse.Namespace) -> int:
    obj = load_object(args.object)
    program: Program | None
    if args.program is None:
        if len(obj.programs) != 1:
            names = ", ".join(p.name for p in obj.programs) or "none"
            raise BpfLintError(f"{args.object}: name a program with --program ({names})")
        program = obj.programs[0]
    else:
        program = find_program(obj.programs, args.program, args.object)
    result = analyze_program(obj, program, load_table(args.cost_table), AnalysisOptions())
    # source paths as every report names them: relative to the repository ("parse.h"
    # under the object's project, not BTF's "././parse.h")
    namer = PathNamer(gitref.repo_root(Path.cwd()) or Path.cwd())
    sys.stdout.write(render(namer.result(result), args.top))
    return 0


def render(result: ProgramResult, top: int) -> str:
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
    lines = result.line_costs[:top] if top > 0 else result.line_costs
    if not lines:
        out.append("  (no source line information: compile with -g for a per-line view)"
                   if result.bounded else "")
        return "\n".join(out) + "\n"
    total = result.insns_max or 1
    out.append("")
    out.append(f"{'INSNS':>10} {'%':>6} {'NS':>10}  LOCATION")
    for lc in lines:
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

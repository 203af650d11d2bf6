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
import sys
from collections.abc import Mapping
from pathlib import Path

from bpflint.budget import gitref
from bpflint.budget.config import load_config
from bpflint.commands import COMMANDS
from bpflint.commands.analyze import (
    add_cpu_caches_argument,
    add_may_goto_argument,
    add_set_argument,
    cpu_caches,
    load_table,
    may_goto_model,
    note_line,
    printable,
    set_pins,
    write_output,
)
from bpflint.commands.names import find_program
from bpflint.cost.engine import analyze_program
from bpflint.cost.model import CostTable
from bpflint.cost.options import AnalysisOptions
from bpflint.errors import BpfLintError
from bpflint.obj.loader_vars import apply_pins, loader_vars, pin, unknown_pin_notes
from bpflint.obj.model import BpfObject, Program
from bpflint.obj.reader import load_object
from bpflint.report import html
from bpflint.report.paths import PathNamer
from bpflint.report.paths import where as place
from bpflint.report.text import hottest_lines
from bpflint.results import AnalysisReport, LoaderSetting, ProgramResult

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
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="budget file whose [rodata] pins, [analyze] may_goto and "
                             "cpu_caches apply (default: none)")
    add_may_goto_argument(parser)
    add_cpu_caches_argument(parser)
    add_set_argument(parser)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config) if args.config is not None else None
    configured = config.rodata if config is not None else ()
    pins = (*configured, *set_pins(args))
    options = AnalysisOptions(may_goto=may_goto_model(args, config.may_goto if config
                                                      else None))
    obj = load_object(args.object)
    for note in unknown_pin_notes(pins, {var.name for _, var in loader_vars(obj)}):
        print(note_line(note), file=sys.stderr)
    obj = apply_pins(obj, pins)
    program: Program | None
    table = load_table(args.cost_table,
                       cpu_caches(args, config.cpu_caches if config else None))
    if args.format == "html":
        chosen = list(obj.programs) if args.program is None else \
            [find_program(obj.programs, args.program, args.object)]
        results = tuple(analyze_program(obj, p, table, options) for p in chosen)
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
    result = analyze_program(obj, program, table, options)
    # source paths as every report names them: relative to the repository ("parse.h"
    # under the object's project, not BTF's "././parse.h")
    namer = PathNamer(gitref.repo_root(Path.cwd()) or Path.cwd())
    by_ns = args.by == "ns" or (args.by is None and result.ns_max is not None)
    write_output(args.output, render(namer.result(result), args.top,
                                     at_defaults(obj, program, table, result, options), by_ns))
    return 0


# explain analyses the program again once per unpinned knob it reads (to say which
# ones its worst case depends on); past this many, it only says what it assumed
MAX_ATTRIBUTED = 8


def at_defaults(obj: BpfObject, program: Program, table: CostTable, result: ProgramResult,
                options: AnalysisOptions | None = None) -> dict[str, ProgramResult]:
    """Per unpinned loader-set variable the program reads: its result with only that
    variable at the object's own value."""
    open_ = [s for s in result.loader_set if not s.pinned and s.default is not None]
    if len(open_) > MAX_ATTRIBUTED:
        return {}
    return {s.name: analyze_program(pin(obj, {s.name: (s.default, s.default)}), program,
                                    table, options or AnalysisOptions())
            for s in open_ if s.default is not None}


def render(result: ProgramResult, top: int,
           at_default: Mapping[str, ProgramResult] | None = None, by_ns: bool = False) -> str:
    out = [f"{printable(result.name)} ({result.section}, {result.type}): "
           f"{result.insn_count} instructions"]
    if result.bounded:
        out.append(f"  worst case: {result.insns_max} insns, {_ns(result.ns_max)}; "
                   f"best case: {result.insns_min} insns, {_ns(result.ns_min)}")
    else:
        out.append(f"  worst case: unbounded; best case: {result.insns_min} insns")
    for setting in result.loader_set:
        out.append(f"  {loader_line(setting, result, (at_default or {}).get(setting.name))}")
    if result.tail_call_targets:
        # the worst path runs on into these (and theirs), so its lines are theirs too
        out.append(f"  tail calls to {', '.join(printable(t) for t in result.tail_call_targets)}"
                   f": their worst case (and their tail calls') is included")
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
        at = place(lc.file, lc.line)
        if by_ns:
            share = 100.0 * lc.ns / total_ns
            out.append(f"{_ns(lc.ns):>10} {share:>5.1f}% {lc.insns:>10}  {at}")
        else:
            share = 100.0 * lc.insns / total
            out.append(f"{lc.insns:>10} {share:>5.1f}% {_ns(lc.ns):>10}  {at}")
        if lc.text:
            out.append(f"{'':>30}  {printable(lc.text.strip())}")
    return "\n".join(out) + "\n"


def loader_line(setting: LoaderSetting, result: ProgramResult,
                alt: ProgramResult | None = None) -> str:
    """What the worst case assumed of one loader-set variable the program reads, and
    (``alt``: the result with it at the object's value) what that assumption costs."""
    name = printable(setting.name)
    default = "" if setting.default is None else f", the object's default is {setting.default}"
    if setting.value is not None:
        return f"assumes {name} = {setting.value} (pinned{default})"
    if setting.pinned:
        return f"assumes {name} may be any value in {setting.lo}..{setting.hi} (pinned{default})"
    effect = ""
    if alt is not None:
        if (alt.bounded, alt.insns_max, alt.ns_max) == (result.bounded, result.insns_max,
                                                         result.ns_max):
            effect = " (the worst case is the same at that value)"
        else:
            worst = f"{alt.insns_max} insns" if alt.bounded else "unbounded"
            now = f"{result.insns_max}" if result.bounded else "unbounded"
            effect = f" (at that value the worst case is {worst}, not {now})"
    return (f"worst case assumes {name} may be any {setting.type} ({setting.lo}..{setting.hi})"
            f"{default}{effect}; pin with --set {name}=N or [rodata]")


def _ns(value: float | None) -> str:
    if value is None:
        return "- ns"
    if value >= 1000:
        return f"{value / 1000:.2f}us"
    return f"{value:.1f}ns"

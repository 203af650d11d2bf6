"""`bpflint analyze PATH...`: cost every program of the given objects and print them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bpflint import api
from bpflint.cost.model import CostTable, load_cost_table
from bpflint.errors import BpfLintError
from bpflint.report import json as json_report
from bpflint.results import AnalysisReport, ProgramResult

NAME = "analyze"
HELP = "estimate the runtime cost of every program in BPF objects"

EXIT_OK = 0
EXIT_ERROR = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="BPF object files, or directories searched for *.o")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="output format (default: text)")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="write the report to FILE instead of standard output")
    parser.add_argument("--cost-table", metavar="FILE",
                        help="cost table (TOML) written by `bpflint calibrate`")
    parser.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                        help="analyse N objects in parallel (default: 1)")


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise BpfLintError(f"--jobs must be at least 1, not {args.jobs}")
    table = load_table(args.cost_table)
    report = api.analyze_paths(args.paths, table, jobs=args.jobs)
    text = json_report.render(report) if args.format == "json" else render_table(report)
    if args.output:
        try:
            Path(args.output).write_text(text)
        except OSError as exc:
            raise BpfLintError(f"{args.output}: cannot write: {exc.strerror}") from None
    else:
        sys.stdout.write(text)
    print_diagnostics(report)
    return EXIT_ERROR if report.errors else EXIT_OK


def load_table(path: str | None) -> CostTable:
    """The cost table to price with: the given file, else the one shipped with bpflint."""
    return load_cost_table(path)


def printable(text: str) -> str:
    """Escape control characters: names read from a corrupt object may hold newlines,
    and every message and table row must stay on one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def print_diagnostics(report: AnalysisReport) -> None:
    for note in report.notes:
        print(f"bpflint: note: {printable(note)}", file=sys.stderr)
    for err in report.errors:
        print(f"bpflint: error: {printable(err.object)}: {printable(err.message)}",
              file=sys.stderr)


def _int(value: int | None) -> str:
    return "-" if value is None else str(value)


def _ns(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


_HEADER = ("OBJECT", "SECTION", "NAME", "TYPE", "INSNS", "MIN_INSNS", "MAX_INSNS",
           "MIN_NS", "MAX_NS", "BOUNDED")
_RIGHT_ALIGNED = {4, 5, 6, 7, 8}


def _row(result: ProgramResult) -> tuple[str, ...]:
    bounded = "yes" if result.bounded else "no"
    return (printable(result.object), printable(result.section), printable(result.name),
            result.type, str(result.insn_count), _int(result.insns_min), _int(result.insns_max),
            _ns(result.ns_min), _ns(result.ns_max), bounded)


def render_table(report: AnalysisReport) -> str:
    """One aligned row per program ('-' where a number was not computed), then the
    diagnostics that explain missing or unbounded costs."""
    if not report.programs:
        return "no programs found\n"
    rows = [_HEADER, *(_row(result) for result in report.programs)]
    widths = [max(len(row[col]) for row in rows) for col in range(len(_HEADER))]
    lines = []
    for row in rows:
        cells = [cell.rjust(width) if col in _RIGHT_ALIGNED else cell.ljust(width)
                 for col, (cell, width) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    diagnostics = [(result, diag) for result in report.programs for diag in result.diagnostics]
    if diagnostics:
        lines.append("")
    for result, diag in diagnostics:
        where = f" ({diag.loc.file}:{diag.loc.line})" if diag.loc else ""
        lines.append(printable(f"{result.key}: {diag.rule} {diag.name}: "
                               f"{diag.message}{where}"))
    return "\n".join(lines) + "\n"

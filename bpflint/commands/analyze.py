"""`bpflint analyze PATH...`: cost every program of the given objects and print them."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bpflint import api
from bpflint.cache import ResultCache, default_cache_dir
from bpflint.commands import COMMANDS
from bpflint.cost import may_goto
from bpflint.cost.model import CPU_CACHES, DEFAULT_CPU_CACHES, CostTable
from bpflint.cost.options import AnalysisOptions
from bpflint.cost.table_file import load_cost_table
from bpflint.errors import BpfLintError, printable
from bpflint.obj.loader_vars import WARNING, RodataPin, parse_value
from bpflint.obj.reader import ReadLimits
from bpflint.report import json as json_report
from bpflint.report.paths import where as place
from bpflint.results import AnalysisReport, ProgramResult

if TYPE_CHECKING:  # only for annotations: the witness and the HTML report load on demand,
    # and the budget file's reader (check's) is not analyze's
    from bpflint.budget.config import Limits
    from bpflint.report.html import WitnessView
    from bpflint.witness.runner import Outcome

NAME = "analyze"
HELP = COMMANDS[NAME]

EXIT_OK = 0
EXIT_ERROR = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="BPF object files, or directories searched for *.o")
    parser.add_argument("--format", choices=("text", "json", "html"), default="text",
                        help="output format (default: text; html: a self-contained cost "
                             "map of every program, best with --output FILE)")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="write the report to FILE instead of standard output")
    parser.add_argument("--cost-table", metavar="FILE",
                        help="cost table (TOML) written by `bpflint calibrate`")
    parser.add_argument("--witness", action="store_true",
                        help="search and run a worst-case input per program and report "
                             "how much of max it reaches (docs/witness.md)")
    parser.add_argument("--witness-seconds", type=float, default=10.0, metavar="S",
                        help="witness search time per program (default 10)")
    add_run_arguments(parser)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Parallelism, result cache and analysis limits: analyze, check and baseline."""
    parser.add_argument("--jobs", "-j", type=int, metavar="N",
                        help="compile and analyse N files in parallel (default: all cores)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--cache-dir", type=Path, metavar="DIR",
                       help="result cache directory (default: $XDG_CACHE_HOME/bpflint, "
                            "else ~/.cache/bpflint)")
    where.add_argument("--no-cache", action="store_true",
                       help="analyse every object; neither read nor write the result cache")
    parser.add_argument("--max-steps", type=int, metavar="N",
                        help="analysis steps per program before it is reported as "
                             f"BPF006 (default: {AnalysisOptions().max_steps})")
    parser.add_argument("--max-seconds", type=float, metavar="S",
                        help="CPU seconds per program before it is reported as "
                             f"BPF006 (default: {AnalysisOptions().max_seconds:g})")
    add_may_goto_argument(parser)
    add_cpu_caches_argument(parser)
    add_set_argument(parser)


def add_may_goto_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--may-goto", choices=may_goto.MODELS,
                        help="how the kernel bounds may_goto (cond_break, can_loop) loops: "
                             "'timed', 250 ms per frame (Linux >= 6.15 with the x86-64 or "
                             "arm64 JIT), 'count', 8M iterations per frame (older "
                             "kernels, no JIT), or 'any', the larger of the two bounds "
                             "(sound on every kernel) (default: [analyze] may_goto, else "
                             f"{may_goto.DEFAULT_MODEL})")


def may_goto_model(args: argparse.Namespace, configured: str | None = None) -> str:
    """--may-goto, else the budget file's [analyze] may_goto, else the default."""
    return getattr(args, "may_goto", None) or configured or may_goto.DEFAULT_MODEL


def add_cpu_caches_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cpu-caches", choices=CPU_CACHES,
                        help="what ns.max assumes about the caches hash maps sit in: "
                             "'cold', the map's lines evicted by other work (sound for a "
                             "busy hook), or 'hot', a map used again and again (typical, "
                             "not a bound) (default: [analyze] cpu_caches, else "
                             f"{DEFAULT_CPU_CACHES})")


def cpu_caches(args: argparse.Namespace, configured: str | None = None) -> str:
    """--cpu-caches, else the budget file's [analyze] cpu_caches, else the default."""
    return getattr(args, "cpu_caches", None) or configured or DEFAULT_CPU_CACHES


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="rodata_set", action="append", default=[],
                        metavar="NAME=VALUE",
                        help="pin a loader-set (const volatile) variable to a value or a "
                             "range LO..HI in every object, repeatable (overrides [rodata]); "
                             "unpinned ones may take any value of their type")


def set_pins(args: argparse.Namespace) -> tuple[RodataPin, ...]:
    """The --set options, parsed; a malformed one is a usage error."""
    pins = []
    for text in getattr(args, "rodata_set", None) or ():
        name, equals, value = text.partition("=")
        name = name.strip()
        if not equals or not name:
            raise BpfLintError(f"--set {text}: expected NAME=VALUE (VALUE an integer or "
                               "LO..HI)")
        value = value.strip()
        if value in ("true", "false"):
            value = str(int(value == "true"))
        try:
            lo, hi = parse_value(value)
        except ValueError as exc:
            raise BpfLintError(f"--set {text}: {exc}") from None
        pins.append(RodataPin(name, lo, hi, f"--set {name}"))
    return tuple(pins)


@dataclass(frozen=True)
class RunSettings:
    """How to analyse: in how many processes, with which limits, cached where."""

    jobs: int
    options: AnalysisOptions
    limits: ReadLimits
    cache: ResultCache | None


def run_settings(args: argparse.Namespace, configured: Limits | None = None,
                 tail_calls: Mapping[str, tuple[str, ...]] | None = None,
                 rodata: Sequence[RodataPin] = (),
                 may_goto_configured: str | None = None) -> RunSettings:
    """Settings from the command line, else the budget file's [limits], else defaults."""
    jobs = api.default_jobs() if args.jobs is None else args.jobs
    if jobs < 1:
        raise BpfLintError(f"--jobs must be at least 1, not {jobs}")
    if args.max_steps is not None and args.max_steps < 1:
        raise BpfLintError(f"--max-steps must be at least 1, not {args.max_steps}")
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise BpfLintError(f"--max-seconds must be more than zero, not {args.max_seconds:g}")
    chosen = {name: value for name, value in
              (dataclasses.asdict(configured) if configured else {}).items()
              if value is not None}
    chosen.update({name: getattr(args, name) for name in ("max_steps", "max_seconds")
                   if getattr(args, name) is not None})
    options = AnalysisOptions(**{k: v for k, v in chosen.items()
                                 if k in ("max_steps", "max_seconds")},
                              tail_call_targets=dict(tail_calls or {}),
                              rodata=(*rodata, *set_pins(args)),
                              may_goto=may_goto_model(args, may_goto_configured))
    limits = ReadLimits(**{k: v for k, v in chosen.items()
                           if k in ("max_object_bytes", "max_btf_bytes")})
    cache = None if args.no_cache else \
        ResultCache(args.cache_dir or default_cache_dir(os.environ))
    return RunSettings(jobs, options, limits, cache)


def run(args: argparse.Namespace) -> int:
    settings = run_settings(args)
    table = load_table(args.cost_table, cpu_caches(args))
    report = api.analyze_paths(args.paths, table, settings.options, jobs=settings.jobs,
                               cache=settings.cache, limits=settings.limits)
    found = None
    if args.witness:
        from bpflint.witness import attach

        found = attach.outcomes(report, table, args.witness_seconds)
    if args.format == "json":
        text = json_report.render(report)
        if found is not None:
            text = attach.add_to_json(text, found)
    elif args.format == "html":
        from bpflint.report import html  # only when asked: the command starts faster

        text = html.render_analysis(
            report, witnesses=None if found is None else _html_views(found))
    else:
        text = render_table(report)
        if found is not None:
            text += attach.text_lines(found)
    write_output(args.output, text)
    print_diagnostics(report)
    return EXIT_ERROR if report.errors else EXIT_OK


def _html_views(found: dict[tuple[str, str, str], Outcome | str]
                ) -> dict[tuple[str, str, str], WitnessView]:
    """What the HTML cost map shows of each program's witness (attach.outcomes): its
    figures, and the lines its run executed next to the worst path."""
    from bpflint.report.html import WitnessView

    out: dict[tuple[str, str, str], WitnessView] = {}
    for key, got in found.items():
        if isinstance(got, str):
            out[key] = WitnessView(None, None, None, got)
            continue
        search = got.search
        if search is None or search.witness is None:
            why = got.skipped if search is None else search.note
            out[key] = WitnessView(None, None, got.result.insns_max, why)
            continue
        w = search.witness
        out[key] = WitnessView(w.reached, w.executed_insns, w.insns_max, search.note,
                               {(f, n): c for f, n, c in search.lines}, search.method)
    return out


def write_output(output: str | None, text: str) -> None:
    """The report to the file named by --output, else to standard output."""
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise BpfLintError(f"{output}: cannot write: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)


def load_table(path: str | None, caches: str = DEFAULT_CPU_CACHES) -> CostTable:
    """The cost table to price with: the given file, else the one shipped with bpflint;
    ``caches``: what its max assumes about CPU caches (CPU_CACHES)."""
    return load_cost_table(path, caches)


def note_line(note: str) -> str:
    """``bpflint: note: ...``, or ``bpflint: warning: ...`` for a note that is one."""
    if note.startswith(WARNING):
        return f"bpflint: {printable(note)}"
    return f"bpflint: note: {printable(note)}"


def print_diagnostics(report: AnalysisReport) -> None:
    for note in report.notes:
        print(note_line(note), file=sys.stderr)
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
        # the object's path, not its bare name: bpf_lxc.o exists in many directories
        obj = os.path.normpath(result.object)
        where = f" ({place(os.path.normpath(diag.loc.file), diag.loc.line)})" \
            if diag.loc and diag.loc.file else ""
        lines.append(printable(f"{obj}:{result.section}:{result.name}: {diag.rule} "
                               f"{diag.name}: {diag.message}{where}"))
    return "\n".join(lines) + "\n"

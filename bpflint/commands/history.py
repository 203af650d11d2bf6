"""`bpflint history`: how each program's worst case moved across the commits of the
baseline file (the trend `check` compares one step of)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bpflint.budget.config import find_config, load_config
from bpflint.budget.history import DEFAULT_LIMIT, History, Point, baseline_history
from bpflint.budget.units import format_ns
from bpflint.commands import COMMANDS
from bpflint.commands.analyze import write_output
from bpflint.errors import BpfLintError, printable

NAME = "history"
HELP = COMMANDS[NAME]

SPARKS = "▁▂▃▄▅▆▇█"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="budget file naming the baseline (default: ./bpfbudget.toml)")
    parser.add_argument("--baseline", type=Path, metavar="FILE",
                        help="the baseline file (default: the config's)")
    parser.add_argument("--limit", "-n", type=int, default=DEFAULT_LIMIT, metavar="N",
                        help=f"the last N commits of it (default: {DEFAULT_LIMIT})")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="output format (default: text)")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="write the report to FILE instead of standard output")


def run(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise BpfLintError(f"--limit must be at least 1, not {args.limit}")
    path = args.baseline
    if path is None:
        config = load_config(find_config(args.config))
        if config.baseline is None:
            raise BpfLintError(f"{config.path}: no baseline file: set baseline = \"...\" or "
                               "pass --baseline FILE")
        path = config.baseline
    if not path.is_file():
        raise BpfLintError(f"{path}: no such baseline file")
    history = baseline_history(path, args.limit)
    if history is None:
        raise BpfLintError(f"{path}: no git history (not committed, or not in a git "
                           "repository)")
    write_output(args.output, render_json(history) if args.format == "json"
                 else render_text(history))
    return 0


def sparkline(values: list[float | None]) -> str:
    """One character per value, scaled between the smallest and the largest; '·'
    where there is none (unbounded, or not in that commit)."""
    known = [v for v in values if v is not None]
    if not known:
        return "·" * len(values)
    low, high = min(known), max(known)
    span = high - low
    return "".join("·" if v is None else SPARKS[0 if span == 0 else
                                                round((v - low) / span * (len(SPARKS) - 1))]
                   for v in values)


def _series(history: History, points: tuple[Point, ...], ns: bool) -> list[float | None]:
    at = {p.revision.commit: p for p in points}
    out: list[float | None] = []
    for revision in history.revisions:
        point = at.get(revision.commit)
        value = None if point is None else point.ns_max if ns else point.insns_max
        out.append(None if value is None else float(value))
    return out


def _change(values: list[float | None], ns: bool) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "unbounded"
    first, last = known[0], known[-1]
    shown = (format_ns(first), format_ns(last)) if ns else (f"{first:.0f}", f"{last:.0f}")
    pct = f" ({(last - first) / first * 100:+.1f}%)" if first else ""
    return f"{shown[0]} -> {shown[1]}{pct}"


def render_text(history: History) -> str:
    revisions = history.revisions
    lines = [f"{history.baseline}: {len(revisions)} commit(s), "
             f"{revisions[0].date} {revisions[0].commit[:8]} to "
             f"{revisions[-1].date} {revisions[-1].commit[:8]}", ""]
    width = max([len(printable(key)) for key in history.programs] + [7])
    lines.append(f"{'PROGRAM'.ljust(width)}  {'NS.MAX'.ljust(len(revisions))}  CHANGE")
    for key, points in history.programs.items():
        ns = _series(history, points, True)
        insns = _series(history, points, False)
        lines.append(f"{printable(key).ljust(width)}  {sparkline(ns)}  {_change(ns, True)}; "
                     f"insns {_change(insns, False)}")
    if history.skipped:
        lines.append("")
        lines.append(f"not a readable baseline at: {', '.join(history.skipped)}")
    return "\n".join(lines) + "\n"


def render_json(history: History) -> str:
    doc: dict[str, Any] = {
        "baseline": str(history.baseline),
        "commits": [{"commit": r.commit, "date": r.date, "subject": r.subject}
                    for r in history.revisions],
        "programs": {key: [{"commit": p.revision.commit, "bounded": p.bounded,
                            "insns_max": p.insns_max, "ns_max": p.ns_max} for p in points]
                     for key, points in history.programs.items()},
        "skipped": list(history.skipped),
    }
    return json.dumps(doc, indent=2) + "\n"

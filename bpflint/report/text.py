"""Text report for people: an aligned table, worst first, then why each failure failed."""

from __future__ import annotations

from collections.abc import Sequence

from bpflint.budget.gate import GateReport, ProgramVerdict
from bpflint.budget.units import format_ns
from bpflint.report.paths import where
from bpflint.results import LineCost, ProgramResult

HOT_LINES = 3

_COLOURS = {"FAIL": "\x1b[1;31m", "WARN": "\x1b[33m", "PASS": "\x1b[32m", "GONE": "\x1b[2m"}
_RESET = "\x1b[0m"
_LABEL = {"fail": "FAIL", "warn": "WARN", "pass": "PASS", "removed": "GONE"}
_HEADER = ("VERDICT", "PROGRAM", "BUDGET", "MIN", "MAX", "BASELINE", "DELTA")


def hottest_lines(result: ProgramResult, count: int = HOT_LINES,
                  by_ns: bool = False) -> list[LineCost]:
    """The lines that cost most on the worst path: line_costs is already hottest first;
    without it, the worst path's entries summed per line. ``by_ns``: the lines that
    take most time on the path with the most ns."""
    if by_ns and result.worst_path_ns:
        return sorted(result.worst_path_ns,
                      key=lambda c: (-c.ns, -c.insns, c.file, c.line))[:count]
    if result.line_costs:
        return list(result.line_costs[:count])
    totals: dict[tuple[str, int], LineCost] = {}
    for cost in result.worst_path:
        old = totals.get((cost.file, cost.line))
        totals[(cost.file, cost.line)] = cost if old is None else LineCost(
            cost.file, cost.line, old.insns + cost.insns, old.ns + cost.ns, old.text or cost.text)
    return sorted(totals.values(), key=lambda c: (-c.insns, -c.ns, c.file, c.line))[:count]


def about_time(verdict: ProgramVerdict) -> bool:
    """Whether the verdict's failures are about time only: then the path with the
    most ns explains them (where an instruction count fails too, the path with the
    most instructions does)."""
    failing = [f for f in verdict.findings if f.level != "note"
               and f.rule in ("BPF001", "BPF002")]
    return bool(failing) and all(f.by_ns for f in failing)


def _insns(value: int | None) -> str:
    return "-" if value is None else f"{value} insns"


def _ns(value: float | None) -> str:
    return "-" if value is None else format_ns(value)


def _delta(delta: float | None, before: float | None, as_ns: bool) -> str:
    if delta is None or before is None:
        return ""
    amount = (f"{'+' if delta >= 0 else '-'}{format_ns(abs(delta))}" if as_ns
              else f"{int(delta):+d}")
    if before == 0:
        return amount
    return f"{amount} ({delta / before * 100:+.1f}%)"


def _verdict_cell(verdict: ProgramVerdict, warn_only: bool) -> str:
    label = _LABEL[verdict.status]
    return f"{label} (warn-only)" if warn_only and verdict.status == "fail" else label


def _rows(verdict: ProgramVerdict, warn_only: bool) -> list[tuple[str, ...]]:
    """Two rows per program: worst-case instructions, then worst-case time."""
    result, before, budget = verdict.result, verdict.baseline, verdict.budget
    name = verdict.key
    if verdict.change == "new":
        name += " (new)"
    elif verdict.change == "renamed":
        name += f" (renamed from {verdict.renamed_from})"
    elif verdict.change == "removed":
        name += " (removed)"
    cell = _verdict_cell(verdict, warn_only)
    budget_insns = _insns(budget.max_insns) if budget else "none"
    budget_ns = (budget.max_time or "-") if budget else ""
    if result is None:
        return [(cell, name, "", "", "", _insns(before.insns_max if before else None), ""),
                ("", "", "", "", "", _ns(before.ns_max if before else None), "")]
    max_insns = _insns(result.insns_max) if result.bounded else "unbounded"
    max_ns = _ns(result.ns_max) if result.bounded else "unbounded"
    return [
        (cell, name, budget_insns, _insns(result.insns_min), max_insns,
         _insns(before.insns_max) if before else "",
         _delta(verdict.insns_delta, before.insns_max if before else None, as_ns=False)),
        ("", "", budget_ns, _ns(result.ns_min), max_ns,
         _ns(before.ns_max) if before else "",
         _delta(verdict.ns_delta, before.ns_max if before else None, as_ns=True)),
    ]


def _table(rows: Sequence[tuple[str, ...]], colour: bool) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = []
    for row in rows:
        cells = [value.ljust(width) for value, width in zip(row, widths, strict=True)]
        label = row[0].split(" ")[0]
        if colour and label in _COLOURS:
            cells[0] = f"{_COLOURS[label]}{cells[0]}{_RESET}"
        lines.append("  ".join(cells).rstrip())
    return lines


def _details(verdict: ProgramVerdict) -> list[str]:
    lines = [f"{_LABEL[verdict.status]} {verdict.key}"]
    for finding in verdict.findings:
        if finding.level == "note":
            continue
        place = f" [{where(finding.loc.file, finding.loc.line)}]" if finding.loc else ""
        lines.append(f"  {finding.rule} {finding.name}: {finding.message}{place}")
    by_ns = about_time(verdict)
    hot = hottest_lines(verdict.result, by_ns=by_ns) if verdict.result is not None else []
    if hot:
        lines.append("  hottest source lines on the worst path"
                     f"{' by time' if by_ns else ''}:")
        places = [where(c.file, c.line) for c in hot]
        width = max(len(place) for place in places)
        for place, cost in zip(places, hot, strict=True):
            text = f"  {cost.text.strip()}" if cost.text.strip() else ""
            lines.append(f"    {place.ljust(width)}  "
                         f"{cost.insns:>8} insns  {format_ns(cost.ns):>9}{text}")
    return lines


def render(report: GateReport, *, colour: bool = False) -> str:
    rows: list[tuple[str, ...]] = [_HEADER]
    for verdict in report.programs:
        rows.extend(_rows(verdict, report.warn_only))
    lines = _table(rows, colour) if report.programs else ["  no BPF programs found"]
    for verdict in report.programs:
        if verdict.status in ("fail", "warn"):
            lines.append("")
            lines.extend(_details(verdict))
    if report.accept_hint:
        lines.append("")
        lines.append(f"hint: {report.accept_hint}")
    lines.append("")
    lines.append(summary(report))
    return "\n".join(lines) + "\n"


def summary(report: GateReport) -> str:
    live = [v for v in report.programs if v.result is not None]
    failed = len(report.failures)
    against = f" against {report.baseline_source}" if report.baseline_source else ""
    if report.errors:
        # the errors themselves go to stderr, one line each (commands/check.py)
        named = ", ".join(err.object for err in report.errors[:3])
        more = f" and {len(report.errors) - 3} more" if len(report.errors) > 3 else ""
        return f"bpflint: ERROR: {len(report.errors)} object(s) could not be analysed: " \
               f"{named}{more}"
    if failed:
        tail = " (warn-only: not failing the build)" if report.warn_only else ""
        return (f"bpflint: FAIL: {failed} of {len(live)} program(s) over budget or "
                f"regressed{against}{tail}")
    return f"bpflint: PASS: {len(live)} program(s) within budget{against}"


def render_explain(report: GateReport) -> str:
    """--explain-match: which budget each program got, and why."""
    lines = []
    for verdict in report.programs:
        if verdict.match is None:
            continue
        if verdict.match.budget is None:
            lines.append(f"{verdict.key}: no budget matches")
        else:
            lines.append(f"{verdict.key}: {verdict.match.budget.label}: {verdict.match.reason}")
    return "\n".join(lines) + ("\n" if lines else "")

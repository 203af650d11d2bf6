"""Markdown for a PR comment or a job summary: before / after / delta per program.

The first line is a fixed marker so a CI step can find and update its own comment.
"""

from __future__ import annotations

from bpflint.budget.gate import GateReport, ProgramVerdict
from bpflint.budget.units import format_ns
from bpflint.report.paths import where
from bpflint.report.text import about_time, hottest_lines

MARKER = "<!-- bpflint-report -->"
HEADING = "### bpflint: BPF runtime budget"

_ICON = {"fail": "\u274c", "warn": "\u26a0\ufe0f", "pass": "\u2705", "removed": "\u2796"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _cost(insns: int | None, ns: float | None, bounded: bool = True) -> str:
    if not bounded:
        return "unbounded"
    parts = [f"{insns} insns" if insns is not None else "", format_ns(ns) if ns is not None else ""]
    return " / ".join(part for part in parts if part) or "-"


def _marker(delta: float) -> str:
    return "\u25b2" if delta > 0 else "\u25bc" if delta < 0 else "="


def _delta(verdict: ProgramVerdict) -> str:
    if verdict.change == "new":
        return "new"
    if verdict.change == "removed":
        return "removed"
    parts = []
    before = verdict.baseline
    if verdict.insns_delta is not None and before is not None and before.insns_max is not None:
        pct = f" ({verdict.insns_delta / before.insns_max * 100:+.1f}%)" if before.insns_max else ""
        parts.append(f"{_marker(verdict.insns_delta)} {verdict.insns_delta:+d} insns{pct}")
    if verdict.ns_delta is not None:
        sign = "+" if verdict.ns_delta >= 0 else "-"
        parts.append(f"{_marker(verdict.ns_delta)} {sign}{format_ns(abs(verdict.ns_delta))}")
    text = " / ".join(parts)
    if verdict.change == "renamed":
        text = f"renamed from `{verdict.renamed_from}` {text}".strip()
    return text


def _row(verdict: ProgramVerdict) -> str:
    result, before, budget = verdict.result, verdict.baseline, verdict.budget
    after = "-" if result is None else _cost(result.insns_max, result.ns_max, result.bounded)
    before_text = "-" if before is None else _cost(before.insns_max, before.ns_max, before.bounded)
    cells = [_ICON[verdict.status], f"`{verdict.key}`",
             budget.limit_text if budget else "none", before_text, after, _delta(verdict)]
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _headline(report: GateReport) -> str:
    live = sum(1 for v in report.programs if v.result is not None)
    if report.errors:
        return f"{_ICON['fail']} {len(report.errors)} object(s) could not be analysed"
    failed = len(report.failures)
    if failed:
        suffix = " (warn-only)" if report.warn_only else ""
        return f"{_ICON['fail']} {failed} of {live} program(s) over budget or regressed{suffix}"
    return f"{_ICON['pass']} {live} program(s) within budget"


def render(report: GateReport) -> str:
    lines = [MARKER, HEADING, "", _headline(report)]
    if report.baseline_source:
        lines.append(f"Compared with {report.baseline_source}.")
    lines += ["", "| | Program | Budget | Before | After | Delta |",
              "|---|---|---|---|---|---|"]
    lines += [_row(verdict) for verdict in report.programs]
    for verdict in report.failures:
        lines += ["", f"<details><summary>{_ICON['fail']} <code>{verdict.key}</code></summary>",
                  ""]
        lines += [f"- **{f.rule} {f.name}**: {f.message}" for f in verdict.findings
                  if f.level != "note"]
        by_ns = about_time(verdict)
        hot = hottest_lines(verdict.result, by_ns=by_ns) if verdict.result is not None else []
        if hot:
            lines += ["", f"Hottest source lines on the worst path{' by time' * by_ns}:", "",
                      "| Line | Insns | Time | Source |", "|---|---|---|---|"]
            lines += ["| " + " | ".join(_cell(cell) for cell in (
                f"`{where(c.file, c.line)}`", str(c.insns), format_ns(c.ns),
                f"`{c.text.strip()}`" if c.text.strip() else "")) + " |" for c in hot]
        lines += ["", "</details>"]
    if report.accept_hint:
        lines += ["", f"_{_cell(report.accept_hint[0].upper() + report.accept_hint[1:])}._"]
    for err in report.errors:
        lines.append(f"- error: `{err.object}`: {_cell(err.message)}")
    return "\n".join(lines) + "\n"

"""GitHub Actions workflow commands (annotations) and the job summary.

Escaping follows the runner's rules: in the message, % CR LF; in properties, also
':' and ','. Annotations are capped because the runner itself keeps only a few per
step; a final notice says how many were left out.
"""

from __future__ import annotations

import os
from pathlib import Path

from bpflint.budget.gate import GateReport
from bpflint.errors import BpfLintError
from bpflint.report import markdown
from bpflint.report.sarif import locate

MAX_ANNOTATIONS = 50
_COMMAND = {"error": "error", "warning": "warning", "note": "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(kind: str, message: str, **properties: str | int) -> str:
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    return f"::{kind} {props}::{escape_data(message)}" if props else \
        f"::{kind}::{escape_data(message)}"


def render(report: GateReport, root: Path, limit: int = MAX_ANNOTATIONS) -> str:
    lines = []
    # Failures first (the report is sorted worst first), notes last, so a cap drops
    # the least important ones.
    ordered = sorted(
        ((verdict.result, finding) for verdict in report.programs
         if verdict.result is not None for finding in verdict.findings),
        key=lambda item: ("error", "warning", "note").index(item[1].level))
    for result, finding in ordered[:limit]:
        where = locate(finding.loc, result.object, root)
        properties: dict[str, str | int] = {"file": where.path}
        if where.line is not None:
            properties["line"] = where.line
        properties["title"] = f"{finding.rule} {finding.name}: {result.name}"
        lines.append(_command(_COMMAND[finding.level], finding.message, **properties))
    for err in report.errors:
        lines.append(_command("error", err.message, title="bpflint: object not analysed",
                              file=locate(None, err.object, root).path))
    if len(ordered) > limit:
        lines.append(_command("notice", f"bpflint: {len(ordered) - limit} more finding(s) not "
                                        "annotated; see the job summary or the SARIF file"))
    return "\n".join(lines) + ("\n" if lines else "")


def append_step_summary(report: GateReport) -> None:
    """Append the Markdown table to $GITHUB_STEP_SUMMARY when the runner provides it."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(markdown.render(report))
    except OSError as exc:
        raise BpfLintError(f"{target}: cannot append the job summary: "
                           f"{exc.strerror or exc}") from None

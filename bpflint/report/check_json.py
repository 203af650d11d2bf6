"""`bpflint check --format json`: the design.md document plus budget, baseline, verdict."""

from __future__ import annotations

import json
from typing import Any

from bpflint.budget.baseline import BaselineEntry
from bpflint.budget.gate import Finding, GateReport, ProgramVerdict
from bpflint.report.json import SCHEMA_VERSION, program_to_json, table_to_json


def _baseline(entry: BaselineEntry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {"key": entry.key, "bounded": entry.bounded,
            "insns": {"min": entry.insns_min, "max": entry.insns_max},
            "ns": {"min": entry.ns_min, "max": entry.ns_max}}


def _finding(finding: Finding) -> dict[str, Any]:
    source = None if finding.loc is None else {"file": finding.loc.file, "line": finding.loc.line}
    return {"rule": finding.rule, "name": finding.name, "level": finding.level,
            "message": finding.message, "source": source}


def _verdict_fields(verdict: ProgramVerdict) -> dict[str, Any]:
    budget = verdict.budget
    return {
        "key": verdict.key,
        "budget": None if budget is None else {
            "number": budget.number, "line": budget.line, "match": dict(budget.matchers),
            "max_insns": budget.max_insns, "max_ns": budget.max_ns,
            "max_time": budget.max_time,
            "reason": verdict.match.reason if verdict.match else "",
        },
        "baseline": _baseline(verdict.baseline),
        "change": verdict.change,
        "renamed_from": verdict.renamed_from,
        "delta": {"insns": verdict.insns_delta, "ns": verdict.ns_delta},
        "verdict": verdict.status,
        "findings": [_finding(finding) for finding in verdict.findings],
    }


def to_json(report: GateReport) -> dict[str, Any]:
    programs = []
    removed = []
    for verdict in report.programs:
        if verdict.result is None:
            removed.append(_verdict_fields(verdict))
        else:
            programs.append({**program_to_json(verdict.result), **_verdict_fields(verdict)})
    return {
        "version": SCHEMA_VERSION,
        "verdict": report.verdict,
        "exit_code": report.exit_code,
        "warn_only": report.warn_only,
        "baseline": report.baseline_source,
        "programs": programs,
        "removed": removed,
        "errors": [{"object": err.object, "message": err.message} for err in report.errors],
        "notes": list(report.notes),
        "cost_table": table_to_json(report.cost_table),
    }


def render(report: GateReport) -> str:
    return json.dumps(to_json(report), indent=2) + "\n"

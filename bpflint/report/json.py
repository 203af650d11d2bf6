"""The JSON document of design.md ("version": 1), from analysis results.

Names and meanings of the contract's keys are fixed; extra keys may be added.
Anything not computed is null, never a placeholder number.
"""

from __future__ import annotations

import json
from typing import Any

from bpflint.results import (
    AnalysisReport,
    Diagnostic,
    LineCost,
    LoaderSetting,
    ProgramResult,
    SourceLoc,
    TableInfo,
)

SCHEMA_VERSION = 1


def _source(loc: SourceLoc | None) -> dict[str, Any] | None:
    return None if loc is None else {"file": loc.file, "line": loc.line}


def _line_cost(cost: LineCost) -> dict[str, Any]:
    return {"file": cost.file, "line": cost.line, "insns": cost.insns, "ns": cost.ns,
            "text": cost.text}


def _diagnostic(diag: Diagnostic) -> dict[str, Any]:
    return {"rule": diag.rule, "name": diag.name, "message": diag.message,
            "source": _source(diag.loc),
            # every place a finding folded from many (BPF005's call sites), else []
            "related": [_source(loc) for loc in diag.related]}


def _loader_setting(setting: LoaderSetting) -> dict[str, Any]:
    """value: the pinned value, else null (any value in range); range: what the
    results assume; default: the object's own value."""
    return {"name": setting.name, "type": setting.type, "value": setting.value,
            "range": [setting.lo, setting.hi], "default": setting.default,
            "pinned": setting.pinned}


def program_to_json(result: ProgramResult) -> dict[str, Any]:
    return {
        "object": result.object,
        "section": result.section,
        "name": result.name,
        "type": result.type,
        "bounded": result.bounded,
        "insns": {"min": result.insns_min, "max": result.insns_max},
        "ns": {"min": result.ns_min, "max": result.ns_max},
        "source": _source(result.source),
        "worst_path": [_line_cost(cost) for cost in result.worst_path],
        "worst_path_ns": [_line_cost(cost) for cost in result.worst_path_ns],
        "insn_count": result.insn_count,
        "diagnostics": [_diagnostic(diag) for diag in result.diagnostics],
        "tail_call_targets": list(result.tail_call_targets),
        "warnings": list(result.warnings),
        "loader_set": [_loader_setting(setting) for setting in result.loader_set],
    }


def table_to_json(info: TableInfo | None) -> dict[str, Any] | None:
    """The cost table's provenance; cpu_caches: what ns.max assumed about the caches
    hash maps sit in ("cold": sound for a busy hook, "hot": typical)."""
    if info is None:
        return None
    return {"path": info.path, "kernel": info.kernel, "cpu": info.cpu, "date": info.date,
            "cpu_caches": info.cpu_caches}


def report_to_json(report: AnalysisReport) -> dict[str, Any]:
    return {
        "version": SCHEMA_VERSION,
        "programs": [program_to_json(result) for result in report.programs],
        "errors": [{"object": err.object, "message": err.message} for err in report.errors],
        "notes": list(report.notes),
        "cost_table": table_to_json(report.cost_table),
    }


def render(report: AnalysisReport) -> str:
    """The report, one program, error or note per line: indenting every nested value
    takes json's pure-Python encoder, several times slower than its C one, which
    writes each line here (a warm run over hundreds of objects spent most of its
    time indenting)."""
    doc = report_to_json(report)
    parts = [f'{{\n  "version": {json.dumps(doc["version"])},']
    for name in ("programs", "errors", "notes"):
        items = doc[name]
        end = ","
        if not items:
            parts.append(f'  "{name}": []{end}')
            continue
        parts.append(f'  "{name}": [')
        parts.append(",\n".join("    " + json.dumps(item) for item in items))
        parts.append(f"  ]{end}")
    parts.append(f'  "cost_table": {json.dumps(doc["cost_table"])}')
    parts.append("}")
    return "\n".join(parts) + "\n"

"""``analyze --witness``: a witness object beside every program of a report."""

from __future__ import annotations

import json
from typing import Any

from bpflint.cost.model import CostTable
from bpflint.errors import BpfLintError
from bpflint.obj.model import BpfObject
from bpflint.obj.reader import load_object
from bpflint.results import AnalysisReport
from bpflint.witness.runner import Outcome, witness_program


def outcomes(report: AnalysisReport, table: CostTable, seconds: float
             ) -> dict[tuple[str, str, str], Outcome | str]:
    """(object, section, name) -> the program's witness outcome, or why there is none."""
    objects: dict[str, BpfObject | str] = {}
    out: dict[tuple[str, str, str], Outcome | str] = {}
    for result in report.programs:
        key = (result.object, result.section, result.name)
        obj = objects.get(result.object)
        if obj is None:
            try:
                obj = load_object(result.object)
            except BpfLintError as exc:
                obj = str(exc)
            objects[result.object] = obj
        if isinstance(obj, str):
            out[key] = obj
            continue
        program = next((p for p in obj.programs if p.name == result.name and
                        p.section == result.section), None)
        if program is None:
            out[key] = "program not found in the object"
            continue
        out[key] = witness_program(obj, program, table, seconds=seconds, result=result)
    return out


def to_json(found: Outcome | str) -> dict[str, Any]:
    if isinstance(found, str):
        return {"reached": None, "executed_insns": None, "note": found}
    return found.to_json()


def add_to_json(text: str, found: dict[tuple[str, str, str], Outcome | str]) -> str:
    """The analyze JSON document with ``witness`` added to every program, in the same
    one-program-per-line layout."""
    doc = json.loads(text)
    for prog in doc["programs"]:
        key = (prog["object"], prog["section"], prog["name"])
        if key in found:
            prog["witness"] = to_json(found[key])
    parts = [f'{{\n  "version": {json.dumps(doc["version"])},']
    names = [k for k in doc if k != "version"]
    for n, name in enumerate(names):
        end = "," if n < len(names) - 1 else ""
        items = doc[name]
        if not isinstance(items, list) or not items:
            parts.append(f'  "{name}": {json.dumps(items)}{end}')
            continue
        parts.append(f'  "{name}": [')
        parts.append(",\n".join("    " + json.dumps(item) for item in items))
        parts.append(f"  ]{end}")
    parts.append("}")
    return "\n".join(parts) + "\n"


def text_lines(found: dict[tuple[str, str, str], Outcome | str]) -> str:
    lines = ["", "WITNESSES (executed by the reference interpreter; reached = executed / "
             "max insns)"]
    for (obj, _section, name), got in found.items():
        if isinstance(got, str) or got.search is None or got.search.witness is None:
            why = got if isinstance(got, str) else \
                (got.skipped if got.search is None else got.search.note)
            lines.append(f"{obj}:{name}: no witness: {why}")
            continue
        w = got.search.witness
        reached = "-" if w.reached is None else f"{w.reached:.3f}"
        note = f" -- {got.search.note}" if got.search.note else ""
        lines.append(f"{obj}:{name}: reached {reached} ({w.executed_insns} of "
                     f"{w.insns_max} insns){note}")
    return "\n".join(lines) + "\n"


"""SARIF 2.1.0 for GitHub code scanning: one result per finding, at its source line.

Locations are repository-relative (uriBaseId %SRCROOT%) and never leave the
workspace: a source file outside it falls back to the object file, and an object
outside it to its bare name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from bpflint import __version__
from bpflint.budget.gate import RULES, Finding, GateReport, ProgramVerdict
from bpflint.results import SourceLoc

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/bpflint/bpflint"
# one anchor per rule id in docs/rules.md (tests/test_reports.py checks they exist)
RULES_URI = f"{INFORMATION_URI}/blob/main/docs/rules.md"
# The level a rule's results have unless the budget file says otherwise: BPF003 and
# BPF004 follow [regression] unbounded / unmatched; the engine's own diagnostics
# (open tail calls, recursion) are notes beside a result, not failures.
DEFAULT_LEVEL = {"BPF001": "error", "BPF002": "error", "BPF003": "error", "BPF004": "warning",
                 "BPF005": "note", "BPF006": "error", "BPF007": "note", "BPF008": "note",
                 "BPF009": "note", "BPF010": "note"}
_SARIF_LEVEL = {"error": "error", "warning": "warning", "note": "note"}


@dataclass(frozen=True)
class Location:
    path: str  # POSIX, relative to the workspace root, never starting with ".."
    line: int | None  # None: no line info, the location is the whole file


def _inside(path: Path, root: Path) -> str | None:
    try:
        relative = path.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return None
    return relative.as_posix()


def locate(loc: SourceLoc | None, object_path: str, root: Path) -> Location:
    """Where to put a finding: the source line when its file is in the workspace.

    Reports get paths already named relative to the workspace root (paths.py); a
    path that is still relative is tried against the root, then against the object's
    directory and its parents (BTF keeps a path as clang was given it).
    """
    obj = Path(object_path)
    if not obj.is_absolute():
        obj = root / obj
    if loc is not None and loc.file:
        source = Path(loc.file)
        if source.is_absolute():
            candidates = [source]
        else:
            start = obj.resolve().parent
            bases = [root, start, *start.parents]
            candidates = [base / source for base in bases]
        for candidate in candidates:
            relative = _inside(candidate, root)
            if relative is not None and candidate.is_file():
                return Location(relative, loc.line if loc.line > 0 else None)
    relative = _inside(obj, root)
    return Location(relative if relative is not None else PurePosixPath(object_path).name, None)


def fingerprint(verdict: ProgramVerdict, finding: Finding, occurrence: int) -> str:
    """Stable across runs and line moves: the program's identity and the rule."""
    text = f"{verdict.key}\0{finding.rule}\0{occurrence}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _rule(rule_id: str, name: str, description: str) -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": name,
        "shortDescription": {"text": description},
        "helpUri": f"{RULES_URI}#{rule_id.lower()}",
        "defaultConfiguration": {"level": DEFAULT_LEVEL.get(rule_id, "note")},
    }


def _rules(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    rules = {rule_id: _rule(rule_id, name, text) for rule_id, (name, text) in RULES.items()}
    for finding in findings:
        rules.setdefault(finding.rule, _rule(finding.rule, finding.name, finding.name))
    return [rules[key] for key in sorted(rules)]


def _physical(where: Location) -> dict[str, Any]:
    # a URI reference: '#', '?', '%' or a space in a file name must not be read
    # as a fragment, a query or an escape
    physical: dict[str, Any] = {
        "artifactLocation": {"uri": quote(where.path), "uriBaseId": "%SRCROOT%"}}
    if where.line is not None:
        physical["region"] = {"startLine": where.line}
    return physical


def _related(index: int, loc: SourceLoc, verdict: ProgramVerdict, root: Path
             ) -> dict[str, Any]:
    """Another place a finding is about (a folded BPF005's other call sites)."""
    assert verdict.result is not None
    return {"id": index, "physicalLocation": _physical(locate(loc, verdict.result.object, root)),
            "message": {"text": "another call site"}}


def to_sarif(report: GateReport, root: Path) -> dict[str, Any]:
    all_findings = [f for v in report.programs for f in v.findings]
    rules = _rules(all_findings)
    index = {rule["id"]: position for position, rule in enumerate(rules)}
    results = []
    for verdict in report.programs:
        if verdict.result is None:
            continue
        seen: dict[str, int] = {}
        for finding in verdict.findings:
            occurrence = seen.get(finding.rule, 0)
            seen[finding.rule] = occurrence + 1
            physical = _physical(locate(finding.loc, verdict.result.object, root))
            related = [_related(index_, loc, verdict, root)
                       for index_, loc in enumerate(finding.related[1:])]
            results.append({
                **({"relatedLocations": related} if related else {}),
                "ruleId": finding.rule,
                "ruleIndex": index[finding.rule],
                "level": _SARIF_LEVEL[finding.level],
                "message": {"text": finding.message},
                "locations": [{
                    "physicalLocation": physical,
                    "logicalLocations": [{"name": verdict.result.name,
                                          "fullyQualifiedName": verdict.key,
                                          "kind": "function"}],
                }],
                "partialFingerprints": {"bpflintFinding/v1":
                                        fingerprint(verdict, finding, occurrence)},
            })
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "bpflint", "version": __version__,
                                "informationUri": INFORMATION_URI, "rules": rules}},
            "results": results,
            "columnKind": "utf16CodeUnits",
        }],
    }


def render(report: GateReport, root: Path) -> str:
    return json.dumps(to_sarif(report, root), indent=2) + "\n"

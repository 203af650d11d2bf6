"""The budget gate: match each program to its budget, compare with the baseline, decide.

Everything here is pure: results and config in, verdict objects out. Every report
format renders the same GateReport.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePath
from typing import Literal

from bpflint.budget.baseline import Baseline, BaselineEntry, baseline_ns
from bpflint.budget.config import Budget, BudgetConfig, Policy
from bpflint.budget.keys import legacy_key, object_identity, program_key
from bpflint.budget.units import format_ns
from bpflint.results import AnalysisReport, ObjectError, ProgramResult, SourceLoc, TableInfo

Level = Literal["error", "warning", "note"]
Status = Literal["fail", "warn", "pass", "removed"]
Change = Literal["same", "new", "renamed", "removed", "unknown"]

# Stable rule ids: SARIF rule ids, annotation titles and JSON findings use them.
RULES: dict[str, tuple[str, str]] = {
    "BPF001": ("over-budget", "Worst-case cost exceeds the budget"),
    "BPF002": ("regression", "Worst-case cost grew more than the allowed regression"),
    "BPF003": ("unbounded-loop", "No bound could be proven for the worst-case cost"),
    "BPF004": ("unmatched-program", "No budget in bpfbudget.toml matches the program"),
    "BPF005": ("open-tail-call", "A tail call whose targets are unknown"),
    "BPF006": ("missing-cost", "The analysis produced no cost for a bounded program"),
}

_LEVEL_OF_POLICY: dict[Policy, Level | None] = {"fail": "error", "warn": "warning",
                                                "ignore": None}


@dataclass(frozen=True)
class Finding:
    """One problem, or note, the gate found with a program."""

    rule: str
    name: str
    level: Level
    message: str
    loc: SourceLoc | None = None
    by_ns: bool = False  # about time: loc and the hottest lines follow the path by ns
    related: tuple[SourceLoc, ...] = ()  # every place it is about, loc first (BPF005)


@dataclass(frozen=True)
class Match:
    """The budget a program matched, and why."""

    budget: Budget | None
    reason: str  # why this budget won, for --explain-match
    also: tuple[Budget, ...] = ()  # less specific budgets that matched too


@dataclass(frozen=True)
class ProgramVerdict:
    """A program's figures, its budget and baseline, and the gate's findings."""

    key: str
    result: ProgramResult | None  # None for a program only the baseline has
    match: Match | None
    baseline: BaselineEntry | None
    change: Change
    renamed_from: str | None
    findings: tuple[Finding, ...]
    status: Status

    @property
    def budget(self) -> Budget | None:
        return self.match.budget if self.match else None

    @property
    def insns_delta(self) -> int | None:
        if self.result is None or self.baseline is None:
            return None
        if self.result.insns_max is None or self.baseline.insns_max is None:
            return None
        return self.result.insns_max - self.baseline.insns_max

    @property
    def ns_delta(self) -> float | None:
        if self.result is None or self.baseline is None:
            return None
        after = baseline_ns(self.result.ns_max)
        if after is None or self.baseline.ns_max is None:
            return None
        return after - self.baseline.ns_max

    @property
    def over_budget_ratio(self) -> float:
        """Worst-case / budget on the tighter measure: the sort key for 'worst first'."""
        result, budget = self.result, self.budget
        if result is None:
            return 0.0
        if not result.bounded:
            return math.inf
        if budget is None:
            return 0.0
        ratios = [0.0]
        if budget.max_insns and result.insns_max is not None:
            ratios.append(result.insns_max / budget.max_insns)
        if budget.max_ns and result.ns_max is not None:
            ratios.append(result.ns_max / budget.max_ns)
        return max(ratios)


@dataclass(frozen=True)
class GateReport:
    """What the gate decided about every program: what each format renders."""

    programs: tuple[ProgramVerdict, ...]  # worst offenders first, removed ones last
    errors: tuple[ObjectError, ...]
    warn_only: bool
    baseline_source: str | None  # None when there is nothing to compare with
    notes: tuple[str, ...] = ()
    accept_hint: str | None = None  # how to accept a regression that failed the gate
    # the results at the base ref (check --base), whole: the HTML report's line-by-line
    # deltas; a baseline file keeps totals only
    base_results: tuple[ProgramResult, ...] = ()
    cost_table: TableInfo | None = None  # the analysis's cost table

    @property
    def failures(self) -> tuple[ProgramVerdict, ...]:
        return tuple(v for v in self.programs if v.status == "fail")

    @property
    def verdict(self) -> Literal["pass", "fail", "error"]:
        if self.errors:
            return "error"
        return "fail" if self.failures else "pass"

    @property
    def exit_code(self) -> int:
        if self.errors:
            return 2
        return 1 if self.failures and not self.warn_only else 0


# ---------------------------------------------------------------- matching

_RANK_ORDER = ("program", "section", "object", "type")


def _object_subject(result: ProgramResult, root: Path | None, pattern: str,
                    identity: str | None = None) -> str:
    """Object globs with a '/' match the path relative to the config; others the name."""
    if identity is None:
        identity = object_identity(result.object, root) if root is not None else \
            Path(result.object).as_posix()
    return identity if "/" in pattern else PurePath(identity).name


def _matches(budget: Budget, result: ProgramResult, root: Path | None,
             identity: str | None = None) -> list[str] | None:
    """Why each matcher of ``budget`` accepts ``result``, or None if one rejects it."""
    why = []
    for key, pattern in budget.matchers.items():
        if key == "object":
            subject = _object_subject(result, root, pattern, identity)
        else:
            subject = {"program": result.name, "section": result.section,
                       "type": result.type}[key]
        if not fnmatchcase(subject, pattern):
            return None
        how = "is" if pattern == subject else "matches"
        why.append(f"{key} {pattern!r} {how} {subject!r}")
    return why


def _literal_chars(budget: Budget) -> int:
    return sum(len(v) - sum(v.count(c) for c in "*?[]") for v in budget.matchers.values())


def _specificity(budget: Budget) -> tuple[int, ...]:
    """program > section > object > type > default; then the longer literal text;
    then the earlier table in the file."""
    present = tuple(int(key in budget.matchers) for key in _RANK_ORDER)
    return (*present, _literal_chars(budget), -budget.number)


def match_budget(result: ProgramResult, budgets: Sequence[Budget],
                 root: Path | None = None, identity: str | None = None) -> Match:
    candidates = []
    for budget in budgets:
        why = _matches(budget, result, root, identity)
        if why is not None:
            candidates.append((budget, why))
    if not candidates:
        return Match(budget=None, reason="no budget matches")
    candidates.sort(key=lambda item: _specificity(item[0]), reverse=True)
    budget, why = candidates[0]
    reason = "; ".join(why) if why else "default budget (no matcher)"
    if len(candidates) > 1:
        reason += f"; more specific than {', '.join(f'#{b.number}' for b, _ in candidates[1:])}"
    return Match(budget=budget, reason=reason, also=tuple(b for b, _ in candidates[1:]))


# ---------------------------------------------------------------- findings

def _hottest_loc(result: ProgramResult, by_ns: bool = False) -> SourceLoc | None:
    """The dearest line of the worst path; of the path by ns for a finding about time,
    where the line that drives the time (a helper call) may be on another branch."""
    if by_ns and result.worst_path_ns:
        top = max(result.worst_path_ns, key=lambda cost: cost.ns)
        return SourceLoc(top.file, top.line)
    if result.line_costs:
        top = result.line_costs[0]
        return SourceLoc(top.file, top.line)
    if result.worst_path:
        top = max(result.worst_path, key=lambda cost: cost.insns)
        return SourceLoc(top.file, top.line)
    return result.source


def _finding(rule: str, level: Level, message: str, loc: SourceLoc | None,
             by_ns: bool = False) -> Finding:
    return Finding(rule=rule, name=RULES[rule][0], level=level, message=message, loc=loc,
                   by_ns=by_ns)


def _budget_findings(result: ProgramResult, budget: Budget) -> list[Finding]:
    findings = []
    where = f"budget #{budget.number}, line {budget.line}"
    loc = _hottest_loc(result)
    loc_ns = _hottest_loc(result, by_ns=True)
    if budget.max_insns is not None:
        if result.insns_max is None:
            findings.append(_finding("BPF006", "error",
                                     f"{result.name}: no worst-case instruction count", loc))
        elif result.insns_max > budget.max_insns:
            findings.append(_finding(
                "BPF001", "error",
                f"{result.name}: worst case {result.insns_max} insns exceeds the budget of "
                f"{budget.max_insns} insns ({where})", loc))
    if budget.max_ns is not None:
        if result.ns_max is None:
            findings.append(_finding("BPF006", "error",
                                     f"{result.name}: no worst-case time estimate", loc))
        elif result.ns_max > budget.max_ns:
            findings.append(_finding(
                "BPF001", "error",
                f"{result.name}: worst case {format_ns(result.ns_max)} exceeds the budget of "
                f"{budget.max_time} ({where})", loc_ns, by_ns=True))
    return findings


def _regression_findings(result: ProgramResult, before: BaselineEntry,
                         config: BudgetConfig, source: str) -> list[Finding]:
    allowance = config.allowance
    if allowance is None:
        return []
    loc = _hottest_loc(result)
    if before.bounded and not result.bounded:
        return [_finding("BPF002", "error",
                         f"{result.name}: was bounded ({before.insns_max} insns in {source}), "
                         "now unbounded", loc)]
    findings = []
    if (before.insns_max is not None and result.insns_max is not None
            and allowance.insns_excess(before.insns_max, result.insns_max)):
        findings.append(_finding(
            "BPF002", "error",
            f"{result.name}: worst case grew from {before.insns_max} to {result.insns_max} "
            f"insns ({_percent(before.insns_max, result.insns_max, allowance.percent)}), more "
            f"than the allowed "
            f"{allowance.text}", loc))
    after_ns = baseline_ns(result.ns_max)
    if (before.ns_max is not None and after_ns is not None
            and allowance.ns_excess(before.ns_max, after_ns)):
        findings.append(_finding(
            "BPF002", "error",
            f"{result.name}: worst case grew from {format_ns(before.ns_max)} to "
            f"{format_ns(after_ns)} ({_percent(before.ns_max, after_ns, allowance.percent)}), "
            f"more than "
            f"the allowed {allowance.text}", _hottest_loc(result, by_ns=True), by_ns=True))
    return findings


def _percent(before: float, after: float, allowed: float | None = None) -> str:
    """The growth in percent, with as many decimals as it takes to show that it is
    more than ``allowed`` (+5.04% against 5%, never "+5.0%, more than 5%")."""
    if before == 0:
        return "new cost"
    growth = (after - before) / before * 100
    for decimals in range(1, 5):
        text = f"{growth:+.{decimals}f}%"
        if allowed is None or float(text[:-1]) > allowed:
            return text
    return text


def _unbounded_finding(result: ProgramResult, level: Level) -> Finding:
    diagnostics = [d for d in result.diagnostics if d.rule == "BPF003"] or [
        d for d in result.diagnostics if d.loc is not None]
    if diagnostics:
        first = diagnostics[0]
        return _finding("BPF003", level, f"{result.name}: unbounded: {first.message}",
                        first.loc or result.source)
    return _finding("BPF003", level, f"{result.name}: no bound could be proven",
                    result.source)


def _program_findings(result: ProgramResult, key: str, match: Match,
                      before: BaselineEntry | None, config: BudgetConfig,
                      source: str) -> tuple[Finding, ...]:
    findings: list[Finding] = []
    unbounded_level = _LEVEL_OF_POLICY[config.unbounded]
    if not result.bounded and unbounded_level is not None:
        findings.append(_unbounded_finding(result, unbounded_level))
    if match.budget is None:
        level = _LEVEL_OF_POLICY[config.unmatched]
        if level is not None:
            findings.append(_finding("BPF004", level,
                                     f"{result.name}: no budget matches {key} "
                                     f"(type {result.type!r})", result.source))
    elif result.bounded:
        findings.extend(_budget_findings(result, match.budget))
    if before is not None:
        findings.extend(_regression_findings(result, before, config, source))
    for diagnostic in result.diagnostics:
        if diagnostic.rule != "BPF003":
            findings.append(Finding(rule=diagnostic.rule, name=diagnostic.name, level="note",
                                    message=f"{result.name}: {diagnostic.message}",
                                    loc=diagnostic.loc, related=diagnostic.related))
    return tuple(findings)


def _status(findings: Iterable[Finding]) -> Status:
    levels = {finding.level for finding in findings}
    if "error" in levels:
        return "fail"
    return "warn" if "warning" in levels else "pass"


# ---------------------------------------------------------------- evaluation

def _pair_with_baseline(results: Sequence[ProgramResult], identities: Sequence[str],
                        baseline: Baseline | None
                        ) -> tuple[list[tuple[BaselineEntry | None, Change, str | None]],
                                   list[BaselineEntry]]:
    """Baseline entry, change kind and former key for each program; removed entries.

    A baseline written before keys had paths names objects by their bare name: such
    an entry pairs with the one program whose bare name, section and name it has.
    """
    if baseline is None:
        return [(None, "unknown", None) for _ in results], []
    current = [program_key(identity, r.section, r.name)
               for r, identity in zip(results, identities, strict=True)]
    unclaimed = {k: e for k, e in baseline.entries.items() if k not in set(current)}
    legacy = [legacy_key(identity, r.section, r.name)
              for r, identity in zip(results, identities, strict=True)]
    legacy_count = Counter(legacy)
    bare_count = Counter((PurePath(identity).name, r.name)
                         for r, identity in zip(results, identities, strict=True))
    paired: list[tuple[BaselineEntry | None, Change, str | None]] = []
    for result, identity, key, old_key in zip(results, identities, current, legacy,
                                              strict=True):
        if key in baseline.entries:
            paired.append((baseline.entries[key], "same", None))
            continue
        old = unclaimed.get(old_key)
        if old is not None and "/" not in old.object and legacy_count[old_key] == 1:
            del unclaimed[old_key]
            paired.append((old, "same", None))
            continue
        # Same object and program name under another section: a renamed section.
        bare = PurePath(identity).name
        unique_bare = bare_count[(bare, result.name)] == 1
        renamed = next((e for e in unclaimed.values()
                        if e.name == result.name and e.section != result.section and (
                            e.object == identity
                            or (unique_bare and "/" not in e.object and e.object == bare))),
                       None)
        if renamed is not None:
            del unclaimed[renamed.key]
            paired.append((renamed, "renamed", renamed.key))
        else:
            paired.append((None, "new", None))
    return paired, sorted(unclaimed.values(), key=lambda e: e.key)


def check_config_use(config: BudgetConfig, results: Sequence[ProgramResult],
                     identities: Mapping[str, str] | None = None) -> None:
    """Budgets and tail-call targets that name no analysed program are config mistakes.

    Only meaningful when the config's own [analyze] set was analysed, not a subset
    given on the command line.
    """
    root = config.root
    for budget in config.budgets:
        if budget.matchers and not any(
                _matches(budget, r, root, (identities or {}).get(r.object)) is not None
                for r in results):
            hint = ""
            if budget.type is not None:
                seen = sorted({r.type for r in results})
                import difflib  # only for a message: not start-up time

                close = difflib.get_close_matches(budget.type, seen, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else \
                    f"; program types present: {', '.join(seen) or 'none'}"
            raise config.error(("budget", budget.number - 1),
                               f"matches no program ({budget.label}){hint}")
    names = {r.name for r in results}
    for map_name, targets in config.tail_calls.items():
        for target in targets:
            if target not in names:
                import difflib  # only for a message: not start-up time

                close = difflib.get_close_matches(target, sorted(names), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise config.error(("tail_calls", map_name),
                                   f"program {target!r} is not in the analysed objects{hint}")


def evaluate(report: AnalysisReport, config: BudgetConfig, baseline: Baseline | None,
             *, warn_only: bool = False, identities: Mapping[str, str] | None = None
             ) -> GateReport:
    """``identities`` names each result's object (by ``result.object``) relative to the
    budget file; without it the object path is taken relative to the config's root."""
    results = report.programs
    names = [(identities or {}).get(r.object) or object_identity(r.object, config.root)
             for r in results]
    paired, removed = _pair_with_baseline(results, names, baseline)
    source = baseline.source if baseline is not None else ""
    verdicts = []
    for result, identity, (before, change, former) in zip(results, names, paired, strict=True):
        match = match_budget(result, config.budgets, config.root, identity)
        key = program_key(identity, result.section, result.name)
        findings = _program_findings(result, key, match, before, config, source)
        verdicts.append(ProgramVerdict(key=key, result=result, match=match,
                                       baseline=before, change=change, renamed_from=former,
                                       findings=findings, status=_status(findings)))
    rank = {"fail": 0, "warn": 1, "pass": 2}
    verdicts.sort(key=lambda v: (rank[v.status], -v.over_budget_ratio, v.key))
    for entry in removed:
        verdicts.append(ProgramVerdict(key=entry.key, result=None, match=None, baseline=entry,
                                       change="removed", renamed_from=None, findings=(),
                                       status="removed"))
    return GateReport(programs=tuple(verdicts), errors=report.errors,
                      warn_only=warn_only or config.warn_only,
                      baseline_source=baseline.source if baseline is not None else None,
                      notes=report.notes, cost_table=report.cost_table)

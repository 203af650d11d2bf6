"""The cost map: one self-contained HTML page (inline CSS and script, no network).

Per program: a bar of its worst case against its budget and baseline, then its
source lines (read from disk next to the object, else the text BTF line info
carries) shaded by their worst-case cost, by time or by instructions (a switch),
with both worst paths marked, loop bounds with their proof, and priced helper
calls. For ``check``, the verdicts, findings and deltas against the baseline. With
``analyze --witness``, the lines the witness's run executed are marked W next to the
worst path, and its ``reached`` figure heads the program.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from bpflint.budget.units import format_ns
from bpflint.report.html_page import HEAD_SCRIPT, SCRIPT, STYLE
from bpflint.results import AnalysisReport, LineCost, ProgramResult

if TYPE_CHECKING:  # `analyze` renders without loading the budget gate
    from bpflint.budget.gate import GateReport, ProgramVerdict
    from bpflint.budget.history import History

CONTEXT_LINES = 3  # source lines shown around the lines that cost something
_MARK_T = '<span class="mark pn">T</span>'
_MARK_I = '<span class="mark pi">I</span>'
_MARK_W = '<span class="mark pw">W</span>'
_CHANGES = ("new", "renamed")
_LABEL = {"fail": "FAIL", "warn": "WARN", "pass": "PASS", "removed": "GONE"}


@dataclass
class _Line:
    insns: int = 0  # on the worst path by instructions
    ns_insns_path: float = 0.0
    insns_ns_path: int = 0  # on the worst path by time
    ns: float = 0.0
    on_insns: bool = False
    on_ns: bool = False
    notes: list[str] = field(default_factory=list)
    text: str = ""
    delta: str = ""  # against the base ref's run, where there is one
    witness_insns: int = 0  # executed by the witness's run


@dataclass(frozen=True)
class WitnessView:
    """One program's witness as the page shows it (bpflint/witness/attach.py)."""

    reached: float | None
    executed_insns: int | None
    insns_max: int | None
    note: str
    lines: Mapping[tuple[str, int], int] = field(default_factory=dict)  # insns per line
    method: str = ""


Witnesses = Mapping[tuple[str, str, str], WitnessView]  # (object, section, name) ->


def render_analysis(report: AnalysisReport, by_ns: bool = True,
                    witnesses: Witnesses | None = None) -> str:
    """The cost map of ``analyze`` or ``explain``: no budgets, no baseline; with the
    programs' witnesses (``analyze --witness``) where given."""
    entries = [(result, None) for result in report.programs]
    errors = [f"{err.object}: {err.message}" for err in report.errors]
    return _page("bpflint cost map", entries, errors, list(report.notes), None, by_ns, {},
                 witnesses=witnesses or {})


def render_check(report: GateReport, trends: History | None = None,
                 root: Path | None = None) -> str:
    """The cost map of ``check``: each program with its verdict and baseline, and
    with ``trends`` its worst case over the baseline file's git history. ``root``:
    what the report's paths are relative to."""
    entries = [(v.result, v) for v in report.programs if v.result is not None]
    gone = [v for v in report.programs if v.result is None]
    errors = [f"{err.object}: {err.message}" for err in report.errors]
    verdict = {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}[report.verdict]
    against = f" against {report.baseline_source}" if report.baseline_source else ""
    head = f"{verdict}: {len(report.failures)} of {len(entries)} program(s) failing{against}"
    if gone:
        head += f"; removed since the baseline: {', '.join(v.key for v in gone)}"
    # paired by object file name, section and program name: the base ran elsewhere
    before = {result.key: result for result in report.base_results}
    if report.baseline_source and not report.base_results:
        head += " (line-by-line deltas need --base REF: a baseline file keeps totals only)"
    return _page("bpflint check", entries, errors, list(report.notes), head, True, before,
                 trends, root)


def _page(title: str, entries: Sequence[tuple[ProgramResult, ProgramVerdict | None]],
          errors: list[str], notes: list[str], headline: str | None, by_ns: bool,
          before: dict[str, ProgramResult], trends: History | None = None,
          root: Path | None = None, witnesses: Witnesses | None = None) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{escape(title)}</title>",
           # no network: a policy that allows nothing but the inline style and script
           '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
           "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
           f"<script>{HEAD_SCRIPT}</script><style>{STYLE}</style></head>",
           f'<body class="{"by-ns" if by_ns else "by-insns"}">',
           f"<header><h1>{escape(title)}</h1>",
           '<div class="switch">shade lines by: '
           f'<label><input type="radio" name="by" value="ns"{" checked" if by_ns else ""}>'
           " time (ns)</label> "
           f'<label><input type="radio" name="by" value="insns"'
           f'{"" if by_ns else " checked"}> instructions</label></div>',
           '<p class="legend"><span class="mark pn">T</span> on the worst path by time '
           '(its lines add up to ns max) <span class="mark pi">I</span> on the worst path '
           "by instructions (they add up to insns max)"
           + (' <span class="mark pw">W</span> executed by the witness (its instructions '
              "on the line)" if witnesses else "") + "</p></header><main>"]
    if headline:
        out.append(f'<p class="headline">{escape(headline)}</p>')
    out.extend(f'<p class="error">error: {escape(e)}</p>' for e in errors)
    out.extend(f'<p class="note">note: {escape(n)}</p>' for n in notes)
    out.append(_summary(entries, trends))
    for index, (result, verdict) in enumerate(entries):
        witness = (witnesses or {}).get((result.object, result.section, result.name))
        out.append(_program(index, result, verdict, before.get(result.key), root, witness))
    out.append(f"</main><script>{SCRIPT}</script></body></html>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- the summary table

def _summary(entries: Sequence[tuple[ProgramResult, ProgramVerdict | None]],
             trends: History | None) -> str:
    if not entries:
        return '<p class="empty">no BPF programs found</p>'
    scale_ns = max([_worst(r.ns_max, v, True) for r, v in entries] + [1e-9])
    scale_insns = max([_worst(r.insns_max, v, False) for r, v in entries] + [1])
    gated = any(verdict is not None for _, verdict in entries)
    rows = ['<table class="summary"><thead><tr><th>program</th>'
            f"{'<th>verdict</th>' if gated else ''}"
            "<th>worst case (time)</th><th>worst case (instructions)</th>"
            f"{_trend_header(trends)}</tr></thead><tbody>"]
    for index, (result, verdict) in enumerate(entries):
        status = _LABEL[verdict.status] if verdict is not None else ""
        rows.append(
            f'<tr class="prog-row"><td><a href="#p{index}">'
            f"{escape(verdict.key if verdict is not None else result.key)}</a></td>"
            + (f'<td class="verdict {status.lower()}">{status}</td>' if gated else "") +
            f"<td>{_bar(result.ns_max, result.bounded, verdict, True, scale_ns)}</td>"
            f"<td>{_bar(result.insns_max, result.bounded, verdict, False, scale_insns)}</td>"
            + (f"<td>{_trend(trends, result)}</td>" if trends is not None else "") + "</tr>")
    rows.append("</tbody></table>")
    return "\n".join(rows)


def _trend_header(trends: History | None) -> str:
    if trends is None:
        return ""
    first, last = trends.revisions[0], trends.revisions[-1]
    return (f'<th title="ns max in {len(trends.revisions)} commit(s) of the baseline, '
            f'{escape(first.date)} to {escape(last.date)}, then this run">'
            "trend (baseline history, now)</th>")


def _trend(trends: History, result: ProgramResult) -> str:
    """An inline SVG line of ns.max over the baseline's commits, this run last (a dot)."""
    at = {p.revision.commit: p.ns_max for p in trends.programs.get(result.key, ())}
    values = [at.get(r.commit) for r in trends.revisions] + [result.ns_max]
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return '<span class="limits">no history</span>'
    width, height = 120.0, 18.0
    low, high = min(known), max(known)
    # a change of a fraction of a per cent (the baseline keeps 0.1 ns) stays flat
    span = max(high - low, 0.2 * high, 1e-9)
    step = width / max(len(values) - 1, 1)
    points = [(round(i * step, 1), round(height - 2 - (v - low) / span * (height - 4), 1))
              for i, v in enumerate(values) if v is not None]
    line = " ".join(f"{x},{y}" for x, y in points)
    x, y = points[-1]
    title = " → ".join(format_ns(v) for v in known[-6:])
    return (f'<svg class="trend" width="{width + 4:g}" height="{height:g}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
            f'<polyline points="{line}"/><circle cx="{x}" cy="{y}" r="2.5"/></svg>')


def _limits(verdict: ProgramVerdict | None, as_ns: bool) -> tuple[float | None, float | None]:
    """(budget, baseline) of one unit, where there is one."""
    if verdict is None:
        return None, None
    budget = verdict.budget
    before = verdict.baseline
    if as_ns:
        return (budget.max_ns if budget else None, before.ns_max if before else None)
    return (float(budget.max_insns) if budget and budget.max_insns is not None else None,
            float(before.insns_max) if before and before.insns_max is not None else None)


def _worst(value: float | None, verdict: ProgramVerdict | None, as_ns: bool) -> float:
    budget, before = _limits(verdict, as_ns)
    return max(v for v in (value, budget, before, 0.0) if v is not None)


def _bar(value: float | None, bounded: bool, verdict: ProgramVerdict | None, as_ns: bool,
         scale: float) -> str:
    """An inline SVG bar: the worst case, a line at the budget, a tick at the baseline."""
    budget, before = _limits(verdict, as_ns)
    width, height = 160.0, 16.0

    def x(v: float) -> float:
        return round(min(v / scale, 1.0) * (width - 2), 1)

    label = "unbounded" if not bounded else "-" if value is None else \
        format_ns(value) if as_ns else f"{int(value)} insns"
    over = value is not None and budget is not None and value > budget
    parts = [f'<svg class="bar" width="{width:g}" height="{height:g}" role="img" '
             f'aria-label="{escape(label)}"><rect class="track" x="0" y="3" '
             f'width="{width:g}" height="10"/>']
    if value is not None and bounded:
        parts.append(f'<rect class="{"over" if over else "fill"}" x="0" y="3" '
                     f'width="{x(value)}" height="10"/>')
    if before is not None:
        parts.append(f'<rect class="baseline" x="{x(before)}" y="1" width="2" height="14">'
                     f"<title>baseline {_amount(before, as_ns)}</title></rect>")
    if budget is not None:
        parts.append(f'<rect class="budget" x="{x(budget)}" y="0" width="2" height="16">'
                     f"<title>budget {_amount(budget, as_ns)}</title></rect>")
    parts.append("</svg>")
    extra = []
    if budget is not None:
        extra.append(f"budget {_amount(budget, as_ns)}")
    if before is not None and value is not None:
        # the gate's delta: against the baseline's rounding of the figure
        delta = (verdict.ns_delta if as_ns else verdict.insns_delta) if verdict else None
        delta = value - before if delta is None else delta
        sign = "+" if delta >= 0 else "-"
        extra.append(f"baseline {_amount(before, as_ns)}, {sign}{_amount(abs(delta), as_ns)}")
    tail = f'<br><span class="limits">{escape("; ".join(extra))}</span>' if extra else ""
    return f'{"".join(parts)} <span class="value">{escape(label)}</span>{tail}'


def _amount(value: float, as_ns: bool) -> str:
    return format_ns(value) if as_ns else f"{int(value)} insns"


# ---------------------------------------------------------------- one program

def _program(index: int, result: ProgramResult, verdict: ProgramVerdict | None,
             before: ProgramResult | None, root: Path | None,
             witness: WitnessView | None = None) -> str:
    out = [f'<section class="program" id="p{index}" data-program="{escape(result.name)}">',
           f"<h2>{escape(result.name)} <small>{escape(result.section)} · "
           f"{escape(result.type)} · {escape(Path(result.object).name)}</small></h2>"]
    if result.bounded:
        path_ns = sum(c.ns for c in result.worst_path_ns)
        out.append(f'<p class="totals">worst case <b>{_ns(result.ns_max)}</b>, '
                   f"<b>{result.insns_max} insns</b>; best case {_ns(result.ns_min)}, "
                   f"{result.insns_min} insns; {result.insn_count} instructions reachable. "
                   f"Worst path by time: {len(result.worst_path_ns)} lines, "
                   f"{_ns(path_ns)}.</p>")
    else:
        out.append('<p class="totals">worst case <b>unbounded</b></p>')
    if witness is not None:
        out.append(_witness_line(witness))
    for setting in result.loader_set:
        value = f"= {setting.value}" if setting.value is not None else \
            f"in {setting.lo}..{setting.hi}"
        how = "pinned" if setting.pinned else f"any {setting.type}: loader-set, not pinned"
        default = "" if setting.default is None else f"; the object's value is {setting.default}"
        out.append(f'<p class="diag">assumes {escape(setting.name)} {escape(value)} '
                   f"({escape(how)}{escape(default)})</p>")
    if verdict is not None:
        status = _LABEL[verdict.status]
        change = f" ({verdict.change})" if verdict.change in _CHANGES else ""
        out.append(f'<p class="verdict {status.lower()}">{status}{escape(change)}</p>')
        for finding in verdict.findings:
            where = f" [{escape(finding.loc.file)}:{finding.loc.line}]" if finding.loc else ""
            anchor = f' href="#{_anchor(index, finding.loc.file, finding.loc.line)}"' \
                if finding.loc else ""
            out.append(f'<p class="finding {finding.level}"><a{anchor}>{finding.rule} '
                       f"{escape(finding.name)}</a>: {escape(finding.message)}{where}</p>")
    for diag in result.diagnostics:
        where = f" [{escape(diag.loc.file)}:{diag.loc.line}]" if diag.loc else ""
        out.append(f'<p class="diag">{diag.rule} {escape(diag.name)}: '
                   f"{escape(diag.message)}{where}</p>")
    files = _by_file(result, witness)
    left: list[str] = []
    if before is not None:
        left = _deltas(files, before)
    for name, lines in files.items():
        out.append(_source_table(index, result, name, lines, before is not None, root,
                                 witness is not None))
    if left:
        out.append('<p class="left">no longer on the worst path by time (at the base): '
                   f"{'; '.join(left)}</p>")
    out.append("</section>")
    return "\n".join(out)


def _witness_line(w: WitnessView) -> str:
    if w.reached is None or w.executed_insns is None:
        return f'<p class="witness none">no witness: {escape(w.note)}</p>'
    note = f" — {escape(w.note)}" if w.note else ""
    how = f" ({escape(w.method)})" if w.method else ""
    return (f'<p class="witness" data-reached="{w.reached:.4f}">witness: reached '
            f"<b>{w.reached:.3f}</b> — its run executes {w.executed_insns} of "
            f"{w.insns_max} insns{how}; lines marked W{note}</p>")


def _by_file(result: ProgramResult, witness: WitnessView | None = None
             ) -> dict[str, dict[int, _Line]]:
    files: dict[str, dict[int, _Line]] = {}

    def at(file: str, line: int) -> _Line:
        return files.setdefault(file, {}).setdefault(line, _Line())

    def add_path(costs: Iterable[LineCost], by_ns: bool) -> None:
        for c in costs:
            entry = at(c.file, c.line)
            entry.text = entry.text or c.text
            if by_ns:
                entry.on_ns, entry.ns, entry.insns_ns_path = True, entry.ns + c.ns, \
                    entry.insns_ns_path + c.insns
            else:
                entry.on_insns, entry.insns, entry.ns_insns_path = True, \
                    entry.insns + c.insns, entry.ns_insns_path + c.ns

    add_path(result.worst_path, False)
    add_path(result.worst_path_ns, True)
    for loop in result.loops:
        runs = "no bound" if loop.max_runs is None else \
            f"≤ {loop.max_runs} back edges" if loop.kind == "loop" else \
            f"≤ {loop.max_runs} callback runs"
        at(loop.file, loop.line).notes.append(
            f'<span class="loop">↻ {escape(runs)}: {escape(loop.how)}</span>')
    for call in result.calls:
        at(call.file, call.line).notes.append(
            f'<span class="call">ƒ {escape(call.name)} {_ns(call.ns)}'
            f"{'' if call.insns <= 1 else f', {call.insns} insns'}</span>")
    if result.source is not None and result.source.line > 0:
        at(result.source.file, result.source.line)
    if witness is not None:
        for (file, n), insns in witness.lines.items():
            if n > 0:
                at(file, n).witness_insns = insns
    return files


def _matched(costs: Iterable[LineCost]) -> dict[tuple[str, str, int], LineCost]:
    """Lines keyed so that the same line is found in another revision of the source:
    file name, text, and which of the lines with that text (in line order) it is."""
    seen: dict[tuple[str, str], int] = {}
    out = {}
    for cost in sorted(costs, key=lambda c: (c.file, c.line)):
        base = (Path(cost.file).name, cost.text.strip())
        nth = seen[base] = seen.get(base, -1) + 1
        out[(base[0], base[1], nth)] = cost
    return out


def _deltas(files: dict[str, dict[int, _Line]], before: ProgramResult) -> list[str]:
    """Each line's change against the base run, on the worst path by time (ns) and
    by instructions; the base's time-path lines no longer on it, as text."""
    old_ns = _matched(before.worst_path_ns)
    old_insns = _matched(before.worst_path)
    now = [LineCost(name, n, line.insns, line.ns, line.text)
           for name, lines in files.items() for n, line in lines.items()
           if line.on_ns or line.on_insns]
    matched_ns: set[tuple[str, str, int]] = set()
    for key, cost in _matched(now).items():
        line = files[cost.file][cost.line]
        parts = []
        was = old_ns.get(key)
        if line.on_ns:
            matched_ns.add(key)
            change = line.ns - (was.ns if was is not None else 0.0)
            if was is None:
                parts.append("new")
            elif abs(change) >= 0.05:
                parts.append(f"{'+' if change > 0 else '-'}{format_ns(abs(change))}")
        was_insns = old_insns.get(key)
        if line.on_insns and was_insns is not None and line.insns != was_insns.insns:
            parts.append(f"{line.insns - was_insns.insns:+d} insns")
        line.delta = " ".join(parts)
    return [f"{escape(Path(c.file).name)}:{c.line} {escape(c.text.strip())} ({_ns(c.ns)})"
            for key, c in old_ns.items() if key not in matched_ns]


def _source_table(index: int, result: ProgramResult, name: str,
                  lines: dict[int, _Line], with_delta: bool, root: Path | None,
                  with_witness: bool = False) -> str:
    text = _read_source(name, result.object, root)
    numbers = sorted(n for n in lines if n > 0)
    if not numbers:
        return ""
    max_ns = max([line.ns for line in lines.values()] + [1e-9])
    max_insns = max([line.insns for line in lines.values()] + [1])
    shown: list[int] = []
    if text is not None:
        wanted: set[int] = set()
        for n in numbers:
            wanted.update(range(max(1, n - CONTEXT_LINES),
                                min(len(text), n + CONTEXT_LINES) + 1))
        shown = sorted(wanted) or numbers
    else:
        shown = numbers
    origin = "" if text is not None else \
        ' <span class="missing">(source not found: the text is BTF line info\'s)</span>'
    out = [f'<h3 class="file">{escape(name)}{origin}</h3>',
           '<table class="src"><thead><tr><th>line</th><th title="worst path by time">T</th>'
           '<th title="worst path by instructions">I</th>'
           + ('<th title="executed by the witness">W</th>' if with_witness else "") +
           '<th title="on the worst path by time">ns (T)</th>'
           '<th title="on the worst path by instructions">insns (I)</th>'
           + ('<th title="executed by the witness">insns (W)</th>' if with_witness else "") +
           f"{'<th>vs base</th>' if with_delta else ''}"
           "<th>source</th><th>bounds and calls</th></tr></thead><tbody>"]
    previous = None
    for n in shown:
        if previous is not None and n - previous > 1:
            columns = 7 + with_delta + 2 * with_witness
            out.append(f'<tr class="fold"><td colspan="{columns}">… '
                       f"{n - previous - 1} lines</td></tr>")
        previous = n
        line = lines.get(n, _Line())
        source = text[n - 1] if text is not None and n <= len(text) else line.text
        heat_ns = line.ns / max_ns
        heat_insns = line.insns / max_insns
        classes = ["l"]
        if line.on_ns:
            classes.append("pn")
        if line.on_insns:
            classes.append("pi")
        if with_witness and line.witness_insns:
            classes.append("pw")
        if with_witness and line.on_insns and line.witness_insns < line.insns:
            classes.append("miss")  # the witness runs less of it than the worst path
        witness_cells = (f'<td class="m">{_MARK_W if line.witness_insns else ""}</td>'
                         if with_witness else "")
        witness_insns = (f'<td class="v">{line.witness_insns or ""}</td>'
                         if with_witness else "")
        out.append(
            f'<tr id="{_anchor(index, name, n)}" class="{" ".join(classes)}" '
            f'style="--hn:{heat_ns:.3f};--hi:{heat_insns:.3f}">'
            f'<td class="n"{_figures(line)}>{n}</td>'
            f'<td class="m">{_MARK_T if line.on_ns else ""}</td>'
            f'<td class="m">{_MARK_I if line.on_insns else ""}</td>'
            + witness_cells +
            f'<td class="v">{_ns(line.ns) if line.on_ns else ""}</td>'
            f'<td class="v">{line.insns if line.on_insns else ""}</td>'
            + witness_insns
            + (f'<td class="d">{escape(line.delta)}</td>' if with_delta else "") +
            f'<td class="s"><code>{escape(source.rstrip())}</code></td>'
            f'<td class="notes">{" ".join(line.notes)}</td></tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def _figures(line: _Line) -> str:
    """A tooltip with the line's figures on each path it is on."""
    parts = []
    if line.on_ns:
        parts.append(f"worst path by time: {_ns(line.ns)}, {line.insns_ns_path} insns")
    if line.on_insns:
        parts.append(f"worst path by instructions: {line.insns} insns, "
                     f"{_ns(line.ns_insns_path)}")
    if line.witness_insns:
        parts.append(f"the witness executes {line.witness_insns} insns here")
    return f' title="{escape("; ".join(parts))}"' if parts else ""


def _anchor(index: int, file: str, line: int) -> str:
    return f"p{index}-{''.join(c if c.isalnum() else '_' for c in Path(file).name)}-{line}"


def _ns(value: float | None) -> str:
    return "-" if value is None else format_ns(value)


_SOURCES: dict[tuple[str, str, str], list[str] | None] = {}


def _read_source(name: str, object_path: str, root: Path | None) -> list[str] | None:
    """The source file BTF names: absolute, or relative to where clang ran, which is
    usually the object's directory or one of its parents; or, named by a report
    (bpflint/report/paths.py), relative to ``root``; then to the current directory."""
    key = (name, object_path, str(root))
    if key in _SOURCES:
        return _SOURCES[key]
    path = Path(name)
    if path.is_absolute():
        candidates = [path]
    else:
        obj = Path(object_path) if root is None else root / object_path
        start = obj.resolve().parent
        bases = ([root] if root is not None else []) + [start, *start.parents, Path.cwd()]
        candidates = [base / path for base in bases]
    found = None
    for candidate in candidates:
        try:
            if candidate.is_file():
                found = candidate.read_text(encoding="utf-8", errors="replace").splitlines()
                break
        except OSError:
            continue
    _SOURCES[key] = found
    return found

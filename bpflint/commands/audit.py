"""`bpflint audit`: every BPF program loaded on this machine, its static bound, its
budget and what it really costs (root).

Loaded programs have no ELF section: budgets match them by type and name, and by
section where a link names the attach point (``xdp``, ``tcx/ingress``,
``kprobe/FUNC``, ``tracepoint/NAME``, ``raw_tp/NAME``, ``fentry``...); object globs
match ``prog/<id>``. See docs/audit.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bpflint import audit as audit_mod
from bpflint.audit import AuditedProgram, AuditReport
from bpflint.budget.config import load_config
from bpflint.budget.gate import GateReport, evaluate
from bpflint.budget.units import format_ns
from bpflint.commands import COMMANDS
from bpflint.commands.analyze import add_cpu_caches_argument, cpu_caches, load_table
from bpflint.cost.options import AnalysisOptions
from bpflint.errors import BpfLintError
from bpflint.kernel import introspect
from bpflint.report import prometheus
from bpflint.results import AnalysisReport

NAME = "audit"
HELP = COMMANDS[NAME]

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_ERROR = 2
FORMATS = ("text", "json", "prometheus")
MAX_SAMPLE_SECONDS = 3600.0
# audits run unattended (cron, a DaemonSet): a program the engine cannot finish in
# this long is reported as such rather than holding up the rest
DEFAULT_MAX_SECONDS = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="output format (default: text)")
    parser.add_argument("--output", "-o", type=Path, metavar="FILE",
                        help="write the report to FILE (atomically: a temporary file renamed "
                             "into place) instead of standard output")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="check the loaded programs against this bpfbudget.toml's "
                             "budgets (exit 1 on a violation)")
    parser.add_argument("--cost-table", metavar="FILE",
                        help="cost table (TOML) written by `bpflint calibrate` (default: the "
                             "config's, else the one shipped)")
    add_cpu_caches_argument(parser)
    parser.add_argument("--sample", type=float, metavar="SECONDS",
                        help="turn run-time statistics on for SECONDS (BPF_ENABLE_STATS; off "
                             "again afterwards) and report what the programs cost meanwhile")
    parser.add_argument("--id", type=int, action="append", dest="ids", metavar="ID",
                        help="audit only this program id (repeatable)")
    parser.add_argument("--max-seconds", type=float, metavar="S",
                        help=f"CPU seconds per program (default: {DEFAULT_MAX_SECONDS:g})")


def run(args: argparse.Namespace) -> int:
    if not introspect.is_root():
        raise BpfLintError("audit needs root: the kernel lists loaded BPF programs only to "
                           "CAP_SYS_ADMIN")
    if args.sample is not None and not 0 < args.sample <= MAX_SAMPLE_SECONDS:
        raise BpfLintError(f"--sample must be more than 0 and at most "
                           f"{MAX_SAMPLE_SECONDS:g} seconds, not {args.sample:g}")
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise BpfLintError(f"--max-seconds must be more than zero, not {args.max_seconds:g}")
    config = load_config(args.config) if args.config is not None else None
    table_path = args.cost_table or (str(config.cost_table) if config and config.cost_table
                                     else None)
    table = load_table(table_path, cpu_caches(args, config.cpu_caches if config else None))
    options = AnalysisOptions(max_seconds=args.max_seconds or DEFAULT_MAX_SECONDS)
    report = audit_mod.run_audit(table, options, ids=args.ids or (),
                                 sample_seconds=args.sample)
    gate = budget_gate(report, config) if config is not None else None
    text = render(args.format, report, gate)
    if args.output is not None:
        write_atomically(args.output, text)
    else:
        sys.stdout.write(text)
    if args.format != "text":  # the text report shows these itself
        for program in report.programs:
            if program.warning():
                print(f"bpflint: WARNING: {program.warning()}", file=sys.stderr)
    for note in report.notes:
        print(f"bpflint: note: {note}", file=sys.stderr)
    return gate.exit_code if gate is not None else EXIT_OK


def budget_gate(report: AuditReport, config: Any) -> GateReport:
    """The same gate as `check`, over the loaded programs, without a baseline."""
    results = tuple(p.result for p in report.programs if p.result is not None)
    return evaluate(AnalysisReport(results, ()), config, None)


def violations(report: AuditReport, gate: GateReport | None) -> dict[int, bool] | None:
    if gate is None:
        return None
    failing = {v.result.object for v in gate.programs
               if v.result is not None and v.status == "fail"}
    return {p.id: f"{audit_mod.OBJECT_PREFIX}{p.id}" in failing
            for p in report.programs if p.result is not None}


def _verdicts(gate: GateReport | None) -> dict[str, Any]:
    if gate is None:
        return {}
    return {v.result.object: v for v in gate.programs if v.result is not None}


def render(fmt: str, report: AuditReport, gate: GateReport | None) -> str:
    if fmt == "prometheus":
        return prometheus.render(report, violations(report, gate))
    if fmt == "json":
        return render_json(report, gate)
    return render_text(report, gate)


def write_atomically(path: Path, text: str) -> None:
    """Write beside the target and rename: a collector never reads half a file."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)  # node-exporter need not run as root
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise BpfLintError(f"{path}: cannot write: {exc.strerror or exc}") from None


# -- text --------------------------------------------------------------------------

def _range_insns(program: AuditedProgram) -> str:
    result = program.result
    if result is None:
        return "-"
    low = "-" if result.insns_min is None else str(result.insns_min)
    high = "unbounded" if not result.bounded else str(result.insns_max)
    return f"[{low}, {high}]"


def _range_ns(program: AuditedProgram) -> str:
    result = program.result
    if result is None or result.ns_min is None:
        return "-"
    high = format_ns(result.ns_max) if result.ns_max is not None else "unbounded"
    return f"[{format_ns(result.ns_min)}, {high}]"


def _measured_cells(program: AuditedProgram) -> tuple[str, str, str]:
    measured = program.measured
    if measured is None:
        return ("-", "-", "-")
    avg = measured.avg_ns
    ratio = program.ratio
    return (str(measured.run_cnt), "-" if avg is None else format_ns(avg),
            "-" if ratio is None else f"{ratio:.2f}")


def render_text(report: AuditReport, gate: GateReport | None) -> str:
    verdicts = _verdicts(gate)
    header = ["ID", "NAME", "TYPE", "TAG", "ATTACHED", "INSNS", "NS"]
    measuring = bool(report.stats)
    if measuring:
        header += ["RUNS", "AVG", "AVG/MAX"]
    if gate is not None:
        header += ["BUDGET"]
    rows = [header]
    for program in report.programs:
        row = [str(program.id), program.name, program.type, program.tag, program.attached,
               _range_insns(program), _range_ns(program)]
        if measuring:
            row += list(_measured_cells(program))
        if gate is not None:
            verdict = verdicts.get(f"{audit_mod.OBJECT_PREFIX}{program.id}")
            row += [verdict.status.upper() if verdict is not None else "-"]
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
             for row in rows]
    for program in report.programs:
        if program.warning():
            lines.append(f"WARNING: {program.warning()}")
    for program in report.programs:
        if program.error:
            lines.append(f"prog {program.id} {program.name}: not analysed: {program.error}")
    if gate is not None:
        for verdict in gate.programs:
            for finding in verdict.findings:
                if finding.level == "error":
                    lines.append(f"{finding.rule} {finding.message}")
    if report.hooks:
        lines.append("")
        hook_rows = [["HOOK", "PROGRAMS", "SUM INSNS MAX", "SUM NS MAX"]]
        for hook in report.hooks:
            hook_rows.append([hook.target, " ".join(map(str, hook.program_ids)),
                              "unbounded" if hook.insns_max is None else str(hook.insns_max),
                              "-" if hook.ns_max is None else format_ns(hook.ns_max)])
        hook_widths = [max(len(row[i]) for row in hook_rows) for i in range(4)]
        lines += ["  ".join(cell.ljust(hook_widths[i]) for i, cell in enumerate(row)).rstrip()
                  for row in hook_rows]
    lines.append("")
    lines.append(_summary(report, gate))
    return "\n".join(lines) + "\n"


def _summary(report: AuditReport, gate: GateReport | None) -> str:
    analysed = sum(1 for p in report.programs if p.result is not None)
    parts = [f"{len(report.programs)} program(s) loaded, {analysed} analysed"]
    if report.stats == "sample":
        parts.append(f"run statistics sampled for {report.sample_seconds:g}s")
    elif report.stats == "sysctl":
        parts.append("run statistics since kernel.bpf_stats_enabled was turned on")
    if report.stats and report.stats_floor_ns is not None:
        parts.append(f"bpf_stats reports {report.stats_floor_ns:.1f} ns for an empty "
                     "program here (in every AVG; AVG/MAX compares what is left)")
    else:
        parts.append("no run statistics (kernel.bpf_stats_enabled is off; --sample SECONDS)")
    if gate is not None:
        failed = len(gate.failures)
        parts.append(f"{failed} budget violation(s)" if failed else "every budget met")
    return "bpflint: audit: " + "; ".join(parts)


# -- JSON --------------------------------------------------------------------------

def _program_json(program: AuditedProgram, verdict: Any) -> dict[str, Any]:
    result = program.result
    measured = program.measured
    out: dict[str, Any] = {
        "id": program.id, "object": f"{audit_mod.OBJECT_PREFIX}{program.id}",
        "name": program.name, "kernel_name": program.kernel_name,
        "type": program.type, "tag": program.tag, "section": program.section,
        "attached": [{"link_id": link.id, "kind": link.kind, "target": link.target,
                      "hook": link.hook} for link in program.links],
        "xlated_insns": program.xlated_insns, "verified_insns": program.verified_insns,
        "jited_bytes": program.jited_bytes,
        "bounded": result.bounded if result is not None else False,
        "insns": ({"min": result.insns_min, "max": result.insns_max}
                  if result is not None else None),
        "ns": {"min": result.ns_min, "max": result.ns_max} if result is not None else None,
        "insn_count": result.insn_count if result is not None else None,
        "source": (None if result is None or result.source is None
                   else {"file": result.source.file, "line": result.source.line}),
        "worst_path": [{"file": c.file, "line": c.line, "insns": c.insns, "ns": c.ns}
                       for c in (result.worst_path if result is not None else ())],
        "diagnostics": [{"rule": d.rule, "name": d.name, "message": d.message}
                        for d in (result.diagnostics if result is not None else ())],
        "warnings": list(result.warnings) if result is not None else [],
        "notes": list(program.notes),
        "error": program.error or None,
        "measured": None if measured is None else {
            "run_cnt": measured.run_cnt, "run_time_ns": measured.run_time_ns,
            "avg_ns": None if measured.avg_ns is None else round(measured.avg_ns, 3),
            "stats_floor_ns": round(measured.floor_ns, 3),
            "net_avg_ns": (None if measured.net_avg_ns is None
                           else round(measured.net_avg_ns, 3)),
            "seconds": measured.seconds,
            "ratio_to_ns_max": None if program.ratio is None else round(program.ratio, 4)},
        "over_static_max": program.over_static_max,
        "over_static_max_message": program.warning() or None,
    }
    if verdict is not None:
        out["budget"] = {"status": verdict.status,
                         "matched": verdict.budget.label if verdict.budget else None,
                         "findings": [{"rule": f.rule, "level": f.level, "message": f.message}
                                      for f in verdict.findings]}
    return out


def render_json(report: AuditReport, gate: GateReport | None) -> str:
    verdicts = _verdicts(gate)
    doc = {
        "version": 1,
        "kernel": os.uname().release,
        "stats": {"source": report.stats or None, "seconds": report.sample_seconds,
                  "floor_ns": (None if report.stats_floor_ns is None
                               else round(report.stats_floor_ns, 3))},
        "programs": [_program_json(p, verdicts.get(f"{audit_mod.OBJECT_PREFIX}{p.id}"))
                     for p in report.programs],
        "hooks": [{"hook": h.hook, "target": h.target, "program_ids": list(h.program_ids),
                   "insns_max": h.insns_max, "ns_max": h.ns_max} for h in report.hooks],
        "budget_violations": (None if gate is None else len(gate.failures)),
        "notes": list(report.notes),
    }
    return json.dumps(doc, indent=2) + "\n"

"""Prometheus text exposition (version 0.0.4) of an audit, for node-exporter's
textfile collector: one sample per loaded program and metric, HELP and TYPE first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bpflint.audit import AuditedProgram, AuditReport, HookSum

# (name, help) in the order they are written
METRICS: tuple[tuple[str, str], ...] = (
    ("bpflint_program_insns_max", "Static worst case of the translated program, in BPF "
                                  "instructions (+Inf when unbounded)."),
    ("bpflint_program_ns_max", "Static worst case of the translated program, in "
                               "nanoseconds from the cost table (+Inf when unbounded)."),
    ("bpflint_program_bounded", "1 when a worst case was proven, 0 when not (or the "
                                "program could not be analysed)."),
    ("bpflint_program_run_avg_ns", "Measured average run time from bpf_stats, in "
                                   "nanoseconds."),
    ("bpflint_program_run_count", "Runs counted by bpf_stats in the measured window."),
    ("bpflint_budget_violation", "1 when the program breaks the budget that matches it "
                                 "in bpfbudget.toml, else 0."),
    ("bpflint_hook_ns_max", "Sum of the static worst cases of every program attached to "
                            "one hook, in nanoseconds."),
)


def escape(value: str) -> str:
    """A label value as the exposition format wants it: backslash, quote and newline
    escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{key}="{escape(value)}"' for key, value in pairs.items()) + "}"


def _number(value: float | None) -> str:
    if value is None:
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _program_labels(program: AuditedProgram) -> dict[str, str]:
    return {"id": str(program.id), "name": program.name, "type": program.type}


def render(report: AuditReport, violations: Mapping[int, bool] | None = None) -> str:
    """``violations``: program id -> whether it breaks its budget (None: no budgets)."""
    samples: dict[str, list[str]] = {name: [] for name, _ in METRICS}
    for program in report.programs:
        labels = _labels(_program_labels(program))
        result = program.result
        if result is not None:
            samples["bpflint_program_insns_max"].append(
                f"bpflint_program_insns_max{labels} {_number(result.insns_max)}")
            samples["bpflint_program_ns_max"].append(
                f"bpflint_program_ns_max{labels} {_number(result.ns_max)}")
        bounded = result is not None and result.bounded
        samples["bpflint_program_bounded"].append(
            f"bpflint_program_bounded{labels} {int(bounded)}")
        if program.measured is not None:
            samples["bpflint_program_run_count"].append(
                f"bpflint_program_run_count{labels} {program.measured.run_cnt}")
            if program.measured.avg_ns is not None:
                samples["bpflint_program_run_avg_ns"].append(
                    f"bpflint_program_run_avg_ns{labels} {_number(program.measured.avg_ns)}")
        if violations is not None and program.id in violations:
            samples["bpflint_budget_violation"].append(
                f"bpflint_budget_violation{labels} {int(violations[program.id])}")
    for hook in report.hooks:
        samples["bpflint_hook_ns_max"].append(_hook_sample(hook))
    lines: list[str] = []
    for name, help_text in METRICS:
        if samples[name]:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} gauge")
            lines.extend(samples[name])
    return "\n".join(lines) + "\n" if lines else ""


def _hook_sample(hook: HookSum) -> str:
    labels = _labels({"hook": hook.hook, "programs": str(len(hook.program_ids))})
    return f"bpflint_hook_ns_max{labels} {_number(hook.ns_max)}"


def metric_names(text: str) -> Sequence[str]:
    """The metric names of the samples in an exposition (for tests and checks)."""
    return [line.split("{", 1)[0].split(" ", 1)[0] for line in text.splitlines()
            if line and not line.startswith("#")]

"""Hand-made analysis results and configs for the gate and report tests."""

from __future__ import annotations

from pathlib import Path

from bpflint.budget.config import BudgetConfig, load_config
from bpflint.results import Diagnostic, LineCost, ProgramResult, SourceLoc


def program(name: str, *, section: str = "xdp", type_: str = "xdp", obj: str = "fw.bpf.o",
            insns_max: int | None = 100, ns_max: float | None = 500.0,
            bounded: bool = True, hot: tuple[LineCost, ...] = (),
            diagnostics: tuple[Diagnostic, ...] = (), source_file: str = "fw.bpf.c"
            ) -> ProgramResult:
    return ProgramResult(
        object=obj, section=section, name=name, type=type_, insn_count=50,
        bounded=bounded,
        insns_min=10, insns_max=insns_max if bounded else None,
        ns_min=20.0, ns_max=ns_max if bounded else None,
        source=SourceLoc(source_file, 3), line_costs=hot,
        worst_path=tuple(sorted(hot, key=lambda c: c.line)), diagnostics=diagnostics)


def config(tmp_path: Path, text: str) -> BudgetConfig:
    path = tmp_path / "bpfbudget.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


HOT = (
    LineCost("fw.bpf.c", 12, 700, 900.0, "for (i = 0; i < n; i++)"),
    LineCost("fw.bpf.c", 14, 200, 300.0, "sum += data[i];"),
    LineCost("fw.bpf.c", 9, 50, 60.0, "if (data + 14 > end)"),
    LineCost("fw.bpf.c", 20, 5, 6.0, "return XDP_PASS;"),
)

"""The ns ranges against the kernel's clock (benchmarks/ns_validation.py).

Every program of the validation set is timed on its best-case and worst-case
packets with BPF_PROG_TEST_RUN (minimum over samples, the empty program's
minimum subtracted; see that module's docstring for why minima). Soundness is
asserted for every row; tightness (ns.max <= 2 x the measured worst case) for
worst-case rows measuring >= 50 ns, except the programs in KNOWN_LOOSE, whose
ratio is held to the stated ceiling instead (docs/ns-validation.md explains
them).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bpflint.cost.model import CostTable
from bpflint.kernel.syscall import BpfSyscallError, bpf_usable, missing_feature

USABLE, REASON = bpf_usable()
BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "ns_validation.py"

# The 2x goal, with room for run-to-run noise: calibration and measurement move by up
# to ~15 % between runs on this machine (ns_for_each measured 1.73x-1.88x on the same
# code), so a program at 1.9x can cross 2.0 without any change. docs/ns-validation.md
# holds each run's figures against the plain 2x.
TIGHT_WITH_NOISE = 2.5
# program -> a looser ceiling on ns.max / measured worst case. The tests run on
# whatever CPU CI has: these are the ceilings the earlier, additive model was held
# to (~1.5x the worst ratio seen on an Intel Xeon, or 1.3x the ratio projected for an
# AMD EPYC, where nested3 measured 61-85 ns against ~290 ns estimated); the current
# model's estimates are lower on every row, so they still bound it there, and a
# regression past them fails. On the Intel Xeon of docs/ns-validation.md every row
# is within TIGHT_WITH_NOISE except ns_bpf_loop, whose iterations measure 1.0-2.5 ns
# run to run (the core's sibling idle or busy).
KNOWN_LOOSE: dict[str, float] = {
    "ns_alu_loop": 3.0, "ns_bpf_loop": 4.0, "ns_call_loop": 7.0, "ns_hash_ops": 3.0,
    "ns_array_ops": 5.0, "ns_pkt_sum": 5.5, "csum_loop": 4.5, "calls_chain": 5.5,
    "nested3": 6.0, "loop_signed_down": 4.5, "bpf_loop_const": 4.5, "loop_clamped": 8.0,
}


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ns_validation", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _bench()


@pytest.fixture(scope="module")
def table(bench: ModuleType) -> CostTable:
    # The table is measured on this machine first: the shipped one describes another CPU.
    # What this kernel refuses to calibrate is priced from the shipped table (and named).
    return bench.calibrated_table()


# programs this kernel cannot run (a helper or instruction it lacks) -> its reason
UNRUNNABLE: dict[str, str] = {}


@pytest.fixture(scope="module")
def rows(bench: ModuleType, table: CostTable) -> list:
    out = []
    for case in bench.CASES:
        try:
            out += bench.run_case(case, table)
        except BpfSyscallError as exc:
            lacks = missing_feature(exc)
            if lacks is None:
                raise
            UNRUNNABLE[case.program] = lacks
    return out


pytestmark = [pytest.mark.kernel, pytest.mark.slow,
              pytest.mark.skipif(not USABLE, reason=REASON)]


def test_the_table_is_measured_here_or_says_why_not(table: CostTable) -> None:
    why = dict(table.provenance.not_measured)
    assert all(" refused: " in w and "; priced from " in w for w in why.values()), why
    # most of it is this machine's: the validation judges this CPU's figures
    measured = [c for k, c in table.insns.items() if f"insn.{k}" not in why
                and c.median_ns is not None]
    assert len(measured) >= len(table.insns) // 2, why


def test_validation_set_is_broad(rows: list) -> None:
    programs = {r.program for r in rows}
    assert len(programs) >= 12, f"programs this kernel cannot run: {UNRUNNABLE}"
    worst = [r for r in rows if r.tightness_applies]
    assert len(worst) >= 6  # enough rows well above the noise to judge tightness


def test_every_measurement_lies_inside_its_estimate(rows: list) -> None:
    outside = [f"{r.program} on {r.input}: measured {r.measured_ns:.0f} ns, estimate "
               f"[{r.est_min_ns:.1f}, {r.est_max_ns:.1f}]" for r in rows if not r.inside]
    assert not outside, outside


def test_worst_case_estimates_are_tight(rows: list) -> None:
    loose = []
    for r in rows:
        if not r.tightness_applies:
            continue
        ceiling = KNOWN_LOOSE.get(r.program, TIGHT_WITH_NOISE)
        if r.est_max_ns > ceiling * r.measured_ns:
            loose.append(f"{r.program} on {r.input}: max {r.est_max_ns:.0f} ns > "
                         f"{ceiling:g} x measured {r.measured_ns:.0f} ns")
    assert not loose, loose

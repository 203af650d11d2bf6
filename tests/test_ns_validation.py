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

from bpflint.cost.model import load_cost_table
from bpflint.kernel.syscall import bpf_usable

USABLE, REASON = bpf_usable()
BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "ns_validation.py"

# program -> ceiling on ns.max / measured worst case, for programs the additive
# per-instruction model prices loosely (short dependency chains run in parallel on
# an out-of-order core; the table prices each instruction at its chained cost).
# NOT the 2x goal: ceilings are ~1.5x the worst ratio seen over several
# runs, so a regression fails while the engine's model is being tightened.
KNOWN_LOOSE: dict[str, float] = {
    "ns_alu_loop": 6.0, "ns_bpf_loop": 3.5, "ns_call_loop": 3.5, "ns_array_ops": 6.0,
    "ns_pkt_sum": 14.0, "csum_loop": 5.0, "calls_chain": 3.5, "nested3": 8.0,
    "loop_signed_down": 8.0, "bpf_loop_const": 3.5, "loop_clamped": 12.0,
}


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ns_validation", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows() -> list:
    return _bench().run_all(load_cost_table(None))


pytestmark = [pytest.mark.kernel, pytest.mark.slow,
              pytest.mark.skipif(not USABLE, reason=REASON)]


def test_validation_set_is_broad(rows: list) -> None:
    programs = {r.program for r in rows}
    assert len(programs) >= 12
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
        ceiling = KNOWN_LOOSE.get(r.program, 2.0)
        if r.est_max_ns > ceiling * r.measured_ns:
            loose.append(f"{r.program} on {r.input}: max {r.est_max_ns:.0f} ns > "
                         f"{ceiling:g} x measured {r.measured_ns:.0f} ns")
    assert not loose, loose

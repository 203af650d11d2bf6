"""Quick calibration on the live kernel produces a complete, sane table."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bpflint.cost.calibrate import QUICK, run_calibration
from bpflint.cost.model import INSN_KEYS, OPTIONAL_INSN_KEYS, parse_cost_table
from bpflint.kernel.syscall import bpf_usable

USABLE, REASON = bpf_usable()


@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.skipif(not USABLE, reason=REASON)
def test_quick_calibration_is_complete_and_sane() -> None:
    progress: list[str] = []
    text = run_calibration(replace(QUICK, progress=progress.append), ringbuf_bytes=1 << 22)
    table = parse_cost_table(text, "calibrated.toml")
    assert progress and progress[-1].startswith(f"[{len(progress)}/")
    assert set(table.insns) == set(INSN_KEYS) | set(OPTIONAL_INSN_KEYS)
    # hash maps are priced by key size too: a 64-byte key costs at least a 4-byte one
    for helper in ("map_lookup_elem", "map_update_elem", "map_delete_elem"):
        hashed = table.helpers[helper].variant("hash")
        assert hashed is not None and hashed.per_key is not None
        assert hashed.max_for_key(4) <= hashed.max_for_key(64) <= hashed.max_ns + 1e-3
    measured = [c for c in table.insns.values() if c.median_ns is not None]
    measured += [h.base for h in table.helpers.values() if h.max_units is None]
    assert all(c.max_ns > 0 and c.min_ns >= 0 and c.spread_pct is not None for c in measured)
    # size-dependent helpers: the fitted base may be ~0 (bpf_loop of 0 iterations),
    # the per-unit part may not
    sized = [h for h in table.helpers.values() if h.max_units is not None]
    assert all(h.per_unit_max_ns > 0 and h.base.spread_pct is not None for h in sized)
    loop = table.helpers["loop"]
    assert loop.per_unit_min_ns > 0.5  # a callback call per iteration (min / 1.3 margin)
    assert len(table.helpers) >= 30
    # a record written to a real perf buffer, a stack walked into a real stack map
    assert table.helpers["perf_event_output"].base.max_ns > table.insns["alu_mov"].max_ns
    assert table.helpers["get_stackid"].base.min_ns > 0
    assert table.insns["alu_div"].min_ns > table.insns["alu_mov"].min_ns

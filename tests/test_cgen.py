"""The C-level fuzzer (tests/cgen_*.py): a few fixed seeds end to end, and the
generator's coverage. scripts/fuzz_c.py runs any number; docs/validation.md has the
figures of the large runs."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import pytest
from cgen_gen import PROG_TYPES, generate
from cgen_run import Stats, run_seeds, usable

USABLE, REASON = usable()
SLICE = range(30_000, 30_004)  # fixed: CI sees the same programs every run
# two programs of the idiom families (cgen_idioms.py): continue loops, a two-step while,
# string compares, an IPv6 extension-header walk, memset/memcpy, string reads
IDIOM_SLICE = range(70_010, 70_013, 2)


def test_same_seed_same_source_other_seed_other_source() -> None:
    assert generate(5).source == generate(5).source
    assert generate(5).source != generate(6).source


def test_generator_covers_the_idioms() -> None:
    feats: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for seed in range(300):
        prog = generate(seed)
        kinds[prog.prog_type] += 1
        feats.update(prog.features)
    for kind in PROG_TYPES:
        assert kinds[kind] >= 40, f"{kind}: {kinds[kind]} of 300"
    for feat in ("parse", "loop", "bound_const", "bound_knob", "bound_mask", "bound_min",
                 "map_value", "nested_dependent", "bpf_loop", "for_each", "pragma_unroll",
                 "switch", "early_return", "break", "continue", "size_u8", "size_clamp",
                 "static_func", "global_func", "iter", "may_goto", "packet_loop",
                 "loop_down", "loop_step2", "loop_while"):
        assert feats[feat] >= 5, f"{feat} in {feats[feat]} of 300 programs"
    for feat in IDIOM_FEATURES:
        assert feats[feat] >= 5, f"{feat} in {feats[feat]} of 300 programs"


IDIOM_FEATURES = ("cont_loop", "multi_step_while", "two_exit_loop", "ipv6_walk", "tcp_opts",
                  "vlan_walk", "scratch", "read_kernel_str", "read_kernel", "read_str",
                  "ringbuf", "ringbuf_output", "perf_out", "tail_call", "strncmp",
                  "manual_strcmp", "memops", "gscalar_call", "cb_static", "nested_cb",
                  "big_switch", "expect_if")


def test_without_idioms_the_first_generators_programs_come_back() -> None:
    """generate(seed, idioms=False) is the generator of the first runs (their seeds
    stay reproducible): none of the idioms' features, and another program."""
    for seed in range(40):
        plain = generate(seed, idioms=False)
        assert not set(plain.features) & set(IDIOM_FEATURES), plain.features
        assert plain.source == generate(seed, idioms=False).source
    assert any(generate(s, idioms=False).source != generate(s).source for s in range(5))


@pytest.mark.kernel
@pytest.mark.skipif(not USABLE, reason=f"the C fuzzer cannot run here: {REASON}")
def test_a_fixed_slice_runs_inside_the_bounds() -> None:
    with tempfile.TemporaryDirectory(prefix="cgen-") as tmp:
        stats: Stats = run_seeds(SLICE, runs=6, kernel_runs=1, witness_s=0.0,
                                 workdir=Path(tmp), idioms=False)
        stats.merge(run_seeds(IDIOM_SLICE, runs=6, kernel_runs=1, witness_s=0.0,
                              workdir=Path(tmp)))
    assert stats.accepted >= (len(SLICE) + len(IDIOM_SLICE)) // 2, stats.rejected
    assert stats.executions >= 6 * stats.accepted // 2
    assert stats.comparisons >= 1
    assert not stats.violations, stats.violations
    assert not stats.mismatches and not stats.analysis_errors, stats.notes

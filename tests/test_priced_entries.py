"""Entries the shipped cost table gained one at a time (open-coded iterator kfuncs,
fib_lookup, trace_printk, redirect_neigh, skb_change_head/tail, skb_adjust_room,
map-in-map lookups, perf_event_output's per-byte part): the engine prices a call by
its name from the table, not from the 5 us default, and the table says where each
figure comes from."""

from __future__ import annotations

import dataclasses
import functools
import math

import pytest
from bpfc import PROGS, compile_bpf, find_clang

from bpflint.cost.engine import analyze_program
from bpflint.cost.model import Cost, CostTable, HelperCost
from bpflint.cost.options import AnalysisOptions
from bpflint.cost.table_file import load_cost_table
from bpflint.kernel.calibrate import table as cal_table
from bpflint.kernel.calibrate.benches import COLD_MAP_TYPES
from bpflint.obj.model import BpfObject
from bpflint.obj.reader import load_object
from bpflint.results import ProgramResult

needs_clang = pytest.mark.skipif(find_clang() is None, reason="clang is needed")

# program in tests/progs/priced/priced_helpers.bpf.c -> (helper, map variant or "")
HELPER_PROGRAMS = {
    "fib": ("fib_lookup", ""),
    "printk": ("trace_printk", ""),
    "perf_out": ("perf_event_output", ""),
    "in_hash_of_maps": ("map_lookup_elem", "hash_of_maps"),
    "in_array_of_maps": ("map_lookup_elem", "array_of_maps"),
    "neigh": ("redirect_neigh", ""),
    "change_head": ("skb_change_head", ""),
    "change_tail": ("skb_change_tail", ""),
    "adjust_room": ("skb_adjust_room", ""),
}
KFUNCS = ("bpf_iter_num_new", "bpf_iter_num_next", "bpf_iter_num_destroy")


def shipped() -> CostTable:
    # a fresh copy each time: a table records the defaults it used
    return dataclasses.replace(load_cost_table(None), _missing={}, _priced={})


@functools.cache
def obj(source: str) -> BpfObject:
    return load_object(str(compile_bpf(PROGS / source)))


def run(source: str, name: str, table: CostTable) -> ProgramResult:
    o = obj(source)
    program = next(p for p in o.programs if p.name == name)
    return analyze_program(o, program, table, AnalysisOptions())


def defaulted(result: ProgramResult) -> list[str]:
    return [w for w in result.warnings if w.startswith("no cost known for ")]


def with_helper_price(table: CostTable, helper: str, variant: str, ns: float) -> CostTable:
    """The table with ``helper`` (or its map variant) at exactly ``ns``, any size."""
    entry = table.helpers[helper]
    if variant:
        entry = dataclasses.replace(entry, by_map_type=tuple(
            (v, Cost(ns, ns) if v == variant else c) for v, c in entry.by_map_type))
    else:
        entry = HelperCost(Cost(ns, ns), 0.0, 0.0,
                           None if entry.max_units is None else entry.max_units)
    return dataclasses.replace(table, helpers={**table.helpers, helper: entry},
                               _missing={}, _priced={})


@needs_clang
@pytest.mark.parametrize("program", sorted(HELPER_PROGRAMS))
def test_each_new_helper_entry_prices_its_call(program: str) -> None:
    helper, variant = HELPER_PROGRAMS[program]
    source = "priced/priced_helpers.bpf.c"
    table = shipped()
    entry = table.helpers[helper]
    assert entry.variant(variant) is not None if variant else entry is not None
    got = run(source, program, table)
    assert got.bounded and got.ns_max is not None and not defaulted(got), got.warnings
    # one call on the worst path: pricing it 1000 ns higher adds exactly 1000 ns
    low = run(source, program, with_helper_price(table, helper, variant, 1234.5))
    high = run(source, program, with_helper_price(table, helper, variant, 2234.5))
    assert low.ns_max is not None and high.ns_max is not None
    assert math.isclose(high.ns_max - low.ns_max, 1000.0, abs_tol=1e-6)
    # without the entry the call falls back to the default, and says so
    removed = dict(table.helpers)
    if variant:
        removed[helper] = dataclasses.replace(entry, by_map_type=tuple(
            (v, c) for v, c in entry.by_map_type if v != variant))
    else:
        del removed[helper]
    fallback = run(source, program, dataclasses.replace(table, helpers=removed, _missing={},
                                                        _priced={}))
    label = f"{helper}[{variant}]" if variant else helper
    assert f"no cost known for {label}; using the table's default" in fallback.warnings


@needs_clang
@pytest.mark.parametrize("program", ["iter_for", "iter_repeat", "iter_raw"])
def test_iterator_kfuncs_are_priced_by_name_from_the_table(program: str) -> None:
    table = shipped()
    assert set(KFUNCS) <= set(table.kfuncs)
    got = run("iter_num.bpf.c", program, table)
    assert got.bounded and got.ns_max is not None and not defaulted(got), got.warnings
    # each kfunc's own entry: a dearer next makes the worst case dearer by a whole
    # number of calls of it (one per round, and the one that ends the loop)
    for name in KFUNCS:
        dearer = dataclasses.replace(table, kfuncs={**table.kfuncs, name: Cost(0.0, 1000.0)},
                                     _missing={}, _priced={})
        more = run("iter_num.bpf.c", program, dearer)
        assert more.ns_max is not None
        calls = (more.ns_max - got.ns_max) / (1000.0 - table.kfuncs[name].max_ns)
        assert round(calls) >= 1 and math.isclose(calls, round(calls), abs_tol=1e-6), \
            (name, calls)
    bare = dataclasses.replace(table, kfuncs={}, _missing={}, _priced={})
    assert {f"no cost known for {k}; using the table's default" for k in KFUNCS} <= \
        set(run("iter_num.bpf.c", program, bare).warnings)


def test_the_shipped_table_says_where_each_added_entry_comes_from() -> None:
    table = load_cost_table(None)
    added = dict(table.provenance.added)
    for helper, variant in HELPER_PROGRAMS.values():
        key = f"helper.{helper}" + (f".map.{variant}" if variant else "")
        assert key in added and "bpflint calibrate --only" in added[key]
    for name in KFUNCS:
        assert f"kfunc.{name}" in added
    # and the hash family's cold-cache figures (docs/cost-model.md)
    cold = {f"helper.{helper}" + suffix
            for helper in ("map_lookup_elem", "map_update_elem", "map_delete_elem")
            for suffix in ("", *(f".map.{t}" for t in COLD_MAP_TYPES))}
    for key in cold:
        assert key in added and "cold-cache" in added[key], key
    # only those were merged: the other entries keep the table's own calibration
    priced = {f"helper.{helper}" + (f".map.{variant}" if variant else "")
              for helper, variant in HELPER_PROGRAMS.values()}
    assert set(added) == priced | cold | {f"kfunc.{name}" for name in KFUNCS}


def test_perf_event_output_per_byte_is_a_copy_not_noise() -> None:
    # measured here at 8..2048 bytes: about 0.1 ns a byte over a ~5 us call (a wakeup);
    # the old 3-size fit read 5.7 ns a byte, 40x a memory copy
    entry = load_cost_table(None).helpers["perf_event_output"]
    assert entry.max_units is not None
    assert 0.0 < entry.per_unit_min_ns <= entry.per_unit_max_ns < 1.0


def test_the_fit_bounds_every_measured_point_from_above_and_below() -> None:
    # perf_event_output as measured here (size, min/1.3, max(median, 1.3 min))
    measured = [(8, 5250.0, 5273.0), (64, 5248.75, 5279.75), (256, 5291.75, 5319.25),
                (512, 5310.0, 5333.25), (1024, 5363.5, 5394.0), (2048, 5503.0, 5548.0)]
    points = [(s, lo / 1.3, max(med, 1.3 * lo)) for s, lo, med in measured]
    base_lo, base_hi, per_lo, per_hi = cal_table._fit(points)
    for size, lo, hi in points:
        assert base_lo + per_lo * size <= lo + 1e-9
        assert base_hi + per_hi * size >= hi - 1e-9
    assert per_hi < 1.0

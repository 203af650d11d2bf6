"""The cost table file: its TOML format, parsing (errors name the file and line)
and loading (the shipped table, or a path).

A table is a TOML file (``bpflint calibrate`` writes one; the package ships
``bpflint/data/costs.toml``)::

    format = 1

    [provenance]                 # where the numbers come from
    kernel = "6.18.44"           # uname -r of the measuring machine
    cpu = "AMD EPYC"             # /proc/cpuinfo model name
    date = "2025-01-31"
    method = "..."               # how min and max were derived (prose)
    [provenance.not_measured]    # optional: entries calibration did not measure here
    "helper.xdp_adjust_meta" = "xdp_adjust_meta_pair: load refused: ...; priced from ..."
    [provenance.added]           # optional: entries measured later than the rest, merged
    "helper.fib_lookup" = "6.18.44, AMD EPYC, 2026-12-07: bpflint calibrate --only ..."

    [defaults]                   # what anything missing from the table costs
    helper_min_ns = 0.0
    helper_max_ns = 5000.0
    kfunc_min_ns = 0.0
    kfunc_max_ns = 5000.0
    size_cap_bytes = 4096        # size of a sized helper's buffer when unknown

    [insn]                       # one entry per instruction class (INSN_KEYS;
                                 # OPTIONAL_INSN_KEYS may be left out)
    alu_mov = { min_ns = 0.08, max_ns = 0.35, median_ns = 0.1, spread_pct = 2.0 }
    alu_simple = { min_ns = 0.05, max_ns = 0.32, issue_ns = 0.09 }

    [helper.map_lookup_elem]     # by name as in linux/bpf.h, without "bpf_"
    min_ns = 3.0                 # any map type: the envelope of the variants
    max_ns = 60.0
    [helper.map_lookup_elem.map] # per map type (MapDef.type_name)
    array = { min_ns = 0.5, max_ns = 1.2 }
    hash = { min_ns = 3.0, max_ns = 400.0, key_base_max_ns = 300.0, per_key_byte_max_ns = 5.0,
             hot_max_ns = 40.0 }

    [helper.probe_read_kernel]   # size-dependent: base + per unit of the size
    min_ns = 20.0                # argument (bytes; iterations for "loop",
    max_ns = 40.0                # elements for "for_each_map_elem")
    per_unit_min_ns = 0.01
    per_unit_max_ns = 0.05
    max_units = 4096             # documented maximum of the size argument

    [kfunc.bpf_iter_num_next]
    min_ns = 2.0
    max_ns = 5.0

Every cost includes the ``call`` instruction itself. ``median_ns`` and
``spread_pct`` are informational (what calibration saw); ``min_ns``, ``max_ns``
(and the per-unit parts) price programs. An instruction class's ``max_ns`` is its
latency (a dependent chain of copies); its optional ``issue_ns`` is what one more
independent copy adds to a stream (absent: ``max_ns``). The engine prices a run of
instructions between calls at the longer of its dependency chain and its issue
bound (bpflint/cost/overlap.py). A map variant's optional ``key_base_max_ns`` and
``per_key_byte_max_ns`` price a map of known key size at base + per byte x key size
(hashing and comparing the key grow with its length); ``max_ns`` prices one whose
key size is unknown.

CPU caches: ``max_ns`` (and the key line) of a map variant assume the map's lines are
not in any cache (a map far bigger than the last-level cache, walked in a scattered
order: what a tracepoint firing between other work finds). Its optional
``hot_max_ns`` is the figure with hot caches (the same few keys, again and again);
``CostTable.with_cpu_caches("hot")`` prices with it instead (``--cpu-caches hot``),
flat over key sizes. A helper's own ``hot_max_ns`` does the same for its any-map-type
envelope. ``min_ns`` is always the hot figure.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path
from typing import Any

from bpflint.cost import table_ready
from bpflint.cost.model import (
    DEFAULT_CPU_CACHES,
    INSN_KEYS,
    OPTIONAL_INSN_KEYS,
    Cost,
    CostTable,
    Defaults,
    HelperCost,
    Provenance,
)
from bpflint.errors import BpfLintError
from bpflint.isa.helper_ids import HELPER_NAMES

FORMAT_VERSION = 1
_COST_FIELDS = ("min_ns", "max_ns", "median_ns", "spread_pct")
_SIZED_FIELDS = ("per_unit_min_ns", "per_unit_max_ns", "max_units")
_KEYED_FIELDS = ("key_base_max_ns", "per_key_byte_max_ns")
_HOT_FIELDS = ("hot_max_ns",)
SHIPPED_NAME = "bpflint/data/costs.toml"  # how reports name the shipped table
_SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "data", "costs.toml")


# -- loading ----------------------------------------------------------------------

class _Where:
    """Finds the line of a key in the TOML text, for error messages."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, dotted: str) -> int | None:
        parts = dotted.split(".")
        last = re.escape(parts[-1])
        header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(map(re.escape, parts)) + r"\s*\]")
        key = re.compile(r"(^|[{,\s])\"?" + last + r"\"?\s*=")
        for number, line in enumerate(self.lines, 1):
            if header.search(line):
                return number
        if len(parts) >= 2:  # a field of an inline table: "alu_mov = { min_ns = ... }"
            parent = re.compile(r"^\s*\"?" + re.escape(parts[-2]) + r"\"?\s*=")
            for number, line in enumerate(self.lines, 1):
                if parent.search(line) and key.search(line):
                    return number
        for number, line in enumerate(self.lines, 1):
            if key.search(line):
                return number
        return None

    def error(self, dotted: str, problem: str) -> BpfLintError:
        line = self.line_of(dotted)
        at = f":{line}" if line else ""
        return BpfLintError(f"{self.path}{at}: cost table key '{dotted}': {problem}")


def _number(where: _Where, dotted: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where.error(dotted, f"expected a number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise where.error(dotted, f"must be {'positive' if positive else '>= 0'}, got {value}")
    return float(value)


def _table(where: _Where, dotted: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise where.error(dotted, f"expected a table, got {value!r}")
    return value


def _unknown(where: _Where, prefix: str, table: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            hint = _suggest(key, allowed)
            raise where.error(f"{prefix}.{key}", "unknown key" + hint)


def _suggest(key: str, allowed: tuple[str, ...]) -> str:
    import difflib

    close = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _cost(where: _Where, dotted: str, value: Any, extra: tuple[str, ...] = ()) -> Cost:
    """One cost entry; ``extra``: the optional fields this kind of entry may have."""
    table = _table(where, dotted, value)
    _unknown(where, dotted, table, _COST_FIELDS + extra)
    for required in ("min_ns", "max_ns"):
        if required not in table:
            raise where.error(f"{dotted}.{required}", "missing")
    lo = _number(where, f"{dotted}.min_ns", table["min_ns"])
    hi = _number(where, f"{dotted}.max_ns", table["max_ns"])
    if hi < lo:
        raise where.error(dotted, f"max_ns {hi} is below min_ns {lo}")
    hot_hi = table.get("hot_max_ns")
    if hot_hi is not None:
        hot_hi = _number(where, f"{dotted}.hot_max_ns", hot_hi)
        if hot_hi < lo:
            raise where.error(dotted, f"hot_max_ns {hot_hi} is below min_ns {lo}")
        if hot_hi > hi:
            raise where.error(dotted, f"hot_max_ns {hot_hi} is above max_ns {hi} (max_ns "
                              "is the cold-cache figure, the dearer one)")
    median = table.get("median_ns")
    spread = table.get("spread_pct")
    issue = table.get("issue_ns")
    if issue is not None:
        issue = _number(where, f"{dotted}.issue_ns", issue)
        if issue > hi:
            raise where.error(dotted, f"issue_ns {issue} is above max_ns {hi}")
    keyed = [k for k in _KEYED_FIELDS if k in table]
    per_key = None
    if keyed:
        if len(keyed) != len(_KEYED_FIELDS):
            missing = next(k for k in _KEYED_FIELDS if k not in table)
            raise where.error(f"{dotted}.{missing}", "missing (a key-size line needs "
                              "key_base_max_ns and per_key_byte_max_ns)")
        per_key = (_number(where, f"{dotted}.key_base_max_ns", table["key_base_max_ns"]),
                   _number(where, f"{dotted}.per_key_byte_max_ns",
                           table["per_key_byte_max_ns"]))
    return Cost(lo, hi,
                None if median is None else _number(where, f"{dotted}.median_ns", median),
                None if spread is None else _number(where, f"{dotted}.spread_pct", spread),
                issue, per_key, hot_hi)


def _helper(where: _Where, dotted: str, value: Any) -> HelperCost:
    table = _table(where, dotted, value)
    base = _cost(where, dotted, {k: v for k, v in table.items() if k != "map"},
                 _SIZED_FIELDS + _HOT_FIELDS)
    variants: list[tuple[str, Cost]] = []
    if "map" in table:
        for map_type, cost in _table(where, f"{dotted}.map", table["map"]).items():
            variants.append((map_type, _cost(where, f"{dotted}.map.{map_type}", cost,
                                             _KEYED_FIELDS + _HOT_FIELDS)))
    sized = [k for k in _SIZED_FIELDS if k in table]
    if sized and len(sized) != len(_SIZED_FIELDS):
        missing = next(k for k in _SIZED_FIELDS if k not in table)
        raise where.error(f"{dotted}.{missing}", "missing (size-dependent helpers need "
                          "per_unit_min_ns, per_unit_max_ns and max_units)")
    if not sized:
        return HelperCost(base, by_map_type=tuple(variants))
    per_lo = _number(where, f"{dotted}.per_unit_min_ns", table["per_unit_min_ns"])
    per_hi = _number(where, f"{dotted}.per_unit_max_ns", table["per_unit_max_ns"])
    if per_hi < per_lo:
        raise where.error(dotted, f"per_unit_max_ns {per_hi} is below per_unit_min_ns {per_lo}")
    max_units = table["max_units"]
    if isinstance(max_units, bool) or not isinstance(max_units, int) or max_units < 0:
        raise where.error(f"{dotted}.max_units", f"expected an integer >= 0, got {max_units!r}")
    return HelperCost(base, per_lo, per_hi, max_units, tuple(variants))


def toml_document(text: str, path: str) -> dict[str, Any]:
    """The TOML text parsed (tomllib imported only here: the shipped table comes
    parsed, table_ready.py)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BpfLintError(f"{path}: not valid TOML: {exc}") from None


def parse_cost_table(text: str, path: str, doc: dict[str, Any] | None = None,
                     text_sha256: str | None = None) -> CostTable:
    """The table in ``text``; ``doc``, when given, is that text already parsed (and
    ``text_sha256`` its digest): the checks below run on it all the same."""
    where = _Where(path, text)
    if doc is None:
        doc = toml_document(text, path)
    _unknown(where, "", doc, ("format", "provenance", "defaults", "insn", "helper", "kfunc"))
    if doc.get("format") != FORMAT_VERSION:
        raise where.error("format", f"expected {FORMAT_VERSION}, got {doc.get('format')!r}")
    prov = _table(where, "provenance", doc.get("provenance"))
    fields = ("kernel", "cpu", "date", "method")
    _unknown(where, "provenance", prov, (*fields, "not_measured", "added"))
    for key in fields:
        if not isinstance(prov.get(key), str):
            raise where.error(f"provenance.{key}", "missing or not a string")
    not_measured = _table(where, "provenance.not_measured", prov.get("not_measured", {}))
    for key, why in not_measured.items():
        if not isinstance(why, str):
            raise where.error(f"provenance.not_measured.{key}",
                              f"expected a string (why it was not measured), got {why!r}")
    added = _table(where, "provenance.added", prov.get("added", {}))
    for key, how in added.items():
        if not isinstance(how, str):
            raise where.error(f"provenance.added.{key}",
                              f"expected a string (where and how it was measured), got {how!r}")
    defaults = _table(where, "defaults", doc.get("defaults"))
    default_fields = ("helper_min_ns", "helper_max_ns", "kfunc_min_ns", "kfunc_max_ns",
                      "size_cap_bytes")
    _unknown(where, "defaults", defaults, default_fields)
    for key in default_fields:
        if key not in defaults:
            raise where.error(f"defaults.{key}", "missing")
    dflt = {k: _number(where, f"defaults.{k}", defaults[k]) for k in default_fields}
    insn_table = _table(where, "insn", doc.get("insn"))
    _unknown(where, "insn", insn_table, INSN_KEYS + tuple(OPTIONAL_INSN_KEYS))
    for key in INSN_KEYS:
        if key not in insn_table:
            raise where.error(f"insn.{key}", "missing (every instruction class needs a cost)")
    insns = {k: _cost(where, f"insn.{k}", v, ("issue_ns",)) for k, v in insn_table.items()}
    for key, fallback in OPTIONAL_INSN_KEYS.items():
        insns.setdefault(key, insns[fallback])
    helpers = {name: _helper(where, f"helper.{name}", value)
               for name, value in _table(where, "helper", doc.get("helper", {})).items()}
    for name in helpers:
        if name not in HELPER_NAMES:
            raise where.error(f"helper.{name}", "no helper of that name"
                              + _suggest(name, HELPER_NAMES))
    kfuncs = {name: _cost(where, f"kfunc.{name}", value)
              for name, value in _table(where, "kfunc", doc.get("kfunc", {})).items()}
    return CostTable(
        path=path,
        provenance=Provenance(prov["kernel"], prov["cpu"], prov["date"], prov["method"],
                              tuple(not_measured.items()), tuple(added.items())),
        defaults=Defaults(Cost(dflt["helper_min_ns"], dflt["helper_max_ns"]),
                          Cost(dflt["kfunc_min_ns"], dflt["kfunc_max_ns"]),
                          int(dflt["size_cap_bytes"])),
        insns=insns,
        helpers=helpers,
        kfuncs=kfuncs,
        digest=text_sha256 or hashlib.sha256(text.encode()).hexdigest(),
    )


def load_cost_table(path: str | Path | None, cpu_caches: str = DEFAULT_CPU_CACHES
                    ) -> CostTable:
    """Parse a cost table; None means the table shipped with bpflint. ``cpu_caches``:
    what its max assumes (CPU_CACHES; CostTable.with_cpu_caches)."""
    return _read_cost_table(path).with_cpu_caches(cpu_caches)


def _read_cost_table(path: str | Path | None) -> CostTable:
    if path is None:
        with open(_SHIPPED, encoding="utf-8") as shipped:
            text = shipped.read()
        sha256 = hashlib.sha256(text.encode()).hexdigest()
        return parse_cost_table(text, SHIPPED_NAME, table_ready.load(_SHIPPED, sha256), sha256)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise BpfLintError(f"{path}: cannot read cost table: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BpfLintError(f"{path}: cost table is not UTF-8 text") from None
    return parse_cost_table(text, str(path))

"""From measurements to a cost table (TOML): each entry's envelope over its
variants, lines over sizes and key lengths, set-up subtracted, and what was not
measured copied from the base table with its reason."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import date

from bpflint.cost.model import INSN_KEYS, MEM_KINDS, OPTIONAL_INSN_KEYS, Cost, CostTable, HelperCost
from bpflint.cost.table_file import FORMAT_VERSION
from bpflint.kernel.calibrate.benches import Bench
from bpflint.kernel.calibrate.timing import Measured, Options

MAX_MARGIN = 1.3  # max = max(median, MAX_MARGIN * min) of the costliest variant
DEFAULT_HELPER_MAX_NS = 5000.0
SIZE_CAP_BYTES = 4096

METHOD = (
    "BPF_PROG_TEST_RUN on this kernel; each cost is (t(PN) - t(P0)) / N for programs that "
    "differ by N copies of the measured body (xdp/tc: kernel duration averaged over "
    "'repeat' runs; raw_tp/syscall: bpf_ktime_get_ns around the body). min = difference "
    "of minima over samples / {margin}; median = median of the paired per-sample "
    "differences; "
    "max = max(median, {margin} x min) of the costliest variant "
    "(dependent chains, misses, 64-byte keys); hash-map variants also as a line in the "
    "key size over their dearest 4- and 64-byte-key figures; argument setup subtracted. "
    "Derived: "
    "exit 0 (a subprogram's exit is priced in 'call', the entry's in the test-run "
    "baseline), load/store 'other' = envelope of measured kinds. Caches are hot, except "
    "hash-family map lookups, updates and deletes, also measured on maps of 1,048,576 "
    "keys walked in a scattered order (cold caches): their max_ns is the cold figure, "
    "hot_max_ns the hot one (--cpu-caches hot); another map type's cold miss or a "
    "contended atomic can exceed max. Defaults price what calibration did not measure. "
    "samples={samples}, repeat={repeat}."
)


@dataclass
class Entry:
    lo: float = float("inf")
    med: float = 0.0
    hi: float = 0.0
    spread: float = 0.0
    sized: list[tuple[int, float, float]] = field(default_factory=list)  # size, lo, hi
    issue: float | None = None  # the dearest stream variant's max
    by_key: dict[int, float] = field(default_factory=dict)  # key bytes -> dearest max
    # the dearest max of the variants with hot caches, and whether any variant walked
    # a map cold (then hi is the cold figure and hot_hi goes in the table beside it)
    hot_hi: float = 0.0
    cold: bool = False

    def add(self, m: Measured, setup_lo: float, setup_hi: float, bench: Bench) -> None:
        # The minimum is taken with the same margin downwards: a busy machine (an SMT
        # sibling at work, a lower clock) raises every figure of one calibration run,
        # and a program later timed on a quiet one ran below such a minimum.
        lo = max(0.0, m.min_ns / MAX_MARGIN - setup_hi)
        hi = max(m.median_ns, MAX_MARGIN * m.min_ns) - setup_lo
        if bench.pair:  # the counterpart's share is unknown: nothing bounds it below
            lo = 0.0
        self.lo = min(self.lo, lo)
        self.med = max(self.med, m.median_ns - setup_lo)
        self.hi = max(self.hi, hi, lo)
        if bench.cold:
            self.cold = True
        else:
            self.hot_hi = max(self.hot_hi, hi, lo)
        self.spread = max(self.spread, m.spread_pct)
        if bench.size is not None:
            self.sized.append((bench.size, lo, hi))
        if bench.stream:
            self.issue = max(self.issue or 0.0, hi, lo)
        if bench.key_bytes is not None:
            self.by_key[bench.key_bytes] = max(self.by_key.get(bench.key_bytes, 0.0), hi, lo)

    def key_line(self) -> tuple[float, float] | None:
        """(base, per key byte) of a line over every key size's max: hashing and
        comparing a key grow with its length, and most maps have small keys."""
        if len(self.by_key) < 2:
            return None
        points = sorted(self.by_key.items())
        (k0, hi0), (k1, hi1) = points[0], points[-1]
        per = max(0.0, (hi1 - hi0) / (k1 - k0))
        return max(hi - per * k for k, hi in points), per


def _fit(points: list[tuple[int, float, float]]) -> tuple[float, float, float, float]:
    """(base_lo, base_hi, per_unit_lo, per_unit_hi): a line under every min point and
    one over every max point.

    The upper line rises as the two largest sizes do (how the cost grows past what was
    measured) and is lifted over every smaller point: a fixed cost the first unit pays
    (bpf_loop's first iteration, a copy's first cache line) raises the base, not the
    slope, which would otherwise charge it again for every unit up to 8M iterations.
    """
    points = sorted(points)
    (s0, lo0, _), (s1, lo1, _) = points[0], points[-1]
    per_lo = max(0.0, (lo1 - lo0) / (s1 - s0))
    base_lo = max(0.0, min(lo - per_lo * size for size, lo, _ in points))
    (sa, _, hia), (sb, _, hib) = points[-2], points[-1]
    per_hi = max(0.0, (hib - hia) / (sb - sa))
    if per_hi <= 0.0:
        # No slope above the noise (a copy of 128 bytes costs what one of 4 does): a zero
        # slope would price the size cap like the smallest size, so take the steepest
        # line the measurements allow, from the cheapest small run to the dearest big one.
        per_hi = max(0.0, (points[-1][2] - lo0) / (s1 - s0))
    base_hi = max(hi - per_hi * size for size, _, hi in points)
    return base_lo, max(base_hi, base_lo), per_lo, max(per_hi, per_lo)


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def _cost_line(name: str, lo: float, hi: float, med: float | None, spread: float | None,
               extra: str = "") -> str:
    parts = [f"min_ns = {_fmt(lo)}", f"max_ns = {_fmt(hi)}"]
    if med is not None:
        parts.append(f"median_ns = {_fmt(med)}")
    if spread is not None:
        parts.append(f"spread_pct = {spread:.1f}")
    return f"{name} = {{ {', '.join(parts)}{extra} }}"


def insn_cost(entries: dict[str, Entry], base: CostTable, key: str) -> tuple[float, float]:
    """(min, max) ns of an instruction class: measured here, else the base table's."""
    e = entries.get(f"insn.{key}")
    if e is not None:
        return e.lo, e.hi
    cost = base.insns[key]
    return cost.min_ns, cost.max_ns


def _exact(value: float) -> str:
    # a base table's figure is copied, not rounded: rounding could lower a max
    return repr(float(value))


def _copied_cost(name: str, cost: Cost, note: str = "") -> str:
    """A base table's entry, every field as it was."""
    parts = [f"min_ns = {_exact(cost.min_ns)}", f"max_ns = {_exact(cost.max_ns)}"]
    if cost.median_ns is not None:
        parts.append(f"median_ns = {_exact(cost.median_ns)}")
    if cost.spread_pct is not None:
        parts.append(f"spread_pct = {_exact(cost.spread_pct)}")
    if cost.issue_ns is not None:
        parts.append(f"issue_ns = {_exact(cost.issue_ns)}")
    if cost.per_key is not None:
        parts += [f"key_base_max_ns = {_exact(cost.per_key[0])}",
                  f"per_key_byte_max_ns = {_exact(cost.per_key[1])}"]
    if cost.hot_max_ns is not None:
        parts.append(f"hot_max_ns = {_exact(cost.hot_max_ns)}")
    return f"{name} = {{ {', '.join(parts)} }}" + (f"  # {note}" if note else "")


def _copied_helper(name: str, helper: HelperCost, note: str) -> list[str]:
    base = helper.base
    lines = ["", f"[helper.{name}]  # {note}",
             f"min_ns = {_exact(base.min_ns)}", f"max_ns = {_exact(base.max_ns)}"]
    if helper.max_units is not None:
        lines += [f"per_unit_min_ns = {_exact(helper.per_unit_min_ns)}",
                  f"per_unit_max_ns = {_exact(helper.per_unit_max_ns)}",
                  f"max_units = {helper.max_units}"]
    if base.median_ns is not None:
        lines.append(f"median_ns = {_exact(base.median_ns)}")
    if base.spread_pct is not None:
        lines.append(f"spread_pct = {_exact(base.spread_pct)}")
    if base.hot_max_ns is not None:
        lines.append(f"hot_max_ns = {_exact(base.hot_max_ns)}")
    if helper.by_map_type:
        lines.append(f"[helper.{name}.map]")
        lines += [_copied_cost(v, c) for v, c in helper.by_map_type]
    return lines


def _split_helper_key(key: str) -> tuple[str, str]:
    """"helper.map_lookup_elem.map.hash" -> ("map_lookup_elem", "hash")."""
    name, _, variant = key.removeprefix("helper.").partition(".map.")
    return name, variant


def _priced_from(key: str, base: CostTable) -> str:
    if key.startswith("kfunc.") and key.removeprefix("kfunc.") not in base.kfuncs:
        return "[defaults] (the base table " + base.path + " has no figure)"
    if key.startswith("helper."):
        name, variant = _split_helper_key(key)
        helper = base.helpers.get(name)
        if helper is None or (variant and helper.variant(variant) is None):
            return "[defaults] (the base table " + base.path + " has no figure)"
    return base.path


def render(entries: dict[str, Entry], opts: Options, base: CostTable,
            not_measured: dict[str, str]) -> str:
    method = METHOD.format(margin=MAX_MARGIN, samples=opts.samples, repeat=opts.repeat)
    lines = [
        "# bpflint cost table, written by `bpflint calibrate`.",
        "# Format: see bpflint/cost/model.py. Costs in ns; a helper's cost includes its call.",
        f"format = {FORMAT_VERSION}", "",
        "[provenance]",
        f"kernel = {_q(platform.release())}",
        f"cpu = {_q(_cpu_model())}",
        f"date = {_q(date.today().isoformat())}",
        f"method = {_q(method)}",
    ]
    if not_measured:
        lines += ["", "[provenance.not_measured]",
                  "# entry = why it was not measured here; where its figure comes from"]
        lines += [f"{_q(key)} = {_q(f'{why}; priced from {_priced_from(key, base)}')}"
                  for key, why in not_measured.items()]
    lines += [
        "",
        "[defaults]",
        "# anything calibration did not measure (a warning names it when used)",
        "helper_min_ns = 0.0", f"helper_max_ns = {DEFAULT_HELPER_MAX_NS}",
        "kfunc_min_ns = 0.0", f"kfunc_max_ns = {DEFAULT_HELPER_MAX_NS}",
        f"size_cap_bytes = {SIZE_CAP_BYTES}", "",
        "[insn]",
    ]
    copied = f"not measured here: from {base.path}"
    insn = {k.removeprefix("insn."): e for k, e in entries.items() if k.startswith("insn.")}
    # 'other' memory is the envelope of the kinds, measured here or not
    kinds = [insn_cost(entries, base, f"{op}_{k}") for op in ("load", "store")
             for k in MEM_KINDS if k != "other"]
    derived = {
        "exit": (0.0, 0.0),
        "load_other": (min(lo for lo, _ in kinds), max(hi for _, hi in kinds)),
        "store_other": (min(lo for lo, _ in kinds), max(hi for _, hi in kinds)),
    }
    for key in (*INSN_KEYS, *OPTIONAL_INSN_KEYS):
        e = insn.get(key)
        if key in derived:
            lines.append(_cost_line(key, *derived[key], None, None) + "  # derived")
        elif e is None:
            lines.append(_copied_cost(key, base.insns[key], copied))
        else:
            issue = "" if e.issue is None else f", issue_ns = {_fmt(min(e.issue, e.hi))}"
            lines.append(_cost_line(key, e.lo, e.hi, e.med, e.spread, issue))
    helpers: dict[str, dict[str, Entry]] = {}
    for key, e in entries.items():
        if key.startswith("helper."):
            name, variant = _split_helper_key(key)
            helpers.setdefault(name, {})[variant] = e
    # map variants not measured here: the base table's figure where it has one
    fallback: dict[str, dict[str, Cost]] = {}
    unmeasured_names: set[str] = set()
    for key in not_measured:
        if key.startswith("helper."):
            name, variant = _split_helper_key(key)
            unmeasured_names.add(name)
            got = base.helpers.get(name)
            cost = got.variant(variant) if got is not None and variant else None
            if cost is not None:
                fallback.setdefault(name, {})[variant] = cost
    for name in sorted(set(helpers) | unmeasured_names):
        variants = helpers.get(name, {})
        if not variants:
            got = base.helpers.get(name)
            if got is not None:  # else [defaults] price it, with a warning when used
                lines += _copied_helper(name, got, copied)
            continue
        lines += ["", f"[helper.{name}]"]
        whole = Entry()
        for e in variants.values():
            whole.lo, whole.hi = min(whole.lo, e.lo), max(whole.hi, e.hi)
            whole.med, whole.spread = max(whole.med, e.med), max(whole.spread, e.spread)
            whole.sized += e.sized
            whole.cold = whole.cold or e.cold
            whole.hot_hi = max(whole.hot_hi, e.hot_hi if e.cold else e.hi)
        for c in fallback.get(name, {}).values():
            whole.lo, whole.hi = min(whole.lo, c.min_ns), max(whole.hi, c.max_ns)
            whole.cold = whole.cold or c.hot_max_ns is not None
            whole.hot_hi = max(whole.hot_hi, c.max_ns if c.hot_max_ns is None else c.hot_max_ns)
        if len(whole.sized) >= 2:
            base_lo, base_hi, per_lo, per_hi = _fit(whole.sized)
            lines += [f"min_ns = {_fmt(base_lo)}", f"max_ns = {_fmt(base_hi)}",
                      f"per_unit_min_ns = {per_lo:.5f}", f"per_unit_max_ns = {per_hi:.5f}",
                      "max_units = 0  # unknown size: defaults.size_cap_bytes"]
        else:
            lines += [f"min_ns = {_fmt(whole.lo)}", f"max_ns = {_fmt(whole.hi)}"]
        lines += [f"median_ns = {_fmt(whole.med)}", f"spread_pct = {whole.spread:.1f}"]
        if whole.cold and not whole.sized:
            lines.append(f"hot_max_ns = {_fmt(min(max(whole.hot_hi, whole.lo), whole.hi))}")
        typed = {v: e for v, e in variants.items() if v}
        if typed or name in fallback:
            lines.append(f"[helper.{name}.map]")
            rows: list[tuple[str, str]] = []
            for variant, e in typed.items():
                line = e.key_line()
                keyed = "" if line is None else (f", key_base_max_ns = {_fmt(line[0])}"
                                                 f", per_key_byte_max_ns = {line[1]:.5f}")
                if e.cold:
                    keyed += f", hot_max_ns = {_fmt(min(max(e.hot_hi, e.lo), e.hi))}"
                rows.append((variant, _cost_line(variant, e.lo, e.hi, e.med, e.spread, keyed)))
            rows += [(v, _copied_cost(v, c, copied)) for v, c in fallback.get(name, {}).items()]
            lines += [row for _, row in sorted(rows)]
    lines += _kfunc_lines(entries, base, copied)
    return "\n".join(lines) + "\n"


def _kfunc_lines(entries: dict[str, Entry], base: CostTable, copied: str) -> list[str]:
    """[kfunc]: one line per kfunc measured here, the base table's others as they were."""
    measured = {k.removeprefix("kfunc."): e for k, e in entries.items()
                if k.startswith("kfunc.")}
    names = sorted(set(measured) | set(base.kfuncs))
    if not names:
        return []
    lines = ["", "[kfunc]  # by name, as in the kernel's BTF"]
    for name in names:
        e = measured.get(name)
        if e is None:
            lines.append(_copied_cost(name, base.kfuncs[name], copied))
        else:
            lines.append(_cost_line(name, e.lo, e.hi, e.med, e.spread))
    return lines


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

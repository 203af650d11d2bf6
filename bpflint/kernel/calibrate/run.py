"""Measure a cost table on the running kernel with BPF_PROG_TEST_RUN.

Every figure comes from a pair of programs that differ only in a body repeated
``units`` times: P0 (prologue + epilogue) and PN (prologue + N bodies +
epilogue). The cost of one body is (t(PN) - t(P0)) / N, which removes the
test-run overhead, the prologue and the empty program's own cost.

Two clocks:
  duration  xdp and tc programs: the kernel's average over ``repeat`` runs
  inline    raw_tp and syscall programs, where test_run takes no ``repeat`` and
            reports no duration: bpf_ktime_get_ns() around the body, the
            difference returned as the program's return value

The machine may be shared, so figures are minimum-based: ``min`` is the
difference of the minima over samples (stable within a few percent) divided by
MAX_MARGIN (a whole run on a busy machine reads high), ``median``
the median of the paired differences (P0 and PN run back to back in each sample),
and ``max`` is the larger of the median and
MAX_MARGIN times the minimum, taken over the costliest variant (dependent
chains, cache-hot misses, 64-byte keys, ...). Callback helpers (bpf_loop,
for_each_map_elem) are priced per iteration / element: the size the engine passes
is the iteration count, and the callback's own instructions are priced apart.
Setup instructions inside a body (argument moves, map loads) are subtracted
using the instruction figures, with their max for a helper's min and their min
for its max.

Kernels differ: a benchmark this one refuses (a map it will not create, a program
it will not load, a test run it will not do) leaves its entry to the base table,
with the kernel's reason in [provenance.not_measured] (see calibrate()).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bpflint.cost.model import CostTable
from bpflint.cost.table_file import load_cost_table
from bpflint.errors import BpfLintError
from bpflint.kernel import syscall as sc
from bpflint.kernel.calibrate import benches, timing
from bpflint.kernel.calibrate.table import Entry, insn_cost, render
from bpflint.kernel.calibrate.timing import Options

SKIPPED = "left out by --only/--skip"


@dataclass(frozen=True)
class Calibration:
    text: str  # the table (TOML)
    refused: dict[str, str]  # entry -> "variant: stage refused: the kernel's reason"
    left_out: tuple[str, ...]  # entries --only/--skip excluded
    base_path: str  # the table what was not measured is priced from

    def summary(self) -> str:
        """One line naming what was not measured, or "" when everything was."""
        parts = [f"{key} ({why})" for key, why in self.refused.items()]
        if self.left_out:
            count = len(self.left_out)
            parts.append(f"{count} {'entry' if count == 1 else 'entries'} {SKIPPED}")
        if not parts:
            return ""
        return (f"not measured here, priced from {self.base_path} (see "
                f"[provenance.not_measured]): " + "; ".join(parts))


def bench_list() -> list[tuple[str, str]]:
    """(entry, variant) of every benchmark, in the order calibration runs them."""
    return [(b.key, b.variant) for b in (*benches.insn_benches(), *benches.helper_benches(),
                                     *benches.kfunc_benches())]


def _names(key: str) -> tuple[str, ...]:
    """What a pattern may name an entry by: the entry and its dotted prefixes
    ("helper.map_lookup_elem" for "helper.map_lookup_elem.map.hash"), each also
    without its kind ("map_lookup_elem", "alu_mov")."""
    parts = key.split(".")
    prefixes = [".".join(parts[:n]) for n in range(2, len(parts) + 1)]
    return (*prefixes, *(p.split(".", 1)[1] for p in prefixes))


def _matches(key: str, pattern: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for name in _names(key))


def select(keys: Iterable[str], only: Sequence[str] = (), skip: Sequence[str] = ()
           ) -> set[str]:
    """The entries --only (default: all) and --skip keep; a pattern naming no entry is
    a usage error (a misspelt name would otherwise calibrate everything)."""
    unique = list(dict.fromkeys(keys))
    for flag, patterns in (("--only", only), ("--skip", skip)):
        for pattern in patterns:
            if not any(_matches(k, pattern) for k in unique):
                raise BpfLintError(f"calibrate {flag} {pattern!r}: names no benchmark "
                                   "(`bpflint calibrate --list` lists them)")
    return {k for k in unique if (not only or any(_matches(k, p) for p in only))
            and not any(_matches(k, p) for p in skip)}


def run_calibration(opts: Options, ringbuf_bytes: int = 1 << 24,
                    base: CostTable | None = None, only: Sequence[str] = (),
                    skip: Sequence[str] = ()) -> str:
    """Measure and return the table as TOML text (see calibrate())."""
    return calibrate(opts, ringbuf_bytes, base, only, skip).text


def calibrate(opts: Options, ringbuf_bytes: int = 1 << 24, base: CostTable | None = None,
              only: Sequence[str] = (), skip: Sequence[str] = ()) -> Calibration:
    """Measure the chosen entries on this kernel.

    An entry the kernel refuses (a map it will not create, a program it will not load,
    a test run it will not do) or that --only/--skip leave out is priced from ``base``
    (default: the shipped table) and listed with its reason in the table's
    [provenance.not_measured]. Only a bpf() that cannot load and run the simplest
    program, or a calibration that measured nothing, is an error.
    """
    ok, why = sc.bpf_usable()
    if not ok:
        raise BpfLintError(f"calibrate needs a usable bpf(): {why}")
    if base is None:
        base = load_cost_table(None)
    every = [*benches.insn_benches(), *benches.helper_benches(), *benches.kfunc_benches()]
    chosen = select((b.key for b in every), only, skip)
    left_out = tuple(dict.fromkeys(b.key for b in every if b.key not in chosen))
    runs = [b for b in every if b.key in chosen]
    refused: dict[str, str] = {}
    entries: dict[str, Entry] = {}
    cold = any(b.cold for b in runs)  # the big maps only when a benchmark walks them
    with timing.environment(ringbuf_bytes, cold) as env, \
            timing.buffers_reset(env) as reset:
        for done, bench in enumerate(runs, 1):
            label = f"[{done}/{len(runs)}] {bench.key} ({bench.variant})"
            if bench.key in refused:
                opts.progress(f"{label}: not run, the entry was refused")
                continue
            opts.progress(label)
            try:
                m = timing.measure(env, bench, opts, reset)
            except benches.Refused as exc:
                # one refused variant leaves the entry unmeasured: its dearest case
                # may be the one that did not run
                refused[bench.key] = f"{bench.variant}: {exc}"
                entries.pop(bench.key, None)
                opts.progress(f"{label}: not measured, {exc}")
                continue
            setup = [insn_cost(entries, base, k) for k in bench.setup]
            entries.setdefault(bench.key, Entry()).add(
                m, sum(lo for lo, _ in setup), sum(hi for _, hi in setup), bench)
            opts.progress(f"{label}: min {m.min_ns:.2f} ns, median {m.median_ns:.2f} ns, "
                          f"spread {m.spread_pct:.1f}%")
    if not entries:
        first = next(iter(refused.items()), None)
        raise BpfLintError("calibrate: nothing was measured" + (
            f" (the kernel refused every benchmark run; {first[0]}: {first[1]})"
            if first else ""))
    not_measured = {**{k: SKIPPED for k in left_out}, **refused}
    text = render(entries, opts, base, not_measured)
    return Calibration(text, refused, left_out, base.path)

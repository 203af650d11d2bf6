"""Witness tightness over a directory of real-world objects (docs/witness.md).

    python benchmarks/witness_corpus.py DIR [DIR ...] [--seconds S] [--types xdp,sched_cls,...]
                                        [--json OUT] [--lowest N]

Runs `bpflint witness` (the same search, in process) on every program of the chosen
types in every ``*.o`` below the directories, and prints the share of programs with a
witness, the median and 10th percentile of ``reached = executed / insns.max``, and the
programs where it is lowest with the search's note (why: infeasible worst path,
search stopped, interpreter error). Programs without a bound (unbounded) are counted
apart: there is no max to reach. Objects bpflint cannot read are listed and skipped.

Needs z3 (pip install -e '.[witness]'); runs one program at a time (nice it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bpflint.cost.table_file import load_cost_table  # noqa: E402
from bpflint.errors import BpfLintError  # noqa: E402
from bpflint.obj.reader import load_object  # noqa: E402
from bpflint.witness.runner import witness_program  # noqa: E402

# XDP, TC and socket-filter programs: the goal is stated over these
DEFAULT_TYPES = ("xdp", "sched_cls", "sched_act", "socket_filter")


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(q * len(ordered) + 0.999999) - 1))
    return ordered[rank]


def figures(label: str, rows: list[dict[str, object]]) -> str:
    """Share witnessed, median and p10 of reached, how many reach 1.0."""
    reached = [float(r["reached"]) for r in rows  # type: ignore[arg-type]
               if r["reached"] is not None]
    line = (f"{label}: witnessed {len(reached)}/{len(rows)} "
            f"({100 * len(reached) / len(rows):.1f} %)")
    if reached:
        line += (f", reached median {statistics.median(reached):.3f}, "
                 f"p10 {percentile(reached, 0.10):.3f}, "
                 f"at 1.0: {sum(1 for r in reached if r >= 1.0)}")
    return line


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+", metavar="DIR")
    ap.add_argument("--seconds", type=float, default=10.0, help="search time per program")
    ap.add_argument("--types", default=",".join(DEFAULT_TYPES),
                    help="program types to run (comma-separated; 'all' for every type)")
    ap.add_argument("--json", metavar="OUT", help="write every program's row to OUT")
    ap.add_argument("--lowest", type=int, default=8, help="list this many lowest programs")
    ap.add_argument("--exclude", default="", help="comma-separated object name substrings")
    args = ap.parse_args(argv)
    types = None if args.types == "all" else set(args.types.split(","))
    excluded = [e for e in args.exclude.split(",") if e]
    table = load_cost_table(None)
    rows: list[dict[str, object]] = []
    skipped: list[str] = []
    started = time.monotonic()
    paths = sorted(p for d in args.dirs for p in Path(d).rglob("*.o")
                   if not any(e in p.name for e in excluded))
    for path in paths:
        top = next(str(d) for d in args.dirs if path.is_relative_to(Path(d)))
        try:
            obj = load_object(str(path))
        except BpfLintError as exc:
            skipped.append(f"{path}: {exc}")
            continue
        for prog in obj.programs:
            if types is not None and prog.prog_type not in types:
                continue
            t0 = time.monotonic()
            try:
                out = witness_program(obj, prog, table, "insns", args.seconds)
            except BpfLintError as exc:
                skipped.append(f"{path} {prog.name}: {exc}")
                continue
            doc = out.to_json()
            row = {"dir": top, "object": str(path), "program": prog.name,
                   "type": prog.prog_type,
                   "insns_max": out.result.insns_max, "executed": doc["executed_insns"],
                   "reached": doc["reached"], "note": doc["note"],
                   "method": doc.get("method"), "runs": doc.get("runs"),
                   "exhaustive": doc.get("exhaustive"),
                   "seconds": round(time.monotonic() - t0, 1)}
            rows.append(row)
            print(f"{path.name} {prog.name}: reached {row['reached']} "
                  f"({row['executed']}/{row['insns_max']}, {row['seconds']} s) {row['note']}",
                  file=sys.stderr, flush=True)
    bounded = [r for r in rows if r["insns_max"] is not None]
    unbounded = len(rows) - len(bounded)
    print(f"objects: {len(paths)}, programs of {args.types}: {len(rows)} "
          f"({unbounded} unbounded, not counted), {time.monotonic() - started:.0f} s")
    if not bounded:
        print("no bounded program")
        return 1
    print(figures("all", bounded))
    if len(args.dirs) > 1:
        for d in args.dirs:
            mine = [r for r in bounded if r["dir"] == d]
            if mine:
                print(figures(f"  {Path(d).name}", mine))
    print("lowest:")
    lowest = sorted(bounded, key=lambda r: -1.0 if r["reached"] is None else r["reached"])
    for r in lowest[:args.lowest]:
        print(f"  {Path(str(r['object'])).name} {r['program']}: reached {r['reached']} "
              f"({r['executed']}/{r['insns_max']}): {r['note']}")
    for s in skipped:
        print(f"skipped: {s}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""C-level differential fuzzer: random everyday BPF C programs compiled by clang,
judged by the kernel verifier (loaded through libbpf), analysed by bpflint, executed
by the reference interpreter and, for a sample, by BPF_PROG_TEST_RUN
(tests/cgen_gen.py, tests/cgen_run.py; docs/validation.md "C-level fuzzer").

    sudo python scripts/fuzz_c.py --seed S --programs N [--jobs J] [--runs R]
        [--kernel-runs K] [--witness-seconds W] [--json FILE] [--classic]

Prints programs generated, compiled, accepted; executions; kernel comparisons and
mismatches; violations of insns.min / insns.max (seed, input, counts); unbounded
results; the tightness distribution (insns.max / highest count seen), overall and
per construct. Exit status 1 on any violation, mismatch or analysis error.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from cgen_run import Stats, run_seeds, usable  # noqa: E402

CHUNK = 20  # seeds per task of a --jobs pool


def _chunk(args: tuple[int, int, int, int, float, bool]) -> Stats:
    start, stop, runs, kernel_runs, witness_s, idioms = args
    with tempfile.TemporaryDirectory(prefix="cgen-") as tmp:
        return run_seeds(range(start, stop), runs, kernel_runs, witness_s, Path(tmp),
                         idioms=idioms)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--programs", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--runs", type=int, default=30, help="interpreter inputs per program")
    parser.add_argument("--kernel-runs", type=int, default=2,
                        help="of those, how many also run in the kernel")
    parser.add_argument("--witness-seconds", type=float, default=0.0,
                        help="also check the witness search's worst input (0: off)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--classic", action="store_true",
                        help="the first generator's programs (without tests/cgen_idioms.py)")
    args = parser.parse_args(argv)
    ok, why = usable()
    if not ok:
        print(f"fuzz_c: {why}", file=sys.stderr)
        return 2
    started = time.monotonic()
    stats = Stats()
    end = args.seed + args.programs
    tasks = [(s, min(s + CHUNK, end), args.runs, args.kernel_runs, args.witness_seconds,
              not args.classic) for s in range(args.seed, end, CHUNK)]
    if args.jobs <= 1:
        parts = map(_chunk, tasks)
    else:
        from multiprocessing import Pool

        pool = Pool(args.jobs)
        parts = pool.imap_unordered(_chunk, tasks)
    for part in parts:
        stats.merge(part)
        s = stats.summary()
        print(f"[{time.monotonic() - started:6.0f}s] {stats.generated}/{args.programs}: "
              f"{stats.accepted} accepted, {stats.executions} executions, "
              f"{s['violations_min']}+{s['violations_max']} violations",
              file=sys.stderr, flush=True)
        if args.json is not None:
            args.json.write_text(json.dumps(_doc(stats, args, started), indent=1) + "\n")
    doc = _doc(stats, args, started)
    for key, value in doc["summary"].items():
        print(f"{key:>20}: {value}")
    print("verifier / clang refusals:")
    for reason, n in sorted(stats.rejected.items(), key=lambda kv: -kv[1]):
        print(f"  {n:6} {reason}")
    print("tightness by construct (programs, median, p90):")
    for feat, (n, med, p90) in doc["by_feature"].items():
        print(f"  {feat:>18}: {n:5} {med:10} {p90:14}")
    for v in stats.violations[:30]:
        print(f"violation: seed {v.seed} input {v.what}: executed {v.count}, "
              f"insns.{v.side} {v.bound}")
    for note in stats.notes[:30]:
        print(f"note: {note}")
    if stats.unbounded_seeds:
        print(f"unbounded seeds: {stats.unbounded_seeds[:40]}")
    if args.json is not None:
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 1 if stats.violations or stats.mismatches or stats.analysis_errors else 0


def _doc(stats: Stats, args: argparse.Namespace, started: float) -> dict[str, object]:
    summary = stats.summary()
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["seeds"] = f"{args.seed}..{args.seed + args.programs - 1}"
    return {"summary": summary, "by_feature": stats.by_feature(),
            "violations": [vars(v) for v in stats.violations],
            "unbounded_seeds": stats.unbounded_seeds, "rejected": stats.rejected,
            "notes": stats.notes[:200],
            "loosest": sorted(((t, s) for s, t, _f in stats.tightness), reverse=True)[:40],
            "tightness": [[s, round(t, 4), list(f)] for s, t, f in stats.tightness]}


if __name__ == "__main__":
    sys.exit(main())

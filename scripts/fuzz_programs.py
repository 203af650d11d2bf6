"""Program-level differential fuzzer: random BPF programs the kernel verifier accepts,
analysed by bpflint, executed by the reference interpreter, cross-checked with
BPF_PROG_TEST_RUN (issue 16; tests/progfuzz_*.py hold the machinery).

    python scripts/fuzz_programs.py --seed S --programs N [--jobs J] [--runs R]
        [--kernel-runs K] [--features tail_calls,packet_walks,...]
        [--save-dir DIR] [--json FILE]

Generator flags (all off by default; tests/progfuzz_gen.py Features): callback_writes,
rodata_globals, tail_calls, packet_walks, loop_variants; "-name" turns one off.

Seeds S .. S+N-1, one program each; every accepted program runs on R inputs in
the interpreter, the first K of them in the kernel too. Prints the figures:
programs generated and accepted, executions, comparisons and mismatches,
violations of insns.min and insns.max, and the tightness distribution
(insns.max / highest executed count). Violations are minimised and, with
--save-dir, written as regression cases (tests/fuzz_regressions/ replays them).
Needs root (bpf()). Exit status 1 when any violation or mismatch was seen.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from progfuzz_gen import Features  # noqa: E402
from progfuzz_run import Stats, minimise, run_seeds, save_case, statements  # noqa: E402

from bpflint.kernel import syscall as sc  # noqa: E402

CHUNK = 50  # seeds per task of a --jobs pool


def _chunk(args: tuple[int, int, str, int, int]) -> Stats:
    start, stop, features, runs, kernel_runs = args
    return run_seeds(range(start, stop), Features.parse(features), runs, kernel_runs)


def _print_progress(done: int, total: int, stats: Stats, started: float) -> None:
    elapsed = time.monotonic() - started
    print(f"[{elapsed:7.0f}s] {done}/{total} programs: {stats.accepted} accepted, "
          f"{stats.executions} executions, {stats.mismatches} mismatches, "
          f"{stats.violations_min + stats.violations_max} violations",
          file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--programs", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--runs", type=int, default=50, help="interpreter inputs per program")
    parser.add_argument("--kernel-runs", type=int, default=2,
                        help="of those, how many also run in the kernel")
    parser.add_argument("--features", default="",
                        help="generator flags, e.g. tail_calls,packet_walks")
    parser.add_argument("--save-dir", type=Path, help="write minimised violations here")
    parser.add_argument("--max-saved", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    try:
        feats = Features.parse(args.features)
    except ValueError as exc:
        parser.error(str(exc))
    usable, why = sc.bpf_usable()
    if not usable:
        print(f"fuzz_programs: {why}", file=sys.stderr)
        return 2
    started = time.monotonic()
    stats = Stats()
    total = args.programs
    tasks = [(start, min(start + CHUNK, args.seed + total), args.features, args.runs,
              args.kernel_runs) for start in range(args.seed, args.seed + total, CHUNK)]
    last = [0.0]

    def report(done: int, part: Stats) -> None:
        if time.monotonic() - last[0] >= 30:
            last[0] = time.monotonic()
            merged = Stats()
            merged.merge(stats)
            merged.merge(part)
            _print_progress(done, total, merged, started)
            if args.json is not None:  # figures so far, for a run stopped early
                partial = merged.summary()
                partial["programs_done"] = done
                args.json.write_text(json.dumps(partial, indent=1) + "\n")

    if args.jobs <= 1:
        for start, stop, *_rest in tasks:
            part = run_seeds(range(start, stop), feats, args.runs, args.kernel_runs,
                             lambda n, s, base=start - args.seed: report(base + n, s))
            stats.merge(part)
    else:
        from multiprocessing import Pool

        with Pool(args.jobs) as pool:
            for part in pool.imap_unordered(_chunk, tasks):
                stats.merge(part)
                _print_progress(stats.generated, total, stats, started)
    summary = stats.summary()
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["features"] = args.features or "default"
    summary["seeds"] = f"{args.seed}..{args.seed + total - 1}"
    for key, value in summary.items():
        print(f"{key:>20}: {value}")
    if stats.rejected:
        print("verifier rejections:")
        for reason, n in sorted(stats.rejected.items(), key=lambda kv: -kv[1]):
            print(f"  {n:6} {reason}")
    for note in stats.mismatch_notes[:20]:
        print(f"mismatch: {note}")
    seen: set[int] = set()
    with tempfile.TemporaryDirectory(prefix="progfuzz-min-") as tmp:
        for v in stats.violation_list:
            if v.seed in seen or len(seen) >= args.max_saved:
                continue
            seen.add(v.seed)
            small = minimise(v.prog, feats, v.inp, Path(tmp))
            print(f"violation: seed {v.seed}: executed {v.count} insns, insns.{v.side} "
                  f"{v.bound}; minimised from {statements(v.prog)} to {statements(small)} "
                  f"statements")
            if args.save_dir is not None:
                args.save_dir.mkdir(parents=True, exist_ok=True)
                path = args.save_dir / f"seed{v.seed}_{v.side}.json"
                save_case(path, small, feats, v.inp, v.seed, Path(tmp))
                print(f"  saved {path}")
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    bad = stats.mismatches or stats.violations_min or stats.violations_max \
        or stats.interp_errors
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

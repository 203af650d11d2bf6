"""The measured child of benchmarks/bench.py: read one object and cost every program
(or load them into the kernel), then print one JSON document on stdout.

    python benchmarks/bench_worker.py analyze PATH MAX_SECONDS MAX_STEPS
    python benchmarks/bench_worker.py verify PATH

A file of its own that imports only what it uses: bench.py reports this process's
whole time as what a `bpflint analyze` of the object costs, so it must not pay for the
benchmark's own imports. Run as bench.py with --worker, each child imported
compileall, statistics, subprocess, tempfile and threading too: 15 ms of a 110 ms
process on xdp-forward (median of 21 runs each, 2026-12-07). It sets the process up as
the `bpflint` command does (bpflint/cli.py) before it imports the analysis.
"""

from __future__ import annotations

import json
import os
import sys
import time

# The kernel selftests load their test_verif_scale programs as SCHED_CLS; the section
# names ("scale90_inline", ...) carry no type libbpf knows.
SECTION_TYPE_OVERRIDES = {"scale90_noinline": "sched_cls", "scale90_inline": "sched_cls",
                          "scale90_noinline32": "sched_cls"}


def analyze(path: str, max_seconds: float, max_steps: int) -> dict[str, object]:
    """Read the object and run the cost engine on every program, timing each."""
    import gc

    from bpflint.cli import GC_THRESHOLDS

    # as the command line does before it imports a command
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        from bpflint import dataclass_code
    except ImportError:  # an older bpflint (bench.py --python): it has none
        pass
    else:
        dataclass_code.install()
    from bpflint.cost.engine import analyze_program
    from bpflint.cost.options import AnalysisOptions
    from bpflint.cost.table_file import load_cost_table
    from bpflint.obj.reader import load_object

    table = load_cost_table(None)
    options = AnalysisOptions(max_steps=max_steps, max_seconds=max_seconds)
    start = time.perf_counter()
    obj = load_object(path)
    read_s = time.perf_counter() - start
    programs = []
    for program in obj.programs:
        start = time.perf_counter()
        result = analyze_program(obj, program, table, options)
        programs.append({"name": program.name, "insns": result.insn_count,
                         "analysis_s": time.perf_counter() - start,
                         "bounded": result.bounded, "max": result.insns_max})
    return {"read_s": read_s, "programs": programs}


def verify(path: str) -> dict[str, object]:
    """Load every program into the kernel and read the verifier's statistics."""
    import dataclasses

    from bpflint.errors import BpfLintError
    from bpflint.kernel.loader import load_program
    from bpflint.obj.reader import load_object

    obj = load_object(path)
    programs = []
    for program in obj.programs:
        override = SECTION_TYPE_OVERRIDES.get(program.section)
        if override is not None:
            program = dataclasses.replace(program, prog_type=override)
        entry: dict[str, object] = {"name": program.name}
        try:
            with load_program(obj, program) as loaded:
                entry["verification_usec"] = loaded.stats.verification_usec
                entry["processed_insns"] = loaded.stats.processed_insns
        except (BpfLintError, OSError) as exc:
            entry["error"] = str(exc).splitlines()[0][:120]
        programs.append(entry)
    return {"programs": programs}


def main(argv: list[str]) -> None:
    kind, path, *limits = argv
    data = analyze(path, float(limits[0]), int(limits[1])) if kind == "analyze" \
        else verify(path)
    json.dump(data, sys.stdout)
    # Exit as the bpflint command does (cli.entry): without the interpreter's teardown,
    # which frees the analysed object and the analysis' caches one by one (0.13 s
    # after pyperf100 or loop1): the whole-process time bench.py reports is what a
    # `bpflint analyze` of the object pays.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])

"""bpflint benchmarks: analysis time against the kernel verifier, scale, memory, growth.

    python benchmarks/bench.py [--corpus DIR] [--quick] [--sections abcd] [--out FILE]
                               [--install | --python PYTHON]

Everything is measured in one run on this machine and printed as Markdown:

(a) per program, bpflint's analysis time next to the kernel verifier's own
    "verification time" for the same program (loaded through bpflint.kernel.loader
    with the stats log level; needs root and bpf()); for the 15 heaviest objects the
    kernel accepts (by static instructions, and by verification time), the wall time
    of one `bpflint analyze --no-cache` process per object and of one `--jobs N` run
    over all 15, against their summed verification time; the median ratio over small
    programs;
(b) `bpflint analyze --jobs N` over a tree of objects (the corpus), cold and then warm;
(c) peak memory (ru_maxrss of the child, read by a launcher process) for a
    1,000,000-instruction synthetic program
    and for the largest corpus program;
(d) analysis time of synthetic straight-line and loop-heavy programs of 10k, 100k and
    1M instructions.

Which bpflint: by default this checkout's (its compiled core if built in place, see
bpflint/native.py). --install measures what a user gets instead: a fresh venv in a
temporary directory and `pip install` of this checkout into it (through pip's index
as configured: the build requirements come from there), the compiled core built the
way setup.py builds it. --python PYTHON measures the bpflint installed for that
interpreter (a venv's bin/python), whole runs through the `bpflint` script next to it.
The header names the code the children ran (`bpflint --version`'s words).

Every measurement runs in a child process (bench_worker.py, or the bpflint command), so
an analysis that is slow, crashes or grows large cannot take the benchmark down; a
child over its time limit is killed and reported as such. The corpus is a directory
of real-world objects you compile yourself from public trees (kernel selftests,
libbpf-tools, Cilium, ...); they are not part of this repository.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import gen_synthetic  # noqa: E402 - the sibling script, importable once BENCH_DIR is on the path

# By default children import bpflint from the checkout this script lives in, not from
# wherever the venv's (editable) install points: a copy of the tree can then be
# benchmarked while the original keeps changing. use_installed() switches to an
# installed bpflint. This script imports no bpflint itself.
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
CHILD_PYTHON = sys.executable  # runs the bench_worker.py children
BPFLINT = [sys.executable, "-m", "bpflint"]  # whole `bpflint analyze` runs


def use_installed(python: Path) -> None:
    """Measure the bpflint installed for ``python`` instead of this checkout's."""
    global CHILD_PYTHON, BPFLINT
    CHILD_PYTHON = str(python)
    BPFLINT = [str(python.parent / "bpflint")]  # the console script pip wrote
    CHILD_ENV.pop("PYTHONPATH", None)
    CHILD_ENV.pop("BPFLINT_PURE_PYTHON", None)


def install_fresh(venv: Path) -> Path:
    """A fresh venv with this checkout pip-installed: what a user's `pip install .` gets."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    print(f"[install] pip install {REPO} into {venv} (compiles the core: a minute or more)",
          file=sys.stderr)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BPFLINT_")}
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    str(REPO)], check=True, env=environ, cwd=venv)
    return python


def describe_bpflint() -> str:
    """Which code the children run: `bpflint --version` without its name and number."""
    done = subprocess.run([*BPFLINT, "--version"], capture_output=True, text=True,
                          env=CHILD_ENV, cwd=REPO)
    words = done.stdout.strip()
    return words[words.find("(") + 1:words.rfind(")")] if "(" in words else \
        f"unknown ({done.stderr.strip()[-200:]})"

HEAVY_COUNT = 15
SAMPLE_TREE_OBJECTS = 200  # the size of tree the cold/warm targets name
SMALL_MAX_INSNS = 1_000  # "small program": at most this many instructions (static)
GROWTH_SIZES = (10_000, 100_000, 1_000_000)
DEFAULT_MAX_STEPS = 5_000_000  # bpflint's default step budget per program
# The synthetic programs of (c) and (d) measure the engine, not the budget: the
# loop-heavy 1M-instruction one takes about 9M steps (250k loops of 9 iterations).
SYNTHETIC_MAX_STEPS = 50_000_000


# ----------------------------------------------------------------------- child runner

@dataclass(frozen=True)
class ChildRun:
    returncode: int | None  # None: killed at the time limit
    wall_s: float
    maxrss_kb: int
    stdout: str
    stderr: str

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def run_child(argv: list[str], timeout_s: float) -> ChildRun:
    """Run argv, returning its wall time and peak RSS.

    The peak comes from a small launcher (this script with --launch) that starts argv
    and reads wait4's ru_maxrss for it: Linux carries a process's peak RSS across
    exec, so a child forked straight from this process, which holds every result so
    far, would report at least this process's size. The child runs in a session of
    its own, so a time limit, or this script being stopped, kills its workers too."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(prefix="bpflint-bench-rss-") as report:
        launcher = [sys.executable, str(Path(__file__).resolve()), "--launch", report.name,
                    "--", *argv]
        start = time.perf_counter()
        proc = subprocess.Popen(launcher, stdout=out, stderr=err, cwd=REPO, env=CHILD_ENV,
                                start_new_session=True)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            _kill_group(proc)

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
            _kill_group(proc)  # whatever it left running (or all of it, if we were stopped)
        outer_s = time.perf_counter() - start  # the launcher's start included
        try:
            measured = json.loads(Path(report.name).read_text() or "{}")
        except (OSError, ValueError):
            measured = {}
        out.seek(0)
        err.seek(0)
        return ChildRun(None if killed.is_set() else proc.returncode,
                        float(measured.get("wall_s", outer_s)), int(measured.get("maxrss_kb", 0)),
                        out.read().decode(errors="replace"),
                        err.read().decode(errors="replace"))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def launch(report: str, argv: list[str]) -> int:
    """--launch: run argv as our child, then write its wall time and peak RSS (wait4:
    the child and the workers it waited for) to ``report``; exit with its status."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall_s = time.perf_counter() - start
    Path(report).write_text(json.dumps({"wall_s": wall_s, "maxrss_kb": usage.ru_maxrss}))
    return os.waitstatus_to_exitcode(status)


_ANALYZE_RUNS: dict[Path, ChildRun] = {}


def analyze_run(path: Path, timeout_s: float) -> ChildRun:
    """The analysis child for a synthetic program, run once: (c) and (d) share the
    1M-instruction straight-line run instead of spending minutes on it twice."""
    if path not in _ANALYZE_RUNS:
        _ANALYZE_RUNS[path] = run_child(worker_argv("analyze", path, timeout_s,
                                                    SYNTHETIC_MAX_STEPS), timeout_s + 30)
    return _ANALYZE_RUNS[path]


def worker_argv(kind: str, path: Path, max_seconds: float,
                max_steps: int = DEFAULT_MAX_STEPS) -> list[str]:
    """A measured child: bench_worker.py, which imports no more than it uses."""
    return [CHILD_PYTHON, str(BENCH_DIR / "bench_worker.py"), kind, str(path),
            str(max_seconds), str(max_steps)]


def child_json(run: ChildRun, ok_codes: tuple[int, ...] = (0,)) -> dict[str, Any] | None:
    """The child's JSON document, if it exited with one of ``ok_codes``."""
    if run.timed_out or run.returncode not in ok_codes:
        return None
    try:
        data = json.loads(run.stdout)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def child_failure(run: ChildRun) -> str:
    if run.timed_out:
        return f"killed after {run.wall_s:.0f} s"
    lines = run.stderr.strip().splitlines()
    return lines[-1][:100] if lines else f"exit {run.returncode}"


# ------------------------------------------------------------------------ measurements

@dataclass(frozen=True)
class ObjectTimes:
    path: Path
    whole_s: float | None  # whole child process: interpreter start, read, analysis, exit
    maxrss_kb: int
    programs: list[dict[str, Any]]  # analysis entries merged with verifier entries
    failure: str | None


def measure_object(path: Path, timeout_s: float, verify: bool) -> ObjectTimes:
    run = run_child(worker_argv("analyze", path, timeout_s), timeout_s + 30)
    data = child_json(run)
    if data is None:
        return ObjectTimes(path, None, run.maxrss_kb, [], child_failure(run))
    programs = list(data["programs"])
    if verify:
        vrun = run_child(worker_argv("verify", path, timeout_s), timeout_s + 30)
        vdata = child_json(vrun)
        by_name = {p["name"]: p for p in vdata["programs"]} if vdata else {}
        for entry in programs:
            entry.update(by_name.get(entry["name"], {"error": child_failure(vrun)}))
    return ObjectTimes(path, run.wall_s, run.maxrss_kb, programs, None)


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def section_a(objects: list[Path], timeout_s: float, out: list[str]) -> list[ObjectTimes]:
    out.append("## (a) bpflint analysis time vs kernel verification time\n")
    times = []
    for index, path in enumerate(objects, 1):
        print(f"[a] {index}/{len(objects)} {path}", file=sys.stderr)
        times.append(measure_object(path, timeout_s, verify=True))
    out.append("| object | program | insns | bounded | bpflint analysis | kernel verification "
               "| ratio |")
    out.append("|---|---|---:|---|---:|---:|---:|")
    ratios_small: list[float] = []
    for obj in times:
        name = obj.path.parent.name + "/" + obj.path.name
        if obj.failure:
            out.append(f"| {name} | - | - | - | failed: {obj.failure} | - | - |")
            continue
        for prog in obj.programs:
            ana = float(prog["analysis_s"])
            usec = prog.get("verification_usec")
            ver = None if usec is None else int(usec) / 1e6
            ratio = "-" if not ver else f"{ana / ver:.2f}"
            if ver and int(prog["insns"]) <= SMALL_MAX_INSNS:
                ratios_small.append(ana / ver)
            kernel = fmt_s(ver) if ver is not None else f"not loaded: {prog.get('error', '?')}"
            out.append(f"| {name} | {prog['name']} | {prog['insns']} | {prog['bounded']} "
                       f"| {fmt_s(ana)} | {kernel} | {ratio} |")
    out.append("")
    for rule, key in HEAVY_RULES:
        heavy = _heavy_objects(times, key)
        if heavy:
            _heavy_report(heavy, rule, timeout_s, out)
    if ratios_small:
        out.append(f"**Small programs** (<= {SMALL_MAX_INSNS} insns, {len(ratios_small)} "
                   "loaded): median bpflint/kernel time ratio "
                   f"{statistics.median(ratios_small):.2f} (target <= 5).\n")
    return times


def _heavy_report(heavy: list[ObjectTimes], rule: str, timeout_s: float,
                  out: list[str]) -> None:
    kernel_s = _verification_s(heavy)
    # what a user runs for each object: the command, start-up, reading and output included
    commands = [run_child([*BPFLINT, "analyze", "--format", "json", "--no-cache",
                           str(obj.path)], timeout_s) for obj in heavy]
    bpflint_s = sum(run.wall_s for run in commands)
    failed = sum(1 for run in commands if run.timed_out or run.returncode != 0)
    note = f"; {failed} of them failed or timed out" if failed else ""
    out.append(f"**Heaviest {len(heavy)} objects, {rule}** (among those whose every "
               "program the kernel accepts): one `bpflint analyze --no-cache --format json "
               f"OBJ` process per object, {bpflint_s:.2f} s wall in all{note}, vs summed "
               f"kernel verification time {kernel_s:.2f} s (ratio "
               f"{bpflint_s / kernel_s:.2f}).\n")
    out.append("Objects: " + ", ".join(o.path.name for o in heavy) + "\n")
    jobs = os.cpu_count() or 1
    run = run_child([*BPFLINT, "analyze", "--format", "json",
                     "--no-cache", "--jobs", str(jobs),
                     *(str(o.path) for o in heavy)], timeout_s * 4)
    state = "killed at the time limit" if run.timed_out else f"exit {run.returncode}"
    out.append(f"The same {len(heavy)} objects in one `bpflint analyze --no-cache --jobs "
               f"{jobs}` run, as CI would run it: {run.wall_s:.2f} s wall ({state}; "
               f"ratio {run.wall_s / kernel_s:.2f} against the verifier's summed "
               "single-CPU time; target <= 1).\n")


def _total_insns(obj: ObjectTimes) -> int:
    return sum(int(p["insns"]) for p in obj.programs)


def _verification_s(objects: list[ObjectTimes]) -> float:
    return sum(int(p["verification_usec"]) for obj in objects for p in obj.programs) / 1e6


# Two readings of "heaviest": the most code (static instructions), and the most work
# for the verifier (its own verification time, measured in this run). Both are
# reported; they pick different objects (Cilium's biggest objects hold many
# programs of moderate difficulty; pyperf and Cilium's XDP objects are the hardest
# to verify).
HEAVY_RULES = (
    ("by static instructions", _total_insns),
    ("by verification time", lambda obj: _verification_s([obj])),
)


def _heavy_objects(times: list[ObjectTimes],
                   key: Callable[[ObjectTimes], float]) -> list[ObjectTimes]:
    loadable = [obj for obj in times if obj.whole_s is not None and obj.programs
                and all(p.get("verification_usec") is not None for p in obj.programs)]
    loadable.sort(key=key, reverse=True)
    return loadable[:HEAVY_COUNT]


def section_b(tree: Path, timeout_s: float, out: list[str]) -> None:
    jobs = os.cpu_count() or 1
    # the whole corpus, and the projects compiled from source without the PREVAIL
    # samples (many of them tiny or deliberately broken)
    compiled = sorted(d for d in tree.iterdir() if d.is_dir() and d.name != "ebpf-samples")
    trees = [("whole corpus", [tree]), ("compiled projects only", compiled)]
    # and a tree of the targets' size: every k-th compiled object in path order (no
    # choosing by cost), so each project is in it in proportion to its size
    files = sorted(f for d in compiled for f in d.rglob("*.o"))
    if len(files) >= 2 * SAMPLE_TREE_OBJECTS:
        every = len(files) // SAMPLE_TREE_OBJECTS
        trees.append((f"every {every}th compiled object", files[::every]))
    out.append(f"## (b) trees of objects, `bpflint analyze --jobs {jobs}`\n")
    out.append("Each tree run twice with a cache directory of its own: `bpflint "
               f"analyze --format json --jobs {jobs} --cache-dir <fresh temporary "
               "directory> PATH...`\n")
    out.append("| tree | objects | run | wall time | peak RSS (largest process) | result |")
    out.append("|---|---:|---|---:|---:|---|")
    for name, paths in trees:
        count = sum(1 if path.is_file() else sum(1 for _ in path.rglob("*.o"))
                    for path in paths)
        with tempfile.TemporaryDirectory(prefix="bpflint-bench-cache-") as cache_dir:
            # the cold run finds nothing, the warm run exactly what the cold one stored
            argv = [*BPFLINT, "analyze", "--format", "json", "--jobs",
                    str(jobs), "--cache-dir", cache_dir, *map(str, paths)]
            for label in ("cold", "warm"):
                print(f"[b] {name}: {label}", file=sys.stderr)
                run = run_child(argv, timeout_s)
                state = ("killed at the time limit" if run.timed_out
                         else f"exit {run.returncode}")
                # exit 2: some objects of the tree are reported as errors
                data = child_json(run, ok_codes=(0, 2))
                counts = (f"{len(data['programs'])} programs, {len(data['errors'])} objects "
                          "with errors" if data else child_failure(run))
                out.append(f"| {name} | {count} | {label} | {fmt_s(run.wall_s)} | "
                           f"{run.maxrss_kb / 1024:.0f} MB | {state}: {counts} |")
    out.append("")
    out.append("Exit 2 means some objects of the tree are reported as errors (broken or "
               "invalid objects in the corpus), not that the run failed. "
               "Targets: a tree of 200 or more objects cold < 30 s, warm < 2 s on 2 cores.\n")


def section_c(synthetic: Path, largest: Path | None, timeout_s: float,
              out: list[str]) -> None:
    out.append("## (c) peak memory\n")
    out.append("| input | insns | peak RSS | wall time | result |")
    out.append("|---|---:|---:|---:|---|")
    inputs = [(synthetic, "1M straight-line synthetic")]
    if largest is not None:
        inputs.append((largest, "largest corpus object"))
    for path, label in inputs:
        print(f"[c] {path}", file=sys.stderr)
        run = analyze_run(path, timeout_s)
        data = child_json(run)
        insns = sum(int(p["insns"]) for p in data["programs"]) if data else "-"
        result = "ok" if data else child_failure(run)
        out.append(f"| {label}: {path.name} | {insns} | {run.maxrss_kb / 1024:.0f} MB "
                   f"| {fmt_s(run.wall_s)} | {result} |")
    out.append("\nTarget: < 1 GB for the 1M-instruction program.\n")


def section_d(synth_dir: Path, sizes: tuple[int, ...], timeout_s: float,
              out: list[str]) -> None:
    out.append("## (d) growth with program size (analysis time, engine only)\n")
    out.append("| shape | " + " | ".join(f"{n:,} insns" for n in sizes) + " | last/previous |")
    out.append("|---|" + "---:|" * (len(sizes) + 1))
    for kind in ("straight", "loops"):
        cells = []
        seconds: list[float | None] = []
        for n in sizes:
            path = synth_dir / f"{kind}_{n}.o"
            print(f"[d] {path.name}", file=sys.stderr)
            run = analyze_run(path, timeout_s)
            data = child_json(run)
            if data is None:
                seconds.append(None)
                cells.append(child_failure(run))
                continue
            prog = data["programs"][0]
            seconds.append(float(prog["analysis_s"]))
            bound = "" if prog["bounded"] else " (unbounded)"
            cells.append(fmt_s(float(prog["analysis_s"])) + bound)
        growth = (f"{seconds[-1] / seconds[-2]:.1f}x" if len(seconds) > 1 and seconds[-1]
                  and seconds[-2] else "-")
        out.append(f"| {kind} | " + " | ".join(cells) + f" | {growth} |")
    out.append("\nTarget: 100k -> 1M at most 15x.\n")


# ------------------------------------------------------------------------------- main

def corpus_objects(corpus: Path, quick: bool) -> list[Path]:
    objects = sorted(corpus.rglob("*.o"))
    if quick:
        # the selftests (loop/pyperf/strobemeta/scale) plus a few everyday tools
        selftests = [p for p in objects if p.parent.name == "selftests"]
        others = [p for p in objects if p.parent.name == "bcc"][:5]
        return selftests[:8] + others
    # the per-program table covers the compiled projects; ebpf-samples only feeds (b)
    return [p for p in objects if p.parent.name != "ebpf-samples"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("/work/corpus/obj"),
                        help="directory of real-world BPF objects (*.o, searched recursively)")
    parser.add_argument("--quick", action="store_true",
                        help="a few corpus objects, synthetic programs up to 100k insns")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds allowed per child measurement (default 300)")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    parser.add_argument("--sections", default="abcd",
                        help="which measurements to run, of a, b, c, d (default: all)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--install", action="store_true",
                       help="measure a fresh `pip install` of this checkout (a temporary venv)")
    where.add_argument("--python", type=Path,
                       help="measure the bpflint installed for this interpreter (a venv's "
                            "bin/python) instead of this checkout's")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--launch"] and len(argv) > 3 and argv[2] == "--":
        return launch(argv[1], argv[3:])
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bpflint-bench-") as tmp:
        if args.install or args.python:
            use_installed(install_fresh(Path(tmp) / "venv") if args.install
                          else args.python.absolute())
            which = f"installed for {CHILD_PYTHON}" + (" by `pip install .`" if args.install
                                                       else "")
        else:
            # Byte-compile the package as installing it would: where
            # PYTHONDONTWRITEBYTECODE is set, every child would otherwise compile
            # bpflint's sources again (0.05-0.1 s).
            compileall.compile_dir(str(REPO / "bpflint"), quiet=1)
            which = f"from the checkout {REPO}"
        timeout_s = 60.0 if args.quick else args.timeout
        sizes = GROWTH_SIZES[:2] if args.quick else GROWTH_SIZES
        out = ["# bpflint benchmarks", "",
               f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, kernel "
               f"{os.uname().release}; bpflint {which}: {describe_bpflint()}; "
               f"child time limit {timeout_s:.0f} s.", ""]
        synth_dir = Path(tmp) / "synthetic"
        synth_dir.mkdir()
        for kind in ("straight", "loops"):
            for n in (*sizes, GROWTH_SIZES[-1]) if kind == "straight" else sizes:
                (synth_dir / f"{kind}_{n}.o").write_bytes(gen_synthetic.synthetic_object(kind, n))
        objects = corpus_objects(args.corpus, args.quick) if args.corpus.is_dir() else []
        times = section_a(objects, timeout_s, out) if objects and "a" in args.sections else []
        if args.corpus.is_dir() and "b" in args.sections:
            section_b(args.corpus, timeout_s * 4, out)
        analysed = [t for t in times if t.programs]
        # the largest by instructions where (a) ran, else by file size
        largest = max(analysed, key=_total_insns).path if analysed \
            else max(objects, key=lambda p: p.stat().st_size) if objects else None
        # the 1M-instruction loop-heavy program alone takes minutes
        synthetic_timeout_s = timeout_s if args.quick else max(timeout_s, 900.0)
        if "c" in args.sections:
            section_c(synth_dir / f"straight_{GROWTH_SIZES[-1]}.o", largest,
                      synthetic_timeout_s, out)
        if "d" in args.sections:
            section_d(synth_dir, sizes, synthetic_timeout_s, out)
    text = "\n".join(out) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

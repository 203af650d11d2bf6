"""The benchmark script's own measuring (benchmarks/bench.py)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_child_reports_its_own_peak_memory_not_the_benchmarks() -> None:
    bench = _bench()
    ballast = bytearray(300 * 1024 * 1024)  # this process: over 300 MB resident
    ballast[::4096] = b"x" * len(ballast[::4096])
    run = bench.run_child([sys.executable, "-c", "x = bytearray(40 * 1024 * 1024)"], 60)
    assert run.returncode == 0
    # the child's 40 MB and an interpreter, far below what it was forked from
    assert 40 * 1024 <= run.maxrss_kb < 150 * 1024
    assert run.wall_s > 0
    del ballast


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status  # a zombie has stopped


def test_a_child_over_its_time_limit_is_killed_with_what_it_started() -> None:
    bench = _bench()
    script = ("import subprocess, sys, time\n"
              "worker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
              "print(worker.pid, flush=True)\n"
              "time.sleep(60)\n")
    run = bench.run_child([sys.executable, "-c", script], 2.0)
    assert run.timed_out and run.wall_s < 30
    worker = int(run.stdout.split()[0])
    deadline = time.monotonic() + 5
    while _running(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(worker)


def test_heaviest_objects_by_each_rule_leave_out_objects_the_kernel_rejected() -> None:
    bench = _bench()

    def obj(name: str, insns: int, *usecs: int | None) -> object:
        progs = [{"name": f"p{i}", "insns": insns,
                  **({} if u is None else {"verification_usec": u})}
                 for i, u in enumerate(usecs)]
        return bench.ObjectTimes(Path(name), 1.0, 0, progs, None)

    big = obj("big.o", 9000, 10, 10)  # most code, easy to verify
    hard = obj("hard.o", 100, 5000)  # little code, the verifier's hardest
    rejected = obj("rejected.o", 50000, 9000, None)  # one program not loaded
    mid = obj("mid.o", 1000, 300)
    times = [big, hard, rejected, mid]
    (_, by_insns), (_, by_time) = bench.HEAVY_RULES
    assert bench._heavy_objects(times, by_insns) == [big, mid, hard]
    assert bench._heavy_objects(times, by_time) == [hard, mid, big]
    assert bench._verification_s([big, hard]) == (20 + 5000) / 1e6


def test_the_measured_child_imports_none_of_the_benchmarks_own_modules() -> None:
    # its whole time is reported as what `bpflint analyze` of the object costs
    firewall = BENCH.parent.parent / "examples" / "xdp-firewall" / "firewall.bpf.o"
    worker = BENCH.parent / "bench_worker.py"
    done = subprocess.run([sys.executable, "-X", "importtime", str(worker), "analyze",
                           str(firewall), "60", "5000000"], capture_output=True, text=True,
                          check=True, cwd=BENCH.parent.parent)
    programs = json.loads(done.stdout)["programs"]
    assert programs and all(p["bounded"] and p["max"] > 0 for p in programs)
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "bpflint.cost.engine" in imported
    assert not imported & {"compileall", "statistics", "tempfile", "threading",
                           "gen_synthetic", "bench"}

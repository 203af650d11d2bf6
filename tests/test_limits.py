"""Analysis and input limits: exceeding one is a reported result naming it, not a hang."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from bpfc import PROGS, compile_bpf, find_clang

from bpflint.analysis.fixpoint import Budget, StepBudgetExceeded
from bpflint.budget.config import Limits, load_config
from bpflint.cli import main
from bpflint.errors import BpfLintError
from bpflint.obj.reader import ReadLimits, load_object

pytestmark = pytest.mark.skipif(find_clang() is None, reason="clang is needed")


@pytest.fixture(scope="module")
def loop_obj() -> Path:
    return compile_bpf(PROGS / "csum_loop.bpf.c")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def _project(tmp_path: Path, obj: Path, limits: str) -> Path:
    project = tmp_path / "proj"
    project.mkdir()
    shutil.copy(obj, project / "prog.bpf.o")
    (project / "bpfbudget.toml").write_text(
        f'[analyze]\nobjects = ["*.o"]\n\n[limits]\n{limits}\n\n[[budget]]\nmax_insns = 100000\n')
    return project


# ---------------------------------------------------------------- step and time budgets

def test_tiny_step_budget_is_a_bpf006_result(loop_obj: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "analyze", "--no-cache", "--max-steps", "10",
                           "--format", "json", str(loop_obj))
    assert code == 0
    [program] = json.loads(out)["programs"]
    assert program["bounded"] is False and program["insns"]["max"] is None
    [diag] = [d for d in program["diagnostics"] if d["rule"] == "BPF006"]
    assert "step budget of 10 steps" in diag["message"]
    # the default budget is ample for the same program
    code, out, _ = run_cli(capsys, "analyze", "--no-cache", "--format", "json", str(loop_obj))
    assert json.loads(out)["programs"][0]["bounded"] is True


def test_limits_table_sets_the_step_budget(loop_obj: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path, loop_obj, "max_steps = 10")
    config = str(project / "bpfbudget.toml")
    code, out, _ = run_cli(capsys, "check", "--no-cache", "--config", config,
                           "--format", "json")
    assert code == 1
    assert "step budget of 10 steps" in out
    # the command line wins over the file
    code, out, _ = run_cli(capsys, "check", "--no-cache", "--config", config,
                           "--max-steps", "5000000", "--format", "json")
    assert code == 0 and "step budget" not in out


def test_wall_clock_budget_is_passed_to_the_engine(loop_obj: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from bpflint import api

    seen = []
    real = api.analyze_program

    def spy(obj, program, table, options, *rest):  # type: ignore[no-untyped-def]
        seen.append((options.max_steps, options.max_seconds))
        return real(obj, program, table, options, *rest)

    monkeypatch.setattr(api, "analyze_program", spy)
    project = _project(tmp_path, loop_obj, "max_seconds = 7\nmax_steps = 900000")
    code, _, _ = run_cli(capsys, "check", "-j", "1", "--no-cache",
                         "--config", str(project / "bpfbudget.toml"))
    assert code == 0 and seen == [(900000, 7.0)]
    code, _, _ = run_cli(capsys, "check", "-j", "1", "--no-cache", "--max-seconds", "2.5",
                         "--config", str(project / "bpfbudget.toml"))
    assert seen[-1] == (900000, 2.5)


@pytest.mark.parametrize(("flag", "value"), [("--max-steps", "0"), ("--max-seconds", "0"),
                                             ("--max-seconds", "-1"), ("--jobs", "0")])
def test_non_positive_limits_are_usage_errors(loop_obj: Path, flag: str, value: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "analyze", flag, value, str(loop_obj))
    assert code == 2 and out == ""
    assert err.startswith(f"bpflint: error: {flag} must be")


# ---------------------------------------------------------------- [limits] mistakes

@pytest.mark.parametrize(("body", "line", "message"), [
    ("max_step = 10", 5, "key 'limits.max_step': unknown key; did you mean 'max_steps'?"),
    ('max_steps = "10"', 5, "key 'limits.max_steps': expected an integer"),
    ("max_seconds = true", 5, "key 'limits.max_seconds': expected a number"),
    ("max_object_bytes = 0", 5, "key 'limits.max_object_bytes': must be more than zero"),
    ("\nmax_btf_bytes = -4", 6, "key 'limits.max_btf_bytes': must be more than zero"),
])
def test_limits_mistakes_are_located(tmp_path: Path, body: str, line: int,
                                     message: str) -> None:
    path = tmp_path / "bpfbudget.toml"
    path.write_text(f'[analyze]\nobjects = ["*.o"]\n\n[limits]\n{body}\n')
    with pytest.raises(BpfLintError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:{line}: {message}")


def test_limits_are_read(tmp_path: Path) -> None:
    path = tmp_path / "bpfbudget.toml"
    path.write_text("[limits]\nmax_steps = 10\nmax_seconds = 3\nmax_object_bytes = 4096\n"
                    "max_btf_bytes = 1024\n")
    assert load_config(path).limits == Limits(10, 3.0, 4096, 1024)
    path.write_text("")
    assert load_config(path).limits == Limits()


# ---------------------------------------------------------------- object and BTF size

def test_object_size_limit(loop_obj: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    size = loop_obj.stat().st_size
    with pytest.raises(BpfLintError, match=rf"object is {size} bytes, over the 1000 bytes "
                                           r"object size limit \(max_object_bytes\)"):
        load_object(loop_obj, ReadLimits(max_object_bytes=1000))
    assert load_object(loop_obj, ReadLimits(max_object_bytes=size)).programs
    project = _project(tmp_path, loop_obj, "max_object_bytes = 1000")
    code, out, err = run_cli(capsys, "check", "--no-cache", "--config",
                             str(project / "bpfbudget.toml"))
    assert code == 2
    [line] = [ln for ln in (out + err).splitlines() if "object size limit" in ln]
    assert "prog.bpf.o: object is" in line


def test_default_object_size_limit_is_checked_before_reading(tmp_path: Path) -> None:
    huge = tmp_path / "huge.o"
    with open(huge, "wb") as handle:
        handle.truncate(65 << 20)  # sparse: 65 MiB on paper, nothing on disk
    with pytest.raises(BpfLintError, match="over the 64 MiB object size limit"):
        load_object(huge)


def test_btf_size_limit(loop_obj: Path, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(BpfLintError, match=r"section \.BTF is \d+ bytes, over the 256 bytes "
                                           r"BTF size limit \(max_btf_bytes\)"):
        load_object(loop_obj, ReadLimits(max_btf_bytes=256))
    project = _project(tmp_path, loop_obj, "max_btf_bytes = 256")
    code, out, err = run_cli(capsys, "check", "--no-cache", "--config",
                             str(project / "bpfbudget.toml"))
    assert code == 2 and "BTF size limit (max_btf_bytes)" in out + err


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.o"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            load_object(fifo)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "reading a FIFO blocked"
    assert isinstance(outcome[0], BpfLintError) and "not a regular file" in str(outcome[0])


def test_the_time_budget_counts_cpu_time_not_a_loaded_machines_waiting() -> None:
    """--max-seconds is CPU time of the analysing process: time spent waiting (a CI
    runner's other jobs holding the cores; here a sleep) does not use it up, so a
    result does not depend on the machine's load. It used to be wall-clock time."""
    budget = Budget(10**9, 0.3)
    time.sleep(0.5)  # wall-clock time passes, CPU time hardly
    budget.check_clock()
    start = time.process_time()
    with pytest.raises(StepBudgetExceeded, match="CPU-time budget of 0.3 s exhausted"):
        while time.process_time() - start < 5.0:  # CPU time runs out within 0.3 s
            budget.spend(1)

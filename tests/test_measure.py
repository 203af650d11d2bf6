"""`bpflint measure` end to end on the live kernel."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bpfc import PROGS, compile_bpf

from bpflint.cli import main
from bpflint.commands import measure
from bpflint.kernel.syscall import ENOTSUPP, BpfSyscallError, bpf_usable, prog_type_runs

USABLE, REASON = bpf_usable()
needs_bpf = pytest.mark.skipif(not USABLE, reason=REASON)


def runs(prog_type: str) -> pytest.MarkDecorator:
    """Skip, with the kernel's reason, where it cannot load and test-run the type."""
    ok, why = prog_type_runs(prog_type) if USABLE else (False, REASON)
    return pytest.mark.skipif(not ok, reason=why)

NS = PROGS / "ns" / "pkt_driven.bpf.c"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["measure", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def estimate_line(out: str) -> tuple[float, float, float, str]:
    match = re.search(r"estimate: \[([\d.]+), ([\d.]+)\] ns -> measured (-?\d+) ns is "
                      r"(inside|OUTSIDE)", out)
    assert match, out
    return float(match[1]), float(match[2]), float(match[3]), match[4]


@pytest.mark.kernel
@runs("xdp")
def test_measure_prints_time_next_to_the_estimate(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    obj = str(compile_bpf(NS))
    # the loop runs the packet's first byte times: 200 -> 128 rounds (the clamp)
    packet = tmp_path / "worst.bin"
    packet.write_bytes(bytes([200]) + bytes(63))
    code, out, err = run(capsys, obj, "--program", "ns_alu_loop", "--data", str(packet),
                         "--repeat", "5000")
    assert code == 0, err
    assert "ns_alu_loop (xdp): measured" in out and "retval 2" in out
    lo, hi, measured, verdict = estimate_line(out)
    assert lo <= hi
    assert measured >= 50  # 128 rounds of a multiply chain: well above the noise
    assert verdict == ("inside" if measure.inside(measured, lo, hi) else "OUTSIDE")
    # the best case (zero rounds) is much faster than the worst
    code, out, _ = run(capsys, obj, "--program", "ns_alu_loop", "--data-hex", "00" * 64,
                       "--repeat", "5000")
    assert code == 0
    assert estimate_line(out)[2] < measured / 2


@pytest.mark.kernel
@runs("sched_cls")
def test_measure_runs_tc_programs(capsys: pytest.CaptureFixture[str]) -> None:
    obj = str(compile_bpf(NS))
    code, out, err = run(capsys, obj, "--program", "ns_array_ops", "--repeat", "1000")
    assert code == 0, err
    assert "ns_array_ops (tc): measured" in out and "estimate: [" in out


def test_inside_rule_has_a_tolerance_below_only() -> None:
    assert measure.inside(10.0, 17.0, 20.0)  # 8 ns slack under the minimum
    assert not measure.inside(10.0, 19.0, 20.0)
    assert not measure.inside(21.0, 0.0, 20.0)  # none above the maximum
    assert measure.inside(100.0, 109.0, 200.0)  # 10 % of the measurement


@pytest.mark.parametrize("argv, message", [
    (("--program", "nope"), "no program 'nope' (programs: "),
    (("--program", "ns_alu_loop", "--data-hex", "zz"), "--data-hex: not hex"),
    (("--program", "ns_alu_loop", "--repeat", "0"), "--repeat must be at least 1"),
    (("--program", "ns_alu_loop", "--data", "/nonexistent/p.bin"), "cannot read"),
])
@needs_bpf
def test_bad_input_is_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                      argv: tuple[str, ...], message: str) -> None:
    code, out, err = run(capsys, str(compile_bpf(NS)), *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("bpflint: error: ") and message in err


def test_non_root_is_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    code, out, err = run(capsys, str(compile_bpf(NS)), "--program", "ns_alu_loop")
    assert code == 2 and out == ""
    assert err == "bpflint: error: measure needs root (it loads and runs the program)\n"


def test_missing_object_is_exit_2(capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    code, _, err = run(capsys, "/nonexistent/x.o", "--program", "p")
    assert code == 2 and err.count("\n") == 1 and "/nonexistent/x.o" in err


def test_a_timing_above_the_max_is_taken_again_and_the_least_counts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    queue: list[float] = []

    def fake(fd: int, prog_type: str, data: bytes, repeat: int,
             samples: int = measure.SAMPLES) -> measure.Timing:
        return measure.Timing(queue.pop(0), 0.0, 6.0, 0)

    monkeypatch.setattr(measure, "time_program_ns", fake)
    queue[:] = [150.0, 120.0, 90.0]  # above 130, then below it: the tries stop there
    timing, tries = measure.least_of_tries(3, "xdp", b"", 1, 130.0)
    assert (timing.measured_ns, tries, queue) == (120.0, 2, [90.0])
    # an estimate that is really too low stays above on every try and still fails
    queue[:] = [150.0, 140.0, 135.0, 133.0, 10.0]
    timing, tries = measure.least_of_tries(3, "xdp", b"", 1, 100.0)
    assert (timing.measured_ns, tries, queue) == (133.0, 1 + measure.RETRIES, [10.0])
    queue[:] = [90.0, 10.0]  # inside at once: timed once
    timing, tries = measure.least_of_tries(3, "xdp", b"", 1, 100.0)
    assert (timing.measured_ns, tries, queue) == (90.0, 1, [10.0])


def test_a_kernel_refusal_is_one_line_naming_object_and_program(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    log = "0: (85) call bpf_loop#181\nprogram of this type cannot use helper bpf_loop#181\n"

    def refuse(obj: object, program: object) -> None:
        raise BpfSyscallError("kernel rejected program 'ns_bpf_loop' (Invalid argument)",
                              22, log)

    monkeypatch.setattr(measure, "load_program", refuse)
    obj = str(compile_bpf(NS))
    code, out, err = run(capsys, obj, "--program", "ns_bpf_loop")
    assert code == 2 and out == ""
    assert err == (f"bpflint: error: {obj}: ns_bpf_loop: this kernel cannot load it: program "
                   "of this type cannot use helper bpf_loop#181\n")


@runs("xdp")
def test_a_test_run_the_kernel_cannot_do_is_one_line(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def no_test_run(*args: object, **kw: object) -> None:
        raise BpfSyscallError("test run of program fd 5 failed", ENOTSUPP)

    monkeypatch.setattr(measure, "least_of_tries", no_test_run)
    obj = str(compile_bpf(NS))
    code, out, err = run(capsys, obj, "--program", "ns_alu_loop")
    assert code == 2 and out == ""
    assert err == (f"bpflint: error: {obj}: ns_alu_loop: this kernel cannot test-run xdp "
                   "programs: not supported (ENOTSUPP)\n")

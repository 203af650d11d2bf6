"""The baseline file: stable, diff-friendly, and never truncated by a failing write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from gate_helpers import program

from bpflint.budget import baseline as baseline_mod
from bpflint.budget.baseline import from_results, read_baseline, to_json_text, write_baseline
from bpflint.errors import BpfLintError


def sample() -> baseline_mod.Baseline:
    return from_results([program("zeta", ns_max=1234.5678), program("alpha"),
                         program("loop", bounded=False)], "test")


def test_round_trip_sorted_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "bpf-baseline.json"
    write_baseline(path, sample())
    text = path.read_text()
    assert text == to_json_text(sample())  # deterministic
    data = json.loads(text)
    assert list(data["programs"]) == ["fw.bpf.o:xdp:alpha", "fw.bpf.o:xdp:loop",
                                      "fw.bpf.o:xdp:zeta"]
    assert data["programs"]["fw.bpf.o:xdp:zeta"]["ns"]["max"] == 1234.6
    assert data["programs"]["fw.bpf.o:xdp:loop"]["insns"]["max"] is None
    assert text.count("\n") > 30  # one field a line: diffs show what changed
    back = read_baseline(path)
    assert back.entries == sample().entries
    assert not [p for p in tmp_path.iterdir() if p.name != "bpf-baseline.json"]


def test_objects_are_named_by_their_path_relative_to_the_budget_file(tmp_path: Path) -> None:
    inside = str(tmp_path / "build" / "fw.bpf.o")
    entry = from_results([program("p", obj=inside)], "x", root=tmp_path).entries
    assert list(entry) == ["build/fw.bpf.o:xdp:p"]
    assert entry["build/fw.bpf.o:xdp:p"].object == "build/fw.bpf.o"
    outside = from_results([program("p", obj="/some/build/../dir/fw.bpf.o")], "x",
                           root=tmp_path).entries
    assert list(outside) == ["/some/dir/fw.bpf.o:xdp:p"]  # as given, normalised


def test_same_name_in_two_directories_keeps_two_entries(tmp_path: Path) -> None:
    """a/firewall.bpf.o and b/firewall.bpf.o: two programs, two keys."""
    results = [program("xdp_fw", obj=str(tmp_path / "a" / "firewall.bpf.o"), insns_max=100),
               program("xdp_fw", obj=str(tmp_path / "b" / "firewall.bpf.o"), insns_max=300)]
    base = from_results(results, "x", root=tmp_path)
    assert {k: e.insns_max for k, e in base.entries.items()} == {
        "a/firewall.bpf.o:xdp:xdp_fw": 100, "b/firewall.bpf.o:xdp:xdp_fw": 300}
    path = tmp_path / "bpf-baseline.json"
    write_baseline(path, base)
    assert read_baseline(path).entries == base.entries


def test_the_same_program_twice_is_an_error_not_a_silent_overwrite(tmp_path: Path) -> None:
    twice = [program("p", obj=str(tmp_path / "fw.bpf.o"))] * 2
    with pytest.raises(BpfLintError, match="analysed twice"):
        from_results(twice, "x", root=tmp_path)


@pytest.mark.parametrize("text", ["", "{", "[]", '{"version": 2, "programs": {}}',
                                  '{"version": 1}', '{"version": 1, "programs": {"k": {}}}'])
def test_malformed_baselines_are_one_line_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(text)
    with pytest.raises(BpfLintError, match=str(path)):
        read_baseline(path)


def test_injected_failure_keeps_the_old_baseline(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bpf-baseline.json"
    path.write_text("OLD CONTENT\n")

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(baseline_mod.os, "fsync", failing_fsync)
    with pytest.raises(BpfLintError, match="cannot write baseline: Input/output error"):
        write_baseline(path, sample())
    assert path.read_text() == "OLD CONTENT\n"
    assert [p.name for p in tmp_path.iterdir()] == ["bpf-baseline.json"]  # no temp left


def test_interrupt_keeps_the_old_baseline(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bpf-baseline.json"
    path.write_text("OLD CONTENT\n")

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(baseline_mod.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_baseline(path, sample())
    assert path.read_text() == "OLD CONTENT\n"
    assert [p.name for p in tmp_path.iterdir()] == ["bpf-baseline.json"]


def test_killed_mid_write_leaves_the_old_baseline(tmp_path: Path) -> None:
    """SIGKILL after the new content is written but before the rename: no cleanup
    code runs, and the old file must still be whole."""
    path = tmp_path / "bpf-baseline.json"
    path.write_text("OLD CONTENT\n")
    script = f"""
import os, signal, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from gate_helpers import program
from bpflint.budget import baseline
def die(fd):
    os.kill(os.getpid(), signal.SIGKILL)
baseline.os.fsync = die
baseline.write_baseline(baseline.Path({str(path)!r}),
                        baseline.from_results([program("p")], "x"))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGKILL
    assert path.read_text() == "OLD CONTENT\n"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "bpf-baseline.json"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".bpf-baseline.json.")
    # the next run succeeds and replaces the file whole
    write_baseline(path, sample())
    assert read_baseline(path).entries == sample().entries


def test_unwritable_directory_is_a_one_line_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = tmp_path / "missing-dir" / "b.json"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "b.json"
    with pytest.raises(BpfLintError, match="cannot write baseline"):
        write_baseline(target, sample())

"""`bpflint analyze` end to end: table, JSON contract, directory scans, errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from bpfc import PROGS, compile_bpf, find_clang

from bpflint import __version__, api, native
from bpflint.cli import main
from bpflint.errors import BpfLintError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

pytestmark = pytest.mark.skipif(find_clang() is None, reason="clang is needed")

FEATURES = PROGS / "reader" / "features.bpf.c"
FEATURE_PROGRAMS = {"probe_a", "probe_b", "tc_timer", "tail_target", "xdp_entry"}
# what analyze reports: the programs plus the timer callback tc_timer arms
FEATURE_ENTRIES = FEATURE_PROGRAMS | {"timer_cb"}

_NUM_OR_NULL = {"type": ["number", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}
_LOC = {"type": "object", "required": ["file", "line"],
        "properties": {"file": {"type": "string"}, "line": {"type": "integer"}}}
# The contract of design.md ("Output contract used by tests and tools").
CONTRACT = {
    "type": "object",
    "required": ["version", "programs", "errors"],
    "properties": {
        "version": {"const": 1},
        "programs": {"type": "array", "items": {
            "type": "object",
            "required": ["object", "section", "name", "type", "bounded", "insns", "ns",
                         "source", "worst_path"],
            "properties": {
                "object": {"type": "string"},
                "section": {"type": "string"},
                "name": {"type": "string"},
                "type": {"type": "string"},
                "bounded": {"type": "boolean"},
                "insns": {"type": "object", "required": ["min", "max"],
                          "properties": {"min": _INT_OR_NULL, "max": _INT_OR_NULL}},
                "ns": {"type": "object", "required": ["min", "max"],
                       "properties": {"min": _NUM_OR_NULL, "max": _NUM_OR_NULL}},
                "source": {"oneOf": [{"type": "null"}, _LOC]},
                "worst_path": {"type": "array", "items": {
                    "type": "object", "required": ["file", "line", "insns", "ns"],
                    "properties": {"file": {"type": "string"}, "line": {"type": "integer"},
                                   "insns": {"type": "integer"}, "ns": {"type": "number"}}}},
                "insn_count": {"type": "integer", "minimum": 1},
            },
        }},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["object", "message"],
            "properties": {"object": {"type": "string"}, "message": {"type": "string"}}}},
    },
}


@pytest.fixture(scope="module")
def features() -> Path:
    return compile_bpf(FEATURES)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str, path: Path | str) -> str:
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("bpflint: error: ")]
    assert len(errors) == 1, err
    assert errors[0].startswith(f"bpflint: error: {path}: "), err
    assert "Traceback" not in err
    return errors[0]


def test_table_lists_every_program(features: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "analyze", str(features))
    assert code == 0, err
    table, _, diagnostics = out.partition("\n\n")
    header, *rows = table.splitlines()
    assert header.split() == ["OBJECT", "SECTION", "NAME", "TYPE", "INSNS", "MIN_INSNS",
                              "MAX_INSNS", "MIN_NS", "MAX_NS", "BOUNDED"]
    by_name = {row.split()[2]: row.split() for row in rows}
    # the timer callback tc_timer arms is reported as an entry point of its own
    assert set(by_name) == FEATURE_ENTRIES
    assert by_name["timer_cb"][3] == "timer_callback"
    assert by_name["probe_a"][:4] == [str(features), "kprobe/do_unlinkat", "probe_a", "kprobe"]
    assert by_name["tc_timer"][3] == "sched_cls"
    # aligned: every row's NAME column starts where the header's does
    column = header.index("NAME")
    assert all(row[column:].split()[0] in FEATURE_ENTRIES for row in rows)
    # below the table, one line per diagnostic: "object:section:name: RULE slug: message"
    for line in diagnostics.splitlines():
        assert line.startswith(f"{features.name}:") and " BPF" in line


def test_insn_count_includes_subprograms(features: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    report = api.analyze_paths([str(features)], None)
    counts = {r.name: r.insn_count for r in report.programs}
    from bpflint.obj.reader import load_object

    obj = load_object(features)
    entry = {p.name: len(obj.functions[p.entry].insns) for p in obj.programs}
    twice, add_one = obj.function_named("global_twice"), obj.function_named("add_one")
    assert twice is not None and add_one is not None
    # probe_a calls global_twice, which calls add_one
    assert counts["probe_a"] == entry["probe_a"] + len(twice.insns) + len(add_one.insns)
    assert counts["tail_target"] == entry["tail_target"]


def test_json_follows_the_contract(features: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "analyze", "--format", "json", str(features))
    assert code == 0, err
    doc = json.loads(out)
    jsonschema.validate(doc, CONTRACT)
    assert {p["name"] for p in doc["programs"]} == FEATURE_ENTRIES
    assert doc["errors"] == []
    for prog in doc["programs"]:
        assert prog["object"] == str(features)
        assert prog["source"]["file"].endswith("features.bpf.c")
        for lo, hi in (prog["insns"].values(), prog["ns"].values()):
            assert (lo is None) == (hi is None) or not prog["bounded"]
            if lo is not None and hi is not None:
                assert lo <= hi
        if not prog["bounded"]:
            assert prog["insns"]["max"] is None and prog["ns"]["max"] is None


def test_output_file(features: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "report.json"
    code, out, _ = run_cli(capsys, "analyze", "--format", "json", "-o", str(target),
                           str(features))
    assert code == 0 and out == ""
    jsonschema.validate(json.loads(target.read_text()), CONTRACT)


def _foreign_elf(source: Path, dest: Path) -> Path:
    """A copy of a BPF object whose header says x86-64 (e_machine 62)."""
    raw = bytearray(source.read_bytes())
    raw[18:20] = (62).to_bytes(2, "little")
    dest.write_bytes(bytes(raw))
    return dest


def test_directory_scan_skips_foreign_elf_with_a_note(
        features: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    shutil.copy(features, nested / "features.bpf.o")
    shutil.copy(compile_bpf(PROGS / "straight_xdp.bpf.c"), tmp_path / "straight.o")
    host = _foreign_elf(features, tmp_path / "a" / "host.o")
    (tmp_path / "notes.txt").write_text("not an object")
    code, out, err = run_cli(capsys, "analyze", "--format", "json", str(tmp_path))
    assert code == 0, err
    doc = json.loads(out)
    objects = {Path(p["object"]).name for p in doc["programs"]}
    assert objects == {"features.bpf.o", "straight.o"}
    assert doc["errors"] == []
    assert err.strip() == f"bpflint: note: skipped {host}: not a BPF object (ELF for x86-64)"


def test_foreign_elf_named_explicitly_is_an_error(
        features: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = _foreign_elf(features, tmp_path / "host.o")
    code, _, err = run_cli(capsys, "analyze", str(host))
    assert code == 2
    assert "not a BPF object" in one_error_line(err, host)


def test_one_bad_file_does_not_hide_the_others(
        features: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "truncated.o"
    bad.write_bytes(features.read_bytes()[:300])
    straight = compile_bpf(PROGS / "straight_xdp.bpf.c")
    code, out, err = run_cli(capsys, "analyze", "--format", "json", str(features), str(bad),
                             str(straight))
    assert code == 2
    doc = json.loads(out)
    jsonschema.validate(doc, CONTRACT)
    assert {p["name"] for p in doc["programs"]} == FEATURE_ENTRIES | {"straight_xdp"}
    assert [e["object"] for e in doc["errors"]] == [str(bad)]
    one_error_line(err, bad)


def test_missing_file_is_reported_and_the_rest_analysed(
        features: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.o"
    code, out, err = run_cli(capsys, "analyze", str(missing), str(features))
    assert code == 2
    assert "probe_a" in out
    assert one_error_line(err, missing).endswith("no such file or directory")


def test_missing_cost_table(features: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "costs.toml"
    code, out, err = run_cli(capsys, "analyze", "--cost-table", str(table), str(features))
    assert code == 2 and out == ""
    one_error_line(err, table)


def test_parallel_jobs_give_the_same_report(features: Path) -> None:
    paths = [str(features), str(compile_bpf(PROGS / "straight_xdp.bpf.c"))]
    assert api.analyze_paths(paths, None, jobs=2) == api.analyze_paths(paths, None, jobs=1)


def test_an_object_split_between_workers_gives_the_same_report(
        features: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "SPLIT_MIN_BYTES", 0)  # the test object is small
    # alone in the run, an object with several programs is shared by both workers
    assert api._parts(features.stat().st_size, features.stat().st_size / 2, 2) == 2
    one = api.analyze_paths([str(features)], None, jobs=1)
    assert len(one.programs) > 2
    assert api.analyze_paths([str(features)], None, jobs=2) == one


def test_a_split_object_that_cannot_be_read_is_reported_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "SPLIT_MIN_BYTES", 0)
    bad = tmp_path / "bad.o"
    bad.write_bytes(b"\x7fELF" + bytes(4096))  # big enough to be split, not an object
    report = api.analyze_paths([str(bad)], None, jobs=2)
    assert len(report.errors) == 1 and report.errors[0].object == str(bad)


def test_a_dead_pool_is_reported_once_per_object() -> None:
    died = api._Part(None, (), api.ObjectOutcome(
        errors=("the analysis process died (out of memory?)",)))
    content, outcome = api._merge([died, died])
    assert content is None and outcome.errors == died.rest.errors


def test_small_objects_stay_whole_and_big_ones_are_shared() -> None:
    mb = 1 << 20
    assert api._parts(1 * mb, 10 * mb, 2) == 1
    assert api._parts(6 * mb, 10 * mb, 2) == 1  # just above a fair share: not worth a reread
    assert api._parts(20 * mb, 10 * mb, 2) == 2
    assert api._parts(100 * mb, 10 * mb, 4) == 4  # never more parts than workers
    # however much of the run it holds, a small object is not worth a second worker
    assert api._parts(api.SPLIT_MIN_BYTES - 1, 1000, 2) == 1


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["analyze"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["analyze", "--format", "xml", "x.o"])
    assert info.value.code == 2
    capsys.readouterr()
    code, _, err = run_cli(capsys, "analyze", "-j", "0", "x.o")
    assert code == 2 and err.startswith("bpflint: error: --jobs")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"bpflint {__version__} ({native.describe()})"


def test_a_command_imports_only_its_own_module() -> None:
    # start-up time: `analyze` must not pay for the calibrator or the gate
    code = ("import sys\nfrom bpflint.cli import main\n"
            "try:\n    main(['analyze', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    loaded = set(proc.stdout.split())
    assert "bpflint.commands.analyze" in loaded and "bpflint.api" in loaded
    # nor for the engine and pyelftools before an object needs them: a run whose
    # every result is cached never does
    assert not loaded & {"bpflint.cost.engine", "elftools"}
    for other in ("calibrate", "check", "measure", "baseline", "disasm", "explain"):
        assert f"bpflint.commands.{other}" not in loaded
    assert not loaded & {"bpflint.kernel.calibrate.run", "bpflint.budget.gate",
                         "bpflint.report.sarif", "concurrent.futures"}


def _modules_after(argv: list[str], cwd: Path | None = None) -> set[str]:
    """The modules a run of ``bpflint ARGV`` (in this interpreter) had imported."""
    code = ("import sys\nfrom bpflint.cli import main\n"
            f"code = main({argv!r})\n"
            "print('MODULES', ' '.join(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True, cwd=cwd)
    return set(proc.stdout.split("MODULES", 1)[1].split())


def test_a_run_imports_nothing_it_does_not_use(tmp_path: Path) -> None:
    # start-up time: the budget file's reader, the build step, and what only an error
    # message, a help text or a cache write needs stay unimported
    unused = {"bpflint.budget.config", "bpflint.build.compile", "subprocess", "tempfile",
              "shutil", "difflib", "fractions"}
    loaded = _modules_after(["analyze", "--no-cache", str(tmp_path / "none.o")])
    assert "bpflint.api" in loaded
    assert not loaded & unused
    # a run that analyses an object and stores its results
    loaded = _modules_after(["analyze", "--cache-dir", str(tmp_path / "cache"),
                             str(EXAMPLES / "xdp-firewall" / "firewall.bpf.o")])
    assert "bpflint.cost.engine" in loaded and list((tmp_path / "cache").rglob("*.json"))
    assert not loaded & unused


def test_check_imports_only_what_a_text_report_needs(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "xdp-firewall", tmp_path / "fw")
    argv = ["check", "--cache-dir", str(tmp_path / "cache")]
    _modules_after(argv, tmp_path / "fw")  # fills the cache
    loaded = _modules_after(argv, tmp_path / "fw")
    assert {"bpflint.commands.check", "bpflint.report.text", "bpflint.budget.gate"} <= loaded
    assert not loaded & {"bpflint.report.html", "bpflint.report.sarif", "bpflint.report.github",
                         "bpflint.report.markdown", "bpflint.report.check_json",
                         "bpflint.budget.history", "bpflint.build.compile",
                         "bpflint.build.command", "bpflint.cost.engine", "elftools",
                         "shutil", "tempfile", "difflib"}


def test_every_command_is_listed_and_runs_its_own_module(
        capsys: pytest.CaptureFixture[str]) -> None:
    from bpflint.commands import COMMANDS
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name, help_text in COMMANDS.items():
        assert name in out
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        assert help_text.split()[0] in capsys.readouterr().out


def test_python_dash_m(features: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.o"
    bad.write_bytes(b"\x7fELF" + b"\x00" * 60)
    proc = subprocess.run([sys.executable, "-m", "bpflint", "analyze", "--format", "json",
                           str(features), str(bad)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, CONTRACT)
    assert len(doc["programs"]) == len(FEATURE_ENTRIES)
    one_error_line(proc.stderr, bad)


def test_discover(features: Path, tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    shutil.copy(features, tmp_path / "d" / "e" / "x.bpf.o")
    shutil.copy(features, tmp_path / "d" / "y.o")
    (tmp_path / "d" / "z.c").write_text("int z;")
    os.mkfifo(tmp_path / "d" / "fifo.o")
    objects, notes = api.discover([str(tmp_path / "d"), str(tmp_path / "d" / "y.o")])
    assert objects == [str(tmp_path / "d" / "e" / "x.bpf.o"), str(tmp_path / "d" / "y.o")]
    assert notes == []
    empty = tmp_path / "empty"
    empty.mkdir()
    assert api.discover([str(empty)]) == ([], [f"no BPF objects (*.o) found under {empty}"])
    with pytest.raises(BpfLintError, match="no such file or directory"):
        api.discover([str(tmp_path / "missing")])
    with pytest.raises(BpfLintError, match="not a regular file"):
        api.discover([str(tmp_path / "d" / "fifo.o")])


@pytest.mark.skipif(find_clang() is None, reason="clang is needed")
def test_an_object_without_programs_gets_a_note(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "maps_only.bpf.c"
    source.write_text('int counter __attribute__((section(".data"))) = 1;\n'
                      'char LICENSE[] __attribute__((section("license"))) = "GPL";\n')
    obj = compile_bpf(source, out_dir=tmp_path)
    assert main(["analyze", "--no-cache", str(obj)]) == 0
    assert "no programs in this object" in capsys.readouterr().err

"""The result cache: lossless entries, hits skip the analysis, damage is ignored."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from bpfc import PROGS, compile_bpf, find_clang, needs_clang
from hypothesis import given, settings
from hypothesis import strategies as st

from bpflint import api
from bpflint.cache import (
    EntryError,
    ObjectOutcome,
    ResultCache,
    default_cache_dir,
    from_dict,
    is_cacheable,
    to_dict,
)
from bpflint.cli import main
from bpflint.cost.options import AnalysisOptions
from bpflint.cost.table_file import load_cost_table
from bpflint.results import Diagnostic, LineCost, ProgramResult, SourceLoc

_text = st.text(max_size=12)
_count = st.integers(min_value=0, max_value=2**63)
_ns = st.floats(min_value=0, max_value=1e12, allow_nan=False)
_loc = st.builds(SourceLoc, _text, st.integers(min_value=0, max_value=10**6))
_line = st.builds(LineCost, _text, st.integers(min_value=0), _count, _ns, _text)
_diag = st.builds(Diagnostic, _text, _text, _text, st.none() | _loc)
RESULTS = st.builds(
    ProgramResult,
    object=_text, section=_text, name=_text, type=_text, insn_count=_count,
    bounded=st.booleans(), insns_min=st.none() | _count, insns_max=st.none() | _count,
    ns_min=st.none() | _ns, ns_max=st.none() | _ns, source=st.none() | _loc,
    worst_path=st.lists(_line, max_size=3).map(tuple),
    line_costs=st.lists(_line, max_size=3).map(tuple),
    diagnostics=st.lists(_diag, max_size=3).map(tuple),
    tail_call_targets=st.lists(_text, max_size=3).map(tuple),
    warnings=st.lists(_text, max_size=3).map(tuple),
)


@settings(max_examples=150, deadline=None)
@given(RESULTS)
def test_program_results_round_trip_through_json(result: ProgramResult) -> None:
    data = json.loads(json.dumps(to_dict(result), allow_nan=False))
    assert set(data) == {f.name for f in dataclasses.fields(ProgramResult)}
    back = from_dict(ProgramResult, data)
    assert back == result
    # equal is not enough: an int where a float was must come back a float
    for f in dataclasses.fields(ProgramResult):
        assert type(getattr(back, f.name)) is type(getattr(result, f.name)), f.name


def _sample() -> dict[str, Any]:
    return to_dict(ProgramResult("a.o", "xdp", "p", "xdp", 3, True, 1, 2, 1.0, 2.5,
                                 SourceLoc("a.c", 4)))


@pytest.mark.parametrize("damage", [
    lambda d: d.pop("bounded"),
    lambda d: d.update(insns_max="12"),
    lambda d: d.update(insns_max=True),
    lambda d: d.update(bounded=1),
    lambda d: d.update(source={"file": "a.c"}),
    lambda d: d.update(worst_path={"file": "a.c"}),
    lambda d: d.update(surprise=1),
])
def test_damaged_data_is_rejected(damage: Any) -> None:
    data = _sample()
    damage(data)
    with pytest.raises(EntryError):
        from_dict(ProgramResult, data)


def test_default_cache_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "bpflint"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".cache" / "bpflint"
    assert default_cache_dir({}) == expected
    # the XDG spec: a relative XDG_CACHE_HOME is invalid and ignored
    assert default_cache_dir({"XDG_CACHE_HOME": "relative"}) == expected


def test_cpu_time_stops_are_not_cached() -> None:
    stopped = ProgramResult("a.o", "xdp", "p", "xdp", 3, False, None, None, None, None,
                            diagnostics=(Diagnostic("BPF006", "analysis-limit",
                                                    "analysis stopped: CPU-time budget of "
                                                    "1 s exhausted"),))
    steps = dataclasses.replace(stopped, diagnostics=(Diagnostic(
        "BPF006", "analysis-limit", "analysis stopped: step budget of 10 steps exhausted"),))
    assert not is_cacheable(ObjectOutcome((stopped,)))
    assert is_cacheable(ObjectOutcome((steps,)))  # the same inputs always stop there
    assert not is_cacheable(ObjectOutcome(errors=("internal error: MemoryError",)))


# ---------------------------------------------------------------- with the engine

class _Counter:
    """Stands in for the engine entry, counting calls (or refusing them)."""

    def __init__(self, refuse: bool = False) -> None:
        self.calls = 0
        self.refuse = refuse
        self.real = api.analyze_program

    def __call__(self, *args: Any, **kwargs: Any) -> ProgramResult:
        self.calls += 1
        if self.refuse:
            raise AssertionError("analysis ran although every result was cached")
        return self.real(*args, **kwargs)


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> _Counter:
    counting = _Counter()
    monkeypatch.setattr(api, "analyze_program", counting)
    return counting


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    if find_clang() is None:
        pytest.skip("clang is needed")
    tree = tmp_path_factory.mktemp("tree")
    out = []
    for name in ("straight_xdp", "csum_loop", "calls"):
        target = tree / f"{name}.bpf.o"
        shutil.copy(compile_bpf(PROGS / f"{name}.bpf.c"), target)
        out.append(target)
    return out


@needs_clang
def test_second_run_reads_the_cache(objects: list[Path], tmp_path: Path,
                                    counter: _Counter) -> None:
    cache = ResultCache(tmp_path / "cache")
    paths = [str(p) for p in objects]
    first = api.analyze_paths(paths, None, cache=cache)
    analysed = counter.calls
    assert analysed == len(first.programs) > 0
    counter.refuse = True
    second = api.analyze_paths(paths, None, cache=cache)
    assert second == first and counter.calls == analysed
    entries = list((tmp_path / "cache").rglob("*.json"))
    assert len(entries) == len(objects)


@needs_clang
def test_a_moved_object_hits_and_keeps_its_new_path(objects: list[Path], tmp_path: Path,
                                                    counter: _Counter) -> None:
    cache = ResultCache(tmp_path / "cache")
    first = api.analyze_paths([str(objects[0])], None, cache=cache)
    moved = tmp_path / "elsewhere.o"
    shutil.copy(objects[0], moved)
    counter.refuse = True
    second = api.analyze_paths([str(moved)], None, cache=cache)
    assert {r.object for r in second.programs} == {str(moved)}
    assert [dataclasses.replace(r, object="") for r in second.programs] == \
        [dataclasses.replace(r, object="") for r in first.programs]


@needs_clang
@pytest.mark.parametrize("cached", [False, True])
def test_copies_of_an_object_are_analysed_once(objects: list[Path], tmp_path: Path,
                                               counter: _Counter, cached: bool) -> None:
    copy = tmp_path / "copy.o"
    shutil.copy(objects[1], copy)
    cache = ResultCache(tmp_path / "cache") if cached else None
    both = api.analyze_paths([str(objects[1]), str(copy), str(objects[0])], None,
                             cache=cache)
    alone = api.analyze_paths([str(objects[1])], None)
    per_object = len(alone.programs)
    # the copy's programs come from the first one's analysis, under the copy's path
    assert counter.calls == 2 * per_object + len(
        [r for r in both.programs if r.object == str(objects[0])])
    assert [r.object for r in both.programs][:2 * per_object] == \
        [str(objects[1])] * per_object + [str(copy)] * per_object
    mine = [dataclasses.replace(r, object="") for r in both.programs
            if r.object == str(copy)]
    assert mine == [dataclasses.replace(r, object="") for r in alone.programs]


@needs_clang
def test_the_key_covers_table_and_options(objects: list[Path], tmp_path: Path,
                                          counter: _Counter) -> None:
    cache = ResultCache(tmp_path / "cache")
    path = [str(objects[1])]
    api.analyze_paths(path, None, cache=cache)
    runs = [counter.calls]
    api.analyze_paths(path, load_cost_table(None), cache=cache)
    runs.append(counter.calls)
    api.analyze_paths(path, None, AnalysisOptions(max_steps=1234), cache=cache)
    runs.append(counter.calls)
    api.analyze_paths(path, None, AnalysisOptions(tail_call_targets={"m": ("p",)}), cache=cache)
    runs.append(counter.calls)
    assert runs[0] > 0 and runs == sorted(set(runs))  # every change analysed again
    api.analyze_paths(path, load_cost_table(None), cache=cache)
    assert counter.calls == runs[-1]


@needs_clang
@pytest.mark.parametrize("garbage", [b"", b"{not json", b'{"format": 1}', b"[]",
                                     b'{"format": 1, "key": "x", "programs": 3}'])
def test_corrupt_entries_are_ignored_and_rewritten(objects: list[Path], tmp_path: Path,
                                                   garbage: bytes) -> None:
    cache = ResultCache(tmp_path / "cache")
    paths = [str(objects[0])]
    good = api.analyze_paths(paths, None, cache=cache)
    [entry] = (tmp_path / "cache").rglob("*.json")
    entry.write_bytes(garbage)
    assert api.analyze_paths(paths, None, cache=cache) == good
    assert json.loads(entry.read_bytes())["programs"]  # written again, whole


@needs_clang
def test_same_key_but_wrong_entry_is_not_trusted(objects: list[Path], tmp_path: Path) -> None:
    """A valid entry copied under another key (a confused sync, a hand edit) is ignored."""
    cache = ResultCache(tmp_path / "cache")
    api.analyze_paths([str(objects[0])], None, cache=cache)
    api.analyze_paths([str(objects[2])], None, cache=cache)
    first, second = sorted((tmp_path / "cache").rglob("*.json"))
    shutil.copy(first, second)
    report = api.analyze_paths([str(objects[0]), str(objects[2])], None, cache=cache)
    assert report == api.analyze_paths([str(objects[0]), str(objects[2])], None)


@needs_clang
def test_unwritable_cache_is_a_note_not_a_failure(objects: list[Path], tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be")
    report = api.analyze_paths([str(objects[0])], None, cache=ResultCache(blocker))
    assert report.programs and not report.errors
    assert any("cannot write the result cache" in note for note in report.notes)


@needs_clang
def test_concurrent_runs_share_one_cache(objects: list[Path], tmp_path: Path) -> None:
    paths = [str(p) for p in objects]
    expected = api.analyze_paths(paths, None)
    reports = []

    def run() -> None:
        reports.append(api.analyze_paths(paths, None, cache=ResultCache(tmp_path / "c")))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert reports == [expected] * 4
    files = [p for p in (tmp_path / "c").rglob("*") if p.is_file()]
    assert len(files) == len(objects)  # no temporary files left behind
    assert all(not p.name.startswith(".") for p in files)


@needs_clang
def test_parallel_workers_fill_the_cache(objects: list[Path], tmp_path: Path,
                                         counter: _Counter) -> None:
    cache = ResultCache(tmp_path / "cache")
    paths = [str(p) for p in objects]
    parallel = api.analyze_paths(paths, None, jobs=2, cache=cache)
    assert parallel == api.analyze_paths(paths, None)
    counter.calls = 0
    counter.refuse = True
    assert api.analyze_paths(paths, None, jobs=2, cache=cache) == parallel


# ---------------------------------------------------------------- the commands

def _project(tmp_path: Path, objects: list[Path]) -> Path:
    project = tmp_path / "proj"
    (project / "build").mkdir(parents=True)
    for obj in objects:
        shutil.copy(obj, project / "build" / obj.name)
    (project / "bpfbudget.toml").write_text(
        '[analyze]\nobjects = ["build/*.o"]\n\n[[budget]]\nmax_insns = 1000000\n')
    return project


@needs_clang
def test_second_check_does_no_analysis(objects: list[Path], tmp_path: Path, counter: _Counter,
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(tmp_path, objects)
    monkeypatch.chdir(project)
    argv = ["check", "-j", "1", "--cache-dir", str(tmp_path / "cache"), "--format", "json"]
    assert main(argv) == 0
    cold = capsys.readouterr().out
    assert counter.calls > 0
    counter.refuse = True
    assert main(argv) == 0
    assert capsys.readouterr().out == cold
    assert main(["baseline", "-j", "1", "--cache-dir", str(tmp_path / "cache"),
                 "--output", str(tmp_path / "base.json")]) == 0


@needs_clang
def test_no_cache_analyses_and_writes_nothing(objects: list[Path], tmp_path: Path,
                                              counter: _Counter,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    path = str(objects[0])
    assert main(["analyze", "-j", "1", path]) == 0
    assert list((tmp_path / "xdg" / "bpflint").rglob("*.json"))  # the default place
    calls = counter.calls
    assert main(["analyze", "-j", "1", "--no-cache", path]) == 0
    assert counter.calls == 2 * calls
    shutil.rmtree(tmp_path / "xdg")
    assert main(["analyze", "-j", "1", "--no-cache", path]) == 0
    assert not (tmp_path / "xdg").exists()
    capsys.readouterr()

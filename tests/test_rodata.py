"""Loader-set variables (const volatile globals): any value of their type unless pinned.

The reference interpreter runs the programs with the knobs set as a loader would set
them (World.rodata); the kernel loads them with the pinned bytes written into the
frozen .rodata map.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import pytest
from bpfc import PROGS, compile_bpf, needs_clang
from cases import NO_PKT, rodata_values, xdp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpflint.cli import main
from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.errors import BpfLintError
from bpflint.interp.refinterp import World, run, run_full
from bpflint.obj.loader_vars import RodataPin, apply_pins, parse_value
from bpflint.obj.model import BpfObject
from bpflint.obj.reader import load_object
from bpflint.results import ProgramResult

pytestmark = needs_clang

KNOBS = PROGS / "rodata_knobs.bpf.c"
# not in the corpus of cases.py: a loop the interpreter could run for 2^32 rounds
OPEN = PROGS / "rodata" / "open_loop.bpf.c"


@functools.cache
def knobs_path() -> Path:
    return compile_bpf(KNOBS)


@functools.cache
def open_path() -> Path:
    return compile_bpf(OPEN)


def analysed(obj: BpfObject, name: str) -> ProgramResult:
    program = next(p for p in obj.programs if p.name == name)
    return analyze_program(obj, program, None, AnalysisOptions())


def executed(obj: BpfObject, name: str, queue: int = 1, **knobs: int) -> int:
    return run(obj, name, xdp(NO_PKT, rx_queue=queue, world=World(rodata=tuple(knobs.items()))))


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- what the reader finds ----------------------------------------------------------
def test_volatile_variables_are_loader_set_and_plain_const_is_not() -> None:
    obj = load_object(knobs_path())
    found = {v.name: v for v in obj.maps[".rodata"].loader_vars}
    assert set(found) == {"nloops", "filter_on", "targ_queue", "run_mode"}  # not plain_rounds
    assert (found["nloops"].type_name, found["nloops"].lo, found["nloops"].hi,
            found["nloops"].default) == ("u32", 0, 2**32 - 1, 4)
    assert (found["filter_on"].type_name, found["filter_on"].lo, found["filter_on"].hi) == (
        "bool", 0, 1)
    assert (found["targ_queue"].type_name, found["targ_queue"].lo, found["targ_queue"].default
            ) == ("s32", -2**31, -1)
    assert found["run_mode"].type_name == "enum run_mode"
    # offsets come from the symbol table (the DATASEC's are still 0 in a .o)
    data = obj.maps[".rodata"].data
    assert int.from_bytes(data[found["nloops"].offset:][:4], "little") == 4
    assert int.from_bytes(data[found["run_mode"].offset:][:4], "little") == 1


def test_arrays_of_volatile_elements_and_structs() -> None:
    obj = load_object(compile_bpf(PROGS / "reader" / "features.bpf.c"))
    table = next(v for v in obj.maps[".rodata"].loader_vars if v.name == "table")
    assert (table.type_name, table.size, table.elem_size) == ("u64[4]", 32, 8)
    usdt = load_object(compile_bpf(PROGS / "usdt_probe.bpf.c"))
    (specs,) = usdt.maps[".rodata"].loader_vars
    assert specs.type_name == "struct usdt_arg_spec[2]" and specs.elem_size == 0


def test_a_knob_no_symbol_places_makes_its_whole_section_unknown() -> None:
    """DATASEC offsets are 0 in a .o: without its symbol a knob could be anywhere."""
    from bpflint.obj.btf import parse_btf
    from bpflint.obj.elf import read_elf
    from bpflint.obj.loader_vars import find_loader_vars

    raw = knobs_path().read_bytes()
    image = read_elf(str(knobs_path()), raw)
    btf_section, rodata = (image.section_named(n) for n in (".BTF", ".rodata"))
    assert btf_section is not None and rodata is not None
    found = find_loader_vars(parse_btf(btf_section.data), ".rodata", rodata.data, {})
    assert {v.name for v in found} == {"nloops", "filter_on", "targ_queue", "run_mode"}
    assert all((v.offset, v.size, v.elem_size) == (0, len(rodata.data), 0) for v in found)


def test_without_btf_rodata_stays_constant() -> None:
    """No BTF, no way to tell a knob from a constant: today's reading (documented)."""
    obj = load_object(compile_bpf(KNOBS, ("-g0",)))
    assert not obj.has_btf and not obj.maps[".rodata"].loader_vars
    result = analysed(obj, "knob_loop")
    assert result.insns_max == executed(obj, "knob_loop") and not result.loader_set


# -- bounds ---------------------------------------------------------------------
def test_a_knob_bounded_loop_is_bounded_by_its_cap_not_the_default() -> None:
    """Issue 16's example: 4 rounds by default, but a loader may set 64 or more."""
    obj = load_object(knobs_path())
    result = analysed(obj, "knob_loop")
    assert result.insns_max == executed(obj, "knob_loop", nloops=64) \
        == executed(obj, "knob_loop", nloops=4000)
    assert result.insns_max > 10 * executed(obj, "knob_loop", nloops=4)
    assert result.insns_min == executed(obj, "knob_loop", nloops=0)


def test_knob_branches_take_both_sides() -> None:
    obj = load_object(knobs_path())
    result = analysed(obj, "knob_filter")
    full = executed(obj, "knob_filter", filter_on=1, targ_queue=1, run_mode=2)
    filtered = executed(obj, "knob_filter", filter_on=1, targ_queue=0)
    assert (result.insns_min, result.insns_max) == (filtered, full)
    # the object's own configuration (filter off, fast mode) is strictly inside
    default = executed(obj, "knob_filter")
    assert filtered < default < full


def test_plain_const_data_stays_constant() -> None:
    obj = load_object(knobs_path())
    result = analysed(obj, "plain_const")
    assert result.insns_min == result.insns_max == executed(obj, "plain_const")
    assert result.loader_set == ()


def test_results_list_the_variables_each_program_reads() -> None:
    obj = load_object(knobs_path())
    names = {p.name: [s.name for s in analysed(obj, p.name).loader_set] for p in obj.programs}
    assert names == {"knob_loop": ["nloops"],
                     "knob_filter": ["filter_on", "run_mode", "targ_queue"],
                     "plain_const": [], "knob_section": ["cfg_rounds"]}


def test_knobs_in_rodata_subsections() -> None:
    """Cilium's CONFIG() knobs live in .rodata.config, a section of their own."""
    obj = load_object(knobs_path())
    (var,) = obj.maps[".rodata.config"].loader_vars
    assert (var.name, var.type_name, var.default) == ("cfg_rounds", "u16", 3)
    result = analysed(obj, "knob_section")
    assert result.insns_max == executed(obj, "knob_section", cfg_rounds=16) \
        > executed(obj, "knob_section", cfg_rounds=3)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_setting_a_loader_may_make_runs_inside_the_range(data: st.DataObject) -> None:
    obj = load_object(knobs_path())
    knobs = data.draw(rodata_values(obj))
    queue = data.draw(st.one_of(st.integers(0, 3), st.integers(0, 2**32 - 1)))
    for program in obj.programs:
        result = analysed(obj, program.name)
        count = run(obj, program.name, xdp(NO_PKT, queue, World(rodata=knobs)))
        assert result.insns_min is not None and result.insns_max is not None
        assert result.insns_min <= count <= result.insns_max, (program.name, knobs, queue)


# -- pins -----------------------------------------------------------------------
def pinned(obj: BpfObject, **pins: tuple[int, int]) -> BpfObject:
    return apply_pins(obj, [RodataPin(name, lo, hi, "test") for name, (lo, hi) in pins.items()])


@pytest.mark.parametrize("value", [0, 1, 4, 63, 64, 1000])
def test_a_pinned_value_is_exact(value: int) -> None:
    obj = pinned(load_object(knobs_path()), nloops=(value, value))
    result = analysed(obj, "knob_loop")
    assert result.insns_min == result.insns_max == executed(obj, "knob_loop", nloops=value)
    (setting,) = result.loader_set
    assert (setting.value, setting.pinned, setting.default) == (value, True, 4)


@settings(max_examples=30, deadline=None, database=None)
@given(st.integers(0, 80), st.integers(0, 80))
def test_a_pinned_range_bounds_every_value_in_it(a: int, b: int) -> None:
    lo, hi = min(a, b), max(a, b)
    obj = pinned(load_object(knobs_path()), nloops=(lo, hi))
    result = analysed(obj, "knob_loop")
    assert result.insns_max == executed(obj, "knob_loop", nloops=min(hi, 64))
    assert result.insns_min == executed(obj, "knob_loop", nloops=lo)
    for value in {lo, hi, (lo + hi) // 2}:
        count = executed(obj, "knob_loop", nloops=value)
        assert result.insns_min <= count <= result.insns_max


def test_negative_ranges_of_signed_knobs() -> None:
    obj = pinned(load_object(knobs_path()), targ_queue=(-5, -1), filter_on=(1, 1))
    result = analysed(obj, "knob_filter")
    assert result.insns_min is not None and result.insns_max is not None
    for queue in (0, 2**32 - 3, 2**32 - 1):
        for value in (-5, -3, -1):
            count = executed(obj, "knob_filter", queue=queue, filter_on=1, targ_queue=value)
            assert result.insns_min <= count <= result.insns_max


def test_a_pin_outside_the_type_is_an_error() -> None:
    obj = load_object(knobs_path())
    with pytest.raises(BpfLintError, match="outside the range of filter_on's type bool"):
        pinned(obj, filter_on=(2, 2))
    with pytest.raises(BpfLintError, match=r"-1 is outside .* u32 \(0\.\.4294967295\)"):
        pinned(obj, nloops=(-1, 3))


def test_value_syntax() -> None:
    assert parse_value("4") == (4, 4)
    assert parse_value("0x10..0x20") == (16, 32)
    assert parse_value("-5..-1") == (-5, -1)
    for bad in ("", "x", "1..", "5..1"):
        with pytest.raises(ValueError):
            parse_value(bad)


# -- unbounded because of a knob ---------------------------------------------------
def test_a_loop_open_but_for_a_knob_names_it_and_its_line() -> None:
    obj = load_object(open_path())
    result = analysed(obj, "open_loop")
    assert not result.bounded and result.insns_max is None
    (diag,) = [d for d in result.diagnostics if d.name == "unbounded-loop"]
    assert "nwords" in diag.message and "--set nwords=" in diag.message
    assert diag.loc is not None and diag.loc.file.endswith("open_loop.bpf.c")
    loop_line = next(n for n, text in enumerate(OPEN.read_text().splitlines(), start=1)
                     if "i < nwords" in text)
    assert diag.loc.line == loop_line
    fixed = pinned(obj, nwords=(0, 100))
    bounded = analysed(fixed, "open_loop")
    assert bounded.bounded and bounded.insns_max == run(
        fixed, "open_loop", xdp(NO_PKT, 1, World(rodata=(("nwords", 100),))))


# -- command line -------------------------------------------------------------------
def test_set_on_analyze(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(knobs_path())
    code, out, err = cli(capsys, "analyze", "--no-cache", "--format", "json", path)
    assert code == 0, err
    loop = next(p for p in json.loads(out)["programs"] if p["name"] == "knob_loop")
    assert loop["loader_set"] == [{"name": "nloops", "type": "u32", "value": None,
                                   "range": [0, 2**32 - 1], "default": 4, "pinned": False}]
    code, out, err = cli(capsys, "analyze", "--no-cache", "--format", "json", path,
                         "--set", "nloops=4", "--set", "targ_queue=-3..3")
    assert code == 0, err
    doc = {p["name"]: p for p in json.loads(out)["programs"]}
    obj = load_object(knobs_path())
    assert doc["knob_loop"]["insns"]["max"] == executed(obj, "knob_loop", nloops=4)
    assert doc["knob_loop"]["loader_set"][0]["value"] == 4
    (queue,) = [s for s in doc["knob_filter"]["loader_set"] if s["name"] == "targ_queue"]
    assert (queue["value"], queue["range"], queue["pinned"]) == (None, [-3, 3], True)


def test_set_mistakes(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(knobs_path())
    code, _, err = cli(capsys, "analyze", "--no-cache", path, "--set", "nloop=4")
    assert code == 0
    assert "bpflint: warning: --set nloop: no loader-set variable named 'nloop'" in err
    assert "did you mean 'nloops'?" in err
    code, _, err = cli(capsys, "analyze", "--no-cache", path, "--set", "filter_on=7")
    assert code == 2
    assert "7 is outside the range of filter_on's type bool (0..1)" in err
    assert "Traceback" not in err and "warning" not in err
    for bad in ("nloops", "nloops=four", "=3", "nloops=9..2"):
        code, _, err = cli(capsys, "analyze", "--no-cache", path, "--set", bad)
        assert code == 2 and err.count("\n") == 1 and err.startswith("bpflint: error: --set")


def test_explain_says_what_it_assumed(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(knobs_path())
    obj = load_object(knobs_path())
    code, out, _ = cli(capsys, "explain", path, "--program", "knob_loop")
    assert code == 0
    worst, at_four = (executed(obj, "knob_loop", nloops=n) for n in (64, 4))
    assert ("worst case assumes nloops may be any u32 (0..4294967295), the object's default "
            f"is 4 (at that value the worst case is {at_four} insns, not {worst}); pin with "
            "--set nloops=N or [rodata]") in out
    # which knobs the worst case depends on: each alone at the object's value
    code, out, _ = cli(capsys, "explain", path, "--program", "knob_filter")
    assert code == 0
    unfiltered = executed(obj, "knob_filter", filter_on=0, run_mode=2)
    full = executed(obj, "knob_filter", filter_on=1, targ_queue=1, run_mode=2)
    assert f"filter_on may be any bool (0..1), the object's default is 0 (at that value the " \
           f"worst case is {unfiltered} insns, not {full})" in out
    assert "targ_queue may be any s32 (-2147483648..2147483647), the object's default is -1 " \
           "(the worst case is the same at that value)" in out
    code, out, _ = cli(capsys, "explain", path, "--program", "knob_loop", "--set", "nloops=9")
    assert code == 0 and "assumes nloops = 9 (pinned" in out


def write_config(tmp_path: Path, body: str) -> Path:
    obj = tmp_path / "build" / "rodata_knobs.bpf.o"
    obj.parent.mkdir()
    obj.write_bytes(knobs_path().read_bytes())
    config = tmp_path / "bpfbudget.toml"
    config.write_text('[analyze]\nobjects = ["build/*.o"]\n\n[[budget]]\nmax_insns = 100000\n\n'
                      + body)
    return config


def test_rodata_in_the_budget_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, "[rodata]\nfilter_on = true\n\n"
                          '[rodata."build/*.bpf.o"]\nnloops = 4\ntarg_queue = [0, 7]\n'
                          '\n[rodata."other.o"]\nnloops = 60\n')
    code, out, err = cli(capsys, "check", "--config", str(config), "--no-cache",
                         "--format", "json")
    assert code == 0, err
    doc = {p["name"]: p for p in json.loads(out)["programs"]}
    obj = load_object(knobs_path())
    assert doc["knob_loop"]["insns"]["max"] == executed(obj, "knob_loop", nloops=4)
    settings_ = {s["name"]: s for s in doc["knob_filter"]["loader_set"]}
    assert settings_["filter_on"]["value"] == 1
    assert settings_["targ_queue"]["range"] == [0, 7]
    assert not settings_["run_mode"]["pinned"]
    # --set wins over the file
    code, out, err = cli(capsys, "check", "--config", str(config), "--no-cache",
                         "--format", "json", "--set", "nloops=10")
    assert code == 0, err
    doc = {p["name"]: p for p in json.loads(out)["programs"]}
    assert doc["knob_loop"]["insns"]["max"] == executed(obj, "knob_loop", nloops=10)


@pytest.mark.parametrize(("body", "message"), [
    ("[rodata]\nnloops = 1.5\n",
     ":8: key 'rodata.nloops': expected an integer, true/false, [LO, HI] or \"LO..HI\""),
    ("[rodata]\nnloops = [1, 2, 3]\n", ":8: key 'rodata.nloops': expected"),
    ('[rodata."build/*.o"]\nnloops = "9..1"\n', ":8: key 'rodata.build/*.o.nloops': range"),
    ("[rodata]\nnloops = [9, 1]\n", ":8: key 'rodata.nloops': range [9, 1] is empty"),
    ("[rodata]\nfilter_on = 3\n",
     ":8: key 'rodata.filter_on': 3 is outside the range of filter_on's type bool"),
])
def test_rodata_mistakes_name_file_line_and_key(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                body: str, message: str) -> None:
    config = write_config(tmp_path, body)
    code, out, err = cli(capsys, "check", "--config", str(config), "--no-cache")
    assert code == 2
    # mistakes in the file's syntax stop the run (stderr); a value its variable's type
    # cannot hold is found when the object is read, and reported with the objects
    assert f"{config}{message}" in out + err, out + err
    assert "Traceback" not in out + err


def test_rodata_unknown_name_is_a_warning_with_a_suggestion(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, "[rodata]\nnloop = 4\n")
    code, _, err = cli(capsys, "check", "--config", str(config), "--no-cache")
    assert code == 0
    assert (f"bpflint: warning: {config}:8: key 'rodata.nloop': no loader-set variable named "
            "'nloop' in the analysed objects, the pin is ignored; did you mean 'nloops'?") in err


def test_the_cache_keeps_pins_apart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(knobs_path())
    cache = str(tmp_path / "cache")
    maxes = []
    for argv in ((), ("--set", "nloops=2"), (), ("--set", "nloops=2")):
        code, out, err = cli(capsys, "analyze", "--cache-dir", cache, "--format", "json",
                             path, *argv)
        assert code == 0, err
        maxes.append(next(p for p in json.loads(out)["programs"]
                          if p["name"] == "knob_loop")["insns"]["max"])
        # the unknown-name check works from cached entries too
        assert "warning" not in err
    assert maxes[0] == maxes[2] > maxes[1] == maxes[3]


# -- the kernel, with the pinned bytes loaded --------------------------------------
@pytest.mark.kernel
def test_the_kernel_runs_the_pinned_configuration() -> None:
    from bpflint.kernel import syscall as sc
    from bpflint.kernel.loader import load_program

    usable, reason = sc.bpf_usable()
    if not usable:
        pytest.skip(f"bpf() is not usable here: {reason}")
    base = load_object(knobs_path())
    program = next(p for p in base.programs if p.name == "knob_loop")
    for value in (0, 3, 4, 63, 64, 1000):
        obj = pinned(base, nloops=(value, value))
        count, r0 = run_full(obj, "knob_loop", xdp(bytes(64), rx_queue=0))
        result = analysed(obj, "knob_loop")
        assert result.insns_max == count
        with load_program(obj, program) as loaded:
            got = sc.prog_test_run(loaded.fd, data=bytes(64))
        assert got.retval == r0, f"nloops={value}: kernel {got.retval}, interpreter {r0}"


def test_pins_reach_the_interpreter_like_world_rodata() -> None:
    base = load_object(knobs_path())
    obj = pinned(base, nloops=(7, 7))
    assert run(obj, "knob_loop", xdp(NO_PKT)) == run(
        base, "knob_loop", xdp(NO_PKT, world=World(rodata=(("nloops", 7),))))
    assert dataclasses.replace(obj.maps[".rodata"]).data != base.maps[".rodata"].data


@pytest.mark.kernel
def test_the_verifier_judges_a_knob_bounded_loop_by_the_value_loaded() -> None:
    """The kernel reads frozen read-only data as constants (the loader creates .rodata
    as libbpf does): the same object loads with one value and not with another, so
    only a pinned knob can make bpflint's verdict match."""
    from bpflint.kernel import syscall as sc
    from bpflint.kernel.loader import load_program

    usable, reason = sc.bpf_usable()
    if not usable:
        pytest.skip(f"bpf() is not usable here: {reason}")
    base = load_object(open_path())
    (program,) = base.programs
    assert not analysed(base, "open_loop").bounded
    small = pinned(base, nwords=(8, 8))
    with load_program(small, program) as loaded:
        got = sc.prog_test_run(loaded.fd, data=bytes(64))
    count, r0 = run_full(small, "open_loop", xdp(bytes(64)))
    assert got.retval == r0 and analysed(small, "open_loop").insns_max == count
    # E2BIG: past the verifier's million instructions (no log: writing it is slow)
    with pytest.raises(BpfLintError, match="Argument list too long"):
        with load_program(pinned(base, nwords=(2**32 - 1, 2**32 - 1)), program, log_level=0):
            pass


def test_kconfig_externs_are_loader_set_and_pinnable(capsys: pytest.CaptureFixture[str]) -> None:
    """libbpf fills __kconfig externs in from the running kernel: any value of their
    type unless pinned, listed like the const volatile knobs."""
    path = compile_bpf(PROGS / "rodata" / "kconfig.bpf.c")
    obj = load_object(path)
    kconfig = {v.name: v for v in obj.maps[".kconfig"].loader_vars}
    assert (kconfig["LINUX_KERNEL_VERSION"].type_name, kconfig["CONFIG_BPF_JIT_ALWAYS_ON"].hi
            ) == ("u32", 1)
    result = analysed(obj, "kconfig_gate")
    assert [s.name for s in result.loader_set] == ["CONFIG_BPF_JIT_ALWAYS_ON",
                                                   "LINUX_KERNEL_VERSION"]

    def count(version: int, jit: int) -> int:
        return run(obj, "kconfig_gate", xdp(NO_PKT, world=World(rodata=(
            ("LINUX_KERNEL_VERSION", version), ("CONFIG_BPF_JIT_ALWAYS_ON", jit)))))

    new, old = (6 << 16) + (1 << 8), (5 << 16) + (15 << 8)
    assert (result.insns_min, result.insns_max) == (count(old, 0), count(new, 1))
    code, out, err = cli(capsys, "analyze", "--no-cache", "--format", "json", str(path),
                         "--set", f"LINUX_KERNEL_VERSION={old}")
    assert code == 0, err
    (prog,) = json.loads(out)["programs"]
    assert prog["insns"] == {"min": count(old, 0), "max": count(old, 1)}


# -- a pointer knob (klockstat's targ_lock): any address, or NULL -------------------
POINTER = PROGS / "rodata" / "pointer_knob.bpf.c"


def _lock_run(obj: BpfObject, targ_lock: int, lock: int) -> int:
    return executed(obj, "pointer_knob", queue=lock, targ_lock=targ_lock)


def test_a_pointer_knob_is_any_address_not_null() -> None:
    """It was listed with range [0, 0] and could not be pinned."""
    obj = load_object(compile_bpf(POINTER))
    (var,) = obj.maps[".rodata"].loader_vars
    assert (var.type_name, var.lo, var.hi, var.default) == ("pointer", 0, 2**64 - 1, 0)
    result = analysed(obj, "pointer_knob")
    (setting,) = result.loader_set
    assert (setting.lo, setting.hi, setting.pinned) == (0, 2**64 - 1, False)
    # neither side of `targ_lock && targ_lock != lock` is assumed: the early return
    # (another lock asked for) is the best case, the matching lock the worst
    assert result.insns_min == _lock_run(obj, targ_lock=5, lock=6)
    assert result.insns_max == _lock_run(obj, targ_lock=5, lock=5)
    assert result.insns_min < _lock_run(obj, targ_lock=0, lock=6) <= result.insns_max


def test_a_pointer_knob_pinned_to_null(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(compile_bpf(POINTER))
    code, out, err = cli(capsys, "analyze", "--no-cache", "--format", "json", path,
                         "--set", "targ_lock=0")
    assert code == 0, err
    (prog,) = json.loads(out)["programs"]
    null = _lock_run(load_object(compile_bpf(POINTER)), targ_lock=0, lock=6)
    assert prog["insns"] == {"min": null, "max": null}
    assert prog["loader_set"] == [{"name": "targ_lock", "type": "pointer", "value": 0,
                                   "range": [0, 0], "default": 0, "pinned": True}]

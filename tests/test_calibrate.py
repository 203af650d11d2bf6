"""Calibration: a complete, sane table on the live kernel, and a run that survives a
kernel refusing some benchmarks (injected without a kernel, and for real)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bpflint.cli import main
from bpflint.cost.model import INSN_KEYS, OPTIONAL_INSN_KEYS
from bpflint.cost.table_file import load_cost_table, parse_cost_table
from bpflint.errors import BpfLintError
from bpflint.kernel import bytecode as bc
from bpflint.kernel import syscall as sc
from bpflint.kernel.calibrate import benches as cal_benches
from bpflint.kernel.calibrate import run as cal_run
from bpflint.kernel.calibrate import table as cal_table
from bpflint.kernel.calibrate import timing as cal_timing
from bpflint.kernel.syscall import bpf_usable

USABLE, REASON = bpf_usable()
BASE = load_cost_table(None)
SHIPPED = Path(cal_benches.__file__).parents[2] / "data" / "costs.toml"
ADJUST_META_REFUSAL = "program of this type cannot use helper bpf_xdp_adjust_meta#54"


# -- a fake kernel: every benchmark "runs" except the ones told to refuse ---------------

class _Fds(dict[str, int]):
    """Every map exists (fd 3) except the ones named missing."""

    def __init__(self, missing: set[str]) -> None:
        super().__init__()
        self.missing = missing

    def __contains__(self, name: object) -> bool:
        return name not in self.missing

    def __missing__(self, name: str) -> int:
        return 3


def fake_kernel(monkeypatch: pytest.MonkeyPatch, refuse: dict[str, cal_benches.Refused],
                missing_maps: dict[str, str]) -> list[str]:
    """Replace bpf() with a fake; returns the list of benchmark variants "run"."""
    ran: list[str] = []

    @contextmanager
    def environment(ringbuf_bytes: int, cold_maps: bool = True) -> Iterator[cal_benches.Env]:
        yield cal_benches.Env(_Fds(set(missing_maps)), ringbuf_bytes, dict(missing_maps))

    @contextmanager
    def buffers_reset(env: cal_benches.Env) -> Iterator[Callable[[], None]]:
        yield lambda: None

    def measure(env: cal_benches.Env, bench: cal_benches.Bench, opts: cal_timing.Options,
                reset: Callable[[], None] = lambda: None) -> cal_timing.Measured:
        for part in (bench.pre, bench.body, bench.extra):
            if part is not None:
                part(env)  # a missing map refuses here, as in the real measure()
        if bench.key in refuse:
            raise refuse[bench.key]
        ran.append(bench.variant)
        # instructions well under a nanosecond, helpers ~10 ns growing with size
        t = 0.05 if bench.key.startswith("insn.") else 10.0 + 0.01 * (bench.size or 0)
        return cal_timing.Measured(t, 1.1 * t, 2.0)

    monkeypatch.setattr(sc, "bpf_usable", lambda: (True, "fake"))
    monkeypatch.setattr(cal_timing, "environment", environment)
    monkeypatch.setattr(cal_timing, "buffers_reset", buffers_reset)
    monkeypatch.setattr(cal_timing, "measure", measure)
    return ran


def test_a_refused_benchmark_is_priced_from_the_base_table_and_stated(
        monkeypatch: pytest.MonkeyPatch) -> None:
    refuse = {
        "helper.xdp_adjust_meta": cal_benches.Refused("load", ADJUST_META_REFUSAL),
        # alu_mov is subtracted as set-up from helper figures; load_stack feeds the
        # derived 'other' loads and stores
        "insn.alu_mov": cal_benches.Refused("run", "not supported (ENOTSUPP)"),
        "insn.load_stack": cal_benches.Refused("load", "unknown opcode 79"),
    }
    ran = fake_kernel(monkeypatch, refuse, {"lpm_trie": "Invalid argument"})
    progress: list[str] = []
    result = cal_run.calibrate(replace(cal_timing.QUICK, progress=progress.append))
    table = parse_cost_table(result.text, "partial.toml")

    why = dict(table.provenance.not_measured)
    assert set(why) == {*refuse, "helper.map_lookup_elem.map.lpm_trie"}
    assert ADJUST_META_REFUSAL in why["helper.xdp_adjust_meta"]
    assert why["helper.xdp_adjust_meta"].startswith("xdp_adjust_meta_pair: load refused")
    assert "map lpm_trie: Invalid argument" in why["helper.map_lookup_elem.map.lpm_trie"]
    assert all(f"priced from {BASE.path}" in w for w in why.values())
    # refused entries carry the base table's figures, exactly
    assert table.helpers["xdp_adjust_meta"] == BASE.helpers["xdp_adjust_meta"]
    assert table.insns["alu_mov"] == BASE.insns["alu_mov"]
    assert table.insns["load_stack"] == BASE.insns["load_stack"]
    lookup, base_lookup = table.helpers["map_lookup_elem"], BASE.helpers["map_lookup_elem"]
    assert lookup.variant("lpm_trie") == base_lookup.variant("lpm_trie")
    hashed = lookup.variant("hash")
    assert hashed is not None and hashed.median_ns is not None
    assert hashed != base_lookup.variant("hash") and 10.5 < hashed.median_ns < 11.0
    # the helper's envelope covers the variant priced from the base table
    lpm = base_lookup.variant("lpm_trie")
    assert lpm is not None and lookup.base.max_ns >= lpm.max_ns
    # the rest was measured: the fake's ~10 ns, not the base table's figures
    assert table.helpers["xdp_adjust_head"] != BASE.helpers["xdp_adjust_head"]
    assert "xdp_adjust_head_pair" in ran and "xdp_adjust_meta_pair" not in ran
    # set-up subtraction of a refused class uses the base table's figure: the
    # xdp_get_buff_len body holds one alu_mov
    mov = BASE.insns["alu_mov"]
    got = table.helpers["xdp_get_buff_len"].base
    assert got.min_ns == pytest.approx(max(0.0, 10.0 / cal_table.MAX_MARGIN - mov.max_ns), abs=1e-3)
    assert got.max_ns == pytest.approx(cal_table.MAX_MARGIN * 10.0 - mov.min_ns, abs=1e-3)
    # 'other' memory spans the kinds, the base table's load_stack included
    assert table.insns["load_other"].max_ns == pytest.approx(BASE.insns["load_stack"].max_ns,
                                                             abs=1e-3)
    # one summary line names every refused entry with its reason
    summary = result.summary()
    assert "\n" not in summary and BASE.path in summary
    for key in why:
        assert key in summary
    assert ADJUST_META_REFUSAL in summary
    # each benchmark is announced before it runs, and completed after
    starts = [m for m in progress if re.fullmatch(r"\[\d+/\d+\] \S+ \([^)]*\)", m)]
    assert len(starts) == len(ran) + len(refuse) + 1
    for start in starts:
        assert progress[progress.index(start) + 1].startswith(start + ": ")


def test_every_variant_after_a_refusal_is_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse = {"helper.map_lookup_elem.map.hash": cal_benches.Refused("load", "no")}
    ran = fake_kernel(monkeypatch, refuse, {})
    progress: list[str] = []
    cal_run.calibrate(replace(cal_timing.QUICK, progress=progress.append))
    assert not any(v.startswith("lookup_hash") for v in ran)
    variants = [b for b in cal_benches.helper_benches()
                if b.key == "helper.map_lookup_elem.map.hash"]
    assert len(variants) >= 4  # hot and cold, hits and misses, 4- and 64-byte keys
    # the first is refused, every later one is not run
    assert sum("not run, the entry was refused" in m for m in progress) == len(variants) - 1


def test_only_and_skip_price_the_rest_from_the_base_table(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_kernel(monkeypatch, {}, {})
    result = cal_run.calibrate(cal_timing.QUICK, only=("helper.xdp_*", "alu_mov"),
                           skip=("xdp_adjust_meta",))
    table = parse_cost_table(result.text, "only.toml")
    why = dict(table.provenance.not_measured)
    assert "helper.xdp_adjust_meta" in why and "insn.alu_mov" not in why
    assert "helper.xdp_adjust_head" not in why and "insn.alu_div" in why
    assert all(w.startswith(cal_run.SKIPPED) for w in why.values())
    assert table.insns["alu_div"] == BASE.insns["alu_div"]
    assert table.helpers["loop"] == BASE.helpers["loop"]  # a sized helper, copied whole
    assert table.helpers["xdp_adjust_meta"] == BASE.helpers["xdp_adjust_meta"]
    assert result.summary().endswith(f"{len(why)} entries {cal_run.SKIPPED}")


def test_a_base_table_without_the_entry_leaves_it_to_the_defaults(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_kernel(monkeypatch, {"helper.xdp_adjust_meta": cal_benches.Refused("load", "no")}, {})
    text = SHIPPED.read_text()
    start = text.index("[helper.xdp_adjust_meta]")
    base = parse_cost_table(text[:start] + text[text.index("[helper.", start + 1):], "b.toml")
    table = parse_cost_table(cal_run.run_calibration(cal_timing.QUICK, base=base), "t.toml")
    assert "xdp_adjust_meta" not in table.helpers
    assert "[defaults]" in dict(table.provenance.not_measured)["helper.xdp_adjust_meta"]


def test_nothing_measured_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_kernel(monkeypatch, {"insn.alu_mov": cal_benches.Refused("load", "nope")}, {})
    with pytest.raises(BpfLintError, match="nothing was measured.*insn.alu_mov.*nope"):
        cal_run.calibrate(cal_timing.QUICK, only=("alu_mov",))


@pytest.mark.parametrize("pattern, some, none", [
    ("map_lookup_elem", "helper.map_lookup_elem.map.hash", "helper.map_update_elem.map.hash"),
    ("helper.map_lookup_elem", "helper.map_lookup_elem.map.array", "insn.alu_mov"),
    ("insn.alu_*", "insn.alu_div", "helper.xdp_adjust_head"),
    ("helper.xdp_*", "helper.xdp_adjust_meta", "helper.redirect"),
    ("alu_mov", "insn.alu_mov", "insn.alu_mov_reg"),
    ("*.map.hash", "helper.map_delete_elem.map.hash", "helper.map_lookup_elem.map.lru_hash"),
])
def test_patterns_name_entries(pattern: str, some: str, none: str) -> None:
    keys = [key for key, _ in cal_run.bench_list()]
    assert some in cal_run.select(keys, only=(pattern,))
    assert none not in cal_run.select(keys, only=(pattern,))
    assert some not in cal_run.select(keys, skip=(pattern,))
    with pytest.raises(BpfLintError, match="'nope': names no benchmark"):
        cal_run.select(keys, skip=("nope",))


def test_a_verifier_refusal_becomes_refused_with_its_reason(
        monkeypatch: pytest.MonkeyPatch) -> None:
    levels: list[int] = []

    def prog_load(prog_type: int, insns: bytes, **kw: Any) -> sc.LoadedProg:
        levels.append(kw["log_level"])
        log = f"0: R1=ctx() R10=fp0\n{ADJUST_META_REFUSAL}\nprocessed 4 insns\n"
        raise sc.BpfSyscallError("kernel rejected program", 22, log if kw["log_level"] else "")

    monkeypatch.setattr(sc, "prog_load", prog_load)
    bench = next(b for b in cal_benches.helper_benches() if b.key == "helper.xdp_adjust_meta")
    with pytest.raises(cal_benches.Refused) as err:
        cal_timing._load(bench, bc.exit_())
    assert (err.value.stage, err.value.reason) == ("load", f"{ADJUST_META_REFUSAL} "
                                                           "(Invalid argument)")
    assert levels == [0, 1]  # the verbose log only to explain


def test_a_test_run_the_kernel_cannot_do_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def prog_test_run(fd: int, **kw: Any) -> sc.RunResult:
        raise sc.BpfSyscallError("test run failed", sc.ENOTSUPP)

    monkeypatch.setattr(sc, "prog_test_run", prog_test_run)
    bench = cal_benches.insn_benches()[0]
    with pytest.raises(cal_benches.Refused, match="run refused: not supported \\(ENOTSUPP\\)"):
        cal_timing._time(cal_benches.Env({}, 0), bench, (3, 4), cal_timing.QUICK, lambda: None)


def test_a_table_states_what_it_did_not_measure_as_strings() -> None:
    text = SHIPPED.read_text()
    head, tail = text.split("\n[defaults]", 1)
    ok = parse_cost_table(head + '\n[provenance.not_measured]\n"insn.ld_abs" = "refused"\n'
                          "\n[defaults]" + tail, "t.toml")
    assert ok.provenance.not_measured == (("insn.ld_abs", "refused"),)
    assert ok.insns == BASE.insns  # informational only
    with pytest.raises(BpfLintError, match=r"t.toml:\d+: .*not_measured.*expected a string"):
        parse_cost_table(head + '\n[provenance.not_measured]\n"insn.ld_abs" = 3\n'
                         "\n[defaults]" + tail, "t.toml")


# -- the command ---------------------------------------------------------------------

def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["calibrate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_needs_no_root(capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    code, out, _ = run(capsys, "--list")
    assert code == 0
    assert "helper.xdp_adjust_meta\txdp_adjust_meta_pair\n" in out
    assert len(out.splitlines()) == len(cal_run.bench_list())


@pytest.mark.parametrize("argv, message", [
    (("--only", "nope"), "calibrate --only 'nope': names no benchmark"),
    (("--skip", "alu_mov,helper.nope*"), "calibrate --skip 'helper.nope*': names no"),
    (("--base-table", "/nonexistent/t.toml"), "/nonexistent/t.toml: cannot read cost table"),
])
def test_bad_options_are_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch,
                                         argv: tuple[str, ...], message: str) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("bpflint: error: ") and message in err


def test_the_command_reports_progress_and_a_summary(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    fake_kernel(monkeypatch,
                {"helper.xdp_adjust_meta": cal_benches.Refused("load", ADJUST_META_REFUSAL)}, {})
    out_file = tmp_path / "t.toml"
    code, out, err = run(capsys, "--quick", "--only", "helper.xdp_*", "-o", str(out_file))
    assert code == 0 and out == ""
    lines = err.splitlines()
    assert lines[0].startswith("calibrate: [1/4] helper.xdp_get_buff_len (xdp_get_buff_len): min ")
    assert lines[3] == ("calibrate: [4/4] helper.xdp_adjust_meta (xdp_adjust_meta_pair): not "
                        f"measured, load refused: {ADJUST_META_REFUSAL}")
    assert lines[4].startswith("calibrate: not measured here, priced from ")
    assert f"helper.xdp_adjust_meta (xdp_adjust_meta_pair: load refused: " \
           f"{ADJUST_META_REFUSAL})" in lines[4]
    assert lines[5].startswith("calibrate: done in ") and len(lines) == 6
    table = load_cost_table(out_file)
    assert table.helpers["xdp_adjust_meta"] == BASE.helpers["xdp_adjust_meta"]


# -- the live kernel -------------------------------------------------------------------

def _refuse_adjust_meta_for_real(monkeypatch: pytest.MonkeyPatch) -> None:
    """The xdp_adjust_meta benchmark calls bpf_override_return instead, which no xdp
    program may use: the kernel's own refusal, as a kernel without the helper gives."""
    original = cal_benches.helper_benches

    def patched() -> list[cal_benches.Bench]:
        body = cal_benches._const(bc.mov64(bc.R1, bc.R6) + bc.mov64(bc.R2, imm=0)
                              + bc.call_helper(cal_benches.helper_id("override_return")))
        return [replace(b, body=body) if b.key == "helper.xdp_adjust_meta" else b
                for b in original()]

    monkeypatch.setattr(cal_benches, "helper_benches", patched)


@pytest.mark.kernel
@pytest.mark.skipif(not USABLE, reason=REASON)
def test_a_real_refusal_is_recorded_with_the_verifiers_reason(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    _refuse_adjust_meta_for_real(monkeypatch)
    out_file = tmp_path / "t.toml"
    code, _, err = run(capsys, "--quick", "--only", "helper.xdp_*,alu_mov", "-o", str(out_file))
    assert code == 0, err
    table = load_cost_table(out_file)
    why = dict(table.provenance.not_measured)
    assert why["helper.xdp_adjust_meta"].startswith(
        "xdp_adjust_meta_pair: load refused: program of this type cannot use helper "
        "bpf_override_return#58")
    assert table.helpers["xdp_adjust_meta"] == BASE.helpers["xdp_adjust_meta"]
    for measured in ("helper.xdp_adjust_head", "helper.xdp_adjust_tail", "insn.alu_mov"):
        assert measured not in why
    assert table.helpers["xdp_adjust_head"].base.median_ns is not None
    assert "bpf_override_return#58" in err.splitlines()[-2]  # the summary line


@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.skipif(not USABLE, reason=REASON)
def test_quick_calibration_is_complete_and_sane() -> None:
    progress: list[str] = []
    result = cal_run.calibrate(replace(cal_timing.QUICK, progress=progress.append),
                           ringbuf_bytes=1 << 22)
    table = parse_cost_table(result.text, "calibrated.toml")
    assert progress and progress[-1].startswith(f"[{len(cal_run.bench_list())}/")
    assert set(table.insns) == set(INSN_KEYS) | set(OPTIONAL_INSN_KEYS)
    # what this kernel refused is stated with its reason and priced from the base table;
    # most of the table must be measured here
    why = dict(table.provenance.not_measured)
    assert why == {k: f"{v}; priced from {cal_table._priced_from(k, BASE)}"
                   for k, v in result.refused.items()}
    assert all(" refused: " in w for w in why.values())
    keys = {key for key, _ in cal_run.bench_list()}
    assert len(why) <= len(keys) // 4, why
    measured_here = keys - set(why)

    def measured(key: str) -> bool:
        return key in measured_here

    for key in why:
        name, variant = cal_table._split_helper_key(key)
        if key.startswith("insn."):
            assert table.insns[key[5:]] == BASE.insns[key[5:]]
        elif not variant and name in BASE.helpers:
            assert table.helpers[name] == BASE.helpers[name]
    # hash maps are priced by key size too: a 64-byte key costs at least a 4-byte one
    for helper in ("map_lookup_elem", "map_update_elem", "map_delete_elem"):
        if measured(f"helper.{helper}.map.hash"):
            hashed = table.helpers[helper].variant("hash")
            assert hashed is not None and hashed.per_key is not None
            assert hashed.max_for_key(4) <= hashed.max_for_key(64) <= hashed.max_ns + 1e-3
    measured_costs = [c for k, c in table.insns.items() if measured(f"insn.{k}")
                      and c.median_ns is not None]
    measured_costs += [h.base for k, h in table.helpers.items()
                       if measured(f"helper.{k}") and h.max_units is None]
    assert len(measured_costs) >= 40
    assert all(c.max_ns > 0 and c.min_ns >= 0 and c.spread_pct is not None
               for c in measured_costs)
    # size-dependent helpers: the fitted base may be ~0 (bpf_loop of 0 iterations),
    # the per-unit part may not
    sized = [h for k, h in table.helpers.items()
             if h.max_units is not None and measured(f"helper.{k}")]
    assert sized and all(h.per_unit_max_ns > 0 and h.base.spread_pct is not None
                         for h in sized)
    if measured("helper.loop"):
        assert table.helpers["loop"].per_unit_min_ns > 0.5  # a callback call per iteration
    assert len(table.helpers) >= 30
    # a record written to a real perf buffer, a stack walked into a real stack map
    if measured("helper.perf_event_output"):
        assert table.helpers["perf_event_output"].base.max_ns > table.insns["alu_mov"].max_ns
    if measured("helper.get_stackid"):
        assert table.helpers["get_stackid"].base.min_ns > 0
    assert measured("insn.alu_div") and measured("insn.alu_mov")
    assert table.insns["alu_div"].min_ns > table.insns["alu_mov"].min_ns


@pytest.mark.kernel
@pytest.mark.skipif(not USABLE, reason=REASON)
def test_maps_the_kernel_will_not_create_refuse_only_their_benchmarks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    create = sc.map_create

    def map_create(map_type: int, *args: Any, **kw: Any) -> int:
        if map_type in (sc.MAP_TYPES["ringbuf"], sc.MAP_TYPES["lpm_trie"]):
            raise sc.BpfSyscallError("cannot create map", 22)
        return create(map_type, *args, **kw)

    def no_perf_event(cpu: int) -> int:
        raise sc.BpfSyscallError("cannot open a BPF_OUTPUT perf event", 13)

    monkeypatch.setattr(sc, "map_create", map_create)
    monkeypatch.setattr(sc, "perf_bpf_output_open", no_perf_event)
    benches = {b.variant: b for b in cal_benches.helper_benches()}
    with cal_timing.environment(1 << 16, cold_maps=False) as env, \
            cal_timing.buffers_reset(env) as reset:
        assert env.missing == {"ringbuf": "Invalid argument", "lpm_trie": "Invalid argument",
                               "perf_array": "Permission denied"}
        assert "perf_event" not in env.fds
        reset()  # nothing left to empty, and no error for it
        for variant, reason in (("ringbuf_query", "map ringbuf: Invalid argument"),
                                ("lookup_lpm", "map lpm_trie: Invalid argument"),
                                ("perf_event_output_8", "map perf_array: Permission denied")):
            with pytest.raises(cal_benches.Refused) as err:
                cal_timing.measure(env, benches[variant], cal_timing.QUICK, reset)
            assert (err.value.stage, err.value.reason) == ("map", reason)
        m = cal_timing.measure(env, benches["lookup_array"], cal_timing.QUICK, reset)
        assert m.median_ns > 0


# -- kfuncs, pairs and the routed namespace ------------------------------------------

def test_kfuncs_are_written_and_copied_and_pairs_have_no_floor(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_kernel(monkeypatch, {}, {})
    measured = parse_cost_table(cal_run.run_calibration(
        cal_timing.QUICK, only=("bpf_iter_num_*", "skb_change_tail")), "k.toml")
    assert set(measured.kfuncs) >= {"bpf_iter_num_new", "bpf_iter_num_next",
                                    "bpf_iter_num_destroy"}
    # next is measured alone; new and destroy only as a pair, which bounds neither below
    assert measured.kfuncs["bpf_iter_num_next"].min_ns > 0
    assert measured.kfuncs["bpf_iter_num_new"].min_ns == 0.0
    assert measured.kfuncs["bpf_iter_num_destroy"].min_ns == 0.0
    assert measured.helpers["skb_change_tail"].base.min_ns == 0.0
    assert measured.kfuncs["bpf_iter_num_new"].max_ns > 0
    # left out: the base table's kfuncs, copied as they were
    copied = parse_cost_table(cal_run.run_calibration(cal_timing.QUICK, only=("alu_mov",)),
                              "c.toml")
    assert copied.kfuncs == BASE.kfuncs and BASE.kfuncs
    assert "kfunc.bpf_iter_num_next" in dict(copied.provenance.not_measured)


def test_a_kernel_without_the_kfunc_refuses_its_benchmark(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_kernel(monkeypatch, {}, {})
    monkeypatch.setattr(cal_benches.vmlinux, "kfunc_id", lambda name: None)
    result = cal_run.calibrate(cal_timing.QUICK, only=("bpf_iter_num_next", "alu_mov"))
    assert result.refused["kfunc.bpf_iter_num_next"].startswith(  # new comes first
        "next_live: load refused: no function bpf_iter_num_new in /sys/kernel/btf/vmlinux")
    table = parse_cost_table(result.text, "r.toml")
    assert table.kfuncs["bpf_iter_num_next"] == BASE.kfuncs["bpf_iter_num_next"]


def _last_call_result(env: cal_benches.Env, bench: cal_benches.Bench) -> int:
    """Run one unit of ``bench`` once and return what its last call returned."""
    post = bench.post

    def keep_r0(e: cal_benches.Env) -> bytes:
        return (bc.mov64(bc.R6, bc.R0) + (post(e) if post is not None else b"")
                + bc.mov64(bc.R0, bc.R6) + bc.exit_())

    probe = replace(bench, post=keep_r0)
    fd = cal_timing._load(probe, cal_timing._program(env, probe, 1))
    try:
        retval = sc.prog_test_run(fd, data=cal_timing._packet(bench.prog_type), repeat=1).retval
    finally:
        sc.close(fd)
    return retval - (1 << 32) if retval >= 1 << 31 else retval


@pytest.mark.kernel
@pytest.mark.skipif(not USABLE, reason=REASON)
def test_new_benchmarks_run_the_path_they_price_on_this_kernel() -> None:
    every = {b.variant: b for b in (*cal_benches.helper_benches(),
                                    *cal_benches.kfunc_benches())}
    netns = Path("/proc/self/ns/net")
    home = netns.readlink()
    with cal_timing.environment(1 << 16, cold_maps=False) as env, \
            cal_timing.buffers_reset(env) as reset:
        # fib_lookup in its namespace: BPF_FIB_LKUP_RET_SUCCESS (0), the whole path
        for variant in ("fib_lookup_v4_flags0", "fib_lookup_v6_flags2"):
            with cal_timing.routed_netns():
                assert netns.readlink() != home
                assert _last_call_result(env, every[variant]) == 0
            assert netns.readlink() == home  # the machine's namespace, untouched
        # the helpers that change the packet succeed (0), so their figure is not a
        # failure's; the map-in-map hit finds its inner map
        for variant in ("skb_change_head_256", "skb_change_tail_1024_and_back",
                        "skb_adjust_room_mode0_pair", "skb_adjust_room_mode1_pair"):
            assert _last_call_result(env, every[variant]) == 0, variant
        assert _last_call_result(env, every["lookup_in_hash_of_maps4_hit"]) != 0
        assert _last_call_result(env, every["lookup_in_array_of_maps4_hit"]) != 0
        assert _last_call_result(env, every["trace_printk_512"]) == 511  # bytes written
        assert _last_call_result(env, every["next_live"]) != 0  # a pointer: not drained
        assert _last_call_result(env, every["next_drained"]) == 0
        # and each is timed, not refused
        for variant in ("next_live", "new_destroy", "fib_lookup_v4_flags2",
                        "lookup_in_hash_of_maps64_hit"):
            bench = every[variant]
            m = cal_timing.measure(env, bench, cal_timing.QUICK, reset)
            assert 0 < m.median_ns < 5000, (variant, m)
        assert netns.readlink() == home


@pytest.mark.kernel
@pytest.mark.skipif(not USABLE, reason=REASON)
def test_cold_hash_benchmarks_walk_a_map_bigger_than_the_cache() -> None:
    every = {b.variant: b for b in cal_benches.helper_benches()}
    with cal_timing.environment(1 << 16) as env, cal_timing.buffers_reset(env) as reset:
        for mtype in cal_benches.COLD_MAP_TYPES:
            for ks in (4, 64):
                name = f"{mtype}{ks}"
                assert f"{name}_cold" in env.fds, env.missing
                # every key of the walk is present (a hit returns the value), the miss
                # keys not; a delete of a present key puts it back (the pair's update
                # returns 0), one of a missing key finds nothing (-ENOENT)
                assert _last_call_result(env, every[f"lookup_{name}_cold_hit"]) != 0
                assert _last_call_result(env, every[f"lookup_{name}_cold_miss"]) == 0
                assert _last_call_result(env, every[f"update_{name}_cold"]) == 0
                assert _last_call_result(env, every[f"delete_{name}_cold_hit"]) == 0
                assert _last_call_result(env, every[f"delete_{name}_cold_miss"]) == -2
                assert _last_call_result(env, every[f"lookup_{name}_cold_hit"]) != 0
        hot = cal_timing.measure(env, every["lookup_hash4_hit"], cal_timing.QUICK, reset)
        cold = cal_timing.measure(env, every["lookup_hash4_cold_hit"], cal_timing.QUICK, reset)
    # a million keys are far more than a last-level cache holds: each lookup misses
    assert cold.min_ns > 2 * hot.median_ns, (hot, cold)


def test_a_cold_entry_keeps_its_hot_figure_beside_the_cold_max(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_kernel(monkeypatch, {}, {})
    fake = cal_timing.measure

    def cold_is_dearer(env: cal_benches.Env, bench: cal_benches.Bench,
                       opts: cal_timing.Options,
                       reset: Callable[[], None] = lambda: None) -> cal_timing.Measured:
        m = fake(env, bench, opts, reset)
        return replace(m, min_ns=m.min_ns * 30, median_ns=m.median_ns * 30) if bench.cold \
            else m

    monkeypatch.setattr(cal_timing, "measure", cold_is_dearer)
    text = cal_run.run_calibration(cal_timing.QUICK, only=("map_lookup_elem", "alu_*"))
    table = parse_cost_table(text, "c.toml")
    lookup = table.helpers["map_lookup_elem"]
    for mtype in cal_benches.COLD_MAP_TYPES:
        cost = lookup.variant(mtype)
        assert cost is not None and cost.hot_max_ns is not None, mtype
        # max: the cold walk (30x the hot figure here); hot_max_ns: the hot variants'
        assert cost.max_ns > 20 * cost.hot_max_ns > 0
        hot = table.with_cpu_caches("hot").helpers["map_lookup_elem"].variant(mtype)
        assert hot is not None and hot.max_ns == cost.hot_max_ns and hot.per_key is None
    # no cold variant: no hot figure
    array = lookup.variant("array")
    assert array is not None and array.hot_max_ns is None
    assert lookup.base.hot_max_ns is not None and lookup.base.hot_max_ns < lookup.base.max_ns
    # a base table's hot figures are copied with the rest of an entry
    copied = parse_cost_table(cal_run.run_calibration(cal_timing.QUICK, only=("alu_mov",),
                                                      base=table), "d.toml")
    assert copied.helpers["map_lookup_elem"] == lookup

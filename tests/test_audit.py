"""`bpflint audit`: translated code of loaded programs against `analyze` of their
objects, links, statistics, budgets, and the Prometheus exposition.

The kernel tests load programs with the project's loader and close every fd they
open (programs, maps, links): nothing stays loaded after a test, which each one
checks by id.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bpfc import PROGS, compile_bpf, find_clang

from bpflint import audit
from bpflint.audit import AuditedProgram, AuditReport, HookSum, Measured
from bpflint.cli import main
from bpflint.commands import audit as audit_cmd
from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.cost.table_file import load_cost_table
from bpflint.kernel import introspect, xlated
from bpflint.kernel import syscall as sc
from bpflint.kernel.introspect import Link
from bpflint.kernel.loader import LoadedProgram, load_program
from bpflint.obj.loader_vars import pin_defaults
from bpflint.obj.model import BpfObject
from bpflint.obj.reader import load_object
from bpflint.report import prometheus
from bpflint.results import ProgramResult

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
USABLE, REASON = sc.bpf_usable()
needs_kernel = pytest.mark.skipif(not USABLE or find_clang() is None,
                                  reason=REASON if not USABLE else "clang is needed")
TABLE = load_cost_table(None)
OPTIONS = AnalysisOptions(max_seconds=60)


# -- units -------------------------------------------------------------------------

def _result(name: str, insns_max: int | None, ns_max: float | None) -> ProgramResult:
    return ProgramResult(object="prog/7", section="xdp", name=name, type="xdp", insn_count=9,
                         bounded=insns_max is not None, insns_min=3, insns_max=insns_max,
                         ns_min=1.0, ns_max=ns_max)


def _audited(pid: int, name: str, insns_max: int | None, ns_max: float | None,
             measured: Measured | None = None, links: tuple[Link, ...] = ()
             ) -> AuditedProgram:
    return AuditedProgram(id=pid, name=name, kernel_name=name[:15], type="xdp",
                          tag="00" * 8, links=links, section="xdp",
                          result=_result(name, insns_max, ns_max), measured=measured)


def test_prometheus_exposition_escapes_labels_and_marks_unbounded() -> None:
    odd = 'we"ird\\name\nx'
    link = Link(1, 7, "xdp", "xdp dev eth0", "xdp:eth0", "xdp")
    report = AuditReport(
        programs=(_audited(7, odd, 120, 80.5, Measured(10, 1000, 1.0), (link,)),
                  _audited(8, "loopy", None, None, links=(link,))),
        hooks=audit.hook_sums([_audited(7, odd, 120, 80.5, links=(link,)),
                               _audited(8, "loopy", 10, 5.0, links=(link,))]),
        stats="sample", sample_seconds=1.0)
    text = prometheus.render(report, {7: True, 8: False})
    lines = text.splitlines()
    assert 'bpflint_program_insns_max{id="7",name="we\\"ird\\\\name\\nx",type="xdp"} 120' \
        in lines
    assert 'bpflint_program_ns_max{id="7",name="we\\"ird\\\\name\\nx",type="xdp"} 80.5' \
        in lines
    assert 'bpflint_program_insns_max{id="8",name="loopy",type="xdp"} +Inf' in lines
    assert 'bpflint_program_bounded{id="8",name="loopy",type="xdp"} 0' in lines
    assert 'bpflint_program_run_avg_ns{id="7",name="we\\"ird\\\\name\\nx",type="xdp"} 100' \
        in lines
    assert 'bpflint_budget_violation{id="7",name="we\\"ird\\\\name\\nx",type="xdp"} 1' in lines
    assert 'bpflint_budget_violation{id="8",name="loopy",type="xdp"} 0' in lines
    assert 'bpflint_hook_ns_max{hook="xdp:eth0",programs="2"} 85.5' in lines
    # every metric: HELP, then TYPE, then its samples, and only once
    for name in set(prometheus.metric_names(text)):
        help_at = lines.index(next(line for line in lines
                                   if line.startswith(f"# HELP {name} ")))
        assert lines[help_at + 1] == f"# TYPE {name} gauge"
        assert sum(line.startswith(f"# HELP {name} ") for line in lines) == 1
    # no budgets: no violation metric at all
    assert "bpflint_budget_violation" not in prometheus.render(report, None)


def test_a_measured_average_above_the_static_max_is_flagged() -> None:
    fine = _audited(1, "fine", 100, 50.0, Measured(4, 100, 1.0))
    broken = _audited(2, "broken", 100, 50.0, Measured(4, 400, 1.0))
    assert fine.ratio == 0.5 and not fine.over_static_max and fine.warning() == ""
    assert broken.ratio == 2.0 and broken.over_static_max
    assert "recalibrate" in broken.warning() and "report a bug" in broken.warning()
    # bpf_stats' own clock reads are in every average: a floor of 60 ns leaves 40 ns
    floored = _audited(3, "floored", 100, 50.0, Measured(4, 400, 1.0, floor_ns=60.0))
    assert floored.ratio == 0.8 and not floored.over_static_max
    text = audit_cmd.render_text(AuditReport((fine, broken), (), "sample", 1.0), None)
    assert "WARNING: prog 2 broken: measured average 100.0 ns is above" in text
    doc = json.loads(audit_cmd.render_json(AuditReport((fine, broken), (), "sample", 1.0),
                                           None))
    assert [p["over_static_max"] for p in doc["programs"]] == [False, True]


def test_hook_sums_add_worst_cases_and_an_unbounded_member_makes_the_sum_unbounded() -> None:
    a = Link(1, 1, "tcx", "tcx ingress dev eth0", "tcx:eth0:ingress", "tcx/ingress")
    b = Link(2, 2, "tcx", "tcx ingress dev eth0", "tcx:eth0:ingress", "tcx/ingress")
    c = Link(3, 3, "perf_event", "kprobe f", "kprobe:f", "kprobe/f")
    sums = audit.hook_sums([_audited(1, "a", 10, 4.0, links=(a,)),
                            _audited(2, "b", 20, 6.0, links=(b,)),
                            _audited(3, "c", None, None, links=(c,))])
    assert sums == (HookSum("kprobe:f", "kprobe f", (3,), None, None),
                    HookSum("tcx:eth0:ingress", "tcx ingress dev eth0", (1, 2), 30, 10.0))


def test_kernel_functions_map_to_the_helpers_they_implement() -> None:
    ids = {name: i for i, name in enumerate(xlated.HELPER_NAMES)}
    assert xlated.helper_for("bpf_ktime_get_ns") == ids["ktime_get_ns"]
    assert xlated.helper_for("htab_map_lookup_elem") == ids["map_lookup_elem"]
    assert xlated.helper_for("__htab_map_lookup_elem") == ids["map_lookup_elem"]
    assert xlated.helper_for("trie_lookup_elem") == ids["map_lookup_elem"]
    assert xlated.helper_for("bpf_map_lookup_percpu_elem") == ids["map_lookup_percpu_elem"]
    assert xlated.helper_for("bpf_for_each_array_elem") == ids["for_each_map_elem"]
    assert xlated.helper_for("bpf_xdp_redirect_map") == ids["redirect_map"]
    assert xlated.helper_for("bpf_get_stackid_pe") == ids["get_stackid"]
    assert xlated.helper_for("bpf_skb_event_output") == ids["perf_event_output"]
    assert xlated.helper_for("arch_bpf_timed_may_goto") is None


def _slot(op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> list[int]:
    return [op, dst, src, off, imm]


@pytest.mark.parametrize("timed", [False, True])
def test_the_may_goto_expansion_becomes_one_may_goto_with_the_same_counts(timed: bool) -> None:
    ax = 11
    expansion = [_slot(0x79, ax, 10, -16), _slot(0x15, ax, 0, 5 if timed else 2, 0),
                 _slot(0x17, ax, imm=1)]
    if timed:
        expansion += [_slot(0x55, ax, 0, 2, 0), _slot(0xB7, ax, imm=-16), _slot(0x85, imm=99)]
    expansion += [_slot(0x7B, 10, ax, -16)]
    slots = [*expansion, _slot(0xB7, 0), _slot(0x95)]
    exit_at = len(expansion) + 1
    notes: list[str] = []
    xlated._normalize(slots, notes)
    assert not any(11 in (s[1], s[2]) for s in slots)
    may_goto = slots[1]
    assert may_goto[0] == 0xE5 and 1 + may_goto[3] + 1 == 1 + (5 if timed else 2) + 1
    # the usual path through the expansion: as many instructions as the kernel's
    pc, count = 0, 0
    while pc < len(expansion):
        op, _, _, off, _ = slots[pc]
        count += 1
        pc = pc + off + 1 if op == 0x05 else pc + 1
    assert count == (5 if timed else 4)
    assert slots[exit_at][0] == 0x95
    assert bool(notes) == timed


def test_audit_without_root_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(introspect, "is_root", lambda: False)
    assert main(["audit"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "audit needs root" in err


# -- against the kernel ------------------------------------------------------------

@dataclass
class Loaded:
    obj: BpfObject
    name: str
    handle: LoadedProgram
    id: int


def _prog_id(fd: int) -> int:
    info = introspect._ProgInfo()
    sc.obj_get_info(fd, info)
    return int(info.id)


@pytest.fixture
def loader() -> Iterator[list[Loaded]]:
    """Load programs through the returned list's ``load``; all closed afterwards, and
    checked gone."""
    loaded: list[Loaded] = []
    extra_fds: list[int] = []

    class Loads(list[Loaded]):
        def load(self, path: Path, name: str) -> Loaded:
            obj = load_object(path)
            program = next(p for p in obj.programs if p.name == name)
            handle = load_program(obj, program)
            got = Loaded(obj, name, handle, _prog_id(handle.fd))
            loaded.append(got)
            return got

        def keep(self, fd: int) -> int:
            extra_fds.append(fd)
            return fd

    try:
        yield Loads()
    finally:
        for fd in extra_fds:
            sc.close(fd)
        for got in loaded:
            got.handle.close()
        assert _gone({got.id for got in loaded}), "a test left programs loaded"


def _gone(ids: set[int], seconds: float = 10.0) -> bool:
    """Whether the programs are unloaded; the kernel frees a program (and a link's hold
    on it) after an RCU grace period, not at close()."""
    deadline = time.monotonic() + seconds
    while set(introspect.program_ids()) & ids:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _audit_one(got: Loaded) -> AuditedProgram:
    prog = introspect.read_program(got.id)
    assert prog is not None
    return audit.audit_program(prog, [], TABLE, OPTIONS)


def _elf(got: Loaded) -> ProgramResult:
    """The object's analysis for the configuration that was loaded: the loader leaves
    every loader-set variable at the object's value and creates .rodata read-only for
    the program (BPF_F_RDONLY_PROG), so the translated code reads those values."""
    obj = pin_defaults(got.obj)
    program = next(p for p in obj.programs if p.name == got.name)
    return analyze_program(obj, program, TABLE, OPTIONS)


# Programs whose translated code the engine sees exactly as the object's: same static
# instructions, same range.
UNCHANGED = [("cgroup_skb.bpf.c", "cgroup_ingress"), ("csum_loop.bpf.c", "csum_loop"),
             ("growing_reads.bpf.c", "growing_reads"), ("loop_calls_sub.bpf.c", "loop_calls"),
             ("switch_proto.bpf.c", "switch_proto"), ("syscall_prog.bpf.c", "syscall_sum"),
             ("kprobe_count.bpf.c", "kprobe_entry"), ("raw_tp_ringbuf.bpf.c", "raw_tp_enter"),
             ("for_each_map.bpf.c", "each_array"), ("for_each_map.bpf.c", "each_hash"),
             ("unroll_vlan.bpf.c", "unroll_vlan")]
PACKET_CHAINS = {"unroll_vlan"}


@needs_kernel
@pytest.mark.parametrize(("source", "name"), UNCHANGED)
def test_unchanged_translations_cost_what_the_object_costs(loader: list[Loaded], source: str,
                                                           name: str) -> None:
    got = loader.load(compile_bpf(PROGS / source), name)  # type: ignore[attr-defined]
    audited, elf = _audit_one(got), _elf(got)
    assert audited.result is not None, audited.error
    xl = audited.result
    assert xl.insn_count == elf.insn_count
    assert (xl.bounded, xl.insns_min, xl.insns_max) == (elf.bounded, elf.insns_min,
                                                         elf.insns_max)
    # for_each_map_elem reads back as bpf_for_each_array_elem: priced as the helper,
    # callback and all, as in the object
    assert xl.ns_max is not None and elf.ns_max is not None
    if name in PACKET_CHAINS:
        # the context's data pointer is an unknown value in translated code: a load
        # through it is priced as unknown memory, not along the packet's chain
        assert xl.ns_max > elf.ns_max
    else:
        assert xl.ns_max == pytest.approx(elf.ns_max, abs=1e-6)


# Context field loads the kernel rewrites into a chain of loads through its own
# structures, outside loops: every path gains what the program gains statically.
# (xdp_md.rx_queue_index: 1 more load, ingress_ifindex: 2 more; straight_xdp has both)
CTX_REWRITES = [("straight_xdp.bpf.c", "straight_xdp"), ("loop_shapes.bpf.c", "loop_lt_up"),
                ("loop_shapes.bpf.c", "loop_step3"), ("loop_nested.bpf.c", "nested3")]


@needs_kernel
@pytest.mark.parametrize(("source", "name"), CTX_REWRITES)
def test_context_rewrites_add_their_loads_to_every_path(loader: list[Loaded], source: str,
                                                        name: str) -> None:
    got = loader.load(compile_bpf(PROGS / source), name)  # type: ignore[attr-defined]
    audited, elf = _audit_one(got), _elf(got)
    assert audited.result is not None, audited.error
    xl = audited.result
    grown = xl.insn_count - elf.insn_count
    assert grown > 0
    assert xl.insns_max is not None and elf.insns_max is not None
    assert xl.insns_min is not None and elf.insns_min is not None
    assert (xl.insns_min - elf.insns_min, xl.insns_max - elf.insns_max) == (grown, grown)


def _kernel_calls(prog_id: int) -> list[str]:
    """The kernel functions the translated program calls, by name (kallsyms)."""
    prog = introspect.read_program(prog_id)
    assert prog is not None
    symbols = xlated.kallsyms()
    names = []
    for index in range(len(prog.xlated) // 8):
        op, regs, _, imm = struct.unpack_from("<BBhi", prog.xlated, index * 8)
        if op == 0x85 and regs >> 4 == 0 and imm != xlated.TAIL_CALL:
            names.append(symbols.name_at(symbols.call_base + imm) or "?")
    return names


@needs_kernel
def test_inlined_map_lookups_and_the_firewall_example(loader: list[Loaded]) -> None:
    got = loader.load(EXAMPLES / "xdp-firewall" / "firewall.bpf.o",  # type: ignore[attr-defined]
                      "xdp_firewall")
    audited, elf = _audit_one(got), _elf(got)
    assert audited.result is not None, audited.error
    xl = audited.result
    # The verifier inlines each lookup of the per-CPU array `stats`: the call becomes
    # 9 instructions (value base, index load, bounds check, shift, add, load, per-CPU
    # move, jump; `r0 = 0` when out of bounds): +8 statically, +7 on the found path.
    # Hash lookups call __htab_map_lookup_elem, then skip the element's key when
    # found (if r0 == 0 goto +1; r0 += off): +2 statically and on the found path. LPM
    # lookups stay calls (trie_lookup_elem); data/data_end stay single loads.
    percpu = int(audited.notes[0].split()[0])
    assert "per-CPU address move" in audited.notes[0] and percpu > 0
    calls = _kernel_calls(got.id)
    htab = calls.count("__htab_map_lookup_elem")
    assert htab > 0 and "trie_lookup_elem" in calls
    assert xl.insn_count - elf.insn_count == 8 * percpu + 2 * htab
    assert xl.bounded and elf.bounded
    assert xl.insns_max is not None and elf.insns_max is not None
    assert elf.insns_max <= xl.insns_max <= elf.insns_max + 7 * percpu + 2 * htab
    assert xl.ns_max is not None and xl.ns_max > 0


@needs_kernel
def test_tail_calls_are_followed_through_the_prog_array_as_it_is_now(
        loader: list[Loaded]) -> None:
    path = EXAMPLES / "tc-tailcall" / "classifier.bpf.o"
    entry = loader.load(path, "classify")  # type: ignore[attr-defined]
    stages = dict(entry.obj.maps["stages"].prog_slots)
    alone = _audit_one(entry)
    assert alone.result is not None and any(d.rule == "BPF005"
                                            for d in alone.result.diagnostics)
    for slot, name in stages.items():
        target = loader.load(path, name)  # type: ignore[attr-defined]
        sc.map_update(entry.handle.map_fds["stages"], slot.to_bytes(4, "little"),
                      target.handle.fd.to_bytes(4, "little"))
    followed = _audit_one(entry)
    elf = _elf(entry)
    assert followed.result is not None, followed.error
    assert not any(d.rule == "BPF005" for d in followed.result.diagnostics)
    # the same tail calls as the object's statically initialised array: the worst case
    # now includes the dearest stage, as analyze's does; translation grew each stage by
    # its context rewrites (checked against analyze per stage below)
    xl, before = followed.result, alone.result
    assert xl.insns_max is not None and before.insns_max is not None
    assert elf.insns_max is not None
    assert xl.insns_max > before.insns_max
    growth = max(_audit_grow(loader, path, name) for name in stages.values())
    assert elf.insns_max <= xl.insns_max
    assert xl.insns_max - elf.insns_max <= growth + (xl.insn_count - elf.insn_count)


def _audit_grow(loader: list[Loaded], path: Path, name: str) -> int:
    got = loader.load(path, name)  # type: ignore[attr-defined]
    audited, elf = _audit_one(got), _elf(got)
    assert audited.result is not None and audited.result.insns_max is not None
    assert elf.insns_max is not None
    return audited.result.insns_max - elf.insns_max


@needs_kernel
def test_may_goto_reads_back_as_may_goto(loader: list[Loaded]) -> None:
    got = loader.load(compile_bpf(PROGS / "may_goto.bpf.c"),  # type: ignore[attr-defined]
                      "may_goto_loop")
    # the object under the kernel's model, as the audit reads it from the expansion
    prog = introspect.read_program(got.id)
    assert prog is not None
    model = xlated.may_goto_model(prog.xlated)
    assert model is not None
    program = next(p for p in got.obj.programs if p.name == got.name)
    audited = _audit_one(got)
    elf = analyze_program(got.obj, program, TABLE, dataclasses.replace(OPTIONS, may_goto=model))
    assert audited.result is not None, audited.error
    if model == "count":  # before 6.15, or no JIT
        # the expansion costs 4 instructions where the object's may_goto costs 1, on
        # every iteration the count budget allows
        assert audited.result.insns_max is not None and elf.insns_max is not None
        assert audited.result.insns_max > elf.insns_max
        return
    # timed: the expansion reads back as one may_goto, and the loop is bounded by the
    # 250 ms the kernel gives it, as the object's is (bpflint/cost/may_goto.py)
    for result in (audited.result, elf):
        assert result.bounded and result.ns_max is not None and result.ns_max > 250e6
        assert any(d.rule == "BPF009" for d in result.diagnostics)


@needs_kernel
def test_attached_program_budget_exit_code_sampling_and_prometheus(
        loader: list[Loaded], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    got = loader.load(compile_bpf(PROGS / "raw_tp_ringbuf.bpf.c"),  # type: ignore[attr-defined]
                      "raw_tp_enter")
    link_fd = loader.keep(sc.raw_tracepoint_open(got.handle.fd, "sys_enter"))  # type: ignore[attr-defined]
    busy = threading.Event()

    def syscalls() -> None:  # runs the program while the sample lasts, on a quiet machine too
        while not busy.is_set():
            os.stat("/")

    worker = threading.Thread(target=syscalls)
    worker.start()
    try:
        assert main(["audit", "--id", str(got.id), "--format", "json", "--sample", "0.5"]) == 0
    finally:
        busy.set()
        worker.join()
    doc = json.loads(capsys.readouterr().out)
    (prog,) = doc["programs"]
    assert prog["id"] == got.id and prog["name"] == "raw_tp_enter"
    assert prog["attached"][0]["target"] == "raw_tracepoint sys_enter"
    assert prog["section"] == "raw_tp/sys_enter"
    assert prog["measured"]["run_cnt"] > 0  # every system call runs it
    assert prog["measured"]["avg_ns"] > 0
    # what bpf_stats reports for an empty program, measured by the audit itself
    assert doc["stats"]["floor_ns"] > 0
    assert prog["measured"]["stats_floor_ns"] == pytest.approx(doc["stats"]["floor_ns"],
                                                               abs=1e-3)
    assert doc["hooks"] == [{"hook": "raw_tp:sys_enter", "target": "raw_tracepoint sys_enter",
                             "program_ids": [got.id], "insns_max": prog["insns"]["max"],
                             "ns_max": prog["ns"]["max"]}]
    # statistics went off with the sample's fd (unless the sysctl keeps them on)
    if not introspect.stats_sysctl_on():
        before = introspect.run_stats(got.id)
        for _ in range(100):
            os.stat("/")
        assert introspect.run_stats(got.id) == before
    # a budget it breaks (by section, as the attach point names it): exit 1
    config = tmp_path / "bpfbudget.toml"
    config.write_text('[[budget]]\nsection = "raw_tp/*"\nmax_insns = 3\n')
    out = tmp_path / "bpf.prom"
    assert main(["audit", "--id", str(got.id), "--config", str(config),
                 "--format", "prometheus", "--output", str(out)]) == 1
    text = out.read_text()
    labels = f'{{id="{got.id}",name="raw_tp_enter",type="raw_tracepoint"}}'
    assert f"bpflint_budget_violation{labels} 1" in text.splitlines()
    assert f"bpflint_program_insns_max{labels} {prog['insns']['max']}" in text.splitlines()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bpf.prom.")]
    # a budget it meets: exit 0, the table says PASS
    config.write_text('[[budget]]\ntype = "raw_tracepoint"\nmax_insns = 100000\n')
    assert main(["audit", "--id", str(got.id), "--config", str(config)]) == 0
    table = capsys.readouterr().out
    assert "PASS" in table and "raw_tracepoint sys_enter" in table
    assert link_fd > 0


NETNS_SCRIPT = textwrap.dedent("""
    import json, socket, subprocess, sys
    sys.path.insert(0, sys.argv[1])
    # a private bpffs: iproute2 makes its tc/, ip and xdp entries there, not on the host's
    subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=True)
    from bpflint.kernel import syscall as sc, introspect
    from bpflint.kernel.loader import load_program
    from bpflint.obj.reader import load_object
    from bpflint import audit
    from bpflint.cost.table_file import load_cost_table
    from bpflint.cost.options import AnalysisOptions
    subprocess.run(["ip", "link", "add", "aud0", "type", "veth", "peer", "name", "aud1"],
                   check=True)
    ifindex = socket.if_nametoindex("aud0")  # this namespace's own
    obj = load_object(sys.argv[2])
    progs = [load_program(obj, obj.programs[0]) for _ in range(2)]  # one attached, one not
    link = sc.link_create(progs[0].fd, ifindex, sc.BPF_XDP)
    # the other through netlink, as `ip` attaches (generic mode, on the peer)
    subprocess.run(["ip", "link", "set", "dev", "aud1", "xdpgeneric", "obj", sys.argv[2],
                    "sec", "xdp"], check=True)
    netlink_ids = [int(d["xdp"]["prog"]["id"]) for d in json.loads(subprocess.run(
        ["ip", "-j", "-d", "link", "show", "dev", "aud1"], check=True, capture_output=True,
        text=True).stdout)]
    ids = []
    for prog in progs:
        info = introspect._ProgInfo(); sc.obj_get_info(prog.fd, info); ids.append(info.id)
    report = audit.run_audit(load_cost_table(None), AnalysisOptions(), ids=ids + netlink_ids)
    print(json.dumps({"programs": [[p.id, p.attached, p.section, p.result.insns_max]
                                   for p in report.programs],
                      "hooks": [[h.hook, list(h.program_ids), h.insns_max]
                                for h in report.hooks]}))
""")


@needs_kernel
@pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("ip") is None,
                    reason="needs unshare and ip (util-linux, iproute2)")
def test_an_xdp_link_on_a_veth_in_a_private_network_namespace(tmp_path: Path) -> None:
    # the namespaces, the veth, the programs and the link die with the process
    script = tmp_path / "netns_audit.py"
    script.write_text(NETNS_SCRIPT)
    obj = compile_bpf(PROGS / "straight_xdp.bpf.c")  # one program, in section xdp
    before = set(introspect.program_ids())
    done = subprocess.run(["unshare", "--net", "--mount", sys.executable, str(script), str(ROOT),
                           str(obj)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    (attached, _), (unattached, _) = doc["programs"][0][:2], doc["programs"][1][:2]
    assert doc["programs"][0][1] == "xdp dev aud0" and doc["programs"][0][2] == "xdp"
    assert doc["programs"][1][1] == "-" and doc["programs"][1][2] == "xdp"
    by_netlink = doc["programs"][2][0]
    assert doc["programs"][2][1] == "xdp dev aud1 (generic)"
    # iproute2 loads with libbpf: the same translation as the test loader's
    assert doc["programs"][2][3] == doc["programs"][0][3]
    assert doc["hooks"] == [["xdp:aud0", [attached], doc["programs"][0][3]],
                            ["xdp:aud1", [by_netlink], doc["programs"][2][3]]]
    assert unattached != attached
    assert _gone({attached, unattached, by_netlink})
    assert attached not in before


@needs_kernel
@pytest.mark.skipif(shutil.which("bpftool") is None, reason="needs bpftool (libbpf's loader)")
def test_programs_libbpf_loaded_keep_their_names_and_source_lines(tmp_path: Path) -> None:
    # bpftool loads with libbpf: the object's BTF with func and line info, .rodata
    # frozen and read-only for programs. The verifier then drops the code that reads
    # target_tgid (0, so traced() is always true): the translated program is smaller
    # and its worst case no larger than the object's.
    pins = Path("/sys/fs/bpf") / f"bpflint-test-{os.getpid()}"
    obj = EXAMPLES / "tracing" / "openlat.bpf.o"
    subprocess.run(["bpftool", "prog", "loadall", str(obj), str(pins)], check=True,
                   capture_output=True, timeout=60)
    ids: set[int] = set()
    try:
        shown = subprocess.run(["bpftool", "-j", "prog", "show", "pinned",
                                str(pins / "handle_openat_enter")], check=True,
                               capture_output=True, text=True, timeout=60).stdout
        pid = json.loads(shown)["id"]
        ids.add(pid)
        prog = introspect.read_program(pid)
        assert prog is not None and prog.line_info and prog.func_info
        audited = audit.audit_program(prog, [], TABLE, OPTIONS)
        assert audited.result is not None, audited.error
        assert audited.name == "handle_openat_enter" and audited.kernel_name == "handle_openat_e"
        xl = audited.result
        assert {cost.file.rsplit("/", 1)[-1] for cost in xl.worst_path} == {"openlat.bpf.c"}
        assert any("bpf_map_update_elem" in cost.text for cost in xl.worst_path)
        elf_obj = load_object(obj)
        elf = analyze_program(elf_obj, next(p for p in elf_obj.programs
                                            if p.name == "handle_openat_enter"),
                              TABLE, OPTIONS)
        assert xl.insn_count < elf.insn_count
        assert xl.insns_max is not None and elf.insns_max is not None
        assert xl.insns_max <= elf.insns_max
    finally:
        shutil.rmtree(pins, ignore_errors=True)
    assert _gone(ids)


# Everything else the loader can load: translation only adds instructions to paths here
# (inlined map lookups and helpers, context rewrites, bpf_loop as a loop around its
# callback, LD_ABS's error check), compared with the object analysed at the loaded
# configuration (.rodata at the object's values): the worst case can only grow. The minimum
# may fall (unknown .rodata in rodata_config, an inlined bpf_loop's early stop, a
# context load that was a known pointer): it is not compared.
GROWING = [("bpf_loop.bpf.c", "bpf_loop_const"), ("bpf_loop.bpf.c", "bpf_loop_clamped"),
           ("bpf_loop.bpf.c", "bpf_loop_early"), ("calls.bpf.c", "calls_chain"),
           ("calls.bpf.c", "calls_arg_loop"), ("ipv6_ext.bpf.c", "ipv6_ext"),
           ("kprobe_count.bpf.c", "kretprobe_exit"), ("large_parser.bpf.c", "large_parser"),
           ("maps_heavy.bpf.c", "maps_heavy"), ("parse_xdp.bpf.c", "parse_xdp"),
           ("perf_event_sample.bpf.c", "perf_sample"), ("socket_filter.bpf.c", "socket_filter"),
           ("sk_skb_verdict.bpf.c", "sk_skb_verdict"), ("tracepoint_openat.bpf.c", "tp_openat"),
           ("uprobe_malloc.bpf.c", "uprobe_malloc"),
           ("rodata_config.bpf.c", "rodata_config"), ("branchy_tc.bpf.c", "branchy_tc")]


# The verifier reads a read-only .rodata's values and deletes the code they make dead
# (usdt's argument specs select one of several ways to read an argument): the translated
# program is smaller and its worst case may be below the object's, never above it.
PRUNED = [("usdt_probe.bpf.c", "usdt_query_done")]


@needs_kernel
@pytest.mark.parametrize(("source", "name"), PRUNED)
def test_translation_pruned_by_read_only_data_never_raises_the_worst_case(
        loader: list[Loaded], source: str, name: str) -> None:
    got = loader.load(compile_bpf(PROGS / source), name)  # type: ignore[attr-defined]
    audited, elf = _audit_one(got), _elf(got)
    assert audited.result is not None, audited.error
    xl = audited.result
    assert xl.bounded and elf.bounded
    assert xl.insns_max is not None and elf.insns_max is not None
    assert xl.insn_count < elf.insn_count
    assert xl.insns_max <= elf.insns_max


@needs_kernel
@pytest.mark.parametrize(("source", "name"), GROWING)
def test_translation_never_lowers_the_worst_case(loader: list[Loaded], source: str,
                                                 name: str) -> None:
    got = loader.load(compile_bpf(PROGS / source), name)  # type: ignore[attr-defined]
    audited, elf = _audit_one(got), _elf(got)
    assert audited.result is not None, audited.error
    xl = audited.result
    assert xl.bounded == elf.bounded
    assert xl.insns_max is not None and elf.insns_max is not None
    assert xl.insns_max >= elf.insns_max
    assert xl.insn_count >= elf.insn_count

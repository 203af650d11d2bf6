"""The BPF object reader against what clang, llvm-objdump and bpftool say.

The reader's own test programs live in tests/progs/reader/; each test names what
it checks about them (programs, calls, callbacks, maps, data, externs, line info),
and every kind of broken input is produced by patching a good object.
"""

from __future__ import annotations

import gc
import io
import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest
from bpfc import BUILD, PROGS, compile_bpf, find_clang, find_llvm_objdump
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpflint.errors import BpfLintError
from bpflint.isa.insn import decode
from bpflint.obj.btf import BtfError, parse_btf
from bpflint.obj.btf_ext import parse_btf_ext
from bpflint.obj.model import BpfObject, Function, Reloc
from bpflint.obj.reader import NotBpfError, load_object
from bpflint.obj.sections import classify

READER_PROGS = PROGS / "reader"
LLVM_OBJDUMP = find_llvm_objdump()


def _tool(name: str) -> str | None:
    for version in range(22, 13, -1):
        path = shutil.which(f"{name}-{version}")
        if path:
            return path
    return shutil.which(name)


LLVM_OBJCOPY = _tool("llvm-objcopy")
BPFTOOL = shutil.which("bpftool") or (
    "/usr/sbin/bpftool" if Path("/usr/sbin/bpftool").exists() else None)

pytestmark = pytest.mark.skipif(find_clang() is None, reason="clang not installed")
needs_objdump = pytest.mark.skipif(LLVM_OBJDUMP is None, reason="llvm-objdump not installed")
needs_objcopy = pytest.mark.skipif(LLVM_OBJCOPY is None, reason="llvm-objcopy not installed")


def _compile(name: str, flags: tuple[str, ...] = ()) -> Path:
    return compile_bpf(READER_PROGS / f"{name}.bpf.c", flags)


@pytest.fixture(scope="module")
def features() -> BpfObject:
    return load_object(_compile("features"))


@pytest.fixture(scope="module")
def extras() -> BpfObject:
    return load_object(_compile("extras"))


def test_tail_call_targets_in_unnamed_sections_take_the_objects_one_type() -> None:
    obj = load_object(_compile("numeric_tail"))
    assert {p.name: p.prog_type for p in obj.programs} == {"tail_one": "sched_cls",
                                                            "entry": "sched_cls"}
    assert any("2/1: program type sched_cls taken from" in note for note in obj.notes)


def _func(obj: BpfObject, name: str) -> Function:
    func = obj.function_named(name)
    assert func is not None, f"no function {name}"
    return func


def _reloc_at(func: Function, pc: int) -> Reloc:
    insn = next(i for i in func.insns if i.pc == pc)
    assert insn.reloc is not None, f"{func.name}: no relocation at {pc}"
    return insn.reloc


def _relocs(func: Function) -> list[Reloc]:
    return [i.reloc for i in func.insns if i.reloc is not None]


# -- programs and functions -------------------------------------------------------
def test_programs_sections_and_types(features: BpfObject) -> None:
    found = {(p.section, p.name, p.prog_type, p.attach) for p in features.programs}
    assert found == {
        ("kprobe/do_unlinkat", "probe_a", "kprobe", "do_unlinkat"),
        ("kprobe/do_unlinkat", "probe_b", "kprobe", "do_unlinkat"),
        ("tc", "tc_timer", "sched_cls", ""),
        ("xdp", "tail_target", "xdp", ""),
        ("xdp", "xdp_entry", "xdp", ""),
    }
    probe_b = next(p for p in features.programs if p.name == "probe_b")
    assert probe_b.entry == ("kprobe/do_unlinkat", _func(features, "probe_b").start)
    assert features.license == "GPL"
    assert features.has_btf


def test_two_programs_in_one_section_split_at_their_symbols(features: BpfObject) -> None:
    probe_a, probe_b = _func(features, "probe_a"), _func(features, "probe_b")
    assert probe_a.section == probe_b.section == "kprobe/do_unlinkat"
    assert probe_a.start == 0 and probe_a.end == probe_b.start
    assert probe_a.insns[-1].is_exit and probe_b.insns[0].pc == probe_b.start
    # every slot of each function is covered once, ld_imm64 as one instruction
    for func in (probe_a, probe_b):
        assert sum(i.size for i in func.insns) == func.nslots


def test_subprograms_in_text_are_not_programs(features: BpfObject) -> None:
    text = {f.name: f for f in features.functions.values() if f.section == ".text"}
    assert set(text) == {"global_twice", "add_one", "loop_cb", "timer_cb"}
    assert text["global_twice"].is_global and not text["add_one"].is_global
    assert not {p.name for p in features.programs} & set(text)


def test_call_targets(features: BpfObject) -> None:
    add_one = _func(features, "add_one")
    twice = _func(features, "global_twice")
    # global callee: relocation against its own symbol, imm = -1
    assert [r for r in _relocs(_func(features, "probe_a")) if r.kind == "call"] == [
        Reloc(kind="call", symbol="global_twice", func=twice.key)]
    # static callee in another section: relocation against .text, imm holds the offset
    calls_b = [r for r in _relocs(_func(features, "probe_b")) if r.kind == "call"]
    assert [(r.symbol, r.func) for r in calls_b] == [("add_one", add_one.key)]
    # static callee in the same section: no relocation, pc-relative imm
    assert _reloc_at(twice, twice.start).func == add_one.key
    # and the callee key names a real function whose first instruction is there
    for func in features.functions.values():
        for insn in func.insns:
            if insn.reloc and insn.reloc.func:
                callee = features.functions[insn.reloc.func]
                assert callee.insns[0].pc == callee.start == insn.reloc.func[1]


def test_callbacks_static_and_global(features: BpfObject, extras: BpfObject) -> None:
    loop_cb, timer_cb = _func(features, "loop_cb"), _func(features, "timer_cb")
    ptrs = {r.symbol: r.func for f in features.functions.values() for r in _relocs(f)
            if r.kind == "func_ptr"}
    assert ptrs == {"loop_cb": loop_cb.key, "timer_cb": timer_cb.key}
    # a global callback: relocation against its symbol (st_value), imm 0
    global_cb = _func(extras, "global_cb")
    ptrs = [r for r in _relocs(_func(extras, "trace_openat")) if r.kind == "func_ptr"]
    assert [(r.symbol, r.func) for r in ptrs] == [("global_cb", global_cb.key)]


def test_map_references(features: BpfObject) -> None:
    maps = {(r.symbol, r.map) for f in features.functions.values() for r in _relocs(f)
            if r.kind == "map"}
    assert maps == {("counts", "counts"), ("timers", "timers"), ("jumps", "jumps")}


def test_data_references_and_offsets(features: BpfObject, extras: BpfObject) -> None:
    refs = {(r.symbol, r.map, r.offset) for f in features.functions.values()
            for r in _relocs(f) if r.kind == "data"}
    assert refs == {("table", ".rodata", 8), ("limit", ".rodata", 0),
                    ("hits", ".data", 0), ("misses", ".bss", 0)}
    # string literals and statics: relocations against the section symbol plus addend
    rodata = extras.maps[".rodata"]
    strings = [r for r in _relocs(_func(extras, "trace_openat")) if r.kind == "data"
               and r.map == ".rodata"]
    texts = [rodata.data[r.offset:rodata.data.index(b"\0", r.offset)] for r in strings]
    assert texts == [b"openat %d", b"second string %d"]
    assert {r.offset for r in _relocs(_func(extras, "helper_twice"))
            if r.map == ".bss"} == {8}


def test_kfuncs_and_extern_variables(features: BpfObject) -> None:
    relocs = _relocs(_func(features, "probe_b"))
    assert [r.symbol for r in relocs if r.kind == "kfunc"] == [
        "bpf_rcu_read_lock", "bpf_rcu_read_unlock"]
    assert {r.symbol for r in relocs if r.kind == "extern"} == {
        "LINUX_KERNEL_VERSION", "bpf_prog_active"}


# -- maps ----------------------------------------------------------------------------
def test_btf_maps(features: BpfObject) -> None:
    counts, timers, jumps = (features.maps[n] for n in ("counts", "timers", "jumps"))
    assert (counts.type_name, counts.key_size, counts.value_size, counts.max_entries) == (
        "hash", 4, 8, 1024)
    assert (timers.type_name, timers.value_size, timers.max_entries) == ("array", 16, 4)
    assert (jumps.type, jumps.type_name, jumps.key_size, jumps.value_size) == (
        3, "prog_array", 4, 4)
    assert jumps.max_entries == 8
    assert jumps.prog_slots == ((0, "tail_target"), (5, "tail_target"))


def test_global_data_maps(features: BpfObject) -> None:
    rodata, data, bss = (features.maps[n] for n in (".rodata", ".data", ".bss"))
    assert rodata.read_only and not data.read_only and not bss.read_only
    assert (rodata.type_name, rodata.key_size, rodata.max_entries) == ("array", 4, 1)
    limit, = struct.unpack_from("<I", rodata.data, 0)
    table = struct.unpack_from("<4Q", rodata.data, 8)
    assert (limit, table) == (7, (1, 2, 3, 4))
    assert data.data == struct.pack("<Q", 1)
    assert bss.data == b"" and bss.value_size == 8


@pytest.mark.parametrize("flags", [(), ("-g0",)], ids=["btf", "no-btf"])
def test_legacy_maps(flags: tuple[str, ...]) -> None:
    obj = load_object(_compile("legacy", flags))
    assert obj.has_btf == (flags == ())
    counts, flows = obj.maps["packet_counts"], obj.maps["flows"]
    assert (counts.type_name, counts.key_size, counts.value_size, counts.max_entries,
            counts.section) == ("percpu_array", 4, 8, 256, "maps")
    assert (flows.type_name, flows.key_size, flows.value_size, flows.max_entries,
            flows.flags) == ("lru_hash", 8, 16, 4096, 1)
    stats = obj.maps["stats"]
    assert (stats.type_name, stats.max_entries, stats.section) == ("array", 2, "maps/stats")
    refs = [r.map for r in _relocs(_func(obj, "count_packets"))]
    assert refs == ["packet_counts", "flows", "stats"]
    [prog] = obj.programs
    assert (prog.prog_type, prog.name) == ("socket_filter", "count_packets")


def test_no_btf_object_has_everything_but_line_info() -> None:
    obj = load_object(_compile("features", ("-g0",)))
    assert not obj.has_btf
    assert all(i.line is None for f in obj.functions.values() for i in f.insns)
    assert len(obj.programs) == 5
    assert _reloc_at(_func(obj, "global_twice"), 0).func == _func(obj, "add_one").key
    # BTF-defined maps cannot be read without BTF: still named by relocations, but
    # left out of maps (no made-up sizes) and noted
    assert "counts" not in obj.maps and any("counts" in n for n in obj.notes)
    assert _reloc_at(_func(obj, "probe_a"), 4).map == "counts"
    assert obj.maps[".rodata"].value_size == 40


@needs_objcopy
@pytest.mark.parametrize("flags, name", [(("-g0",), "socket"), ((), "count_packets")],
                         ids=["no-btf", "btf"])
def test_section_without_symbols(tmp_path: Path, flags: tuple[str, ...], name: str) -> None:
    # without BTF the section is one program named after it; with BTF, func_info
    # still names the function
    stripped = tmp_path / "nosym.o"
    subprocess.run([LLVM_OBJCOPY, "--strip-symbol=count_packets",
                    str(_compile("legacy", flags)), str(stripped)], check=True)
    obj = load_object(stripped)
    [prog] = obj.programs
    assert (prog.name, prog.section, prog.entry) == (name, "socket", ("socket", 0))
    original = _func(load_object(_compile("legacy", flags)), "count_packets")
    assert obj.functions[prog.entry].insns == original.insns


# -- section names -----------------------------------------------------------------
SECTIONS = [
    ("xdp", "p_xdp", "xdp", "", False),
    ("xdp.frags", "p_xdp_frags", "xdp", "", False),
    ("xdp/devmap", "p_xdp_devmap", "xdp", "devmap", False),
    ("tc", "p_tc", "sched_cls", "", False),
    ("classifier", "p_classifier", "sched_cls", "", False),
    ("tcx/ingress", "p_tcx_ingress", "sched_cls", "ingress", False),
    ("netkit/peer", "p_netkit_peer", "sched_cls", "peer", False),
    ("action", "p_action", "sched_act", "", False),
    ("kprobe/do_unlinkat", "p_kprobe", "kprobe", "do_unlinkat", False),
    ("kretprobe/do_unlinkat", "p_kretprobe", "kprobe", "do_unlinkat", False),
    ("uprobe//bin/bash:readline", "p_uprobe", "kprobe", "/bin/bash:readline", False),
    ("uprobe.s//bin/bash:readline", "p_uprobe_s", "kprobe", "/bin/bash:readline", True),
    ("ksyscall/openat", "p_ksyscall", "kprobe", "openat", False),
    ("usdt", "p_usdt", "kprobe", "", False),
    ("kprobe.multi/tcp_*", "p_kprobe_multi", "kprobe", "tcp_*", False),
    ("tracepoint/syscalls/sys_enter_openat", "p_tracepoint", "tracepoint",
     "syscalls/sys_enter_openat", False),
    ("tp/sched/sched_switch", "p_tp", "tracepoint", "sched/sched_switch", False),
    ("raw_tp/sys_enter", "p_raw_tp", "raw_tracepoint", "sys_enter", False),
    ("raw_tracepoint.w/sys_exit", "p_raw_tp_w", "raw_tracepoint_writable", "sys_exit", False),
    ("tp_btf/sched_switch", "p_tp_btf", "tracing", "sched_switch", False),
    ("fentry/do_unlinkat", "p_fentry", "tracing", "do_unlinkat", False),
    ("fexit.s/do_unlinkat", "p_fexit_s", "tracing", "do_unlinkat", True),
    ("fmod_ret/security_file_open", "p_fmod_ret", "tracing", "security_file_open", False),
    ("iter/task", "p_iter", "tracing", "task", False),
    ("lsm/file_open", "p_lsm", "lsm", "file_open", False),
    ("lsm.s/bprm_committed_creds", "p_lsm_s", "lsm", "bprm_committed_creds", True),
    ("cgroup_skb/ingress", "p_cgroup_skb", "cgroup_skb", "ingress", False),
    ("cgroup/sock_create", "p_cgroup_sock", "cgroup_sock", "sock_create", False),
    ("cgroup/connect4", "p_cgroup_connect4", "cgroup_sock_addr", "connect4", False),
    ("cgroup/dev", "p_cgroup_dev", "cgroup_device", "dev", False),
    ("cgroup/getsockopt", "p_cgroup_sockopt", "cgroup_sockopt", "getsockopt", False),
    ("cgroup/sysctl", "p_cgroup_sysctl", "cgroup_sysctl", "sysctl", False),
    ("socket", "p_socket", "socket_filter", "", False),
    ("sk_skb/stream_verdict", "p_sk_skb", "sk_skb", "stream_verdict", False),
    ("sk_msg", "p_sk_msg", "sk_msg", "", False),
    ("sockops", "p_sockops", "sock_ops", "", False),
    ("struct_ops/tcp_init", "p_struct_ops", "struct_ops", "tcp_init", False),
    ("syscall", "p_syscall", "syscall", "", True),
    ("perf_event", "p_perf_event", "perf_event", "", False),
    ("flow_dissector", "p_flow_dissector", "flow_dissector", "", False),
    ("sk_lookup", "p_sk_lookup", "sk_lookup", "", False),
    ("sk_reuseport", "p_sk_reuseport", "sk_reuseport", "", False),
    ("lwt_xmit", "p_lwt_xmit", "lwt_xmit", "", False),
    ("netfilter", "p_netfilter", "netfilter", "", False),
    ("xdp_legacy_name", "p_legacy", "xdp", "", False),
    ("my_custom_section", "p_unknown", "unknown", "", False),
]


def test_program_types_from_section_names() -> None:
    obj = load_object(_compile("sections"))
    found = [(p.section, p.name, p.prog_type, p.attach, p.sleepable) for p in obj.programs]
    assert sorted(found) == sorted(SECTIONS)
    assert obj.notes == ("section xdp_legacy_name: program type xdp guessed by libbpf < 1.0 "
                         "prefix rules",)


@pytest.mark.parametrize("section, prog_type, attach, sleepable", [
    ("tc/ingress", "sched_cls", "ingress", False),
    ("kprobe.multi", "kprobe", "", False),
    ("kretsyscall/close", "kprobe", "close", False),
    ("usdt.s/lib:prov:name", "kprobe", "lib:prov:name", True),
    ("uretprobe.multi.s/x", "kprobe", "x", True),
    ("xdp.frags/cpumap", "xdp", "cpumap", False),
    ("tp_btf.s/x", "tracing", "x", True),
    ("iter.s/task_file", "tracing", "task_file", True),
    ("freplace/handler", "ext", "handler", False),
    ("struct_ops.s/init", "struct_ops", "init", True),
    ("sk_reuseport/migrate", "sk_reuseport", "migrate", False),
    ("cgroup/recvmsg_unix", "cgroup_sock_addr", "recvmsg_unix", False),
    ("lwt_seg6local", "lwt_seg6local", "", False),
    ("kprobes/x", "kprobe", "s/x", False),  # libbpf 0.x prefix match only
    ("fentryx", "tracing", "x", False),
    (".text.custom", "unknown", "", False),
    ("?raw_tp/sys_enter", "raw_tracepoint", "sys_enter", False),  # not autoloaded
])
def test_classify_table(section: str, prog_type: str, attach: str, sleepable: bool) -> None:
    sec_def = classify(section)
    assert (sec_def.prog_type, sec_def.attach, sec_def.sleepable) == (
        prog_type, attach, sleepable)


# -- line info ---------------------------------------------------------------------
def _objdump_lines(path: Path) -> dict[tuple[str, int], tuple[str, int, str] | None]:
    """(section, slot) -> (file, line, source text) as `llvm-objdump -d -l -S` prints.

    llvm-objdump prints a location only when it changes; an instruction without one
    keeps the last location printed in its section.
    """
    assert LLVM_OBJDUMP is not None
    out = subprocess.run([LLVM_OBJDUMP, "-d", "-l", "-S", "--no-show-raw-insn", str(path)],
                         capture_output=True, text=True, check=True).stdout
    lines: dict[tuple[str, int], tuple[str, int, str] | None] = {}
    section = ""
    current: tuple[str, int, str] | None = None
    pending: tuple[str, int] | None = None
    for text in out.splitlines():
        if match := re.match(r"Disassembly of section (.*):$", text):
            section, current, pending = match.group(1), None, None
        elif match := re.match(r"; (/.*):(\d+)$", text):
            pending = (match.group(1), int(match.group(2)))
            current = (*pending, "")
        elif pending is not None and text.startswith("; "):
            current = (*pending, text[2:])
            pending = None
        elif match := re.match(r"\s+(\d+):\t", text):
            lines[(section, int(match.group(1)))] = current
            pending = None
    return lines


def _reader_lines(obj: BpfObject) -> dict[tuple[str, int], tuple[str, int, str] | None]:
    return {(f.section, i.pc): (i.line.file, i.line.line, i.line.text) if i.line else None
            for f in obj.functions.values() for i in f.insns}


@needs_objdump
@needs_objcopy
@pytest.mark.parametrize("name", ["features", "extras", "legacy", "sections"])
def test_line_info_matches_llvm_objdump(name: str, tmp_path: Path) -> None:
    # without DWARF llvm-objdump takes locations from BTF line info, the same records
    # the reader uses; with DWARF it would show DWARF's slightly different prologue rows
    obj_path = tmp_path / f"{name}.o"
    subprocess.run([LLVM_OBJCOPY, "--strip-debug", str(_compile(name)), str(obj_path)],
                   check=True)
    expected = _objdump_lines(obj_path)
    got = _reader_lines(load_object(obj_path))
    assert got.keys() == expected.keys()
    assert sum(v is not None for v in got.values()) == len(got)
    assert got == expected
    # columns: line_col & 0x3ff, never beyond a source line's length plus one
    for func in load_object(obj_path).functions.values():
        for insn in func.insns:
            assert insn.line is not None and insn.line.column <= len(insn.line.text) + 1


def test_instruction_inherits_last_line_record(features: BpfObject) -> None:
    loop_cb = _func(features, "loop_cb")
    # slot 7 has no record of its own: it shows slot 6's (same source line)
    first, second = loop_cb.insns[0], loop_cb.insns[1]
    assert second.line is first.line
    assert first.line is not None and "misses += index" in first.line.text


# -- linked objects ----------------------------------------------------------------
@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if BPFTOOL is None:
        pytest.skip("bpftool not installed")
    out = tmp_path_factory.mktemp("linked") / "linked.o"
    subprocess.run([BPFTOOL, "gen", "object", str(out), str(_compile("features")),
                    str(_compile("extras"))], check=True, capture_output=True)
    return out


def test_bpftool_linked_object(linked: Path, features: BpfObject, extras: BpfObject) -> None:
    obj = load_object(linked)
    assert {p.name for p in obj.programs} == {p.name for p in features.programs} | {
        p.name for p in extras.programs}
    # .text of the second object is appended to the first: calls and callbacks follow
    global_cb, helper = _func(obj, "global_cb"), _func(obj, "helper_twice")
    assert global_cb.start == _func(features, "timer_cb").end
    relocs = _relocs(_func(obj, "trace_openat"))
    assert ("func_ptr", global_cb.key) in {(r.kind, r.func) for r in relocs}
    assert ("call", helper.key) in {(r.kind, r.func) for r in relocs}
    # .rodata of the second object follows the first: string offsets move with it
    rodata = obj.maps[".rodata"]
    strings = [r.offset for r in relocs if r.kind == "data" and r.map == ".rodata"]
    assert [rodata.data[o:rodata.data.index(b"\0", o)] for o in strings] == [
        b"openat %d", b"second string %d"]
    assert obj.maps["jumps"].prog_slots == ((0, "tail_target"), (5, "tail_target"))
    # functions keep their instructions and source lines through the link
    for name in ("probe_b", "global_cb", "helper_twice"):
        before = _func(features if name == "probe_b" else extras, name)
        after = _func(obj, name)
        assert [(i.opcode, i.line) for i in after.insns] == [
            (i.opcode, i.line) for i in before.insns]


@needs_objdump
def test_linked_object_line_info_matches_llvm_objdump(linked: Path) -> None:
    assert _reader_lines(load_object(linked)) == _objdump_lines(linked)


# -- speed ---------------------------------------------------------------------------
BIG_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
#define PROG(n) \
SEC("xdp") int big_##n(struct xdp_md *ctx) \
{ \
	volatile __u32 s[16] = {}; \
	__u32 acc = n; \
	_Pragma("clang loop unroll(full)") \
	for (int i = 0; i < 1000; i++) \
		acc = acc * 31 + s[i & 15]; \
	return acc & 3; \
}
#define TEN(n) PROG(n##0) PROG(n##1) PROG(n##2) PROG(n##3) PROG(n##4) \
	PROG(n##5) PROG(n##6) PROG(n##7) PROG(n##8) PROG(n##9)
TEN(1) TEN(2) TEN(3)
PROG(40) PROG(41) PROG(42)
"""


def _big_object() -> Path:
    # generated into tests/build (a fixed path, so the compiled object is cached)
    # rather than kept in tests/progs, so the decoder's corpus-wide objdump
    # comparison does not pay for 100,000 instructions twice
    BUILD.mkdir(parents=True, exist_ok=True)
    source = BUILD / "reader_big.bpf.c"
    if not source.exists() or source.read_text() != BIG_SOURCE:
        source.write_text(BIG_SOURCE)
    return compile_bpf(source)


def test_large_object_loads_fast() -> None:
    path = _big_object()
    # the reader's own work, timed without the collector: in the middle of the suite
    # a collection walks everything earlier tests left, which is not the reader's
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        obj = load_object(path)
        load_s = time.process_time() - start
        with ELFFile(path.open("rb")) as elf:
            code = elf.get_section_by_name("xdp").data()
        start = time.process_time()
        decode(code)
        decode_s = time.process_time() - start
    finally:
        gc.enable()
    assert len(obj.programs) == 33
    assert sum(len(f.insns) for f in obj.functions.values()) > 95_000
    # decoding is the floor; everything else the reader does must stay a small
    # multiple of it (a per-instruction pyelftools call would not), and absolute
    # time must stay far from the timeouts CI would hit
    print(f"load {load_s:.3f}s cpu, decode alone {decode_s:.3f}s cpu")
    assert load_s < 3 * decode_s + 0.2, (load_s, decode_s)
    assert load_s < 5.0


def test_reading_leaves_no_cycles_per_instruction(features: BpfObject) -> None:
    # parse_object reads with the cycle collector off: what it builds must be freed by
    # reference counting, but for pyelftools' fixed few hundred objects per file
    def cyclic_garbage(path: Path) -> int:
        gc.collect()
        gc.disable()
        try:
            load_object(path)
            return gc.collect()
        finally:
            gc.enable()

    small, big = _compile("features"), _big_object()
    assert len(load_object(big).functions) > len(features.functions)
    assert cyclic_garbage(big) == cyclic_garbage(small)
    assert gc.isenabled()


# -- errors ----------------------------------------------------------------------------
def _section_offsets(raw: bytes, name: str) -> tuple[int, int, int]:
    """(file offset of the section's data, its size, file offset of its header)."""
    elf = ELFFile(io.BytesIO(raw))
    for index in range(elf.num_sections()):
        sec = elf.get_section(index)
        if sec.name == name:
            header_off = elf["e_shoff"] + index * elf["e_shentsize"]
            return sec["sh_offset"], sec["sh_size"], header_off
    raise AssertionError(f"no section {name}")


def _patched(tmp_path: Path, source: Path, edit) -> Path:
    raw = bytearray(source.read_bytes())
    edit(raw)
    out = tmp_path / "patched.o"
    out.write_bytes(bytes(raw))
    return out


def _expect_error(path: Path, *fragments: str) -> BpfLintError:
    with pytest.raises(BpfLintError) as info:
        load_object(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return info.value


def _insn_offset(raw: bytes, section: str, slot: int) -> int:
    return _section_offsets(raw, section)[0] + slot * 8


def test_not_an_elf(tmp_path: Path) -> None:
    path = tmp_path / "text.o"
    path.write_text("hello\n")
    error = _expect_error(path, "not an ELF")
    assert not isinstance(error, NotBpfError)


def test_missing_file(tmp_path: Path) -> None:
    _expect_error(tmp_path / "absent.o", "cannot read")


@pytest.mark.parametrize("keep", [3, 20, 63, 200, 2000, -100])
def test_truncated(tmp_path: Path, keep: int) -> None:
    raw = _compile("features").read_bytes()
    path = tmp_path / "cut.o"
    path.write_bytes(raw[:keep])
    _expect_error(path)


def test_elf_for_another_machine(tmp_path: Path) -> None:
    clang = find_clang()
    assert clang is not None
    source = tmp_path / "host.c"
    source.write_text("int host_function(int x) { return x + 1; }\n")
    obj = tmp_path / "host.o"
    result = subprocess.run([clang, "-target", "x86_64-linux-gnu", "-c", str(source), "-o",
                             str(obj)], capture_output=True)
    if result.returncode:
        pytest.skip("clang cannot build an x86-64 object here")
    error = _expect_error(obj, "not a BPF object", "EM_X86_64")
    assert isinstance(error, NotBpfError)


def test_section_size_not_multiple_of_8(tmp_path: Path) -> None:
    source = _compile("features")

    def edit(raw: bytearray) -> None:
        _, size, header = _section_offsets(raw, "xdp")
        struct.pack_into("<Q", raw, header + 32, size - 4)  # sh_size

    _expect_error(_patched(tmp_path, source, edit), "section xdp", "multiple of 8")


def test_unknown_opcode(tmp_path: Path) -> None:
    def edit(raw: bytearray) -> None:
        raw[_insn_offset(raw, "xdp", 1)] = 0xFF

    _expect_error(_patched(tmp_path, _compile("features"), edit), "section xdp",
                  "instruction 1", "unknown")


def _branch_slot(obj: BpfObject, name: str) -> int:
    return next(i.pc for i in _func(obj, name).insns if i.is_conditional_jump)


@pytest.mark.parametrize("target, fragment", [
    (10_000, "out of range"),
    (None, "out of range"),  # into the next function of the same section
    (5, "inside an ld_imm64"),  # probe_a's map ld_imm64 occupies slots 4 and 5
])
def test_bad_jump_targets(tmp_path: Path, features: BpfObject, target, fragment) -> None:
    slot = _branch_slot(features, "probe_a")
    if target is None:
        target = _func(features, "probe_b").start + 1
    assert features.function_named("probe_a").insns[4].is_ld_imm64

    def edit(raw: bytearray) -> None:
        struct.pack_into("<h", raw, _insn_offset(raw, "kprobe/do_unlinkat", slot) + 2,
                         target - slot - 1)

    _expect_error(_patched(tmp_path, _compile("features"), edit), "section kprobe/do_unlinkat",
                  "probe_a", f"instruction {slot}", fragment)


@pytest.mark.parametrize("imm, fragment", [(1000, "out of range"),
                                           (3, "not the start of a function")])
def test_bad_call_targets(tmp_path: Path, imm: int, fragment: str) -> None:
    # global_twice's first instruction calls add_one with a pc-relative imm
    def edit(raw: bytearray) -> None:
        struct.pack_into("<i", raw, _insn_offset(raw, ".text", 0) + 4, imm)

    _expect_error(_patched(tmp_path, _compile("features"), edit), "section .text",
                  "instruction 0", fragment)


def _btf_blob(types: bytes, strings: bytes) -> bytes:
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types),
                         len(strings))
    return header + types + strings


def _btf_type(name_off: int, kind: int, vlen: int, size_or_type: int) -> bytes:
    return struct.pack("<III", name_off, (kind << 24) | vlen, size_or_type)


INT_U32 = _btf_type(1, 1, 0, 4) + struct.pack("<I", 32)
BTF_STRINGS = b"\0u32\0a\0b\0"


@pytest.mark.parametrize("types, fragment", [
    (INT_U32 + _btf_type(0, 2, 0, 99), "type id 99, out of range"),
    (INT_U32 + _btf_type(5, 8, 0, 3) + _btf_type(7, 8, 0, 2), "reference cycle"),
    (INT_U32 + _btf_type(0, 2, 0, 2), "reference cycle"),  # pointer to itself
    (INT_U32 + _btf_type(0, 3, 0, 0) + struct.pack("<III", 2, 1, 4), "reference cycle"),
    (INT_U32 + _btf_type(0, 4, 2, 8) + struct.pack("<III", 1, 1, 0), "past the end"),
    (INT_U32 + _btf_type(0, 25, 0, 0), "unknown kind 25"),
    (INT_U32 + _btf_type(500, 8, 0, 1), "string offset 500 out of range"),
])
def test_broken_btf_types(types: bytes, fragment: str) -> None:
    with pytest.raises(BtfError, match=fragment):
        parse_btf(_btf_blob(types, BTF_STRINGS))


def test_btf_every_kind_parses() -> None:
    u32 = struct.Struct("<I")
    types = b"".join([
        INT_U32,                                                      # 1 INT
        _btf_type(0, 2, 0, 1),                                        # 2 PTR
        _btf_type(0, 3, 0, 0) + struct.pack("<III", 1, 1, 4),         # 3 ARRAY u32[4]
        _btf_type(5, 4, 1, 8) + struct.pack("<III", 7, 1, 0),         # 4 STRUCT
        _btf_type(0, 5, 1, 4) + struct.pack("<III", 7, 1, 0),         # 5 UNION
        _btf_type(0, 6, 1, 4) + struct.pack("<Ii", 5, -1),            # 6 ENUM
        _btf_type(7, 7, 0, 0),                                        # 7 FWD
        _btf_type(5, 8, 0, 4),                                        # 8 TYPEDEF
        _btf_type(0, 9, 0, 1),                                        # 9 VOLATILE
        _btf_type(0, 10, 0, 9),                                       # 10 CONST
        _btf_type(0, 11, 0, 2),                                       # 11 RESTRICT
        _btf_type(0, 13, 1, 1) + struct.pack("<II", 5, 1),            # 12 FUNC_PROTO
        _btf_type(7, 12, 1, 12),                                      # 13 FUNC (global)
        _btf_type(5, 14, 0, 1) + u32.pack(1),                         # 14 VAR
        _btf_type(1, 15, 1, 4) + struct.pack("<III", 14, 0, 4),       # 15 DATASEC "u32"
        _btf_type(0, 16, 0, 8),                                       # 16 FLOAT
        _btf_type(5, 17, 0, 4) + struct.pack("<i", -1),               # 17 DECL_TAG
        _btf_type(7, 18, 0, 1),                                       # 18 TYPE_TAG
        _btf_type(0, 19, 1, 8) + struct.pack("<III", 5, 1, 2),        # 19 ENUM64
    ])
    btf = parse_btf(_btf_blob(types, BTF_STRINGS))
    assert [t.kind for t in btf.types[1:]] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 12, 14,
                                               15, 16, 17, 18, 19]
    assert [btf.size_of(i) for i in (1, 2, 3, 4, 8, 10, 16, 18, 19)] == [
        4, 8, 16, 8, 8, 4, 8, 4, 8]
    assert btf.datasec("u32") is btf.types[15] and btf.types[15].vars[0].type_id == 14
    assert btf.types[4].members[0].name == "b" and btf.types[13].name == "b"


def test_btf_self_reference_through_struct_is_fine() -> None:
    # struct node { struct node *next; }: the cycle passes through a struct
    types = (INT_U32 + _btf_type(5, 4, 1, 8) + struct.pack("<III", 7, 3, 0)
             + _btf_type(0, 2, 0, 2))
    btf = parse_btf(_btf_blob(types, BTF_STRINGS))
    assert btf.size_of(2) == 8 and btf.type(2).members[0].name == "b"


@needs_objcopy
@pytest.mark.parametrize("types, fragment", [
    (INT_U32 + _btf_type(5, 8, 0, 3) + _btf_type(7, 8, 0, 2), "reference cycle"),
    (INT_U32 + _btf_type(0, 2, 0, 42), "out of range"),
])
def test_broken_btf_rejects_the_object(tmp_path: Path, types: bytes, fragment: str) -> None:
    blob = tmp_path / "bad.btf"
    blob.write_bytes(_btf_blob(types, BTF_STRINGS))
    out = tmp_path / "badbtf.o"
    subprocess.run([LLVM_OBJCOPY, "--remove-section=.BTF.ext", "--remove-section=.rel.BTF",
                    f"--update-section=.BTF={blob}", str(_compile("legacy")), str(out)],
                   check=True)
    _expect_error(out, "broken BTF", fragment)


@pytest.mark.parametrize("section, offset, value, fragment", [
    (".BTF", 0, b"\x00\x00", "bad magic"),
    (".BTF", 20, struct.pack("<I", 0x7FFFFFFF), "past the end"),  # str_len
    (".BTF.ext", 0, b"\x00\x00", "bad magic"),
    (".BTF.ext", 20, struct.pack("<I", 0x7FFFFFFF), "line_info extends past"),
])
def test_broken_btf_headers(tmp_path: Path, section: str, offset: int, value: bytes,
                            fragment: str) -> None:
    def edit(raw: bytearray) -> None:
        start = _section_offsets(raw, section)[0] + offset
        raw[start:start + len(value)] = value

    _expect_error(_patched(tmp_path, _compile("features"), edit), "broken BTF", fragment)


def test_line_info_outside_its_section(tmp_path: Path, features: BpfObject) -> None:
    # move the first line_info record of the first block far past its section's end
    def edit(raw: bytearray) -> None:
        start = _section_offsets(raw, ".BTF.ext")[0]
        hdr_len, _, _, line_off = struct.unpack_from("<IIII", raw, start + 4)
        first_record = start + hdr_len + line_off + 4 + 8
        struct.pack_into("<I", raw, first_record, 0x100000)

    _expect_error(_patched(tmp_path, _compile("features"), edit), "broken BTF", "line info")


def _btf_ext(rec_size: int, blocks: list[tuple[int, list[tuple[int, int, int, int]]]]) -> bytes:
    """A .BTF.ext holding only line info: (section name offset, records) blocks, each
    record (insn_off, file name offset, text offset, line << 10 | column) padded to
    ``rec_size`` bytes."""
    area = struct.pack("<I", rec_size)
    for name_off, records in blocks:
        area += struct.pack("<II", name_off, len(records))
        area += b"".join(struct.pack("<IIII", *record).ljust(rec_size, b"\xff")
                         for record in records)
    return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, len(area)) + area


@pytest.mark.parametrize("rec_size", [16, 24])
def test_btf_ext_line_records_ordered_stably(rec_size: int) -> None:
    strings = b"\0.text\0a.c\0x = 1;\0y = 2;\0"
    name, file, x, y = 1, 7, 11, 18
    # two blocks for one section, out of order, two records at offset 16
    at_x, at_y = 3 << 10 | 5, 4 << 10  # line 3 column 5, line 4 column 0
    blocks = [(name, [(16, file, x, at_x), (0, file, y, at_y)]),
              (name, [(16, file, y, at_y), (8, file, x, at_x)])]
    ext = parse_btf_ext(_btf_ext(rec_size, blocks), strings)
    table = ext.line_info[".text"]
    assert table.offsets == (0, 8, 16, 16) and table.slots == (0, 1, 2, 2)
    assert [(s.file, s.line, s.column, s.text) for s in table.sources] == [
        ("a.c", 4, 0, "y = 2;"), ("a.c", 3, 5, "x = 1;"), ("a.c", 3, 5, "x = 1;"),
        ("a.c", 4, 0, "y = 2;")]
    assert table.sources[1] is table.sources[2]  # one SourceLine per place


def test_btf_ext_bad_string_named() -> None:
    with pytest.raises(BtfError, match="string offset 99 out of range"):
        parse_btf_ext(_btf_ext(16, [(1, [(0, 1, 1, 0), (8, 99, 1, 0)])]), b"\0.text\0")


def test_relocation_on_a_plain_instruction(tmp_path: Path, features: BpfObject) -> None:
    # point xdp_entry's map relocation at the mov after the ld_imm64
    def edit(raw: bytearray) -> None:
        start, size, _ = _section_offsets(raw, ".relxdp")
        offset, = struct.unpack_from("<Q", raw, start)
        struct.pack_into("<Q", raw, start, offset + 16)

    _expect_error(_patched(tmp_path, _compile("features"), edit), "section xdp",
                  "does not point to a call or ld_imm64")


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1,
                      max_size=8),
       cut=st.one_of(st.none(), st.integers(min_value=0)),
       name=st.sampled_from(["features", "legacy", "extras"]))
def test_corrupted_objects_give_one_line_errors(tmp_path: Path, flips, cut, name) -> None:
    raw = bytearray(_compile(name).read_bytes())
    for position, value in flips:
        raw[position % len(raw)] ^= value or 1
    if cut is not None:
        raw = raw[:cut % len(raw)]
    path = tmp_path / "fuzz.o"
    path.write_bytes(bytes(raw))
    try:
        load_object(path)
    except BpfLintError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)


def test_a_name_with_a_newline_stays_on_one_line(tmp_path: Path) -> None:
    # Hypothesis found it: a corrupt section name holding "\n" made a two-line error
    error = BpfLintError(f"{tmp_path / 'x.o'}: section 'a\nb': bad")
    assert "\n" not in str(error) and "a\\nb" in str(error)

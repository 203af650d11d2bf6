"""Load one program of a BpfObject into the kernel, as libbpf would (measure, tests).

The entry function and every subprogram it reaches are linked into one
instruction array (calls and callback addresses re-aimed at the new layout), the
maps it uses are created as declared (global-data sections as one-entry arrays
holding their initial bytes, frozen when read-only), and map references become
map fds. Never used by analyze/check.
"""

from __future__ import annotations

import os
import struct
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from bpflint.errors import BpfLintError
from bpflint.isa.insn import Insn
from bpflint.isa.opcodes import PSEUDO_FUNC, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE
from bpflint.kernel import btf_blob
from bpflint.kernel import syscall as sc
from bpflint.obj.model import BpfObject, FuncKey, MapDef, Program

# libbpf program type names (and SEC() spellings) -> kernel prog type
_PROG_TYPE_ALIASES = {"tc": "sched_cls", "classifier": "sched_cls", "action": "sched_act",
                      "socket": "socket_filter", "raw_tp": "raw_tracepoint",
                      "raw_tracepoint": "raw_tracepoint", "tp": "tracepoint",
                      "uprobe": "kprobe", "kretprobe": "kprobe"}

# Map types whose creation needs BTF this loader does not build.
_NEEDS_BTF = {"sk_storage", "inode_storage", "task_storage", "cgrp_storage", "struct_ops",
              "arena", "array_of_maps", "hash_of_maps"}


@dataclass(frozen=True)
class LoadedProgram:
    fd: int
    map_fds: dict[str, int]
    stats: sc.VerifierStats
    prog_type: str

    def close(self) -> None:
        for fd in (self.fd, *self.map_fds.values()):
            sc.close(fd)

    def __enter__(self) -> LoadedProgram:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def kernel_prog_type(program: Program) -> str:
    name = _PROG_TYPE_ALIASES.get(program.prog_type, program.prog_type)
    if name not in sc.PROG_TYPES:
        raise BpfLintError(f"cannot load {program.name}: program type "
                           f"{program.prog_type!r} is not supported by the loader")
    if name in ("tracing", "lsm", "ext", "struct_ops"):
        raise BpfLintError(f"cannot load {program.name}: {name} programs need an attach "
                           "target's BTF id, which the loader does not resolve")
    return name


def _reachable(obj: BpfObject, entry: FuncKey) -> list[FuncKey]:
    order = [entry]
    seen = {entry}
    queue = deque(order)
    while queue:
        func = obj.functions[queue.popleft()]
        for insn in func.insns:
            reloc = insn.reloc
            if reloc is not None and reloc.kind in ("call", "func_ptr") and reloc.func:
                if reloc.func not in seen:
                    seen.add(reloc.func)
                    order.append(reloc.func)
                    queue.append(reloc.func)
    return order


def _encode(insn: Insn, imm: int | None = None, src: int | None = None) -> bytes:
    value = insn.imm if imm is None else imm
    s = insn.src if src is None else src
    regs = (s << 4) | insn.dst
    if insn.is_ld_imm64:
        lo, hi = value & 0xFFFFFFFF, (value >> 32) & 0xFFFFFFFF
        return struct.pack("<BBhI", insn.opcode, regs, insn.off, lo) + struct.pack(
            "<BBhI", 0, 0, 0, hi)
    return struct.pack("<BBhi", insn.opcode, regs, insn.off, value)


def _create_map(program: Program, mdef: MapDef) -> int:
    if mdef.type_name in _NEEDS_BTF:
        raise BpfLintError(f"cannot load {program.name}: map {mdef.name!r} of type "
                           f"{mdef.type_name} needs BTF the loader does not provide")
    if mdef.section not in (".maps", "maps"):
        # global data: one-entry array holding the section's initial bytes
        # read-only data as libbpf creates it: frozen and read-only to programs, so
        # the verifier reads its (loader-set) values as constants
        flags = mdef.flags | (sc.BPF_F_RDONLY_PROG if mdef.read_only else 0)
        fd = sc.map_create(sc.MAP_TYPES["array"], 4, max(1, mdef.value_size), 1,
                           flags, mdef.name)
        if mdef.data:
            sc.map_update(fd, bytes(4), mdef.data.ljust(mdef.value_size, b"\0"))
        if mdef.read_only:
            sc.map_freeze(fd)
        return fd
    key_size, value_size, max_entries = mdef.key_size, mdef.value_size, mdef.max_entries
    if mdef.type_name == "perf_event_array":
        # as libbpf does: one slot per possible CPU unless the object says, and the
        # u32 key and value (a CPU index, a perf event fd) a definition may leave out
        max_entries = max_entries or possible_cpus()
        key_size, value_size = key_size or 4, value_size or 4
    try:
        return sc.map_create(mdef.type, key_size, value_size, max_entries, mdef.flags,
                             mdef.name)
    except sc.BpfSyscallError as exc:
        # name the type: a kernel older than the map type answers a bare EINVAL
        raise sc.BpfSyscallError(f"{exc} (a {mdef.type_name} map, type {mdef.type})",
                                 exc.errno) from None


def possible_cpus() -> int:
    """CPUs the kernel may bring up (/sys/devices/system/cpu/possible, "0-N")."""
    try:
        text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    except OSError:
        return os.cpu_count() or 1
    count = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return max(count, 1)


def load_program(obj: BpfObject, program: Program, log_level: int = sc.BPF_LOG_STATS
                 ) -> LoadedProgram:
    """Link, create maps, load; the caller closes the result."""
    prog_type = kernel_prog_type(program)
    funcs = _reachable(obj, program.entry)
    base: dict[FuncKey, int] = {}
    slot = 0
    for key in funcs:
        base[key] = slot
        slot += obj.functions[key].nslots
    map_fds: dict[str, int] = {}
    try:
        code = bytearray()
        for key in funcs:
            func = obj.functions[key]
            for insn in func.insns:
                new_pc = base[key] + insn.pc - func.start
                code += _relocated(obj, program, insn, new_pc, base, map_fds)
        flags = sc.BPF_F_SLEEPABLE if program.sleepable else 0
        # func_info (over a minimal BTF) marks every function, which the verifier
        # demands once a function's address is taken (bpf_loop and friends).
        btf_fd = sc.btf_load(btf_blob.func_btf(len(funcs)))
        try:
            loaded = sc.prog_load(sc.PROG_TYPES[prog_type], bytes(code), obj.license or "GPL",
                                  name=program.name, log_level=log_level, prog_flags=flags,
                                  prog_btf_fd=btf_fd,
                                  func_info=btf_blob.func_info([base[k] for k in funcs]),
                                  func_info_rec_size=btf_blob.FUNC_INFO_REC_BYTES)
        finally:
            sc.close(btf_fd)
    except BaseException:
        for fd in map_fds.values():
            sc.close(fd)
        raise
    return LoadedProgram(loaded.fd, map_fds, loaded.stats, prog_type)


def _relocated(obj: BpfObject, program: Program, insn: Insn, new_pc: int,
               base: dict[FuncKey, int], map_fds: dict[str, int]) -> bytes:
    reloc = insn.reloc
    if reloc is None:
        return _encode(insn)
    if reloc.kind in ("call", "func_ptr"):
        if reloc.func is None or reloc.func not in base:
            raise BpfLintError(f"cannot load {program.name}: unresolved call to {reloc.symbol}")
        func = obj.functions[reloc.func]
        rel = base[reloc.func] - new_pc - 1
        if reloc.kind == "call":
            return _encode(insn, imm=rel)
        return _encode(insn, imm=rel & 0xFFFFFFFF, src=PSEUDO_FUNC) if func else b""
    if reloc.kind in ("map", "data"):
        name = reloc.map or reloc.symbol
        mdef = obj.maps.get(name)
        if mdef is None:
            raise BpfLintError(f"cannot load {program.name}: unknown map {name!r}")
        if name not in map_fds:
            map_fds[name] = _create_map(program, mdef)
        fd = map_fds[name]
        if reloc.kind == "map":
            return _encode(insn, imm=fd, src=PSEUDO_MAP_FD)
        return _encode(insn, imm=fd | ((reloc.offset & 0xFFFFFFFF) << 32), src=PSEUDO_MAP_VALUE)
    raise BpfLintError(f"cannot load {program.name}: {reloc.kind} {reloc.symbol} "
                       "(kfunc and extern resolution is not supported by the loader)")

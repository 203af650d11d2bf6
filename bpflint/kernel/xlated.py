"""The translated code of a loaded program as the object model the engine reads.

What the kernel hands back (``bpf_prog_info.xlated_prog_insns``) is the program after
the verifier: what runs (before the JIT). It differs from the ELF object's code, and
this module turns it back into plain BPF the decoder accepts:

- helper calls carry the helper's kernel address, as an offset from
  ``__bpf_call_base``, not its id (``bpftool`` resolves them through /proc/kallsyms
  too). Map operations call the map type's own function (``htab_map_lookup_elem``,
  ``trie_lookup_elem``): each is priced as the helper it implements, with its map.
  A kernel function no helper is known for is priced as an unknown kfunc would be
  (the cost table's default, named in a warning). Without kallsyms addresses
  (``kptr_restrict``), every helper is such a function;
- ``bpf_tail_call`` reads back as a call of helper 12, as in the object;
- bpf-to-bpf calls keep their relative target in ``off`` (``imm`` holds the
  subprogram's index); callback addresses (``ld_imm64`` src 4) keep it in ``imm``;
- maps are named by id (``ld_imm64`` src 1 or 2, ``imm`` the map id, the second half
  the offset into the value);
- kernel-internal encodings: ``BPF_PROBE_MEM*`` loads (read back as plain loads by
  the kernel, checked here again), the per-CPU address move (``mov`` with offset -1,
  a plain move here), ``nospec`` speculation barriers (a ``ja +0`` here, noted), and
  the hidden register ``AX`` (r11) of the ``may_goto`` expansion, rewritten back into
  one ``may_goto`` and three no-op jumps: the same instruction count on every path.
  Any other use of r11 (constant blinding) makes the program unreadable here.

Context accesses are rewritten into loads from the kernel's own structures
(``xdp_buff``, ``sk_buff``): the model gives the program a type of its own
(:data:`TRANSLATED_PREFIX` + the kernel's type), for which a context load is an
unknown value, never a packet pointer at the wrong offset.
"""

from __future__ import annotations

import bisect
import functools
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bpflint.errors import BpfLintError
from bpflint.isa.helper_ids import HELPER_NAMES
from bpflint.isa.insn import INSN_SIZE, DecodeError, Insn, check_jumps, decode
from bpflint.isa.opcodes import (
    PSEUDO_FUNC,
    PSEUDO_KFUNC_CALL,
    PSEUDO_MAP_FD,
    PSEUDO_MAP_VALUE,
    Opcode,
)
from bpflint.kernel.introspect import LoadedMap, LoadedProgram
from bpflint.obj.btf import KIND_FUNC, Btf, BtfError, parse_btf, read_string
from bpflint.obj.model import BpfObject, FuncKey, Function, MapDef, Program, Reloc, SourceLine
from bpflint.obj.sections import map_type_name

# the engine's type for translated code: no context field is a known pointer
TRANSLATED_PREFIX = "translated:"
SECTION = "xlated"  # code "sections" of translated programs: xlated/<id>

_HELPER_IDS = {name: index for index, name in enumerate(HELPER_NAMES) if index}
TAIL_CALL = _HELPER_IDS["tail_call"]
_REG_AX = 11
_ADDR_PERCPU = -1  # mov's offset for BPF_MOV64_PERCPU_REG
_OPCODES = tuple(Opcode(op) for op in range(256))
_DATA_SUFFIXES = (".rodata", ".data", ".bss", ".kconfig")


class TranslatedError(BpfLintError):
    """Translated code this module cannot turn back into plain BPF."""


@dataclass(frozen=True)
class Kallsyms:
    """Kernel text symbols by address, and ``__bpf_call_base``'s address (0: hidden)."""

    call_base: int
    addresses: tuple[int, ...]
    names: tuple[str, ...]

    def name_at(self, address: int) -> str | None:
        index = bisect.bisect_left(self.addresses, address)
        if index < len(self.addresses) and self.addresses[index] == address:
            return self.names[index]
        return None


@functools.cache
def kallsyms(path: str = "/proc/kallsyms") -> Kallsyms:
    entries: dict[int, str] = {}
    base = 0
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return Kallsyms(0, (), ())
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[1] not in "tTwW":
            continue
        address = int(parts[0], 16)
        if not address:  # kptr_restrict hides them all
            return Kallsyms(0, (), ())
        if parts[2] == "__bpf_call_base":
            base = address
        entries.setdefault(address, parts[2])
    ordered = sorted(entries.items())
    return Kallsyms(base, tuple(a for a, _ in ordered), tuple(n for _, n in ordered))


# kernel functions that implement a helper under another name (per program type, per
# map type): the helper they are priced as
_SUFFIX_HELPERS = (("lookup_percpu_elem", "map_lookup_percpu_elem"),
                   ("lookup_elem", "map_lookup_elem"), ("update_elem", "map_update_elem"),
                   ("delete_elem", "map_delete_elem"), ("push_elem", "map_push_elem"),
                   ("pop_elem", "map_pop_elem"), ("peek_elem", "map_peek_elem"),
                   ("map_redirect", "redirect_map"))
_ALIASES = {"skb_event_output": "perf_event_output", "xdp_event_output": "perf_event_output",
            "probe_read_compat": "probe_read", "probe_read_compat_str": "probe_read_str"}
# LD_ABS / LD_IND become calls of these (net/core/filter.c, bpf_gen_ld_abs): each call
# is turned back into the LD_IND it came from, so it is priced as the instruction class
# calibration measured (which went through the same rewrite); opcode by load size
_LD_ABS_HELPERS = {f"bpf_skb_load_helper_{bits}{tail}": opcode
                   for bits, opcode in ((8, 0x50), (16, 0x48), (32, 0x40))
                   for tail in ("", "_no_cache")}
_VARIANT_SUFFIXES = ("_raw_tp", "_tp", "_pe", "_tracing", "_sleepable")
_VARIANT_PREFIXES = ("xdp_", "tc_", "skb_", "sock_addr_", "sock_ops_", "sk_")


def helper_for(symbol: str) -> int | None:
    """The helper id a kernel function implements, None if it is none known."""
    name = symbol.removeprefix("bpf_")
    for candidate in (name, _ALIASES.get(name, "")):
        if candidate in _HELPER_IDS:
            return _HELPER_IDS[candidate]
    for suffix in _VARIANT_SUFFIXES:
        if name.endswith(suffix) and name[:-len(suffix)] in _HELPER_IDS:
            return _HELPER_IDS[name[:-len(suffix)]]
    for prefix in _VARIANT_PREFIXES:
        if name.startswith(prefix) and name[len(prefix):] in _HELPER_IDS:
            return _HELPER_IDS[name[len(prefix):]]
    if name.startswith("for_each_") and name.endswith("_elem"):  # bpf_for_each_array_elem
        return _HELPER_IDS["for_each_map_elem"]
    for suffix, helper in _SUFFIX_HELPERS:
        if name.endswith(suffix):
            return _HELPER_IDS[helper]
    return None


@dataclass(frozen=True)
class Translated:
    obj: BpfObject
    program: Program
    notes: tuple[str, ...]


def _slots(code: bytes) -> list[list[int]]:
    """Each 8-byte slot as [opcode, dst, src, off, imm]."""
    out = []
    for index in range(len(code) // INSN_SIZE):
        op, regs, off, imm = struct.unpack_from("<BBhi", code, index * INSN_SIZE)
        out.append([op, regs & 0x0F, regs >> 4, off, imm])
    return out


def _pack(slots: list[list[int]]) -> bytes:
    return b"".join(struct.pack("<BBhi", op, (src << 4) | dst, off, imm)
                    for op, dst, src, off, imm in slots)


_JA0 = [0x05, 0, 0, 0, 0]


def _normalize(slots: list[list[int]], notes: list[str]) -> None:
    """Kernel-internal encodings back to the plain ISA, in place (same slot count)."""
    barriers = percpu = timed = 0
    index = 0
    while index < len(slots):
        op, dst, src, off, imm = slots[index]
        cls, mode = op & 0x07, op & 0xE0
        if op == 0x18:  # ld_imm64: its second half is data
            index += 2
            continue
        if _REG_AX in (dst, src):
            length = _may_goto_at(slots, index)
            if not length:
                raise TranslatedError(f"instruction {index} uses the kernel's hidden "
                                      "register AX (constant blinding, bpf_jit_harden?)")
            # one may_goto where the counter is tested, no-op jumps for the rest: the
            # same count on the exit path (2) and on the usual one (4, timed: 5)
            target = index + 1 + slots[index + 1][3] + 1
            rewritten = [list(_JA0) for _ in range(length)]
            rewritten[1] = [0xE5, 0, 0, target - (index + 1) - 1, 0]
            if length == 7:  # the timed form's usual path skips its refresh call
                rewritten[3] = [0x05, 0, 0, 2, 0]
                timed += 1
            slots[index:index + length] = rewritten
            index += length
            continue
        if cls == 0x01:  # LDX: BPF_PROBE_MEM (0x20), _MEMSX (0x40), _MEM32 (0xa0) ...
            if mode not in (0x60, 0x80):
                slots[index][0] = (op & 0x1F) | (0x80 if mode == 0x40 else 0x60)
        elif cls in (0x02, 0x03):  # ST, STX
            if op == 0xC2:  # BPF_ST | BPF_NOSPEC: a speculation barrier
                slots[index] = list(_JA0)
                barriers += 1
            elif mode == 0xA0:  # BPF_PROBE_MEM32 (arena)
                slots[index][0] = (op & 0x1F) | 0x60
            elif mode == 0xE0:  # BPF_PROBE_ATOMIC (arena)
                slots[index][0] = (op & 0x1F) | 0xC0
        elif op == 0xBF and off == _ADDR_PERCPU:  # dst = this CPU's copy of src
            slots[index][3] = 0
            percpu += 1
        index += 1
    if barriers:
        notes.append(f"{barriers} speculation barrier(s) (nospec) priced as a jump: "
                     "their real cost is not in the cost table")
    if timed:
        notes.append(f"{timed} timed may_goto(s): each refresh of the counter "
                     "(arch_bpf_timed_may_goto, once per 65535 iterations) is not priced")
    if percpu:
        notes.append(f"{percpu} per-CPU address move(s) priced as register moves")


def may_goto_model(code: bytes) -> str | None:
    """How the kernel that translated ``code`` bounds may_goto loops: "timed" or
    "count" from the form of its may_goto expansions (bpflint/cost/may_goto.py),
    None when the code has none."""
    slots = _slots(code[:len(code) - len(code) % INSN_SIZE])
    index = 0
    while index < len(slots):
        length = _may_goto_at(slots, index)
        if length:
            return "timed" if length == 7 else "count"
        index += 2 if slots[index][0] == 0x18 else 1
    return None


def _may_goto_at(slots: list[list[int]], index: int) -> int:
    """The length of the verifier's may_goto expansion at ``index``, 0 if none there:

        AX = *(u64 *)(r10 + s); if AX == 0 goto X; AX -= 1; *(u64 *)(r10 + s) = AX

    and since 6.15 the timed form, which refreshes the counter every 65535 iterations
    until 250 ms have passed:

        AX = *(u64 *)(r10 + s); if AX == 0 goto X; AX -= 1; if AX != 0 goto +2;
        AX = s; call arch_bpf_timed_may_goto; *(u64 *)(r10 + s) = AX
    """
    def at(offset: int) -> list[int]:
        return slots[index + offset] if index + offset < len(slots) else [0, 0, 0, 0, 0]

    load, test, dec = at(0), at(1), at(2)
    if not (load[0] == 0x79 and load[1] == _REG_AX and load[2] == 10
            and test[0] == 0x15 and test[1] == _REG_AX and test[4] == 0
            and dec[0] == 0x17 and dec[1] == _REG_AX and dec[4] == 1):
        return 0
    store = at(3)
    if store[0] == 0x7B and store[1] == 10 and store[2] == _REG_AX and store[3] == load[3]:
        return 4
    again, arg, call, store = at(3), at(4), at(5), at(6)
    if again[0] == 0x55 and again[1] == _REG_AX and again[3] == 2 and again[4] == 0 \
            and arg[0] == 0xB7 and arg[1] == _REG_AX and call[0] == 0x85 \
            and store[0] == 0x7B and store[2] == _REG_AX and store[3] == load[3]:
        return 7
    return 0


def _map_names(maps: Mapping[int, LoadedMap]) -> dict[int, str]:
    """A name per map id, unique inside one program (kernel names repeat and may be
    empty)."""
    counts: dict[str, int] = {}
    for loaded in maps.values():
        counts[loaded.name] = counts.get(loaded.name, 0) + 1
    return {map_id: loaded.name if loaded.name and counts[loaded.name] == 1
            else f"{loaded.name or 'map'}#{map_id}" for map_id, loaded in maps.items()}


def _map_def(name: str, loaded: LoadedMap) -> MapDef:
    data_like = any(suffix in loaded.name for suffix in _DATA_SUFFIXES)
    section = next((s for s in _DATA_SUFFIXES if s in loaded.name), ".maps") \
        if data_like else ".maps"
    # constants only from a map the loader froze and programs cannot write: its bytes
    # are what every run reads
    read_only = bool(loaded.data) and loaded.frozen
    return MapDef(name=name, type=loaded.type, type_name=map_type_name(loaded.type),
                  key_size=loaded.key_size, value_size=loaded.value_size,
                  max_entries=loaded.max_entries, flags=loaded.flags, section=section,
                  data=loaded.data if read_only else b"", read_only=read_only)


@dataclass(frozen=True)
class Loaded:
    """One loaded program with what its translation needs."""

    prog: LoadedProgram
    btf: bytes | None


def translate(prog: LoadedProgram, maps: Mapping[int, LoadedMap], btf_blob: bytes | None,
              symbols: Kallsyms, section: str, *, tail_targets: Sequence[Loaded] = (),
              prog_slots: Mapping[int, Sequence[tuple[int, int]]] | None = None
              ) -> Translated:
    """The model of one loaded program; ``section`` is what budgets match it by.

    ``tail_targets`` are the programs its prog arrays hold (and theirs), and
    ``prog_slots`` each prog array's (slot, program id) entries as they are now: the
    engine follows the tail calls into them as it follows statically initialised
    prog arrays in objects. ``maps`` holds every map of all of them.
    """
    notes: list[str] = []
    map_names = _map_names(maps)
    members = [Loaded(prog, btf_blob), *tail_targets]
    program_names = _program_names(members)
    functions: dict[FuncKey, Function] = {}
    programs: list[Program] = []
    has_btf = False
    for index, member in enumerate(members):
        code_section = f"{SECTION}/{member.prog.id}"
        funcs, member_btf = _functions(member, code_section, map_names, symbols, notes,
                                       entry=index == 0)
        functions.update(funcs)
        has_btf = has_btf or member_btf
        programs.append(Program(program_names[member.prog.id],
                                section if index == 0 else member.prog.type,
                                TRANSLATED_PREFIX + member.prog.type, "", (code_section, 0)))
    slots_by_name = {map_names[map_id]: tuple((slot, program_names[pid])
                                              for slot, pid in entries if pid in program_names)
                     for map_id, entries in (prog_slots or {}).items() if map_id in map_names}
    map_defs = {}
    for map_id, loaded in maps.items():
        mapdef = _map_def(map_names[map_id], loaded)
        if mapdef.name in slots_by_name:
            mapdef = replace(mapdef, prog_slots=slots_by_name[mapdef.name])
        map_defs[mapdef.name] = mapdef
    obj = BpfObject(path=f"kernel:prog/{prog.id}", functions=functions,
                    programs=tuple(programs), maps=map_defs, has_btf=has_btf,
                    license="GPL", notes=tuple(notes))
    return Translated(obj, programs[0], tuple(dict.fromkeys(notes)))


def _program_names(members: Sequence[Loaded]) -> dict[int, str]:
    """Unique names: the engine finds tail-call targets by name."""
    names: dict[int, str] = {}
    seen: set[str] = set()
    for member in members:
        name = _entry_name(member.prog, _parse_btf(member.btf, []))
        if name in seen:
            name = f"{name}#{member.prog.id}"
        seen.add(name)
        names[member.prog.id] = name
    return names


def _entry_name(prog: LoadedProgram, btf: Btf | None) -> str:
    """The kernel keeps 15 characters of a name, BTF the whole (a loader's own BTF may
    name functions otherwise: then the kernel's name stands)."""
    full = _function_names(prog, btf, len(prog.xlated) // INSN_SIZE).get(0, "")
    return full if prog.name and full.startswith(prog.name) else prog.name or f"prog{prog.id}"


def _parse_btf(blob: bytes | None, notes: list[str]) -> Btf | None:
    if not blob:
        return None
    try:
        return parse_btf(blob)
    except BtfError as exc:
        notes.append(f"its BTF is unreadable ({exc}): no function names or source lines")
        return None


def _functions(member: Loaded, code_section: str, map_names: Mapping[int, str],
               symbols: Kallsyms, notes: list[str], entry: bool
               ) -> tuple[dict[FuncKey, Function], bool]:
    prog = member.prog
    where = "" if entry else f"tail-call target {prog.id} {prog.name}: "
    if not prog.xlated:
        raise TranslatedError(f"{where}the kernel returned no translated instructions")
    if len(prog.xlated) % INSN_SIZE:
        raise TranslatedError(f"{where}translated code of {len(prog.xlated)} bytes is not "
                              "whole instructions")
    slots = _slots(prog.xlated)
    own_notes: list[str] = []
    try:
        _normalize(slots, own_notes)
        insns = decode(_pack(slots))
    except DecodeError as exc:
        raise TranslatedError(f"{where}translated code: {exc}") from None
    except TranslatedError as exc:
        raise TranslatedError(f"{where}{exc}") from None
    btf = _parse_btf(member.btf, own_notes)
    nslots = len(slots)
    starts = sorted({off for off, _ in prog.func_info if 0 <= off < nslots} | {0})
    names = _function_names(prog, btf, nslots)
    lines = _line_table(prog, btf, insns)
    unresolved: dict[str, int] = {}
    functions: dict[FuncKey, Function] = {}
    start_set = set(starts)
    for pos, start in enumerate(starts):
        end = starts[pos + 1] if pos + 1 < len(starts) else nslots
        body: list[Insn] = []
        for insn in insns:
            if start <= insn.pc < end:
                try:
                    body.append(_resolved(insn, start_set, map_names, symbols, unresolved,
                                          lines.get(insn.pc), section=code_section))
                except TranslatedError as exc:
                    raise TranslatedError(f"{where}{exc}") from None
        try:
            check_jumps(tuple(body), start, end)
        except DecodeError as exc:
            raise TranslatedError(f"{where}translated code: {exc}") from None
        functions[(code_section, start)] = Function(
            names.get(start, f"func_{start}"), code_section, start, tuple(body), start == 0,
            end - start)
    for symbol, count in sorted(unresolved.items()):
        own_notes.append(f"{count} call(s) of kernel function {symbol}, a helper bpflint "
                         "does not know: priced at the cost table's default")
    notes.extend(f"{where}{note}" for note in own_notes)
    return functions, btf is not None


def _function_names(prog: LoadedProgram, btf: Btf | None, nslots: int) -> dict[int, str]:
    names: dict[int, str] = {}
    if btf is None:
        return names
    for off, type_id in prog.func_info:
        if 0 <= off < nslots and 0 < type_id < len(btf.types):
            func = btf.type(type_id)
            if func.kind == KIND_FUNC and func.name:
                names[off] = func.name
    return names


def _line_table(prog: LoadedProgram, btf: Btf | None,
                insns: tuple[Insn, ...]) -> dict[int, SourceLine]:
    """Each instruction's source line: its own record or the last one before it."""
    if btf is None or not prog.line_info:
        return {}
    records: list[tuple[int, SourceLine]] = []
    for insn_off, file_off, line_off, line_col in sorted(prog.line_info):
        try:
            records.append((insn_off, SourceLine(read_string(btf.strings, file_off),
                                                 line_col >> 10, line_col & 0x3FF,
                                                 read_string(btf.strings, line_off))))
        except BtfError:
            continue  # a record naming no string: that instruction keeps the line before
    out: dict[int, SourceLine] = {}
    pos = 0
    current: SourceLine | None = None
    for insn in insns:
        while pos < len(records) and records[pos][0] <= insn.pc:
            current = records[pos][1]
            pos += 1
        if current is not None:
            out[insn.pc] = current
    return out


def _resolved(insn: Insn, starts: set[int], map_names: Mapping[int, str], symbols: Kallsyms,
              unresolved: dict[str, int], line: SourceLine | None, section: str) -> Insn:
    """The instruction with what it refers to resolved, as the reader would have it."""
    if insn.is_call:
        if insn.src == 1:  # bpf-to-bpf: the relative target sits in off after the JIT
            for rel in (insn.off, insn.imm):
                target = insn.pc + rel + 1
                if target in starts:
                    return insn._replace(imm=rel, off=0, line=line, reloc=Reloc(
                        "call", f"func_{target}", func=(section, target)))
            raise TranslatedError(f"instruction {insn.pc}: bpf-to-bpf call to no function "
                                  "(is the JIT off?)")
        if insn.src == 0 and insn.imm == TAIL_CALL:
            return insn._replace(line=line)
        address = symbols.call_base + insn.imm if symbols.call_base and insn.imm else 0
        symbol = symbols.name_at(address) if address else None
        if insn.src == 0 and symbol in _LD_ABS_HELPERS:
            # r0 = packet[r2]: r1 (the skb) and r2 (the offset) were set just before
            return insn._replace(opcode=_OPCODES[_LD_ABS_HELPERS[symbol]], dst=0, src=2,
                                 off=0, imm=0, line=line)
        if insn.src == 0 and symbol is not None:
            helper = helper_for(symbol)
            if helper is not None:
                return insn._replace(imm=helper, line=line)
        shown = symbol or (f"at __bpf_call_base{insn.imm:+#x}" if insn.imm
                           else "(address hidden)")
        if insn.src == 0:  # a helper bpflint cannot name: priced as an unknown kfunc
            unresolved[shown] = unresolved.get(shown, 0) + 1
        # a kfunc keeps its own name: the iterator kfuncs are understood by name
        return insn._replace(src=PSEUDO_KFUNC_CALL, line=line,
                             reloc=Reloc("kfunc", symbol or f"kernel function {shown}"))
    if insn.is_ld_imm64:
        low = insn.imm & 0xFFFFFFFF
        high = insn.imm >> 32
        if insn.src in (PSEUDO_MAP_FD, PSEUDO_MAP_VALUE):
            name = map_names.get(low)
            if name is None:
                raise TranslatedError(f"instruction {insn.pc}: refers to map id {low}, "
                                      "which the program does not list")
            if insn.src == PSEUDO_MAP_FD:
                return insn._replace(line=line, reloc=Reloc("map", name, map=name))
            return insn._replace(line=line, reloc=Reloc("data", name, map=name,
                                                        offset=high))
        if insn.src == PSEUDO_FUNC:
            rel = low - (1 << 32) if low & 0x80000000 else low
            target = insn.pc + rel + 1
            if target not in starts:
                raise TranslatedError(f"instruction {insn.pc}: callback address of no "
                                      "function")
            return insn._replace(line=line, reloc=Reloc("func_ptr", f"func_{target}",
                                                        func=(section, target)))
    return insn._replace(line=line) if line is not None else insn

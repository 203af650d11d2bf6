"""Read a BPF ELF object into the immutable model of :mod:`bpflint.obj.model`.

Steps, each over plain data produced by the one before:

1. the ELF layer (:mod:`bpflint.obj.elf`): sections, symbols, relocations;
2. BTF and BTF.ext, validated; broken BTF rejects the whole object, because line
   info, map definitions and function boundaries that BTF describes could then be
   wrong without anyone noticing;
3. every executable section decoded once, each instruction with its source line,
   split into functions at FUNC symbols, jumps checked per function;
4. relocations resolved the way libbpf resolves them, attached to the instructions
   they name (the only ones built a second time);
5. maps: BTF-defined (.maps), legacy (``maps``) and global data sections;
6. programs: every function of an executable section other than .text.

Every problem is a :class:`BpfLintError` naming the file; :class:`NotBpfError`
marks ELF files that are not BPF at all, so a directory scan can skip them.
"""

from __future__ import annotations

import gc
import os
import stat
import struct
from collections.abc import Iterable
from dataclasses import dataclass, replace

from bpflint.errors import BpfLintError
from bpflint.isa.insn import INSN_SIZE, DecodedSection, DecodeError, Insn, decode_section
from bpflint.obj.btf import (
    KIND_ARRAY,
    KIND_FUNC,
    KIND_PTR,
    KIND_STRUCT,
    KIND_VAR,
    Btf,
    BtfError,
    parse_btf,
)
from bpflint.obj.btf_ext import BtfExt, parse_btf_ext
from bpflint.obj.elf import (
    SHN_LORESERVE,
    SHN_UNDEF,
    SHT_NOBITS,
    SHT_PROGBITS,
    STB_LOCAL,
    STT_FUNC,
    STT_SECTION,
    ElfImage,
    NotBpfError,
    Relocation,
    Section,
    Symbol,
    read_elf,
)
from bpflint.obj.loader_vars import find_loader_vars, is_rodata_section, kconfig_vars
from bpflint.obj.model import (
    KCONFIG_MAP,
    BpfObject,
    FuncKey,
    Function,
    LoaderVar,
    MapDef,
    Program,
    Reloc,
)
from bpflint.obj.sections import MAP_TYPE_ARRAY, UNKNOWN, classify, map_type_name
from bpflint.obj.tail_sections import ELF_MAP_ID_OFFSET, section_tail_slots

__all__ = ["NotBpfError", "ReadLimits", "load_object", "parse_object", "read_object_bytes"]

BTF_MAPS_SECTION = ".maps"
LEGACY_MAPS_SECTION = "maps"
ARENA_SECTION = ".addr_space.1"
ARENA_MAP_TYPE = 33
_DATA_PREFIXES = (".data", ".rodata", ".bss")
# members of a BTF map definition encoded as __uint(name, N): pointer to int[N]
_UINT_MEMBERS = ("type", "max_entries", "map_flags", "key_size", "value_size")
MAP_IN_MAP_TYPES = ("array_of_maps", "hash_of_maps")
BPF_F_INNER_MAP = 1 << 12
_LEGACY_MAP_DEF = struct.Struct("<IIII")  # type, key_size, value_size, max_entries
_U32 = struct.Struct("<I")
MIB = 1 << 20
_MISALIGNED = INSN_SIZE - 1  # the bits of a byte offset that is not an instruction's


@dataclass(frozen=True)
class ReadLimits:
    """Sizes beyond which an object is refused before it is parsed.

    Objects come from pull requests: without a cap, a multi-gigabyte file or a .BTF
    section claiming millions of types would exhaust memory or time before any other
    check could speak. The defaults sit far above real objects (Cilium's largest
    datapath objects are a few MiB, their BTF well under 1 MiB).
    """

    max_object_bytes: int = 64 * MIB
    max_btf_bytes: int = 16 * MIB


def describe_bytes(count: int) -> str:
    """512 -> "512 bytes", 64 MiB -> "64 MiB" (limits are named the way users set them)."""
    return f"{count // MIB} MiB" if count >= MIB and count % MIB == 0 else f"{count} bytes"


def read_object_bytes(path: str | os.PathLike[str], limits: ReadLimits = ReadLimits()) -> bytes:
    """The bytes of one object file, refused before reading if it is over the size limit
    or not a regular file (a FIFO or device would block or never end)."""
    name = os.fspath(path)
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with open(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise BpfLintError(f"{name}: not a regular file")
            if info.st_size > limits.max_object_bytes:
                raise BpfLintError(
                    f"{name}: object is {info.st_size} bytes, over the "
                    f"{describe_bytes(limits.max_object_bytes)} object size limit "
                    f"(max_object_bytes)")
            # read one byte past the limit: a file growing while read is still capped
            raw = handle.read(limits.max_object_bytes + 1)
    except OSError as exc:
        raise BpfLintError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > limits.max_object_bytes:
        raise BpfLintError(f"{name}: object is over the {describe_bytes(limits.max_object_bytes)} "
                           f"object size limit (max_object_bytes)")
    return raw


def load_object(path: str | os.PathLike[str], limits: ReadLimits = ReadLimits()) -> BpfObject:
    """Read and validate one BPF object file."""
    name = os.fspath(path)
    return parse_object(name, read_object_bytes(name, limits), limits)


def parse_object(name: str, raw: bytes, limits: ReadLimits = ReadLimits()) -> BpfObject:
    """Validate and model the bytes of an object file; ``name`` is used in messages."""
    # The cycle collector is off while an object is read, as while a program is
    # analysed (cost/engine.py): reading builds a tuple per instruction and no
    # reference cycles but pyelftools' few hundred per file, and at the collector's
    # default thresholds its passes over the growing list of instructions were 40 %
    # of the reading (pyperf100: 54 ms, now 31 ms and one 5 ms pass afterwards). What
    # there is to collect, it collects after this returns.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _read(name, raw, limits)
    finally:
        if enabled:
            gc.enable()


def _read(name: str, raw: bytes, limits: ReadLimits) -> BpfObject:
    try:
        return _Reader(name, read_elf(name, raw), limits).build()
    except BtfError as exc:  # from a lookup deep inside; the reader's own messages name the file
        raise BpfLintError(f"{name}: broken BTF: {exc}") from None
    except BpfLintError:
        raise
    except (struct.error, UnicodeDecodeError, IndexError, KeyError, ValueError,
            OverflowError, RecursionError) as exc:
        # a check this reader lacks; still one line, never a traceback
        raise BpfLintError(f"{name}: corrupt BPF object ({type(exc).__name__}: {exc})") from None


def is_legacy_maps_section(name: str) -> bool:
    """``maps``, and the ``maps/<name>`` sections of pre-libbpf loaders (samples/bpf)."""
    return name == LEGACY_MAPS_SECTION or name.startswith(LEGACY_MAPS_SECTION + "/")


def is_data_section(name: str) -> bool:
    """Global-data sections that libbpf turns into array maps."""
    return any(name == prefix or name.startswith(prefix + ".") for prefix in _DATA_PREFIXES)


@dataclass(frozen=True, slots=True)
class _FuncSpan:
    name: str
    start: int  # slots
    end: int
    is_global: bool


@dataclass(frozen=True, slots=True)
class _MapSpan:
    """Where a map definition lives inside .maps or maps, for relocations."""

    name: str
    offset: int  # bytes in the section
    size: int


class _Reader:
    def __init__(self, path: str, image: ElfImage, limits: ReadLimits) -> None:
        self.path = path
        self.image = image
        self.limits = limits
        self.notes: list[str] = []
        self.btf: Btf | None = None
        self.btf_ext: BtfExt | None = None
        self.sections_by_name = {sec.name: sec for sec in image.sections}
        self.func_symbols: dict[int, list[Symbol]] = {}  # section index -> FUNC symbols
        for sym in image.symbols:
            if sym.type == STT_FUNC:
                self.func_symbols.setdefault(sym.shndx, []).append(sym)
        # filled while reading the executable sections
        self.decoded: dict[int, DecodedSection] = {}  # section index -> its instructions
        self.spans: dict[int, list[_FuncSpan]] = {}  # section index -> functions
        self.function_starts: dict[tuple[int, int], str] = {}  # (section, slot) -> name
        self.map_spans: dict[int, list[_MapSpan]] = {}  # map section index -> maps
        self.inner_maps: list[MapDef] = []  # templates of map-in-map inner maps
        self.maps: dict[str, MapDef] = {}
        self.elf_map_ids: dict[str, int] = {}  # legacy map -> struct bpf_elf_map .id
        # (symbol, opcode, src, imm) -> what a relocation there resolves to
        self.resolved: dict[tuple[int, int, int, int], Reloc] = {}

    def fail(self, message: str) -> BpfLintError:
        return BpfLintError(f"{self.path}: {message}")

    # -- driver -----------------------------------------------------------
    def build(self) -> BpfObject:
        self._read_btf()
        code_sections = [sec for sec in self.image.sections if sec.is_exec and sec.size]
        for sec in code_sections:
            self._decode_section(sec)
        self.maps = self._read_maps()
        functions: dict[FuncKey, Function] = {}
        for sec in code_sections:
            for func in self._functions_of(sec):
                functions[func.key] = func
        programs = self._programs(code_sections)
        self.maps, notes = section_tail_slots(self.maps, self.elf_map_ids, programs)
        self.notes.extend(notes)
        return BpfObject(
            path=self.path,
            functions=functions,
            programs=tuple(programs),
            maps=self.maps,
            has_btf=self.btf is not None,
            license=self._license(),
            notes=tuple(self.notes),
        )

    # -- BTF --------------------------------------------------------------
    def _read_btf(self) -> None:
        btf_sec = self.sections_by_name.get(".BTF")
        ext_sec = self.sections_by_name.get(".BTF.ext")
        if btf_sec is None:
            if ext_sec is not None:
                raise self.fail("broken BTF: .BTF.ext without .BTF")
            return
        for sec in (btf_sec, ext_sec):
            if sec is not None and sec.size > self.limits.max_btf_bytes:
                raise self.fail(f"section {sec.name} is {sec.size} bytes, over the "
                                f"{describe_bytes(self.limits.max_btf_bytes)} BTF size limit "
                                f"(max_btf_bytes)")
        try:
            self.btf = parse_btf(btf_sec.data)
            if ext_sec is not None:
                self.btf_ext = parse_btf_ext(ext_sec.data, self.btf.strings)
        except BtfError as exc:
            raise self.fail(f"broken BTF: {exc}") from None

    # -- code ---------------------------------------------------------------
    def _decode_section(self, sec: Section) -> None:
        if sec.size % INSN_SIZE:
            raise self.fail(f"section {sec.name}: size {sec.size} is not a multiple of "
                            f"{INSN_SIZE} bytes")
        lines = self.btf_ext.line_info.get(sec.name) if self.btf_ext is not None else None
        try:
            # records still unchecked: a bad one is reported by _check_line_info, and
            # until then only makes some line wrong
            decoded = (decode_section(sec.data, lines.slots, lines.sources)
                       if lines is not None else decode_section(sec.data))
        except DecodeError as exc:
            raise self.fail(f"section {sec.name}: {exc}") from None
        self.decoded[sec.index] = decoded
        self.spans[sec.index] = self._function_spans(sec, decoded)
        for span in self.spans[sec.index]:
            self.function_starts[(sec.index, span.start)] = span.name

    def _function_spans(self, sec: Section, decoded: DecodedSection) -> list[_FuncSpan]:
        nslots = sec.size // INSN_SIZE
        # (name, byte offset, byte size or 0 if unknown, global), locals after globals
        entries = sorted(((sym.name, sym.value, sym.size, sym.bind != STB_LOCAL)
                          for sym in self.func_symbols.get(sec.index, ())),
                         key=lambda entry: (entry[1], not entry[3]))
        if not entries:
            # stripped objects still list their functions in BTF func_info
            entries = self._func_info_entries(sec)
        if not entries:
            # hand-written or very old objects: the whole section is one function
            return [_FuncSpan(sec.name, 0, nslots, True)]
        spans: list[_FuncSpan] = []
        for pos, (name, byte_off, byte_size, is_global) in enumerate(entries):
            if byte_off % INSN_SIZE or byte_off >= sec.size:
                raise self.fail(f"section {sec.name}: function {name} starts at byte "
                                f"{byte_off}, not at an instruction inside the section")
            start = byte_off // INSN_SIZE
            if spans and spans[-1].start == start:
                continue  # an alias of the function just seen
            if decoded.index_of(start) < 0:
                raise self.fail(f"section {sec.name}: function {name} starts inside the "
                                f"ld_imm64 at instruction {start - 1}")
            next_start = next((e[1] // INSN_SIZE for e in entries[pos + 1:]
                               if e[1] // INSN_SIZE > start), nslots)
            end = next_start
            if byte_size and byte_size % INSN_SIZE == 0:
                end = start + byte_size // INSN_SIZE
                if end > next_start:
                    raise self.fail(f"section {sec.name}: function {name} ({byte_size} bytes "
                                    f"at instruction {start}) overlaps the next function or "
                                    f"the section end")
            if end != nslots and decoded.index_of(end) < 0:
                raise self.fail(f"section {sec.name}: function {name} ends inside an "
                                f"ld_imm64 at instruction {end - 1}")
            spans.append(_FuncSpan(name, start, end, is_global))
        return spans

    def _func_info_entries(self, sec: Section) -> list[tuple[str, int, int, bool]]:
        if self.btf is None or self.btf_ext is None:
            return []
        entries: list[tuple[str, int, int, bool]] = []
        for record in self.btf_ext.func_info.get(sec.name, ()):
            func = self.btf.type(record.type_id) if record.type_id < len(self.btf.types) else None
            if func is None or func.kind != KIND_FUNC:
                raise self.fail(f"broken BTF: func_info for section {sec.name} at byte offset "
                                f"{record.insn_off} names type {record.type_id}, not a FUNC")
            # a FUNC's vlen is its linkage: 0 static, 1 global
            entries.append((func.name, record.insn_off, 0, func.vlen != 0))
        return sorted(entries, key=lambda entry: entry[1])

    def _functions_of(self, sec: Section) -> Iterable[Function]:
        decoded = self.decoded[sec.index]
        self._check_line_info(sec)
        insns = decoded.insns  # each with its source line already
        new = tuple.__new__
        for pc, reloc in self._relocations(sec, decoded).items():
            index = decoded.index_of(pc)
            insns[index] = new(Insn, insns[index][:8] + (reloc,))
        for span in self.spans[sec.index]:
            first = decoded.index_of(span.start)
            last = decoded.index_of(span.end)  # -1 at the section end
            if last < 0:
                last = len(insns)
            try:
                decoded.check_jumps(first, last, span.start, span.end)
            except DecodeError as exc:
                raise self.fail(f"section {sec.name}: function {span.name}: {exc}") from None
            yield Function(span.name, sec.name, span.start, tuple(insns[first:last]),
                           span.is_global, span.end - span.start)

    def _check_line_info(self, sec: Section) -> None:
        """Every line-info record must name an instruction slot of the section."""
        if self.btf_ext is None:
            return
        lines = self.btf_ext.line_info.get(sec.name)
        if lines is None:
            return
        offsets = lines.offsets
        if offsets[-1] >= sec.size or any(map(_MISALIGNED.__and__, offsets)):
            bad = next(offset for offset in offsets
                       if offset % INSN_SIZE or offset >= sec.size)
            raise self.fail(f"broken BTF: line info for section {sec.name} at byte offset "
                            f"{bad} is not an instruction of the section")

    # -- relocations ------------------------------------------------------------
    def _relocations(self, sec: Section, decoded: DecodedSection) -> dict[int, Reloc]:
        """What each instruction that refers to something refers to, by slot."""
        insns = decoded.insns
        out: dict[int, Reloc] = {}
        for rel in self.image.relocations.get(sec.index, ()):
            index = (decoded.index_of(rel.offset // INSN_SIZE)
                     if rel.offset % INSN_SIZE == 0 else -1)
            insn = insns[index] if index >= 0 else None
            if insn is None or not (insn.is_call or insn.is_ld_imm64):
                raise self.fail(f"section {sec.name}: relocation against {rel.symbol.name} at "
                                f"byte offset {rel.offset} does not point to a call or "
                                f"ld_imm64 instruction")
            # what a relocation resolves to depends on its symbol and instruction only
            # (the section and slot only name it in messages), and big objects repeat a
            # few (pyperf100: 1,535 relocations, 6 distinct)
            key = (rel.symbol.index, int(insn.opcode), insn.src, insn.imm)
            reloc = self.resolved.get(key)
            if reloc is None:
                reloc = self.resolved[key] = self._resolve(sec, insn, rel)
            out[insn.pc] = reloc
        # bpf-to-bpf calls inside one section carry no relocation: imm is relative
        for index in decoded.calls:
            insn = insns[index]
            if insn.is_pseudo_call and insn.pc not in out:
                target = insn.pc + insn.imm + 1
                name = self._function_at(sec, target, insn)
                out[insn.pc] = Reloc("call", name, func=(sec.name, target))
        return out

    def _resolve(self, sec: Section, insn: Insn, rel: Relocation) -> Reloc:
        sym = rel.symbol
        where = f"section {sec.name}: instruction {insn.pc}"
        if sym.shndx == SHN_UNDEF:
            if not sym.is_extern:
                raise self.fail(f"{where}: relocation against undefined symbol "
                                f"{sym.name or sym.index} that is not a global extern")
            if insn.is_call:
                if not insn.is_pseudo_call:
                    raise self.fail(f"{where}: call of extern {sym.name} is not a "
                                    f"bpf-to-bpf call")
                return Reloc("kfunc", sym.name)
            return Reloc("extern", sym.name)
        if sym.shndx >= SHN_LORESERVE:
            raise self.fail(f"{where}: relocation against {sym.name} in special section "
                            f"{sym.shndx:#x}")
        target_sec = self.image.sections[sym.shndx]
        addend = _imm32(insn.imm)
        if insn.is_call:
            if not insn.is_pseudo_call:
                raise self.fail(f"{where}: relocation on a helper call")
            if not target_sec.is_exec:
                raise self.fail(f"{where}: call relocation against {sym.name} in "
                                f"non-code section {target_sec.name}")
            if sym.value % INSN_SIZE:
                raise self.fail(f"{where}: call relocation against {sym.name} at unaligned "
                                f"offset {sym.value}")
            target = sym.value // INSN_SIZE + addend + 1
            name = self._function_at(target_sec, target, insn, sec)
            return Reloc("call", name, func=(target_sec.name, target))
        if target_sec.is_exec:
            # global function: st_value holds the offset; static: imm does
            byte_off = sym.value + addend
            if byte_off % INSN_SIZE:
                raise self.fail(f"{where}: function address {sym.name}+{addend} is not "
                                f"instruction-aligned")
            target = byte_off // INSN_SIZE
            name = self._function_at(target_sec, target, insn, sec)
            return Reloc("func_ptr", name, func=(target_sec.name, target))
        if target_sec.name == BTF_MAPS_SECTION or is_legacy_maps_section(target_sec.name):
            map_name = self._map_at(target_sec, sym.value + addend)
            if map_name is None:
                raise self.fail(f"{where}: map relocation against {sym.name} finds no map at "
                                f"{target_sec.name}+{sym.value + addend}")
            return Reloc("map", sym.name if sym.type != STT_SECTION else map_name,
                         map=map_name)
        if is_data_section(target_sec.name):
            if target_sec.name not in self.maps:
                raise self.fail(f"{where}: data relocation against {sym.name} in empty "
                                f"section {target_sec.name}")
            return Reloc("data", sym.name, map=target_sec.name, offset=sym.value + addend)
        if target_sec.name == ARENA_SECTION:
            arena = next((m.name for m in self.maps.values() if m.type == ARENA_MAP_TYPE),
                         None)
            if arena is None:
                raise self.fail(f"{where}: arena data relocation but no arena map is defined")
            return Reloc("data", sym.name, map=arena, offset=sym.value + addend)
        raise self.fail(f"{where}: relocation against {sym.name} in section "
                        f"{target_sec.name}, which holds neither code, maps nor data")

    def _function_at(self, sec: Section, target: int, insn: Insn,
                     caller_sec: Section | None = None) -> str:
        """Name of the function starting at slot ``target`` of ``sec``, else an error."""
        origin = caller_sec or sec
        where = f"section {origin.name}: instruction {insn.pc}"
        nslots = sec.size // INSN_SIZE
        if not 0 <= target < nslots:
            raise self.fail(f"{where}: call target {target} is out of range for section "
                            f"{sec.name} ({nslots} instructions)")
        name = self.function_starts.get((sec.index, target))
        if name is not None:
            return name
        raise self.fail(f"{where}: call target {target} in section {sec.name} is not the "
                        f"start of a function")

    # -- maps -------------------------------------------------------------------
    def _read_maps(self) -> dict[str, MapDef]:
        maps: dict[str, MapDef] = {}
        btf_maps = self.sections_by_name.get(BTF_MAPS_SECTION)
        if btf_maps is not None:
            for map_def in self._btf_maps(btf_maps):
                maps[map_def.name] = map_def
        for sec in self.image.sections:
            if is_legacy_maps_section(sec.name):
                for map_def in self._legacy_maps(sec):
                    maps[map_def.name] = map_def
        for sec in self.image.sections:
            if is_data_section(sec.name) and sec.size and sec.type in (SHT_PROGBITS,
                                                                        SHT_NOBITS):
                maps[sec.name] = MapDef(
                    name=sec.name, type=MAP_TYPE_ARRAY, type_name=map_type_name(MAP_TYPE_ARRAY),
                    key_size=4, value_size=sec.size, max_entries=1, section=sec.name,
                    data=sec.data, read_only=sec.name.startswith(".rodata"),
                    loader_vars=self._loader_vars(sec))
        kconfig = self._kconfig_map()
        if kconfig is not None:
            maps[kconfig.name] = kconfig
        return maps

    def _kconfig_map(self) -> MapDef | None:
        """``__kconfig`` externs as a read-only data map whose variables are all
        loader-set (libbpf makes them a .kconfig map too)."""
        if self.btf is None:
            return None
        try:
            found = kconfig_vars(self.btf)
        except BtfError as exc:
            raise self.fail(f"broken BTF: .kconfig externs: {exc}") from None
        if not found:
            return None
        size = max(var.offset + var.size for var in found)
        return MapDef(name=KCONFIG_MAP, type=MAP_TYPE_ARRAY,
                      type_name=map_type_name(MAP_TYPE_ARRAY), key_size=4, value_size=size,
                      max_entries=1, section=KCONFIG_MAP, data=bytes(size), read_only=True,
                      loader_vars=found)

    def _loader_vars(self, sec: Section) -> tuple[LoaderVar, ...]:
        if self.btf is None or not is_rodata_section(sec.name):
            return ()
        offsets = {sym.name: sym.value for sym in self._map_symbols(sec)}
        try:
            return find_loader_vars(self.btf, sec.name, sec.data, offsets)
        except BtfError as exc:
            raise self.fail(f"broken BTF: variables of {sec.name}: {exc}") from None

    def _map_symbols(self, sec: Section) -> list[Symbol]:
        return sorted((sym for sym in self.image.symbols
                       if sym.shndx == sec.index and sym.type != STT_SECTION and sym.name),
                      key=lambda sym: sym.value)

    def _btf_maps(self, sec: Section) -> list[MapDef]:
        # in a relocatable object DATASEC offsets are still 0 (libbpf fills them in from
        # the symbols), so where each map lives comes from the symbol table
        symbols = self._map_symbols(sec)
        self.map_spans[sec.index] = [_MapSpan(s.name, s.value, s.size) for s in symbols]
        if self.btf is None:
            # no numbers are made up for them: relocations still name these maps, but
            # they are absent from BpfObject.maps, so nothing can take a size from them
            if symbols:
                names = ", ".join(s.name for s in symbols)
                self.notes.append(f"no BTF to read the definitions of the maps in .maps "
                                  f"({names}): their types and sizes are unknown")
            return []
        datasec = self.btf.datasec(BTF_MAPS_SECTION)
        if datasec is None:
            raise self.fail("broken BTF: section .maps has no DATASEC in BTF")
        missing = {s.name for s in symbols} - {self.btf.type(v.type_id).name
                                                for v in datasec.vars}
        if missing:
            raise self.fail(f"broken BTF: map {sorted(missing)[0]} in .maps has no BTF "
                            f"variable")
        out: list[MapDef] = []
        values_offsets: dict[str, int] = {}
        for var_info in datasec.vars:
            var = self.btf.type(var_info.type_id)
            if var.kind != KIND_VAR:
                raise self.fail(f"broken BTF: .maps entry type {var.id} is not a variable")
            try:
                map_def, values_off = self._btf_map(var.name, var.size_or_type)
            except BtfError as exc:
                raise self.fail(f"broken BTF: map {var.name}: {exc}") from None
            if values_off is not None:
                values_offsets[var.name] = values_off
            out.append(map_def)
        slots = self._prog_slots(sec, values_offsets)
        return [MapDef(m.name, m.type, m.type_name, m.key_size, m.value_size, m.max_entries,
                       m.flags, m.section, tuple(sorted(slots.get(m.name, {}).items())),
                       inner=m.inner)
                for m in out] + self.inner_maps

    def _btf_map(self, name: str, type_id: int) -> tuple[MapDef, int | None]:
        """One map definition struct; also the byte offset of its ``values`` member."""
        assert self.btf is not None
        btf = self.btf
        struct_type = btf.skip_aliases(type_id)
        if struct_type.kind != KIND_STRUCT:
            raise BtfError(f"definition is not a struct (BTF kind {struct_type.kind})")
        fields = dict.fromkeys(_UINT_MEMBERS, 0)
        values_off: int | None = None
        values_type: int | None = None
        for member in struct_type.members:
            if member.name in _UINT_MEMBERS:
                fields[member.name] = _uint_member(btf, member.type_id, member.name)
            elif member.name in ("key", "value"):
                pointer = btf.skip_aliases(member.type_id)
                if pointer.kind != KIND_PTR:
                    raise BtfError(f"member {member.name} is not a pointer")
                fields[f"{member.name}_size"] = btf.size_of(pointer.size_or_type)
            elif member.name == "values":
                values_off = member.offset_bits // 8
                values_type = member.type_id
        if values_off is not None:
            # libbpf: a map whose values are programs or maps holds 4-byte ids/fds
            if fields["value_size"] not in (0, 4):
                raise BtfError(f"value_size {fields['value_size']} with .values, must be 4")
            fields["value_size"] = 4
        map_type = fields["type"]
        inner = ""
        if values_type is not None and map_type_name(map_type) in MAP_IN_MAP_TYPES:
            template = self._inner_template(f"{name}.inner", values_type)
            if template is not None:
                self.inner_maps.append(template)
                inner = template.name
        return (MapDef(name, map_type, map_type_name(map_type), fields["key_size"],
                       fields["value_size"], fields["max_entries"], fields["map_flags"],
                       BTF_MAPS_SECTION, inner=inner), values_off)

    def _inner_template(self, name: str, values_type: int) -> MapDef | None:
        """The inner map of a map-in-map, from ``__array(values, struct {...})``: an
        array of pointers to its definition. None when there is no such definition."""
        assert self.btf is not None
        array = self.btf.skip_aliases(values_type)
        if array.kind != KIND_ARRAY or array.array is None:
            return None
        pointer = self.btf.skip_aliases(array.array[0])
        if pointer.kind != KIND_PTR:
            return None
        template, _ = self._btf_map(name, pointer.size_or_type)
        # BPF_F_INNER_MAP lets inner maps differ in max_entries from the template
        return None if template.flags & BPF_F_INNER_MAP else template

    def _prog_slots(self, sec: Section,
                    values_offsets: dict[str, int]) -> dict[str, dict[int, str]]:
        """Statically initialised ``.values`` of prog arrays, from .rel.maps."""
        slots: dict[str, dict[int, str]] = {}
        for rel in self.image.relocations.get(sec.index, ()):
            span = _span_at(self.map_spans[sec.index], rel.offset)
            if span is None or span.name not in values_offsets:
                raise self.fail(f"section .maps: relocation at byte offset {rel.offset} is "
                                f"not inside a map's .values")
            rel_off = rel.offset - span.offset - values_offsets[span.name]
            if rel_off < 0 or rel_off % 8:
                raise self.fail(f"section .maps: relocation at byte offset {rel.offset} is "
                                f"not a .values slot of map {span.name}")
            if rel.symbol.type != STT_FUNC:
                # map-in-map initialisers point to maps; they are not programs
                continue
            slots.setdefault(span.name, {})[rel_off // 8] = rel.symbol.name
        return slots

    def _legacy_maps(self, sec: Section) -> list[MapDef]:
        symbols = self._map_symbols(sec)
        out: list[MapDef] = []
        spans: list[_MapSpan] = []
        for pos, sym in enumerate(symbols):
            end = symbols[pos + 1].value if pos + 1 < len(symbols) else sec.size
            size = sym.size or end - sym.value
            if size < _LEGACY_MAP_DEF.size or sym.value + size > len(sec.data):
                raise self.fail(f"section {sec.name}: map {sym.name} at byte {sym.value} is too "
                                f"small or outside the section for a struct bpf_map_def")
            map_type, key_size, value_size, max_entries = _LEGACY_MAP_DEF.unpack_from(
                sec.data, sym.value)
            flags = 0
            if size >= _LEGACY_MAP_DEF.size + _U32.size:
                (flags,) = _U32.unpack_from(sec.data, sym.value + _LEGACY_MAP_DEF.size)
            if size >= ELF_MAP_ID_OFFSET + _U32.size:
                (elf_id,) = _U32.unpack_from(sec.data, sym.value + ELF_MAP_ID_OFFSET)
                if elf_id:
                    self.elf_map_ids[sym.name] = elf_id
            spans.append(_MapSpan(sym.name, sym.value, size))
            out.append(MapDef(sym.name, map_type, map_type_name(map_type), key_size,
                              value_size, max_entries, flags, sec.name))
        self.map_spans[sec.index] = spans
        return out

    def _map_at(self, sec: Section, byte_off: int) -> str | None:
        span = _span_at(self.map_spans.get(sec.index, []), byte_off)
        return span.name if span is not None else None

    # -- programs ---------------------------------------------------------------
    def _programs(self, code_sections: list[Section]) -> list[Program]:
        programs: list[Program] = []
        for sec in code_sections:
            if sec.name == ".text":
                continue
            sec_def = classify(sec.name)
            if sec_def.legacy:
                self.notes.append(f"section {sec.name}: program type {sec_def.prog_type} "
                                  f"guessed by libbpf < 1.0 prefix rules")
            for span in self.spans[sec.index]:
                programs.append(Program(span.name, sec.name, sec_def.prog_type, sec_def.attach,
                                        (sec.name, span.start), sec_def.sleepable))
        return self._tail_call_types(programs)

    def _tail_call_types(self, programs: list[Program]) -> list[Program]:
        """Programs in sections no loader names (Cilium's tail calls live in "2/15")
        take the one type of the object's other programs when the object has a prog
        array: a tail call only reaches programs of its caller's type, and the type
        decides what the context holds (packet pointers, for one)."""
        known = {p.prog_type for p in programs if p.prog_type != UNKNOWN}
        unknown = sorted({p.section for p in programs if p.prog_type == UNKNOWN})
        if len(known) != 1 or not unknown or \
                not any(m.type_name == "prog_array" for m in self.maps.values()):
            return programs
        (prog_type,) = known
        shown = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3
                                          else "")
        self.notes.append(f"sections {shown}: program type {prog_type} taken from the "
                          "object's other programs (tail calls reach only their type)")
        return [replace(p, prog_type=prog_type) if p.prog_type == UNKNOWN else p
                for p in programs]

    def _license(self) -> str:
        sec = self.sections_by_name.get("license")
        if sec is None:
            return ""
        return sec.data.split(b"\0", 1)[0].decode(errors="replace")


def _imm32(value: int) -> int:
    """The signed low 32 bits (ld_imm64 keeps 64 bits in imm; the addend is the low half)."""
    low = value & 0xFFFFFFFF
    return low - (1 << 32) if low & 0x80000000 else low


def _span_at(spans: list[_MapSpan], byte_off: int) -> _MapSpan | None:
    for span in spans:
        if span.offset <= byte_off < span.offset + max(span.size, 1):
            return span
    return None


def _uint_member(btf: Btf, type_id: int, name: str) -> int:
    """Decode ``__uint(name, N)``: a pointer to an array of N ints."""
    pointer = btf.skip_aliases(type_id)
    if pointer.kind != KIND_PTR:
        raise BtfError(f"member {name} is not a pointer (__uint encoding)")
    array = btf.skip_aliases(pointer.size_or_type)
    if array.kind != KIND_ARRAY:
        raise BtfError(f"member {name} does not point to an array (__uint encoding)")
    return array.array[1]

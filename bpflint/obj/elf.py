"""The ELF layer: sections, symbols and relocations of a BPF object, read once.

pyelftools reads the ELF header and the section table; the symbol table and the
relocation tables are unpacked here with :mod:`struct` in one pass each, because
pyelftools' per-entry parsing is far too slow for objects with many thousands of
relocations.  Everything is checked against the file's real size, so a truncated or
corrupt file becomes one :class:`BpfLintError` instead of short reads or a traceback.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bpflint.errors import BpfLintError

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

EM_BPF = 247

SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_NOBITS = 8
SHT_REL = 9
SHF_EXECINSTR = 0x4

STT_NOTYPE = 0
STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3
STB_LOCAL = 0
STB_GLOBAL = 1
STB_WEAK = 2
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00

_SYM = struct.Struct("<IBBHQQ")
_REL = struct.Struct("<QQ")


class NotBpfError(BpfLintError):
    """A valid ELF file that is not a BPF object (a directory scan skips it)."""


@dataclass(frozen=True, slots=True)
class Section:
    index: int
    name: str
    type: int  # SHT_*
    flags: int  # SHF_*
    size: int  # bytes, also for NOBITS sections
    data: bytes  # b"" for NOBITS
    info: int  # sh_info: for SHT_REL the index of the section relocated
    link: int  # sh_link: for SHT_SYMTAB the index of its string table

    @property
    def is_exec(self) -> bool:
        return self.type == SHT_PROGBITS and bool(self.flags & SHF_EXECINSTR)


@dataclass(frozen=True, slots=True)
class Symbol:
    index: int
    name: str
    value: int
    size: int
    type: int  # STT_*
    bind: int  # STB_*
    shndx: int  # section index, SHN_UNDEF for externs

    @property
    def is_extern(self) -> bool:
        # libbpf's rule: undefined, global or weak, without a type
        return (self.shndx == SHN_UNDEF and self.bind in (STB_GLOBAL, STB_WEAK)
                and self.type == STT_NOTYPE)


@dataclass(frozen=True, slots=True)
class Relocation:
    offset: int  # byte offset inside the relocated section
    symbol: Symbol
    type: int  # R_BPF_*


@dataclass(frozen=True)
class ElfImage:
    path: str
    sections: tuple[Section, ...]  # indexed by section number
    symbols: tuple[Symbol, ...]  # indexed by symbol number
    relocations: dict[int, tuple[Relocation, ...]]  # relocated section index -> relocs

    def section_named(self, name: str) -> Section | None:
        for sec in self.sections:
            if sec.name == name:
                return sec
        return None


def read_elf(path: str, raw: bytes) -> ElfImage:
    """Parse an object file's bytes; raise BpfLintError (NotBpfError if not BPF)."""
    if raw[:4] != b"\x7fELF":
        raise BpfLintError(f"{path}: not an ELF file")
    # imported here: a run whose results all come from the cache reads no ELF, and
    # pyelftools takes longer to import than such a run takes in all
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(io.BytesIO(raw))
        machine = elf["e_machine"]
        if machine != "EM_BPF" and machine != EM_BPF:
            raise NotBpfError(f"{path}: not a BPF object (ELF for machine {machine})")
        if elf.elfclass != 64 or not elf.little_endian:
            raise BpfLintError(f"{path}: only 64-bit little-endian BPF objects are supported")
        sections = _read_sections(path, elf, raw)
    except BpfLintError:
        raise
    except (ELFError, struct.error, UnicodeDecodeError, IndexError, ValueError, OverflowError,
            KeyError, AttributeError, TypeError, AssertionError, OSError) as exc:
        # pyelftools reports short files and garbage headers with assorted exceptions
        raise BpfLintError(f"{path}: truncated or corrupt ELF file ({_describe(exc)})") from None
    symbols = _read_symbols(path, sections)
    relocations = _read_relocations(path, sections, symbols)
    return ElfImage(path, sections, symbols, relocations)


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _read_sections(path: str, elf: ELFFile, raw: bytes) -> tuple[Section, ...]:
    count = elf.num_sections()
    if elf["e_shoff"] + count * elf["e_shentsize"] > len(raw):
        raise BpfLintError(f"{path}: truncated ELF file (section table ends past end of file)")
    out: list[Section] = []
    for index in range(count):
        sec = elf.get_section(index)
        header = sec.header
        name = sec.name
        size = header["sh_size"]
        if header["sh_type"] == "SHT_NOBITS":
            data = b""
        else:
            start = header["sh_offset"]
            if start + size > len(raw):
                raise BpfLintError(
                    f"{path}: truncated ELF file (section {name or index} ends past end of file)")
            data = raw[start:start + size]
        out.append(Section(index, name, _sh_type(header["sh_type"]), header["sh_flags"],
                           size, data, header["sh_info"], header["sh_link"]))
    return tuple(out)


_SH_TYPES = {"SHT_PROGBITS": SHT_PROGBITS, "SHT_SYMTAB": SHT_SYMTAB,
             "SHT_NOBITS": SHT_NOBITS, "SHT_REL": SHT_REL}


def _sh_type(value: str | int) -> int:
    # pyelftools names known types; anything else arrives as a number (or a name
    # this module does not care about, mapped to -1)
    if isinstance(value, int):
        return value
    return _SH_TYPES.get(value, -1)


def _cstring(path: str, table: bytes, offset: int, what: str) -> str:
    if offset >= len(table):
        raise BpfLintError(f"{path}: {what} name offset {offset} is outside its string table")
    end = table.find(b"\0", offset)
    if end < 0:
        end = len(table)
    try:
        return table[offset:end].decode()
    except UnicodeDecodeError:
        raise BpfLintError(f"{path}: {what} name at offset {offset} is not UTF-8") from None


def _read_symbols(path: str, sections: tuple[Section, ...]) -> tuple[Symbol, ...]:
    symtabs = [s for s in sections if s.type == SHT_SYMTAB]
    if not symtabs:
        return ()
    symtab = symtabs[0]
    if len(symtab.data) % _SYM.size:
        raise BpfLintError(f"{path}: symbol table size {len(symtab.data)} is not a multiple "
                           f"of {_SYM.size}")
    if not 0 < symtab.link < len(sections):
        raise BpfLintError(f"{path}: symbol table links to missing string table {symtab.link}")
    strtab = sections[symtab.link].data
    out: list[Symbol] = []
    nsections = len(sections)
    for index, (name_off, info, _other, shndx, value, size) in enumerate(
            _SYM.iter_unpack(symtab.data)):
        if shndx and shndx < SHN_LORESERVE and shndx >= nsections:
            raise BpfLintError(f"{path}: symbol {index} refers to missing section {shndx}")
        name = _cstring(path, strtab, name_off, f"symbol {index}") if name_off else ""
        if info & 0x0F == STT_SECTION and not name and shndx < nsections:
            name = sections[shndx].name
        out.append(Symbol(index, name, value, size, info & 0x0F, info >> 4, shndx))
    return tuple(out)


def _read_relocations(path: str, sections: tuple[Section, ...],
                      symbols: tuple[Symbol, ...]) -> dict[int, tuple[Relocation, ...]]:
    out: dict[int, tuple[Relocation, ...]] = {}
    for sec in sections:
        if sec.type != SHT_REL or sec.name.startswith((".rel.debug_", ".rel.BTF")):
            continue  # DWARF and BTF relocations matter only to a linker
        if sec.info >= len(sections) or sec.info == 0:
            raise BpfLintError(f"{path}: relocation section {sec.name} targets missing "
                               f"section {sec.info}")
        if len(sec.data) % _REL.size:
            raise BpfLintError(f"{path}: relocation section {sec.name} size {len(sec.data)} "
                               f"is not a multiple of {_REL.size}")
        relocs: list[Relocation] = []
        for offset, info in _REL.iter_unpack(sec.data):
            sym_index = info >> 32
            if sym_index >= len(symbols):
                raise BpfLintError(f"{path}: {sec.name}: relocation at offset {offset} refers "
                                   f"to missing symbol {sym_index}")
            relocs.append(Relocation(offset, symbols[sym_index], info & 0xFFFFFFFF))
        out[sec.info] = tuple(relocs)
    return out

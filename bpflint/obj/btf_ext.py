"""The .BTF.ext section: func_info and line_info records, per ELF section.

Layout (libbpf's btf_ext): a header, then for each of func_info and line_info a
record size followed by blocks of ``{section name offset, record count, records}``.
Record offsets (``insn_off``) count bytes from the start of the ELF section in a
relocatable object.  Strings live in the .BTF string table.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from bpflint.obj.btf import BTF_MAGIC, BtfError, read_string
from bpflint.obj.model import SourceLine

_HEADER = struct.Struct("<HBBIIIII")
_U32 = struct.Struct("<I")
_BLOCK = struct.Struct("<II")
_FUNC_INFO = struct.Struct("<II")
_LINE_INFO = struct.Struct("<IIII")
# a line-info record as (insn_off, the 12 bytes naming its place): records repeat
# places, and the bytes are a key that costs no tuple of three ints per record
_LINE_PLACE = struct.Struct("<I12s")
_PLACE = struct.Struct("<III")  # file name offset, line text offset, line << 10 | column


@dataclass(frozen=True, slots=True)
class FuncInfo:
    insn_off: int  # bytes from the start of the ELF section
    type_id: int  # a BTF FUNC


@dataclass(frozen=True, slots=True)
class LineTable:
    """One ELF section's line-info records, ordered by offset, as parallel tuples: a
    big object has tens of thousands of them, and one record object each cost more
    than everything else done with them."""

    offsets: tuple[int, ...]  # insn_off: bytes from the start of the ELF section
    sources: tuple[SourceLine, ...]

    @property
    def slots(self) -> tuple[int, ...]:
        """Each record's instruction slot (offset // 8; a misaligned offset is refused
        by the reader)."""
        return tuple([offset >> 3 for offset in self.offsets])


@dataclass(frozen=True)
class BtfExt:
    func_info: dict[str, tuple[FuncInfo, ...]]  # ELF section name -> records
    line_info: dict[str, LineTable]  # ELF section name -> records by insn_off


def parse_btf_ext(data: bytes, strings: bytes) -> BtfExt:
    """Parse .BTF.ext; ``strings`` is the .BTF string table its names refer to."""
    if len(data) < _HEADER.size:
        raise BtfError(f"BTF.ext section is {len(data)} bytes, shorter than its header")
    magic, version, _flags, hdr_len, func_off, func_len, line_off, line_len = (
        _HEADER.unpack_from(data))
    if magic != BTF_MAGIC:
        raise BtfError(f"BTF.ext has bad magic {magic:#06x}")
    if version != 1:
        raise BtfError(f"BTF.ext version {version} is not supported")
    if hdr_len < _HEADER.size or hdr_len > len(data):
        raise BtfError(f"BTF.ext header length {hdr_len} is invalid")
    body = data[hdr_len:]
    func_blocks = _blocks(body, func_off, func_len, _FUNC_INFO.size, strings, "func_info")
    line_blocks = _blocks(body, line_off, line_len, _LINE_INFO.size, strings, "line_info")
    func_info: dict[str, list[FuncInfo]] = {}
    for section, rec_size, raw in func_blocks:
        func_info.setdefault(section, []).extend(
            FuncInfo(insn_off, type_id)
            for insn_off, type_id in _records(raw, rec_size, _FUNC_INFO))
    line_info: dict[str, tuple[list[int], list[SourceLine]]] = {}
    # records repeat the same place often (unrolled loops, inlined helpers): share one
    # SourceLine per distinct (file, text, line and column)
    sources: dict[bytes, SourceLine] = {}
    for section, rec_size, raw in line_blocks:
        offsets, lines = line_info.setdefault(section, ([], []))
        insn_offs, places = zip(*_records(raw, rec_size, _LINE_PLACE), strict=True)
        # new places in the order records name them (the first bad string is the one
        # reported)
        for place in dict.fromkeys(places):
            if place not in sources:
                file_off, text_off, line_col = _PLACE.unpack(place)
                sources[place] = SourceLine(read_string(strings, file_off), line_col >> 10,
                                            line_col & 0x3FF, read_string(strings, text_off))
        offsets.extend(insn_offs)
        lines.extend(map(sources.__getitem__, places))
    return BtfExt({k: tuple(v) for k, v in func_info.items()},
                  {k: _line_table(offsets, lines) for k, (offsets, lines) in line_info.items()})


def _line_table(offsets: list[int], sources: list[SourceLine]) -> LineTable:
    # an instruction inherits the last record at or before it: keep them ordered
    # (stably, as producers write them; clang's are in order already)
    if sorted(offsets) != offsets:
        order = sorted(range(len(offsets)), key=offsets.__getitem__)
        return LineTable(tuple([offsets[pos] for pos in order]),
                         tuple([sources[pos] for pos in order]))
    return LineTable(tuple(offsets), tuple(sources))


def _records(raw: bytes, rec_size: int, layout: struct.Struct) -> list[tuple[Any, ...]]:
    if rec_size == layout.size:
        return list(layout.iter_unpack(raw))
    # records may be larger than the fields we know (newer producers); read the prefix
    return [layout.unpack_from(raw, pos) for pos in range(0, len(raw), rec_size)]


def _blocks(body: bytes, offset: int, length: int, min_rec_size: int, strings: bytes,
            what: str) -> list[tuple[str, int, bytes]]:
    """Split one info area into (section name, record size, record bytes) blocks."""
    if length == 0:
        return []
    if offset + length > len(body):
        raise BtfError(f"BTF.ext {what} extends past the end of the section")
    area = body[offset:offset + length]
    if len(area) < _U32.size:
        raise BtfError(f"BTF.ext {what} is too short for its record size")
    (rec_size,) = _U32.unpack_from(area)
    if rec_size < min_rec_size or rec_size % 4:
        raise BtfError(f"BTF.ext {what} record size {rec_size} is invalid")
    out: list[tuple[str, int, bytes]] = []
    pos = _U32.size
    while pos < len(area):
        if pos + _BLOCK.size > len(area):
            raise BtfError(f"BTF.ext {what} block header at {pos} is truncated")
        name_off, count = _BLOCK.unpack_from(area, pos)
        pos += _BLOCK.size
        if count == 0:
            raise BtfError(f"BTF.ext {what} block at {pos} has no records")
        need = count * rec_size
        if pos + need > len(area):
            raise BtfError(f"BTF.ext {what} block for section offset {name_off} has {count} "
                           f"records, more than fit")
        out.append((read_string(strings, name_off), rec_size, area[pos:pos + need]))
        pos += need
    return out

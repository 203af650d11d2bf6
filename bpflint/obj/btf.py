"""The .BTF section: header, string table and every type kind, validated.

Only what later stages need is interpreted (names, sizes, struct members, array
lengths, DATASEC variables), but every kind is decoded so that the whole type
section is walked and its bounds checked: a type the reader skipped over could not
be trusted to end where the next one starts.

Errors are :class:`BtfError` (a BpfLintError) with what is broken; the reader adds
the file name.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from bpflint.errors import BpfLintError

BTF_MAGIC = 0xEB9F

KIND_INT = 1
KIND_PTR = 2
KIND_ARRAY = 3
KIND_STRUCT = 4
KIND_UNION = 5
KIND_ENUM = 6
KIND_FWD = 7
KIND_TYPEDEF = 8
KIND_VOLATILE = 9
KIND_CONST = 10
KIND_RESTRICT = 11
KIND_FUNC = 12
KIND_FUNC_PROTO = 13
KIND_VAR = 14
KIND_DATASEC = 15
KIND_FLOAT = 16
KIND_DECL_TAG = 17
KIND_TYPE_TAG = 18
KIND_ENUM64 = 19

INT_SIGNED = 1  # BTF_INT_SIGNED, in bits 24-27 of an INT's encoding word
INT_BOOL = 4  # BTF_INT_BOOL

# kinds whose ``type`` field refers to another type (and not a size)
_REF_KINDS = frozenset({KIND_PTR, KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT,
                        KIND_FUNC, KIND_VAR, KIND_DECL_TAG, KIND_TYPE_TAG, KIND_FUNC_PROTO})
# kinds that stand for the type they refer to (sizes and struct members look through)
_ALIAS_KINDS = frozenset({KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT,
                          KIND_TYPE_TAG})
# kinds whose ``size`` field is their byte size
_SIZED_KINDS = frozenset({KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64,
                          KIND_FLOAT, KIND_DATASEC})

_HEADER = struct.Struct("<HBBIIIII")
_TYPE = struct.Struct("<III")
_U32 = struct.Struct("<I")
_ARRAY = struct.Struct("<III")
_MEMBER = struct.Struct("<III")
_ENUM = struct.Struct("<Ii")
_ENUM64 = struct.Struct("<III")
_PARAM = struct.Struct("<II")
_VARSECINFO = struct.Struct("<III")


class BtfError(BpfLintError):
    """BTF that cannot be trusted (bounds, ids, cycles)."""


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    type_id: int
    offset_bits: int  # bit offset in the struct (bitfield size stripped)


@dataclass(frozen=True, slots=True)
class VarSecInfo:
    type_id: int  # a VAR or FUNC
    offset: int  # bytes inside the section
    size: int


@dataclass(frozen=True, slots=True)
class BtfType:
    id: int
    kind: int
    name: str
    size_or_type: int  # size for sized kinds, referred type id otherwise
    vlen: int
    kind_flag: bool
    members: tuple[Member, ...] = ()  # STRUCT/UNION
    array: tuple[int, int] = (0, 0)  # ARRAY: (element type id, number of elements)
    vars: tuple[VarSecInfo, ...] = ()  # DATASEC
    # INT: the encoding word (bits 24-27 SIGNED/CHAR/BOOL, bits 0-7 the bit width);
    # VAR: the linkage (0 static, 1 global, 2 extern)
    extra: int = 0


@dataclass(frozen=True)
class Btf:
    types: tuple[BtfType, ...]  # index = type id; id 0 is void
    strings: bytes

    def string(self, offset: int) -> str:
        return read_string(self.strings, offset)

    def type(self, type_id: int) -> BtfType:
        if not 0 <= type_id < len(self.types):
            raise BtfError(f"BTF type id {type_id} out of range")
        return self.types[type_id]

    def skip_aliases(self, type_id: int) -> BtfType:
        """The type behind typedefs and qualifiers (cycles were rejected at parse)."""
        btf_type = self.type(type_id)
        while btf_type.kind in _ALIAS_KINDS:
            btf_type = self.type(btf_type.size_or_type)
        return btf_type

    def size_of(self, type_id: int) -> int:
        """Byte size of a type, as the kernel computes it for map keys and values."""
        btf_type = self.skip_aliases(type_id)
        if btf_type.kind in _SIZED_KINDS:
            return btf_type.size_or_type
        if btf_type.kind == KIND_PTR:
            return 8
        if btf_type.kind == KIND_ARRAY:
            elem, count = btf_type.array
            return count * self.size_of(elem)
        raise BtfError(f"BTF type {btf_type.id} (kind {btf_type.kind}) has no size")

    def datasec(self, name: str) -> BtfType | None:
        for btf_type in self.types:
            if btf_type.kind == KIND_DATASEC and btf_type.name == name:
                return btf_type
        return None


def read_string(strings: bytes, offset: int) -> str:
    if not 0 <= offset < len(strings):
        raise BtfError(f"BTF string offset {offset} out of range (string section is "
                       f"{len(strings)} bytes)")
    end = strings.find(b"\0", offset)
    if end < 0:
        raise BtfError(f"BTF string at offset {offset} is not terminated")
    try:
        return strings[offset:end].decode()
    except UnicodeDecodeError:
        raise BtfError(f"BTF string at offset {offset} is not UTF-8") from None


def parse_btf(data: bytes) -> Btf:
    """Parse and validate a .BTF section."""
    if len(data) < _HEADER.size:
        raise BtfError(f"BTF section is {len(data)} bytes, shorter than its header")
    magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = (
        _HEADER.unpack_from(data))
    if magic != BTF_MAGIC:
        raise BtfError(f"BTF has bad magic {magic:#06x}")
    if version != 1:
        raise BtfError(f"BTF version {version} is not supported")
    if hdr_len < _HEADER.size or hdr_len > len(data):
        raise BtfError(f"BTF header length {hdr_len} is invalid")
    body = len(data) - hdr_len
    if type_off + type_len > body or str_off + str_len > body:
        raise BtfError("BTF type or string section extends past the end of .BTF")
    if type_off % 4:
        raise BtfError(f"BTF type section offset {type_off} is not 4-byte aligned")
    strings = data[hdr_len + str_off:hdr_len + str_off + str_len]
    if strings and strings[-1] != 0:
        raise BtfError("BTF string section is not NUL-terminated")
    type_data = data[hdr_len + type_off:hdr_len + type_off + type_len]
    types = _parse_types(type_data, strings)
    _check_references(types)
    return Btf(types, strings)


def _parse_types(data: bytes, strings: bytes) -> tuple[BtfType, ...]:
    types: list[BtfType] = [BtfType(0, 0, "", 0, 0, False)]  # id 0: void
    param_refs: list[tuple[int, int]] = []  # (FUNC_PROTO id, parameter type id)
    pos = 0
    end = len(data)

    def take(layout: struct.Struct, count: int, type_id: int) -> list[tuple[int, ...]]:
        nonlocal pos
        need = layout.size * count
        if pos + need > end:
            raise BtfError(f"BTF type {type_id} extends past the end of the type section")
        out = [layout.unpack_from(data, pos + i * layout.size) for i in range(count)]
        pos += need
        return out

    while pos < end:
        type_id = len(types)
        name_off, info, size_or_type = take(_TYPE, 1, type_id)[0]
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        kind_flag = bool(info >> 31)
        name = read_string(strings, name_off) if name_off or strings else ""
        members: tuple[Member, ...] = ()
        array = (0, 0)
        var_infos: tuple[VarSecInfo, ...] = ()
        extra = 0
        if kind in (KIND_INT, KIND_VAR, KIND_DECL_TAG):
            extra = take(_U32, 1, type_id)[0][0]
        elif kind == KIND_ARRAY:
            elem, _index, nelems = take(_ARRAY, 1, type_id)[0]
            array = (elem, nelems)
        elif kind in (KIND_STRUCT, KIND_UNION):
            members = tuple(
                Member(read_string(strings, m_name), m_type,
                       m_off & 0xFFFFFF if kind_flag else m_off)
                for m_name, m_type, m_off in take(_MEMBER, vlen, type_id))
        elif kind == KIND_ENUM:
            take(_ENUM, vlen, type_id)
        elif kind == KIND_ENUM64:
            take(_ENUM64, vlen, type_id)
        elif kind == KIND_FUNC_PROTO:
            param_refs.extend((type_id, p_type) for _p_name, p_type in
                              take(_PARAM, vlen, type_id))
        elif kind == KIND_DATASEC:
            var_infos = tuple(VarSecInfo(v_type, v_off, v_size)
                              for v_type, v_off, v_size in take(_VARSECINFO, vlen, type_id))
        elif kind not in (KIND_PTR, KIND_FWD, KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST,
                          KIND_RESTRICT, KIND_FUNC, KIND_FLOAT, KIND_TYPE_TAG):
            raise BtfError(f"BTF type {type_id} has unknown kind {kind}")
        types.append(BtfType(type_id, kind, name, size_or_type, vlen, kind_flag,
                             members, array, var_infos, extra))
    count = len(types)
    for btf_type in types:
        if btf_type.kind in _REF_KINDS:
            _check_id(btf_type.size_or_type, btf_type.id, count)
        for member in btf_type.members:
            _check_id(member.type_id, btf_type.id, count)
        if btf_type.kind == KIND_ARRAY:
            _check_id(btf_type.array[0], btf_type.id, count)
        for var in btf_type.vars:
            _check_id(var.type_id, btf_type.id, count)
    for owner, ref in param_refs:
        _check_id(ref, owner, count)
    return tuple(types)


def _check_id(ref: int, owner: int, count: int) -> None:
    if ref >= count:
        raise BtfError(f"BTF type {owner} refers to type id {ref}, out of range "
                       f"(last id is {count - 1})")


def _check_references(types: tuple[BtfType, ...]) -> None:
    """Reject reference cycles that do not pass through a struct, union or function.

    A struct may point to itself through a member; a typedef, qualifier, pointer or
    array that reaches itself without a struct in between describes no type at all
    (the kernel rejects it too), and following it would never end.
    """
    chain_kinds = _REF_KINDS - {KIND_FUNC_PROTO} | {KIND_ARRAY}
    done = bytearray(len(types))  # 1 once a type's chain is known to end
    for start in range(1, len(types)):
        seen: list[int] = []
        on_path: set[int] = set()
        current = start
        while not done[current] and types[current].kind in chain_kinds:
            if current in on_path:
                raise BtfError(f"BTF type {current} is part of a reference cycle")
            on_path.add(current)
            seen.append(current)
            btf_type = types[current]
            current = (btf_type.array[0] if btf_type.kind == KIND_ARRAY
                       else btf_type.size_or_type)
        for type_id in seen:
            done[type_id] = 1

"""Wrap generated functions in a relocatable BPF ELF object, as clang lays one out.

The entry function sits alone in its program section (``xdp`` or ``tc``); every
subprogram and callback sits in ``.text`` under a local FUNC symbol, so the reader
splits functions the way it does for compiled code. Maps are legacy
``struct bpf_map_def`` entries in ``maps``; ``.data`` and ``.rodata`` are reached
through their section symbols. Relocations are those clang emits: R_BPF_64_64 on
``ld_imm64`` (maps, data, callback addresses) and R_BPF_64_32 on calls into
``.text`` (``imm = -1`` against the callee's symbol).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from progfuzz_gen import MAPS, CompiledFunc

EM_BPF = 247
ET_REL = 1
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_REL = 1, 2, 3, 9
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
STB_LOCAL, STB_GLOBAL = 0, 1
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION = 0, 1, 2, 3
R_BPF_64_64, R_BPF_64_32 = 1, 10
_MAP_TYPES = {"array": 2, "hash": 1}


@dataclass(frozen=True)
class _Sec:
    name: str
    sh_type: int
    flags: int
    data: bytes
    link: int = 0
    info: int = 0
    align: int = 8
    entsize: int = 0


class _StrTab:
    def __init__(self) -> None:
        self.data = bytearray(b"\0")

    def add(self, text: str) -> int:
        offset = len(self.data)
        self.data += text.encode() + b"\0"
        return offset


RODATA_VAR_BYTES = 8  # .rodata holds const volatile __u64 cv0, cv1, ...
PROG_ARRAY_DEF_BYTES = 32  # type, max_entries, key_size, value_size: four pointers
BPF_MAP_TYPE_PROG_ARRAY = 3
_KIND_INT, _KIND_PTR, _KIND_ARRAY, _KIND_STRUCT = 1, 2, 3, 4
_KIND_VOLATILE, _KIND_CONST, _KIND_FUNC_PROTO, _KIND_VAR, _KIND_DATASEC = 9, 10, 13, 14, 15


class _Btf:
    """Just enough BTF writing for the two things the fuzzer describes."""

    def __init__(self) -> None:
        self.strings = bytearray(b"\0")
        self.types = bytearray()
        self.count = 0

    def name(self, text: str) -> int:
        if not text:
            return 0
        offset = len(self.strings)
        self.strings += text.encode() + b"\0"
        return offset

    def add(self, name: str, kind: int, vlen: int, size_or_type: int,
            extra: bytes = b"") -> int:
        self.types += struct.pack("<III", self.name(name), (kind << 24) | vlen, size_or_type)
        self.types += extra
        self.count += 1
        return self.count

    def int_type(self, name: str, size: int) -> int:
        return self.add(name, _KIND_INT, 0, size, struct.pack("<I", 8 * size))

    def array(self, elem: int, index: int, nelems: int) -> int:
        return self.add("", _KIND_ARRAY, 0, 0, struct.pack("<III", elem, index, nelems))

    def uint_member(self, value: int, int_id: int) -> int:
        """``__uint(name, value)``: a pointer to int[value]."""
        return self.add("", _KIND_PTR, 0, self.array(int_id, int_id, value))

    def blob(self) -> bytes:
        header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(self.types),
                             len(self.types), len(self.strings))
        return header + bytes(self.types) + bytes(self.strings)


def _describe_rodata(btf: _Btf, rodata_bytes: int) -> None:
    """.rodata as clang describes ``const volatile __u64 cvN``: a DATASEC whose VARs
    have a CONST -> VOLATILE -> INT type (the mark of a loader-set global)."""
    u64 = btf.int_type("unsigned long long", 8)
    cv = btf.add("", _KIND_CONST, 0, btf.add("", _KIND_VOLATILE, 0, u64))
    nvars = rodata_bytes // RODATA_VAR_BYTES
    var_ids = [btf.add(f"cv{i}", _KIND_VAR, 0, cv, struct.pack("<I", 1))
               for i in range(nvars)]
    btf.add(".rodata", _KIND_DATASEC, nvars, rodata_bytes, b"".join(
        struct.pack("<III", vid, RODATA_VAR_BYTES * i, RODATA_VAR_BYTES)
        for i, vid in enumerate(var_ids)))


def _describe_prog_array(btf: _Btf, name: str, slots: int, section_bytes: int) -> None:
    """``struct { __uint(type, PROG_ARRAY); __uint(max_entries, N); __uint(key_size, 4);
    __uint(value_size, 4); __array(values, int (void)); } name SEC(".maps")``."""
    int_id = btf.int_type("int", 4)
    members = [("type", btf.uint_member(BPF_MAP_TYPE_PROG_ARRAY, int_id)),
               ("max_entries", btf.uint_member(slots, int_id)),
               ("key_size", btf.uint_member(4, int_id)),
               ("value_size", btf.uint_member(4, int_id))]
    proto = btf.add("", _KIND_FUNC_PROTO, 0, int_id)
    values = btf.array(btf.add("", _KIND_PTR, 0, proto), int_id, 0)
    body = b"".join(struct.pack("<III", btf.name(m), tid, 64 * i)
                    for i, (m, tid) in enumerate(members))
    body += struct.pack("<III", btf.name("values"), values, 64 * len(members))
    struct_id = btf.add("", _KIND_STRUCT, len(members) + 1, PROG_ARRAY_DEF_BYTES, body)
    var = btf.add(name, _KIND_VAR, 0, struct_id, struct.pack("<I", 1))
    btf.add(".maps", _KIND_DATASEC, 1, section_bytes, struct.pack("<III", var, 0,
                                                                   section_bytes))


def build_object(section: str, funcs: tuple[CompiledFunc, ...], data: bytes,
                 rodata: bytes, with_btf: bool = False,
                 targets: tuple[CompiledFunc, ...] = (), prog_array: str = "",
                 prog_array_slots: int = 0) -> bytes:
    """``funcs[0]`` is the program (in ``section``); the rest go to ``.text``. With
    ``with_btf``, BTF marks .rodata's variables loader-set. ``targets`` are tail-call
    programs, each in its own section (``1/N``, typed by the reader after the
    program's), put in slots 0, 1, ... of the BTF-defined prog array ``prog_array``."""
    main, subs = funcs[0], funcs[1:]
    sub_at: dict[str, int] = {}
    pos = 0
    for f in subs:
        sub_at[f.name] = pos
        pos += len(f.code)
    maps_blob = b"".join(struct.pack("<IIIII", _MAP_TYPES[t], k, v, n, 0)
                         for t, k, v, n in MAPS.values())
    btf_maps_bytes = PROG_ARRAY_DEF_BYTES + 8 * len(targets)
    secs: list[_Sec] = []
    index_of: dict[str, int] = {}

    def add_sec(sec: _Sec) -> int:
        secs.append(sec)
        index_of[sec.name] = len(secs)  # ELF index: the null section is 0
        return len(secs)

    def patched(f: CompiledFunc) -> bytes:
        code = bytearray(f.code)
        for r in f.relocs:
            if r.kind == "data":
                struct.pack_into("<i", code, 8 * r.slot + 4, r.offset)
        return bytes(code)

    exec_flags = SHF_ALLOC | SHF_EXECINSTR
    add_sec(_Sec(section, SHT_PROGBITS, exec_flags, patched(main)))
    add_sec(_Sec(".text", SHT_PROGBITS, exec_flags, b"".join(patched(f) for f in subs)))
    for n, target in enumerate(targets):
        add_sec(_Sec(f"1/{n}", SHT_PROGBITS, exec_flags, patched(target)))
    add_sec(_Sec("maps", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, maps_blob, align=4))
    if prog_array:
        add_sec(_Sec(".maps", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, bytes(btf_maps_bytes)))
    add_sec(_Sec(".data", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, data))
    add_sec(_Sec(".rodata", SHT_PROGBITS, SHF_ALLOC, rodata))
    license_bytes = b"GPL\0"
    add_sec(_Sec("license", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, license_bytes, align=1))
    if with_btf or prog_array:
        btf = _Btf()
        if with_btf:
            _describe_rodata(btf, len(rodata))
        if prog_array:
            _describe_prog_array(btf, prog_array, prog_array_slots, btf_maps_bytes)
        add_sec(_Sec(".BTF", SHT_PROGBITS, 0, btf.blob(), align=4))

    strtab = _StrTab()
    syms: list[bytes] = [bytes(24)]
    sym_index: dict[str, int] = {}

    def sym(name: str, bind: int, kind: int, shndx: int, value: int, size: int) -> None:
        sym_index[name] = len(syms)
        syms.append(struct.pack("<IBBHQQ", strtab.add(name) if kind != STT_SECTION else 0,
                                (bind << 4) | kind, 0, shndx, value, size))

    for sec_name in (".data", ".rodata"):
        sym(sec_name, STB_LOCAL, STT_SECTION, index_of[sec_name], 0, 0)
    for f in subs:
        sym(f.name, STB_LOCAL, STT_FUNC, index_of[".text"], sub_at[f.name], len(f.code))
    first_global = len(syms)
    sym(main.name, STB_GLOBAL, STT_FUNC, index_of[section], 0, len(main.code))
    for n, target in enumerate(targets):
        sym(target.name, STB_GLOBAL, STT_FUNC, index_of[f"1/{n}"], 0, len(target.code))
    for i, name in enumerate(MAPS):
        sym(name, STB_GLOBAL, STT_OBJECT, index_of["maps"], 20 * i, 20)
    if prog_array:
        sym(prog_array, STB_GLOBAL, STT_OBJECT, index_of[".maps"], 0, btf_maps_bytes)
    sym("_license", STB_GLOBAL, STT_OBJECT, index_of["license"], 0, len(license_bytes))
    if with_btf:
        for index in range(len(rodata) // RODATA_VAR_BYTES):
            sym(f"cv{index}", STB_GLOBAL, STT_OBJECT, index_of[".rodata"],
                RODATA_VAR_BYTES * index, RODATA_VAR_BYTES)

    def rels(fs: tuple[CompiledFunc, ...], base: dict[str, int]) -> bytes:
        out = bytearray()
        for f in fs:
            for r in f.relocs:
                rtype = R_BPF_64_32 if r.kind == "call" else R_BPF_64_64
                out += struct.pack("<QQ", base[f.name] + 8 * r.slot,
                                   (sym_index[r.target] << 32) | rtype)
        return bytes(out)

    rel_secs = [(".rel" + section, rels((main,), {main.name: 0}), index_of[section]),
                (".rel.text", rels(subs, sub_at), index_of[".text"])]
    rel_secs += [(f".rel1/{n}", rels((t,), {t.name: 0}), index_of[f"1/{n}"])
                 for n, t in enumerate(targets)]
    if prog_array:  # .values[n] = &targets[n]
        rel_secs.append((".rel.maps", b"".join(
            struct.pack("<QQ", PROG_ARRAY_DEF_BYTES + 8 * n,
                        (sym_index[t.name] << 32) | R_BPF_64_64)
            for n, t in enumerate(targets)), index_of[".maps"]))
    symtab_index = len(secs) + len(rel_secs) + 1
    for name, blob, info in rel_secs:
        add_sec(_Sec(name, SHT_REL, 0, blob, link=symtab_index, info=info, entsize=16))
    add_sec(_Sec(".symtab", SHT_SYMTAB, 0, b"".join(syms), link=symtab_index + 1,
                 info=first_global, entsize=24))
    add_sec(_Sec(".strtab", SHT_STRTAB, 0, bytes(strtab.data), align=1))
    shstr = _StrTab()
    name_offs = [shstr.add(sec.name) for sec in secs]
    name_offs.append(shstr.add(".shstrtab"))
    secs.append(_Sec(".shstrtab", SHT_STRTAB, 0, bytes(shstr.data), align=1))
    body = bytearray()
    headers = [bytes(64)]
    for sec, name_off in zip(secs, name_offs, strict=True):
        body += bytes((-(64 + len(body))) % 8)
        offset = 64 + len(body)
        body += sec.data
        headers.append(struct.pack("<IIQQQQIIQQ", name_off, sec.sh_type, sec.flags, 0, offset,
                                   len(sec.data), sec.link, sec.info, sec.align, sec.entsize))
    body += bytes((-(64 + len(body))) % 8)
    shoff = 64 + len(body)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIQQQIHHHHHH", ET_REL, EM_BPF, 1, 0, 0, shoff, 0, 64, 0,
                                 0, 64, len(headers), len(headers) - 1)
    return header + bytes(body) + b"".join(headers)

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


def rodata_btf(rodata_bytes: int) -> bytes:
    """BTF describing .rodata as clang does for ``const volatile __u64 cvN``: a DATASEC
    whose VARs have a CONST -> VOLATILE -> INT type (the mark of a loader-set global)."""
    strings = bytearray(b"\0")

    def name(text: str) -> int:
        offset = len(strings)
        strings.extend(text.encode() + b"\0")
        return offset

    def head(name_off: int, kind: int, vlen: int, size_or_type: int) -> bytes:
        return struct.pack("<III", name_off, (kind << 24) | vlen, size_or_type)

    nvars = rodata_bytes // RODATA_VAR_BYTES
    types = bytearray(head(name("unsigned long long"), 1, 0, 8) + struct.pack("<I", 64))
    types += head(0, 9, 0, 1)  # 2: volatile
    types += head(0, 10, 0, 2)  # 3: const volatile
    for index in range(nvars):  # 4..: VAR cvN, global linkage
        types += head(name(f"cv{index}"), 14, 0, 3) + struct.pack("<I", 1)
    types += head(name(".rodata"), 15, nvars, rodata_bytes)
    for index in range(nvars):
        types += struct.pack("<III", 4 + index, RODATA_VAR_BYTES * index, RODATA_VAR_BYTES)
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types),
                         len(strings))
    return header + bytes(types) + bytes(strings)


def build_object(section: str, funcs: tuple[CompiledFunc, ...], data: bytes,
                 rodata: bytes, with_btf: bool = False) -> bytes:
    """``funcs[0]`` is the program (in ``section``); the rest go to ``.text``. With
    ``with_btf``, a .BTF section marks .rodata's variables loader-set."""
    main, subs = funcs[0], funcs[1:]
    text = b"".join(f.code for f in subs)
    sub_at: dict[str, int] = {}
    pos = 0
    for f in subs:
        sub_at[f.name] = pos
        pos += len(f.code)
    maps_blob = b"".join(struct.pack("<IIIII", _MAP_TYPES[t], k, v, n, 0)
                         for t, k, v, n in MAPS.values())
    # section indices: 1 prog, 2 .text, 3 maps, 4 .data, 5 .rodata, 6 license, then rels
    sec_index = {section: 1, ".text": 2, "maps": 3, ".data": 4, ".rodata": 5}
    strtab = _StrTab()
    syms: list[bytes] = [bytes(24)]
    sym_index: dict[str, int] = {}

    def sym(name: str, bind: int, kind: int, shndx: int, value: int, size: int) -> None:
        sym_index[name] = len(syms)
        syms.append(struct.pack("<IBBHQQ", strtab.add(name) if kind != STT_SECTION else 0,
                                (bind << 4) | kind, 0, shndx, value, size))

    for sec_name in (".data", ".rodata"):
        sym(sec_name, STB_LOCAL, STT_SECTION, sec_index[sec_name], 0, 0)
    for f in subs:
        sym(f.name, STB_LOCAL, STT_FUNC, 2, sub_at[f.name], len(f.code))
    first_global = len(syms)
    sym(main.name, STB_GLOBAL, STT_FUNC, 1, 0, len(main.code))
    for i, name in enumerate(MAPS):
        sym(name, STB_GLOBAL, STT_OBJECT, 3, 20 * i, 20)
    license_bytes = b"GPL\0"
    sym("_license", STB_GLOBAL, STT_OBJECT, 6, 0, len(license_bytes))
    if with_btf:
        for index in range(len(rodata) // RODATA_VAR_BYTES):
            sym(f"cv{index}", STB_GLOBAL, STT_OBJECT, 5, RODATA_VAR_BYTES * index,
                RODATA_VAR_BYTES)

    def rels(fs: tuple[CompiledFunc, ...], base: dict[str, int]) -> bytes:
        out = bytearray()
        for f in fs:
            for r in f.relocs:
                offset = base[f.name] + 8 * r.slot
                if r.kind == "call":
                    target, rtype = sym_index[r.target], R_BPF_64_32
                elif r.kind == "func_ptr":
                    target, rtype = sym_index[r.target], R_BPF_64_64
                elif r.kind == "map":
                    target, rtype = sym_index[r.target], R_BPF_64_64
                else:  # data: the section symbol; the offset is in the ld_imm64's imm
                    target, rtype = sym_index[r.target], R_BPF_64_64
                out += struct.pack("<QQ", offset, (target << 32) | rtype)
        return bytes(out)

    def patched(f: CompiledFunc) -> bytes:
        code = bytearray(f.code)
        for r in f.relocs:
            if r.kind == "data":
                struct.pack_into("<i", code, 8 * r.slot + 4, r.offset)
        return bytes(code)

    main_code = patched(main)
    text = b"".join(patched(f) for f in subs)
    secs = [
        _Sec(section, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, main_code),
        _Sec(".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, text),
        _Sec("maps", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, maps_blob, align=4),
        _Sec(".data", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, data),
        _Sec(".rodata", SHT_PROGBITS, SHF_ALLOC, rodata),
        _Sec("license", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, license_bytes, align=1),
    ]
    if with_btf:
        secs.append(_Sec(".BTF", SHT_PROGBITS, 0, rodata_btf(len(rodata)), align=4))
    symtab_index = len(secs) + 3  # after the two rel sections
    secs.append(_Sec(".rel" + section, SHT_REL, 0, rels((main,), {main.name: 0}),
                     link=symtab_index, info=1, entsize=16))
    secs.append(_Sec(".rel.text", SHT_REL, 0, rels(subs, sub_at), link=symtab_index, info=2,
                     entsize=16))
    secs.append(_Sec(".symtab", SHT_SYMTAB, 0, b"".join(syms), link=symtab_index + 1,
                     info=first_global, entsize=24))
    secs.append(_Sec(".strtab", SHT_STRTAB, 0, bytes(strtab.data), align=1))
    shstr = _StrTab()
    name_offs = [shstr.add(s.name) for s in secs]
    shstr_off = shstr.add(".shstrtab")
    secs.append(_Sec(".shstrtab", SHT_STRTAB, 0, bytes(shstr.data), align=1))
    name_offs.append(shstr_off)
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

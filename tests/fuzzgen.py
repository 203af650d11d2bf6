"""Structure-aware mutations of BPF objects and budget files, for tests/test_fuzz.py.

Each mutator takes a parsed seed (:class:`Layout`: where the ELF header, section
headers, code, relocations and BTF sit) plus a few integers chosen by hypothesis, and
returns new file bytes. They aim at what the reader and the analysis interpret: header
counts and offsets, section sizes, relocation records, BTF type records, and the
instructions themselves (jumps into the middle of ld_imm64, self-loops, random code).
"""

from __future__ import annotations

import importlib.util
import random
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from elftools.elf.elffile import ELFFile

REPO = Path(__file__).resolve().parent.parent

EHDR_SIZE = 64
SHDR_SIZE = 64
# Offsets inside the ELF64 header and a section header.
E_SHOFF, E_SHNUM, E_SHSTRNDX = 0x28, 0x3C, 0x3E
SH_TYPE, SH_OFFSET, SH_SIZE, SH_LINK, SH_INFO, SH_ENTSIZE = 0x04, 0x18, 0x20, 0x28, 0x2C, 0x38
BTF_HDR_SIZE = 24  # magic, version, flags, hdr_len, type_off, type_len, str_off, str_len
BTF_KIND_PTR, BTF_KIND_STRUCT, BTF_KIND_TYPEDEF = 2, 4, 8
LD_IMM64 = 0x18
JA = 0x05


def load_gen_synthetic() -> ModuleType:
    """benchmarks/gen_synthetic.py, which writes minimal BPF ELF files without clang."""
    name = "gen_synthetic"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "gen_synthetic.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    header: int  # file offset of its section header
    offset: int
    size: int
    sh_type: int
    executable: bool


@dataclass(frozen=True)
class Layout:
    name: str
    data: bytes
    shoff: int
    sections: tuple[Section, ...]

    def named(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    @property
    def code(self) -> tuple[Section, ...]:
        return tuple(s for s in self.sections if s.executable and s.size >= 8)

    @property
    def relocs(self) -> tuple[Section, ...]:
        return tuple(s for s in self.sections if s.sh_type == 9 and s.size >= 16)  # SHT_REL


def parse(name: str, data: bytes) -> Layout:
    import io

    elf = ELFFile(io.BytesIO(data))
    sections = []
    for index, sec in enumerate(elf.iter_sections()):
        sections.append(Section(index, sec.name, elf["e_shoff"] + index * SHDR_SIZE,
                                sec["sh_offset"], sec["sh_size"],
                                _sh_type_number(data, elf["e_shoff"] + index * SHDR_SIZE),
                                bool(sec["sh_flags"] & 0x4)))
    return Layout(name, data, elf["e_shoff"], tuple(sections))


def _sh_type_number(data: bytes, header: int) -> int:
    return int(struct.unpack_from("<I", data, header + SH_TYPE)[0])


def _patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    """Write ``value`` (wrapped to the field's width) as an unsigned field at ``offset``."""
    size = struct.calcsize(fmt)
    if offset < 0 or offset + size > len(data):
        return data
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value & ((1 << (8 * size)) - 1))
    return bytes(out)


# --------------------------------------------------------------------- byte level

def bit_flips(layout: Layout, positions: list[int]) -> bytes:
    out = bytearray(layout.data)
    for pos in positions:
        byte = (pos // 8) % len(out)
        out[byte] ^= 1 << (pos % 8)
    return bytes(out)


def truncate(layout: Layout, keep: int) -> bytes:
    return layout.data[: keep % (len(layout.data) + 1)]


# ------------------------------------------------------------------ ELF structure

INTERESTING = (0, 1, 7, 8, 0x7F, 0xFF, 0x100, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF,
               1 << 32, 1 << 40, (1 << 63) - 1, (1 << 64) - 1)


def header_field(layout: Layout, field: int, value: int) -> bytes:
    """Set e_shoff, e_shnum or e_shstrndx to an interesting or arbitrary value."""
    offset, fmt = ((E_SHOFF, "<Q"), (E_SHNUM, "<H"), (E_SHSTRNDX, "<H"))[field % 3]
    return _patch(layout.data, offset, fmt, value)


def section_field(layout: Layout, section: int, field: int, value: int) -> bytes:
    """Set one section's sh_offset, sh_size, sh_link, sh_info, sh_entsize or sh_type."""
    sec = layout.sections[section % len(layout.sections)]
    offset, fmt = ((SH_OFFSET, "<Q"), (SH_SIZE, "<Q"), (SH_LINK, "<I"), (SH_INFO, "<I"),
                   (SH_ENTSIZE, "<Q"), (SH_TYPE, "<I"))[field % 6]
    return _patch(layout.data, sec.header + offset, fmt, value)


def inflate_size(layout: Layout, section: int, factor: int) -> bytes:
    """Grow a section's sh_size past the end of the file (or by an absurd amount)."""
    sec = layout.sections[section % len(layout.sections)]
    size = max(sec.size, 1) * (2 + factor % 1_000_000) + len(layout.data)
    return _patch(layout.data, sec.header + SH_SIZE, "<Q", size)


# -------------------------------------------------------------------------- BTF

def btf_header(layout: Layout, field: int, value: int) -> bytes:
    """Patch one field of the .BTF header: version, hdr_len, type/str offsets and lengths."""
    sec = layout.named(".BTF")
    if sec is None or sec.size < BTF_HDR_SIZE:
        return header_field(layout, field, value)
    offsets = (2, 4, 8, 12, 16, 20)  # version(u8 at 2), hdr_len, type_off/len, str_off/len
    which = offsets[field % len(offsets)]
    fmt = "<B" if which == 2 else "<I"
    return _patch(layout.data, sec.offset + which, fmt, value)


def _btf_types(layout: Layout) -> list[tuple[int, int, int]]:
    """(file offset, kind, vlen) of every BTF type record of the seed, in id order."""
    sec = layout.named(".BTF")
    if sec is None:
        return []
    data = layout.data
    hdr_len, type_off, type_len = struct.unpack_from("<III", data, sec.offset + 4)
    pos = sec.offset + hdr_len + type_off
    end = pos + type_len
    records = []
    while pos + 12 <= end:
        info = struct.unpack_from("<I", data, pos + 4)[0]
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        records.append((pos, kind, vlen))
        pos += 12 + _btf_extra(kind, vlen)
    return records


def _btf_extra(kind: int, vlen: int) -> int:
    if kind in (1, 14, 16):  # INT, VAR, DECL_TAG: one u32 (VAR/DECL_TAG: one u32)
        return 4
    if kind == 3:  # ARRAY
        return 12
    if kind in (4, 5):  # STRUCT, UNION
        return 12 * vlen
    if kind == 6:  # ENUM
        return 8 * vlen
    if kind == 13:  # FUNC_PROTO
        return 8 * vlen
    if kind == 15:  # DATASEC
        return 12 * vlen
    if kind == 19:  # ENUM64
        return 12 * vlen
    return 0


def btf_cycle(layout: Layout, pick: int, target: int) -> bytes:
    """Point a type-referencing record (ptr/typedef/const/...) at itself or another id,
    making reference cycles such as typedef A -> typedef A or ptr -> struct -> ptr."""
    records = [(pos, kind, vlen) for pos, kind, vlen in _btf_types(layout)
               if kind in (2, 7, 8, 9, 10, 11, 12, 18)]  # PTR FWD TYPEDEF VOLATILE CONST...
    if not records:
        return btf_header(layout, pick, target)
    all_ids = len(_btf_types(layout))
    pos, _kind, _vlen = records[pick % len(records)]
    own_id = 1 + [r[0] for r in _btf_types(layout)].index(pos)
    type_id = own_id if target % 3 == 0 else (target % (all_ids + 2))
    return _patch(layout.data, pos + 8, "<I", type_id)


def btf_absurd(layout: Layout, pick: int, value: int) -> bytes:
    """Give a record an absurd size, member count or array length."""
    records = _btf_types(layout)
    if not records:
        return btf_header(layout, pick, value)
    pos, kind, _vlen = records[pick % len(records)]
    choice = value % 3
    if choice == 0:  # vlen: the record claims many more members than follow it
        info = struct.unpack_from("<I", layout.data, pos + 4)[0]
        return _patch(layout.data, pos + 4, "<I", (info & ~0xFFFF) | (value & 0xFFFF))
    if choice == 1 or kind != 3:  # size
        return _patch(layout.data, pos + 8, "<I", value | 0x80000000)
    return _patch(layout.data, pos + 12 + 8, "<I", value)  # ARRAY nelems


# ------------------------------------------------------------------- relocations

def reloc_anywhere(layout: Layout, pick: int, field: int, value: int) -> bytes:
    """Point a relocation's r_offset anywhere, or its symbol index / type at garbage."""
    secs = layout.relocs
    if not secs:
        return section_field(layout, pick, field, value)
    sec = secs[pick % len(secs)]
    record = sec.offset + 16 * ((pick // len(secs)) % (sec.size // 16))
    if field % 3 == 0:
        return _patch(layout.data, record, "<Q", value)  # r_offset
    info = struct.unpack_from("<Q", layout.data, record + 8)[0]
    if field % 3 == 1:
        return _patch(layout.data, record + 8, "<Q", (info & 0xFFFFFFFF) | (value << 32))  # sym
    return _patch(layout.data, record + 8, "<Q", (info & ~0xFFFFFFFF) | (value & 0xFFFFFFFF))


# ------------------------------------------------------------------ instructions

def _slots(layout: Layout) -> list[tuple[Section, int]]:
    return [(sec, sec.offset + 8 * i) for sec in layout.code for i in range(sec.size // 8)]


def jump_into_ld_imm64(layout: Layout, pick: int) -> bytes:
    """Rewrite an instruction as a jump to the second half of a 16-byte ld_imm64."""
    slots = _slots(layout)
    if not slots:
        return layout.data
    targets = [(sec, off) for sec, off in slots if layout.data[off] == LD_IMM64]
    if not targets:
        # no ld_imm64 in the seed: write one, then jump into it
        sec, off = slots[pick % len(slots)]
        data = layout.data
        if off + 16 <= sec.offset + sec.size:
            data = data[:off] + bytes([LD_IMM64, 0]) + bytes(14) + data[off + 16:]
        targets = [(sec, off)]
        layout = Layout(layout.name, data, layout.shoff, layout.sections)
    sec, target = targets[pick % len(targets)]
    sources = [off for s, off in slots if s is sec and off != target]
    if not sources:
        return layout.data
    source = sources[(pick // len(targets)) % len(sources)]
    rel = (target + 8 - source) // 8 - 1  # land on the ld_imm64's second slot
    insn = struct.pack("<BBhi", JA, 0, rel, 0) if -32768 <= rel < 32768 else None
    if insn is None:
        return layout.data
    return layout.data[:source] + insn + layout.data[source + 8:]


def self_loop(layout: Layout, pick: int, conditional: bool) -> bytes:
    """Replace an instruction with `ja -1` (or `if r0 == 0 goto -1`): a jump to itself."""
    slots = _slots(layout)
    if not slots:
        return layout.data
    _sec, off = slots[pick % len(slots)]
    insn = struct.pack("<BBhi", 0x15 if conditional else JA, 0, -1, 0)
    return layout.data[:off] + insn + layout.data[off + 8:]


def random_insns(layout: Layout, pick: int, seed: int) -> bytes:
    """Overwrite one instruction slot of the seed with random bytes."""
    slots = _slots(layout)
    if not slots:
        return layout.data
    _sec, off = slots[pick % len(slots)]
    noise = random.Random(seed).randbytes(8)
    return layout.data[:off] + noise + layout.data[off + 8:]


# Well-formed instructions for plausible random code: (opcode, imm range). ALU ops with
# their operand rules (shifts by less than the width), conditional jumps of both
# widths, loads and stores of every size.
_ALU_OPS = (0x00, 0x10, 0x20, 0x40, 0x50, 0xA0, 0xB0)  # add sub mul or and xor mov
_SHIFT_OPS = (0x60, 0x70, 0xC0)  # lsh rsh arsh
_COND_JUMPS = (0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xA0, 0xB0, 0xC0, 0xD0)
_MEM_OPS = (0x61, 0x69, 0x71, 0x79, 0x63, 0x6B, 0x73, 0x7B)  # ldx, stx: w h b dw


def _random_insn(rng: random.Random, pc: int, n_slots: int) -> bytes:
    kind = rng.randrange(4)
    dst, src = rng.randrange(10), rng.randrange(11)  # r10 is never written
    if kind == 0:
        op = rng.choice((0x04, 0x07)) | rng.choice(_ALU_OPS) | rng.choice((0, 8))
        return struct.pack("<BBhi", op, (src << 4) | dst, 0, rng.randrange(-1000, 1000))
    if kind == 1:
        cls = rng.choice((0x04, 0x07))
        op = cls | rng.choice(_SHIFT_OPS)
        width = 64 if cls == 0x07 else 32
        return struct.pack("<BBhi", op, dst, 0, rng.randrange(width))
    if kind == 2:
        op = rng.choice((0x05, 0x06)) | rng.choice(_COND_JUMPS) | rng.choice((0, 8))
        off = rng.randrange(-min(pc, 64), min(n_slots - pc - 2, 64) + 1)
        return struct.pack("<BBhi", op, (src << 4) | dst, off, rng.randrange(-100, 100))
    op = rng.choice(_MEM_OPS)
    base = 10 if op & 0x02 == 0x02 or rng.randrange(2) else src  # mostly the stack
    if op & 0x07 == 0x01:  # ldx dst = *(base + off)
        return struct.pack("<BBhi", op, (base << 4) | dst, -8 * rng.randrange(1, 64), 0)
    return struct.pack("<BBhi", op, (src << 4) | base, -8 * rng.randrange(1, 64), 0)


def megabyte_program(seed: int, valid: bool, size_bytes: int = 1 << 20) -> bytes:
    """A BPF object whose one program is 1 MB of random instructions.

    ``valid``: well-formed instructions (ALU, shifts, conditional jumps that stay inside
    the program, loads and stores), so the analysis, not only the decoder, sees them;
    otherwise raw random bytes.
    """
    rng = random.Random(seed)
    n_slots = size_bytes // 8
    if not valid:
        code = rng.randbytes(n_slots * 8 - 8) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    else:
        parts = [_random_insn(rng, pc, n_slots) for pc in range(n_slots - 1)]
        parts.append(struct.pack("<BBhi", 0x95, 0, 0, 0))
        code = b"".join(parts)
    return load_gen_synthetic().build_object(code, "xdp", "random_prog")


# ---------------------------------------------------------------- budget files

CONFIG_KEYS = ("baseline", "analyze", "sources", "objects", "regression", "allowed",
               "unbounded", "unmatched", "budget", "type", "section", "name", "program",
               "max_insns", "max_time", "cost_table", "tail_calls", "build", "flags",
               "clang", "max_insn", "secton", "max_tme", "budgets", "", "a.b", "\u00e9")
CONFIG_VALUES = ('"1.5us"', '"800ns"', '"5%"', '"-5%"', '"1e400us"', '"nan%"', '"us"',
                 "-1", "0", "1", "9223372036854775808", "1e308", "inf", "nan", "true",
                 '"fail"', '"warn"', '"xdp"', '"kprobe/*"', '"["', '"../../etc/passwd"',
                 "[]", '["a", 1]', "[[1]]", "{}", '{max_insns = 3}', '"\\u0000"',
                 "1979-05-27T07:32:00Z", '"' + "x" * 200 + '"')
TABLES = ("", "[analyze]", "[regression]", "[[budget]]", "[build]", "[tail_calls]",
          "[budget]", "[[analyze]]", "[regression.allowed]", "[[budget.x]]")


def config_text(choices: list[tuple[int, int, int]]) -> str:
    """A TOML-ish budget file built from (table, key, value) choices; may be invalid."""
    lines = []
    for table, key, value in choices:
        header = TABLES[table % len(TABLES)]
        if header:
            lines.append(header)
        lines.append(f"{_toml_key(CONFIG_KEYS[key % len(CONFIG_KEYS)])} = "
                     f"{CONFIG_VALUES[value % len(CONFIG_VALUES)]}")
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").isalnum() and key.isascii() else f'"{key}"'

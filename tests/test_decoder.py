"""The decoder against llvm-objdump, and hand-assembled v4 and malformed encodings.

llvm-objdump's *assembly text* is parsed back into opcode byte, registers, offset
and immediate by the independent tables below (not by bpflint's opcode module), so
the comparison proves the decoder reads every field the way LLVM does.
"""

from __future__ import annotations

import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from bpfc import PROGS, compile_bpf, find_clang, find_llvm_objdump
from elftools.elf.elffile import ELFFile

from bpflint.errors import BpfLintError
from bpflint.isa.insn import DecodeError, Insn, check_jumps, decode, decode_section
from bpflint.isa.meta import SourceLine

LLVM_OBJDUMP = find_llvm_objdump()
needs_objdump = pytest.mark.skipif(LLVM_OBJDUMP is None, reason="llvm-objdump not installed")
needs_clang = pytest.mark.skipif(find_clang() is None, reason="clang not installed")

SOURCES = sorted(PROGS.glob("**/*.bpf.c"))
CPU_FLAGS = {"default": (), "v4": ("-mcpu=v4",)}

# --- independent encoding tables (RFC 9669), deliberately not imported ---------
SIZE = {"u32": 0x00, "u16": 0x08, "u8": 0x10, "u64": 0x18,
        "s32": 0x00, "s16": 0x08, "s8": 0x10}
ALU_OP = {"+": 0x00, "-": 0x10, "*": 0x20, "/": 0x30, "|": 0x40, "&": 0x50, "<<": 0x60,
          ">>": 0x70, "%": 0x90, "^": 0xA0, "": 0xB0, "s>>": 0xC0, "s/": 0x30, "s%": 0x90}
JMP_OP = {"==": 0x10, ">": 0x20, ">=": 0x30, "&": 0x40, "!=": 0x50, "s>": 0x60,
          "s>=": 0x70, "<": 0xA0, "<=": 0xB0, "s<": 0xC0, "s<=": 0xD0}
ATOMIC_OP = {"+": 0x00, "|": 0x40, "&": 0x50, "^": 0xA0,
             "add": 0x00, "or": 0x40, "and": 0x50, "xor": 0xA0}
ENDIAN_OPCODE = {"le": 0xD4, "be": 0xDC, "bswap": 0xD7}


@dataclass(frozen=True)
class Expected:
    opcode: int
    dst: int
    src: int | None  # None: the text does not show it (call)
    off: int
    imm: int
    jump_delta: int | None = None  # for branches: slots relative to the next insn


def _num(text: str) -> int:
    return int(text, 16) if not text.startswith("-") else -int(text[1:], 16)


def _disp(sign: str, value: str) -> int:
    return -_num(value) if sign == "-" else _num(value)


REG = r"([rw])(\d+)"
NUM = r"(-?0x[0-9a-f]+)"
MEM = r"\(r(\d+) ([+-]) (0x[0-9a-f]+)\)"
OPERAND = r"(?:[rw](\d+)|" + NUM + r")"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), kind) for p, kind in (
        (r"exit", "exit"),
        (rf"call {NUM}", "call"),
        (r"goto ([+-]0x[0-9a-f]+)", "goto"),
        (r"gotol ([+-]0x[0-9a-f]+)", "gotol"),
        (r"may_goto ([+-]0x[0-9a-f]+)", "may_goto"),
        (rf"if {REG} (==|>=|>|&|!=|s>=|s>|<=|<|s<=|s<) {OPERAND} goto ([+-]0x[0-9a-f]+)", "if"),
        (rf"r(\d+) = {NUM} ll", "ld_imm64"),
        (r"ld_pseudo\tr(\d+), (0x[0-9a-f]+), (0x[0-9a-f]+)", "ld_pseudo"),
        (rf"r0 = \*\((u\d+) \*\)skb\[{OPERAND}\]", "ld_pkt"),
        (rf"{REG} = \*\(([us]\d+) \*\){MEM}", "ldx"),
        (rf"\*\((u\d+) \*\){MEM} = {OPERAND}", "store"),
        (rf"lock \*\((u\d+) \*\){MEM} ([+|&^])= {REG}", "atomic"),
        (rf"{REG} = atomic_fetch_(add|or|and|xor)\(\((u\d+) \*\){MEM}, {REG}\)", "fetch"),
        (rf"{REG} = xchg(?:_64|32_32)\(r(\d+) ([+-]) (0x[0-9a-f]+), {REG}\)", "xchg"),
        (rf"([rw])0 = cmpxchg(?:_64|32_32)\(r(\d+) ([+-]) (0x[0-9a-f]+), [rw]0, {REG}\)",
         "cmpxchg"),
        (rf"{REG} = -[rw](\d+)", "neg"),
        (rf"{REG} = (le|be|bswap)(16|32|64) [rw](\d+)", "endian"),
        (rf"{REG} = \(s(8|16|32)\)[rw](\d+)", "movsx"),
        (rf"{REG} (s>>|s/|s%|<<|>>|[-+*/|&%^]|)= {OPERAND}", "alu"),
    )
]


def parse_llvm(text: str) -> Expected:
    """Turn one line of llvm-objdump assembly into the encoding it denotes."""
    for pattern, kind in _PATTERNS:
        m = pattern.fullmatch(text)
        if m:
            return _expected(kind, m.groups())
    raise AssertionError(f"llvm-objdump text not understood by the test: {text!r}")


def _expected(kind: str, g: tuple[str | None, ...]) -> Expected:  # noqa: C901 - a table
    s = [x or "" for x in g]
    if kind == "exit":
        return Expected(0x95, 0, 0, 0, 0)
    if kind == "call":
        return Expected(0x85, 0, None, 0, _num(s[0]))
    if kind == "goto":
        return Expected(0x05, 0, 0, _num(s[0]), 0, _num(s[0]))
    if kind == "gotol":
        return Expected(0x06, 0, 0, 0, _num(s[0]), _num(s[0]))
    if kind == "may_goto":
        return Expected(0xE5, 0, 0, _num(s[0]), 0, _num(s[0]))
    if kind == "if":
        cls = 0x05 if s[0] == "r" else 0x06
        delta = _num(s[5])
        if s[3]:
            return Expected(cls | JMP_OP[s[2]] | 0x08, int(s[1]), int(s[3]), delta, 0, delta)
        return Expected(cls | JMP_OP[s[2]], int(s[1]), 0, delta, _num(s[4]), delta)
    if kind == "ld_imm64":
        return Expected(0x18, int(s[0]), 0, 0, _num(s[1]) & (2**64 - 1))
    if kind == "ld_pseudo":
        return Expected(0x18, int(s[0]), int(s[1], 16), 0, int(s[2], 16))
    if kind == "ld_pkt":
        if s[1]:
            return Expected(0x40 | SIZE[s[0]], 0, int(s[1]), 0, 0)
        return Expected(0x20 | SIZE[s[0]], 0, 0, 0, _num(s[2]))
    if kind == "ldx":
        mode = 0x80 if s[2].startswith("s") else 0x60
        return Expected(0x01 | mode | SIZE[s[2]], int(s[1]), int(s[3]), _disp(s[4], s[5]), 0)
    if kind == "store":
        off = _disp(s[2], s[3])
        if s[4]:
            return Expected(0x63 | SIZE[s[0]], int(s[1]), int(s[4]), off, 0)
        return Expected(0x62 | SIZE[s[0]], int(s[1]), 0, off, _num(s[5]))
    if kind == "atomic":
        return Expected(0xC3 | SIZE[s[0]], int(s[1]), int(s[6]), _disp(s[2], s[3]),
                        ATOMIC_OP[s[4]])
    if kind == "fetch":
        return Expected(0xC3 | SIZE[s[3]], int(s[4]), int(s[8]), _disp(s[5], s[6]),
                        ATOMIC_OP[s[2]] | 0x01)
    if kind == "xchg":
        size = 0x18 if s[0] == "r" else 0x00
        return Expected(0xC3 | size, int(s[2]), int(s[6]), _disp(s[3], s[4]), 0xE1)
    if kind == "cmpxchg":
        size = 0x18 if s[0] == "r" else 0x00
        return Expected(0xC3 | size, int(s[1]), int(s[5]), _disp(s[2], s[3]), 0xF1)
    cls = 0x07 if s[0] == "r" else 0x04
    if kind == "neg":
        return Expected(cls | 0x80, int(s[1]), 0, 0, 0)
    if kind == "endian":
        return Expected(ENDIAN_OPCODE[s[2]], int(s[1]), 0, 0, int(s[3]))
    if kind == "movsx":
        return Expected(cls | 0xB0 | 0x08, int(s[1]), int(s[3]), int(s[2]), 0)
    # alu
    off = 1 if s[2] in ("s/", "s%") else 0
    if s[3]:
        return Expected(cls | ALU_OP[s[2]] | 0x08, int(s[1]), int(s[3]), off, 0)
    return Expected(cls | ALU_OP[s[2]], int(s[1]), 0, off, _num(s[4]))


# --- llvm-objdump output -------------------------------------------------------
_SYMBOL = re.compile(r"^([0-9a-f]{16}) <(.+)>:$")
_SECTION = re.compile(r"^Disassembly of section (.+):$")
_INSN = re.compile(r"^\s*(\d+):\t(?:[0-9a-f]{2} ?)+\t(.*)$")
_TARGET = re.compile(r" <([^<>\s+]+)(?:\+(0x[0-9a-f]+))?>$")


@dataclass(frozen=True)
class LlvmInsn:
    pc: int
    text: str
    target_pc: int | None  # from the "<sym+0xbytes>" or "<label>" annotation of branches


def symbol_addresses(obj: Path) -> dict[tuple[str, str], int]:
    """(section name, symbol name) -> byte address, for resolving branch labels."""
    with open(obj, "rb") as handle:
        elf = ELFFile(handle)
        names = {i: sec.name for i, sec in enumerate(elf.iter_sections())}
        symtab = elf.get_section_by_name(".symtab")
        assert symtab is not None
        return {(names.get(sym["st_shndx"], ""), sym.name): sym["st_value"]
                for sym in symtab.iter_symbols()
                if isinstance(sym["st_shndx"], int) and sym.name}


def llvm_disassembly(obj: Path) -> dict[str, list[LlvmInsn]]:
    """Section name -> instructions, as llvm-objdump -d prints them.

    ``+alu32`` makes llvm-objdump decode 32-bit atomics (it prints ``<unknown>``
    without it); it only changes register letters, which the parser ignores.
    """
    assert LLVM_OBJDUMP is not None
    out = subprocess.run([LLVM_OBJDUMP, "-d", "--mattr=+alu32", str(obj)],
                         capture_output=True, text=True, check=True).stdout
    symbols = symbol_addresses(obj)
    sections: dict[str, list[LlvmInsn]] = {}
    section = ""
    current: list[LlvmInsn] = []
    for line in out.splitlines():
        if m := _SECTION.match(line):
            section = m.group(1)
            current = sections.setdefault(section, [])
        elif m := _SYMBOL.match(line):
            symbols[(section, m.group(2))] = int(m.group(1), 16)
        elif m := _INSN.match(line):
            text = m.group(2).rstrip()
            target = None
            if t := _TARGET.search(text):
                target = (symbols[(section, t.group(1))] + int(t.group(2) or "0", 16)) // 8
                text = text[: t.start()]
            current.append(LlvmInsn(int(m.group(1)), text, target))
    return sections


def exec_sections(obj: Path) -> dict[str, bytes]:
    with open(obj, "rb") as handle:
        elf = ELFFile(handle)
        return {sec.name: sec.data() for sec in elf.iter_sections()
                if sec["sh_flags"] & 0x4 and sec["sh_size"]}


def assert_matches_llvm(obj: Path) -> int:
    """Compare every executable section; return the number of instructions checked."""
    llvm = llvm_disassembly(obj)
    sections = exec_sections(obj)
    assert sections, f"{obj} has no executable section"
    checked = 0
    for name, data in sections.items():
        decoded = decode(data)
        theirs = llvm[name]
        assert [i.pc for i in decoded] == [i.pc for i in theirs], f"{name}: slot layout differs"
        for mine, ref in zip(decoded, theirs, strict=True):
            assert_same(mine, ref, f"{obj.name}:{name}:{mine.pc} {ref.text!r}")
            checked += 1
    return checked


def assert_same(mine: Insn, ref: LlvmInsn, where: str) -> None:
    exp = parse_llvm(ref.text)
    got = (mine.opcode, mine.dst, mine.src if exp.src is not None else None, mine.off, mine.imm)
    assert got == (exp.opcode, exp.dst, exp.src, exp.off, exp.imm), where
    if exp.jump_delta is not None:
        assert mine.is_branch, where
        assert mine.jump_offset == exp.jump_delta, where
        assert mine.jump_target == ref.target_pc, where
    else:
        assert not mine.is_branch, where


@needs_clang
@needs_objdump
@pytest.mark.parametrize("cpu", sorted(CPU_FLAGS))
@pytest.mark.parametrize("source", SOURCES, ids=[str(s.relative_to(PROGS)) for s in SOURCES])
def test_decoder_agrees_with_llvm_objdump(source: Path, cpu: str) -> None:
    if cpu == "default" and "-mcpu=v4" in source.read_text().partition("\n")[0]:
        pytest.skip("the program says it needs -mcpu=v4")
    obj = compile_bpf(source, CPU_FLAGS[cpu])
    assert assert_matches_llvm(obj) > 0


def test_corpus_is_not_empty() -> None:
    assert SOURCES, "tests/progs has no *.bpf.c programs to check the decoder on"


# --- hand-assembled encodings ----------------------------------------------------
def enc(op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhI", op, dst | src << 4, off, imm & 0xFFFFFFFF)


def ld_imm64(dst: int, src: int, value: int) -> bytes:
    return enc(0x18, dst, src, 0, value & 0xFFFFFFFF) + enc(0, imm=(value >> 32) & 0xFFFFFFFF)


V4_CASES: list[tuple[str, bytes, tuple[int, int, int, int, int]]] = [
    # name, bytes, (opcode, dst, src, off, imm)
    ("sdiv64 imm", enc(0x37, 1, 0, 1, -3), (0x37, 1, 0, 1, -3)),
    ("sdiv64 reg", enc(0x3F, 1, 2, 1), (0x3F, 1, 2, 1, 0)),
    ("smod64 reg", enc(0x9F, 1, 2, 1), (0x9F, 1, 2, 1, 0)),
    ("sdiv32 imm", enc(0x34, 3, 0, 1, 7), (0x34, 3, 0, 1, 7)),
    ("smod32 imm", enc(0x94, 3, 0, 1, -7), (0x94, 3, 0, 1, -7)),
    ("movsx64 s8", enc(0xBF, 1, 2, 8), (0xBF, 1, 2, 8, 0)),
    ("movsx64 s16", enc(0xBF, 1, 2, 16), (0xBF, 1, 2, 16, 0)),
    ("movsx64 s32", enc(0xBF, 1, 2, 32), (0xBF, 1, 2, 32, 0)),
    ("movsx32 s8", enc(0xBC, 1, 2, 8), (0xBC, 1, 2, 8, 0)),
    ("movsx32 s16", enc(0xBC, 1, 2, 16), (0xBC, 1, 2, 16, 0)),
    ("ldsx b", enc(0x91, 1, 2, -6), (0x91, 1, 2, -6, 0)),
    ("ldsx h", enc(0x89, 1, 2, 6), (0x89, 1, 2, 6, 0)),
    ("ldsx w", enc(0x81, 1, 10, -8), (0x81, 1, 10, -8, 0)),
    ("bswap16", enc(0xD7, 4, 0, 0, 16), (0xD7, 4, 0, 0, 16)),
    ("bswap32", enc(0xD7, 4, 0, 0, 32), (0xD7, 4, 0, 0, 32)),
    ("bswap64", enc(0xD7, 4, 0, 0, 64), (0xD7, 4, 0, 0, 64)),
    ("gotol", enc(0x06, 0, 0, 0, 1) + enc(0x95) + enc(0x95), (0x06, 0, 0, 0, 1)),
    ("may_goto", enc(0xE5, 0, 0, 1) + enc(0x95) + enc(0x95), (0xE5, 0, 0, 1, 0)),
    ("load_acquire u8", enc(0xD3, 0, 1, 0, 0x100), (0xD3, 0, 1, 0, 0x100)),
    ("load_acquire u16", enc(0xCB, 0, 1, 2, 0x100), (0xCB, 0, 1, 2, 0x100)),
    ("load_acquire u32", enc(0xC3, 0, 1, 4, 0x100), (0xC3, 0, 1, 4, 0x100)),
    ("load_acquire u64", enc(0xDB, 0, 1, 8, 0x100), (0xDB, 0, 1, 8, 0x100)),
    ("store_release u8", enc(0xD3, 1, 2, 0, 0x110), (0xD3, 1, 2, 0, 0x110)),
    ("store_release u64", enc(0xDB, 1, 2, -8, 0x110), (0xDB, 1, 2, -8, 0x110)),
]
for _size, _bits in ((0xC3, 32), (0xDB, 64)):
    for _name, _imm in (("add", 0x00), ("or", 0x40), ("and", 0x50), ("xor", 0xA0)):
        V4_CASES.append((f"atomic {_name}{_bits}", enc(_size, 1, 2, -16, _imm),
                         (_size, 1, 2, -16, _imm)))
        V4_CASES.append((f"atomic fetch_{_name}{_bits}", enc(_size, 1, 2, -16, _imm | 1),
                         (_size, 1, 2, -16, _imm | 1)))
    V4_CASES.append((f"xchg{_bits}", enc(_size, 1, 2, 0, 0xE1), (_size, 1, 2, 0, 0xE1)))
    V4_CASES.append((f"cmpxchg{_bits}", enc(_size, 1, 2, 0, 0xF1), (_size, 1, 2, 0, 0xF1)))


@pytest.mark.parametrize("name,data,fields", V4_CASES, ids=[c[0] for c in V4_CASES])
def test_v4_encodings_decode(name: str, data: bytes,
                             fields: tuple[int, int, int, int, int]) -> None:
    insn = decode(data)[0]
    assert (insn.opcode, insn.dst, insn.src, insn.off, insn.imm) == fields
    check_jumps(decode(data), 0, len(data) // 8)
    check_section_jumps(data)


def test_gotol_and_may_goto_targets() -> None:
    gotol = decode(enc(0x06, 0, 0, 0, 1) + enc(0x95) + enc(0x95))[0]
    assert gotol.is_unconditional_jump and gotol.jump_target == 2
    may_goto = decode(enc(0xE5, 0, 0, 1) + enc(0x95) + enc(0x95))[0]
    assert may_goto.is_may_goto and may_goto.is_conditional_jump
    assert may_goto.jump_target == 2


def test_ld_imm64_is_one_instruction() -> None:
    insns = decode(ld_imm64(3, 0, 0x9ABCDEF012345678) + enc(0x95))
    assert [(i.pc, i.size) for i in insns] == [(0, 2), (2, 1)]
    assert insns[0].imm == 0x9ABCDEF012345678 and insns[0].dst == 3


REJECTED: list[tuple[str, bytes, str]] = [
    ("unknown opcode 0x00", enc(0x00), "unknown opcode"),
    ("unknown ALU op 0xe7", enc(0xE7, 1), "unknown ALU"),
    ("unknown jump op 0xf5", enc(0xF5, 1, 0, 1), "unknown jump"),
    ("callx", enc(0x8D, 1), "unknown opcode"),
    ("may_goto in JMP32", enc(0xE6, 0, 0, 1), "unknown opcode"),
    ("bswap with reg source", enc(0xDF, 1, 0, 0, 16), "unknown opcode"),
    ("bswap width 8", enc(0xD7, 1, 0, 0, 8), "byte swap width"),
    ("ldsx dw", enc(0x99, 1, 2), "unknown opcode"),
    ("ld abs dw", enc(0x38, 0, 0, 0, 4), "unknown opcode"),
    ("movsx32 s32", enc(0xBC, 1, 2, 32), "invalid mov offset"),
    ("sdiv offset 2", enc(0x3F, 1, 2, 2), "division offset"),
    ("dst r11", enc(0xB7, 11, 0, 0, 1), "register out of range"),
    ("src r15", enc(0xBF, 1, 15), "register out of range"),
    ("atomic imm 0x02", enc(0xDB, 1, 2, 0, 0x02), "unknown atomic"),
    ("atomic sub", enc(0xDB, 1, 2, 0, 0x10), "unknown atomic"),
    ("xchg without fetch", enc(0xDB, 1, 2, 0, 0xE0), "unknown atomic"),
    ("atomic add on u8", enc(0xD3, 1, 2, 0, 0x00), "not 32 or 64 bits"),
    ("call src 3", enc(0x85, 0, 3, 0, 1), "call with unknown source"),
    ("ld_imm64 src 7", ld_imm64(1, 7, 0), "ld_imm64 with unknown source"),
    ("ld_imm64 missing second half", enc(0x18, 1, 0, 0, 1), "missing its second half"),
    ("ld_imm64 bad second half", enc(0x18, 1) + enc(0x95), "malformed second half"),
]


@pytest.mark.parametrize("name,data,why", REJECTED, ids=[c[0] for c in REJECTED])
def test_malformed_encodings_are_rejected(name: str, data: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why) as info:
        decode(enc(0xB7, 0) + data)  # a valid first insn: the error names slot 1
    assert info.value.pc == 1
    assert str(info.value).startswith("instruction 1: ")


def test_section_size_not_multiple_of_8() -> None:
    with pytest.raises(BpfLintError, match="not a multiple of 8"):
        decode(enc(0x95) + b"\x00\x00\x00")


@pytest.mark.parametrize("program,why", [
    (enc(0x05, 0, 0, 5) + enc(0x95), "out of range"),
    (enc(0x05, 0, 0, -2) + enc(0x95), "out of range"),
    (enc(0x06, 0, 0, 0, 9) + enc(0x95), "out of range"),
    (enc(0x15, 1, 0, 1, 0) + ld_imm64(1, 0, 5) + enc(0x95), "inside an ld_imm64"),
    (enc(0xE5, 0, 0, 7) + enc(0x95), "out of range"),
], ids=["ja forward", "ja backward", "gotol", "into ld_imm64", "may_goto"])
def test_bad_jump_targets_are_rejected(program: bytes, why: str) -> None:
    insns = decode(program)
    with pytest.raises(DecodeError, match=why):
        check_jumps(insns, 0, len(program) // 8)
    with pytest.raises(DecodeError, match=why):
        check_section_jumps(program)


def check_section_jumps(data: bytes) -> None:
    """The reader's jump check over a section holding one function."""
    section = decode_section(data)
    section.check_jumps(0, len(section.insns), 0, section.nslots)


def test_jumps_are_checked_per_function() -> None:
    # two functions: [0, 2) jumps to slot 1, [2, 5) holds an ld_imm64 at slot 3
    program = enc(0x05, 0, 0, 0) + enc(0x95) + enc(0x05, 0, 0, 2) + ld_imm64(1, 0, 7) \
        + enc(0x95)
    section = decode_section(program)
    assert [i.pc for i in section.insns] == [0, 1, 2, 3, 5]
    assert section.branches == [0, 2] and section.ld_imm64_slots == [3]
    section.check_jumps(0, 2, 0, 2)
    section.check_jumps(2, 5, 2, 6)
    with pytest.raises(DecodeError, match="instruction 2: jump target 5 is out of range"):
        section.check_jumps(2, 4, 2, 5)  # as if the function ended before the exit
    with pytest.raises(DecodeError, match="instruction 0: jump target 1 is out of range"):
        section.check_jumps(0, 2, 0, 1)


def test_index_of_finds_instruction_starts_only() -> None:
    section = decode_section(enc(0xB7) + ld_imm64(1, 0, 5) + ld_imm64(2, 0, 6) + enc(0x95))
    assert [section.index_of(slot) for slot in range(-1, 8)] == [-1, 0, 1, -1, 2, -1, 3, -1,
                                                                   -1]


def test_line_records_attach_to_the_instructions_they_cover() -> None:
    # slots: 0 mov, 1-2 ld_imm64, 3 mov, 4 mov, 5 exit
    program = enc(0xB7) + ld_imm64(1, 0, 5) + enc(0xB7) + enc(0xB7) + enc(0x95)
    a, b, c, d = (SourceLine("f.c", n, 1, f"line {n}") for n in range(4))
    # none before slot 1; one inside the ld_imm64 (slot 2) applies from slot 3 on; of
    # two at one slot the later wins
    section = decode_section(program, [1, 2, 4, 4], [a, b, c, d])
    assert [(i.pc, i.line) for i in section.insns] == [(0, None), (1, a), (3, b), (4, d),
                                                       (5, d)]
    assert all(i.line is None for i in decode(program))


# --- the hand-assembled blob through llvm-objdump as well ------------------------
def _assemble(tmp_path: Path, data: bytes) -> Path:
    """An ELF with ``data`` as an executable section, via clang's assembler."""
    clang = find_clang()
    assert clang is not None
    src = tmp_path / "blob.s"
    quads = "".join(f"\t.quad\t{q:#x}\n" for (q,) in struct.iter_unpack("<Q", data))
    src.write_text(f'\t.section\txdp,"ax",@progbits\n\t.globl\tf\nf:\n{quads}')
    out = tmp_path / "blob.o"
    subprocess.run([clang, "-target", "bpf", "-c", str(src), "-o", str(out)], check=True,
                   capture_output=True)
    return out


def every_llvm19_encoding() -> bytes:
    """Every opcode LLVM 19 can disassemble, once each with both operand kinds."""
    parts: list[bytes] = []
    for cls in (0x07, 0x04):
        for op in (0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xA0, 0xB0, 0xC0):
            parts += [enc(cls | op, 1, 0, 0, -5), enc(cls | op | 0x08, 1, 2)]
        parts.append(enc(cls | 0x80, 3))
    for width in (16, 32, 64):
        parts += [enc(0xD4, 1, 0, 0, width), enc(0xDC, 1, 0, 0, width),
                  enc(0xD7, 1, 0, 0, width)]
    for size in (0x00, 0x08, 0x10, 0x18):
        parts += [enc(0x61 | size, 1, 2, -8), enc(0x62 | size, 1, 0, 16, -7),
                  enc(0x63 | size, 1, 2, 4)]
    for size in (0x00, 0x08, 0x10):
        parts += [enc(0x81 | size, 1, 2, 6), enc(0x20 | size, 0, 0, 0, 12),
                  enc(0x40 | size, 0, 3)]
    for size in (0xC3, 0xDB):
        for imm in (0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xA0, 0xA1, 0xE1, 0xF1):
            parts.append(enc(size, 1, 2, -16, imm))
    for cls in (0x05, 0x06):
        for op in (0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xA0, 0xB0, 0xC0, 0xD0):
            parts += [enc(cls | op, 1, 0, 1, -7), enc(cls | op | 0x08, 1, 2, 1)]
    parts += [enc(0x05, 0, 0, 1), enc(0x06, 0, 0, 0, -1), enc(0xE5, 0, 0, 1),
              enc(0x85, 0, 0, 0, 1), enc(0x85, 0, 1, 0, -3), enc(0x85, 0, 2, 0, 1234),
              ld_imm64(1, 0, 0x9ABCDEF012345678), ld_imm64(1, 1, 3), ld_imm64(2, 4, 0),
              enc(0xBF, 1, 2, 8), enc(0xBF, 1, 2, 16), enc(0xBF, 1, 2, 32),
              enc(0xBC, 1, 2, 8), enc(0xBC, 1, 2, 16), enc(0x95)]
    return b"".join(parts)


@needs_clang
@needs_objdump
def test_every_encoding_agrees_with_llvm_objdump(tmp_path: Path) -> None:
    data = every_llvm19_encoding()
    obj = _assemble(tmp_path, data)
    assert exec_sections(obj)["xdp"] == data
    assert assert_matches_llvm(obj) == len(decode(data))

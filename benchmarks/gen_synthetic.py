"""Generate synthetic BPF objects of a chosen size without a compiler.

    python benchmarks/gen_synthetic.py OUTDIR [--sizes 10000,100000,1000000]
                                              [--kinds straight,branchy,loops]

Each object is a minimal relocatable BPF ELF (the layout clang emits, minus BTF and
DWARF): one program section holding one global function, a ``license`` section, a
symbol table and the string tables. Three shapes:

- ``straight``: ALU instructions and one ``exit``; every execution runs all of them.
- ``branchy``:  a chain of diamonds ``if r6 > 64 goto +1; r0 += 1`` on the packet
  length. All compare the same value, so after the first one the others are decided
  (the kernel verifier prunes them; an analysis that refines on branches sees it too).
- ``loops``:    many small counted loops (``for (i = 0; i < 8; i++) r0 += i``), each
  with its own induction variable, one after the other.

The sizes are instruction counts (8-byte slots), exact for every shape.
"""

from __future__ import annotations

import argparse
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

EM_BPF = 247
ET_REL = 1
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB = 1, 2, 3
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
STB_GLOBAL, STT_OBJECT, STT_FUNC = 1, 1, 2

BRANCH_LIMIT = 64  # the packet length every diamond of the "branchy" shape compares
LOOP_TRIPS = 8  # iterations of every loop in the "loops" shape
_LOOP_INSNS = 4  # r2 = 0; r0 += r2; r2 += 1; if r2 < LOOP_TRIPS goto -3


def insn(opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One 8-byte BPF instruction (little endian)."""
    return struct.pack("<BBhi", opcode, (src << 4) | dst, off, imm)


MOV64_IMM = 0xB7
ADD64_IMM = 0x07
ADD64_REG = 0x0F
XOR64_IMM = 0xA7
JGT_IMM = 0x25
JLT_IMM = 0xA5
LDX_W = 0x61
EXIT = 0x95


def straight_code(n_insns: int) -> bytes:
    """r0 = 0, then ALU instructions on r0..r5 in turn, then exit."""
    body = [insn(MOV64_IMM, 0, imm=0)]
    for index in range(1, 6):
        body.append(insn(MOV64_IMM, index, imm=index))
    fill = n_insns - len(body) - 1
    ops = (insn(ADD64_IMM, 0, imm=1), insn(XOR64_IMM, 1, imm=3), insn(ADD64_REG, 0, 2),
           insn(ADD64_IMM, 3, imm=7), insn(ADD64_REG, 0, 4))
    body.extend(ops[i % len(ops)] for i in range(fill))
    body.append(insn(EXIT))
    return b"".join(body)


def branchy_code(n_insns: int) -> bytes:
    """r6 = skb->len; then diamonds on r6 (2 insns each); then exit."""
    head = [insn(MOV64_IMM, 0, imm=0), insn(LDX_W, 6, 1, 0)]
    diamonds, rest = divmod(n_insns - len(head) - 1, 2)
    body = head
    for _ in range(diamonds):
        body.append(insn(JGT_IMM, 6, off=1, imm=BRANCH_LIMIT))
        body.append(insn(ADD64_IMM, 0, imm=1))
    body.extend(insn(ADD64_IMM, 0, imm=1) for _ in range(rest))
    body.append(insn(EXIT))
    return b"".join(body)


def loops_code(n_insns: int) -> bytes:
    """Counted loops of LOOP_TRIPS iterations one after another, then exit."""
    body = [insn(MOV64_IMM, 0, imm=0)]
    loops, rest = divmod(n_insns - len(body) - 1, _LOOP_INSNS)
    for _ in range(loops):
        body.append(insn(MOV64_IMM, 2, imm=0))
        body.append(insn(ADD64_REG, 0, 2))
        body.append(insn(ADD64_IMM, 2, imm=1))
        body.append(insn(JLT_IMM, 2, off=-3, imm=LOOP_TRIPS))
    body.extend(insn(ADD64_IMM, 0, imm=1) for _ in range(rest))
    body.append(insn(EXIT))
    return b"".join(body)


@dataclass(frozen=True)
class Shape:
    section: str  # program section name: decides the program type
    code: Callable[[int], bytes]


SHAPES = {
    "straight": Shape("xdp", straight_code),
    "branchy": Shape("socket", branchy_code),
    "loops": Shape("socket", loops_code),
}


class _StrTab:
    def __init__(self) -> None:
        self.data = bytearray(b"\0")

    def add(self, text: str) -> int:
        offset = len(self.data)
        self.data += text.encode() + b"\0"
        return offset


def build_object(code: bytes, section: str = "xdp", func_name: str = "prog",
                 license_text: str = "GPL") -> bytes:
    """A relocatable BPF ELF with one program section holding ``code`` as one function."""
    if len(code) % 8:
        raise ValueError("BPF code must be a whole number of 8-byte slots")
    shstr = _StrTab()
    strtab = _StrTab()
    license_bytes = license_text.encode() + b"\0"
    # symbols: null, the program function (section 1), the license object (section 2)
    symtab = bytes(24)
    symtab += struct.pack("<IBBHQQ", strtab.add(func_name), (STB_GLOBAL << 4) | STT_FUNC,
                          0, 1, 0, len(code))
    symtab += struct.pack("<IBBHQQ", strtab.add("_license"), (STB_GLOBAL << 4) | STT_OBJECT,
                          0, 2, 0, len(license_bytes))
    sections = [  # (name, type, flags, data, link, info, align, entsize)
        (section, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, code, 0, 0, 8, 0),
        ("license", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, license_bytes, 0, 0, 1, 0),
        (".symtab", SHT_SYMTAB, 0, symtab, 4, 1, 8, 24),  # link: .strtab; info: 1 local
        (".strtab", SHT_STRTAB, 0, None, 0, 0, 1, 0),
        (".shstrtab", SHT_STRTAB, 0, None, 0, 0, 1, 0),
    ]
    name_offsets = [shstr.add(name) for name, *_ in sections]
    blobs: list[bytes] = []
    for name, _type, _flags, data, *_rest in sections:
        if name == ".strtab":
            data = bytes(strtab.data)
        elif name == ".shstrtab":
            data = bytes(shstr.data)
        assert data is not None
        blobs.append(data)
    offset = 64
    body = bytearray()
    headers = [bytes(64)]  # section 0: SHT_NULL
    for (_name, sh_type, flags, _data, link, info, align, entsize), blob, name_off in zip(
            sections, blobs, name_offsets, strict=True):
        pad = (-(offset + len(body))) % 8
        body += bytes(pad)
        sh_offset = offset + len(body)
        body += blob
        headers.append(struct.pack("<IIQQQQIIQQ", name_off, sh_type, flags, 0, sh_offset,
                                   len(blob), link, info, align, entsize))
    body += bytes((-(offset + len(body))) % 8)
    shoff = offset + len(body)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, little endian, SysV
    header = ident + struct.pack("<HHIQQQIHHHHHH", ET_REL, EM_BPF, 1, 0, 0, shoff, 0, 64,
                                 0, 0, 64, len(headers), len(headers) - 1)
    return header + bytes(body) + b"".join(headers)


def synthetic_object(kind: str, n_insns: int) -> bytes:
    shape = SHAPES[kind]
    return build_object(shape.code(n_insns), shape.section, f"{kind}_{n_insns}")


def _label(n_insns: int) -> str:
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if n_insns % scale == 0:
            return f"{n_insns // scale}{unit}"
    return str(n_insns)


def write_objects(outdir: Path, kinds: list[str], sizes: list[int]) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in kinds:
        for n_insns in sizes:
            path = outdir / f"{kind}_{_label(n_insns)}.o"
            path.write_bytes(synthetic_object(kind, n_insns))
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        help="instruction counts, comma separated")
    parser.add_argument("--kinds", default=",".join(SHAPES),
                        help=f"shapes, comma separated ({', '.join(SHAPES)})")
    args = parser.parse_args(argv)
    kinds = args.kinds.split(",")
    unknown = [kind for kind in kinds if kind not in SHAPES]
    if unknown:
        parser.error(f"unknown shape(s): {', '.join(unknown)}")
    sizes = [int(size) for size in args.sizes.split(",")]
    if min(sizes) < 16:
        parser.error("sizes must be at least 16 instructions")
    for path in write_objects(args.outdir, kinds, sizes):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

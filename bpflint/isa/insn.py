"""Decoded BPF instructions and the decoder (RFC 9669, v4, may_goto).

A 16-byte ``ld_imm64`` decodes into one :class:`Insn` whose ``size`` is 2 slots;
``pc`` values count 8-byte slots, as jump offsets do.
"""

from __future__ import annotations

import struct
import sys
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from bpflint.errors import BpfLintError
from bpflint.isa.opcodes import (
    ATOMIC_ARITH_OPS,
    ATOMIC_CMPXCHG,
    ATOMIC_FETCH,
    ATOMIC_LOAD_ACQ,
    ATOMIC_STORE_REL,
    ATOMIC_XCHG,
    AluOp,
    Cls,
    JmpOp,
    Mode,
    Opcode,
    Size,
)

if TYPE_CHECKING:
    from bpflint.isa.meta import Reloc, SourceLine

INSN_SIZE = 8
CONDITIONAL_JUMPS = frozenset(
    cls | op | src
    for cls in (Cls.JMP, Cls.JMP32)
    for op in (JmpOp.JEQ, JmpOp.JGT, JmpOp.JGE, JmpOp.JSET, JmpOp.JNE, JmpOp.JSGT,
               JmpOp.JSGE, JmpOp.JLT, JmpOp.JLE, JmpOp.JSLT, JmpOp.JSLE)
    for src in (0, 0x08)
) | {0xE5}  # may_goto
BRANCHES = CONDITIONAL_JUMPS | {0x05, 0x06}
_STRUCT = struct.Struct("<BBhi")
_BIG_ENDIAN_HOST = sys.byteorder == "big"  # array("Q") reads words in the host's order
assert array("Q").itemsize == INSN_SIZE
_OPCODES = tuple(Opcode(op) for op in range(256))  # shared: one per opcode byte


class DecodeError(BpfLintError):
    """An encoding the ISA does not define, at a given slot."""

    def __init__(self, pc: int, message: str) -> None:
        super().__init__(f"instruction {pc}: {message}")
        self.pc = pc


class Insn(NamedTuple):
    # A NamedTuple rather than a frozen dataclass, as Scalar and State: an object's
    # every instruction is built while reading it, and a tuple is built in C.
    pc: int  # slot index inside its ELF section
    opcode: Opcode
    dst: int
    src: int
    off: int
    imm: int  # signed 32-bit; for ld_imm64 the full 64-bit value (unsigned)
    size: int = 1  # slots: 2 for ld_imm64
    line: SourceLine | None = None
    reloc: Reloc | None = None

    # -- classification -------------------------------------------------
    @property
    def cls(self) -> Cls:
        return Cls(self.opcode & 0x07)

    @property
    def is_ld_imm64(self) -> bool:
        return self.opcode == 0x18

    @property
    def is_exit(self) -> bool:
        return self.opcode == 0x95

    @property
    def is_call(self) -> bool:
        return self.opcode == 0x85

    @property
    def is_helper_call(self) -> bool:
        return self.opcode == 0x85 and self.src == 0

    @property
    def is_pseudo_call(self) -> bool:
        """A bpf-to-bpf call (clang also marks unresolved kfunc calls src 1)."""
        return self.opcode == 0x85 and self.src == 1 and not self._reloc_is_kfunc

    @property
    def is_kfunc_call(self) -> bool:
        return self.opcode == 0x85 and (self.src == 2 or self._reloc_is_kfunc)

    @property
    def _reloc_is_kfunc(self) -> bool:
        return self.reloc is not None and self.reloc.kind == "kfunc"

    @property
    def is_may_goto(self) -> bool:
        return self.opcode == 0xE5

    @property
    def is_unconditional_jump(self) -> bool:
        return self.opcode in (0x05, 0x06)

    @property
    def is_conditional_jump(self) -> bool:
        return self.opcode in CONDITIONAL_JUMPS

    @property
    def is_branch(self) -> bool:
        return self.opcode in BRANCHES

    @property
    def jump_offset(self) -> int:
        """Relative jump distance in slots; ``gotol`` keeps it in imm."""
        return self.imm if self.opcode == 0x06 else self.off

    @property
    def jump_target(self) -> int:
        return self.pc + self.jump_offset + 1

    @property
    def next_pc(self) -> int:
        return self.pc + self.size

    def with_meta(self, line: SourceLine | None = None, reloc: Reloc | None = None) -> Insn:
        return self._replace(line=line if line is not None else self.line,
                             reloc=reloc if reloc is not None else self.reloc)


# What the reader looks for again after decoding: the few instructions it resolves
# relocations on or checks the jumps of.
_KIND_PLAIN = 0
_KIND_BRANCH = 1
_KIND_CALL = 2
_KIND_LD_IMM64 = 3
# valid encoding (the slot as a little-endian 64-bit word) -> (kind, opcode, dst, src,
# off, imm): each distinct encoding is checked and split once
_CHECKED: dict[int, tuple[int, Opcode, int, int, int, int]] = {}
_CHECKED_KEPT = 1 << 16


def _check(op: int, dst: int, src: int, off: int, imm: int) -> str | None:
    """Return why an (already split) instruction is not a valid encoding, or None."""
    if dst > 10 or src > 10:
        return f"register out of range (dst r{dst}, src r{src}) in opcode {op:#04x}"
    cls = op & 0x07
    if cls in (Cls.ALU, Cls.ALU64):
        aop = op & 0xF0
        regsrc = bool(op & 0x08)
        if aop > AluOp.END:
            return f"unknown ALU operation in opcode {op:#04x}"
        if aop == AluOp.END:
            if cls == Cls.ALU64 and regsrc:
                return f"unknown opcode {op:#04x}"
            if imm not in (16, 32, 64):
                return f"byte swap width {imm} is not 16, 32 or 64"
            return None
        if aop == AluOp.NEG and regsrc:
            return f"unknown opcode {op:#04x} (neg takes no source register)"
        if aop in (AluOp.DIV, AluOp.MOD):
            if off not in (0, 1):
                return f"division offset {off} is neither 0 nor 1"
        elif aop == AluOp.MOV:
            # 8/16/32: movsx (v4); 1 on a 64-bit register move: addr_space_cast (arena)
            allowed = (0, 1, 8, 16, 32) if cls == Cls.ALU64 else (0, 8, 16)
            if off not in allowed or (off and not regsrc):
                return f"invalid mov offset {off}"
        elif off != 0:
            return f"nonzero offset {off} in ALU opcode {op:#04x}"
        return None
    if cls in (Cls.JMP, Cls.JMP32):
        jop = op & 0xF0
        if jop == JmpOp.JCOND:
            return None if (cls == Cls.JMP and not op & 0x08) else f"unknown opcode {op:#04x}"
        if jop > JmpOp.JCOND:
            return f"unknown jump operation in opcode {op:#04x}"
        if jop in (JmpOp.CALL, JmpOp.EXIT):
            if cls == Cls.JMP32 or op & 0x08:
                return f"unknown opcode {op:#04x}"
            if jop == JmpOp.CALL and src not in (0, 1, 2):
                return f"call with unknown source {src}"
            return None
        if jop == JmpOp.JA and op & 0x08:
            return f"unknown opcode {op:#04x}"
        return None
    mode = op & 0xE0
    size = op & 0x18
    if cls == Cls.LD:
        if mode == Mode.IMM and size == Size.DW:
            return None if src <= 6 else f"ld_imm64 with unknown source {src}"
        if mode in (Mode.ABS, Mode.IND) and size != Size.DW:
            return None
        return f"unknown opcode {op:#04x}"
    if cls == Cls.LDX:
        if mode == Mode.MEM or (mode == Mode.MEMSX and size != Size.DW):
            return None
        return f"unknown opcode {op:#04x}"
    if cls == Cls.ST:
        return None if mode == Mode.MEM else f"unknown opcode {op:#04x}"
    # STX
    if mode == Mode.MEM:
        return None
    if mode == Mode.ATOMIC:
        if imm in (ATOMIC_LOAD_ACQ, ATOMIC_STORE_REL):
            return None
        if size not in (Size.W, Size.DW):
            return f"atomic operation of size {size:#x} is not 32 or 64 bits"
        base = imm & ~ATOMIC_FETCH
        if imm in (ATOMIC_XCHG, ATOMIC_CMPXCHG) or base in ATOMIC_ARITH_OPS:
            return None
        return f"unknown atomic operation {imm:#x}"
    return f"unknown opcode {op:#04x}"


class DecodedSection:
    """A section's instructions in slot order, each with its source line, and where
    its few special ones are: relocations are resolved and jumps checked from these
    lists, not by walking every instruction again."""

    def __init__(self, insns: list[Insn], ld_imm64_slots: list[int], branches: list[int],
                 calls: list[int], nslots: int) -> None:
        self.insns = insns
        self.ld_imm64_slots = ld_imm64_slots  # ascending: slots of 2-slot instructions
        self.branches = branches  # indices in insns of jumps (may_goto included)
        self.calls = calls  # indices in insns of calls
        self.nslots = nslots
        # the slots inside the section that start no instruction
        self.second_halves = {slot + 1 for slot in ld_imm64_slots}

    def index_of(self, slot: int) -> int:
        """Index in ``insns`` of the instruction starting at ``slot``; -1 where none
        does (outside the section, or the second half of an ld_imm64)."""
        if not 0 <= slot < self.nslots or slot in self.second_halves:
            return -1
        # every ld_imm64 before the slot takes two slots
        return slot - bisect_left(self.ld_imm64_slots, slot)

    def check_jumps(self, first: int, last: int, start: int, end: int) -> None:
        """Every jump of ``insns[first:last]`` (a function: slots [start, end)) must
        land on an instruction start inside the function; the first that does not is
        raised."""
        branches = self.branches
        insns = self.insns
        second_halves = self.second_halves
        for index in branches[bisect_left(branches, first):bisect_left(branches, last)]:
            insn = insns[index]
            # jump_target, without two property calls for each of thousands of jumps
            target = insn.pc + (insn.imm if insn.opcode == 0x06 else insn.off) + 1
            if not start <= target < end:
                raise DecodeError(insn.pc, f"jump target {target} is out of range")
            if target in second_halves:
                raise DecodeError(insn.pc, f"jump target {target} is inside an ld_imm64")


def _split(pc: int, word: int) -> tuple[int, Opcode, int, int, int, int]:
    """(kind, opcode, dst, src, off, imm) of a valid encoding; DecodeError for an
    invalid one."""
    op, regs, off, imm = _STRUCT.unpack(word.to_bytes(INSN_SIZE, "little"))
    dst, src = regs & 0x0F, regs >> 4
    problem = _check(op, dst, src, off, imm)
    if problem:
        raise DecodeError(pc, problem)
    if op == 0x18:
        kind = _KIND_LD_IMM64
    elif op in BRANCHES:
        kind = _KIND_BRANCH
    else:
        kind = _KIND_CALL if op == 0x85 else _KIND_PLAIN
    return kind, _OPCODES[op], dst, src, off, imm


def decode_section(data: bytes, line_slots: Sequence[int] = (),
                   line_sources: Sequence[SourceLine] = ()) -> DecodedSection:
    """Decode a section's bytes; raise DecodeError on a bad encoding.

    ``line_slots`` (ascending) and ``line_sources`` are the section's line-info
    records: each instruction gets the source of the last record at or before its
    slot. Attached here, in the one pass that builds every instruction, rather than
    by building every instruction again.
    """
    if len(data) % INSN_SIZE:
        raise BpfLintError(f"size {len(data)} is not a multiple of {INSN_SIZE} bytes")
    nslots = len(data) // INSN_SIZE
    out: list[Insn] = []
    ld_imm64_slots: list[int] = []
    branches: list[int] = []
    calls: list[int] = []
    nlines = len(line_slots)
    line_pos = 0
    next_line = line_slots[0] if nlines else nslots  # no instruction reaches nslots
    line: SourceLine | None = None
    checked = _CHECKED
    new = tuple.__new__  # an Insn built as its tuple: every instruction of every object
    # each slot as one int (no tuple of four per slot, and a cheap key to look up)
    words = array("Q", data)
    if _BIG_ENDIAN_HOST:
        words.byteswap()
    words_of = iter(words)
    pc = 0
    for word in words_of:
        split = checked.get(word)
        if split is None:
            split = _split(pc, word)
            if len(checked) < _CHECKED_KEPT:
                checked[word] = split
        kind, opcode, dst, src, off, imm = split
        if pc >= next_line:
            while line_pos < nlines and line_slots[line_pos] <= pc:
                line_pos += 1
            line = line_sources[line_pos - 1]
            next_line = line_slots[line_pos] if line_pos < nlines else nslots
        if kind:
            if kind == _KIND_LD_IMM64:
                second = next(words_of, -1)
                if second < 0:
                    raise DecodeError(pc, "ld_imm64 is missing its second half")
                if second & 0xFFFFFFFF:  # opcode, registers and offset must be 0
                    raise DecodeError(pc, "malformed second half of ld_imm64")
                full = (imm & 0xFFFFFFFF) | ((second >> 32) << 32)
                ld_imm64_slots.append(pc)
                out.append(new(Insn, (pc, opcode, dst, src, off, full, 2, line, None)))
                pc += 2
                continue
            if kind == _KIND_BRANCH:
                branches.append(len(out))
            else:
                calls.append(len(out))
        out.append(new(Insn, (pc, opcode, dst, src, off, imm, 1, line, None)))
        pc += 1
    return DecodedSection(out, ld_imm64_slots, branches, calls, nslots)


def decode(data: bytes) -> tuple[Insn, ...]:
    """Decode a section's bytes into instructions; raise DecodeError on a bad encoding."""
    return tuple(decode_section(data).insns)



def check_jumps(insns: tuple[Insn, ...], start: int, end: int) -> None:
    """Every jump must land on an instruction start inside [start, end)."""
    starts = {i.pc for i in insns}
    for insn in insns:
        if insn.is_branch:
            target = insn.jump_target
            if not start <= target < end:
                raise DecodeError(insn.pc, f"jump target {target} is out of range")
            if target not in starts:
                raise DecodeError(insn.pc, f"jump target {target} is inside an ld_imm64")

"""Opcode byte layout of the BPF ISA (RFC 9669, v4 additions included).

An opcode is one byte. Its low three bits are the instruction class; the rest
means different things per class, so accessors live on :class:`Opcode`.
"""

from __future__ import annotations

from enum import IntEnum


class Cls(IntEnum):
    LD = 0x00
    LDX = 0x01
    ST = 0x02
    STX = 0x03
    ALU = 0x04
    JMP = 0x05
    JMP32 = 0x06
    ALU64 = 0x07


class AluOp(IntEnum):
    ADD = 0x00
    SUB = 0x10
    MUL = 0x20
    DIV = 0x30
    OR = 0x40
    AND = 0x50
    LSH = 0x60
    RSH = 0x70
    NEG = 0x80
    MOD = 0x90
    XOR = 0xA0
    MOV = 0xB0
    ARSH = 0xC0
    END = 0xD0


class JmpOp(IntEnum):
    JA = 0x00
    JEQ = 0x10
    JGT = 0x20
    JGE = 0x30
    JSET = 0x40
    JNE = 0x50
    JSGT = 0x60
    JSGE = 0x70
    CALL = 0x80
    EXIT = 0x90
    JLT = 0xA0
    JLE = 0xB0
    JSLT = 0xC0
    JSLE = 0xD0
    JCOND = 0xE0  # may_goto


class Mode(IntEnum):
    IMM = 0x00
    ABS = 0x20
    IND = 0x40
    MEM = 0x60
    MEMSX = 0x80
    ATOMIC = 0xC0


class Size(IntEnum):
    W = 0x00
    H = 0x08
    B = 0x10
    DW = 0x18


SIZE_BYTES: dict[int, int] = {Size.W: 4, Size.H: 2, Size.B: 1, Size.DW: 8}

# Plain-int copies of the classes and modes the paths run for every instruction
# analysed compare against: naming an enum member costs a class attribute lookup
# (about 80 ns here, a module constant 10-20 ns).
CLS_LD, CLS_LDX, CLS_ST, CLS_STX = int(Cls.LD), int(Cls.LDX), int(Cls.ST), int(Cls.STX)
CLS_ALU, CLS_ALU64 = int(Cls.ALU), int(Cls.ALU64)
MODE_MEMSX, MODE_ATOMIC = int(Mode.MEMSX), int(Mode.ATOMIC)

SRC_X = 0x08  # source operand is a register (BPF_X); 0 means the immediate (BPF_K)

# Atomic operations live in the immediate of STX|ATOMIC instructions.
ATOMIC_FETCH = 0x01
ATOMIC_XCHG = 0xE0 | ATOMIC_FETCH
ATOMIC_CMPXCHG = 0xF0 | ATOMIC_FETCH
ATOMIC_LOAD_ACQ = 0x100
ATOMIC_STORE_REL = 0x110
ATOMIC_ARITH_OPS = (AluOp.ADD, AluOp.OR, AluOp.AND, AluOp.XOR)

# Source-register values of special instructions.
PSEUDO_CALL = 1  # call: bpf-to-bpf call, imm is relative
PSEUDO_KFUNC_CALL = 2  # call: kernel function, imm is a BTF id
PSEUDO_MAP_FD = 1  # ld_imm64: map
PSEUDO_MAP_VALUE = 2  # ld_imm64: address inside a map's value (global data)
PSEUDO_BTF_ID = 3
PSEUDO_FUNC = 4  # ld_imm64: address of a BPF function (callbacks)
PSEUDO_MAP_IDX = 5
PSEUDO_MAP_IDX_VALUE = 6


class Opcode(int):
    """The opcode byte, with typed accessors instead of scattered masks."""

    __slots__ = ()

    @property
    def cls(self) -> Cls:
        return Cls(self & 0x07)

    @property
    def is_alu(self) -> bool:
        return self.cls in (Cls.ALU, Cls.ALU64)

    @property
    def is_jmp(self) -> bool:
        return self.cls in (Cls.JMP, Cls.JMP32)

    @property
    def is_load_store(self) -> bool:
        return self.cls in (Cls.LD, Cls.LDX, Cls.ST, Cls.STX)

    @property
    def alu_op(self) -> int:
        return self & 0xF0

    @property
    def jmp_op(self) -> int:
        return self & 0xF0

    @property
    def uses_reg_source(self) -> bool:
        return bool(self & SRC_X)

    @property
    def mode(self) -> int:
        return self & 0xE0

    @property
    def size(self) -> int:
        return self & 0x18

    @property
    def size_bytes(self) -> int:
        return SIZE_BYTES[self & 0x18]  # int keys match the IntEnum ones; Size() is slow

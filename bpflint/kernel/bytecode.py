"""A tiny BPF assembler for calibration microbenchmarks (no clang at run time).

Every function returns the little-endian encoding of one instruction (8 bytes, or
16 for ``ld_imm64``); a program is the concatenation of such byte strings.
"""

from __future__ import annotations

import struct

from bpflint.isa.opcodes import SRC_X, AluOp, Cls, JmpOp, Mode, Size

R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)

_SIZES = {1: Size.B, 2: Size.H, 4: Size.W, 8: Size.DW}


def raw(opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    if imm >= 1 << 31:
        imm -= 1 << 32  # accept unsigned 32-bit immediates
    return struct.pack("<BBhi", opcode, (src << 4) | dst, off, imm)


def alu64(op: AluOp, dst: int, src: int | None = None, imm: int = 0, off: int = 0) -> bytes:
    """``dst op= src`` (register) or ``dst op= imm`` when ``src`` is None (64-bit)."""
    if src is None:
        return raw(Cls.ALU64 | op, dst, 0, off, imm)
    return raw(Cls.ALU64 | op | SRC_X, dst, src, off, 0)


def alu32(op: AluOp, dst: int, src: int | None = None, imm: int = 0, off: int = 0) -> bytes:
    if src is None:
        return raw(Cls.ALU | op, dst, 0, off, imm)
    return raw(Cls.ALU | op | SRC_X, dst, src, off, 0)


def mov64(dst: int, src: int | None = None, imm: int = 0) -> bytes:
    return alu64(AluOp.MOV, dst, src, imm)


def neg64(dst: int) -> bytes:
    return raw(Cls.ALU64 | AluOp.NEG, dst)


def bswap(dst: int, bits: int) -> bytes:
    """Unconditional byte swap (v4 ``bswap16/32/64``)."""
    return raw(Cls.ALU64 | AluOp.END, dst, 0, 0, bits)


def endian_be(dst: int, bits: int) -> bytes:
    """``be16/32/64`` (to big endian: a swap on little-endian hosts)."""
    return raw(Cls.ALU | AluOp.END | SRC_X, dst, 0, 0, bits)


def ld_imm64(dst: int, value: int, src: int = 0) -> bytes:
    """``dst = value`` (64-bit); ``src`` 1 makes value a map fd, 2 a map fd + offset."""
    lo = value & 0xFFFFFFFF
    hi = (value >> 32) & 0xFFFFFFFF
    return raw(Cls.LD | Size.DW | Mode.IMM, dst, src, 0, lo) + raw(0, 0, 0, 0, hi)


def ld_map_fd(dst: int, map_fd: int) -> bytes:
    return ld_imm64(dst, map_fd, src=1)


def ld_map_value(dst: int, map_fd: int, offset: int = 0) -> bytes:
    return ld_imm64(dst, map_fd | (offset << 32), src=2)


def ldx(size: int, dst: int, src: int, off: int) -> bytes:
    return raw(Cls.LDX | Mode.MEM | _SIZES[size], dst, src, off)


def stx(size: int, dst: int, off: int, src: int) -> bytes:
    """``*(size *)(dst + off) = src``."""
    return raw(Cls.STX | Mode.MEM | _SIZES[size], dst, src, off)


def st(size: int, dst: int, off: int, imm: int) -> bytes:
    return raw(Cls.ST | Mode.MEM | _SIZES[size], dst, 0, off, imm)


def atomic(size: int, dst: int, off: int, src: int, op: int) -> bytes:
    """STX|ATOMIC with the operation ``op`` in imm (BPF_ADD, BPF_XCHG, ...)."""
    return raw(Cls.STX | Mode.ATOMIC | _SIZES[size], dst, src, off, op)


def ld_abs(size: int, imm: int) -> bytes:
    return raw(Cls.LD | Mode.ABS | _SIZES[size], 0, 0, 0, imm)


def jmp_imm(op: JmpOp, dst: int, imm: int, off: int) -> bytes:
    return raw(Cls.JMP | op, dst, 0, off, imm)


def jmp_reg(op: JmpOp, dst: int, src: int, off: int) -> bytes:
    return raw(Cls.JMP | op | SRC_X, dst, src, off)


def jmp32_imm(op: JmpOp, dst: int, imm: int, off: int) -> bytes:
    return raw(Cls.JMP32 | op, dst, 0, off, imm)


def ja(off: int) -> bytes:
    return raw(Cls.JMP | JmpOp.JA, 0, 0, off)


def call_helper(helper_id: int) -> bytes:
    return raw(Cls.JMP | JmpOp.CALL, 0, 0, 0, helper_id)


def call_kfunc(btf_id: int) -> bytes:
    """A call of the vmlinux kfunc with that BTF id (BPF_PSEUDO_KFUNC_CALL)."""
    return raw(Cls.JMP | JmpOp.CALL, 0, 2, 0, btf_id)


def call_local(rel: int) -> bytes:
    """bpf-to-bpf call to the instruction ``rel + 1`` slots ahead."""
    return raw(Cls.JMP | JmpOp.CALL, 0, 1, 0, rel)


def ld_func(dst: int, rel: int) -> bytes:
    """ld_imm64 of a BPF function's address (a callback), ``rel + 1`` slots ahead."""
    return ld_imm64(dst, rel & 0xFFFFFFFF, src=4)


def exit_() -> bytes:
    return raw(Cls.JMP | JmpOp.EXIT)


def slots(code: bytes) -> int:
    """Number of 8-byte slots in ``code`` (for computing jump offsets)."""
    return len(code) // 8

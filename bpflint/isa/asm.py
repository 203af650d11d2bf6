"""Render one decoded instruction in the assembly syntax of ``llvm-objdump -d``.

The text matches what llvm-objdump 19 prints for BPF, so a listing can be checked
against it line by line. Where llvm-objdump has no syntax (32-bit atomics without
``--mattr=+alu32``, load-acquire/store-release before LLVM 20) the syntax of the
newer LLVM releases is used. :func:`annotation` names what an instruction refers
to (helper, map, kfunc, subprogram, global data), which llvm-objdump leaves to its
relocation listing.
"""

from __future__ import annotations

from bpflint.isa.helper_ids import HELPER_NAMES
from bpflint.isa.insn import Insn
from bpflint.isa.opcodes import (
    ATOMIC_CMPXCHG,
    ATOMIC_FETCH,
    ATOMIC_LOAD_ACQ,
    ATOMIC_STORE_REL,
    ATOMIC_XCHG,
    AluOp,
    Cls,
    JmpOp,
    Mode,
)

_ALU_SYMBOL = {
    AluOp.ADD: "+",
    AluOp.SUB: "-",
    AluOp.MUL: "*",
    AluOp.DIV: "/",
    AluOp.OR: "|",
    AluOp.AND: "&",
    AluOp.LSH: "<<",
    AluOp.RSH: ">>",
    AluOp.MOD: "%",
    AluOp.XOR: "^",
    AluOp.MOV: "",
    AluOp.ARSH: "s>>",
}

_JMP_SYMBOL = {
    JmpOp.JEQ: "==",
    JmpOp.JGT: ">",
    JmpOp.JGE: ">=",
    JmpOp.JSET: "&",
    JmpOp.JNE: "!=",
    JmpOp.JSGT: "s>",
    JmpOp.JSGE: "s>=",
    JmpOp.JLT: "<",
    JmpOp.JLE: "<=",
    JmpOp.JSLT: "s<",
    JmpOp.JSLE: "s<=",
}

_ATOMIC_NAME = {AluOp.ADD: "add", AluOp.OR: "or", AluOp.AND: "and", AluOp.XOR: "xor"}

_SIZE_BITS = {0x00: 32, 0x08: 16, 0x10: 8, 0x18: 64}


def hex_imm(value: int) -> str:
    """llvm-objdump's immediates: signed, in hex, ``-0x4`` rather than ``0xfffffffc``."""
    return f"-{-value:#x}" if value < 0 else f"{value:#x}"


def _signed_off(value: int) -> str:
    return f"- {-value:#x}" if value < 0 else f"+ {value:#x}"


def _mem(base: int, off: int) -> str:
    return f"(r{base} {_signed_off(off)})"


def _alu(insn: Insn) -> str:
    wide = insn.cls == Cls.ALU64
    reg = "r" if wide else "w"
    dst = f"{reg}{insn.dst}"
    op = insn.opcode.alu_op
    if op == AluOp.NEG:
        return f"{dst} = -{dst}"
    if op == AluOp.END:
        kind = "bswap" if wide else ("be" if insn.opcode.uses_reg_source else "le")
        # Byte swaps always name the 64-bit register: they zero-extend into it.
        return f"r{insn.dst} = {kind}{insn.imm} r{insn.dst}"
    if insn.opcode.uses_reg_source:
        src = f"{reg}{insn.src}"
        if op == AluOp.MOV and insn.off:
            src = f"(s{insn.off}){src}"
    else:
        src = hex_imm(insn.imm)
    symbol = _ALU_SYMBOL[AluOp(op)]
    if op in (AluOp.DIV, AluOp.MOD) and insn.off == 1:
        symbol = "s" + symbol
    return f"{dst} {symbol}= {src}"


def _jump(insn: Insn) -> str:
    op = insn.opcode
    jop = op.jmp_op
    if jop == JmpOp.EXIT:
        return "exit"
    if jop == JmpOp.CALL:
        return f"call {hex_imm(insn.imm)}"
    if op == 0xE5:
        return f"may_goto {_jump_delta(insn.off)}"
    if jop == JmpOp.JA:
        if insn.cls == Cls.JMP32:
            return f"gotol {_jump_delta(insn.imm)}"
        return f"goto {_jump_delta(insn.off)}"
    reg = "r" if insn.cls == Cls.JMP else "w"
    src = f"{reg}{insn.src}" if op.uses_reg_source else hex_imm(insn.imm)
    return f"if {reg}{insn.dst} {_JMP_SYMBOL[JmpOp(jop)]} {src} goto {_jump_delta(insn.off)}"


def _jump_delta(delta: int) -> str:
    return f"-{-delta:#x}" if delta < 0 else f"+{delta:#x}"


def _load_store(insn: Insn) -> str:
    op = insn.opcode
    bits = _SIZE_BITS[op.size]
    mode = op.mode
    cls = insn.cls
    if cls == Cls.LD:
        if insn.is_ld_imm64:
            if insn.src:
                return f"ld_pseudo\tr{insn.dst}, {insn.src:#x}, {insn.imm:#x}"
            value = insn.imm - (1 << 64) if insn.imm >= 1 << 63 else insn.imm
            return f"r{insn.dst} = {hex_imm(value)} ll"
        where = f"r{insn.src}" if mode == Mode.IND else hex_imm(insn.imm)
        return f"r0 = *(u{bits} *)skb[{where}]"
    if cls == Cls.LDX:
        sign = "s" if mode == Mode.MEMSX else "u"
        return f"r{insn.dst} = *({sign}{bits} *){_mem(insn.src, insn.off)}"
    if cls == Cls.ST:
        return f"*(u{bits} *){_mem(insn.dst, insn.off)} = {hex_imm(insn.imm)}"
    if mode == Mode.MEM:
        return f"*(u{bits} *){_mem(insn.dst, insn.off)} = r{insn.src}"
    return _atomic(insn, bits)


def _atomic(insn: Insn, bits: int) -> str:
    reg = "r" if bits == 64 else "w"
    src = f"{reg}{insn.src}"
    mem = _mem(insn.dst, insn.off)
    addr = f"r{insn.dst} {_signed_off(insn.off)}"
    imm = insn.imm
    if imm == ATOMIC_LOAD_ACQ:
        # Load-acquire is the one STX-class instruction that writes dst from [src + off].
        source = _mem(insn.src, insn.off)
        return f"{reg}{insn.dst} = load_acquire((u{bits} *){source})"
    if imm == ATOMIC_STORE_REL:
        return f"store_release((u{bits} *){mem}, {src})"
    suffix = "_64" if bits == 64 else "32_32"
    if imm == ATOMIC_XCHG:
        return f"{src} = xchg{suffix}({addr}, {src})"
    if imm == ATOMIC_CMPXCHG:
        return f"{reg}0 = cmpxchg{suffix}({addr}, {reg}0, {src})"
    op = AluOp(imm & ~ATOMIC_FETCH)
    if imm & ATOMIC_FETCH:
        return f"{src} = atomic_fetch_{_ATOMIC_NAME[op]}((u{bits} *){mem}, {src})"
    return f"lock *(u{bits} *){mem} {_ALU_SYMBOL[op]}= {src}"


def format_insn(insn: Insn) -> str:
    """The instruction as llvm-objdump -d writes it (without address and bytes)."""
    if insn.opcode.is_alu:
        return _alu(insn)
    if insn.opcode.is_jmp:
        return _jump(insn)
    return _load_store(insn)


def helper_name(helper_id: int) -> str | None:
    if 0 < helper_id < len(HELPER_NAMES):
        return f"bpf_{HELPER_NAMES[helper_id]}"
    return None


def annotation(insn: Insn) -> str | None:
    """What the instruction refers to: a helper, map, kfunc, function or global datum."""
    reloc = insn.reloc
    if reloc is not None:
        if reloc.kind == "data":
            name = reloc.map or reloc.symbol
            return f"{name}+{reloc.offset:#x}" if reloc.offset else name
        if reloc.kind == "map" and reloc.map:
            return reloc.map
        return reloc.symbol or None
    if insn.is_helper_call:
        return helper_name(insn.imm)
    return None

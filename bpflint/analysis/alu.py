"""Scalar results of the ALU operations (add, shifts, signed division, byte swaps,
...) on 64- or 32-bit operands: the part of an ALU instruction's semantics that
needs no machine state (transfer.alu() applies it to registers)."""

from __future__ import annotations

from typing import Final

from bpflint.analysis import scalar as sc
from bpflint.analysis.scalar import Scalar
from bpflint.isa.insn import Insn
from bpflint.isa.opcodes import AluOp

# the ALU operations as plain ints, for transfer.alu() and alu_scalar() (see CLS_*
# in opcodes.py)
OP_MOV: Final = int(AluOp.MOV)
OP_END: Final = int(AluOp.END)
OP_ADD: Final = int(AluOp.ADD)
OP_AND: Final = int(AluOp.AND)
OP_ARSH: Final = int(AluOp.ARSH)
OP_DIV: Final = int(AluOp.DIV)
OP_LSH: Final = int(AluOp.LSH)
OP_MOD: Final = int(AluOp.MOD)
OP_MUL: Final = int(AluOp.MUL)
OP_NEG: Final = int(AluOp.NEG)
OP_OR: Final = int(AluOp.OR)
OP_RSH: Final = int(AluOp.RSH)
OP_SUB: Final = int(AluOp.SUB)
OP_XOR: Final = int(AluOp.XOR)


# alu_scalar's results by its operands. It is a pure function of them, and an
# analysis asks for the same ones over and over (an unrolled body's constant offsets
# in every copy, a loop's counter in every context): 75-98% of the calls on the
# heaviest objects. The first _RESULTS_KEPT distinct ones are kept, then it starts
# afresh.
_RESULTS: Final[dict[tuple[int, Scalar, Scalar, int, bool], Scalar]] = {}
_RESULTS_KEPT: Final = 1 << 16


def alu_scalar(op: int, a: Scalar, b: Scalar, width: int, insn: Insn) -> Scalar:
    # (insn.off is all it reads of the instruction: 1 for signed division)
    key = (op, a, b, width, insn.off == 1)
    known = _RESULTS.get(key)
    if known is not None:
        return known
    result = _alu_scalar(op, a, b, width, insn.off == 1)
    if len(_RESULTS) >= _RESULTS_KEPT:
        _RESULTS.clear()
    _RESULTS[key] = result
    return result


def _alu_scalar(op: int, a: Scalar, b: Scalar, width: int, signed_op: bool) -> Scalar:
    if width == 32:
        a, b = sc.low32(a), sc.low32(b)
    signed = signed_op and op in (OP_DIV, OP_MOD)
    if op == OP_ADD:
        r = sc.add(a, b)
    elif op == OP_SUB:
        r = sc.sub(a, b)
    elif op == OP_MUL:
        r = sc.mul(a, b)
    elif op == OP_DIV:
        r = sc.udiv(a, b) if not signed else signed_divmod(a, b, width, True)
    elif op == OP_MOD:
        r = sc.umod(a, b) if not signed else signed_divmod(a, b, width, False)
    elif op == OP_OR:
        r = sc.bit_or(a, b)
    elif op == OP_AND:
        r = sc.bit_and(a, b)
    elif op == OP_XOR:
        r = sc.bit_xor(a, b)
    elif op == OP_LSH:
        r = sc.lsh(a, b, width)
    elif op == OP_RSH:
        r = sc.rsh(a, b, width)
    elif op == OP_ARSH:
        if width == 32:
            r = sc.const_scalar(sc.to_s32(a.umin) >> (b.umin & 31)) \
                if a.umin == a.umax and b.umin == b.umax else sc.UNKNOWN32
        else:
            r = sc.arsh(a, b)
    elif op == OP_NEG:
        r = sc.neg(a)
    else:
        r = sc.UNKNOWN
    return sc.trunc32(r) if width == 32 else r


def copies(off: int, width: int, s: Scalar) -> bool:
    """A mov (``off``: movsx's source bits, 0 for none) leaves the value ``s`` as it is."""
    if off == 0:
        return width == 64 or s.umax <= sc.U32
    return s.umax < 1 << (off - 1)


def signed_divmod(a: Scalar, b: Scalar, width: int, is_div: bool) -> Scalar:
    if a.umin == a.umax and b.umin == b.umax:
        to_s = sc.to_s32 if width == 32 else sc.to_s64
        x, y = to_s(a.umin), to_s(b.umin)
        if y == 0:
            return sc.const_scalar(0 if is_div else x)
        q = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
        return sc.const_scalar(q if is_div else x - q * y)
    return sc.UNKNOWN


def bswap(a: Scalar, bits: int) -> Scalar:
    if a.umin != a.umax:
        return sc.UNKNOWN if bits == 64 else Scalar.urange(0, (1 << bits) - 1)
    v = a.umin & ((1 << bits) - 1)
    return sc.const_scalar(int.from_bytes(v.to_bytes(bits // 8, "little"), "big"))

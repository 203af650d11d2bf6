"""Refining scalar values on both sides of a conditional jump.

``refine(a, b, relation, width)`` returns the parts of ``a`` and ``b`` for which
``a relation b`` can hold, in the unsigned or signed, 64- or 32-bit view the jump
compares, or raises EmptyValue when it cannot hold at all (an infeasible edge).
"""

from __future__ import annotations

from typing import Final

from bpflint.analysis.scalar import (
    U32,
    U64,
    EmptyValue,
    Scalar,
    _sync,
    low32,
    s32_range,
    to_s32,
)
from bpflint.isa.opcodes import JmpOp

# relation names: (signed, op) where op in "<", "<=", ">", ">=", "==", "!=", "set", "!set"
_TAKEN: Final[dict[int, tuple[bool, str]]] = {
    JmpOp.JEQ: (False, "=="), JmpOp.JNE: (False, "!="), JmpOp.JSET: (False, "set"),
    JmpOp.JGT: (False, ">"), JmpOp.JGE: (False, ">="), JmpOp.JLT: (False, "<"),
    JmpOp.JLE: (False, "<="), JmpOp.JSGT: (True, ">"), JmpOp.JSGE: (True, ">="),
    JmpOp.JSLT: (True, "<"), JmpOp.JSLE: (True, "<="),
}
_NEGATE: Final = {"==": "!=", "!=": "==", "set": "!set", "!set": "set", ">": "<=",
                  ">=": "<", "<": ">=", "<=": ">"}
_SWAP: Final = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!=",
                "set": "set", "!set": "!set"}


def relation(jmp_op: int, taken: bool) -> tuple[bool, str]:
    signed, rel = _TAKEN[jmp_op]  # int keys find the IntEnum ones; JmpOp() is slow
    return signed, rel if taken else _NEGATE[rel]


def _ints(alo: int, ahi: int, rel: str, blo: int, bhi: int) -> tuple[int, int, int, int]:
    """Refine two integer intervals so that a rel b can hold."""
    if rel == "<":
        ahi, blo = min(ahi, bhi - 1), max(blo, alo + 1)
    elif rel == "<=":
        ahi, blo = min(ahi, bhi), max(blo, alo)
    elif rel == ">":
        alo, bhi = max(alo, blo + 1), min(bhi, ahi - 1)
    elif rel == ">=":
        alo, bhi = max(alo, blo), min(bhi, ahi)
    elif rel == "==":
        alo = blo = max(alo, blo)
        ahi = bhi = min(ahi, bhi)
    elif rel == "!=":
        if blo == bhi:
            if alo == blo:
                alo += 1
            if ahi == blo:
                ahi -= 1
        if alo == ahi:
            if blo == alo:
                blo += 1
            if bhi == alo:
                bhi -= 1
    if alo > ahi or blo > bhi:
        raise EmptyValue()
    return alo, ahi, blo, bhi


def _set(a: Scalar, b: Scalar, rel: str) -> tuple[Scalar, Scalar]:
    if b.umin != b.umax:
        return a, b
    bits = b.umin
    if rel == "set":
        if (a.tval | a.tmask) & bits == 0:
            raise EmptyValue()
        if a.umin == 0 and bits:
            return _sync(1, a.umax, a.smin, a.smax, a.tval, a.tmask), b
        return a, b
    # !set: every bit of b is zero in a
    if a.tval & bits:
        raise EmptyValue()
    tmask = a.tmask & ~bits & U64
    return _sync(a.umin, a.umax, a.smin, a.smax, a.tval, tmask), b


def _holds(x: int, rel: str, y: int) -> bool:
    """``x rel y`` for two known values (``set``: some bit of y is set in x)."""
    if rel == "<":
        return x < y
    if rel == "<=":
        return x <= y
    if rel == ">":
        return x > y
    if rel == ">=":
        return x >= y
    if rel == "==":
        return x == y
    if rel == "!=":
        return x != y
    if rel == "set":
        return x & y != 0
    return x & y == 0


def known_holds(a: Scalar, b: Scalar, signed: bool, rel: str, width: int) -> bool:
    """``a rel b`` for two known values, in the view the jump compares: what refine
    makes of them (both as they are, or EmptyValue), without a memo or an exception."""
    if width == 32:
        x, y = a.umin & U32, b.umin & U32
        if signed:
            x, y = to_s32(x), to_s32(y)
    else:
        x, y = (a.smin, b.smin) if signed else (a.umin, b.umin)
    return _holds(x, rel, y)


# refine's results by its operands, as alu.alu_scalar's (a pure function the analysis
# asks the same of over and over): the first _REFINED_KEPT distinct ones, then afresh.
# The operands a comparison rules out are kept apart (EmptyValue is raised again).
_REFINED: Final[dict[tuple[Scalar, Scalar, bool, str, int], tuple[Scalar, Scalar]]] = {}
_INFEASIBLE: Final[set[tuple[Scalar, Scalar, bool, str, int]]] = set()
_REFINED_KEPT: Final = 1 << 16


def refine(a: Scalar, b: Scalar, signed: bool, rel: str, width: int) -> tuple[Scalar, Scalar]:
    key = (a, b, signed, rel, width)
    known = _REFINED.get(key)
    if known is not None:
        return known
    if key in _INFEASIBLE:
        raise EmptyValue()
    if len(_REFINED) + len(_INFEASIBLE) >= _REFINED_KEPT:
        _REFINED.clear()
        _INFEASIBLE.clear()
    try:
        result = _refine(a, b, signed, rel, width)
    except EmptyValue:
        _INFEASIBLE.add(key)
        raise
    _REFINED[key] = result
    return result


def _refine(a: Scalar, b: Scalar, signed: bool, rel: str, width: int) -> tuple[Scalar, Scalar]:
    if a.umin == a.umax and b.umin == b.umax:
        # Two known values (a loop counter against its limit, most often): the jump
        # goes one way; refining would only rebuild the same constants.
        if known_holds(a, b, signed, rel, width):
            return a, b
        raise EmptyValue()
    if rel in ("set", "!set"):
        if width == 32:
            a32, b32 = low32(a), low32(b)
            na, _ = _set(a32, b32, rel)
            return (na if a.umax <= U32 else a), b
        return _set(a, b, rel)
    if width == 64:
        # an interval the comparison leaves as it was keeps its scalar as it was
        if signed:
            alo, ahi, blo, bhi = _ints(a.smin, a.smax, rel, b.smin, b.smax)
            return (a if alo == a.smin and ahi == a.smax
                    else _sync(a.umin, a.umax, alo, ahi, a.tval, a.tmask),
                    b if blo == b.smin and bhi == b.smax
                    else _sync(b.umin, b.umax, blo, bhi, b.tval, b.tmask))
        alo, ahi, blo, bhi = _ints(a.umin, a.umax, rel, b.umin, b.umax)
        return (a if alo == a.umin and ahi == a.umax
                else _sync(alo, ahi, a.smin, a.smax, a.tval, a.tmask),
                b if blo == b.umin and bhi == b.umax
                else _sync(blo, bhi, b.smin, b.smax, b.tval, b.tmask))
    return _refine32(a, signed, rel, b), _refine32(b, signed, _SWAP[rel], a)


def _refine32(a: Scalar, signed: bool, rel: str, b: Scalar) -> Scalar:
    """Refine ``a`` from a 32-bit comparison with ``b``.

    The low half of ``a`` is refined; the result maps back onto the 64-bit value
    only when the high half is known (zero-extended, or a sign-extended 32-bit value).
    """
    if signed:
        alo, ahi = s32_range(a)
        blo, bhi = s32_range(b)
    else:
        la, lb = low32(a), low32(b)
        alo, ahi, blo, bhi = la.umin, la.umax, lb.umin, lb.umax
    nlo, nhi, _, _ = _ints(alo, ahi, rel, blo, bhi)
    if nlo == alo and nhi == ahi:
        return a  # nothing learnt about the low half
    if a.umax <= U32:  # high half zero: the 64-bit value is the u32 value
        if not signed:
            return _sync(max(a.umin, nlo), min(a.umax, nhi), a.smin, a.smax, a.tval, a.tmask)
        if nlo >= 0:
            return _sync(max(a.umin, nlo), min(a.umax, nhi), a.smin, a.smax, a.tval, a.tmask)
        if nhi < 0:
            return _sync(max(a.umin, nlo + (1 << 32)), min(a.umax, nhi + (1 << 32)),
                         a.smin, a.smax, a.tval, a.tmask)
        return a
    if a.smin >= -(1 << 31) and a.smax < (1 << 31) and signed:
        # sign-extended 32-bit value: its s64 value equals its s32 value
        return _sync(a.umin, a.umax, max(a.smin, nlo), min(a.smax, nhi), a.tval, a.tmask)
    return a

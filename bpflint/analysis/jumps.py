"""Conditional jumps: the state on each side of one (the verifier's
reg_set_min_max and sync_linked_regs, simplified)."""

from __future__ import annotations

from typing import Final

from bpflint.analysis.branch import known_holds, refine, relation
from bpflint.analysis.scalar import EmptyValue, Scalar
from bpflint.analysis.state import (
    CONST_VALS,
    STACK_OR_OTHER,
    UNKNOWN,
    ZERO,
    Kind,
    State,
    Val,
    const,
    linked,
    new_state,
)
from bpflint.analysis.transfer import Machine
from bpflint.isa.insn import Insn
from bpflint.isa.opcodes import Cls

_SCALAR: Final = Kind.SCALAR
_CLS_JMP32: Final = int(Cls.JMP32)

def branch_state(before: State, insn: Insn, taken: bool) -> State | None:
    """One side of a conditional jump from ``before`` (None: infeasible) as refine_branch
    makes it, ``before`` itself when the jump narrows nothing (a known loop counter
    against its limit); no Machine for two scalars whose narrowing reaches no link."""
    op = insn.opcode
    regs = before.regs
    a = regs[insn.dst]
    b = regs[insn.src] if op & 0x08 else CONST_VALS.get(insn.imm) or const(insn.imm)
    if op != 0xE5 and a.kind == _SCALAR and b.kind == _SCALAR:
        signed, rel = relation(op & 0xF0, taken)
        width = 32 if op & 0x07 == _CLS_JMP32 else 64
        sa = na = a.s
        sb = nb = b.s
        if sa.umin != sa.umax or sb.umin != sb.umax:
            try:
                na, nb = refine(sa, sb, signed, rel, width)
            except EmptyValue:
                return None
        elif not known_holds(sa, sb, signed, rel, width):
            return None  # (refine raises for it, once the memo has had it hashed)
        if not (a.link and na != sa) and not (op & 0x08 and b.link and nb != sb):
            va = linked(na, a.link)
            vb = linked(nb, b.link) if op & 0x08 else b
            if va == a and vb == b:
                return before
            out = list(regs)
            out[insn.dst] = va
            if op & 0x08:
                out[insn.src] = vb
            return new_state(tuple(out), before.stack)
    m = Machine(before)
    return m.freeze() if refine_branch(m, insn, taken) else None


def refine_branch(m: Machine, insn: Insn, taken: bool) -> bool:
    """Narrow the registers for one side of a conditional jump; False if infeasible."""
    if insn.opcode == 0xE5:  # may_goto
        return True
    jop = insn.opcode & 0xF0
    width = 32 if insn.opcode & 0x07 == _CLS_JMP32 else 64
    regs = m.regs
    # An immediate is sign-extended to 64 bits; 32-bit compares read its low half.
    a = regs[insn.dst]
    b = regs[insn.src] if insn.opcode & 0x08 else const(insn.imm)
    signed, rel = relation(jop, taken)
    if a.kind != b.kind and (a.ref == STACK_OR_OTHER or b.ref == STACK_OR_OTHER) \
            and not (b == ZERO and rel in ("==", "!=")):
        # A STACK_OR_OTHER value met with a scalar: plain data a callee wrote is
        # compared as a scalar (if (n > 30) return; after fill(&n)); a pointer is not
        # compared with a number but against NULL, which keeps it a pointer.
        if a.ref == STACK_OR_OTHER and b.kind == Kind.SCALAR:
            a = UNKNOWN
        elif b.ref == STACK_OR_OTHER and a.kind == Kind.SCALAR:
            b = UNKNOWN
    if a.kind == Kind.SCALAR and b.kind == Kind.SCALAR:
        try:
            na, nb = refine(a.s, b.s, signed, rel, width)
            # narrowing keeps a register's value, so its links hold; the other
            # holders of a link learn the same bound (sync_linked_regs)
            regs[insn.dst] = linked(na, a.link)
            if insn.opcode & 0x08:
                regs[insn.src] = linked(nb, b.link)
                if b.link and nb != b.s:
                    m.sync_links(nb, b.link, insn.src)
            if a.link and na != a.s:
                m.sync_links(na, a.link, insn.dst)
        except EmptyValue:
            return False
        return True
    # pointer NULL checks
    if a.kind in (Kind.MAP_VALUE, Kind.MEM, Kind.ITER_ELEM, Kind.CTX) and b == ZERO and \
            rel in ("==", "!="):
        is_null = rel == "=="
        if is_null and not a.maybe_null:
            return False
        if is_null:
            regs[insn.dst] = ZERO
        else:
            regs[insn.dst] = Val(a.kind, a.s, a.ref, False, a.extra)
            if a.kind == Kind.ITER_ELEM and a.maybe_null:
                return _iter_consumed(m, a)
        return True
    return True


def _iter_consumed(m: Machine, elem: Val) -> bool:
    """bpf_iter_num_next returned an element: its iterator had one left, now one less."""
    if not isinstance(elem.ref, int):
        return True
    slot = m.slot(elem.ref)
    if slot is None or slot[1].kind != Kind.ITER:
        return True
    left = slot[1].s
    if left.umax == 0:
        return False
    new_left = Scalar.urange(max(left.umin, 1) - 1, left.umax - 1)
    m.stack[elem.ref] = (slot[0], Val(Kind.ITER, new_left, slot[1].ref, False, slot[1].extra))
    return True


"""Loop bounds from an equality exit: a counter stepped by exactly 1 that leaves the
loop when it equals a loop-invariant end (``while (i != n) i++``, and clang's
rewrite of ``i < n + 1`` into ``i + 1 != n + 1``).

Soundness argument. Let location L move by exactly c = +1 (or -1) from the header
round to round on every path (bounds.py's deltas), and let a conditional jump in
block T, which every path from the header to a back edge passes, leave the loop
directly when ``L + d == e`` (JEQ taken, JNE not taken), where d is L's exact delta
at T and e is the same value in every round (an immediate, or a function of a
location no round changes). In round k (after k back edges) T compares
x0 + d + k*c with e. If every entry value x0 starts on the near side of every
possible e (x0 + d <= e for c = +1, in a view without wrap-around), the rounds
meet e exactly, so no round after k = e - (x0 + d) takes a back edge: the loop
takes at most max(e) - min(x0 + d) back edges (mirrored for c = -1). The fixpoint's
range of e at T is sound for the value it has in every round.
"""

from __future__ import annotations

from collections.abc import Callable

from bpflint.analysis import scalar as sc
from bpflint.analysis.state import Kind, State, join_state
from bpflint.analysis.transfer import Machine
from bpflint.cfg.graph import Cfg
from bpflint.cfg.loops import Loop, LoopForest
from bpflint.isa.opcodes import Cls

Loc = tuple
Sym = tuple
# a block's symbolic deltas and machine just before its last instruction
AtBranch = Callable[[int], tuple[dict[Loc, Sym], Machine] | None]
_JEQ, _JNE = 0x10, 0x50


def equality_trips(cfg: Cfg, forest: LoopForest, loop: Loop,
                   edge_out: dict[tuple[int, int], State], loc: Loc, c: int,
                   latch_ds: list[dict[Loc, Sym]], at_branch: AtBranch,
                   entry_range: Callable[[State, Loc], sc.Scalar | None]) -> int | None:
    """The fewest back edges an equality exit allows ``loc`` (stepping by ``c``),
    or None where no exit test qualifies."""
    if abs(c) != 1:
        return None
    entry = _entry_state(cfg, loop, edge_out)
    start = entry_range(entry, loc) if entry is not None else None
    if start is None:
        return None
    best: int | None = None
    for b in loop.order:
        last = cfg.blocks[b].insns[-1]
        jop = last.opcode & 0xF0
        if not last.is_conditional_jump or jop not in (_JEQ, _JNE) \
                or forest.innermost.get(b) != loop.header or len(cfg.blocks[b].succs) != 2:
            continue
        fall, taken = cfg.blocks[b].succs
        equal_side = taken if jop == _JEQ else fall
        if equal_side in loop.body or not _on_every_round(cfg, loop, b):
            continue
        got = at_branch(b)
        if got is None:
            continue
        d, m = got
        n = _trips(last, d, m, loc, c, latch_ds, start)
        if n is not None and (best is None or n < best):
            best = n
    return best


def _trips(last: object, d: dict[Loc, Sym], m: Machine, loc: Loc, c: int,
           latch_ds: list[dict[Loc, Sym]], start: sc.Scalar) -> int | None:
    from bpflint.isa.insn import Insn
    assert isinstance(last, Insn)
    regs = [last.dst, last.src] if last.opcode & 0x08 else [last.dst]
    for mine, other in ((0, 1), (1, 0)):
        if mine >= len(regs):
            continue
        sym = d.get(("r", regs[mine]), (("r", regs[mine]), 0, False))
        if len(sym) != 3 or sym[0] != loc or not isinstance(sym[1], int):
            continue
        if other < len(regs):
            end_sym = d.get(("r", regs[other]), (("r", regs[other]), 0, False))
            if not _invariant(end_sym, loc, latch_ds):
                continue
            end_val = m.regs[regs[other]]
            if end_val.kind != Kind.SCALAR:
                continue
            end = end_val.s
        else:
            end = sc.const_scalar(last.imm & sc.U64)
        mine_val = m.regs[regs[mine]]
        if mine_val.kind != Kind.SCALAR:
            continue
        jmp32 = last.opcode & 0x07 == Cls.JMP32
        # 64-bit values that hold their low halves only (zero-extended copies) compare
        # as those; a 64-bit counter touched by 32-bit ops does not follow its delta
        w32 = jmp32 or (mine_val.s.umax <= sc.U32 and end.umax <= sc.U32)
        if not w32 and sym[2]:
            continue
        # the first round's tested value (its range where that does not wrap)
        first = sc.add(start, sc.const_scalar(sym[1] & sc.U64))
        if w32:
            first, end = sc.low32(first), sc.low32(end)
        lo, hi = first.umin, first.umax
        if c > 0 and hi <= end.umin:
            return end.umax - lo
        if c < 0 and lo >= end.umax:
            return hi - end.umin
    return None


def _invariant(sym: Sym, loc: Loc, latch_ds: list[dict[Loc, Sym]]) -> bool:
    """A value every round computes alike from a location no round changes."""
    if len(sym) != 3 or sym[0] == loc or not isinstance(sym[1], int) \
            or not isinstance(sym[0], tuple):
        return False
    origin = sym[0]
    return all(ld.get(origin, (origin, 0, False)) == (origin, 0, False) for ld in latch_ds)


def _on_every_round(cfg: Cfg, loop: Loop, b: int) -> bool:
    """Every path from the header to a back edge passes block ``b``."""
    if b == loop.header:
        return True
    seen = {loop.header}
    todo = [loop.header]
    while todo:
        x = todo.pop()
        for s in cfg.blocks[x].succs:
            if s == loop.header:
                return False  # a back edge reached around b
            if s in loop.body and s != b and s not in seen:
                seen.add(s)
                todo.append(s)
    return True


def _entry_state(cfg: Cfg, loop: Loop, edge_out: dict[tuple[int, int], State]
                 ) -> State | None:
    """The join of the states entering the loop from outside it."""
    h = loop.header
    state: State | None = None
    for p in cfg.preds[h]:
        st = edge_out.get((p, h))
        if p in loop.body or st is None:
            continue
        state = st if state is None else join_state(state, st)
    return state

"""Loop trip bounds from induction variables.

Soundness argument. Take a location (register, stack slot, open-coded iterator,
or the may_goto budget) that changes by the same non-zero constant ``c`` on every
path from the loop header to every back edge, with no wrap-around in some view
(u64, s64, u32 or s32) for any value the header can hold. Then its values at
successive header visits form a strictly monotonic sequence inside the header's
range [lo, hi] from the (sound) fixpoint, so one entry into the loop takes at
most floor((hi - lo) / |c|) back edges.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

from bpflint.analysis import scalar as sc
from bpflint.analysis.calls import CALLBACK_ARG, ITER_NEXT
from bpflint.analysis.equality_exits import equality_trips
from bpflint.analysis.fixpoint import Flow, step
from bpflint.analysis.jumps import refine_branch
from bpflint.analysis.state import UNKNOWN, Kind, State, Val
from bpflint.analysis.transfer import Env, Machine
from bpflint.cfg.graph import Cfg
from bpflint.cfg.loops import Loop, LoopForest
from bpflint.isa.insn import Insn
from bpflint.isa.opcodes import AluOp, Cls, Mode

# BPF_MAX_LOOPS: the count model's may_goto falls through at most this often per
# frame (kernels before 6.15, and interpreters/JITs without the timed form). The
# timed form (bpflint/cost/may_goto.py) has no count: the engine bounds it by time.
MAY_GOTO_BUDGET = 1 << 23
MAX_PLAUSIBLE_TRIPS = 1 << 24  # beyond the verifier's reach for counted loops

Loc = tuple  # ("r", n) | ("s", off) | ("it", off) | ("mg",)
# symbolic value: (origin location, delta, touched by 32-bit ops) or an iterator result tag;
# the delta is an int, or a pair (least, greatest) once a register of known range was added
Sym = tuple


@dataclass(frozen=True)
class LoopBound:
    header: int
    max_backedges: int | None  # None: no bound proven
    min_backedges: int
    how: str  # human-readable proof sketch, e.g. "r6 += 1 over [0, 100]"
    # Every iteration takes one may_goto fall-through: the frame's may_goto budget
    # bounds the loop too (under the count model already folded into max_backedges).
    may_goto: bool = False
    # max_backedges is over the least of a step of known range (i += 1 + (x & 3)):
    # the loop's least back edges are worth walking its iterations for
    variable_step: bool = False


# Compared with ==, never `is`: compiled (bpflint/native.py), a tuple constant is
# boxed anew at each use.
_UNKNOWN: Sym = ("?",)


def _meet(a: dict[Loc, Sym], b: dict[Loc, Sym]) -> dict[Loc, Sym]:
    out = {}
    for loc in a.keys() | b.keys():
        x, y = a.get(loc), b.get(loc)
        if x is None:
            x = (loc, 0, False)
        if y is None:
            y = (loc, 0, False)
        out[loc] = x if x == y else _hull(x, y)
    return out


def _hull(x: Sym, y: Sym) -> Sym:
    """Paths moving the same location by different amounts: by the least to the
    greatest of them (a bound needs them all of one sign: bound_loop checks)."""
    if not _tracked(x) or not _tracked(y) or x[0] != y[0]:
        return _UNKNOWN
    xlo, xhi = _delta_range(x[1])
    ylo, yhi = _delta_range(y[1])
    return (x[0], _shift(0, min(xlo, ylo), max(xhi, yhi)), x[2] or y[2])


def _get(d: dict[Loc, Sym], loc: Loc) -> Sym:
    return d.get(loc, (loc, 0, False))


def _delta_range(delta: int | tuple[int, int]) -> tuple[int, int]:
    return delta if isinstance(delta, tuple) else (delta, delta)


def _shift(delta: int | tuple[int, int], lo: int, hi: int) -> int | tuple[int, int]:
    """``delta`` moved by a step in [lo, hi]: an int while exact, else (least, greatest)."""
    dlo, dhi = _delta_range(delta)
    dlo, dhi = dlo + lo, dhi + hi
    return dlo if dlo == dhi else (dlo, dhi)


# A step of known range must stay a small integer, as an immediate is: then adding it
# to the low 32 bits (the views of a counter touched by 32-bit ops) moves them by it.
_STEP_LIMIT = (1 << 31) - 1


def _add_range(cur: Sym, src: sc.Scalar, sub: bool, w32: bool) -> Sym:
    """``cur`` after adding (subtracting) a register of known range: i += 1 + (x & 3).
    The range is the fixpoint's at this instruction, so it holds in every round; the
    loop's bound takes the least step, its wrap check the greatest (_trips)."""
    if not _tracked(cur):
        return _UNKNOWN
    lo, hi = sc.s32_range(src) if w32 else (src.smin, src.smax)
    if sub:
        lo, hi = -hi, -lo
    if lo < -_STEP_LIMIT or hi > _STEP_LIMIT:
        return _UNKNOWN
    return (cur[0], _shift(cur[1], lo, hi), cur[2] or w32)


# Tag of a tracked value shifted left by 32 (first half of clang's sign or zero
# extension of a 32-bit counter, r <<= 32; r s>>= 32): Sym (_SHIFTED, original, False).
_SHIFTED = "<<32"


def _tracked(sym: Sym) -> bool:
    """A location's origin and delta, not an iterator result or a half-done shift."""
    return sym != _UNKNOWN and sym[0] != "itres" and sym[0] != _SHIFTED


def _extend_half(cur: Sym, left: bool) -> Sym:
    """r <<= 32 then r >>= 32 (or s>>= 32) keep the low 32 bits: the original's delta
    holds in the 32-bit views, which the touched-by-32-bit-ops flag selects."""
    if left:
        return (_SHIFTED, cur, False) if _tracked(cur) else _UNKNOWN
    if cur == _UNKNOWN or cur[0] != _SHIFTED:
        return _UNKNOWN
    inner = cur[1]
    return (inner[0], inner[1], True)


def _add_shifted(cur: Sym, src: sc.Scalar, sub: bool) -> Sym:
    """A counter shifted left by 32 plus a constant c << 32: clang's decrement of a
    signed 32-bit counter fused into its sign extension (``r <<= 32; r += -1 << 32;
    r s>>= 32`` for ``i--``). (x << 32) + (c << 32) is (x + c) << 32 mod 2^64, so the
    original moves by c (the low 32 bits of the constant must be zero)."""
    if not src.is_const or src.umin & sc.U32:
        return _UNKNOWN
    step = sc.to_s64(src.umin) >> 32  # the high half, signed
    if sub:
        step = -step
    if step < -_STEP_LIMIT or step > _STEP_LIMIT:
        return _UNKNOWN
    inner = cur[1]
    return (_SHIFTED, (inner[0], _shift(inner[1], step, step), inner[2]), False)


def _stack_off(m: Machine, reg: int, off: int) -> int | None:
    base = m.regs[reg]
    if base.kind == Kind.STACK and base.s.is_const:
        return sc.to_s64(base.s.umin) + off
    return None


def _step(d: dict[Loc, Sym], m: Machine, insn: Insn, modified: set[Loc]) -> None:
    """Track symbolic deltas through one instruction (before the machine executes it)."""
    op = insn.opcode
    cls = op & 0x07
    dst = ("r", insn.dst)
    if cls in (Cls.ALU, Cls.ALU64):
        aop = op & 0xF0
        w32 = cls == Cls.ALU
        if aop == AluOp.MOV and not insn.off and op & 0x08:
            origin, delta, flag = _get(d, ("r", insn.src)) if _get(d, ("r", insn.src)) \
                != _UNKNOWN else (None, 0, False)
            if origin == _SHIFTED and w32:
                origin = None  # the low half of a value shifted left by 32: zero
            d[dst] = (origin, delta, flag or w32) if origin is not None else _UNKNOWN
        elif not op & 0x08 and insn.imm == 32 and not w32 \
                and aop in (AluOp.LSH, AluOp.RSH, AluOp.ARSH):
            d[dst] = _extend_half(_get(d, dst), aop == AluOp.LSH)
        elif aop in (AluOp.ADD, AluOp.SUB) and not op & 0x08:
            cur = _get(d, dst)
            if not _tracked(cur):
                d[dst] = _UNKNOWN
            else:
                step = insn.imm if aop == AluOp.ADD else -insn.imm
                d[dst] = (cur[0], _shift(cur[1], step, step), cur[2] or w32)
        elif aop in (AluOp.ADD, AluOp.SUB) and insn.src != insn.dst \
                and m.regs[insn.src].kind == Kind.SCALAR:
            cur = _get(d, dst)
            src_sym = _get(d, ("r", insn.src))
            if cur != _UNKNOWN and cur[0] == _SHIFTED and not w32:
                d[dst] = _add_shifted(cur, m.regs[insn.src].s, aop == AluOp.SUB)
            elif cur == _UNKNOWN and aop == AluOp.ADD and _tracked(src_sym) \
                    and m.regs[insn.dst].kind == Kind.SCALAR:
                # step = 1 + (x & 1); step += i: the counter added to a register of
                # known range (clang commutes i += step so)
                d[dst] = _add_range(src_sym, m.regs[insn.dst].s, False, w32)
            else:
                d[dst] = _add_range(cur, m.regs[insn.src].s, aop == AluOp.SUB, w32)
        else:
            d[dst] = _UNKNOWN
        modified.add(dst)
    elif cls == Cls.LDX:
        off = _stack_off(m, insn.src, insn.off)
        d[dst] = _get(d, ("s", off)) if off is not None and insn.opcode.size == 0x18 \
            else _UNKNOWN
        modified.add(dst)
    elif cls in (Cls.ST, Cls.STX):
        off = _stack_off(m, insn.dst, insn.off)
        is_atomic = cls == Cls.STX and op & 0xE0 == Mode.ATOMIC
        if off is None:
            if m.regs[insn.dst].kind == Kind.STACK:
                for loc in [k for k in d if k[0] == "s"]:
                    d[loc] = _UNKNOWN
                modified.add(("s", "*"))
        else:
            size = insn.opcode.size_bytes
            for loc in [k for k in list(d) if k[0] == "s" and k[1] != off
                        and k[1] < off + size and off < k[1] + 8]:
                d[loc] = _UNKNOWN
            full = cls == Cls.STX and not is_atomic and size == 8
            d[("s", off)] = _get(d, ("r", insn.src)) if full else _UNKNOWN
            modified.add(("s", off))
        if is_atomic and insn.imm & 0x01:
            d[("r", 0 if insn.imm == 0xF1 else insn.src)] = _UNKNOWN
    elif cls == Cls.LD:
        d[dst] = _UNKNOWN
        modified.add(dst)
        if not insn.is_ld_imm64:
            for r in range(6):
                d[("r", r)] = _UNKNOWN
    elif insn.is_call:
        result: Sym = _UNKNOWN
        if insn.reloc is not None and insn.reloc.symbol in ITER_NEXT:
            off = _stack_off(m, 1, 0)
            if off is not None:
                result = ("itres", off, False)
        for r in range(6):
            d[("r", r)] = _UNKNOWN
            modified.add(("r", r))
        d[("r", 0)] = result
        if any(m.regs[r].kind == Kind.STACK for r in range(1, 6)) and result == _UNKNOWN:
            for loc in [k for k in d if k[0] == "s"]:
                d[loc] = _UNKNOWN
            modified.add(("s", "*"))


def _edge_effect(d: dict[Loc, Sym], m: Machine, insn: Insn, taken: bool) -> None:
    """Effects that happen on one side of a branch only."""
    if insn.is_may_goto:
        if not taken:
            cur = _get(d, ("mg",))
            d[("mg",)] = (cur[0], _shift(cur[1], -1, -1), False) if cur != _UNKNOWN else _UNKNOWN
        return
    sym = _get(d, ("r", insn.dst))
    if sym == _UNKNOWN or sym[0] != "itres" or insn.opcode & 0x08 or insn.imm != 0:
        return
    jop = insn.opcode & 0xF0
    nonnull = (jop == 0x50 and taken) or (jop == 0x10 and not taken)
    if nonnull:
        loc = ("it", sym[1])
        cur = _get(d, loc)
        d[loc] = (cur[0], _shift(cur[1], -1, -1), False) if cur != _UNKNOWN else _UNKNOWN


def _header_range(state: State, loc: Loc, may_goto_count: int = MAY_GOTO_BUDGET
                  ) -> sc.Scalar | None:
    if loc[0] == "r":
        val: Val = state.regs[loc[1]]
        return val.s if val.kind == Kind.SCALAR else None
    if loc[0] == "mg":
        return sc.Scalar.urange(0, may_goto_count)
    slot = state.stack_dict().get(loc[1])
    if slot is None:
        return None
    if loc[0] == "it":
        return slot[1].s if slot[1].kind == Kind.ITER else None
    return slot[1].s if slot[1].kind == Kind.SCALAR and slot[0] == 8 else None


def _latch_range(edges: dict[tuple[int, int], State], loop: Loop, loc: Loc,
                 may_goto_count: int) -> sc.Scalar | None:
    """The location's range over every back edge of the loop."""
    joined: sc.Scalar | None = None
    for latch in loop.latches:
        state = edges.get((latch, loop.header))
        if state is None:
            continue
        rng = _header_range(state, loc, may_goto_count)
        if rng is None:
            return None
        joined = rng if joined is None else sc.join(joined, rng)
    return joined


def _trips(rng: sc.Scalar, c: int, w32: bool, c_far: int | None = None) -> int | None:
    """Largest number of back edges a monotonic location can take within rng, moving
    by at least ``c`` and at most ``c_far`` (same sign; ``c`` if None) each time."""
    far = c if c_far is None else c_far
    views = []
    if w32:
        lo32 = sc.low32(rng)
        if rng.umax <= sc.U32:
            views.append((lo32.umin, lo32.umax, 0, sc.U32))
        views.append((*sc.s32_range(rng), -(1 << 31), (1 << 31) - 1))
    else:
        views.append((rng.umin, rng.umax, 0, sc.U64))
        views.append((rng.smin, rng.smax, sc.S64_MIN, sc.S64_MAX))
    best = None
    for lo, hi, vmin, vmax in views:
        if (c > 0 and hi + far <= vmax) or (c < 0 and lo + far >= vmin):
            n = (hi - lo) // abs(c)
            best = n if best is None else min(best, n)
    return best


def bound_loop(cfg: Cfg, forest: LoopForest, loop: Loop, flow: Flow, env: Env,
               may_goto_count: int | None = MAY_GOTO_BUDGET) -> LoopBound:
    """The loop's bound from induction variables. ``may_goto_count``: the may_goto
    fall-throughs a frame gets (the count model), or None for the timed model, where
    a loop the may_goto budget bounds comes back with ``may_goto`` set and only its
    other bounds in ``max_backedges`` (the engine adds the time bound)."""
    block_in, edges = flow.block_in, flow.edge_out
    header_state = block_in.get(loop.header)
    if header_state is None:
        return LoopBound(loop.header, 0, 0, "unreachable")
    order = loop.order
    edge_d: dict[tuple[int, int], dict[Loc, Sym]] = {}
    inner_modified: dict[int, set[Loc]] = {h: set() for h in loop.children}
    modified_in_block: dict[int, set[Loc]] = {}
    # First pass: per block, which locations it modifies (for inner loops' clobbers).
    for b in order:
        st = block_in.get(b)
        if st is None:
            continue
        d: dict[Loc, Sym] = {}
        mods: set[Loc] = set()
        _walk_block(cfg, b, st, d, mods, None, env)
        modified_in_block[b] = mods
        inner = forest.innermost.get(b)
        while inner is not None and inner != loop.header:
            if inner in inner_modified:
                inner_modified[inner] |= mods
            inner = forest.loops[inner].parent
    # Inner loops also consume iterators and the may_goto budget on their edges; only
    # a call (an iterator's next, a subprogram given the iterator) or a may_goto can,
    # so an inner loop with neither (a counted loop over packet bytes inside a bpf_for,
    # say) leaves the outer iterator's count alone.
    for h in loop.children:
        inner_modified[h] |= _iterators_consumed(cfg, forest.loops[h], block_in, env)
    d_in: dict[int, dict[Loc, Sym]] = {loop.header: {}}
    for b in order:
        st = block_in.get(b)
        if st is None:
            continue
        if b != loop.header:
            ins = [edge_d[(p, b)] for p in cfg.preds[b] if (p, b) in edge_d]
            if not ins:
                continue
            cur = ins[0]
            for other in ins[1:]:
                cur = _meet(cur, other)
            if b in inner_modified:  # entering an inner loop: what it writes is lost
                cur = _clobber(cur, inner_modified[b], header_state)
            d_in[b] = cur
        outs = _walk_block(cfg, b, st, dict(d_in[b]), set(), edges, env)
        for succ, dout in outs.items():
            if succ == loop.header and b not in loop.latches:
                continue
            edge_d[(b, succ)] = dout
    latch_ds = [edge_d[(lt, loop.header)] for lt in loop.latches if (lt, loop.header) in edge_d]
    if not latch_ds:
        return LoopBound(loop.header, 0, 0, "back edge infeasible")
    best: tuple[int, str, bool] | None = None
    by_may_goto = False
    candidates = set().union(*latch_ds)
    for loc in candidates:
        syms = {_get(d, loc) for d in latch_ds}
        if len(syms) != 1 or _UNKNOWN in syms:
            continue
        sym = next(iter(syms))
        if not _tracked(sym):  # a value shifted left by 32 on the back edge: no delta
            continue
        origin, delta, w32 = sym
        dlo, dhi = _delta_range(delta)
        if origin != loc or dlo <= 0 <= dhi:
            continue
        # the step of least magnitude bounds the rounds; the greatest, wrapping
        c, c_far = (dlo, dhi) if dlo > 0 else (dhi, dlo)
        if loc[0] == "mg":
            # one fall-through per iteration (delta -1 on every path) or more
            by_may_goto = True
            if may_goto_count is None:
                continue
        rng = _header_range(header_state, loc, may_goto_count or 0)
        if rng is None:
            continue
        n = _trips(rng, c, w32, c_far)
        # The values the location holds on the back edges (after the loop's exit tests
        # refined them) also bound the trips: n + 1 back edges walk n + 1 distinct
        # values x, x + c, ... of that range, each step without wrapping.
        latch_rng = _latch_range(edges, loop, loc, may_goto_count or 0)
        if latch_rng is not None:
            latch_n = _trips(latch_rng, c, w32, c_far)
            if latch_n is not None and (n is None or latch_n + 1 < n):
                n, rng = latch_n + 1, latch_rng
        how = ""
        if n is None and c == c_far and loc[0] in ("r", "s"):  # (no range test bounds it)
            n = equality_trips(cfg, forest, loop, edges, loc, c, latch_ds,
                               lambda b: _at_branch(cfg, b, block_in, d_in, env),
                               lambda st, where: _header_range(st, where, 0))
            how = f"{_loc_name(loc)} {'+' if c > 0 else '-'}= 1 until an equality exit, " \
                f"at most {n} back edges"
        if n is None:
            continue
        if loc[0] == "r" or loc[0] == "s":
            if n > MAX_PLAUSIBLE_TRIPS:
                continue
        if best is None or n < best[0]:
            step_text = str(abs(c)) if c == c_far else f"{abs(c)}..{abs(c_far)}"
            best = (n, how or f"{_loc_name(loc)} {'+' if c > 0 else '-'}= {step_text} over "
                       f"[{rng.umin}, {rng.umax}]" if loc[0] != "mg" else "may_goto budget",
                    c != c_far)
    if best is None:
        if by_may_goto:
            return LoopBound(loop.header, None, 0, "timed may_goto", True)
        return LoopBound(loop.header, None, 0, "no induction variable with a bounded range")
    return LoopBound(loop.header, best[0], 0, best[1], by_may_goto, best[2])


def _iterators_consumed(cfg: Cfg, loop: Loop, block_in: dict[int, State], env: Env
                        ) -> set[Loc]:
    """The iterators and may_goto budget the loop may move: a may_goto, a kfunc, a
    subprogram or a helper running a callback (either may be given an iterator) may
    move any; an iterator's next given a known slot (bpf_repeat inside a bpf_repeat)
    only that one. Other helpers take no iterator."""
    out: set[Loc] = set()
    for b in loop.body:
        state = block_in.get(b)
        if state is None:
            continue
        m = Machine(state)
        for insn in cfg.blocks[b].insns:
            if insn.is_may_goto or insn.is_call and not (
                    insn.is_helper_call and insn.imm not in CALLBACK_ARG):
                off = _stack_off(m, 1, 0) if insn.is_kfunc_call and insn.reloc is not None \
                    and insn.reloc.symbol in ITER_NEXT else None
                out |= {("mg",), ("it", "*") if off is None else ("it", off)}
            if not insn.is_branch and not insn.is_exit:
                step(m, insn, env, unknown_result)
    return out


def _clobber(cur: dict[Loc, Sym], mods: set[Loc], header_state: State) -> dict[Loc, Sym]:
    """Forget every location in ``mods``; ("s", "*") / ("it", "*") mean all of a kind."""
    out = dict(cur)
    wild = {loc[0] for loc in mods if len(loc) == 2 and loc[1] == "*"}
    for loc in mods:
        if not (len(loc) == 2 and loc[1] == "*"):
            out[loc] = _UNKNOWN
    if wild:
        known = list(out) + [("s", off) for off, _, _ in header_state.stack] + \
            [("it", off) for off, _, _ in header_state.stack]
        for loc in known:
            if loc[0] in wild:
                out[loc] = _UNKNOWN
    return out


def _loc_name(loc: Loc) -> str:
    if loc[0] == "r":
        return f"r{loc[1]}"
    if loc[0] == "s":
        return f"*(r10{loc[1]:+d})"
    if loc[0] == "it":
        return f"iterator at r10{loc[1]:+d}"
    return "may_goto"


def _walk_block(cfg: Cfg, b: int, state: State, d: dict[Loc, Sym], mods: set[Loc],
                edges: Container[tuple[int, int]] | None, env: Env
                ) -> dict[int, dict[Loc, Sym]]:
    """Run deltas (and the concrete-state machine for pointer facts) through a block."""
    block = cfg.blocks[b]
    m = Machine(state)
    for insn in block.insns[:-1]:
        _step(d, m, insn, mods)
        step(m, insn, env, unknown_result)
    last = block.insns[-1]
    if edges is None:
        if not last.is_branch and not last.is_exit:
            _step(d, m, last, mods)
        return {}
    outs: dict[int, dict[Loc, Sym]] = {}
    if last.is_conditional_jump:
        succs = block.succs if len(block.succs) == 2 else block.succs * 2
        for succ, taken in ((succs[0], False), (succs[1], True)):
            if (b, succ) not in edges:
                continue
            branch = Machine(m.freeze())
            if not refine_branch(branch, last, taken):
                continue
            dd = dict(d)
            _edge_effect(dd, m, last, taken)
            outs[succ] = _meet(outs[succ], dd) if succ in outs else dd
        return outs
    if not last.is_exit and not last.is_unconditional_jump:
        _step(d, m, last, mods)
    for succ in block.succs:
        if (b, succ) in edges:
            outs[succ] = d
    return outs


def _at_branch(cfg: Cfg, b: int, block_in: dict[int, State],
               d_in: dict[int, dict[Loc, Sym]], env: Env
               ) -> tuple[dict[Loc, Sym], Machine] | None:
    """Deltas and machine just before block ``b``'s last instruction."""
    st = block_in.get(b)
    if st is None or b not in d_in:
        return None
    d, m = dict(d_in[b]), Machine(st)
    for insn in cfg.blocks[b].insns[:-1]:
        _step(d, m, insn, set())
        step(m, insn, env, unknown_result)
    return d, m


def unknown_result(insn: Insn, m: Machine) -> Val:
    """An instruction's result the loop walks do not track (a call's r0)."""
    return UNKNOWN

"""Abstract register values and machine states (registers + stack slots)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Final, NamedTuple

from bpflint.analysis import scalar as sc
from bpflint.analysis.scalar import Scalar


class Kind(IntEnum):
    UNINIT = 0
    SCALAR = 1
    CTX = 2
    STACK = 3  # this frame's stack; s is the offset from r10
    PKT = 4
    PKT_END = 5
    PKT_META = 6
    MAP_VALUE = 7  # ref: map name
    MAP_PTR = 8  # ref: map name
    FUNC = 9  # ref: FuncKey of a callback, or a frozenset of them (one of those)
    MEM = 10  # any other memory (ringbuf record, caller's stack, BTF object, ...);
    # ref: CALLER_STACK for a caller's stack
    ITER_ELEM = 11  # result of bpf_iter_num_next; ref: the iterator's stack offset
    ITER = 12  # an open-coded iterator's state on the stack; s: elements left


CALLER_STACK: Final = "caller stack"  # the ref of a MEM pointer into a calling frame's stack
# The ref of a STACK pointer that may point elsewhere instead (the join of a stack
# pointer with another pointer; a spilled stack pointer a callee may have replaced):
# its offset is unknown, so a store through it forgets the whole frame.
STACK_OR_OTHER: Final = "stack or other memory"
# What a callee writes of the frames it gets pointers into: byte ranges [lo, hi)
# relative to such a pointer (any one of them: a callee's summary does not tell
# them apart), or None for anywhere in the frame (cost/engine.py computes them).
WriteSet = tuple[tuple[int, int], ...]

POINTER_KINDS: Final = frozenset({
    Kind.CTX, Kind.STACK, Kind.PKT, Kind.PKT_END, Kind.PKT_META, Kind.MAP_VALUE, Kind.MAP_PTR,
    Kind.FUNC, Kind.MEM, Kind.ITER_ELEM})


class Val(NamedTuple):  # a NamedTuple for speed, as Scalar
    kind: Kind
    s: Scalar  # the value of a scalar, or a pointer's offset
    ref: Any = None  # a map name, a FuncKey, CALLER_STACK or an iterator's offset
    maybe_null: bool = False
    # ITER: (lowest start, highest end) of the range the iterator walks
    extra: tuple[int, int] | None = None
    # A scalar's link (0: none), as the verifier's reg->id: every register and
    # 8-byte stack slot of one state with the same link id holds the same unknown
    # base plus its own delta, so a branch that narrows one narrows them all.
    # Packed as (id << 64) | (delta mod 2^64), one int: compared and hashed in C.
    link: int = 0

    def __repr__(self) -> str:
        if self.kind == Kind.SCALAR:
            if self.link:
                return f"{self.s!r}~{self.link >> 64}+{self.link & sc.U64}"
            return repr(self.s)
        null = "?" if self.maybe_null else ""
        return f"{self.kind.name.lower()}{null}({self.ref or ''}{self.s!r})"


UNINIT: Final = Val(Kind.UNINIT, sc.UNKNOWN)
UNKNOWN: Final = Val(Kind.SCALAR, sc.UNKNOWN)
ZERO: Final = Val(Kind.SCALAR, sc.const_scalar(0))


# Scalar values are the most built Vals: built as tuples directly, without the
# NamedTuple constructor's Python-level call and an enum member lookup each time
# (and, compiled, the class by a Final name: a C static, where its own name is a
# dict lookup).
_new_tuple: Final = tuple.__new__
_SCALAR: Final = Kind.SCALAR
_VAL: Final = Val
_SCALAR_T: Final = Scalar


def scalar(s: Scalar) -> Val:
    return _new_tuple(_VAL, (_SCALAR, s, None, False, None, 0))


def const(v: int) -> Val:
    # every immediate operand is one: the first ones met are kept, as Scalar.const's
    got = CONST_VALS.get(v)
    if got is None:
        got = _new_tuple(_VAL, (_SCALAR, sc.const_scalar(v), None, False, None, 0))
        if len(CONST_VALS) < _CONST_VALS_KEPT:
            CONST_VALS[v] = got
    return got


# values are immutable: one per constant serves all (read directly where an immediate
# is met on every instruction walked, without the call)
CONST_VALS: Final[dict[int, Val]] = {}
_CONST_VALS_KEPT: Final = 1 << 16


# -- links (the verifier's scalar ids) ---------------------------------------
# A state's links must hold in every execution the state stands for: all holders
# of one id differ from one base value by their deltas. A link is made only where
# that is certain (a copy; a constant added to a linked value), dropped by every
# other write (a new Val carries none), and kept by a join only where both sides
# carry the same one, so any id may be reused: whoever makes a new link first
# takes that id away from its old holders (Machine.new_link).

# A link id with one of these bits set marks a holder of a function of base + delta
# (clang's zero and sign extensions: r2 = r1; r2 <<= 32; r2 >>= 32 (or s>>= 32) of a
# 64-bit r1, w2 = w1): zext32(base + delta), sext32(base + delta), or (base + delta)
# << 32 between the two shifts. A branch on an extended holder bounds the other
# holders' low half; a shifted one says nothing and learns nothing.
LINK_ZEXT32: Final = 1 << 48  # above every id (ids are instruction indexes + 1)
LINK_SEXT32: Final = 1 << 49
LINK_SHL32: Final = 1 << 50
LINK_ID_MASK: Final = LINK_ZEXT32 - 1
LINK_FLAGS: Final = LINK_ZEXT32 | LINK_SEXT32 | LINK_SHL32


def link_as(link: int, flag: int) -> int:
    """The same id and delta as ``link``, held as ``flag`` (LINK_ZEXT32, ...)."""
    return link & ~(LINK_FLAGS << 64) | flag << 64


def link_of(link_id: int, delta: int) -> int:
    return (link_id << 64) | (delta & sc.U64)


def linked(s: Scalar, link: int) -> Val:
    """A scalar with a link; a known value needs none (and keeps ``== const(v)``)."""
    if not link or s.umin == s.umax:
        return _new_tuple(_VAL, (_SCALAR, s, None, False, None, 0))
    return _new_tuple(_VAL, (_SCALAR, s, None, False, None, link))


def unlinked(v: Val) -> Val:
    return v if not v.link else _new_tuple(_VAL, (_SCALAR, v.s, None, False, None, 0))


def unknown_bits(nbytes: int) -> Val:
    got = _UNKNOWN_BITS.get(nbytes)
    if got is None:
        got = UNKNOWN if nbytes >= 8 else Val(Kind.SCALAR,
                                               Scalar.urange(0, (1 << (8 * nbytes)) - 1))
        _UNKNOWN_BITS[nbytes] = got
    return got


_UNKNOWN_BITS: Final[dict[int, Val]] = {}  # values are immutable: one per width serves all


# A function pointer that may be one of several functions (clang loads a callback's
# address before a branch and calls after the join, or merges two calls into one):
# kept as the set of candidates up to this many, every one of which pricing prices.
FUNC_CANDIDATES_KEPT: Final = 8


def func_keys(v: Val) -> tuple[Any, ...]:
    """The functions a FUNC value may point to, sorted (empty: none known)."""
    if v.kind != Kind.FUNC:
        return ()
    if isinstance(v.ref, frozenset):
        return tuple(sorted(v.ref))
    return (v.ref,) if isinstance(v.ref, tuple) else ()


def _func_set(ref: Any) -> frozenset[Any]:
    return ref if isinstance(ref, frozenset) else frozenset((ref,))


def join_val(a: Val, b: Val) -> Val:
    if a is b or a == b:
        return a
    if a.kind == b.kind == Kind.FUNC and a.ref != b.ref:
        keys = _func_set(a.ref) | _func_set(b.ref)
        if len(keys) <= FUNC_CANDIDATES_KEPT:
            return Val(Kind.FUNC, sc.join(a.s, b.s), keys, a.maybe_null or b.maybe_null)
        return UNKNOWN
    if a.kind == b.kind and a.ref == b.ref:
        extra = a.extra
        if a.extra != b.extra and a.extra and b.extra:
            extra = (min(a.extra[0], b.extra[0]), max(a.extra[1], b.extra[1]))
        # a link both sides have holds on either path; any other does not
        return _new_tuple(_VAL, (a.kind, sc.join(a.s, b.s), a.ref, a.maybe_null or b.maybe_null,
                                extra, a.link if a.link == b.link else 0))
    if a.kind == b.kind == Kind.ITER:  # an end exact on one path only: not exact
        return join_val(Val(Kind.ITER, a.s, None, a.maybe_null, a.extra, a.link),
                        Val(Kind.ITER, b.s, None, b.maybe_null, b.extra, b.link))
    if a.kind == b.kind == Kind.MEM:  # memory of two origins: still memory
        return Val(Kind.MEM, sc.join(a.s, b.s), None, a.maybe_null or b.maybe_null)
    # A stack pointer met with another pointer: still one a store may write the
    # frame through (the verifier follows each path's own pointer).
    if (a.kind == Kind.STACK or b.kind == Kind.STACK) and a.kind in POINTER_KINDS \
            and b.kind in POINTER_KINDS:
        return Val(Kind.STACK, sc.UNKNOWN, STACK_OR_OTHER, a.maybe_null or b.maybe_null)
    # NULL joined with a pointer is a maybe-NULL pointer.
    if a.kind in POINTER_KINDS and b == ZERO:
        return Val(a.kind, a.s, a.ref, True, a.extra)
    if b.kind in POINTER_KINDS and a == ZERO:
        return Val(b.kind, b.s, b.ref, True, b.extra)
    if a.kind == Kind.UNINIT or b.kind == Kind.UNINIT:
        return UNINIT
    return UNKNOWN


def widen_val(old: Val, new: Val, thresholds: tuple[int, ...]) -> Val:
    j = join_val(old, new)
    if j == old:
        return old
    if j.kind == old.kind and j.ref == old.ref:
        return Val(j.kind, sc.widen(old.s, j.s, thresholds), j.ref, j.maybe_null, j.extra,
                   j.link)
    return j


def leq_val(a: Val, b: Val) -> bool:
    if a == b:
        return True
    if b.kind == Kind.UNINIT:
        return True
    if b == UNKNOWN and a.kind != Kind.UNINIT:
        # as join_val has it: a pointer met with a scalar is an unknown scalar
        return True
    if a == ZERO and b.kind in POINTER_KINDS and b.maybe_null:
        return True  # NULL is one value of a maybe-NULL pointer
    if b.kind == Kind.STACK and b.ref == STACK_OR_OTHER and a.kind in POINTER_KINDS:
        return b.maybe_null or not a.maybe_null  # (join_val makes it so)
    # MEM of no particular origin holds MEM of any (join_val makes it so) (and an
    # iterator whose end is not known, one whose end is); a set of candidate
    # functions holds each of its subsets
    same_ref = a.ref == b.ref or (a.kind in (Kind.MEM, Kind.ITER) and b.ref is None) or (
        a.kind == Kind.FUNC and b.kind == Kind.FUNC and _func_set(a.ref) <= _func_set(b.ref))
    # a link b has must be a's too (b's states are those where it holds)
    return (a.kind == b.kind and same_ref and (b.maybe_null or not a.maybe_null)
            and (not b.link or a.link == b.link) and sc.leq(a.s, b.s))


# A stack slot: (offset from r10, size in bytes) -> value.
Stack = dict[int, tuple[int, Val]]
# A state's stack: (offset, size, value) slots sorted by offset.
Slots = tuple[tuple[int, int, Val], ...]
# The same, its slots left as objects. Compiled (mypyc), a typed (int, int, Val) is
# unpacked into a C struct when read and built again when stored: a join or an
# order test that walks a stack through AnySlots compares and keeps its slots as
# they are (identical ones by identity), with no copy of each.
AnySlots = tuple[Any, ...]


class State(NamedTuple):  # a NamedTuple for speed, as Scalar
    regs: tuple[Val, ...]  # r0 .. r10
    stack: Slots  # sorted (offset, size, value)

    def stack_dict(self) -> Stack:
        return {off: (size, val) for off, size, val in self.stack}


_STATE: Final = State


def new_state(regs: tuple[Val, ...], stack: Slots) -> State:
    """State(regs, stack), without the NamedTuple constructor's Python-level call."""
    return _new_tuple(_STATE, (regs, stack))


def freeze_stack(stack: Stack) -> Slots:
    # sorted by offset alone (offsets are unique): no comparison reaches a Val;
    # the items as objects (AnySlots' reason)
    items: list[Any] = sorted(stack.items())
    return tuple([(item[0], item[1][0], item[1][1]) for item in items])


def _join_slots(a: AnySlots, b: AnySlots) -> AnySlots:
    """Join two stacks: the slots of the same offset and size in both (others are
    forgotten). Slots that are the same in both are kept as they are."""
    na, nb = len(a), len(b)
    if na == nb:
        out: list[Any] | None = None
        for i in range(na):
            x = a[i]
            y = b[i]
            if x is y or x == y:
                continue
            if x[0] != y[0] or x[1] != y[1]:
                break  # not the same slots: the general walk below
            if out is None:
                out = list(a)
            out[i] = (x[0], x[1], join_val(x[2], y[2]))
        else:
            return a if out is None else tuple(out)
    # Both sorted by offset (unique in each): walk them side by side.
    slots: list[Any] = []
    j = 0
    for x in a:
        off = x[0]
        while j < nb and b[j][0] < off:
            j += 1
        if j == nb:
            break
        y = b[j]
        if y[0] == off and y[1] == x[1]:
            slots.append(x if x is y or x == y else (off, x[1], join_val(x[2], y[2])))
    return tuple(slots)


def join_state(a: State, b: State) -> State:
    if a is b:
        return a
    # Tuple comparisons run in C and stop at shared (identical) values: most joins
    # meet states that differ in a register or two, and only those are joined.
    ar, br = a.regs, b.regs
    regs = ar
    if ar != br:
        joined = list(ar)
        for r in range(len(ar)):
            x = ar[r]
            y = br[r]
            if x is not y:
                joined[r] = join_val(x, y)
        regs = tuple(joined)
    sa: AnySlots = a.stack
    sb: AnySlots = b.stack
    stack = sa if sa == sb else _join_slots(sa, sb)
    # Hand back ``a`` itself when nothing grew: identity is what the fast paths test.
    if regs == ar and stack == sa:
        return a
    return _new_tuple(_STATE, (regs, stack))


def join_states(states: list[State]) -> State:
    """The left fold of join_state over ``states`` (one or more), register by register
    and slot by slot, making one State at most where the fold makes one per step:
    the same value, and ``states[0]`` itself where nothing grew (as join_state)."""
    count = len(states)
    if count <= 2:  # one step of the fold: join_state's own, in C where it can
        return states[0] if count == 1 else join_state(states[0], states[1])
    first = states[0]
    regs = list(first.regs)
    stack: AnySlots = first.stack
    n = len(regs)
    for r in range(n):
        x = regs[r]
        for k in range(1, count):
            if states[k].regs[r] is not x:
                regs[r] = _join_column([s.regs[r] for s in states])
                break
    # Slot by slot where every stack holds the same slots (as a rule), as
    # _join_slots' first walk does; else stack by stack.
    size = len(stack)
    differs: list[bool] | None = None
    same_slots = True
    for k in range(1, count):
        other: AnySlots = states[k].stack
        if other is stack or other == stack:  # (compared in C, stopping at shared slots)
            continue
        if len(other) != size:
            same_slots = False
            break
        for i in range(size):
            x = stack[i]
            y = other[i]
            if y is x:
                continue
            if y[0] != x[0] or y[1] != x[1]:
                same_slots = False
                break
            if y != x:
                if differs is None:
                    differs = [False] * size
                differs[i] = True
        if not same_slots:
            break
    if not same_slots:
        for k in range(1, count):
            other_stack: AnySlots = states[k].stack
            if other_stack is not stack and other_stack != stack:
                stack = _join_slots(stack, other_stack)
    elif differs is not None:
        slots = list(stack)
        for i in range(size):
            if differs[i]:
                x = stack[i]
                slots[i] = (x[0], x[1], _join_column([s.stack[i][2] for s in states]))
        stack = tuple(slots)
    joined = tuple(regs)
    if joined == first.regs and stack == first.stack:
        return first
    return _new_tuple(_STATE, (joined, stack))


def _join_column(vals: list[Val]) -> Val:
    """The left fold of join_val over ``vals``. While the values are of one kind and
    ref (as a rule), the fold's arithmetic runs on plain ints and makes one Val at
    the end, not one (and a Scalar) per step."""
    first = vals[0]
    kind, ref = first.kind, first.ref
    s0 = first.s
    umin, umax, smin, smax, tval, tmask = s0
    maybe_null, extra, link = first.maybe_null, first.extra, first.link
    grew = False  # the scalar did
    count = len(vals)
    for k in range(1, count):
        v = vals[k]
        if v is first:
            continue  # (what the fold holds already holds it)
        if v.kind != kind or v.ref != ref:
            # another kind of value: the rest of the fold join_val's way
            acc = _column_val(first, grew, kind, umin, umax, smin, smax, tval, tmask, ref,
                              maybe_null, extra, link)
            for j in range(k, count):
                acc = join_val(acc, vals[j])
            return acc
        # join_val's arithmetic for one kind and ref (idempotent on an equal value)
        if v.link != link:
            link = 0
        if v.maybe_null:
            maybe_null = True
        more = v.extra
        if extra != more and extra and more:
            extra = (min(extra[0], more[0]), max(extra[1], more[1]))
        b = v.s
        if b.umin == umin and b.umax == umax and b.smin == smin and b.smax == smax \
                and b.tval == tval and b.tmask == tmask:
            continue  # (sc.join of equal scalars: the first)
        tv = tval & b.tval
        tm = tmask | b.tmask | (tval ^ b.tval)
        if b.umin < umin:
            umin = b.umin
        if b.umax > umax:
            umax = b.umax
        if b.smin < smin:
            smin = b.smin
        if b.smax > smax:
            smax = b.smax
        tval, tmask = tv & ~tm & sc.U64, tm
        grew = True
    return _column_val(first, grew, kind, umin, umax, smin, smax, tval, tmask, ref,
                       maybe_null, extra, link)


def _column_val(first: Val, grew: bool, kind: Kind, umin: int, umax: int, smin: int,
                smax: int, tval: int, tmask: int, ref: Any, maybe_null: bool,
                extra: tuple[int, int] | None, link: int) -> Val:
    """_join_column's fold so far as a Val: ``first`` itself where nothing changed."""
    if not grew and maybe_null == first.maybe_null and extra == first.extra \
            and link == first.link:
        return first
    s = _new_tuple(_SCALAR_T, (umin, umax, smin, smax, tval, tmask)) if grew else first.s
    return _new_tuple(_VAL, (kind, s, ref, maybe_null, extra, link))


def widen_state(old: State, new: State, thresholds: tuple[int, ...]) -> State:
    regs = tuple(widen_val(x, y, thresholds) for x, y in zip(old.regs, new.regs, strict=True))
    ns = new.stack_dict()
    stack = []
    for off, size, val in old.stack:
        other = ns.get(off)
        if other is not None and other[0] == size:
            stack.append((off, size, widen_val(val, other[1], thresholds)))
    return State(regs, tuple(stack))


def leq_state(a: State, b: State) -> bool:
    if a is b:
        return True
    ar, br = a.regs, b.regs
    if ar != br:
        for r in range(len(ar)):
            x = ar[r]
            y = br[r]
            if x is not y and not leq_val(x, y):
                return False
    sa: AnySlots = a.stack
    sb: AnySlots = b.stack
    if sa == sb:
        return True
    # every slot of b's must be a's too, with a value below it; both sorted by offset
    na = len(sa)
    i = 0
    for y in sb:
        off = y[0]
        while i < na and sa[i][0] < off:
            i += 1
        if i == na:
            return False
        x = sa[i]
        if x is not y and (x[0] != off or x[1] != y[1] or not leq_val(x[2], y[2])):
            return False
        i += 1
    return True

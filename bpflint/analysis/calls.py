"""What helper and kfunc calls do to the abstract state (return values, clobbers)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bpflint.analysis import scalar as sc
from bpflint.analysis.scalar import Scalar
from bpflint.analysis.state import (
    STACK_OR_OTHER,
    UNINIT,
    UNKNOWN,
    ZERO,
    Kind,
    Val,
    WriteSet,
    scalar,
)
from bpflint.analysis.transfer import Machine
from bpflint.isa.helper_ids import HELPER_NAMES
from bpflint.isa.insn import Insn
from bpflint.obj.model import MapDef

# Helper ids the analysis treats specially.
MAP_LOOKUP_ELEM = 1
TAIL_CALL = 12
FOR_EACH_MAP_ELEM = 164
TIMER_SET_CALLBACK = 170
FIND_VMA = 180
LOOP = 181
USER_RINGBUF_DRAIN = 209

# helper id -> index (1-based register) of the callback argument
CALLBACK_ARG = {FOR_EACH_MAP_ELEM: 2, TIMER_SET_CALLBACK: 2, FIND_VMA: 3, LOOP: 2,
                USER_RINGBUF_DRAIN: 2}
# Helpers that run their callback before they return: id -> register of the ctx
# pointer the callback gets. A timer's callback runs later, on its own, and gets no
# pointer of its caller's: nothing of the caller's state changes under it.
SYNC_CALLBACK_CTX = {FOR_EACH_MAP_ELEM: 3, FIND_VMA: 4, LOOP: 3, USER_RINGBUF_DRAIN: 3}

# Helpers that return a pointer to a map value or NULL: id -> register with the map
_MAP_VALUE_OR_NULL = {MAP_LOOKUP_ELEM: 1, 156: 1, 195: 1}  # + sk/inode/task storage get
# Helpers returning other memory or NULL (ringbuf reserve, storage gets, ...)
_MEM_OR_NULL = {131, 107, 156, 158, 195, 210, 153}
# Helpers that only read through pointer arguments, never write the caller's stack.
# (Callback helpers are not: their callbacks write what ``ctx`` reaches.)
_READ_ONLY = frozenset({1, 2, 3, 6, 12, 25, 28, 87, 130, 170, 177})
# Helpers writing through a pointer argument: id -> (pointer register, size register)
_WRITES = {4: (1, 2), 112: (1, 2), 113: (1, 2), 114: (1, 2), 115: (1, 2), 16: (1, 2),
           26: (3, 4), 67: (2, 3), 189: (3, 4), 190: (3, 4)}

KFUNC_ITER_NEW = "bpf_iter_num_new"
KFUNC_ITER_NEXT = "bpf_iter_num_next"
KFUNC_ITER_DESTROY = "bpf_iter_num_destroy"
ITER_MAX_ELEMENTS = 1 << 23  # BPF_MAX_LOOPS: bpf_iter_num_new refuses longer ranges
# bpf_iter_bits_new(it, words, nr_words) yields the index of every set bit of
# nr_words u64 words; more than BITS_ITER_NR_WORDS_MAX words is -E2BIG (no element)
KFUNC_BITS_NEW = "bpf_iter_bits_new"
KFUNC_BITS_NEXT = "bpf_iter_bits_next"
KFUNC_BITS_DESTROY = "bpf_iter_bits_destroy"
BITS_ITER_NR_WORDS_MAX = 511
ITER_NEXT = frozenset((KFUNC_ITER_NEXT, KFUNC_BITS_NEXT))


def helper_name(helper_id: int) -> str:
    if 0 <= helper_id < len(HELPER_NAMES):
        return "bpf_" + HELPER_NAMES[helper_id]
    return f"helper#{helper_id}"


def _clobber_args(m: Machine) -> None:
    for r in range(1, 6):
        m.regs[r] = UNINIT


_FAR = 1 << 40  # beyond every frame offset


def reaches_frame(args: Iterable[Val]) -> bool:
    """Whether a callee given ``args`` gets a pointer into this frame."""
    return any(v.kind == Kind.STACK for v in args)


def havoc_reachable(m: Machine, args: Iterable[Val], writes: WriteSet | None = None) -> None:
    """A callee (a callback, a subprogram) may write whatever the pointers ``args``
    reach: given a pointer into this frame's stack, any slot of the frame, unless
    ``writes`` (the callee's write set, relative to the pointers it got) says which.
    The verifier checks a callee's access to its caller's stack against the frame's
    bounds, not against the object the pointer was taken from (container_of on
    ``&s.member``, negative offsets: the write set keeps them), and every pointer
    spilled in the frame reaches no other frame. Iterator slots survive (the kernel
    keeps them); other memory (map values, packet, context) the analysis does not
    track.

    A slot that held a pointer into this frame holds it still or no stack pointer
    at all (the kernel refuses to let a callee spill a stack pointer into its
    caller's frame): it becomes a pointer into this frame or elsewhere
    (STACK_OR_OTHER), so that a store through it after the call (``*h.out = v``,
    reloaded) still forgets the frame instead of being lost with an unknown scalar."""
    pointers = [v for v in args if v.kind == Kind.STACK]
    if not pointers:  # (as reaches_frame)
        return
    ranges = _frame_ranges(pointers, writes)
    if not ranges:
        return
    kept = [(off, size) for off, size, val in m.freeze().stack if val.kind == Kind.STACK
            and any(off + size > lo and off < hi for lo, hi in ranges)]
    for lo, hi in ranges:
        m.havoc_stack_from(Scalar.const(lo & sc.U64), hi - lo)
    if kept:
        stack = m.stack
        for off, size in kept:
            stack[off] = (size, _SOMEWHERE_IN_FRAME)


_SOMEWHERE_IN_FRAME = Val(Kind.STACK, sc.UNKNOWN, STACK_OR_OTHER)


def _frame_ranges(pointers: list[Val], writes: WriteSet | None) -> list[tuple[int, int]]:
    """The frame offsets [lo, hi) a callee with write set ``writes`` may write given
    ``pointers`` into the frame: each pointer's offset range plus each range."""
    whole = [(-_FAR, _FAR)]
    if writes is None:
        return whole
    out: list[tuple[int, int]] = []
    for p in pointers:
        if p.ref == STACK_OR_OTHER or p.s.smin < -_FAR or p.s.smax > _FAR:
            return whole
        for lo, hi in writes:
            out.append((p.s.smin + lo, p.s.smax + hi))
    return out


def _havoc_pointed_stack(m: Machine, helper_id: int | None,
                         writes: WriteSet | None = None) -> None:
    if helper_id in _READ_ONLY:
        return
    if helper_id in SYNC_CALLBACK_CTX:
        havoc_reachable(m, (m.regs[SYNC_CALLBACK_CTX[helper_id]],), writes)
        return
    if helper_id in _WRITES:
        preg, sreg = _WRITES[helper_id]
        ptr, size = m.regs[preg], m.regs[sreg]
        if ptr.kind == Kind.STACK:
            nbytes = size.s.umax if size.kind == Kind.SCALAR and size.s.umax < 1 << 20 else None
            m.havoc_stack_from(ptr.s, nbytes)
        return
    for r in range(1, 6):
        if m.regs[r].kind == Kind.STACK:
            m.havoc_stack_from(m.regs[r].s, None)


# Arrays whose lookup fails only for a key past max_entries.
_PLAIN_ARRAYS = frozenset({"array", "percpu_array"})


def _first_array_element(m: Machine, mapdef: MapDef | None, key: Val) -> bool:
    """A lookup of key 0 in a plain array never returns NULL: the kernel refuses an
    array of 0 entries, whatever size a loader sets before load. (Other keys may be
    past a max_entries the loader shrank.) The key is the u32 on this frame's stack."""
    if mapdef is None or mapdef.type_name not in _PLAIN_ARRAYS or key.kind != Kind.STACK \
            or key.ref == STACK_OR_OTHER or not key.s.is_const:
        return False
    held = m._stack_load(key.s, 4)
    return held.kind == Kind.SCALAR and held.s.is_const and held.s.umin == 0


def helper_call(m: Machine, insn: Insn, maps: Mapping[str, MapDef],
                writes: WriteSet | None = None) -> None:
    """``writes``: the write set of the callback a callback helper runs (None: any)."""
    hid = insn.imm
    regs = m.regs
    result: Val = UNKNOWN
    if hid in _MAP_VALUE_OR_NULL and regs[_MAP_VALUE_OR_NULL[hid]].kind == Kind.MAP_PTR:
        outer = maps.get(regs[1].ref) if isinstance(regs[1].ref, str) else None
        if hid == MAP_LOOKUP_ELEM and outer is not None and outer.inner:
            # a map-in-map holds maps: the inner map, shaped like its template
            result = Val(Kind.MAP_PTR, Scalar.const(0), outer.inner, True)
        else:
            null = not (hid == MAP_LOOKUP_ELEM and _first_array_element(m, outer, regs[2]))
            result = Val(Kind.MAP_VALUE, Scalar.const(0), regs[1].ref, null)
    elif hid in _MEM_OR_NULL:
        result = Val(Kind.MEM, Scalar.const(0), None, True)
    elif hid == 7:  # get_prandom_u32
        result = scalar(sc.UNKNOWN32)
    _havoc_pointed_stack(m, hid, writes)
    regs[0] = result
    _clobber_args(m)


def kfunc_call(m: Machine, insn: Insn) -> None:
    name = insn.reloc.symbol if insn.reloc else ""
    regs = m.regs
    if name == KFUNC_ITER_NEW and regs[1].kind == Kind.STACK and regs[1].s.is_const:
        start, end = regs[2], regs[3]
        if start.kind == Kind.SCALAR and end.kind == Kind.SCALAR:
            lo_s, hi_s = sc.s32_range(start.s)
            lo_e, hi_e = sc.s32_range(end.s)
            # the kernel leaves a range of more than BPF_MAX_LOOPS elements empty (E2BIG)
            most = max(0, hi_e - lo_s)
            least = max(0, lo_e - hi_s) if most <= ITER_MAX_ELEMENTS else 0
            if lo_e - hi_s > ITER_MAX_ELEMENTS:  # every possible range is too long
                least = most = 0
            left = Scalar.urange(least, min(most, ITER_MAX_ELEMENTS))
            # ref: the end where it is exact (the element then is end - left)
            it = Val(Kind.ITER, left, hi_e if lo_e == hi_e else None, False, (lo_s, hi_e))
        else:
            it = Val(Kind.ITER, Scalar.urange(0, ITER_MAX_ELEMENTS), None, False,
                     (-(1 << 31), 1 << 31))
        _new_iterator(m, 8, it)  # struct bpf_iter_num
    elif name == KFUNC_BITS_NEW and regs[1].kind == Kind.STACK and regs[1].s.is_const:
        words = regs[3].s if regs[3].kind == Kind.SCALAR else sc.UNKNOWN
        words = sc.low32(words)  # nr_words is a u32
        most = min(words.umax, BITS_ITER_NR_WORDS_MAX) * 64
        null = regs[2].kind == Kind.SCALAR and regs[2].s.is_const and regs[2].s.umin == 0
        if words.umin > BITS_ITER_NR_WORDS_MAX or null:  # -E2BIG, -EINVAL
            most = 0
        # as many elements as set bits: none is certain
        it = Val(Kind.ITER, Scalar.urange(0, most), None, False, (0, max(most, 1)))
        _new_iterator(m, 16, it)  # struct bpf_iter_bits
    elif name in ITER_NEXT and regs[1].kind == Kind.STACK and regs[1].s.is_const:
        slot = sc.to_s64(regs[1].s.umin)
        held = m.slot(slot)
        if held is not None and held[1].kind == Kind.ITER:
            it = held[1]
            elem = _num_element(it) if name == KFUNC_ITER_NEXT else it.extra
            if it.s.umax == 0:
                regs[0] = ZERO
            elif it.s.umin == 0:  # maybe exhausted: consumed on the non-NULL branch
                regs[0] = Val(Kind.ITER_ELEM, Scalar.const(0), slot, True, elem)
            else:  # certainly an element: consume it now
                left = Scalar.urange(it.s.umin - 1, it.s.umax - 1)
                m.stack[slot] = (held[0], Val(Kind.ITER, left, it.ref, False, it.extra))
                regs[0] = Val(Kind.ITER_ELEM, Scalar.const(0), slot, False, elem)
        else:
            regs[0] = Val(Kind.MEM, Scalar.const(0), None, True)
    elif name in (KFUNC_ITER_DESTROY, KFUNC_BITS_DESTROY):
        regs[0] = UNKNOWN
    else:
        _havoc_pointed_stack(m, None)
        regs[0] = UNKNOWN
    _clobber_args(m)


def _num_element(it: Val) -> tuple[int, int] | None:
    """[lo, hi) of the element bpf_iter_num_next hands out next: the kernel counts
    up to the end, so with ``left`` elements to go (this one included) it is
    end - left: at most the highest end less the fewest left, and where the end is
    exact (the iterator's ref), at least the end less the most left. A bpf_for
    body then sees its round's number where the rounds are walked one by one."""
    if it.extra is None:
        return None
    lo, hi = it.extra
    hi = min(hi, hi - max(it.s.umin, 1) + 1)
    if isinstance(it.ref, int):
        lo = max(lo, it.ref - it.s.umax)
    return (lo, hi) if lo < hi else it.extra


def _new_iterator(m: Machine, nbytes: int, it: Val) -> None:
    """A ``*_new`` kfunc's effect: the iterator struct of ``nbytes`` at r1 (a constant
    stack slot) holds ``it``, whatever the slots it covers held before."""
    slot = sc.to_s64(m.regs[1].s.umin)
    m.stack = {k: v for k, v in m.stack.items() if k + v[0] <= slot or k >= slot + nbytes}
    m.stack[slot] = (8, it)
    m.regs[0] = scalar(sc.UNKNOWN32)


def subprog_call(m: Machine, result: Val, writes: WriteSet | None = None) -> None:
    """After a bpf-to-bpf call: r0 is the callee's result, r1-r5 are dead, and the
    callee may have written the caller's stack through any pointer it was given
    (where its write set ``writes`` says; None: anywhere in the frame)."""
    havoc_reachable(m, m.regs[1:6], writes)
    m.regs[0] = result
    _clobber_args(m)

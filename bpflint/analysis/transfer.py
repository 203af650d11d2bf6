"""Abstract semantics of single instructions (the verifier's view, simplified).

``Machine`` is the mutable state while one basic block is walked; blocks hand
frozen :class:`State` objects to each other.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from bpflint.analysis import scalar as sc
from bpflint.analysis.alu import (
    OP_ADD,
    OP_ARSH,
    OP_END,
    OP_LSH,
    OP_MOV,
    OP_RSH,
    OP_SUB,
    alu_scalar,
    bswap,
    copies,
)
from bpflint.analysis.map_values import kconfig_pointer, read_map_value
from bpflint.analysis.scalar import Scalar
from bpflint.analysis.state import (
    CALLER_STACK,
    CONST_VALS,
    LINK_FLAGS,
    LINK_ID_MASK,
    LINK_SEXT32,
    LINK_SHL32,
    LINK_ZEXT32,
    STACK_OR_OTHER,
    UNINIT,
    UNKNOWN,
    AnySlots,
    Kind,
    State,
    Val,
    WriteSet,
    const,
    freeze_stack,
    link_as,
    link_of,
    linked,
    new_state,
    scalar,
    unknown_bits,
)
from bpflint.isa.insn import Insn
from bpflint.isa.opcodes import CLS_ALU64, CLS_STX, MODE_ATOMIC, MODE_MEMSX, Cls
from bpflint.obj.model import KCONFIG_MAP, MapDef

# Context fields that hold packet pointers: prog type -> {offset: kind}
_XDP_CTX: Final = {0: Kind.PKT, 4: Kind.PKT_END, 8: Kind.PKT_META}
_SKB_CTX: Final = {76: Kind.PKT, 80: Kind.PKT_END, 140: Kind.PKT_META}
CTX_POINTERS: Final = {
    "xdp": _XDP_CTX,
    "sched_cls": _SKB_CTX,
    "sched_act": _SKB_CTX,
    "cgroup_skb": _SKB_CTX,
    "sk_skb": _SKB_CTX,
    "lwt_in": _SKB_CTX,
    "lwt_out": _SKB_CTX,
    "lwt_xmit": _SKB_CTX,
    "lwt_seg6local": _SKB_CTX,
    "flow_dissector": _SKB_CTX,
}

@dataclass(frozen=True)
class Env:
    """What the abstract semantics needs to know about the program and object."""

    prog_type: str
    maps: dict[str, MapDef]
    # loader-set variables read so far (name -> the loads reading it, by id(): an
    # instruction's own hash walks its source line), filled as blocks are walked and
    # shared by every function of one program's analysis
    loader_reads: dict[str, dict[int, Insn]] | None = None
    # The write set (state.WriteSet) of what a bpf-to-bpf call or a callback
    # helper's callback may write of this frame, from the call and the registers
    # before it; None (or no hook): anywhere in the frame a pointer reaches.
    callee_writes: Callable[[Insn, tuple[Val, ...]], WriteSet | None] | None = None


class Machine:
    # The stack stays in its frozen form (a sorted tuple) until something writes it:
    # most blocks never do, and re-sorting it on every freeze was a tenth of the
    # analysis time on large programs.
    __slots__ = ("regs", "_stack", "_frozen", "shifted", "_origin")

    def __init__(self, state: State) -> None:
        self._origin = state  # what freeze() hands back when nothing changed
        self.regs = list(state.regs)
        self._frozen: tuple[tuple[int, int, Val], ...] | None = state.stack
        self._stack: dict[int, tuple[int, Val]] | None = None
        # After r <<= 32 of a linked u32: (r, the pc right after, r before the
        # shift). r >>= 32 at that very pc gives r back, link and all (clang's
        # zero extension r1 = r2; r1 <<= 32; r1 >>= 32). By pc, not by identity:
        # compiled (mypyc), a Val is no object with an identity of its own.
        self.shifted: tuple[int, int, Val] | None = None

    @property
    def stack(self) -> dict[int, tuple[int, Val]]:
        """The stack slots, to modify (reading one: ``slot``)."""
        if self._stack is None:
            frozen: AnySlots = self._frozen or ()  # slots as objects (AnySlots' reason)
            self._stack = {slot[0]: (slot[1], slot[2]) for slot in frozen}
        self._frozen = None
        return self._stack

    @stack.setter
    def stack(self, slots: dict[int, tuple[int, Val]]) -> None:
        self._stack, self._frozen = slots, None

    def slot(self, off: int) -> tuple[int, Val] | None:
        if self._stack is None:
            # found in the sorted frozen form: (off,) sorts just before (off, size, val)
            frozen = self._frozen or ()
            i = bisect.bisect_left(frozen, (off,))
            if i < len(frozen) and frozen[i][0] == off:
                return frozen[i][1], frozen[i][2]
            return None
        return self._stack.get(off)

    def freeze(self) -> State:
        regs = tuple(self.regs)
        frozen = self._frozen
        if frozen is not None:
            # the state walked from itself when nothing changed: joins and order
            # tests with it (or with what it joins into) stop at identity
            origin = self._origin
            if frozen is origin.stack and regs == origin.regs:
                return origin
            return new_state(regs, frozen)
        return new_state(regs, freeze_stack(self.stack))

    # -- stack ------------------------------------------------------------
    def _stack_store(self, off: Scalar, size: int, val: Val) -> None:
        if off.umin != off.umax:
            # a variable slot (arr[i] on the stack): forget what it may overwrite
            lo, hi = off.smin, off.smax + size
            if hi - lo > 1 << 16:
                self.stack.clear()
            else:
                self.stack = {k: v for k, v in self.stack.items()
                              if k + v[0] <= lo or k >= hi}
            return
        o = sc.to_s64(off.umin)
        for k in [k for k, (sz, _) in self.stack.items() if k < o + size and o < k + sz]:
            del self.stack[k]
        if size == 8 or val.kind == Kind.SCALAR:
            if val.kind == Kind.SCALAR and size < 8:
                val = scalar(sc.low_bits(val.s, size * 8))
            self.stack[o] = (size, val)

    def _stack_load(self, off: Scalar, size: int) -> Val:
        if off.umin == off.umax:
            slot = self.slot(sc.to_s64(off.umin))
            if slot is not None:
                sz, val = slot
                if sz == size:
                    return val
                if val.kind == Kind.SCALAR and sz > size:
                    return scalar(sc.low_bits(val.s, size * 8))
        return unknown_bits(size)

    # -- links ------------------------------------------------------------
    def new_link(self, reg: int, link_id: int) -> Val:
        """Link register ``reg`` (an unlinked scalar) under ``link_id``, first taking
        that id from whatever holds it (an earlier run of the same instruction)."""
        regs = self.regs
        for r in range(11):
            v = regs[r]
            if (v.link >> 64) & LINK_ID_MASK == link_id:
                regs[r] = scalar(v.s)
        frozen = self._frozen
        if frozen is None or any((val.link >> 64) & LINK_ID_MASK == link_id
                                 for _, _, val in frozen):
            stack = self.stack
            for off, (size, val) in list(stack.items()):
                if (val.link >> 64) & LINK_ID_MASK == link_id:
                    stack[off] = (size, scalar(val.s))
        v = linked(regs[reg].s, link_of(link_id, 0))
        regs[reg] = v
        return v

    def sync_links(self, known: Scalar, link: int, skip: int) -> None:
        """Register ``skip``, with ``link``, was just narrowed to ``known`` by a
        branch: every other holder of the link's id is narrowed by the same bound,
        shifted by the difference of their deltas. EmptyValue if one becomes empty."""
        link_id = (link >> 64) & LINK_ID_MASK
        regs = self.regs
        for r in range(11):
            v = regs[r]
            if r != skip and (v.link >> 64) & LINK_ID_MASK == link_id:
                regs[r] = _narrowed(v, known, link)
        frozen = self._frozen
        if frozen is None or any((val.link >> 64) & LINK_ID_MASK == link_id
                                 for _, _, val in frozen):
            stack = self.stack
            for off, (size, val) in list(stack.items()):
                if (val.link >> 64) & LINK_ID_MASK == link_id:
                    stack[off] = (size, _narrowed(val, known, link))

    def havoc_stack_from(self, off: Scalar, nbytes: int | None) -> None:
        """A callee or helper may write ``nbytes`` (None: unknown) from this offset up.
        Iterator slots survive (the kernel keeps them). The slots that go are found
        before the stack is thawed: a helper writing a buffer that holds no slot
        (pyperf's probe reads, on every call) then leaves the frozen form alone."""
        if off.umin == off.umax:
            lo = sc.to_s64(off.umin)
            hi = lo + nbytes if nbytes is not None else 1 << 62
        else:
            lo, hi = -(1 << 62), 1 << 62
        if self._stack is None:
            frozen = self._frozen or ()
            # slots do not overlap and every one but an iterator's is at most 8 bytes
            i = bisect.bisect_left(frozen, (lo - 7,))
            doomed = []
            for k, size, val in frozen[i:]:
                if k >= hi:
                    break
                if k + size > lo and val.kind != _ITER:
                    doomed.append(k)
        else:
            doomed = [k for k, (size, val) in self._stack.items()
                      if k + size > lo and k < hi and val.kind != _ITER]
        if doomed:
            stack = self.stack
            for k in doomed:
                del stack[k]


def _narrowed(v: Val, known: Scalar, known_link: int) -> Val:
    """``v`` met with what a linked value ``known`` (link ``known_link``) says of
    it: v = known + (v's delta - known's delta), mod 2^64 between plain holders.
    Otherwise what both know is the low half of base + v's delta: low32(known +
    that difference) (the low half of an extension is the value's), which is an
    extended holder's value extended and bounds a plain holder's low half. A
    holder shifted left by 32 takes no part."""
    kflags = (known_link >> 64) & LINK_FLAGS
    vflags = (v.link >> 64) & LINK_FLAGS
    if kflags & LINK_SHL32 or vflags & LINK_SHL32:
        return v
    shift = ((v.link & sc.U64) - (known_link & sc.U64)) & sc.U64
    bound = known if shift == 0 else sc.add(known, sc.const_scalar(shift))
    if not kflags and not vflags:
        met = sc.meet(v.s, bound)
    elif vflags & LINK_ZEXT32:
        met = sc.meet(v.s, sc.low32(bound))
    elif vflags & LINK_SEXT32:
        met = sc.meet(v.s, sc.sext(sc.low32(bound), 32))
    else:
        met = sc.with_low32_in(v.s, sc.low32(bound))
    return v if met == v.s else linked(met, v.link)


# -- ALU ------------------------------------------------------------------------

# For alu(), load() and store(), run for every instruction walked: the kinds they
# test most as module constants (see CLS_* in opcodes.py)
_SCALAR: Final = Kind.SCALAR
_STACK: Final = Kind.STACK
_UNINIT: Final = Kind.UNINIT
_ITER: Final = Kind.ITER
_CLS_JMP32: Final = int(Cls.JMP32)
_CLS_ALU64: Final = CLS_ALU64
_CLS_STX: Final = CLS_STX
_MODE_ATOMIC: Final = MODE_ATOMIC
_MODE_MEMSX: Final = MODE_MEMSX
# the access size's bytes by the opcode's size bits (opcodes.Size: W, H, B, DW)
_SIZE_BYTES: Final[tuple[int, ...]] = (4, 2, 1, 8)


def alu(m: Machine, insn: Insn) -> None:
    opcode = insn.opcode
    op = opcode & 0xF0
    width = 64 if opcode & 0x07 == _CLS_ALU64 else 32
    regs = m.regs
    dst = regs[insn.dst]
    # (an immediate's Val found without a call: one per constant, kept)
    src = regs[insn.src] if opcode & 0x08 else CONST_VALS.get(insn.imm) or const(insn.imm)
    if op == OP_MOV:
        if insn.off == 1:  # addr_space_cast: an arena pointer we do not track
            regs[insn.dst] = UNKNOWN
        elif insn.opcode & 0x08 and src.kind == _SCALAR and copies(insn.off, width, src.s):
            # dst gets src's value as it is: the two are linked (the verifier's
            # assign_scalar_id_before_mov: r1 = r2, w1 = w2 of a u32, a sign
            # extension that extends nothing), a known value needs no link
            if insn.dst != insn.src:
                if not src.link and src.s.umin != src.s.umax:
                    src = m.new_link(insn.src, insn.pc + 1)
                regs[insn.dst] = src
                shifted = m.shifted
                if shifted is not None and shifted[0] == insn.src and shifted[1] == insn.pc \
                        and width == 64:
                    # r1 <<= 32; r2 = r1; r2 >>= 32: the copy is shifted back instead
                    back = shifted[2]
                    if (back.link >> 64) & LINK_ID_MASK == insn.pc + 1:
                        back = scalar(back.s)  # (its id was just taken)
                    m.shifted = (insn.dst, insn.pc + 1, back)
        elif insn.off:  # movsx
            regs[insn.dst] = scalar(sc.sext(src.s, insn.off)) if src.kind == _SCALAR \
                else UNKNOWN
            if width == 32:
                regs[insn.dst] = scalar(sc.trunc32(regs[insn.dst].s))
        elif width == 64:
            regs[insn.dst] = src
        elif src.kind != _SCALAR:
            regs[insn.dst] = unknown_bits(4)
        elif insn.opcode & 0x08 and insn.dst != insn.src and not src.link >> 64 & LINK_FLAGS:
            # w1 = w2 of a wider r2: r1 is zext32(r2), linked as such
            if not src.link:
                src = m.new_link(insn.src, insn.pc + 1)
            regs[insn.dst] = linked(sc.low32(src.s), link_as(src.link, LINK_ZEXT32))
        else:
            regs[insn.dst] = scalar(sc.low32(src.s))
        return
    if op == OP_END:
        if dst.kind != _SCALAR:
            regs[insn.dst] = UNKNOWN
            return
        # to-little-endian on a little-endian target truncates; to-big and bswap swap
        swaps = bool(insn.opcode & 0x08) or width == 64
        regs[insn.dst] = scalar(bswap(dst.s, insn.imm) if swaps
                                else sc.low_bits(dst.s, insn.imm))
        return
    if dst.kind == _SCALAR and src.kind == _SCALAR:
        ds = dst.s
        ss = src.s
        if (op == OP_ADD or op == OP_SUB) and ds.umin == ds.umax and ss.umin == ss.umax \
                and not dst.link:
            # a known counter or offset stepped by a constant: alu_scalar's result,
            # without hashing both operands for its memo
            v = ds.umin + ss.umin if op == OP_ADD else ds.umin - ss.umin
            regs[insn.dst] = scalar(sc.const_scalar(v if width == 64 else v & sc.U32))
            return
        result = alu_scalar(op, dst.s, src.s, width, insn)
        if dst.link and width == 64 and (op == OP_ADD or op == OP_SUB) \
                and src.s.umin == src.s.umax and not dst.link >> 64 & LINK_FLAGS:
            # r1 = r2; r1 += k: still linked, k further from the base (the
            # verifier's BPF_ADD_CONST, which keeps 0 < k < 2^31 only)
            k = src.s.umin if op == OP_ADD else -src.s.umin
            regs[insn.dst] = linked(result, link_of(dst.link >> 64, dst.link + k))
        elif width == 64 and insn.imm == 32 and not insn.opcode & 0x08 and dst.link \
                and op == OP_LSH:
            regs[insn.dst] = linked(result, link_as(dst.link, LINK_SHL32))
            # shifted straight back, a u32 is itself (a plain holder, not an extended one)
            if dst.s.umax <= sc.U32:
                m.shifted = (insn.dst, insn.pc + 1, dst)
        elif op == OP_RSH and m.shifted is not None and m.shifted[0] == insn.dst \
                and m.shifted[1] == insn.pc and width == 64 and insn.imm == 32 \
                and not insn.opcode & 0x08:
            # right after r <<= 32, so nothing wrote r in between: (v << 32) >> 32
            # is v for a u32 v, the value shifted, link and all
            regs[insn.dst] = m.shifted[2]
        elif (op == OP_RSH or op == OP_ARSH) and width == 64 and insn.imm == 32 \
                and not insn.opcode & 0x08 and dst.link >> 64 & LINK_SHL32:
            # ((base + delta) << 32) >> 32: its low half, zero- or sign-extended
            regs[insn.dst] = linked(result, link_as(
                dst.link, LINK_ZEXT32 if op == OP_RSH else LINK_SEXT32))
        else:
            regs[insn.dst] = scalar(result)
        return
    # A STACK_OR_OTHER value may be plain data (a callee's write over a slot that
    # held a stack pointer): anything but the base of pointer arithmetic takes it
    # for an unknown scalar (n &= 15 after fill(&n) keeps its bound).
    if src.ref == STACK_OR_OTHER and not (width == 64 and op == OP_ADD and dst.kind == _SCALAR):
        src = UNKNOWN
    if dst.ref == STACK_OR_OTHER and not (width == 64 and src.kind == _SCALAR
                                          and op in (OP_ADD, OP_SUB)):
        dst = UNKNOWN
    if dst.kind == _SCALAR and src.kind == _SCALAR:
        regs[insn.dst] = scalar(alu_scalar(op, dst.s, src.s, width, insn))
        return
    # pointer arithmetic: only +/- of a scalar keeps a pointer
    if width == 64 and dst.kind not in (_SCALAR, _UNINIT) and src.kind == _SCALAR \
            and op in (OP_ADD, OP_SUB):
        off = sc.add(dst.s, src.s) if op == OP_ADD else sc.sub(dst.s, src.s)
        regs[insn.dst] = Val(dst.kind, off, dst.ref, dst.maybe_null, dst.extra)
        return
    if width == 64 and op == OP_ADD and dst.kind == _SCALAR and \
            src.kind not in (_SCALAR, _UNINIT):
        regs[insn.dst] = Val(src.kind, sc.add(dst.s, src.s), src.ref, src.maybe_null, src.extra)
        return
    regs[insn.dst] = UNKNOWN if width == 64 else unknown_bits(4)


# -- memory ---------------------------------------------------------------------

def load(m: Machine, insn: Insn, env: Env) -> Val:
    size = _SIZE_BYTES[(insn.opcode >> 3) & 3]
    base = m.regs[insn.src]
    off = sc.add(base.s, sc.const_scalar(insn.off))
    val: Val
    if base.kind == _STACK:
        val = m._stack_load(off, size)
    elif base.kind == Kind.CTX and off.umin == off.umax and size == 4:
        kind = CTX_POINTERS.get(env.prog_type, {}).get(off.umin)
        val = Val(kind, sc.const_scalar(0)) if kind is not None else unknown_bits(size)
    elif base.kind == Kind.MAP_VALUE and isinstance(base.ref, str) and base.ref in env.maps:
        val = read_map_value(env.maps[base.ref], off, size, insn, env.loader_reads)
    elif base.kind == Kind.ITER_ELEM and size == 4 and base.extra is not None:
        lo, hi = base.extra
        val = scalar(Scalar.urange(lo, hi - 1)) if 0 <= lo < hi else unknown_bits(4)
    else:
        val = unknown_bits(size)
    if insn.opcode & 0xE0 == _MODE_MEMSX and val.kind == _SCALAR:
        val = scalar(sc.sext(val.s, size * 8))
    return val


def mem_kind(base: Val) -> str:
    """Memory class of an access through ``base``, for instruction costs."""
    if base.kind == Kind.MEM and base.ref == CALLER_STACK:
        return "stack"
    if base.ref == STACK_OR_OTHER:
        return "other"
    return _MEM_KINDS.get(base.kind, "other")


_MEM_KINDS: Final = {_STACK: "stack", Kind.CTX: "ctx", Kind.PKT: "packet",
              Kind.PKT_META: "packet", Kind.MAP_VALUE: "map"}


def store(m: Machine, insn: Insn) -> None:
    base = m.regs[insn.dst]
    size = _SIZE_BYTES[(insn.opcode >> 3) & 3]
    cls = insn.opcode & 0x07
    if cls == _CLS_STX and insn.opcode & 0xE0 == _MODE_ATOMIC:
        _atomic(m, insn, base, size)
        return
    if base.kind != _STACK:
        return
    off = sc.add(base.s, sc.const_scalar(insn.off))
    val = m.regs[insn.src] if cls == _CLS_STX else const(insn.imm)
    m._stack_store(off, size, val)


def _atomic(m: Machine, insn: Insn, base: Val, size: int) -> None:
    imm = insn.imm
    if imm == 0x100:  # load-acquire: dst = *(src + off)
        m.regs[insn.dst] = unknown_bits(size)
        return
    if base.kind == _STACK:
        off = sc.add(base.s, sc.const_scalar(insn.off))
        m._stack_store(off, size, unknown_bits(size))
    if imm == 0xF1:  # cmpxchg writes r0
        m.regs[0] = unknown_bits(size)
    elif imm & 0x01:  # fetch variants and xchg write the source register
        m.regs[insn.src] = unknown_bits(size)


def ld_imm64(m: Machine, insn: Insn, env: Env) -> None:
    reloc = insn.reloc
    if reloc is None:
        if insn.src in (0,):
            m.regs[insn.dst] = const(insn.imm)
        else:
            m.regs[insn.dst] = Val(Kind.MEM, sc.const_scalar(0))
        return
    if reloc.kind == "map":
        m.regs[insn.dst] = Val(Kind.MAP_PTR, sc.const_scalar(0), reloc.map)
    elif reloc.kind == "data":
        m.regs[insn.dst] = Val(Kind.MAP_VALUE, sc.const_scalar(reloc.offset), reloc.map)
    elif reloc.kind == "func_ptr":
        m.regs[insn.dst] = Val(Kind.FUNC, sc.const_scalar(0), reloc.func)
    elif reloc.kind == "extern" and KCONFIG_MAP in env.maps:
        m.regs[insn.dst] = kconfig_pointer(env.maps[KCONFIG_MAP], reloc.symbol)
    else:
        m.regs[insn.dst] = Val(Kind.MEM, sc.const_scalar(0))


def legacy_packet_load(m: Machine, insn: Insn) -> None:
    """LD_ABS / LD_IND: r0 = packet bytes; r1-r5 are clobbered."""
    m.regs[0] = unknown_bits(insn.opcode.size_bytes)
    for r in range(1, 6):
        m.regs[r] = UNINIT

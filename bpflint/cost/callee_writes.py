"""Which bytes of its callers' frames a callee (a subprogram, a callback) may write.

A callee given a pointer into its caller's stack may write any slot of that frame
(the verifier checks its accesses against the frame's bounds, not the object the
pointer was taken from). Forgetting the whole frame after every such call loses the
loop counters a caller keeps on its stack. So the callee is analysed once more, on
its own, from an entry where every pointer into a calling frame is a MEM pointer at
offset 0 (scalars unknown): each store, atomic and helper write through such a
pointer adds its offset range plus width, relative to the pointer (negative
offsets, container_of, stay as they are). Anything the summary cannot follow (a
write through memory of unknown origin or at an unknown offset, a helper writing
an unknown amount, the pointer stored outside the callee's own stack or returned)
makes it None: the whole frame, as before. Calls the callee makes add their own
write sets, translated by the offsets of the frame pointers they get."""

from __future__ import annotations

from collections.abc import Callable

from bpflint.analysis import calls
from bpflint.analysis.fixpoint import Budget, Iterations, analyze_function, step
from bpflint.analysis.scalar import Scalar
from bpflint.analysis.state import (
    CALLER_STACK,
    STACK_OR_OTHER,
    UNINIT,
    UNKNOWN,
    Kind,
    State,
    Val,
    WriteSet,
    func_keys,
    unlinked,
)
from bpflint.analysis.transfer import Env, Machine
from bpflint.cfg.graph import Cfg
from bpflint.cfg.loops import LoopForest
from bpflint.isa.insn import Insn
from bpflint.isa.opcodes import CLS_ST, CLS_STX, MODE_ATOMIC
from bpflint.obj.model import BpfObject, FuncKey

_FAR = 1 << 40  # beyond every frame offset
# a pointer into one of the calling frames, at the summary's reference offset
_FRAME_ARG = Val(Kind.MEM, Scalar.const(0), CALLER_STACK)
_MEM = Val(Kind.MEM, Scalar.const(0))
# memory a write through cannot reach a calling frame
_OTHER_MEMORY = frozenset({Kind.CTX, Kind.PKT, Kind.PKT_META, Kind.MAP_VALUE})
_MEM_SIZE_MAX = 1 << 20

Structure = Callable[[FuncKey], tuple[Cfg, LoopForest, tuple[int, ...]] | None]


def _summary_arg(v: Val) -> Val:
    """An argument as the summary's entry has it: pointers into a frame at offset 0,
    scalars unknown (one summary serves every call of the same kinds)."""
    if v.kind == Kind.STACK:
        return UNKNOWN if v.ref == STACK_OR_OTHER else _FRAME_ARG
    if v.kind == Kind.MEM and v.ref == CALLER_STACK:
        return _FRAME_ARG
    if v.kind == Kind.SCALAR:
        return UNKNOWN
    return unlinked(v)


def _is_frame_ptr(v: Val) -> bool:
    return v.kind == Kind.MEM and v.ref == CALLER_STACK


def _may_hide_frame_ptr(v: Val) -> bool:
    """A value that may be a pointer into a calling frame the summary lost track of."""
    return v.kind == Kind.MEM or (v.kind == Kind.STACK and v.ref == STACK_OR_OTHER) \
        or (v.kind == Kind.SCALAR and not v.s.is_const)


def _shifted(base: Val, ranges: WriteSet) -> WriteSet | None:
    """``ranges`` (relative to a frame pointer) through frame pointer ``base``."""
    lo, hi = base.s.smin, base.s.smax
    if lo < -_FAR or hi > _FAR:
        return None
    return tuple([(lo + a, hi + b) for a, b in ranges])


class CalleeWrites:
    """Write sets of the callees of one object's analysis, memoised by entry."""

    def __init__(self, obj: BpfObject, budget: Budget, structure: Structure,
                 loader_reads: dict[str, dict[int, Insn]]) -> None:
        self.obj = obj
        self.budget = budget
        self.structure = structure
        self.loader_reads = loader_reads
        self.memo: dict[tuple[FuncKey, str, State], WriteSet | None] = {}
        self.pending: set[tuple[FuncKey, str, State]] = set()

    def hook(self, prog_type: str) -> Callable[[Insn, tuple[Val, ...]], WriteSet | None]:
        return lambda insn, regs: self.of_call(insn, regs, prog_type)

    def of_call(self, insn: Insn, regs: tuple[Val, ...], prog_type: str) -> WriteSet | None:
        """The write set of what a bpf-to-bpf call or a callback helper's callback
        may write through the frame pointers it gets (None: anywhere)."""
        if insn.is_pseudo_call:
            key = insn.reloc.func if insn.reloc is not None else None
            if key is None:
                return None
            args = [_summary_arg(v) for v in regs[1:6]]
            keys = (key,)
        else:
            hid = insn.imm
            if hid not in calls.SYNC_CALLBACK_CTX:
                return None
            keys = func_keys(regs[calls.CALLBACK_ARG[hid]])
            if not keys:
                return None
            ctx = _summary_arg(regs[calls.SYNC_CALLBACK_CTX[hid]])
            if hid == calls.LOOP:
                args = [UNKNOWN, ctx]
            elif hid == calls.FOR_EACH_MAP_ELEM:
                if regs[1].kind != Kind.MAP_PTR:
                    return None
                args = [regs[1], _MEM, Val(Kind.MAP_VALUE, Scalar.const(0), regs[1].ref), ctx]
            elif hid == calls.FIND_VMA:
                args = [_MEM, _MEM, ctx]
            else:  # user_ringbuf_drain
                args = [_MEM, ctx]
        entry_regs = [UNINIT] * 11
        for i, v in enumerate(args):
            entry_regs[1 + i] = v
        entry_regs[10] = Val(Kind.STACK, Scalar.const(0))
        entry = State(tuple(entry_regs), ())
        if len(keys) == 1:
            return self.of_function(keys[0], entry, prog_type)
        found: list[tuple[int, int]] = []
        for one in keys:  # a callback that may be one of several: what any writes
            got = self.of_function(one, entry, prog_type)
            if got is None:
                return None
            found.extend(got)
        return tuple(sorted(set(found)))

    def of_function(self, key: FuncKey, entry: State, prog_type: str) -> WriteSet | None:
        memo_key = (key, prog_type, entry)
        if memo_key in self.memo:
            return self.memo[memo_key]
        got = self.obj.functions.get(key)
        structure = self.structure(key) if got is not None else None
        if structure is None or memo_key in self.pending:  # recursion: the kernel refuses
            return None
        cfg, forest, thresholds = structure
        if forest.irreducible:
            return None
        env = Env(prog_type, self.obj.maps, self.loader_reads, self.hook(prog_type))
        self.pending.add(memo_key)
        try:
            flow = analyze_function(cfg, forest, entry, env, _no_subcall, self.budget,
                                    thresholds, Iterations())
            result = self._scan(cfg, flow.block_in, env, prog_type)
        finally:
            self.pending.discard(memo_key)
        self.memo[memo_key] = result
        return result

    def _scan(self, cfg: Cfg, block_in: dict[int, State], env: Env, prog_type: str
              ) -> WriteSet | None:
        """Every write through a frame pointer from the fixpoint's block states (each
        covers every state reaching its block)."""
        out: set[tuple[int, int]] = set()
        for b, state in block_in.items():
            m = Machine(state)
            for insn in cfg.blocks[b].insns:
                got = self._insn(insn, m, prog_type)
                if got is None:
                    return None
                out.update(got)
                if not insn.is_exit and not insn.is_branch:
                    step(m, insn, env, _no_subcall)
        return tuple(sorted(out))

    def _insn(self, insn: Insn, m: Machine, prog_type: str) -> WriteSet | None:
        regs = m.regs
        cls = insn.opcode & 0x07
        if cls == CLS_ST or cls == CLS_STX:
            if cls == CLS_STX and insn.opcode & 0xE0 == MODE_ATOMIC and insn.imm == 0x100:
                return ()  # load-acquire
            base = regs[insn.dst]
            if cls == CLS_STX and _may_hide_frame_ptr(regs[insn.src]) \
                    and regs[insn.src].kind != Kind.SCALAR \
                    and not (base.kind == Kind.STACK and base.ref != STACK_OR_OTHER):
                return None  # a frame pointer stored where the summary cannot follow it
            return _through(base, insn.off, insn.opcode.size_bytes)
        if insn.is_exit:
            return None if _is_frame_ptr(regs[0]) else ()
        if not insn.is_call:
            return ()
        if insn.is_pseudo_call:
            nested = self.of_call(insn, tuple(regs), prog_type)
            return None if nested is None else _via(regs[1:6], nested)
        if insn.is_kfunc_call:
            return _opaque(regs)
        hid = insn.imm
        if hid in calls._READ_ONLY:
            return ()
        if hid in calls.SYNC_CALLBACK_CTX:
            nested = self.of_call(insn, tuple(regs), prog_type)
            return None if nested is None \
                else _via((regs[calls.SYNC_CALLBACK_CTX[hid]],), nested)
        if hid in calls._WRITES:
            preg, sreg = calls._WRITES[hid]
            size = regs[sreg]
            if size.kind != Kind.SCALAR or size.s.umax >= _MEM_SIZE_MAX:
                return None if _may_hide_frame_ptr(regs[preg]) else ()
            return _through(regs[preg], 0, size.s.umax)
        return _opaque(regs)


def _through(base: Val, off: int, nbytes: int) -> WriteSet | None:
    """A write of ``nbytes`` at ``base + off``."""
    if _is_frame_ptr(base):
        return _shifted(base, ((off, off + nbytes),))
    if base.kind in _OTHER_MEMORY or (base.kind == Kind.STACK and base.ref != STACK_OR_OTHER):
        return ()
    return None


def _via(args: tuple[Val, ...] | list[Val], nested: WriteSet) -> WriteSet | None:
    """A callee's write set through the frame pointers among ``args``."""
    out: list[tuple[int, int]] = []
    for v in args:
        if _is_frame_ptr(v):
            got = _shifted(v, nested)
            if got is None:
                return None
            out.extend(got)
    return tuple(out)


def _opaque(regs: list[Val]) -> WriteSet | None:
    """A helper or kfunc bpflint does not model: it may write through any pointer."""
    return None if any(_may_hide_frame_ptr(v) and v.kind != Kind.SCALAR
                       for v in regs[1:6]) else ()


def _no_subcall(insn: Insn, m: Machine) -> Val:
    return UNKNOWN

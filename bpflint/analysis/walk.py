"""Walking blocks: one block's transfer from a state to its successors (run_block),
recording what pricing reads of it (Views), and one iteration of a loop whose body
is a DAG (run_dag). The fixpoint (fixpoint.py) drives them; what it hands on of
them it re-exports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from bpflint.analysis import calls
from bpflint.analysis.jumps import branch_state
from bpflint.analysis.state import (
    State,
    Val,
    join_state,
    join_val,
    leq_state,
    unlinked,
)
from bpflint.analysis.transfer import (
    Env,
    Machine,
    alu,
    ld_imm64,
    legacy_packet_load,
    load,
    mem_kind,
    store,
)
from bpflint.cfg.graph import Block, Cfg
from bpflint.cfg.loops import LoopForest
from bpflint.isa.insn import CONDITIONAL_JUMPS, Insn
from bpflint.isa.opcodes import (
    CLS_ALU,
    CLS_ALU64,
    CLS_LD,
    CLS_LDX,
    CLS_ST,
    CLS_STX,
    MODE_ATOMIC,
)

# The classes run_block and step test on every instruction, as Final names: compiled,
# a C static each, where an imported name is a lookup in this module's dict on every use.
_ALU: Final = CLS_ALU
_ALU64: Final = CLS_ALU64
_LD: Final = CLS_LD
_LDX: Final = CLS_LDX
_ST: Final = CLS_ST
_STX: Final = CLS_STX
_ATOMIC: Final = MODE_ATOMIC
_CONDITIONAL_JUMPS: Final = CONDITIONAL_JUMPS

STATES_KEPT = 200_000  # block states a Views or Iterations cache holds before starting afresh
# One iteration of a loop from a header state: (block_in, edge_out, the joined state
# on its back edges or None when none is feasible), as propagate(collect=header) gives.
Iteration = tuple[dict[int, State], dict[tuple[int, int], State], State | None]


class StepBudgetExceeded(Exception):
    """The analysis used up its step budget (a reported result, not a crash)."""


class Budget:
    """Steps, and CPU seconds of this process: not wall-clock time, so that a result
    does not depend on how loaded the machine is (a CI runner shared with other jobs,
    the other workers of --jobs), only on how fast it is."""

    __slots__ = ("left", "limit", "deadline", "seconds", "_next_clock")

    def __init__(self, steps: int, seconds: float) -> None:
        self.left = steps
        self.limit = steps
        self.seconds = seconds
        self.deadline = time.process_time() + seconds
        self._next_clock = steps - 20_000

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise StepBudgetExceeded(f"step budget of {self.limit} steps exhausted")
        if self.left < self._next_clock:
            self._next_clock = self.left - 20_000
            self.check_clock()

    def check_clock(self) -> None:
        if time.process_time() > self.deadline:
            raise StepBudgetExceeded(f"CPU-time budget of {self.seconds:g} s exhausted")


# A hook to price/resolve bpf-to-bpf calls: (insn, machine before the call) -> r0 value
CallResult = Callable[[Insn, Machine], Val]


def step(m: Machine, insn: Insn, env: Env, subcall: CallResult) -> None:
    """Apply one non-branching instruction to the machine."""
    op = insn.opcode
    cls = op & 0x07
    if cls == _ALU or cls == _ALU64:
        alu(m, insn)
    elif cls == _LDX:
        m.regs[insn.dst] = load(m, insn, env)
    elif cls == _ST or cls == _STX:
        if cls == _STX and op & 0xE0 == _ATOMIC and insn.imm == 0x100:
            m.regs[insn.dst] = load(m, insn, env)  # load-acquire reads like ldx
        else:
            store(m, insn)
    elif cls == _LD:
        if insn.is_ld_imm64:
            ld_imm64(m, insn, env)
        else:
            legacy_packet_load(m, insn)
    elif insn.is_call:
        if insn.is_pseudo_call:
            # A callee is analysed once per entry state: links into the caller's
            # registers would only split its contexts (r1-r5 die at the call), and
            # a link in its result is one of the callee's, not the caller's.
            regs = m.regs
            for r in range(1, 6):
                regs[r] = unlinked(regs[r])
            result = unlinked(subcall(insn, m))
            hook = env.callee_writes
            # (a callee given no pointer into this frame leaves it alone: no summary)
            writes = hook(insn, tuple(regs)) if hook and calls.reaches_frame(regs[1:6]) \
                else None
            calls.subprog_call(m, result, writes)
        elif insn.is_kfunc_call:
            calls.kfunc_call(m, insn)
        else:
            hook = env.callee_writes
            ctx = calls.SYNC_CALLBACK_CTX.get(insn.imm)
            writes = hook(insn, tuple(m.regs)) \
                if hook and ctx is not None and calls.reaches_frame(m.regs[ctx:ctx + 1]) \
                else None
            calls.helper_call(m, insn, env.maps, writes)


# What pricing an instruction reads of the state before it: the kind of memory a load
# or store touches, r0..r5 at a call, nothing (None) for the others.
InsnView = str | tuple[Val, ...] | None
# A block's views, one per instruction, and r0 at its exit (None: it has none).
BlockView = tuple[tuple[InsnView, ...], Val | None]


def insn_view(m: Machine, insn: Insn) -> InsnView:
    cls = insn.opcode & 0x07
    if cls == _LDX:
        return mem_kind(m.regs[insn.src])
    if cls == _ST or cls == _STX:
        return mem_kind(m.regs[insn.dst])
    if insn.opcode == 0x85:  # a call: as step() hands it on, without links
        return tuple([unlinked(v) for v in m.regs[:6]])
    return None


def join_views(a: BlockView, b: BlockView) -> BlockView:
    """A view of the same block covering both: what pricing reads of either state is
    below it (memory kinds that differ become "other", the envelope of every kind;
    call registers and r0 join), so a price from it bounds the price from each."""
    if a == b:
        return a
    reads: list[InsnView] = []
    for x, y in zip(a[0], b[0], strict=True):
        if x == y:
            reads.append(x)
        elif isinstance(x, str):
            reads.append("other")
        else:  # the same instruction: both are call registers
            assert isinstance(x, tuple) and isinstance(y, tuple)
            reads.append(tuple([join_val(u, v) for u, v in zip(x, y, strict=True)]))
    r0 = a[1] if a[1] is None or b[1] is None else join_val(a[1], b[1])
    return tuple(reads), r0


def run_block(block: Block, state: State, env: Env, subcall: CallResult,
              views: Views | None = None) -> list[tuple[int, State]]:
    """Walk a block; return (successor, state on that edge) for each feasible edge.
    With ``views``, also record what pricing reads of each instruction's state, for
    blocks whose walk does not depend on ``subcall`` (no bpf-to-bpf call)."""
    m = Machine(state)
    insns = block.insns
    n = len(insns) - 1
    # ALU instructions, most of a block, go straight to alu(), and loads to load():
    # what step() and insn_view() would make of them, without the calls.
    if views is None:
        for i in range(n):
            insn = insns[i]
            cls = insn.opcode & 0x07
            if cls == _ALU or cls == _ALU64:
                alu(m, insn)
            elif cls == _LDX:
                m.regs[insn.dst] = load(m, insn, env)
            else:
                step(m, insn, env, subcall)
    else:
        seen: list[InsnView] = []
        calls_subprogram = False
        for i in range(n):
            insn = insns[i]
            op = insn.opcode
            cls = op & 0x07
            if cls == _ALU or cls == _ALU64:
                seen.append(None)
                alu(m, insn)
                continue
            if cls == _LDX:  # insn_view and step() written out: most of the rest
                seen.append(mem_kind(m.regs[insn.src]))
                m.regs[insn.dst] = load(m, insn, env)
                continue
            seen.append(insn_view(m, insn))
            if op == 0x85 and insn.is_pseudo_call:
                calls_subprogram = True
            step(m, insn, env, subcall)
        last = insns[n]
        seen.append(insn_view(m, last))
        if not (calls_subprogram or last.opcode == 0x85 and last.is_pseudo_call):
            views.put(block, state, (tuple(seen), m.regs[0] if last.opcode == 0x95 else None))
    last = insns[n]
    lop = last.opcode  # (tested as a number: Insn's properties are attribute lookups, compiled)
    if lop in _CONDITIONAL_JUMPS:
        out = []
        succs = block.succs
        fall, taken = (succs[0], succs[0]) if len(succs) == 1 else succs
        before = m.freeze()  # once: freezing a written stack sorts it
        side = branch_state(before, last, False)
        if side is not None:
            out.append((fall, side))
        side = branch_state(before, last, True)
        if side is not None:
            out.append((taken, side))
        return out
    if lop != 0x95 and lop != 0x05 and lop != 0x06:  # not exit, not goto
        step(m, last, env, subcall)
    if not block.succs:
        return []
    frozen = m.freeze()
    return [(s, frozen) for s in block.succs]


class Views:
    """Block views (BlockView) of the blocks the fixpoint walked, by the block and
    the state it walked it from: pricing the block from that state reads them here
    instead of walking the block again. Keyed by identity: a view is for that very
    state object, which the entry holds on to."""

    __slots__ = ("by_state",)

    def __init__(self) -> None:
        self.by_state: dict[tuple[int, int], tuple[State, BlockView]] = {}

    def put(self, block: Block, state: State, view: BlockView) -> None:
        if len(self.by_state) >= STATES_KEPT:
            self.by_state.clear()
        self.by_state[(id(block), id(state))] = (state, view)

    def get(self, block: Block, state: State) -> BlockView | None:
        got = self.by_state.get((id(block), id(state)))
        return got[1] if got is not None and got[0] is state else None


def dag_order(cfg: Cfg, forest: LoopForest, header: int) -> tuple[int, ...] | None:
    """The body of the loop at ``header`` in reverse postorder when one iteration of
    it is a DAG: no loop inside, every edge within the body but the back edges
    forward in RPO. The worklist then visits each block once, in that order."""
    loop = forest.loops[header]
    if loop.children:
        return None
    index = cfg.rpo_index
    for b in loop.body:
        if b != header and b in forest.loops:
            return None
        for succ in cfg.blocks[b].succs:
            if succ != header and succ in loop.body and index[succ] <= index[b]:
                return None
    return tuple(sorted(loop.body, key=lambda b: index[b]))


def run_dag(cfg: Cfg, order: tuple[int, ...], body: frozenset[int], header: int,
            entry: State, env: Env, subcall: CallResult, budget: Budget, views: Views
            ) -> Iteration:
    """propagate(collect=header) over a loop body that dag_order gives an order
    for: what the worklist computes there (each block once, in RPO, from the join of
    its incoming edges; no header but ``header`` in the region, so no widening),
    without the worklist's bookkeeping."""
    block_in: dict[int, State] = {header: entry}
    edge_out: dict[tuple[int, int], State] = {}
    collected: State | None = None
    blocks = cfg.blocks
    for b in order:
        st_in = block_in.get(b)
        if st_in is None:
            continue
        block = blocks[b]
        budget.spend(len(block.insns))
        outs = run_block(block, st_in, env, subcall, views)
        if len(outs) == 2 and outs[0][0] == outs[1][0]:  # both ways to one block
            outs = [(outs[0][0], join_state(outs[0][1], outs[1][1]))]
        elif len(outs) > 2:
            merged: dict[int, State] = {}
            for succ, st in outs:
                merged[succ] = join_state(merged[succ], st) if succ in merged else st
            outs = list(merged.items())
        for succ, st in outs:
            edge_out[(b, succ)] = st
            if succ == header:
                collected = st if collected is None else join_state(collected, st)
                continue
            if succ not in body:
                continue
            old = block_in.get(succ)
            if old is None:
                block_in[succ] = st
            elif not leq_state(st, old):
                new = join_state(old, st)
                if new != old:
                    block_in[succ] = new
    return block_in, edge_out, collected

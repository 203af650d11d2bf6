"""Forward abstract interpretation of one function to a fixpoint.

Worklist in reverse postorder; states join at merge points; loop headers widen
(to the next constant the program compares against) after a few rounds; two
descending rounds then narrow what widening overshot.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass

from bpflint.analysis import calls
from bpflint.analysis.state import (
    State,
    Val,
    join_state,
    leq_state,
    widen_state,
)
from bpflint.analysis.transfer import (
    Env,
    Machine,
    alu,
    ld_imm64,
    legacy_packet_load,
    load,
    refine_branch,
    store,
)
from bpflint.cfg.graph import Block, Cfg
from bpflint.cfg.loops import LoopForest
from bpflint.isa.insn import Insn
from bpflint.isa.opcodes import Cls, Mode

WIDEN_AFTER = 3  # visits of a loop header before widening kicks in
WIDEN_WITH_THRESHOLDS = 2  # widenings of a header that stop at thresholds
NARROW_ROUNDS = 2


class StepBudgetExceeded(Exception):
    """The analysis used up its step budget (a reported result, not a crash)."""


class Budget:
    __slots__ = ("left", "limit", "deadline", "seconds", "_next_clock")

    def __init__(self, steps: int, seconds: float) -> None:
        self.left = steps
        self.limit = steps
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self._next_clock = steps - 20_000

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise StepBudgetExceeded(f"step budget of {self.limit} steps exhausted")
        if self.left < self._next_clock:
            self._next_clock = self.left - 20_000
            self.check_clock()

    def check_clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise StepBudgetExceeded(f"wall-clock budget of {self.seconds:g} s exhausted")


# A hook to price/resolve bpf-to-bpf calls: (insn, machine before the call) -> r0 value
CallResult = Callable[[Insn, Machine], Val]


def step(m: Machine, insn: Insn, env: Env, subcall: CallResult) -> None:
    """Apply one non-branching instruction to the machine."""
    op = insn.opcode
    cls = op & 0x07
    if cls == Cls.ALU or cls == Cls.ALU64:
        alu(m, insn)
    elif cls == Cls.LDX:
        m.regs[insn.dst] = load(m, insn, env)
    elif cls == Cls.ST or cls == Cls.STX:
        if cls == Cls.STX and op & 0xE0 == Mode.ATOMIC and insn.imm == 0x100:
            m.regs[insn.dst] = load(m, insn, env)  # load-acquire reads like ldx
        else:
            store(m, insn)
    elif cls == Cls.LD:
        if insn.is_ld_imm64:
            ld_imm64(m, insn, env)
        else:
            legacy_packet_load(m, insn)
    elif insn.is_call:
        if insn.is_pseudo_call:
            calls.subprog_call(m, subcall(insn, m))
        elif insn.is_kfunc_call:
            calls.kfunc_call(m, insn)
        else:
            calls.helper_call(m, insn, env.maps)


def run_block(block: Block, state: State, env: Env, subcall: CallResult
              ) -> list[tuple[int, State]]:
    """Walk a block; return (successor, state on that edge) for each feasible edge."""
    m = Machine(state)
    insns = block.insns
    for insn in insns[:-1]:
        step(m, insn, env, subcall)
    last = insns[-1]
    if last.is_conditional_jump:
        out = []
        fall, taken = (block.succs + block.succs)[:2] if len(block.succs) == 1 else block.succs
        for succ, is_taken in ((fall, False), (taken, True)):
            branch = Machine(m.freeze())
            if refine_branch(branch, last, is_taken):
                out.append((succ, branch.freeze()))
        return out
    if not last.is_exit and not last.is_unconditional_jump:
        step(m, last, env, subcall)
    if not block.succs:
        return []
    frozen = m.freeze()
    return [(s, frozen) for s in block.succs]


@dataclass(frozen=True)
class Flow:
    block_in: dict[int, State]  # blocks absent are unreachable
    edge_out: dict[tuple[int, int], State]  # state on each feasible edge


def propagate(cfg: Cfg, forest: LoopForest, region: frozenset[int] | None, start: int,
              entry: State, env: Env, subcall: CallResult, budget: Budget,
              thresholds: tuple[int, ...], collect: int | None = None
              ) -> tuple[dict[int, State], dict[tuple[int, int], State], State | None]:
    """Run the worklist from ``start`` over ``region`` (None: the whole function).

    Edges into ``collect`` are not followed: their states are joined and returned,
    which is one iteration of the loop headed by ``collect`` when it is ``start``.
    Where a loop header was widened, descending rounds then narrow the states again
    (a loop bounded by a value known only here, ``i < j`` with ``j`` exact in one
    outer iteration, gets its exact range back instead of the widening threshold).
    """
    order = cfg.rpo_index
    block_in: dict[int, State] = {}
    edge_out: dict[tuple[int, int], State] = {}
    visits: dict[int, int] = {}
    headers = forest.loops
    collected: State | None = None
    block_in[start] = entry
    work = [(order[start], start)]
    queued = {start}

    def process(b: int) -> list[tuple[int, State]]:
        budget.spend(len(cfg.blocks[b].insns))
        return run_block(cfg.blocks[b], block_in[b], env, subcall)

    widened = False
    while work:
        _, b = heapq.heappop(work)
        queued.discard(b)
        outs = process(b)
        merged: dict[int, State] = {}
        for succ, st in outs:
            merged[succ] = join_state(merged[succ], st) if succ in merged else st
        for succ in cfg.blocks[b].succs:
            if succ not in merged:
                edge_out.pop((b, succ), None)
        for succ, st in merged.items():
            edge_out[(b, succ)] = st
            if succ == collect:
                collected = st if collected is None else join_state(collected, st)
                continue
            if region is not None and succ not in region:
                continue
            old = block_in.get(succ)
            if old is None:
                new = st
            elif leq_state(st, old):
                continue
            else:
                visits[succ] = visits.get(succ, 0) + 1
                new = join_state(old, st)
                if succ in headers and visits[succ] >= WIDEN_AFTER:
                    # Thresholds for the first few widenings, then straight to the
                    # extremes: a bound that keeps growing past every threshold would
                    # otherwise cost one round of the loop per threshold.
                    rounds = visits[succ] - WIDEN_AFTER
                    new = widen_state(old, new, thresholds if rounds < WIDEN_WITH_THRESHOLDS
                                      else ())
                    widened = True
                if new == old:
                    continue  # nothing new: revisiting would repeat the last visit
            block_in[succ] = new
            if succ not in queued:
                queued.add(succ)
                heapq.heappush(work, (order[succ], succ))
    if widened:
        blocks = [b for b in cfg.rpo if region is None or b in region]
        for _ in range(NARROW_ROUNDS):
            _narrow(cfg, blocks, start, block_in, edge_out, process)
        if collect is not None:
            into = [edge_out[(p, collect)] for p in cfg.preds[collect]
                    if (p, collect) in edge_out]
            collected = None
            for st in into:
                collected = st if collected is None else join_state(collected, st)
    return block_in, edge_out, collected


def analyze_function(cfg: Cfg, forest: LoopForest, entry: State, env: Env,
                     subcall: CallResult, budget: Budget,
                     thresholds: tuple[int, ...]) -> Flow:
    block_in, edge_out, _ = propagate(cfg, forest, None, 0, entry, env, subcall, budget,
                                      thresholds)
    return Flow(block_in, edge_out)


def _narrow(cfg: Cfg, blocks: list[int], start: int, block_in: dict[int, State],
            edge_out: dict[tuple[int, int], State],
            process: Callable[[int], list[tuple[int, State]]]) -> None:
    """One descending round: recompute every state (but the start's) from its
    predecessors' outputs. From a sound post-fixpoint this gives another one."""
    for b in blocks:
        if b != start:
            ins = [edge_out[(p, b)] for p in cfg.preds[b] if (p, b) in edge_out]
            if not ins:  # unreachable now: so are its edges
                block_in.pop(b, None)
                for succ in cfg.blocks[b].succs:
                    edge_out.pop((b, succ), None)
                continue
            st = ins[0]
            for other in ins[1:]:
                st = join_state(st, other)
            block_in[b] = st
        if b not in block_in:
            continue
        outs = process(b)
        merged: dict[int, State] = {}
        for succ, st in outs:
            merged[succ] = join_state(merged[succ], st) if succ in merged else st
        for succ in set(cfg.blocks[b].succs):
            if succ in merged:
                edge_out[(b, succ)] = merged[succ]
            else:
                edge_out.pop((b, succ), None)

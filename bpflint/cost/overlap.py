"""The time of a straight run of instructions on an out-of-order core.

The JIT turns each BPF instruction into one or a few native ones, and the CPU
runs independent ones side by side: a run of instructions takes about as long
as the longer of its longest dependency chain (each instruction waiting for its
operands, then taking its class's latency) and its issue bound (the sum of each
class's cost in a stream of independent copies). Adding every instruction's
latency instead, as if each waited for the one before, prices ALU-heavy loops
at 2-8 times what they take.

The issue bound is not the plain sum of the classes' stream costs: a core runs
ALU work, memory accesses and branches on separate ports, behind one front end.
Each instruction is put in a lane: ``ALU`` (moves, simple arithmetic,
``ld_imm64``), ``MEMORY`` (loads and stores), ``BRANCH`` (jumps) or ``SERIAL``
(multiply, divide, atomics, legacy packet loads, ``may_goto``, calls: dear or
multi-step work, charged to every lane). The ALU lane doubles as the front end:
a memory or branch instruction also takes one front-end slot there, priced at
``slot_ns`` (the dearest simple ALU stream cost, what one more single-step
instruction costs a stream) or its own stream cost if lower. The issue bound is
the serial work plus the fullest lane. A stream of one class prices every copy
as before; a mix of classes no longer pays the sum of their port costs, which on
the ALU/load/branch loops of real programs is 1.5-2x what they take.

The model is applied per run between calls (a call is a barrier: helpers and
subprograms are priced whole, as calibrated), with every register ready at the
start of the run. Chains crossing a run boundary are therefore counted in full
in each run they pass through, so the sum over the runs of a path is at least
that path's critical chain; the issue bound keeps every instruction paid for.
Memory is one resource: a load waits for every earlier store of its run (store
forwarding is not free), whatever the address.

Loops: the CPU also starts an iteration before the one before it has finished,
so an iteration after the first adds at most the longer of the loop-carried
chain (from the values live at the header to those live at a back edge,
followed across blocks with ``Readiness``; calls and inner loops hold everything
up) and the iteration's issue bound. Over n iterations a chain can cross n - 1
iterations through loop-carried values and end anywhere in the last one, so
n - 1 steady iterations plus one priced alone bound it (engine.py, paths.repeat).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bpflint.isa.insn import Insn
from bpflint.isa.opcodes import ATOMIC_CMPXCHG, ATOMIC_FETCH, ATOMIC_XCHG, AluOp, Cls, Mode

MEMORY = -1  # the resource loads read and stores write, next to registers 0-10

# Lanes (indexes into Lanes): what an instruction competes for.
ALU, MEM, BRANCH, SERIAL = 0, 1, 2, 3
Lanes = tuple[float, float, float, float]
NO_LANES: Lanes = (0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class Timed:
    """One instruction as the overlap model sees it."""

    latency_ns: float  # from its operands ready to its result ready
    issue_ns: float  # what one more independent copy adds to a stream
    reads: tuple[int, ...]
    writes: tuple[int, ...]
    lanes: Lanes  # what it adds to each lane of the issue bound


def timed(insn: Insn, latency_ns: float, issue_ns: float, slot_ns: float) -> Timed:
    """A non-call instruction of the given class latency and stream cost."""
    issue = min(issue_ns, latency_ns)
    return Timed(latency_ns, issue, *operands(insn), lane_costs(lane_of(insn), issue, slot_ns))


def lane_of(insn: Insn) -> int:
    """The lane of a non-call instruction."""
    op, cls = insn.opcode, insn.opcode & 0x07
    if cls in (Cls.ALU, Cls.ALU64):
        return SERIAL if op & 0xF0 in (AluOp.MUL, AluOp.DIV, AluOp.MOD) else ALU
    if cls == Cls.LD:
        return ALU if insn.is_ld_imm64 else SERIAL
    if cls in (Cls.LDX, Cls.ST):
        return MEM
    if cls == Cls.STX:
        return SERIAL if op & 0xE0 == Mode.ATOMIC else MEM
    return SERIAL if insn.is_exit or insn.is_may_goto else BRANCH


def lane_costs(lane: int, issue_ns: float, slot_ns: float) -> Lanes:
    """What one instruction of ``lane`` and stream cost ``issue_ns`` adds to each lane."""
    if lane == ALU:
        return (issue_ns, 0.0, 0.0, 0.0)
    if lane == SERIAL:
        return (0.0, 0.0, 0.0, issue_ns)
    slot = min(slot_ns, issue_ns)
    return (slot, issue_ns, 0.0, 0.0) if lane == MEM else (slot, 0.0, issue_ns, 0.0)


def add_lanes(a: Lanes, b: Lanes) -> Lanes:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


def issue_bound(lanes: Lanes) -> float:
    """The serial work plus the fullest lane."""
    return lanes[SERIAL] + max(lanes[ALU], lanes[MEM], lanes[BRANCH])


def operands(insn: Insn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(registers and memory read, registers and memory written) of a non-call
    instruction."""
    op, cls = insn.opcode, insn.opcode & 0x07
    dst, src = insn.dst, insn.src
    if cls in (Cls.ALU, Cls.ALU64):
        alu = op & 0xF0
        if alu in (AluOp.NEG, AluOp.END):
            return (dst,), (dst,)
        source = (src,) if op & 0x08 else ()
        return (source if alu == AluOp.MOV else (dst, *source)), (dst,)
    if cls == Cls.LDX:
        return (src, MEMORY), (dst,)
    if cls == Cls.ST:
        return (dst,), (MEMORY,)
    if cls == Cls.STX:
        if op & 0xE0 != Mode.ATOMIC:
            return (dst, src), (MEMORY,)
        if insn.imm == ATOMIC_CMPXCHG:
            return (dst, src, 0, MEMORY), (0, MEMORY)
        fetched = insn.imm == ATOMIC_XCHG or bool(insn.imm & ATOMIC_FETCH)
        return (dst, src, MEMORY), ((src, MEMORY) if fetched else (MEMORY,))
    if cls == Cls.LD:
        if insn.is_ld_imm64:
            return (), (dst,)
        return (6, src, MEMORY), (0,)  # LD_ABS / LD_IND: the skb in r6
    # JMP / JMP32
    if insn.is_exit:
        return (0,), ()
    if insn.is_conditional_jump and not insn.is_may_goto:
        return ((dst, src) if op & 0x08 else (dst,)), ()
    return (), ()


class Readiness:
    """When each register and memory are ready, from a common start: the state the
    chain through a loop iteration is followed in (block by block, joined where paths
    meet). ``floor``: nothing is ready earlier (after a call, everything waits)."""

    def __init__(self, floor: float = 0.0, at: dict[int, float] | None = None) -> None:
        self.floor = floor
        self.at = dict(at or {})

    def ready(self, resource: int) -> float:
        return max(self.floor, self.at.get(resource, 0.0))

    def latest(self) -> float:
        return max(self.floor, *self.at.values()) if self.at else self.floor

    def after(self, steps: Iterable[Timed | float]) -> Readiness:
        """Readiness after running ``steps``; a float is a call of that many ns, which
        starts when everything is ready and holds everything up until it returns."""
        out = Readiness(self.floor, self.at)
        for step in steps:
            if isinstance(step, Timed):
                start = max((out.ready(r) for r in step.reads), default=out.floor)
                end = start + step.latency_ns
                for w in step.writes:
                    out.at[w] = max(out.ready(w), end) if w == MEMORY else end
            else:
                out = Readiness(out.latest() + step)
        return out

    def join(self, other: Readiness) -> Readiness:
        keys = self.at.keys() | other.at.keys()
        return Readiness(max(self.floor, other.floor),
                         {k: max(self.ready(k), other.ready(k)) for k in keys})


def run_max_ns(run: Iterable[Timed]) -> float:
    """The longer of the run's longest dependency chain and its issue bound."""
    ready: dict[int, float] = {}
    chain = 0.0
    alu = mem = branch = serial = 0.0
    for t in run:
        start = max((ready.get(r, 0.0) for r in t.reads), default=0.0)
        end = start + t.latency_ns
        for w in t.writes:
            ready[w] = max(ready.get(w, 0.0), end) if w == MEMORY else end
        chain = max(chain, end)
        lanes = t.lanes
        alu += lanes[0]
        mem += lanes[1]
        branch += lanes[2]
        serial += lanes[3]
    return max(chain, serial + max(alu, mem, branch))

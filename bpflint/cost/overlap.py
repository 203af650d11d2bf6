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
``ld_imm64``), ``MEM`` (loads and stores), ``BRANCH`` (jumps), ``CALL`` (the
call and return of a bpf-to-bpf call) or ``SERIAL`` (multiply, divide, atomics,
legacy packet loads, ``may_goto``, helper calls: dear or multi-step work,
charged to every lane). The ALU lane doubles as the front end:
a memory or branch instruction also takes one front-end slot there, priced at
``slot_ns`` (the dearest simple ALU stream cost, what one more single-step
instruction costs a stream) or its own stream cost if lower. The issue bound is
the serial work plus the fullest lane. A stream of one class prices every copy
as before; a mix of classes no longer pays the sum of their port costs, which on
the ALU/load/branch loops of real programs is 1.5-2x what they take.

The model is applied per run between helper calls (a helper call is a barrier,
priced whole as calibrated), with every register ready at the start of the run.
Chains crossing a run boundary are therefore counted in full in each run they
pass through, so the sum over the runs of a path is at least that path's
critical chain; the issue bound keeps every instruction paid for. Memory is one
resource: a load waits for every earlier store of its run (store forwarding is
not free, and calibration times it per memory kind), whatever the address.

A bpf-to-bpf call is one step of its caller's run: its result is ready the
callee's longest chain from an argument (or memory) after that argument, plus
the call's own minimum; it adds the call's cost to the CALL lane (a stream of
calls is what calibration times) and, to every other lane, the callee's
dearest path in that lane. A loop calling a small function per iteration thus
costs the longer of the calls and the work around them, as a core that predicts
the call and the return runs it.

Loops: the CPU also starts an iteration before the one before it has finished,
so an iteration after the first adds at most the longer of the loop-carried
chain (from the values live at the header to those live at a back edge,
followed across blocks with ``Readiness``; helper calls and inner loops hold
everything up) and the iteration's issue bound (its dearest path in each lane,
a steady back edge at the price of a small loop's). Over n iterations a chain
can cross n - 1 iterations through loop-carried values and end anywhere in the
last one, so n - 1 steady iterations plus one priced alone bound it (loop_bounds.py,
paths.repeat); where the longest chain through one iteration is not carried
into the next, ``steady_chain_ns`` takes the dearest cycle instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from bpflint.isa.insn import Insn
from bpflint.isa.opcodes import ATOMIC_CMPXCHG, ATOMIC_FETCH, ATOMIC_XCHG, AluOp, Cls, Mode

MEMORY: Final = -1  # the resource loads read and stores write, next to registers 0-10

# Lanes (indexes into Lanes): what an instruction competes for.
ALU: Final = 0
MEM: Final = 1
BRANCH: Final = 2
CALL: Final = 3
SERIAL: Final = 4
PARALLEL_LANES: Final = (ALU, MEM, BRANCH, CALL)
Lanes = tuple[float, float, float, float, float]
NO_LANES: Lanes = (0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class Timed:
    """One instruction as the overlap model sees it."""

    latency_ns: float  # from its operands ready to its result ready
    reads: tuple[int, ...]
    writes: tuple[int, ...]
    lanes: Lanes  # what it adds to each lane of the issue bound
    # per read, from that operand ready to the result (calls); None: latency_ns
    read_latency: tuple[float, ...] | None = None

    def end(self, ready: Callable[[int], float], floor: float) -> float:
        """When the result is ready, given when each operand is."""
        if self.read_latency is None:
            return max((ready(r) for r in self.reads), default=floor) + self.latency_ns
        return max((ready(r) + lat for r, lat in zip(self.reads, self.read_latency, strict=True)),
                   default=floor)


def timed(insn: Insn, latency_ns: float, issue_ns: float, slot_ns: float) -> Timed:
    """A non-call instruction of the given class latency and stream cost."""
    issue = min(issue_ns, latency_ns)
    lane = _LANES.get(insn.opcode)
    if lane is None:
        lane = _LANES[insn.opcode] = lane_of(insn)
    return Timed(latency_ns, *operands(insn), lane_costs(lane, issue, slot_ns))


_LANES: dict[int, int] = {}  # opcode -> lane_of: the opcode decides it


CALL_READS: Final = (1, 2, 3, 4, 5, MEMORY)  # a bpf-to-bpf call's operands: arguments, memory


def call_step(read_latency: tuple[float, ...], lanes: Lanes) -> Timed:
    """A bpf-to-bpf call as one step of its caller's run: it reads the argument
    registers and memory (``read_latency``: from each of CALL_READS to the result)
    and writes r0, the clobbered r1-r5 and memory."""
    return Timed(max(read_latency), CALL_READS, (0, 1, 2, 3, 4, 5, MEMORY), lanes,
                 read_latency)


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
        return (issue_ns, 0.0, 0.0, 0.0, 0.0)
    if lane == SERIAL:
        return (0.0, 0.0, 0.0, 0.0, issue_ns)
    slot = min(slot_ns, issue_ns)
    out = [slot, 0.0, 0.0, 0.0, 0.0]
    out[lane] += issue_ns
    return (out[0], out[1], out[2], out[3], out[4])


def add_lanes(a: Lanes, b: Lanes) -> Lanes:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4])


def issue_bound(lanes: Lanes) -> float:
    """The serial work plus the fullest lane."""
    return lanes[SERIAL] + max(lanes[ALU], lanes[MEM], lanes[BRANCH], lanes[CALL])


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
        # ready(r) and Timed.end written out (no generators): it runs for every
        # block of every chain followed
        floor = self.floor
        at = dict(self.at)
        for step in steps:
            if isinstance(step, Timed):
                reads = step.reads
                lats = step.read_latency
                if lats is None:
                    end = floor
                    for r in reads:
                        ready = at.get(r, 0.0)
                        if ready > end:
                            end = ready
                    end += step.latency_ns
                else:
                    end = floor if not reads else -math.inf
                    for i in range(len(reads)):
                        ready = at.get(reads[i], 0.0)
                        arrive = (ready if ready > floor else floor) + lats[i]
                        if arrive > end:
                            end = arrive
                for w in step.writes:
                    if w == MEMORY:
                        ready = at.get(w, 0.0)
                        if ready < floor:
                            ready = floor
                        at[w] = ready if ready > end else end
                    else:
                        at[w] = end
            else:
                floor = (max(floor, *at.values()) if at else floor) + step
                at = {}
        out = Readiness(floor)
        out.at = at
        return out

    def join(self, other: Readiness) -> Readiness:
        mine, theirs = self.at, other.at
        floor, their_floor = self.floor, other.floor
        at: dict[int, float] = {}
        for k in mine.keys() | theirs.keys():  # ready(k) of each, written out
            a = mine.get(k, 0.0)
            a = a if a > floor else floor
            b = theirs.get(k, 0.0)
            b = b if b > their_floor else their_floor
            at[k] = a if a >= b else b
        out = Readiness(floor if floor >= their_floor else their_floor)
        out.at = at
        return out


def sum_lanes(steps: Iterable[Timed | float]) -> Lanes:
    """What the steps add to each lane; a float (a helper call's ns) is serial."""
    alu = mem = branch = call = serial = 0.0
    for step in steps:
        if isinstance(step, Timed):
            lanes = step.lanes
            alu += lanes[0]
            mem += lanes[1]
            branch += lanes[2]
            call += lanes[3]
            serial += lanes[4]
        else:
            serial += step
    return (alu, mem, branch, call, serial)


def run_max_ns(run: list[Timed]) -> float:
    """The longer of the run's longest dependency chain and its issue bound."""
    # Written out (no generators): it runs once per run of every block priced.
    # Readiness is never negative, so 0.0 starts each max.
    ready: dict[int, float] = {}
    get = ready.get
    chain = 0.0
    for t in run:
        if t.read_latency is None:
            start = 0.0
            for r in t.reads:
                at = get(r, 0.0)
                if at > start:
                    start = at
            end = start + t.latency_ns
        else:
            end = t.end(lambda r: get(r, 0.0), 0.0)
        for w in t.writes:
            if w == MEMORY:
                before = get(w, 0.0)
                ready[w] = before if before > end else end
            else:
                ready[w] = end
        if end > chain:
            chain = end
    return max(chain, issue_bound(sum_lanes(run)))


def steady_chain_ns(carried: dict[int, dict[int, float]], chain_ns: float,
                    later: int | None) -> float:
    """What each iteration after the first adds to the loop-carried dependency chain.

    ``carried[a][b]``: the longest chain from value a at the loop's header to value
    b at a back edge; ``chain_ns``, the longest of them all, is what the first
    iteration (priced alone) covers; ``later``: the most iterations after it.
    A chain through N iterations follows N such edges: at most N x the dearest cycle
    mean (lambda, Karp's algorithm) plus the dearest path with every edge lowered by
    lambda (T, which no cycle lengthens). The first iteration and ``later`` ones at
    lambda + max(0, lambda + T - chain_ns) / later therefore cover it, as do
    iterations at chain_ns (no edge is longer): the lesser of the two."""
    nodes = sorted(set(carried) | {b for ends in carried.values() for b in ends})
    edges = [(a, b, w) for a, ends in carried.items() for b, w in ends.items()]
    n = len(nodes)
    if not edges or n == 0:
        return 0.0
    neg = -math.inf
    walks = [dict.fromkeys(nodes, 0.0)]  # walks[k][v]: dearest walk of k edges ending at v
    for _ in range(n):
        prev, cur = walks[-1], dict.fromkeys(nodes, neg)
        for a, b, w in edges:
            if prev[a] > neg and prev[a] + w > cur[b]:
                cur[b] = prev[a] + w
        walks.append(cur)
    lam = 0.0
    for v in nodes:
        if walks[n][v] > neg:
            lam = max(lam, min((walks[n][v] - walks[k][v]) / (n - k)
                               for k in range(n) if walks[k][v] > neg))
    dist = dict.fromkeys(nodes, 0.0)
    for _ in range(n):
        for a, b, w in edges:
            dist[b] = max(dist[b], dist[a] + w - lam)
    excess = max(0.0, lam + max(dist.values()) - chain_ns)
    # never above chain_ns: every edge is at most that, so N iterations' chains are too
    return min(chain_ns, lam + (excess / later if later else excess))

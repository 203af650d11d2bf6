"""What the stages of one program's costing share: the kernel's limits, a function
context (FuncContext) and a priced block (BlockInfo), a function's result (FuncResult),
source-line accounting (Lines), and small helpers on them.

The engine is split by seam (docs/architecture.md): pricing.py prices blocks and
calls, loop_bounds.py bounds and summarises loops, lanes.py follows issue lanes and
dependency chains, expand.py rebuilds the worst paths' lines, engine.py walks
functions and assembles a program's result."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from bpflint.analysis import scalar as sc
from bpflint.analysis.fixpoint import (
    Iterations,
)
from bpflint.analysis.scalar import Scalar
from bpflint.analysis.state import (
    CALLER_STACK,
    STACK_OR_OTHER,
    UNINIT,
    UNKNOWN,
    Kind,
    State,
    Val,
)
from bpflint.analysis.transfer import Env, Machine
from bpflint.cfg.graph import Block, Cfg
from bpflint.cfg.loops import Loop, LoopForest
from bpflint.cost.overlap import (
    NO_LANES,
    Lanes,
    Timed,
)
from bpflint.cost.paths import (
    Cost,
    Count,
    EdgeCost,
    LoopSummary,
    Target,
)
from bpflint.isa.insn import Insn
from bpflint.isa.opcodes import Cls
from bpflint.obj.model import Function
from bpflint.results import (
    Diagnostic,
    SourceLoc,
)

MAX_CALL_FRAMES = 8  # the kernel's MAX_CALL_FRAMES


MAX_TAIL_CALLS = 33  # the kernel's MAX_TAIL_CALL_CNT


BPF_LOOP_MAX = 1 << 23  # bpf_loop rejects larger nr_loops with -E2BIG


USER_RINGBUF_MAX_SAMPLES = 128 * 1024  # BPF_MAX_USER_RINGBUF_SAMPLES


UNROLL_STEPS = 100_000  # abstract unrolling of one loop gives up after this many steps


MAY_GOTO_UNROLL_STEPS = 10_000  # ... and of a loop the timed may_goto budget bounds


PER_ITERATION_STEPS = 20_000  # cost loops this small iteration by iteration ...


SHARPEN_STEPS = 200_000  # ... until a program has spent this much on it


# A sized helper call whose size bpflint bounds only by the buffer it points at, at
# more than this many bytes, gets a diagnostic naming the call (64 KiB: the most a
# packet pointer can cover; a larger bound is rarely what the author meant).
LOOSE_SIZE_BYTES = 1 << 16


# (opcode, dst, src, imm of an STX, latency ns, issue ns): what a Timed is made of
TimedKey = tuple[int, int, int, int, float, float]


# Lines are keyed by (file, line); the value is [insns, ns] on the worst path by
# instructions, then [insns, ns] on the worst path by ns (PATH_INSNS, PATH_NS: where
# each path's pair starts). A line on one path only has zeros in the other's pair.
Lines = dict[tuple[str, int], list[float]]


PATH_INSNS = 0


PATH_NS = 2


class Unbounded(Exception):
    """A construct makes the cost unbounded; carries the diagnostic."""

    def __init__(self, diag: Diagnostic) -> None:
        super().__init__(diag.message)
        self.diag = diag


@dataclass(frozen=True)
class FuncResult:
    ret: Cost | None  # paths leaving through exit
    tail: Cost | None  # paths leaving through a successful tail call (entry function)
    ret_val: Val
    lines_ret: Lines
    lines_tail: Lines
    tail_targets: frozenset[str]
    open_tail_maps: frozenset[str]
    # a called function that returns (no tail call): how it overlaps its caller's
    # work (overlap.py); None where it is a barrier
    as_callee: CalleeOverlap | None = None


@dataclass(frozen=True)
class CalleeOverlap:
    lanes: Lanes  # per lane, the dearest path's serial work plus that lane
    # per operand of overlap.CALL_READS: the longest chain from it to the result
    # (r0 or memory) at an exit
    read_latency: tuple[float, ...]


# An innermost loop's header, the identities of its blocks' BlockInfos (in its
# order; id(None) where one is unreached) and its feasible edges ...
SteadyKey = tuple[int, tuple[int, ...], frozenset[tuple[int, int]]]
# ... and what _steady_ns computes of them: those BlockInfos (kept alive: the ids
# stay theirs), the issue bound, the ns to leave by each way out, the longest chain,
# and the loop-carried chains where they decide (else None).
SteadyParts = tuple[tuple["BlockInfo | None", ...], float, dict[Target, float], float,
                    dict[int, dict[int, float]] | None]


@dataclass(frozen=True)
class FuncContext:
    """What every step of one function context's analysis needs."""

    cfg: Cfg
    forest: LoopForest
    thresholds: tuple[int, ...]
    env: Env
    prog_type: str
    tail_targets: set[str]
    open_maps: set[str]
    iterations: Iterations  # loop iterations already run (fixpoint.run_iteration)
    # LoopBounds._steady_ns of innermost loops, by what it reads (SteadyKey)
    steady: dict[SteadyKey, SteadyParts] = field(default_factory=dict)


@dataclass(frozen=True)
class BlockInfo:
    cost: Cost
    lines: Lines
    exits: list[Target]
    edge_ns: dict[int, tuple[float, float]]  # successor -> cost of the jump taking it
    # for loops (overlap.py): what the block adds to each lane of the issue bound
    # (its edge-priced jump aside), and its instructions (calls as their ns) to
    # follow chains through
    lanes: Lanes = NO_LANES
    goto_ns: float = 0.0  # the BRANCH lane's share of a closing unconditional jump
    steps: tuple[Timed | float, ...] = ()
    jump_line: tuple[str, int] | None = None  # where the edge-priced jump's ns go


def source_loc(insn: Insn | None) -> SourceLoc | None:
    if insn is None or insn.line is None:
        return None
    return SourceLoc(insn.line.file, insn.line.line)


def add_lines(into: Lines, lines: Lines, mult: Count, ns_mult: float | None = None) -> None:
    """Both paths' lines, instructions ``mult`` times and ns ``ns_mult`` times."""
    ns_mult = mult if ns_mult is None else ns_mult
    for key, (i, n, i_ns, n_ns) in lines.items():
        cur = into.get(key)
        if cur is None:
            into[key] = [i * mult, n * ns_mult, i_ns * mult, n_ns * ns_mult]
        else:
            cur[0] += i * mult
            cur[1] += n * ns_mult
            cur[2] += i_ns * mult
            cur[3] += n_ns * ns_mult


def add_path_lines(into: Lines, lines: Lines, mult: Count, ns_mult: float, at: int) -> None:
    """One path's pair (``at``: PATH_INSNS or PATH_NS) of ``lines`` into the same pair."""
    for key, v in lines.items():
        cur = into.get(key)
        if cur is None:
            cur = into[key] = [0, 0.0, 0, 0.0]
        cur[at] += v[at] * mult
        cur[at + 1] += v[at + 1] * ns_mult


def pick(by_insns: Lines, by_ns: Lines) -> Lines:
    """Fresh lines: the pair of the path by instructions from ``by_insns``, the pair
    of the path by ns from ``by_ns`` (the two worst cases may take different ways)."""
    out: Lines = {}
    add_path_lines(out, by_insns, 1, 1.0, PATH_INSNS)
    add_path_lines(out, by_ns, 1, 1.0, PATH_NS)
    return out


def edge_costs(blocks: dict[int, BlockInfo]) -> EdgeCost:
    def cost(b: int, succ: int | None) -> Cost:
        info = blocks[b]
        jump = info.edge_ns.get(succ) if succ is not None else None
        if jump is None:
            return info.cost
        c = info.cost
        return (c[0], c[1], c[2] + jump[0], c[3] + jump[1])
    return cost


def exit_targets(blocks: dict[int, BlockInfo]) -> Callable[[int], list[Target]]:
    return lambda b: blocks[b].exits


def descendants(forest: LoopForest, header: int) -> list[int]:
    out: list[int] = []
    work = list(forest.loops[header].children)
    while work:
        h = work.pop()
        out.append(h)
        work.extend(forest.loops[h].children)
    return out


def loop_line(cfg: Cfg, loop: Loop) -> Insn | None:
    """The instruction that names a loop's source line: its header's first with line
    info, else its may_goto's."""
    header = cfg.blocks[loop.header].insns
    found = next((insn for insn in header if insn.line is not None), None)
    if found is not None:
        return found
    body = [insn for b in loop.order for insn in cfg.blocks[b].insns]
    return next((insn for insn in body if insn.is_may_goto and insn.line is not None),
                header[0])


def is_unbounded(summary: LoopSummary) -> bool:
    return any(math.isinf(c[1]) for c in summary.totals.values())


def merge(a: Cost, b: Cost) -> Cost:
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def callee_ns(lines: Lines, at: int) -> float:
    return sum(v[at + 1] for v in lines.values())


def foreign_val(v: Val) -> Val:
    """A value passed into another frame: the caller's stack is plain memory there.
    A STACK_OR_OTHER value (a caller's stack pointer, other memory, or data) is an
    unknown scalar there: the callee reads and writes through it as through memory
    of no particular kind, and compares it as data (if (n > 20) return)."""
    if v.kind == Kind.STACK:
        if v.ref == STACK_OR_OTHER:
            return UNKNOWN
        return Val(Kind.MEM, v.s, CALLER_STACK, v.maybe_null)
    return v


def callee_entry(args: list[Val] | tuple[Val, ...], foreign: bool = True) -> State:
    regs = [UNINIT] * 11
    for i, v in enumerate(args[:5]):
        regs[1 + i] = foreign_val(v) if foreign else v
    regs[10] = Val(Kind.STACK, Scalar.const(0))
    return State(tuple(regs), ())


def program_entry() -> State:
    regs = [UNINIT] * 11
    regs[1] = Val(Kind.CTX, Scalar.const(0))
    regs[10] = Val(Kind.STACK, Scalar.const(0))
    return State(tuple(regs), ())


def last_state_read(block: Block) -> int:
    """Index of the block's last instruction whose price or effect on the result
    depends on the machine state (memory access, call, exit); -1 if none."""
    for index in range(len(block.insns) - 1, -1, -1):
        insn = block.insns[index]
        if insn.opcode & 0x07 in (Cls.LDX, Cls.ST, Cls.STX) or insn.is_call or insn.is_exit:
            return index
    return -1


def no_subcall(insn: Insn, m: Machine) -> Val:
    return UNKNOWN


def widen_thresholds(func: Function) -> tuple[int, ...]:
    """Widening thresholds: constants the function compares against, and neighbours."""
    values = {0, 1, sc.U32, sc.U64, (1 << 31) - 1, -(1 << 31), sc.S64_MAX, sc.S64_MIN}
    for insn in func.insns:
        if insn.is_conditional_jump and not insn.opcode & 0x08:
            for v in (insn.imm, insn.imm & sc.U32, insn.imm & sc.U64):
                values.update((v - 1, v, v + 1))
    return tuple(sorted(values))

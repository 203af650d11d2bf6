"""How long a loop that only ``may_goto`` bounds can run: the kernel's two models.

``may_goto`` (``cond_break``, ``can_loop``) falls through while its stack frame's
budget lasts and jumps once it is spent. The verifier reserves the budget in every
frame that has a may_goto and initialises it in the function's prologue, so each
call of a subprogram or callback starts afresh; nested loops in one frame share it.

count (kernels before 6.15; the interpreter and JITs without the timed form): the
budget is BPF_MAX_LOOPS (8M) fall-throughs per frame, a count the analysis uses as
an induction variable (bpflint/analysis/bounds.py).

timed (6.15 on, the x86-64 and arm64 JITs): the counter starts at BPF_MAX_TIMED_LOOPS
(0xffff); the fall-through that empties it calls arch_bpf_timed_may_goto, whose
bpf_check_timed_may_goto() stamps the frame's start time on its first call and
refills the counter, and on each later call refills it only while less than 250 ms
(NSEC_PER_SEC / 4) have passed since that stamp; otherwise it leaves 0 and the next
may_goto jumps. Number the frame's fall-throughs: calls happen at fall-through
65535 k; call 1 (time t1) always refills, call K is the first to find 250 ms gone.
So a loop's iterations split into those whose first fall-through is

- among the first 65535 (before t1): at most 65535 of them;
- after call K - 1 (the last refill): at most 65535;
- in between, at times in (t1, t(K-1)], t(K-1) - t1 < 250 ms: of n such
  iterations the n - 2 between the first and the last run whole inside that span,
  so (n - 2) x m < 250 ms where m is the least time of one iteration, and
  n <= ceil(250 ms / m) + 1.

No count bounds the loop, only time: its back edges are at most
``timed_iterations(m)`` for m the cheapest iteration the cost table prices (its
minimum ns: a lower bound on the CPU it was calibrated on), and its time is at most
the 250 ms window plus the two batches and two more iterations outside it, plus the
refresh calls that fall outside it (``timed_ns``). Both are per entry of the loop: a
frame's later loops get what the earlier ones left, which a per-entry bound does not
use (sound, loose for a loop entered often). bpf_loop, bpf_for (bpf_iter_num) and
other counted loops are not affected: their limits are counts.

any (the default): the kernel a program will run on is rarely known when it is
analysed, so a loop gets the larger of the two bounds, in back edges and in time:
``max(count, timed)`` back edges and at most ``max(timed_ns, count x the dearest
iteration)`` ns. That is at least what either model gives, so it is sound on every
kernel; ``timed`` and ``count`` remain for a fleet whose kernels are known.
"""

from __future__ import annotations

import functools
import math

MODELS = ("any", "timed", "count")
DEFAULT_MODEL = "any"

TIMED_WINDOW_NS = 250_000_000  # NSEC_PER_SEC / 4 in bpf_check_timed_may_goto()
TIMED_BATCH = 0xFFFF  # BPF_MAX_TIMED_LOOPS: fall-throughs between two refresh calls
# refresh calls (arch_bpf_timed_may_goto) outside the 250 ms window: the first, the
# last to refill and the one that finds the time spent
REFRESHES_OUTSIDE = 3
# iterations outside the window: two batches, and the first and last of those in it
ITERATIONS_OUTSIDE = 2 * TIMED_BATCH + 2


def timed_iterations(floor_ns: float) -> int | None:
    """The most back edges one entry of a timed may_goto loop takes when one of its
    iterations takes at least ``floor_ns``; None when that is not positive (no
    count follows from the time)."""
    if not floor_ns > 0 or math.isinf(floor_ns):
        return None
    return math.ceil(TIMED_WINDOW_NS / floor_ns) + 1 + 2 * TIMED_BATCH


def timed_ns(iteration_max_ns: float, refresh_max_ns: float) -> float:
    """The most time one entry's iterations take (leaving the loop not included):
    the window, the iterations outside it at their dearest, and the refresh calls
    outside it."""
    return TIMED_WINDOW_NS + ITERATIONS_OUTSIDE * iteration_max_ns \
        + REFRESHES_OUTSIDE * refresh_max_ns


@functools.cache
def shipped_may_goto_min_ns() -> float:
    """The shipped cost table's least price of a may_goto: the time floor of an
    iteration when the analysis runs without a cost table (instructions only), as
    every iteration of such a loop runs a may_goto."""
    from bpflint.cost.table_file import load_cost_table  # a table is read only if needed
    return load_cost_table(None).insns["may_goto"].min_ns


def describe(iterations: int, floor_ns: float) -> str:
    """The note that explains a timed bound."""
    return (f"may_goto loop: up to {iterations:,} iterations in 250 ms at the cheapest "
            f"measured iteration ({floor_ns:.3g} ns); timed may_goto (Linux >= 6.15, "
            "x86-64/arm64 JIT) is bounded by 250 ms, not by a count (--may-goto count, "
            "or [analyze] may_goto = \"count\", for older kernels or no JIT)")


def describe_any(iterations: int, timed: int, count: int, floor_ns: float) -> str:
    """The note that explains the any-kernel bound: the larger of the two."""
    return (f"may_goto loop: up to {iterations:,} iterations, the larger of the timed "
            f"model's {timed:,} in 250 ms at the cheapest measured iteration "
            f"({floor_ns:.3g} ns; Linux >= 6.15, x86-64/arm64 JIT) and the count model's "
            f"{count:,} (older kernels, no JIT); --may-goto timed or --may-goto count "
            "(or [analyze] may_goto) when the kernels it runs on are known")


UNBOUNDED_HOW = ("timed may_goto (Linux >= 6.15): bounded by 250 ms, not by a count, and "
                 "the cost table prices its cheapest iteration at 0 ns; --may-goto count "
                 "for older kernels or no JIT")

"""Functions handed to bpf_timer_set_callback: timer callbacks run later, on their
own, and are priced as entry points of their own (cost/engine.py).

The value analysis of each function that arms a timer gives r2 at the call: one
function, or the set of them the paths bring (clang loads a callback's address
before a branch and calls after the join). A function's own entry is taken with
unknown arguments (the program's context for its entry point), so a callback
passed in from a caller is not found there; the last write to r2 in the call's
block is looked at too, as before.
"""

from __future__ import annotations

from collections.abc import Callable

from bpflint.analysis import calls
from bpflint.analysis.fixpoint import Budget, StepBudgetExceeded, analyze_function, step
from bpflint.analysis.state import UNKNOWN, State, func_keys
from bpflint.analysis.transfer import Env, Machine
from bpflint.cfg.graph import build_cfg
from bpflint.cfg.loops import find_loops
from bpflint.cost.frame import callee_entry, no_subcall, program_entry, widen_thresholds
from bpflint.isa.insn import Insn
from bpflint.obj.model import BpfObject, FuncKey, Function, Program

# Steps the value analysis of one arming function may take (far more than any one
# needs: these are functions of a program the main analysis walks too).
_STEPS = 2_000_000
_SECONDS = 20.0


def timer_callbacks(obj: BpfObject, reachable: Callable[[BpfObject, FuncKey], list[FuncKey]]
                    ) -> dict[FuncKey, Program]:
    """Each function handed to bpf_timer_set_callback, with a program that arms it;
    ``reachable``: the functions each program's entry reaches."""
    found: dict[FuncKey, Program] = {}
    for program in obj.programs:
        for key in reachable(obj, program.entry):
            func = obj.functions[key]
            if not any(_arms(insn) for insn in func.insns):
                continue
            entry = program_entry() if key == program.entry else callee_entry([UNKNOWN] * 5)
            for cb in _analysed(obj, func, entry, program.prog_type) | _looked_back(obj, func):
                if cb in obj.functions:
                    found.setdefault(cb, program)
    return found


def _arms(insn: Insn) -> bool:
    return insn.is_helper_call and insn.imm == calls.TIMER_SET_CALLBACK


def _analysed(obj: BpfObject, func: Function, entry: State, prog_type: str) -> set[FuncKey]:
    """What the value analysis says r2 holds at each arming call."""
    cfg = build_cfg(func)
    env = Env(prog_type, obj.maps)
    try:
        flow = analyze_function(cfg, find_loops(cfg), entry, env, no_subcall,
                                Budget(_STEPS, _SECONDS), widen_thresholds(func))
    except StepBudgetExceeded:  # the look-back still answers
        return set()
    out: set[FuncKey] = set()
    for b, block in enumerate(cfg.blocks):
        state = flow.block_in.get(b)
        if state is None or not any(_arms(insn) for insn in block.insns):
            continue
        m = Machine(state)
        for insn in block.insns:
            if _arms(insn):
                out.update(func_keys(m.regs[2]))
            if not insn.is_branch and not insn.is_exit:
                step(m, insn, env, no_subcall)
    return out


def _looked_back(obj: BpfObject, func: Function) -> set[FuncKey]:
    """The function a ld_imm64 loads into r2 last before an arming call, in its block."""
    out: set[FuncKey] = set()
    insns = func.insns
    for i, insn in enumerate(insns):
        if not _arms(insn):
            continue
        for prev in reversed(insns[:i]):  # the last write to r2 before the call
            if prev.is_call or prev.is_branch:
                break
            if prev.dst == 2 and prev.opcode & 0x07 not in (2, 3):
                ref = prev.reloc
                if prev.is_ld_imm64 and ref is not None and ref.func is not None:
                    out.add(ref.func)
                break
    return out

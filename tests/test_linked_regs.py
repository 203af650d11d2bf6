"""Linked scalar registers: a branch on a copy narrows the original (reg->id).

The kernel verifier gives a register and its copy (``r1 = r2``; ``w1 = w2`` of a
u32; ``r1 = r2; r1 += k``; a spill of either) one id, and a conditional jump that
narrows one narrows every holder of the id. clang checks a copy and passes or
loops on the original, so without links a length or a loop bound the kernel
proved stays unbounded for bpflint. tests/progs/links/linked_regs.bpf.c loops
on a bound checked through a copy; its *_unlinked programs change or reload the
copy before the check, which leaves the loop unbounded (the kernel refuses them).
"""

from __future__ import annotations

import functools

import pytest
from bpfc import PROGS, compile_bpf, needs_clang
from cases import NO_PKT, inputs, xdp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpflint.analysis import scalar as sc
from bpflint.analysis.jumps import refine_branch
from bpflint.analysis.scalar import Scalar
from bpflint.analysis.state import (
    LINK_ZEXT32,
    UNINIT,
    UNKNOWN,
    Kind,
    State,
    Val,
    const,
    join_state,
    leq_state,
    link_of,
    linked,
    scalar,
)
from bpflint.analysis.transfer import Env, Machine, alu, load, store
from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.errors import BpfLintError
from bpflint.interp.refinterp import Input, run
from bpflint.isa.insn import Insn
from bpflint.isa.opcodes import Opcode
from bpflint.kernel.loader import load_program
from bpflint.kernel.syscall import bpf_usable
from bpflint.obj.model import BpfObject
from bpflint.obj.reader import load_object
from bpflint.results import ProgramResult

SOURCE = PROGS / "links" / "linked_regs.bpf.c"
LIMIT = 20  # the check on the copy: n <= LIMIT
LINKED = ("loop_copy", "loop_copy_of_copy", "loop_wcopy", "loop_add_const", "loop_spilled")
# linked for bpflint, not for the kernel (which refuses it): a zero-extended copy
BEYOND_KERNEL = ("loop_zext_copy",)
UNLINKED = ("loop_shifted_unlinked", "loop_reloaded_unlinked", "loop_zext_wide_unlinked")
USABLE, REASON = bpf_usable()


@functools.cache
def analysed() -> tuple[BpfObject, dict[str, ProgramResult]]:
    obj = load_object(compile_bpf(SOURCE))
    return obj, {p.name: analyze_program(obj, p, None, AnalysisOptions())
                 for p in obj.programs}


@needs_clang
def test_every_program_is_listed() -> None:
    _, results = analysed()
    assert set(results) == {*LINKED, *BEYOND_KERNEL, *UNLINKED}


@needs_clang
@pytest.mark.parametrize("name", LINKED + BEYOND_KERNEL)
def test_a_loop_bounded_through_a_copy_is_bounded_exactly(name: str) -> None:
    """Without links these loops are unbounded (rx_queue_index is any u32)."""
    obj, results = analysed()
    result = results[name]
    assert result.bounded, result.diagnostics
    worst = run(obj, name, xdp(NO_PKT, rx_queue=LIMIT))  # n = 20: 20 iterations
    best = run(obj, name, xdp(NO_PKT, rx_queue=LIMIT + 1))  # the check fails
    assert result.insns_max == worst and result.insns_min == best


@needs_clang
@pytest.mark.parametrize("name", LINKED + BEYOND_KERNEL)
def test_every_drawn_input_runs_inside_the_range(name: str) -> None:
    obj, results = analysed()
    result = results[name]
    assert result.insns_min is not None and result.insns_max is not None
    low, high = result.insns_min, result.insns_max

    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.one_of(inputs("xdp"), st.builds(lambda q: xdp(NO_PKT, rx_queue=q),
                                              st.integers(0, 2 * LIMIT))))
    def check(inp: Input) -> None:
        count = run(obj, name, inp)
        assert low <= count <= high, f"{name}: executed {count} outside [{low}, {high}]"

    check()


@needs_clang
@pytest.mark.parametrize("name", UNLINKED)
def test_a_copy_changed_before_its_check_bounds_nothing(name: str) -> None:
    obj, results = analysed()
    result = results[name]
    assert not result.bounded
    assert any(d.rule == "BPF003" for d in result.diagnostics)
    if name == "loop_shifted_unlinked":
        # n = 21 passes the check (21 >> 1 <= 20) and loops 21 times: more than
        # the 20 a link would have allowed
        assert run(obj, name, xdp(NO_PKT, rx_queue=LIMIT + 1)) > \
            run(obj, name, xdp(NO_PKT, rx_queue=LIMIT))


@needs_clang
@pytest.mark.kernel
@pytest.mark.skipif(not USABLE, reason=f"bpf() is not usable here: {REASON}")
def test_the_kernel_accepts_exactly_the_linked_loops() -> None:
    obj, _ = analysed()
    for name in LINKED:
        with load_program(obj, next(p for p in obj.programs if p.name == name)):
            pass
    for name in UNLINKED + BEYOND_KERNEL:
        with pytest.raises(BpfLintError, match="rejected"):
            load_program(obj, next(p for p in obj.programs if p.name == name))


# -- the abstract state: links made, kept, narrowed and broken ----------------------

def _insn(op: int, dst: int, src: int = 0, off: int = 0, imm: int = 0, pc: int = 0) -> Insn:
    return Insn(pc, Opcode(op), dst, src, off, imm)


MOV64, MOV32, ADD64_K, SUB64_K, ADD64_X, SUB64_X, MUL64_K, ADD32_K = \
    0xBF, 0xBC, 0x07, 0x17, 0x0F, 0x1F, 0x27, 0x04
STX64, LDX64 = 0x7B, 0x79
FP = Val(Kind.STACK, Scalar.const(0))
ENV = Env("xdp", {})


def _machine(**values: Val) -> Machine:
    regs = [UNINIT] * 11
    regs[10] = FP
    for name, val in values.items():
        regs[int(name[1:])] = val
    return Machine(State(tuple(regs), ()))


def _branch(m: Machine, op: int, dst: int, imm: int, taken: bool) -> Machine | None:
    out = Machine(m.freeze())
    return out if refine_branch(out, _insn(op, dst, off=1, imm=imm), taken) else None


JGT_K, JSGT_K, JLT_K, JEQ_K, JNE_K, JGT32_K = 0x25, 0x65, 0xA5, 0x15, 0x55, 0x26


def test_a_copy_is_linked_and_narrowed_with_its_check() -> None:
    m = _machine(r2=UNKNOWN)
    alu(m, _insn(MOV64, 4, 2, pc=7))
    assert m.regs[2].link and m.regs[2] == m.regs[4]
    out = _branch(m, JGT_K, 4, 64, taken=False)
    assert out is not None
    assert out.regs[2].s.umax == 64 and out.regs[4].s.umax == 64


def test_a_constant_added_to_a_copy_keeps_the_link_apart_by_it() -> None:
    m = _machine(r2=UNKNOWN)
    alu(m, _insn(MOV64, 4, 2))
    alu(m, _insn(ADD64_K, 4, imm=8))
    alu(m, _insn(SUB64_K, 4, imm=3))  # r4 = r2 + 5
    out = _branch(m, JLT_K, 4, 5, taken=False)  # r4 >= 5
    assert out is not None
    out2 = _branch(out, JGT_K, 4, 25, taken=False)  # 5 <= r4 <= 25
    assert out2 is not None
    assert (out2.regs[2].s.umin, out2.regs[2].s.umax) == (0, 20)
    assert (out2.regs[4].s.umin, out2.regs[4].s.umax) == (5, 25)


def test_any_other_write_breaks_the_link() -> None:
    for op, src, imm in ((MUL64_K, 0, 1), (ADD64_X, 3, 0), (ADD32_K, 0, 1), (MOV64, 3, 0)):
        m = _machine(r2=UNKNOWN, r3=UNKNOWN)
        alu(m, _insn(MOV64, 4, 2))
        alu(m, _insn(op, 4, src, imm=imm))
        out = _branch(m, JGT_K, 4, 64, taken=False)
        assert out is not None and out.regs[2].s == sc.UNKNOWN, hex(op)


def test_a_32_bit_copy_links_a_u32_only() -> None:
    narrow = _machine(r2=scalar(Scalar.urange(0, sc.U32)))
    alu(narrow, _insn(MOV32, 4, 2))
    out = _branch(narrow, JGT32_K, 4, 64, taken=False)
    assert out is not None and out.regs[2].s.umax == 64
    wide = _machine(r2=UNKNOWN)
    alu(wide, _insn(MOV32, 4, 2))  # r4 is r2's low half: r2 may be 2^32 + 5
    out = _branch(wide, JGT_K, 4, 64, taken=False)
    assert out is not None and out.regs[2].s.umax > sc.U32
    assert sc.low32(out.regs[2].s).umax == 127  # the low half, as far as a tnum says


def test_a_spilled_copy_shares_the_link() -> None:
    m = _machine(r2=UNKNOWN)
    alu(m, _insn(MOV64, 4, 2))
    store(m, _insn(STX64, 10, 2, off=-8))
    out = _branch(m, JGT_K, 4, 30, taken=False)
    assert out is not None
    reload = _insn(LDX64, 5, 10, off=-8)
    assert load(out, reload, ENV).s.umax == 30
    # overwriting the slot (a 32-bit store) ends its part in the link
    store(m, _insn(0x63, 10, 2, off=-8))
    out = _branch(m, JGT_K, 4, 30, taken=False)
    assert out is not None and load(out, _insn(0x61, 5, 10, off=-8), ENV).s.umax == sc.U32


def _shift(m: Machine, op: int, pc: int) -> None:
    alu(m, _insn(op, 4, imm=32, pc=pc))


LSH64_K, RSH64_K = 0x67, 0x77


def test_a_zero_extended_copy_of_a_u32_stays_linked() -> None:
    m = _machine(r2=scalar(Scalar.urange(0, sc.U32)))
    alu(m, _insn(MOV64, 4, 2, pc=0))
    _shift(m, LSH64_K, 1)
    _shift(m, RSH64_K, 2)
    out = _branch(m, JGT_K, 4, 128, taken=False)
    assert out is not None and out.regs[2].s.umax == 128
    # of a 64-bit value the shifts keep the low half only: the check bounds that
    # (as far as a tnum holds it: 128 -> the low 8 bits), not r2
    m = _machine(r2=UNKNOWN)
    alu(m, _insn(MOV64, 4, 2, pc=0))
    _shift(m, LSH64_K, 1)
    _shift(m, RSH64_K, 2)
    out = _branch(m, JGT_K, 4, 128, taken=False)
    assert out is not None and out.regs[2].s.umax > sc.U32
    assert sc.low32(out.regs[2].s).umax == 255
    # and a bound on r2 bounds the zero-extended copy
    out = _branch(m, JGT_K, 2, (1 << 32) + 9, taken=False)
    assert out is not None and out.regs[4].s.umax == sc.U32
    out = _branch(out, JLT_K, 2, 1 << 32, taken=False)  # 2^32 <= r2 <= 2^32 + 9
    assert out is not None and (out.regs[4].s.umin, out.regs[4].s.umax) == (0, 9)
    # anything between the shifts (here r4 += 1), or shifts that are not one right
    # after the other: no link
    m = _machine(r2=scalar(Scalar.urange(0, sc.U32)))
    alu(m, _insn(MOV64, 4, 2, pc=0))
    _shift(m, LSH64_K, 1)
    alu(m, _insn(ADD64_K, 4, imm=1, pc=2))
    _shift(m, RSH64_K, 3)
    out = _branch(m, JGT_K, 4, 128, taken=False)
    assert out is not None and out.regs[2].s.umax == sc.U32
    # shifts apart (nothing written between) are still a zero extension: held as one
    m = _machine(r2=scalar(Scalar.urange(0, sc.U32)))
    alu(m, _insn(MOV64, 4, 2, pc=0))
    _shift(m, LSH64_K, 1)
    _shift(m, RSH64_K, 7)
    assert m.regs[4].link >> 64 & LINK_ZEXT32
    out = _branch(m, JGT_K, 4, 128, taken=False)
    assert out is not None and out.regs[2].s.umax == 128


def test_a_relinked_id_leaves_its_old_holders() -> None:
    """The same instruction run again (a loop) makes a new link under the same id:
    what held the old one is unlinked, not narrowed with the new copy."""
    m = _machine(r2=UNKNOWN, r6=UNKNOWN)
    alu(m, _insn(MOV64, 4, 2, pc=3))
    m.regs[2] = UNKNOWN  # r2 written: r4 alone holds the link
    alu(m, _insn(MOV64, 7, 6, pc=3))  # pc 3 again: r6 and r7 take its id
    assert m.regs[4].link == 0 and m.regs[6].link == m.regs[7].link != 0
    out = _branch(m, JGT_K, 7, 8, taken=False)
    assert out is not None and out.regs[4].s == sc.UNKNOWN and out.regs[6].s.umax == 8


def test_a_join_keeps_only_the_links_both_sides_have() -> None:
    link = link_of(5, 0)
    other = link_of(6, 0)
    val = Scalar.urange(0, 100)
    a = _machine(r2=linked(val, link), r4=linked(val, link), r6=linked(val, link)).freeze()
    b = _machine(r2=linked(val, link), r4=linked(val, link), r6=linked(val, other)).freeze()
    j = join_state(a, b)
    assert j.regs[2].link == j.regs[4].link == link and j.regs[6].link == 0
    assert leq_state(a, j) and leq_state(b, j) and not leq_state(j, a)
    m = Machine(j)
    assert refine_branch(m, _insn(JGT_K, 2, imm=10), False)
    assert m.regs[4].s.umax == 10 and m.regs[6].s.umax == 100


def test_a_known_value_carries_no_link() -> None:
    m = _machine(r2=scalar(Scalar.urange(0, 100)))
    alu(m, _insn(MOV64, 4, 2))
    out = _branch(m, JEQ_K, 4, 7, taken=True)
    assert out is not None and out.regs[2] == const(7) and out.regs[4] == const(7)
    # a contradiction met through the link is an infeasible edge
    m = _machine(r2=scalar(Scalar.urange(0, 100)))
    alu(m, _insn(MOV64, 4, 2))
    alu(m, _insn(ADD64_K, 4, imm=1000))
    assert _branch(m, JGT_K, 4, 2000, taken=True) is None


U64 = st.integers(0, sc.U64)
OPS = st.sampled_from([JGT_K, JSGT_K, JLT_K, JEQ_K, JNE_K, JGT32_K, 0x35, 0x75, 0xB5, 0xC5, 0xD5,
                       0x45, 0x16, 0x56, 0xA6, 0x66, 0xC6])


@settings(max_examples=400, deadline=None, database=None)
@given(U64, st.integers(-(1 << 40), 1 << 40), OPS, st.integers(-(1 << 31), (1 << 31) - 1),
       st.booleans(), st.booleans())
def test_narrowing_through_a_link_keeps_every_concrete_value(
        x: int, k: int, op: int, imm: int, small: bool, spill: bool) -> None:
    """r4 = r2 (+ k); a branch on r4: whatever it says of r2 holds of x."""
    start = scalar(Scalar.urange(0, sc.U32)) if small else UNKNOWN
    if small:
        x &= sc.U32
    m = _machine(r2=start)
    alu(m, _insn(MOV64 if not small else MOV32, 4, 2))
    if k:
        m.regs[3] = const(abs(k))
        alu(m, _insn(ADD64_X if k > 0 else SUB64_X, 4, 3))  # r4 = r2 + k, still linked
    if spill:
        store(m, _insn(STX64, 10, 2, off=-16))
    y = (x + k) & sc.U64
    insn = _insn(op, 4, off=1, imm=imm)
    taken = _concrete_jump(op, y, imm)
    out = Machine(m.freeze())
    assert refine_branch(out, insn, taken), "the concrete edge was found infeasible"
    assert _contains(out.regs[2].s, x) and _contains(out.regs[4].s, y)
    if spill:
        assert _contains(load(out, _insn(LDX64, 5, 10, off=-16), ENV).s, x)


def _contains(s: Scalar, v: int) -> bool:
    return (s.umin <= v <= s.umax and s.smin <= sc.to_s64(v) <= s.smax
            and v & ~s.tmask & sc.U64 == s.tval)


def _concrete_jump(op: int, a: int, imm: int) -> bool:
    jmp32 = op & 0x07 == 0x06
    b = imm & sc.U64
    if jmp32:
        a, b = a & sc.U32, b & sc.U32
        sa, sb = sc.to_s32(a), sc.to_s32(b)
    else:
        sa, sb = sc.to_s64(a), sc.to_s64(b)
    return {0x10: a == b, 0x50: a != b, 0x20: a > b, 0x30: a >= b, 0xA0: a < b,
            0xB0: a <= b, 0x60: sa > sb, 0x70: sa >= sb, 0xC0: sa < sb, 0xD0: sa <= sb,
            0x40: a & b != 0}[op & 0xF0]


def test_a_copy_shifted_back_is_the_value_before_the_left_shift() -> None:
    """r6 <<= 32; r5 = r6; r5 >>= 32 (clang's test of a counter's old value)."""
    m = _machine(r6=scalar(Scalar.urange(1, 255)))
    alu(m, _insn(MOV64, 4, 6, pc=0))
    alu(m, _insn(ADD64_K, 4, imm=-1, pc=1))  # r4 = r6 - 1, linked
    alu(m, _insn(LSH64_K, 6, imm=32, pc=2))
    alu(m, _insn(MOV64, 5, 6, pc=3))
    alu(m, _insn(RSH64_K, 5, imm=32, pc=4))
    out = _branch(m, JEQ_K, 5, 1, taken=False)  # r5 != 1: r4 = r5 - 1 is not 0
    assert out is not None and (out.regs[4].s.umin, out.regs[4].s.umax) == (1, 254)
    # a copy further on is the shifted value's: still linked (as a zero extension)
    m = _machine(r6=scalar(Scalar.urange(1, 255)))
    alu(m, _insn(MOV64, 4, 6, pc=0))
    alu(m, _insn(LSH64_K, 6, imm=32, pc=2))
    alu(m, _insn(MOV64, 5, 6, pc=4))
    alu(m, _insn(RSH64_K, 5, imm=32, pc=5))
    out = _branch(m, JEQ_K, 5, 1, taken=False)
    assert out is not None and (out.regs[4].s.umin, out.regs[4].s.umax) == (2, 255)
    # a sign extension (s>>= 32) of the shifted value: its check bounds the original
    m = _machine(r6=scalar(Scalar.urange(1, 255)))
    alu(m, _insn(MOV64, 4, 6, pc=0))
    alu(m, _insn(ADD64_K, 4, imm=-1, pc=1))
    alu(m, _insn(LSH64_K, 6, imm=32, pc=2))
    alu(m, _insn(0xC7, 6, imm=32, pc=3))  # r6 s>>= 32
    out = _branch(m, JSGT_K, 6, 1, taken=True)  # r6 s> 1: r4 = r6 - 1 >= 1
    assert out is not None and (out.regs[4].s.umin, out.regs[4].s.umax) == (1, 254)


@settings(max_examples=400, deadline=None, database=None)
@given(U64, st.integers(-(1 << 40), 1 << 40), OPS, st.integers(-(1 << 31), (1 << 31) - 1),
       st.sampled_from(["w", "shifts", "copy", "sext", "shl"]), st.booleans())
def test_narrowing_through_a_zero_extended_link_keeps_every_concrete_value(
        x: int, k: int, op: int, imm: int, how: str, on_wide: bool) -> None:
    """r4 = zext32(r2) (w4 = w2; r4 = r2; r4 <<= 32; r4 >>= 32; or r6 = r2; r6 <<= 32;
    r4 = r6; r4 >>= 32), r5 = r2 + k; a branch on r4 or on r5: whatever it says of
    every holder holds of x."""
    m = _machine(r2=UNKNOWN)
    if how == "shifts":
        alu(m, _insn(MOV64, 4, 2, pc=0))
        _shift(m, LSH64_K, 1)
        _shift(m, RSH64_K, 2)
    elif how == "shl":  # r4 = r2 << 32: a check on it says nothing of r2
        alu(m, _insn(MOV64, 4, 2, pc=0))
        _shift(m, LSH64_K, 1)
    elif how == "sext":  # r4 = sext32(r2): its low half is r2's too
        alu(m, _insn(MOV64, 4, 2, pc=0))
        _shift(m, LSH64_K, 1)
        alu(m, _insn(0xC7, 4, imm=32, pc=2))
    elif how == "copy":
        alu(m, _insn(MOV64, 6, 2, pc=0))
        alu(m, _insn(LSH64_K, 6, imm=32, pc=1))
        alu(m, _insn(MOV64, 4, 6, pc=2))
        alu(m, _insn(RSH64_K, 4, imm=32, pc=3))
    else:
        alu(m, _insn(MOV32, 4, 2, pc=0))
    alu(m, _insn(MOV64, 5, 2, pc=3))
    if k:
        m.regs[3] = const(abs(k))
        alu(m, _insn(ADD64_X if k > 0 else SUB64_X, 5, 3, pc=4))
    low = x & sc.U32
    values = {2: x, 4: (low - (1 << 32) if low >> 31 else low) & sc.U64 if how == "sext"
              else (x << 32) & sc.U64 if how == "shl" else low, 5: (x + k) & sc.U64}
    reg = 5 if on_wide else 4
    insn = _insn(op, reg, off=1, imm=imm)
    out = Machine(m.freeze())
    assert refine_branch(out, insn, _concrete_jump(op, values[reg], imm)), \
        "the concrete edge was found infeasible"
    for r, v in values.items():
        assert _contains(out.regs[r].s, v), (r, out.regs[r], v)

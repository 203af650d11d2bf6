"""The reference interpreter: hand-assembled programs with known counts, then the
corpus (every program runs on its hand-built worst and best input, and random
inputs never leave the [best, worst] bracket the cases claim)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from bpfc import PROGS, compile_bpf
from cases import CASES, NO_PKT, FileCase, inputs, skb
from hypothesis import HealthCheck, given, settings

from bpflint.interp.refinterp import (
    Input,
    InterpError,
    StepCapExceeded,
    World,
    run,
    run_full,
    run_function,
)
from bpflint.isa.insn import decode
from bpflint.obj.model import BpfObject, Function, MapDef, Program, Reloc
from bpflint.obj.reader import load_object

MASK64 = (1 << 64) - 1
NO_INPUT = Input()


# -- a tiny assembler -----------------------------------------------------------
def ins(op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhI", op, (src << 4) | dst, off, imm & 0xFFFFFFFF)


def ld64(dst: int, value: int, src: int = 0) -> bytes:
    return (ins(0x18, dst, src, 0, value & 0xFFFFFFFF)
            + ins(0, 0, 0, 0, (value >> 32) & 0xFFFFFFFF))


EXIT = ins(0x95)


def mov(dst: int, imm: int) -> bytes:
    return ins(0xB7, dst, 0, 0, imm)


def call(helper_id: int) -> bytes:
    return ins(0x85, 0, 0, 0, helper_id)


def func(name: str, code: bytes, section: str = "xdp", start: int = 0,
         relocs: dict[int, Reloc] | None = None) -> Function:
    insns = tuple(i._replace(pc=i.pc + start) for i in decode(code))
    relocs = relocs or {}
    insns = tuple(i.with_meta(reloc=relocs[i.pc - start]) if i.pc - start in relocs else i
                  for i in insns)
    return Function(name, section, start, insns, True, len(code) // 8)


def obj_of(*funcs: Function, programs: tuple[str, ...] = ("main",),
           maps: tuple[MapDef, ...] = (), prog_type: str = "xdp") -> BpfObject:
    by_name = {f.name: f for f in funcs}
    progs = tuple(Program(n, by_name[n].section, prog_type, "", by_name[n].key)
                  for n in programs)
    return BpfObject("hand.o", {f.key: f for f in funcs}, progs, {m.name: m for m in maps},
                     has_btf=False)


def run1(code: bytes, inp: Input = NO_INPUT, **kw: int) -> tuple[int, int]:
    return run_full(obj_of(func("main", code)), "main", inp, **kw)


# -- counting -------------------------------------------------------------------
def test_straight_line_counts_every_instruction() -> None:
    assert run1(mov(0, 1) + ins(0x07, 0, 0, 0, 2) + EXIT) == (3, 3)


def test_ld_imm64_counts_once() -> None:
    assert run1(ld64(0, 0x1_2345_6789) + EXIT) == (2, 0x1_2345_6789)


def test_counted_loop() -> None:
    # r1 = 0; loop: r1 += 1; if r1 < 10 goto loop; r0 = r1; exit
    code = mov(1, 0) + ins(0x07, 1, 0, 0, 1) + ins(0xA5, 1, 0, -2, 10) + ins(0xBF, 0, 1) + EXIT
    assert run1(code) == (1 + 10 * 2 + 2, 10)


def test_bpf_to_bpf_call_counts_callee_and_its_exit_and_saves_r6() -> None:
    main_code = mov(6, 40) + mov(1, 5) + ins(0x85, 0, 1, 0, 2) + ins(0x0F, 0, 6) + EXIT
    sub_code = mov(6, 1000) + ins(0xBF, 0, 1) + ins(0x07, 0, 0, 0, 1) + EXIT
    main = func("main", main_code, relocs={2: Reloc("call", "sub", func=(".text", 0))})
    sub = func("sub", sub_code, section=".text")
    count, r0 = run_full(obj_of(main, sub), "main", Input())
    assert (count, r0) == (5 + 4, 46)


def test_helper_call_counts_one_and_returns_the_world_choice() -> None:
    code = call(5) + EXIT  # ktime_get_ns
    assert run1(code, Input(world=World(scalars=(12345,)))) == (2, 12345)


def test_unknown_helper_is_a_clear_error() -> None:
    with pytest.raises(InterpError, match="unmodelled helper .*id 9999"):
        run1(call(9999) + EXIT)


def test_step_cap_stops_an_infinite_loop() -> None:
    with pytest.raises(StepCapExceeded):
        run1(ins(0x05, 0, 0, -1) + EXIT, step_cap=1000)


# -- ALU semantics (RFC 9669) ----------------------------------------------------
def test_alu32_zero_extends() -> None:
    code = ins(0xB4, 0, 0, 0, -1) + ins(0x07, 0, 0, 0, 1) + EXIT  # w0 = -1; r0 += 1
    assert run1(code)[1] == 1 << 32


@pytest.mark.parametrize(("op", "off", "a", "b", "want"), [
    (0x3F, 0, 7, 0, 0),  # unsigned div by zero -> 0
    (0x9F, 0, 7, 0, 7),  # unsigned mod by zero -> dst
    (0x3F, 1, -7, 2, -3),  # sdiv truncates toward zero
    (0x9F, 1, -7, 2, -1),  # smod: sign of the dividend
    (0x3F, 1, -(1 << 63), -1, -(1 << 63)),  # INT64_MIN / -1 wraps
    (0x9F, 1, -(1 << 63), -1, 0),
    (0x9F, 1, -7, 0, -7),  # smod by zero -> dst
    (0xCF, 0, -16, 2, -4),  # arsh
])
def test_division_and_shift_rules(op: int, off: int, a: int, b: int, want: int) -> None:
    code = ld64(0, a & MASK64) + ld64(1, b & MASK64) + ins(op, 0, 1, off) + EXIT
    assert run1(code)[1] == want & MASK64


def test_alu32_sdiv_and_movsx() -> None:
    sdiv32 = ld64(0, 0xFFFF_FFF9) + mov(1, 2) + ins(0x3C, 0, 1, 1) + EXIT  # w0 s/= w1
    assert run1(sdiv32)[1] == (-3) & 0xFFFFFFFF
    movsx8 = mov(1, 0x80) + ins(0xBF, 0, 1, 8) + EXIT  # r0 = (s8)r1
    assert run1(movsx8)[1] == (-128) & MASK64
    movsx32 = ld64(1, 0x8000_0000) + ins(0xBF, 0, 1, 32) + EXIT
    assert run1(movsx32)[1] == (-(1 << 31)) & MASK64


def test_byte_swaps() -> None:
    value = 0x1122_3344_5566_7788
    assert run1(ld64(0, value) + ins(0xDC, 0, 0, 0, 16) + EXIT)[1] == 0x8877  # be16
    assert run1(ld64(0, value) + ins(0xD4, 0, 0, 0, 32) + EXIT)[1] == 0x5566_7788  # le32
    assert run1(ld64(0, value) + ins(0xD7, 0, 0, 0, 64) + EXIT)[1] == 0x8877_6655_4433_2211


def test_jmp32_compares_low_halves_and_signed_compares() -> None:
    # r1 = 0x1_0000_0005: as w1 it is 5 (< 6), as r1 it is not
    code = ld64(1, 0x1_0000_0005) + mov(0, 0) + ins(0xA6, 1, 0, 1, 6) + EXIT + mov(0, 1) + EXIT
    assert run1(code)[1] == 1
    code = mov(1, -1) + mov(0, 0) + ins(0xC5, 1, 0, 1, 0) + EXIT + mov(0, 1) + EXIT  # s< 0
    assert run1(code)[1] == 1


def test_gotol_jumps_by_imm() -> None:
    code = mov(0, 1) + ins(0x06, 0, 0, 0, 1) + mov(0, 2) + EXIT
    assert run1(code) == (3, 1)


def test_ldsx_sign_extends() -> None:
    code = (mov(1, 0xF0) + ins(0x73, 10, 1, -8)  # *(u8 *)(r10 - 8) = r1
            + ins(0x91, 0, 10, -8) + EXIT)  # r0 = *(s8 *)(r10 - 8)
    assert run1(code)[1] == (-16) & MASK64


def test_atomics() -> None:
    base = mov(1, 10) + ins(0x7B, 10, 1, -8)  # *(u64 *)(fp - 8) = 10
    fetch_add = base + mov(2, 5) + ins(0xDB, 10, 2, -8, 0x01) + ins(0x79, 0, 10, -8) \
        + ins(0x0F, 0, 2) + EXIT  # r0 = new value (15) + fetched old (10)
    assert run1(fetch_add)[1] == 25
    xchg = base + mov(2, 7) + ins(0xDB, 10, 2, -8, 0xE1) + ins(0xBF, 0, 2) + EXIT
    assert run1(xchg)[1] == 10
    cmpxchg_hit = base + mov(0, 10) + mov(2, 99) + ins(0xDB, 10, 2, -8, 0xF1) \
        + ins(0x79, 0, 10, -8) + EXIT
    assert run1(cmpxchg_hit)[1] == 99
    cmpxchg_miss = base + mov(0, 11) + mov(2, 99) + ins(0xDB, 10, 2, -8, 0xF1) + EXIT
    assert run1(cmpxchg_miss)[1] == 10  # r0 gets the old value, memory unchanged


def test_ld_abs_reads_big_endian_and_aborts_outside_the_packet() -> None:
    code = ins(0x28, 0, 0, 0, 12) + EXIT  # r0 = ntohs(*(u16 *)(skb->data + 12))
    prog = obj_of(func("main", code, section="socket"), prog_type="socket_filter")
    assert run_full(prog, "main", Input(ctx=bytes(192), packet=bytes(12) + b"\x08\x00")) \
        == (2, 0x0800)
    assert run_full(prog, "main", Input(ctx=bytes(192), packet=bytes(13))) == (1, 0)


def test_xdp_packet_pointers_come_from_the_context() -> None:
    # r0 = data_end - data
    code = ins(0x61, 2, 1, 0) + ins(0x61, 0, 1, 4) + ins(0x1F, 0, 2) + EXIT
    assert run1(code, Input(ctx=bytes(24), packet=bytes(77)))[1] == 77


# -- may_goto, callbacks, iterators, tail calls ----------------------------------
def test_may_goto_jumps_once_the_budget_is_spent() -> None:
    # loop: r0 += 1; may_goto +1; ja loop; exit
    code = mov(0, 0) + ins(0x07, 0, 0, 0, 1) + ins(0xE5, 0, 0, 1) + ins(0x05, 0, 0, -3) + EXIT
    count, r0 = run1(code, may_goto_budget=4)
    assert r0 == 5
    assert count == 1 + 4 * 3 + 2 + 1


def _loop_prog(nr_loops: int, cb_code: bytes) -> BpfObject:
    main_code = (mov(1, nr_loops) + ld64(2, 0, src=4) + mov(3, 0) + mov(4, 0)
                 + call(181) + EXIT)  # bpf_loop(nr, cb, NULL, 0)
    main = func("main", main_code, relocs={1: Reloc("func_ptr", "cb", func=(".text", 0))})
    return obj_of(main, func("cb", cb_code, section=".text"))


def test_bpf_loop_counts_the_callback_per_round() -> None:
    prog = _loop_prog(10, mov(0, 0) + EXIT)
    assert run_full(prog, "main", Input()) == (6 + 10 * 2, 10)


def test_bpf_loop_stops_when_the_callback_returns_1() -> None:
    # cb: r0 = 0; if r1 < 3 goto exit; r0 = 1; exit -> stops in round index 3
    prog = _loop_prog(10, mov(0, 0) + ins(0xA5, 1, 0, 1, 3) + mov(0, 1) + EXIT)
    assert run_full(prog, "main", Input()) == (6 + 3 * 3 + 4, 4)


def test_iter_num_kfuncs_iterate_the_range() -> None:
    # bpf_iter_num_new(fp-8, 2, 7); while (next(fp-8)) r6++; destroy; r0 = r6
    kf = {n: Reloc("kfunc", n) for n in ("bpf_iter_num_new", "bpf_iter_num_next",
                                         "bpf_iter_num_destroy")}
    code = (mov(6, 0) + ins(0xBF, 1, 10) + ins(0x07, 1, 0, 0, -8) + mov(2, 2) + mov(3, 7)
            + ins(0x85, 0, 1, 0, -1)  # 5: new
            + ins(0xBF, 1, 10) + ins(0x07, 1, 0, 0, -8) + ins(0x85, 0, 1, 0, -1)  # 8: next
            + ins(0x15, 0, 0, 2, 0) + ins(0x07, 6, 0, 0, 1) + ins(0x05, 0, 0, -6)
            + ins(0xBF, 1, 10) + ins(0x07, 1, 0, 0, -8) + ins(0x85, 0, 1, 0, -1)  # 14
            + ins(0xBF, 0, 6) + EXIT)
    main = func("main", code, relocs={5: kf["bpf_iter_num_new"], 8: kf["bpf_iter_num_next"],
                                      14: kf["bpf_iter_num_destroy"]})
    count, r0 = run_full(obj_of(main), "main", Input())
    assert r0 == 5
    assert count == 6 + 5 * 6 + 4 + 5


def _tail_call_obj() -> BpfObject:
    prog_array = MapDef("jmp", 3, "prog_array", 4, 4, 4, prog_slots=((1, "b"),))
    # a: r2 = &jmp; r3 = 1; tail_call(ctx, jmp, 1); r0 = 7; exit
    a_code = ld64(2, 0, src=1) + mov(3, 1) + call(12) + mov(0, 7) + EXIT
    a = func("a", a_code, relocs={0: Reloc("map", "jmp", map="jmp")})
    b = func("b", mov(0, 3) + EXIT, start=6)
    return obj_of(a, b, programs=("a", "b"), maps=(prog_array,))


def test_tail_call_continues_the_count_in_the_target() -> None:
    assert run_full(_tail_call_obj(), "a", Input()) == (3 + 2, 3)


def test_failed_tail_call_falls_through() -> None:
    assert run_full(_tail_call_obj(), "a", Input(world=World(tail_call_fails=True))) == (5, 7)


def test_map_lookup_follows_the_world() -> None:
    hmap = MapDef("h", 1, "hash", 4, 8, 16)
    # *(u32 *)(fp-4) = 0; r0 = lookup(&h, fp-4); if r0 == 0 goto out; r0 = *(u64 *)r0; out: exit
    code = (ins(0x62, 10, 0, -4, 0) + ld64(1, 0, src=1) + ins(0xBF, 2, 10)
            + ins(0x07, 2, 0, 0, -4) + call(1) + ins(0x15, 0, 0, 1, 0) + ins(0x79, 0, 0, 0)
            + EXIT)
    prog = obj_of(func("main", code, relocs={1: Reloc("map", "h", map="h")}), maps=(hmap,))
    assert run_full(prog, "main", Input(world=World(lookup_hits=(False,)))) == (7, 0)
    hit = run_full(prog, "main", Input(world=World(lookup_hits=(True,), value_fill=1)))
    assert hit == (8, 0x0101010101010101)


# -- the corpus -----------------------------------------------------------------
_OBJECTS: dict[str, BpfObject] = {}


def corpus_object(case: FileCase) -> BpfObject:
    if case.file not in _OBJECTS:
        _OBJECTS[case.file] = load_object(compile_bpf(PROGS / case.file, case.flags))
    return _OBJECTS[case.file]


def test_every_source_has_a_case() -> None:
    sources = {p.name for p in Path(PROGS).glob("*.bpf.c")}
    assert sources == {c.file for c in CASES}
    assert len(sources) >= 35


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file)
def test_case_programs_match_the_object(case: FileCase) -> None:
    obj = corpus_object(case)
    assert {p.name for p in obj.programs} == {p.name for p in case.programs}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file)
def test_worst_input_costs_at_least_the_best(case: FileCase) -> None:
    obj = corpus_object(case)
    for prog in case.programs:
        assert run(obj, prog.name, prog.worst) >= run(obj, prog.name, prog.best) > 0


_FUZZ_STEP_CAP = 200_000  # far above every bounded corpus program


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file)
def test_random_inputs_stay_within_the_hand_built_bracket(case: FileCase) -> None:
    """The hand-built inputs really are extreme: no drawn input beats them.

    Upper check only where the case claims tightness (max_ratio set)."""
    obj = corpus_object(case)
    bracket = {p.name: (run(obj, p.name, p.best), run(obj, p.name, p.worst))
               for p in case.programs}

    @settings(max_examples=15, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(inputs(case.kind))
    def check(inp: Input) -> None:
        for prog in case.programs:
            try:
                count = run(obj, prog.name, inp, step_cap=_FUZZ_STEP_CAP)
            except StepCapExceeded:
                assert prog.max_ratio is None, f"{prog.name} ran away on {inp}"
                continue
            low, high = bracket[prog.name]
            assert count >= low, f"{prog.name}: {count} below best {low} on {inp}"
            if prog.max_ratio is not None:
                assert count <= high, f"{prog.name}: {count} above worst {high} on {inp}"

    check()


def test_known_corpus_counts() -> None:
    """Pinned counts that follow from the source alone."""
    obj = corpus_object(next(c for c in CASES if c.file == "bpf_loop.bpf.c"))
    const = run(obj, "bpf_loop_const", next(c for c in CASES
                                            if c.file == "bpf_loop.bpf.c").programs[0].worst)
    early0 = run(obj, "bpf_loop_early", Input(ctx=bytes(24)))
    # bpf_loop(32, add_cb): the caller's 16 slots minus ld_imm64 halves, plus 32 rounds
    add_cb = obj.function_named("add_cb")
    assert add_cb is not None
    assert const == 16 - 2 + 32 * len(add_cb.insns)
    # limit 0: stop_cb returns 1 in its first round
    assert early0 < const


def test_timer_callback_runs_as_its_own_entry() -> None:
    """arm_timer's count excludes the callback; run alone, the callback's loop of 8
    rounds is its whole cost."""
    obj = corpus_object(next(c for c in CASES if c.file == "timer.bpf.c"))
    callback = run_function(obj, "timer_fired", NO_INPUT)
    arming = run(obj, "arm_timer", next(c for c in CASES
                                         if c.file == "timer.bpf.c").programs[0].worst)
    assert callback > 8 * 3  # at least load, add, store per round
    assert arming == 21  # lookup, init, set_callback, start: no callback rounds in it


def _tbl(*keys: int) -> tuple[tuple[str, bytes, bytes], ...]:
    return tuple(("tbl", struct.pack("<I", k), struct.pack("<Q", 5)) for k in keys)


def test_for_each_over_a_hash_map_walks_the_elements_it_holds() -> None:
    """The walk meets exactly what the map holds (any keys), not keys 0..n-1."""
    obj = load_object(compile_bpf(PROGS / "for_each_map.bpf.c"))

    def count(world: World) -> int:  # find_cb runs once per element (mark: no stop)
        return run(obj, "each_hash", skb(NO_PKT, mark=0xFFFFFFFF, world=world))

    empty = count(World())
    per_element = count(World(hash_elems=1)) - empty
    assert per_element > 0
    held = count(World(map_contents=_tbl(7, 1000, 0xFFFFFFFF)))
    assert held == empty + 3 * per_element
    # hash_elems adds elements beyond those held, up to the map's max_entries (32)
    assert count(World(map_contents=_tbl(7, 1000), hash_elems=5)) == empty + 5 * per_element
    assert count(World(map_contents=_tbl(1, 2), hash_elems=1 << 20)) == empty + 32 * per_element

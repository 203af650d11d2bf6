"""Cases the C-level fuzzer (tests/cgen_*.py, scripts/fuzz_c.py) found, as C programs
in tests/progs/cfuzz: each bounded as the kernel verifier says, with every drawn run inside
[insns.min, insns.max]."""

from __future__ import annotations

import functools
import struct

import pytest
from bpfc import PROGS, compile_bpf, needs_clang

from bpflint.cost.engine import ASYNC_CALLBACK_TYPE, analyze_async_callbacks, analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.interp.refinterp import Input, World, run, run_full, run_function
from bpflint.obj.model import BpfObject
from bpflint.obj.reader import load_object
from bpflint.results import ProgramResult

XDP_CTX = struct.pack("<IIIIII", 0, 0, 0, 1, 0, 0)


@needs_clang
@pytest.mark.parametrize("rounds", [0, 1, 8, 9, 255])
@pytest.mark.parametrize("byte", [0x00, 0x01, 0xFF])
def test_a_bpf_for_around_a_call_free_inner_loop_is_bounded(rounds: int, byte: int) -> None:
    obj = load_object(compile_bpf(PROGS / "cfuzz" / "iter_inner_loop.bpf.c"))
    (program,) = obj.programs
    result = analyze_program(obj, program, None, AnalysisOptions())
    assert result.bounded and result.insns_max is not None and result.insns_min is not None
    packet = bytes([byte]) * 64
    count = run(obj, program.name, Input(ctx=XDP_CTX, packet=packet,
                                         world=World(rodata=(("rounds", rounds),))))
    assert result.insns_min <= count <= result.insns_max
    if rounds == 255 and byte == 0x01:  # the worst input: the bound is close to it
        assert result.insns_max <= 1.1 * count, (result.insns_max, count)


def _udp_packet(dport: int) -> bytes:
    eth = bytes(12) + b"\x08\x00"
    ip = bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]) + bytes(8)
    return eth + ip + struct.pack(">HHHH", 4000, dport, 8, 0) + bytes(16)


@needs_clang
@pytest.mark.parametrize("rounds", [0, 1, 2, 127, 128, 255])
@pytest.mark.parametrize("dport", [812, 813])
def test_a_signed_counter_counting_down_from_a_loader_set_byte_is_bounded(
        rounds: int, dport: int) -> None:
    """clang's r <<= 32; r += -1 << 32; r s>>= 32 is the counter's decrement."""
    obj = load_object(compile_bpf(PROGS / "cfuzz" / "signed_down_counter.bpf.c"))
    (program,) = obj.programs
    result = analyze_program(obj, program, None, AnalysisOptions())
    assert result.bounded and result.insns_max is not None and result.insns_min is not None
    count = run(obj, program.name, Input(ctx=XDP_CTX, packet=_udp_packet(dport),
                                         world=World(rodata=(("rounds", rounds),))))
    assert result.insns_min <= count <= result.insns_max
    if rounds == 255 and dport == 812:  # the worst input: the bound is close to it
        assert result.insns_max <= 1.1 * count, (result.insns_max, count)


STR_WORDS = [b"", b"abc", b"abd", b"ab", b"x" * 31]


def _str_run(obj: object, word: bytes, size: int) -> tuple[int, int]:
    world = World(reads_fail=True, reads_real=True, rodata=(("str_size", size),),
                  map_contents=(("strs", bytes(4), word.ljust(32, b"\0")),))
    return run_full(obj, "prog", Input(ctx=bytes(48), world=world))  # type: ignore[arg-type]


def _str_r0(word: bytes, size: int) -> int:
    """What the kernel returns: n + 100 on a match, plus the second read's length."""
    second = min(len(word) + 1, size & 63) if size & 63 else 0
    return len(word) + 1 + (100 if word == b"abc" else 0) + (second << 8)


@needs_clang
@pytest.mark.parametrize("size", [0, 2, 32])
@pytest.mark.parametrize("word", STR_WORDS)
def test_a_string_read_from_a_map_value_is_copied_and_compared(word: bytes, size: int) -> None:
    """The interpreter copies what bpf_probe_read_kernel_str reads from memory the run
    holds (World.reads_real), returns its length with the NUL (0 for a size of 0), as
    the kernel, and models bpf_strncmp; the runs stay inside the bounds."""
    obj = load_object(compile_bpf(PROGS / "cfuzz" / "str_reads.bpf.c"))
    (program,) = obj.programs
    result = analyze_program(obj, program, None, AnalysisOptions())
    assert result.bounded and result.insns_max is not None and result.insns_min is not None
    count, r0 = _str_run(obj, word, size)
    assert r0 == _str_r0(word, size)
    longer = _str_run(obj, b"x" * 31, size)[0]
    assert (count < longer) == (len(word) < 31)
    assert result.insns_min <= count <= result.insns_max


@pytest.mark.kernel
@needs_clang
def test_the_kernel_returns_what_the_interpreter_does_for_string_reads() -> None:
    """BPF_PROG_TEST_RUN of the same program, the string in the map, the size set at
    load as libbpf would: the return values the interpreter test above expects."""
    from cgen_run import Libbpf, rodata_bytes

    from bpflint.kernel import syscall as sc

    ok, why = sc.bpf_usable()
    if not ok:
        pytest.skip(f"bpf() is not usable here: {why}")
    path = compile_bpf(PROGS / "cfuzz" / "str_reads.bpf.c")
    obj = load_object(path)
    libbpf = Libbpf()
    for size in (0, 2, 32):
        for word in STR_WORDS:
            loaded = libbpf.load(path, rodata_bytes(obj, (("str_size", size),)))
            assert not isinstance(loaded, str), loaded
            try:
                fd = libbpf.lib.bpf_map__fd(libbpf.lib.bpf_object__find_map_by_name(
                    loaded.obj, b"strs"))
                sc.map_update(fd, bytes(4), word.ljust(32, b"\0"))
                got = sc.prog_test_run(loaded.fd, data=b"", ctx=bytes(48)).retval
            finally:
                loaded.close()
            assert got == _str_r0(word, size) == _str_run(obj, word, size)[1], (word, size)


def _skb_ctx(length: int) -> bytes:
    ctx = bytearray(192)
    struct.pack_into("<I", ctx, 0, length)  # __sk_buff.len
    return bytes(ctx)


@needs_clang
@pytest.mark.parametrize("n", [0, 1, 16, 29, 200])
@pytest.mark.parametrize("fill", [0x00, 0x06, 0x01])
def test_a_counter_added_to_a_step_register_is_an_induction_variable(n: int, fill: int) -> None:
    """r2 = 1 or 2; r2 += i; i = r2 is i += step (commuted by clang)."""
    obj = load_object(compile_bpf(PROGS / "cfuzz" / "commuted_step.bpf.c"))
    (program,) = obj.programs
    result = analyze_program(obj, program, None, AnalysisOptions())
    assert result.bounded and result.insns_max is not None and result.insns_min is not None
    packet = bytearray([fill]) * 64
    packet[35] = n
    count = run(obj, program.name, Input(ctx=_skb_ctx(len(packet)), packet=bytes(packet)))
    assert result.insns_min <= count <= result.insns_max
    if n >= 29 and fill == 0x00:  # 15 rounds (acc & 9 steps by 2); the bound: 29 of 1
        assert result.insns_max <= 2.5 * count, (result.insns_max, count)


@needs_clang
@pytest.mark.parametrize("mode", [0, 1, 2, 3])
@pytest.mark.parametrize("fill", [0x00, 0x06, 0xFF])
def test_a_callback_chosen_before_a_join_is_priced_at_the_dearest_candidate(
        mode: int, fill: int) -> None:
    """clang merges bpf_for_each_map_elem(&arr, dear, ...) and (&arr, cheap, ...) into
    one call after the join: r2 holds one of two function addresses."""
    obj = load_object(compile_bpf(PROGS / "cfuzz" / "callback_after_join.bpf.c"))
    (program,) = obj.programs
    result = analyze_program(obj, program, None, AnalysisOptions())
    assert result.bounded and result.insns_max is not None and result.insns_min is not None
    count = run(obj, program.name, Input(ctx=XDP_CTX, packet=bytes(64), world=World(
        rodata=(("mode", mode),), value_fill=fill)))
    assert result.insns_min <= count <= result.insns_max
    if mode & 1:  # the dear callback over all 8 elements (no value is 7): the worst case
        assert result.insns_max <= 1.1 * count, (result.insns_max, count)


@needs_clang
@pytest.mark.parametrize("low", [0, 1, 14, 15, 16, 0xFFFFFFFF])
@pytest.mark.parametrize("high", [0, 1, 0xFFFFFFFF])
@pytest.mark.parametrize("n", [3, 0x1B, 4])
def test_a_zero_extended_copy_bounds_the_low_half_it_checked(low: int, high: int,
                                                              n: int) -> None:
    """n = min((__u32)x, 15) of a 64-bit x: clang checks a shifted copy of x."""
    obj = load_object(compile_bpf(PROGS / "cfuzz" / "zext_copy_bound.bpf.c"))
    (program,) = obj.programs
    result = analyze_program(obj, program, None, AnalysisOptions())
    assert result.bounded and result.insns_max is not None and result.insns_min is not None
    x = (high << 32 | low) ^ n ^ 16  # what the program computes x from
    packet = struct.pack("<QQ", x, n) + bytes(48)
    count = run(obj, program.name, Input(ctx=XDP_CTX, packet=packet))
    assert result.insns_min <= count <= result.insns_max
    if n & 7 == 3 and low >= 15:  # 15 rounds: the worst case
        assert result.insns_max <= 1.1 * count, (result.insns_max, count)


@needs_clang
@pytest.mark.parametrize("knob", [0, 1, 9, 18, 255])
@pytest.mark.parametrize("n", [1, 9, 2, 233])
@pytest.mark.parametrize("a", [0, 10])
def test_a_counter_down_from_a_loader_set_byte_in_a_subprogram_is_bounded(
        knob: int, n: int, a: int) -> None:
    """r6 <<= 32; r5 = r6; r5 >>= 32 is the counter's old value, zero-extended."""
    obj = load_object(compile_bpf(PROGS / "cfuzz" / "knob_down_sub.bpf.c"))
    (program,) = obj.programs
    result = analyze_program(obj, program, None, AnalysisOptions())
    assert result.bounded and result.insns_max is not None and result.insns_min is not None
    ctx = struct.pack("<IIIIII", 0, 0, 0, n, a, 0)  # ingress_ifindex, rx_queue_index
    count = run(obj, program.name, Input(ctx=ctx, packet=bytes(64),
                                         world=World(rodata=(("knob_small", knob),))))
    assert result.insns_min <= count <= result.insns_max
    if (knob, n, a) == (255, 1, 0):  # the worst input; (i & 8) takes the dear side in
        # half the rounds, the bound in every one (7,561 for 5,521 executed)
        assert result.insns_max <= 1.4 * count, (result.insns_max, count)


@functools.cache
def _nest() -> tuple[BpfObject, ProgramResult]:
    obj = load_object(compile_bpf(PROGS / "cfuzz" / "equality_exit_nest.bpf.c"))
    (program,) = obj.programs
    return obj, analyze_program(obj, program, None, AnalysisOptions(max_steps=2_500_000))


@needs_clang
@pytest.mark.parametrize(("knob", "n", "a"), [
    (0, 300, 0), (1, 300, 0), (66, 300, 0), (176, 0, 0), (255, 0, 73), (255, 300, 73),
    (255, 300, 0)])
def test_a_nest_around_an_equality_exit_is_bounded_within_a_small_budget(
        knob: int, n: int, a: int) -> None:
    """while (i3 < i2 + 1) in a loop down from a __u8: clang tests i3 + 1 != i2 + 1.
    It took more than the default 5,000,000 steps; half of them are plenty now."""
    obj, result = _nest()
    assert result.bounded and result.insns_max is not None and result.insns_min is not None
    ctx = struct.pack("<IIIIII", 0, 0, 0, n, a, 0)  # ingress_ifindex, rx_queue_index
    count = run(obj, result.name, Input(ctx=ctx, packet=bytes(64),
                                        world=World(rodata=(("knob_u8", knob),))))
    assert result.insns_min <= count <= result.insns_max
    if (knob, n, a) == (255, 300, 0):  # the worst input; the inner loop runs i2 + 1
        # times, the bound prices its most (256) in every outer round: about twice
        assert result.insns_max <= 2.2 * count, (result.insns_max, count)


@needs_clang
def test_timer_callbacks_chosen_before_a_join_are_all_priced() -> None:
    """bpf_timer_set_callback after a join, r2 from either path: both callbacks."""
    obj = load_object(compile_bpf(PROGS / "cfuzz" / "timer_after_join.bpf.c"))
    callbacks = analyze_async_callbacks(obj, None, AnalysisOptions())
    assert sorted(r.name for r in callbacks) == ["fast_fired", "slow_fired"]
    for result in callbacks:
        assert result.type == ASYNC_CALLBACK_TYPE and result.section == "tc"
        assert result.insns_min is not None and result.insns_max is not None
        count = run_function(obj, result.name, Input(b"", world=World(value_fill=1)))
        assert result.insns_min <= count <= result.insns_max


@needs_clang
@pytest.mark.parametrize(("n", "start"), [(0, 0), (1, 5), (63, 0), (63, 200), (7, 7)])
def test_an_equality_exit_bounds_a_counter_only_from_below_its_end(n: int,
                                                                     start: int) -> None:
    obj = load_object(compile_bpf(PROGS / "cfuzz" / "equality_exits.bpf.c"))
    results = {p.name: analyze_program(obj, p, None, AnalysisOptions()) for p in obj.programs}
    from_zero, anywhere = results["eq_from_zero"], results["eq_from_anywhere"]
    assert not anywhere.bounded  # i = 64 misses every n < 64 until it wraps around
    assert from_zero.bounded and from_zero.insns_max is not None
    assert from_zero.insns_min is not None
    packet = bytes([n, start]) + bytes(62)
    count = run(obj, "eq_from_zero", Input(ctx=XDP_CTX, packet=packet))
    assert from_zero.insns_min <= count <= from_zero.insns_max
    if n == 63:  # the most rounds
        assert from_zero.insns_max <= 1.1 * count, (from_zero.insns_max, count)


@needs_clang
@pytest.mark.parametrize(("n", "knob"), [(0, 255), (1, 0), (3, 18), (8, 255), (200, 255)])
def test_a_repeat_inside_a_repeat_leaves_the_outer_iterator_its_count(n: int,
                                                                      knob: int) -> None:
    obj = load_object(compile_bpf(PROGS / "cfuzz" / "nested_repeat.bpf.c"))
    (program,) = obj.programs
    result = analyze_program(obj, program, None, AnalysisOptions())
    assert result.bounded and result.insns_max is not None and result.insns_min is not None
    packet = bytes(49) + bytes([n]) + bytes(14)
    count = run(obj, program.name, Input(ctx=XDP_CTX, packet=packet,
                                         world=World(rodata=(("knob_small", knob),))))
    assert result.insns_min <= count <= result.insns_max
    if (n, knob) == (8, 255):  # the worst input: the bound is close to it
        assert result.insns_max <= 1.1 * count, (result.insns_max, count)

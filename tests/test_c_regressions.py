"""Cases the C-level fuzzer (tests/cgen_*.py, scripts/fuzz_c.py) found, as C programs
in tests/progs/cfuzz: each bounded as the kernel verifier says, with every drawn run inside
[insns.min, insns.max]."""

from __future__ import annotations

import struct

import pytest
from bpfc import PROGS, compile_bpf, needs_clang

from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.interp.refinterp import Input, World, run, run_full
from bpflint.obj.reader import load_object

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

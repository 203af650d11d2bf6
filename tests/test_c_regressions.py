"""Cases the C-level fuzzer (tests/cgen_*.py, scripts/fuzz_c.py) found, as C programs
in tests/progs: each bounded as the kernel verifier says, with every drawn run inside
[insns.min, insns.max]."""

from __future__ import annotations

import struct

import pytest
from bpfc import PROGS, compile_bpf, needs_clang

from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.interp.refinterp import Input, World, run
from bpflint.obj.reader import load_object

XDP_CTX = struct.pack("<IIIIII", 0, 0, 0, 1, 0, 0)


@needs_clang
@pytest.mark.parametrize("rounds", [0, 1, 8, 9, 255])
@pytest.mark.parametrize("byte", [0x00, 0x01, 0xFF])
def test_a_bpf_for_around_a_call_free_inner_loop_is_bounded(rounds: int, byte: int) -> None:
    obj = load_object(compile_bpf(PROGS / "iter_inner_loop.bpf.c"))
    (program,) = obj.programs
    result = analyze_program(obj, program, None, AnalysisOptions())
    assert result.bounded and result.insns_max is not None and result.insns_min is not None
    packet = bytes([byte]) * 64
    count = run(obj, program.name, Input(ctx=XDP_CTX, packet=packet,
                                         world=World(rodata=(("rounds", rounds),))))
    assert result.insns_min <= count <= result.insns_max
    if rounds == 255 and byte == 0x01:  # the worst input: the bound is close to it
        assert result.insns_max <= 1.1 * count, (result.insns_max, count)

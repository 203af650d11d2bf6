"""Size arguments of helpers: priced up to what the kernel verifier lets through.

tests/progs/sizes/sized_helpers.bpf.c checks each length through a copy of its
register. The verifier links the copy to the original (reg->id), and so does
bpflint's value analysis: the check bounds the size. Where bpflint cannot follow
a link the kernel does (a copy on each of two paths that meet before the check),
the buffer the helper points at is the only bound it has. Before the buffer
capped it, such a call was priced at 2^64 bytes (8.4e17 ns for one
probe_read_kernel). The kernel must accept these programs as built and refuse
every one whose check equals its buffer when the check lets one byte more through
(-DSLACK=1): pricing exactly that many bytes is both sound and as tight as the
kernel allows. Copies modified or reloaded before their check are not linked: the
kernel refuses those programs (nothing bounds their length) and bpflint prices
the buffer.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from bpfc import PROGS, compile_bpf, needs_clang

from bpflint.analysis import scalar as sc
from bpflint.analysis.sizes import LIMIT_BYTES, buffer_bytes, call_sizes
from bpflint.analysis.state import CALLER_STACK, UNKNOWN, ZERO, Kind, Val, const, scalar
from bpflint.cost.engine import analyze_program
from bpflint.cost.frame import LOOSE_SIZE_BYTES
from bpflint.cost.model import SAME_COST_AS, CostTable
from bpflint.cost.options import AnalysisOptions
from bpflint.cost.table_file import load_cost_table
from bpflint.errors import BpfLintError
from bpflint.isa.helper_args import (
    MAX_BPF_STACK,
    MAX_CTX_BYTES,
    MAX_PACKET_RANGE,
    SIZED_ARGS,
    SIZED_ARGS_BY_ID,
)
from bpflint.isa.helper_ids import HELPER_NAMES
from bpflint.kernel.loader import load_program
from bpflint.kernel.syscall import bpf_usable
from bpflint.obj.model import BpfObject, MapDef
from bpflint.obj.reader import load_object

SOURCE = PROGS / "sizes" / "sized_helpers.bpf.c"
USABLE, REASON = bpf_usable()

# program -> (helper it calls, bytes the kernel lets the call touch)
# bounded by the check on a linked copy; the check equals the buffer
LINK_BOUND = {
    "read_kernel_copy": ("probe_read_kernel", 64),
    "read_user_str_value": ("probe_read_user_str", 128 * 1024),
    "read_value_offset": ("probe_read_kernel", 4096 - 1000),
    "ringbuf_output_copy": ("ringbuf_output", 48),
    "perf_output_copy": ("perf_event_output", 40),
    "skb_load_copy": ("skb_load_bytes", 32),
}
# bounded by the check on a linked copy, below the buffer (64, 64 and 32 bytes):
# the buffer priced them before links
LINK_TIGHT = {
    "read_kernel_copy_tight": ("probe_read_kernel", 16),
    "read_kernel_add_const": ("probe_read_kernel", 20),  # r4 = r2 + 8, 8 <= r4 <= 28
    "skb_load_wcopy": ("skb_load_bytes", 12),  # w5 = w4 of a u32
}
# the kernel follows the link, bpflint does not: the buffer bounds it
BUFFER_BOUND = {
    "read_user_str_joined": ("probe_read_user_str", 128 * 1024),
}
# no link (the copy changed or was reloaded before its check; a 32-bit copy of a
# 64-bit value): the kernel refuses them, and bpflint prices the 64-byte buffer,
# not the 16 bytes the copy was checked against
UNLINKED = {
    "read_kernel_unlinked": ("probe_read_kernel", 64),
    "read_kernel_reloaded": ("probe_read_kernel", 64),
    "read_kernel_wide_wcopy": ("probe_read_kernel", 64),
}
# bounded by the value analysis itself (a mask, a compare): unchanged by the cap
VALUE_BOUND = {
    "read_masked": ("probe_read_kernel", 255),
    "read_compared": ("probe_read_kernel", 100),
}
ALL = {**LINK_BOUND, **LINK_TIGHT, **BUFFER_BOUND, **UNLINKED, **VALUE_BOUND}


def _object(slack: int = 0) -> BpfObject:
    return load_object(compile_bpf(SOURCE, (f"-DSLACK={slack}",)))


def _table(helper: str, per_byte_ns: float) -> CostTable:
    """The shipped table with one helper's worst case per byte replaced."""
    table = load_cost_table(None)
    name = helper if helper in table.helpers else SAME_COST_AS[helper]
    table.helpers[name] = replace(table.helpers[name], per_unit_max_ns=per_byte_ns)
    return table


def _priced_bytes(obj: BpfObject, program: str, helper: str) -> float:
    """How many bytes the worst case pays the helper's per-byte cost for: the
    difference one more ns per byte makes to ns.max."""
    prog = next(p for p in obj.programs if p.name == program)
    maxima = []
    for per_byte in (0.0, 1.0):
        result = analyze_program(obj, prog, _table(helper, per_byte), AnalysisOptions())
        assert result.bounded and result.ns_max is not None
        maxima.append(result.ns_max)
    return maxima[1] - maxima[0]


@needs_clang
def test_every_program_has_an_expectation() -> None:
    assert {p.name for p in _object().programs} == set(ALL)


@needs_clang
@pytest.mark.parametrize("program", list(ALL))
def test_a_size_is_priced_at_the_bytes_the_kernel_allows(program: str) -> None:
    helper, nbytes = ALL[program]
    assert _priced_bytes(_object(), program, helper) == pytest.approx(nbytes, abs=1e-6)


@needs_clang
@pytest.mark.parametrize("program", [*LINK_BOUND, *LINK_TIGHT, *BUFFER_BOUND])
def test_the_shipped_table_prices_base_plus_bytes(program: str) -> None:
    helper, nbytes = ALL[program]
    obj = _object()
    prog = next(p for p in obj.programs if p.name == program)
    table = load_cost_table(None)
    result = analyze_program(obj, prog, table, AnalysisOptions())
    entry = table.helpers.get(helper) or table.helpers[SAME_COST_AS[helper]]
    others = analyze_program(obj, prog, _table(helper, 0.0), AnalysisOptions())
    assert result.ns_max is not None and others.ns_max is not None
    assert result.ns_max == pytest.approx(others.ns_max + entry.per_unit_max_ns * nbytes,
                                          abs=1e-3)
    assert result.ns_max < 1e6  # was 2^64 bytes' worth: 8.4e17 ns and more


@needs_clang
def test_a_large_buffer_bound_is_named_at_the_call() -> None:
    obj = _object()
    results = {p.name: analyze_program(obj, p, load_cost_table(None), AnalysisOptions())
               for p in obj.programs}
    [diag] = [d for d in results["read_user_str_joined"].diagnostics if d.rule == "BPF008"]
    assert diag.name == "loose-size-bound"
    assert "map value 'scratch'" in diag.message and str(128 * 1024) in diag.message
    assert diag.loc is not None and diag.loc.file.endswith("sized_helpers.bpf.c")
    lines = SOURCE.read_text().splitlines()
    start = next(i for i, text in enumerate(lines) if "int read_user_str_joined" in text)
    asm = next(i for i in range(start, len(lines)) if "asm volatile" in lines[i])
    assert diag.loc.line == asm + 1
    # buffers below the threshold are priced without a note, and so is the same
    # 128 KiB size checked through a linked copy (read_user_str_value)
    for name, result in results.items():
        if name != "read_user_str_joined":
            assert not [d for d in result.diagnostics if d.rule == "BPF008"], name
    assert 128 * 1024 > LOOSE_SIZE_BYTES


@pytest.mark.kernel
@pytest.mark.skipif(not USABLE, reason=f"bpf() is not usable here: {REASON}")
@needs_clang
def test_the_kernel_accepts_the_buffer_and_refuses_one_byte_more() -> None:
    exact, over = _object(0), _object(1)
    for program in [*LINK_BOUND, *LINK_TIGHT, *BUFFER_BOUND, *VALUE_BOUND]:
        with load_program(exact, next(p for p in exact.programs if p.name == program)):
            pass
    for program in [*LINK_BOUND, *BUFFER_BOUND]:
        with pytest.raises(BpfLintError, match="rejected"):
            load_program(over, next(p for p in over.programs if p.name == program))
    # an unlinked copy bounds nothing: the kernel refuses the length as it is
    for program in UNLINKED:
        with pytest.raises(BpfLintError, match="rejected"):
            load_program(exact, next(p for p in exact.programs if p.name == program))


# -- the cap per pointer kind (hand-built registers) -----------------------------

MAPS = {"big": MapDef("big", 2, "array", 4, 4000, 1)}


def _ptr(kind: Kind, lo: int, hi: int, ref: object = None) -> Val:
    return Val(kind, sc.Scalar.srange(lo, hi) if lo < 0 else sc.Scalar.urange(lo, hi), ref)


@pytest.mark.parametrize(("ptr", "nbytes"), [
    (_ptr(Kind.STACK, -64, -64), 64),
    (_ptr(Kind.STACK, -96, -16), 96),  # the lowest offset leaves the most room
    (_ptr(Kind.STACK, -512, -512), MAX_BPF_STACK),
    (Val(Kind.MEM, sc.Scalar.const(0), CALLER_STACK), MAX_BPF_STACK),
    (_ptr(Kind.MAP_VALUE, 0, 0, "big"), 4000),
    (_ptr(Kind.MAP_VALUE, 100, 300, "big"), 3900),
    (_ptr(Kind.MAP_VALUE, 0, 0, "nosuchmap"), LIMIT_BYTES),
    (_ptr(Kind.PKT, 14, 14), MAX_PACKET_RANGE),
    (_ptr(Kind.CTX, 0, 0), MAX_CTX_BYTES),
    (ZERO, 0),  # NULL goes with a zero size only
    (UNKNOWN, LIMIT_BYTES),
    (Val(Kind.MEM, sc.Scalar.const(0)), LIMIT_BYTES),  # a ring-buffer record: size unknown
])
def test_buffer_bytes(ptr: Val, nbytes: int) -> None:
    assert buffer_bytes(ptr, MAPS)[0] == nbytes


def _regs(**values: Val) -> tuple[Val, ...]:
    regs = [UNKNOWN] * 11
    for name, val in values.items():
        regs[int(name[1:])] = val
    return tuple(regs)


def test_a_size_the_analysis_bounds_is_kept_and_a_larger_one_capped() -> None:
    read = HELPER_NAMES.index("probe_read_kernel")
    stack64 = _ptr(Kind.STACK, -64, -64)
    small = call_sizes(read, _regs(r1=stack64, r2=scalar(sc.Scalar.urange(8, 16))), MAPS)
    assert small is not None and (small.lo, small.hi) == (8, 16)
    assert not small.args[0].capped
    wide = call_sizes(read, _regs(r1=stack64, r2=UNKNOWN), MAPS)
    assert wide is not None and (wide.lo, wide.hi) == (0, 64) and wide.args[0].capped
    # a size register that is not a scalar (analysis imprecision): the buffer
    odd = call_sizes(read, _regs(r1=stack64, r2=stack64), MAPS)
    assert odd is not None and odd.hi == 64


def test_csum_diff_pays_for_both_buffers() -> None:
    diff = HELPER_NAMES.index("csum_diff")
    got = call_sizes(diff, _regs(r1=_ptr(Kind.STACK, -16, -16), r2=UNKNOWN,
                                 r3=_ptr(Kind.STACK, -40, -40), r4=const(20)), MAPS)
    assert got is not None and (got.lo, got.hi) == (20, 16 + 20)
    pushed = call_sizes(diff, _regs(r1=ZERO, r2=UNKNOWN, r3=_ptr(Kind.STACK, -40, -40),
                                    r4=const(40)), MAPS)
    assert pushed is not None and pushed.hi == 40


def test_perf_event_output_counts_the_packet_bytes_its_flags_ask_for() -> None:
    out = HELPER_NAMES.index("perf_event_output")
    buf = _ptr(Kind.STACK, -32, -32)
    current_cpu = call_sizes(out, _regs(r3=const(0xFFFFFFFF), r4=buf, r5=const(32)), MAPS)
    assert current_cpu is not None and current_cpu.hi == 32
    with_packet = call_sizes(out, _regs(r3=const((1500 << 32) | 0xFFFFFFFF), r4=buf,
                                        r5=const(32)), MAPS)
    assert with_packet is not None and with_packet.hi == 32 + 1500
    assert not with_packet.args[-1].capped
    unknown = call_sizes(out, _regs(r3=UNKNOWN, r4=buf, r5=const(32)), MAPS)
    assert unknown is not None and unknown.hi == 32 + 0xFFFFF
    assert unknown.args[-1].capped and "flags" in unknown.args[-1].what


def test_the_table_names_real_helpers_and_registers() -> None:
    for name, pairs in SIZED_ARGS.items():
        assert name in HELPER_NAMES, name
        for ptr_reg, size_reg in pairs:
            assert 1 <= ptr_reg <= 5 and 1 <= size_reg <= 5 and ptr_reg != size_reg
    # every helper the shipped table prices per byte is known to carry a size
    table = load_cost_table(None)
    for name, entry in table.helpers.items():
        if entry.max_units is not None and name not in ("loop", "for_each_map_elem"):
            assert HELPER_NAMES.index(name) in SIZED_ARGS_BY_ID, name


def test_a_string_copy_or_a_full_ring_costs_no_bytes_at_best() -> None:
    table = load_cost_table(None)
    for name, copies_all in (("probe_read_kernel", True), ("probe_read_kernel_str", False),
                             ("probe_read_user_str", False), ("ringbuf_output", False)):
        hid = HELPER_NAMES.index(name)
        lo_small, _ = table.helper_ns(hid, None, (8, 8))
        lo_big, hi_big = table.helper_ns(hid, None, (4096, 4096))
        assert (lo_big > lo_small) == copies_all, name
        assert hi_big > lo_big

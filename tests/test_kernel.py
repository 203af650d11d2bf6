"""bpf() syscall layer, bytecode assembler and loader against the live kernel."""

from __future__ import annotations

import pytest
from bpfc import PROGS, compile_bpf

from bpflint.errors import BpfLintError
from bpflint.kernel import bytecode as bc
from bpflint.kernel import syscall as sc
from bpflint.kernel.loader import load_program
from bpflint.obj.reader import load_object

USABLE, REASON = sc.bpf_usable()
needs_bpf = pytest.mark.skipif(not USABLE, reason=REASON)


def test_bytecode_encodings() -> None:
    assert bc.mov64(bc.R0, imm=2) == bytes.fromhex("b700000002000000")
    assert bc.exit_() == bytes.fromhex("9500000000000000")
    assert bc.ldx(4, bc.R2, bc.R1, 4) == bytes.fromhex("6112040000000000")
    assert len(bc.ld_imm64(bc.R1, 1 << 40)) == 16


@needs_bpf
def test_load_reports_verifier_stats_and_test_run_times() -> None:
    code = bc.mov64(bc.R0, imm=2) + bc.exit_()
    prog = sc.prog_load(sc.PROG_TYPES["xdp"], code, name="t")
    try:
        assert prog.stats.processed_insns == 2
        assert prog.stats.verification_usec is not None
        res = sc.prog_test_run(prog.fd, data=bytes(64), repeat=1000)
        assert res.retval == 2 and res.duration_ns > 0
    finally:
        sc.close(prog.fd)


@needs_bpf
def test_rejected_program_carries_the_verifier_reason() -> None:
    with pytest.raises(sc.BpfSyscallError) as err:
        sc.prog_load(sc.PROG_TYPES["xdp"], bc.exit_(), name="bad", log_level=1)
    assert "R0" in str(err.value)


@needs_bpf
def test_map_roundtrip() -> None:
    fd = sc.map_create(sc.MAP_TYPES["hash"], 4, 8, 4, name="m")
    try:
        sc.map_update(fd, b"\1\0\0\0", b"12345678")
        assert sc.map_lookup(fd, b"\1\0\0\0", 8) == b"12345678"
    finally:
        sc.close(fd)


@needs_bpf
@pytest.mark.parametrize("source", ["parse_xdp", "straight_xdp", "branchy_tc",
                                    "socket_filter", "raw_tp_ringbuf", "cgroup_skb",
                                    "maps_heavy"])
def test_loader_loads_compiled_programs(source: str) -> None:
    obj = load_object(compile_bpf(PROGS / f"{source}.bpf.c"))
    for program in obj.programs:
        with load_program(obj, program) as loaded:
            assert loaded.fd > 0
            assert loaded.stats.processed_insns and loaded.stats.processed_insns > 0


def test_loader_refuses_unsupported_types() -> None:
    obj = load_object(compile_bpf(PROGS / "fentry_unlink.bpf.c"))
    with pytest.raises(BpfLintError, match="attach target"):
        load_program(obj, obj.programs[0])



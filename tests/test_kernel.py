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
XDP_RUNS, XDP_REASON = sc.prog_type_runs("xdp") if USABLE else (False, REASON)
needs_xdp = pytest.mark.skipif(not XDP_RUNS, reason=XDP_REASON)


def test_bytecode_encodings() -> None:
    assert bc.mov64(bc.R0, imm=2) == bytes.fromhex("b700000002000000")
    assert bc.exit_() == bytes.fromhex("9500000000000000")
    assert bc.ldx(4, bc.R2, bc.R1, 4) == bytes.fromhex("6112040000000000")
    assert len(bc.ld_imm64(bc.R1, 1 << 40)) == 16


@needs_xdp
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


@needs_xdp
def test_rejected_program_carries_the_verifier_reason() -> None:
    with pytest.raises(sc.BpfSyscallError) as err:
        sc.prog_load(sc.PROG_TYPES["xdp"], bc.exit_(), name="bad", log_level=1)
    assert "R0" in str(err.value) and "R0" in err.value.reason
    assert sc.missing_feature(err.value) is None  # the program is wrong, not the kernel


@needs_xdp
def test_a_helper_the_program_type_may_not_call_is_a_missing_feature() -> None:
    # bpf_override_return (58) is for kprobes: what a kernel lacking a helper says
    code = bc.mov64(bc.R2, imm=0) + bc.call_helper(58) + bc.mov64(bc.R0, imm=2) + bc.exit_()
    with pytest.raises(sc.BpfSyscallError) as err:
        sc.prog_load(sc.PROG_TYPES["xdp"], code, name="bad", log_level=1)
    assert sc.missing_feature(err.value) == \
        "program of this type cannot use helper bpf_override_return#58"
    assert err.value.reason.endswith("(Invalid argument)")


def test_missing_feature_reads_the_kernels_words() -> None:
    def refusal(log: str, errno: int = 22) -> sc.BpfSyscallError:
        return sc.BpfSyscallError("kernel rejected program 'p'", errno, log)

    assert sc.missing_feature(refusal("0: (85) call unknown#212\ninvalid func unknown#212\n"
                                      "processed 1 insns")) == "invalid func unknown#212"
    assert sc.missing_feature(refusal("unknown opcode 8d\n")) == "unknown opcode 8d"
    assert sc.missing_feature(refusal("[5] Invalid kind:19\n")) == "Invalid kind"
    assert sc.missing_feature(refusal("", sc.ENOTSUPP)) is not None
    assert sc.missing_feature(refusal("R1 invalid mem access 'scalar'\n")) is None
    assert sc.missing_feature(BpfLintError("not from the kernel")) is None


@needs_bpf
def test_prog_type_probe_states_what_the_kernel_will_not_run() -> None:
    assert sc.prog_type_runs("socket_filter") == (True, "socket_filter programs load and run")
    ok, why = sc.prog_type_runs("kprobe")  # kprobes have no BPF_PROG_TEST_RUN
    assert not ok and why.startswith("this kernel does not test-run kprobe programs: ")


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
    lacking: list[str] = []
    for program in obj.programs:
        try:
            with load_program(obj, program) as loaded:
                assert loaded.fd > 0
                assert loaded.stats.processed_insns and loaded.stats.processed_insns > 0
        except sc.BpfSyscallError as exc:
            lacks = sc.missing_feature(exc)
            if lacks is None:
                raise
            lacking.append(f"{program.name}: {lacks}")
    if lacking:
        pytest.skip(f"{source}: this kernel lacks what they need: {'; '.join(lacking)}")


def test_loader_refuses_unsupported_types() -> None:
    obj = load_object(compile_bpf(PROGS / "fentry_unlink.bpf.c"))
    with pytest.raises(BpfLintError, match="attach target"):
        load_program(obj, obj.programs[0])



"""bpflint against the kernel verifier of this machine.

Every test program the verifier accepts must be reported bounded; the program
whose loop the verifier rejects must be reported unbounded, at the loop's line.
"""

from __future__ import annotations

import pytest
from bpfc import PROGS, compile_bpf
from cases import CASES, FileCase

from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.errors import BpfLintError
from bpflint.kernel.loader import load_program
from bpflint.kernel.syscall import bpf_usable, missing_feature
from bpflint.obj.reader import load_object

USABLE, REASON = bpf_usable()
# Set-up the loader does not do (libbpf would): kfunc BTF ids, perf event arrays sized
# by CPU count, map BTF for timers. Such programs get no verdict.
LOADER_LIMITS = ("cannot load", "cannot create map", "has to have BTF")


@pytest.mark.kernel
@pytest.mark.skipif(not USABLE, reason=f"bpf() is not usable here: {REASON}")
@pytest.mark.parametrize("case", [c for c in CASES if c.kernel_loads is not None],
                         ids=lambda c: c.file)
def test_bounded_exactly_when_the_verifier_accepts(case: FileCase) -> None:
    obj = load_object(compile_bpf(PROGS / case.file, case.flags))
    judged: list[str] = []
    lacking: list[str] = []
    for program in obj.programs:
        try:
            with load_program(obj, program):
                accepted = True
        except BpfLintError as exc:
            message = str(exc)
            if any(limit in message for limit in LOADER_LIMITS):
                continue  # our small loader cannot set this one up: no verdict
            lacks = missing_feature(exc)
            if lacks is not None:
                # a helper or instruction this kernel lacks: its verifier has no say
                lacking.append(f"{program.name}: {lacks}")
                continue
            accepted = False
        judged.append(program.name)
        result = analyze_program(obj, program, None, AnalysisOptions())
        if accepted:
            assert result.bounded, f"{program.name}: the verifier accepts it, bpflint " \
                                   f"reports {result.diagnostics}"
        else:
            assert case.kernel_loads is False, f"{program.name} was rejected: {message}"
            assert not result.bounded
            assert any(d.rule == "BPF003" and d.loc is not None for d in result.diagnostics)
    if not judged and lacking:
        pytest.skip(f"{case.file}: this kernel lacks what it needs: {'; '.join(lacking)}")
    if case.file not in LOADER_LIMITED:
        assert judged, f"no program of {case.file} got a verdict"


LOADER_LIMITED = {"perf_event_sample.bpf.c", "timer.bpf.c", "maps_heavy.bpf.c", "iter_task.bpf.c",
                  "iter_num.bpf.c", "iter_bits.bpf.c"}


@pytest.mark.kernel
@pytest.mark.skipif(not USABLE, reason=f"bpf() is not usable here: {REASON}")
def test_most_programs_get_a_verdict() -> None:
    cases = [c for c in CASES if c.kernel_loads is not None]
    assert len(cases) - len(LOADER_LIMITED & {c.file for c in cases}) >= 28

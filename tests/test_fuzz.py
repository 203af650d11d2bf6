"""Hostile input: structure-aware mutations of real objects and of bpfbudget.toml.

Every case must end with exit 0, or exit 2 and one-line `bpflint: error:` messages
(no traceback, no "internal error"), within a per-case time limit. Mutations
(tests/fuzzgen.py) target header counts and offsets, section sizes, BTF headers and
type records (cycles, absurd sizes), relocation records, and the code itself (jumps
into ld_imm64, self-loops, random instructions, 1 MB of random code). Most cases run
in-process under a SIGALRM limit; a few run `python -m bpflint` in a child with a
memory limit (RLIMIT_AS) to prove stderr carries no traceback.
"""

from __future__ import annotations

import contextlib
import io
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import fuzzgen
import pytest
from bpfc import PROGS, compile_bpf, find_clang
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpflint.budget.config import load_config
from bpflint.cli import main
from bpflint.errors import BpfLintError

SECONDS_PER_CASE = 10
CHILD_MEMORY_BYTES = 2 << 30
SEED_PROGRAMS = ("bpf_loop", "tail_calls", "parse_xdp", "for_each_map", "maps_heavy",
                 "rodata_config", "iter_num", "timer", "switch_proto", "v4_ops")


def _seeds() -> list[fuzzgen.Layout]:
    synthetic = fuzzgen.load_gen_synthetic()
    # objects without BTF or relocations, written without clang
    layouts = [fuzzgen.parse(f"synthetic_{kind}", synthetic.synthetic_object(kind, 64))
               for kind in ("straight", "branchy", "loops")]
    if find_clang() is not None:
        for name in SEED_PROGRAMS:
            flags = ("-mcpu=v4",) if name == "v4_ops" else ()
            path = compile_bpf(PROGS / f"{name}.bpf.c", flags)
            layouts.append(fuzzgen.parse(name, path.read_bytes()))
    return layouts


SEEDS = _seeds()
BTF_SEEDS = [seed for seed in SEEDS if seed.named(".BTF") is not None] or SEEDS
RELOC_SEEDS = [seed for seed in SEEDS if seed.relocs] or SEEDS


class CaseTimeout(BaseException):
    """Raised by SIGALRM; a BaseException so no `except Exception` in bpflint hides it."""


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def expire(_signum: int, _frame: object) -> None:
        raise CaseTimeout(f"case exceeded {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bpflint-fuzz-") as name:
        yield Path(name)


def assert_clean(code: int, err: str) -> None:
    """Exit 0, or exit 2 with one-line error messages; nothing else on stderr."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    strays = [line for line in lines if not line.startswith(("bpflint: error: ",
                                                                "bpflint: note: "))]
    assert strays == [], err
    assert "internal error" not in err, err
    errors = [line for line in lines if line.startswith("bpflint: error: ")]
    assert code in (0, 2), f"exit {code}: {err}"
    if code == 2:
        assert errors, "exit 2 without a message"


def analyze_bytes(workdir: Path, data: bytes) -> None:
    path = workdir / "case.o"
    path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    with time_limit(SECONDS_PER_CASE), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        code = main(["analyze", "--format", "json", str(path)])
    assert_clean(code, err.getvalue())


FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
seed_of = st.sampled_from(SEEDS)
u64 = st.one_of(st.sampled_from(fuzzgen.INTERESTING), st.integers(0, (1 << 64) - 1))
u32 = st.one_of(st.sampled_from(fuzzgen.INTERESTING), st.integers(0, (1 << 32) - 1))
small = st.integers(0, 1 << 16)


@settings(FUZZ, max_examples=250)
@given(seed_of, st.lists(st.integers(0, 1 << 24), min_size=1, max_size=8))
def test_bit_flips(workdir: Path, seed: fuzzgen.Layout, positions: list[int]) -> None:
    analyze_bytes(workdir, fuzzgen.bit_flips(seed, positions))


@settings(FUZZ, max_examples=150)
@given(seed_of, st.integers(0, 1 << 20))
def test_truncations(workdir: Path, seed: fuzzgen.Layout, keep: int) -> None:
    analyze_bytes(workdir, fuzzgen.truncate(seed, keep))


@settings(FUZZ, max_examples=200)
@given(seed_of, small, u64)
def test_elf_header_counts(workdir: Path, seed: fuzzgen.Layout, field: int,
                           value: int) -> None:
    analyze_bytes(workdir, fuzzgen.header_field(seed, field, value))


@settings(FUZZ, max_examples=250)
@given(seed_of, small, small, u64)
def test_section_header_fields(workdir: Path, seed: fuzzgen.Layout, section: int,
                               field: int, value: int) -> None:
    analyze_bytes(workdir, fuzzgen.section_field(seed, section, field, value))


@settings(FUZZ, max_examples=150)
@given(seed_of, small, st.integers(0, 1 << 40))
def test_inflated_section_sizes(workdir: Path, seed: fuzzgen.Layout, section: int,
                                factor: int) -> None:
    analyze_bytes(workdir, fuzzgen.inflate_size(seed, section, factor))


@settings(FUZZ, max_examples=200)
@given(st.sampled_from(BTF_SEEDS), small, u32)
def test_btf_header(workdir: Path, seed: fuzzgen.Layout, field: int, value: int) -> None:
    analyze_bytes(workdir, fuzzgen.btf_header(seed, field, value))


@settings(FUZZ, max_examples=150)
@given(st.sampled_from(BTF_SEEDS), small, small)
def test_btf_reference_cycles(workdir: Path, seed: fuzzgen.Layout, pick: int,
                              target: int) -> None:
    analyze_bytes(workdir, fuzzgen.btf_cycle(seed, pick, target))


@settings(FUZZ, max_examples=150)
@given(st.sampled_from(BTF_SEEDS), small, u32)
def test_btf_absurd_sizes(workdir: Path, seed: fuzzgen.Layout, pick: int,
                          value: int) -> None:
    analyze_bytes(workdir, fuzzgen.btf_absurd(seed, pick, value))


@settings(FUZZ, max_examples=250)
@given(st.sampled_from(RELOC_SEEDS), small, small, u64)
def test_relocations_anywhere(workdir: Path, seed: fuzzgen.Layout, pick: int, field: int,
                              value: int) -> None:
    analyze_bytes(workdir, fuzzgen.reloc_anywhere(seed, pick, field, value))


@settings(FUZZ, max_examples=100)
@given(seed_of, small)
def test_jump_into_ld_imm64(workdir: Path, seed: fuzzgen.Layout, pick: int) -> None:
    analyze_bytes(workdir, fuzzgen.jump_into_ld_imm64(seed, pick))


@settings(FUZZ, max_examples=100)
@given(seed_of, small)
def test_self_loops(workdir: Path, seed: fuzzgen.Layout, pick: int) -> None:
    analyze_bytes(workdir, fuzzgen.self_loop(seed, pick, conditional=False))


def test_conditional_self_loop_is_reported_quickly(workdir: Path) -> None:
    seed = next((s for s in SEEDS if s.name == "timer"), None)
    if seed is None:
        pytest.skip("needs clang for the timer.bpf.c seed")
    path = workdir / "selfloop.o"
    path.write_bytes(fuzzgen.self_loop(seed, 12, conditional=True))  # insn 7, after the lookup
    with time_limit(5), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(["analyze", "--format", "json", str(path)])
    assert_clean(code, err.getvalue())


@settings(FUZZ, max_examples=150)
@given(seed_of, small, st.integers(0, 1 << 32))
def test_random_instruction(workdir: Path, seed: fuzzgen.Layout, pick: int,
                            noise: int) -> None:
    analyze_bytes(workdir, fuzzgen.random_insns(seed, pick, noise))


@pytest.mark.parametrize("seed", range(3))
def test_megabyte_of_random_bytes(workdir: Path, seed: int) -> None:
    analyze_bytes(workdir, fuzzgen.megabyte_program(seed, valid=False))


@pytest.mark.parametrize("seed", range(3))
def test_random_wellformed_code(workdir: Path, seed: int) -> None:
    """128 KB of well-formed random instructions: the analysis itself must cope."""
    analyze_bytes(workdir, fuzzgen.megabyte_program(seed, valid=True, size_bytes=128 << 10))


# ------------------------------------------------------------------ child processes

def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_BYTES, CHILD_MEMORY_BYTES))


def run_child(argv: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bpflint", *argv], capture_output=True,
                          text=True, timeout=timeout_s, preexec_fn=_limit_memory)


CHILD_CASES = [
    ("inflated .BTF size", lambda s: fuzzgen.inflate_size(
        s, next((x.index for x in s.sections if x.name == ".BTF"), 1), 999)),
    ("e_shnum 0xffff", lambda s: fuzzgen.header_field(s, 1, 0xFFFF)),
    ("e_shoff past the end", lambda s: fuzzgen.header_field(s, 0, 1 << 40)),
    ("BTF self-cycle", lambda s: fuzzgen.btf_cycle(s, 0, 0)),
    ("BTF absurd vlen", lambda s: fuzzgen.btf_absurd(s, 3, 0xFFFF)),
    ("relocation at 2**40", lambda s: fuzzgen.reloc_anywhere(s, 0, 0, 1 << 40)),
    ("relocation symbol 2**31", lambda s: fuzzgen.reloc_anywhere(s, 0, 1, 1 << 31)),
    ("ja -1 at entry", lambda s: fuzzgen.self_loop(s, 0, False)),
    ("jump into ld_imm64", lambda s: fuzzgen.jump_into_ld_imm64(s, 1)),
    ("truncated to half", lambda s: fuzzgen.truncate(s, len(s.data) // 2)),
]


@pytest.mark.parametrize(("label", "mutate"), CHILD_CASES, ids=[c[0] for c in CHILD_CASES])
def test_child_process_no_traceback(workdir: Path, label: str, mutate) -> None:  # type: ignore[no-untyped-def]
    seed = RELOC_SEEDS[0]
    path = workdir / f"child_{label.replace(' ', '_')}.o"
    path.write_bytes(mutate(seed))
    done = run_child(["analyze", "--format", "json", str(path)], timeout_s=60)
    assert_clean(done.returncode, done.stderr)


def test_child_megabyte_random_bytes(workdir: Path) -> None:
    path = workdir / "random_1mb.o"
    path.write_bytes(fuzzgen.megabyte_program(7, valid=False))
    done = run_child(["analyze", "--format", "json", str(path)], timeout_s=60)
    assert_clean(done.returncode, done.stderr)


def test_child_megabyte_wellformed_code_finishes(workdir: Path) -> None:
    path = workdir / "wellformed_1mb.o"
    path.write_bytes(fuzzgen.megabyte_program(0, valid=True))
    try:
        done = run_child(["analyze", "--format", "json", str(path)], timeout_s=10)
    except subprocess.TimeoutExpired:
        pytest.fail("1 MB of random code was not analysed (or stopped) within 10 s")
    assert_clean(done.returncode, done.stderr)


# -------------------------------------------------------------------- budget files

GATE_TOML = (Path(__file__).parent / "data" / "gate_project" / "bpfbudget.toml").read_text()


def check_config(workdir: Path, text: str | bytes) -> None:
    path = workdir / "bpfbudget.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with time_limit(SECONDS_PER_CASE):
        try:
            load_config(path)
        except BpfLintError as exc:
            message = str(exc)
            assert message.strip() and "\n" not in message, repr(message)
            assert str(path) in message, message


@settings(FUZZ, max_examples=300)
@given(st.lists(st.tuples(small, small, small), min_size=1, max_size=12))
def test_budget_file_structure(workdir: Path, choices: list[tuple[int, int, int]]) -> None:
    check_config(workdir, fuzzgen.config_text(choices))


@settings(FUZZ, max_examples=150)
@given(st.lists(st.integers(0, 1 << 16), min_size=1, max_size=6), st.integers(0, 1 << 12))
def test_budget_file_bytes(workdir: Path, flips: list[int], cut: int) -> None:
    data = bytearray(GATE_TOML.encode())
    for pos in flips:
        data[(pos // 8) % len(data)] ^= 1 << (pos % 8)
    check_config(workdir, bytes(data[: len(data) - cut % len(data)]))


def test_overlong_cost_table_path(workdir: Path) -> None:
    check_config(workdir, 'cost_table = "' + "x" * 300 + '"\n')


@pytest.mark.parametrize("case", range(5))
def test_check_command_with_broken_config(workdir: Path, case: int) -> None:
    """`bpflint check --config FILE` exits 2 with one line on a broken budget file."""
    texts = ["[[budget]]\nmax_insns = -1\n", "[regression]\nallowed = \"5 parsecs\"\n",
             "[[budget]]\nsecton = \"xdp\"\nmax_insns = 3\n", "= =\n", "baseline = [[]]\n"]
    config = workdir / f"broken{case}.toml"
    config.write_text(texts[case])
    obj = workdir / "seed.o"
    obj.write_bytes(SEEDS[0].data)
    err = io.StringIO()
    with time_limit(SECONDS_PER_CASE), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(err):
        code = main(["check", "--config", str(config), str(obj)])
    assert code == 2, err.getvalue()
    assert_clean(code, err.getvalue())
    assert len(err.getvalue().strip().splitlines()) == 1, err.getvalue()

"""Broken input never escapes as a traceback: truncated, bit-flipped and random files.

Every case must end in exit 0 (the damage was harmless) or exit 2 with exactly one
``bpflint: error: FILE: message`` line, within a few seconds. Mutations aim at the
parts of an object the reader interprets (ELF header, section headers, code, symbols,
relocations, BTF, map definitions) rather than at DWARF, which it never reads.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bpfc import PROGS, compile_bpf, find_clang
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpflint.cli import main

pytestmark = pytest.mark.skipif(find_clang() is None, reason="clang is needed")

SECONDS_PER_CASE = 5.0
INTERPRETED = (".text", ".maps", "maps", ".BTF", ".BTF.ext", ".symtab", ".strtab",
               ".rodata", ".data", "license")


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes
    regions: tuple[tuple[int, int], ...]  # (start, end) byte ranges the reader interprets


def _regions(path: Path) -> tuple[tuple[int, int], ...]:
    with open(path, "rb") as handle:
        elf = ELFFile(handle)
        regions = [(0, elf["e_ehsize"]),
                   (elf["e_shoff"], elf["e_shoff"] + elf["e_shnum"] * elf["e_shentsize"])]
        for sec in elf.iter_sections():
            wanted = (sec.name in INTERPRETED or sec.name.startswith(".rel")
                      or sec["sh_flags"] & 0x4)
            if wanted and sec["sh_type"] != "SHT_NOBITS" and sec["sh_size"]:
                regions.append((sec["sh_offset"], sec["sh_offset"] + sec["sh_size"]))
    return tuple(regions)


def _seeds() -> list[Seed]:
    if find_clang() is None:
        return []
    chosen = [(PROGS / "reader" / "features.bpf.c", ()),
              (PROGS / "straight_xdp.bpf.c", ("-mcpu=v4",))]
    seeds = []
    for source, flags in chosen:
        obj = compile_bpf(source, flags)
        seeds.append(Seed(obj.name, obj.read_bytes(), _regions(obj)))
    return seeds


SEEDS = _seeds()


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bpflint-fuzz-") as name:
        yield Path(name)


def analyze_in_process(path: Path) -> tuple[int, str, str, float]:
    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["analyze", str(path)])
    return code, out.getvalue(), err.getvalue(), time.monotonic() - start


def assert_clean_outcome(path: Path, code: int, err: str, seconds: float) -> None:
    assert seconds < SECONDS_PER_CASE, f"took {seconds:.1f}s"
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("bpflint: error: ")]
    others = [line for line in err.splitlines()
              if not line.startswith(("bpflint: error: ", "bpflint: note: "))]
    assert others == [], err
    if code == 0:
        assert errors == [], err
        return
    assert code == 2, err
    assert len(errors) == 1, err
    assert errors[0].startswith(f"bpflint: error: {path}: "), err
    message = errors[0].removeprefix(f"bpflint: error: {path}: ")
    assert message.strip() and "internal error" not in message, err


def check(workdir: Path, data: bytes) -> None:
    path = workdir / "case.o"
    path.write_bytes(data)
    code, _, err, seconds = analyze_in_process(path)
    assert_clean_outcome(path, code, err, seconds)


FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

seed_index = st.integers(min_value=0, max_value=max(len(SEEDS) - 1, 0))


@FUZZ
@given(seed_index, st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_truncated(workdir: Path, index: int, fraction: float) -> None:
    data = SEEDS[index].data
    check(workdir, data[: int(len(data) * fraction)])


@st.composite
def flips(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]]]:
    """A seed and a few (byte offset, bit) pairs inside the interpreted regions."""
    index = draw(seed_index)
    seed = SEEDS[index]
    count = draw(st.integers(min_value=1, max_value=8))
    picks = []
    for _ in range(count):
        start, end = draw(st.sampled_from(seed.regions))
        picks.append((draw(st.integers(min_value=start, max_value=end - 1)),
                      draw(st.integers(min_value=0, max_value=7))))
    return index, picks


@settings(FUZZ, max_examples=250)
@given(flips())
def test_bit_flipped(workdir: Path, case: tuple[int, list[tuple[int, int]]]) -> None:
    index, picks = case
    data = bytearray(SEEDS[index].data)
    for offset, bit in picks:
        data[offset] ^= 1 << bit
    check(workdir, bytes(data))


@st.composite
def overwrites(draw: st.DrawFn) -> tuple[int, int, bytes]:
    """A seed and a run of random bytes written over one interpreted region."""
    index = draw(seed_index)
    start, end = draw(st.sampled_from(SEEDS[index].regions))
    offset = draw(st.integers(min_value=start, max_value=end - 1))
    return index, offset, draw(st.binary(min_size=1, max_size=16))


@FUZZ
@given(overwrites())
def test_overwritten_run(workdir: Path, case: tuple[int, int, bytes]) -> None:
    index, offset, junk = case
    data = bytearray(SEEDS[index].data)
    data[offset: offset + len(junk)] = junk
    check(workdir, bytes(data[: len(SEEDS[index].data)]))


@FUZZ
@given(st.binary(max_size=4096), st.booleans())
def test_random_bytes(workdir: Path, data: bytes, elf_header: bool) -> None:
    if elf_header:
        # a plausible 64-bit little-endian BPF ELF header in front of the noise
        data = (b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x01\x00\xf7\x00" + data)
    check(workdir, data)


def _subprocess_cases() -> list[tuple[str, bytes]]:
    if not SEEDS:
        return []
    seed = SEEDS[0].data
    flipped = bytearray(seed)
    for start, end in SEEDS[0].regions[1:3]:  # section headers and the first region
        for offset in range(start, end, 7):
            flipped[offset] ^= 0x5A
    return [("empty", b""), ("half", seed[: len(seed) // 2]), ("header only", seed[:64]),
            ("flipped", bytes(flipped)), ("noise", os.urandom(2048))]


SUBPROCESS_CASES = _subprocess_cases()


@pytest.mark.parametrize("name,data", SUBPROCESS_CASES, ids=[c[0] for c in SUBPROCESS_CASES])
def test_no_traceback_through_a_real_process(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / f"{name.replace(' ', '_')}.o"
    path.write_bytes(data)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "bpflint", "analyze", str(path)],
                          capture_output=True, text=True, timeout=60)
    # a fresh interpreter pays for imports, hence the wider limit
    assert_clean_outcome(path, proc.returncode, proc.stderr,
                         (time.monotonic() - start) / 2)
    assert proc.returncode == 2  # none of these is a usable object


def test_control_characters_in_names_stay_on_one_line(workdir: Path) -> None:
    """A newline in a section name (seen by fuzzing) must not split a message or a row."""
    seed = SEEDS[0].data
    assert b"kprobe/do_unlinkat" in seed
    check(workdir, seed.replace(b"kprobe/do_unlinkat", b"kprobe\ndo_unlinkat"))
    path = workdir / "case.o"
    code, out, _, _ = analyze_in_process(path)
    if code == 0:
        assert "kprobe\\ndo_unlinkat" in out
        table = out.partition("\n\n")[0]
        assert all(len(line.split()) == 10 for line in table.splitlines())

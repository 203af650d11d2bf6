"""`bpflint disasm` and the assembly formatter, checked against llvm-objdump's text."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from bpfc import PROGS, compile_bpf, find_clang, find_llvm_objdump
from test_decoder import _assemble, enc, every_llvm19_encoding, ld_imm64

from bpflint.cli import main
from bpflint.isa.asm import annotation, format_insn
from bpflint.isa.insn import decode
from bpflint.obj.model import Reloc

LLVM_OBJDUMP = find_llvm_objdump()
needs_tools = pytest.mark.skipif(LLVM_OBJDUMP is None or find_clang() is None,
                                 reason="clang and llvm-objdump are needed")

_LINE = re.compile(r"^\s*(\d+):\t(?:[0-9a-f]{2} ?)+\t(.*)$")
_ANNOTATION = re.compile(r" <[^<>\s]+>$")


def llvm_text(obj: Path, *flags: str) -> dict[tuple[str, int], str]:
    """(section, slot) -> assembly text without llvm's ``<target>`` annotation."""
    assert LLVM_OBJDUMP is not None
    out = subprocess.run([LLVM_OBJDUMP, "-d", *flags, str(obj)], capture_output=True,
                         text=True, check=True).stdout
    texts: dict[tuple[str, int], str] = {}
    section = ""
    for line in out.splitlines():
        if line.startswith("Disassembly of section "):
            section = line.removeprefix("Disassembly of section ").rstrip(":")
        elif m := _LINE.match(line):
            texts[(section, int(m.group(1)))] = _ANNOTATION.sub("", m.group(2).rstrip())
    return texts


@needs_tools
def test_formatter_matches_llvm_objdump_on_every_encoding(tmp_path: Path) -> None:
    data = every_llvm19_encoding()
    obj = _assemble(tmp_path, data)
    # llvm-objdump prints 32-bit atomics only with +alu32, which also renames the
    # registers of narrow loads and stores; each line must match one of the two.
    plain, alu32 = llvm_text(obj), llvm_text(obj, "--mattr=+alu32")
    insns = decode(data)
    assert len(insns) > 150
    for insn in insns:
        mine = format_insn(insn)
        assert mine in (plain[("xdp", insn.pc)], alu32[("xdp", insn.pc)]), insn


@pytest.mark.parametrize("data,text", [
    # LLVM 20+ syntax: LLVM 19 cannot disassemble these
    (enc(0xDB, 0, 1, 8, 0x100), "r0 = load_acquire((u64 *)(r1 + 0x8))"),
    (enc(0xC3, 3, 1, -4, 0x100), "w3 = load_acquire((u32 *)(r1 - 0x4))"),
    (enc(0xD3, 3, 1, 0, 0x100), "w3 = load_acquire((u8 *)(r1 + 0x0))"),
    (enc(0xCB, 1, 2, 2, 0x110), "store_release((u16 *)(r1 + 0x2), w2)"),
    (enc(0xDB, 1, 2, 0, 0x110), "store_release((u64 *)(r1 + 0x0), r2)"),
    (enc(0xC3, 1, 2, 0, 0xE1), "w2 = xchg32_32(r1 + 0x0, w2)"),
    (enc(0xC3, 1, 2, 0, 0x41), "w2 = atomic_fetch_or((u32 *)(r1 + 0x0), w2)"),
    (enc(0xE5, 0, 0, -3), "may_goto -0x3"),
    (ld_imm64(2, 0, 1 << 63), "r2 = -0x8000000000000000 ll"),
])
def test_formatter_syntax(data: bytes, text: str) -> None:
    assert format_insn(decode(data)[0]) == text


def test_annotations_name_helpers_and_relocations() -> None:
    call = decode(enc(0x85, 0, 0, 0, 1))[0]
    assert annotation(call) == "bpf_map_lookup_elem"
    assert annotation(decode(enc(0x85, 0, 0, 0, 99999))[0]) is None
    load = decode(ld_imm64(1, 0, 0))[0]
    assert annotation(load) is None
    assert annotation(load.with_meta(reloc=Reloc("map", "counts", map="counts"))) == "counts"
    data = load.with_meta(reloc=Reloc("data", ".rodata", map=".rodata", offset=16))
    assert annotation(data) == ".rodata+0x10"
    kfunc = decode(enc(0x85, 0, 1, 0, -1))[0].with_meta(
        reloc=Reloc("kfunc", "bpf_rcu_read_lock"))
    assert annotation(kfunc) == "bpf_rcu_read_lock"


SOURCES = sorted(PROGS.glob("**/*.bpf.c"))
_LISTED = re.compile(r"^\s*(\d+):\t(.*)$")


def _listing(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["disasm", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@needs_tools
@pytest.mark.parametrize("source", SOURCES, ids=[str(s.relative_to(PROGS)) for s in SOURCES])
def test_disasm_listing_matches_llvm_objdump(source: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    obj = compile_bpf(source, ("-mcpu=v4",))
    code, out, err = _listing(capsys, str(obj))
    assert code == 0, err
    ref = llvm_text(obj, "--mattr=+alu32")
    plain = llvm_text(obj)
    section = ""
    listed = 0
    for line in out.splitlines():
        if m := re.match(r"^[0-9a-f]{16} <.+> \((.+)\):$", line):
            section = m.group(1)
        elif m := _LISTED.match(line):
            mine = _ANNOTATION.sub("", m.group(2))
            key = (section, int(m.group(1)))
            assert mine in (ref[key], plain[key]), (key, line)
            listed += 1
    assert listed > 0
    # every program of the object is listed with its header
    assert out.count("Program ") >= 1


@needs_tools
def test_disasm_interleaves_source_lines(capsys: pytest.CaptureFixture[str]) -> None:
    obj = compile_bpf(PROGS / "reader" / "features.bpf.c")
    code, out, _ = _listing(capsys, str(obj), "--program", "probe_a")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("Program probe_a (section kprobe/do_unlinkat, type kprobe")
    lookup = next(i for i, line in enumerate(lines) if "<bpf_map_lookup_elem>" in line)
    # the source line of the call precedes it: "; file:63" then its text
    before = lines[:lookup]
    file_line = max(i for i, line in enumerate(before) if line.startswith("; /"))
    assert before[file_line].endswith("features.bpf.c:63")
    assert "bpf_map_lookup_elem(&counts, &key)" in before[file_line + 1]
    assert any(line.endswith("<counts>") for line in before)
    # the subprograms it calls follow, global_twice and through it add_one
    assert "<global_twice> (.text):" in out and "<add_one> (.text):" in out
    assert "probe_b" not in out


@needs_tools
def test_disasm_unknown_program_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    obj = compile_bpf(PROGS / "reader" / "features.bpf.c")
    code, out, err = _listing(capsys, str(obj), "--program", "nope")
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"bpflint: error: {obj}: no program named 'nope'")


def test_disasm_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.o"
    code, out, err = _listing(capsys, str(missing))
    assert code == 2 and out == ""
    assert err.startswith(f"bpflint: error: {missing}: ") and err.count("\n") == 1

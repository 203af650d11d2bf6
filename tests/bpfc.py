"""Compile the BPF C test programs with clang (cached by source + flags)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
PROGS = TESTS / "progs"
BUILD = TESTS / "build"


def find_clang() -> str | None:
    """$CLANG, else the newest versioned clang, else plain clang."""
    if os.environ.get("CLANG"):
        return os.environ["CLANG"]
    for version in range(22, 13, -1):
        path = shutil.which(f"clang-{version}")
        if path:
            return path
    return shutil.which("clang")


needs_clang = pytest.mark.skipif(find_clang() is None, reason="clang is needed")


def find_llvm_objdump() -> str | None:
    for version in range(22, 13, -1):
        path = shutil.which(f"llvm-objdump-{version}")
        if path:
            return path
    return shutil.which("llvm-objdump")


def clang_major(clang: str) -> int:
    out = subprocess.run([clang, "--version"], capture_output=True, text=True, check=True).stdout
    for word in out.split():
        if word[:1].isdigit() and "." in word:
            return int(word.split(".")[0])
    return 0


def host_include_flags() -> list[str]:
    """<linux/types.h> includes <asm/types.h>, which Debian keeps under a multiarch
    directory clang -target bpf does not search; append it (lowest priority)."""
    flags: list[str] = []
    for asm_dir in sorted(Path("/usr/include").glob("*-linux-gnu*/asm")):
        flags += ["-idirafter", str(asm_dir.parent)]
    return flags


def compile_bpf(source: Path, flags: tuple[str, ...] = (), out_dir: Path = BUILD) -> Path:
    """Compile one .bpf.c into an object under tests/build, reusing an up-to-date one."""
    clang = find_clang()
    if clang is None:
        raise RuntimeError("no clang found: install clang (CI does) or set $CLANG")
    argv = [clang, "-target", "bpf", "-O2", "-g", "-D__TARGET_ARCH_x86", "-I", str(PROGS),
            *host_include_flags(), *flags, "-c", str(source)]
    digest = hashlib.sha256()
    digest.update(" ".join(argv).encode())
    digest.update(source.read_bytes())
    for header in sorted({*PROGS.glob("*.h"), *source.parent.glob("*.h")}):
        digest.update(header.read_bytes())
    out_dir.mkdir(parents=True, exist_ok=True)
    name = source.name.removesuffix(".c")
    out = out_dir / f"{name}-{digest.hexdigest()[:12]}.o"
    if not out.exists():
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        subprocess.run([*argv, "-o", str(tmp)], check=True, capture_output=True)
        tmp.replace(out)
    return out

"""What the build step compiles and how: all a budget file's reader needs of it, kept
apart from the compiling (compile.py imports subprocess, tempfile and more, start-up
time no run without sources should pay)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BuildSettings:
    """How to compile; paths are absolute or relative to the current directory."""

    clang: str | None = None  # binary name or path; None: $CLANG, newest clang-N, clang
    flags: tuple[str, ...] = ()  # extra clang arguments, after the base flags
    include_dirs: tuple[Path, ...] = ()
    defines: tuple[str, ...] = ()  # "NAME" or "NAME=VALUE"


def is_bpf_source(path: Path) -> bool:
    """True for a C source the build step compiles (``x.bpf.c``, ``x.c``)."""
    return path.suffix == ".c"

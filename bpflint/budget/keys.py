"""Program identity across runs: the object's path relative to the budget file,
its section and the program's name ("bpf/fw.bpf.o:xdp:xdp_main").

The path, not the object's bare name, so that a/firewall.bpf.o and b/firewall.bpf.o
are two programs. A source bpflint compiles is named by the object a build would
put next to it (src/fw.bpf.c -> src/fw.bpf.o), not by where the compile cache keeps
it. Baselines written before keys had paths ("fw.bpf.o:xdp:xdp_main") still pair
with a program when its bare name, section and program name are unambiguous.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePath


def object_identity(path: str, root: Path, compiled: Mapping[str, str] | None = None) -> str:
    """``path`` relative to ``root`` (POSIX, normalised), or as given, normalised, when
    it lies outside; ``compiled`` maps a compiled object to its source's name."""
    if compiled and path in compiled:
        return compiled[path]
    return relative_or_given(path, root)


def relative_or_given(path: str, root: Path) -> str:
    absolute = os.path.normpath(os.path.abspath(path))
    base = os.path.normpath(os.path.abspath(root))
    if absolute == base or absolute.startswith(base.rstrip(os.sep) + os.sep):
        return PurePath(os.path.relpath(absolute, base)).as_posix()
    return PurePath(os.path.normpath(path)).as_posix()


def source_identity(source: Path, root: Path) -> str:
    """The name a compiled source's object goes by: fw.bpf.c -> fw.bpf.o, beside it."""
    return relative_or_given(str(source.with_suffix(".o")), root)


def program_key(identity: str, section: str, name: str) -> str:
    return f"{identity}:{section}:{name}"


def legacy_key(identity: str, section: str, name: str) -> str:
    """The key a baseline written before path keys used: the object's bare name."""
    return f"{PurePath(identity).name}:{section}:{name}"

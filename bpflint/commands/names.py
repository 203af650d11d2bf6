"""Picking a program by name (`-p NAME`), with a did-you-mean when there is none."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from bpflint.errors import BpfLintError
from bpflint.obj.model import Program


def find_program(programs: Sequence[Program], name: str, where: str) -> Program:
    """The program called ``name``; else a one-line error with the closest names."""
    found = next((p for p in programs if p.name == name), None)
    if found is not None:
        return found
    names = [p.name for p in programs]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    if not close:  # a part of the name ("firewall" for "xdp_firewall") is a good hint too
        close = [n for n in names if name.lower() in n.lower()][:3]
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    listed = ", ".join(names) or "none"
    raise BpfLintError(f"{where}: no program named {name!r}{hint} (programs: {listed})")

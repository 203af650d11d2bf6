"""Where a finding about a call points, and one finding for many calls alike.

BTF line info gives an inlined function's instructions the lines of its body: a
``bpf_tail_call_static`` is an ``asm`` statement in libbpf's bpf_helpers.h, and BTF
(unlike DWARF) does not say where it was inlined. A finding there would point into
the library, so it points at the nearest instruction of the same function whose
line is in the program's own sources instead. And a program making the same
unresolved call in twelve places gets one finding listing the twelve lines.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from bpflint.isa.insn import Insn
from bpflint.isa.meta import SourceLine
from bpflint.results import Diagnostic, SourceLoc

# Headers of libbpf (and the kernel's generated vmlinux.h) that programs include:
# nothing a user can change is in them.
LIBRARY_HEADERS = frozenset({
    "bpf_helpers.h", "bpf_helper_defs.h", "bpf_tracing.h", "bpf_core_read.h",
    "bpf_endian.h", "usdt.bpf.h", "vmlinux.h",
})
SYSTEM_DIRS = ("/usr/include/", "/usr/local/include/")
# Findings about a call that are folded into one per program and message.
FOLDED_RULES = frozenset({"BPF005"})
LISTED_SITES = 8  # call sites a message names; the rest are counted


def is_library_line(line: SourceLine) -> bool:
    """A line in a system or libbpf header rather than the program's own sources."""
    return os.path.basename(line.file) in LIBRARY_HEADERS or line.file.startswith(SYSTEM_DIRS)


def caller_insn(insns: tuple[Insn, ...], insn: Insn) -> Insn:
    """``insn``, or where its line is a library header's, the nearest instruction of
    the same function (``insns``) on a line of the program's own sources; the
    instruction after it on a tie (the statement a failed tail call goes on to)."""
    if insn.line is None or not is_library_line(insn.line):
        return insn
    index = next((i for i, other in enumerate(insns) if other.pc == insn.pc), None)
    if index is None:
        return insn
    for distance in range(1, len(insns)):
        for at in (index + distance, index - distance):
            if 0 <= at < len(insns):
                line = insns[at].line
                if line is not None and not is_library_line(line):
                    return insns[at]
    return insn


def fold_call_sites(diags: Iterable[Diagnostic], calls: Mapping[str, int]
                    ) -> tuple[Diagnostic, ...]:
    """One finding per rule and message of FOLDED_RULES, at its first call site, with
    every site's line in ``related`` and in the message; ``calls``: how many call
    instructions each message is about (two calls may share a line). Other
    findings stay as they are."""
    out: list[Diagnostic] = []
    groups: dict[tuple[str, str], list[Diagnostic]] = {}
    for diag in diags:
        if diag.rule not in FOLDED_RULES:
            out.append(diag)
            continue
        key = (diag.rule, diag.message)
        if key not in groups:
            groups[key] = []
            out.append(diag)  # a placeholder for its group, in first-seen order
        groups[key].append(diag)
    return tuple(_folded(groups[(d.rule, d.message)], calls.get(d.message, 0))
                 if d.rule in FOLDED_RULES else d for d in out)


def _folded(group: list[Diagnostic], calls: int) -> Diagnostic:
    sites = sorted({d.loc for d in group if d.loc is not None},
                   key=lambda loc: (loc.file, loc.line))
    first = group[0]
    calls = max(calls, len(sites))
    if calls <= 1:
        return first
    where = f" ({_site_list(sites)})" if sites else ""
    return Diagnostic(first.rule, first.name, f"{first.message}; {calls} such calls{where}",
                      sites[0] if sites else first.loc, tuple(sites))


def _site_list(sites: list[SourceLoc]) -> str:
    """"lines 26, 27, 31 of x.c" for one file, else "x.c:26, y.h:4"; at most
    LISTED_SITES of them, then how many more."""
    shown = sites[:LISTED_SITES]
    more = f" and {len(sites) - len(shown)} more" if len(sites) > len(shown) else ""
    if len({loc.file for loc in sites}) == 1:
        word = "line" if len(sites) == 1 else "lines"
        lines = ", ".join(str(loc.line) for loc in shown)
        return f"{word} {lines}{more} of {os.path.basename(sites[0].file)}"
    return ", ".join(f"{os.path.basename(loc.file)}:{loc.line}" for loc in shown) + more

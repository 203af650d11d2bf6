"""What the reader attaches to a decoded instruction: its source line and what it
refers to (a relocation).

These live beside :class:`~bpflint.isa.insn.Insn` rather than in the object model
because an ``Insn`` carries them: the object model (``bpflint.obj``) imports the ISA,
never the other way round. ``bpflint.obj.model`` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FuncKey = tuple[str, int]  # (ELF section name, first slot of the function in it)

RelocKind = Literal["call", "func_ptr", "map", "data", "kfunc", "extern"]


@dataclass(frozen=True, slots=True)
class SourceLine:
    file: str  # as recorded in BTF line info (may be absolute)
    line: int
    column: int
    text: str  # the source line's text, as BTF stores it ("" if absent)


@dataclass(frozen=True, slots=True)
class Reloc:
    """What an instruction refers to, resolved by the reader.

    kind:
      call     - bpf-to-bpf call; ``func`` is the callee
      func_ptr - ld_imm64 of a function address (a callback); ``func`` is it
      map      - ld_imm64 of a map; ``map`` names it
      data     - ld_imm64 of an address in a global-data section (.rodata, .data,
                 .bss, .rodata.str1.1, ...); ``map`` names the section's map and
                 ``offset`` is the byte offset inside it, addend included
      kfunc    - call of a kernel function; ``symbol`` is its name
      extern   - ld_imm64 of an extern variable (``__ksym``/``__kconfig``)
    """

    kind: RelocKind
    symbol: str
    func: FuncKey | None = None
    map: str | None = None
    offset: int = 0

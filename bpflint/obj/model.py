"""The immutable object model the reader produces and every later stage reads.

A BPF object is a set of functions (program entry points and subprograms, keyed by
(section, first slot) so a subprogram shared by several programs is stored once),
the programs that start at some of them, and the maps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bpflint.isa.insn import Insn

# Re-exported: every stage reads them as part of the object model.
from bpflint.isa.meta import FuncKey as FuncKey
from bpflint.isa.meta import Reloc as Reloc
from bpflint.isa.meta import RelocKind as RelocKind
from bpflint.isa.meta import SourceLine as SourceLine

# The pseudo-map holding ``__kconfig`` externs (libbpf fills them in from the running
# kernel's config): a read-only global-data map whose every variable is loader-set.
KCONFIG_MAP = ".kconfig"


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    section: str
    start: int  # first slot in the section
    insns: tuple[Insn, ...]  # slots start .. start + nslots - 1, ld_imm64 as one Insn
    is_global: bool
    nslots: int

    @property
    def key(self) -> FuncKey:
        return (self.section, self.start)

    @property
    def end(self) -> int:
        return self.start + self.nslots


@dataclass(frozen=True, slots=True)
class LoaderVar:
    """A global the loader may set before load: a variable of a ``.rodata*`` section
    whose BTF type is ``volatile`` (``const volatile`` in C; a libbpf skeleton's
    ``rodata->name``, a Cilium or Falco config knob).

    A read of it gives any value in [lo, hi] (one integer element's range), not the
    object's default: the default is one configuration of many. ``lo``/``hi`` start
    as the type's whole range (``type_lo``/``type_hi``) and narrow when a user pins
    the variable (``--set``, ``[rodata]``); ``lo == hi`` is a pinned value.
    """

    name: str
    offset: int  # bytes inside its section
    size: int  # bytes
    type_name: str  # "u32", "s64", "bool", "enum mode", "char[16]", "struct cfg"
    elem_size: int  # bytes of one integer element (the variable, or an array's
    #                 element); 0 when it holds no integers (a struct, a pointer)
    type_lo: int
    type_hi: int
    lo: int
    hi: int
    default: int | None  # the object's value of an integer variable, else None
    pinned: bool = False

    @property
    def value(self) -> int | None:
        """The one value it is pinned to, if any."""
        return self.lo if self.pinned and self.lo == self.hi else None


@dataclass(frozen=True, slots=True)
class MapDef:
    name: str
    type: int  # BPF_MAP_TYPE_* value
    type_name: str  # "hash", "array", "prog_array", ... ("" when unknown)
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    section: str = ".maps"  # ".maps", "maps" (legacy) or the global-data section
    # prog-array slots initialised statically: slot index -> program (function) name
    prog_slots: tuple[tuple[int, str], ...] = ()
    # initial bytes of global-data maps (.rodata, .data); b"" for .bss / others
    data: bytes = b""
    read_only: bool = False  # .rodata-like: contents are known when loaded ...
    # ... except these, which the loader may set (sorted by offset; objects without
    # BTF have none: their .rodata is taken as constant)
    loader_vars: tuple[LoaderVar, ...] = ()
    # map-in-map: the name under BpfObject.maps of the inner map's template
    # ("<outer>.inner", from the BTF definition's __array(values, struct {...}))
    inner: str = ""
    # prog_slots come from "ID/KEY" sections (obj/tail_sections.py), not from the
    # map's own .values: other objects may fill its other slots (Cilium's policy
    # prog array is shared by every endpoint), so only a constant index is followed
    section_slots: bool = False


@dataclass(frozen=True, slots=True)
class Program:
    name: str
    section: str  # the SEC() name
    prog_type: str  # libbpf program type name: "xdp", "kprobe", "sched_cls", ...
    attach: str  # what it attaches to ("" if none): "sys_enter", "do_unlinkat", ...
    entry: FuncKey
    sleepable: bool = False


@dataclass(frozen=True)
class BpfObject:
    path: str
    functions: dict[FuncKey, Function]
    programs: tuple[Program, ...]
    maps: dict[str, MapDef]
    has_btf: bool
    license: str = ""
    notes: tuple[str, ...] = field(default=())  # non-fatal reader remarks

    def function_named(self, name: str) -> Function | None:
        for func in self.functions.values():
            if func.name == name:
                return func
        return None

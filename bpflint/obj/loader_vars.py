"""Loader-set variables: ``const volatile`` globals of the ``.rodata*`` sections.

A loader sets them before load (a libbpf skeleton's ``rodata->targ_pid``, Cilium's
and Falco's config knobs), so the object's bytes are one configuration of many. BTF
tells them apart from the constants the compiler put in the same section (strings,
lookup tables): their type carries a VOLATILE modifier (through typedefs, const and
array elements). Where each lives comes from the symbol table: in a relocatable
object the DATASEC offsets are still 0 (libbpf fills them in from the symbols).

Pins (``--set``, ``[rodata]``) narrow a variable to a value or a range of its type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from bpflint.errors import BpfLintError
from bpflint.obj.btf import (
    INT_BOOL,
    INT_SIGNED,
    KIND_ARRAY,
    KIND_CONST,
    KIND_ENUM,
    KIND_ENUM64,
    KIND_INT,
    KIND_PTR,
    KIND_RESTRICT,
    KIND_STRUCT,
    KIND_TYPE_TAG,
    KIND_TYPEDEF,
    KIND_UNION,
    KIND_VAR,
    KIND_VOLATILE,
    Btf,
    BtfType,
)
from bpflint.obj.model import KCONFIG_MAP, BpfObject, LoaderVar, MapDef

_QUALIFIERS = (KIND_TYPEDEF, KIND_CONST, KIND_VOLATILE, KIND_RESTRICT, KIND_TYPE_TAG)
_MAX_DEPTH = 64  # qualifier/array chains longer than this are not real C types

WARNING = "warning: "  # a note that starts so is printed as a warning

# (lo, hi) a pin narrows a variable to; lo == hi pins one value
Pin = tuple[int, int]


@dataclass(frozen=True)
class RodataPin:
    """One ``--set NAME=VALUE`` or ``[rodata."GLOB"] NAME = VALUE``: the variable takes
    values in [lo, hi] in the objects the glob matches. Plain (not compiled): analysis
    options carry pins to worker processes."""

    name: str
    lo: int
    hi: int
    origin: str  # where it was written, for messages: "--set", "bpfbudget.toml:12"
    object: str = "*"  # object glob: with a '/', the path relative to ``root``; else the name
    root: str = ""  # the budget file's directory ("" for --set)

    def matches(self, path: str) -> bool:
        if self.object == "*":
            return True
        subject = Path(path)
        if "/" not in self.object:
            return fnmatchcase(subject.name, self.object)
        if self.root:
            try:
                relative = subject.resolve().relative_to(Path(self.root).resolve())
                return fnmatchcase(relative.as_posix(), self.object)
            except ValueError:
                pass
        return fnmatchcase(subject.as_posix(), self.object)


def is_rodata_section(name: str) -> bool:
    return name == ".rodata" or name.startswith(".rodata.")


def is_volatile(btf: Btf, type_id: int) -> bool:
    """Whether a variable's type is volatile-qualified (an array's element counts)."""
    for _ in range(_MAX_DEPTH):
        btf_type = btf.type(type_id)
        if btf_type.kind == KIND_VOLATILE:
            return True
        if btf_type.kind in _QUALIFIERS:
            type_id = btf_type.size_or_type
        elif btf_type.kind == KIND_ARRAY:
            type_id = btf_type.array[0]
        else:
            return False
    return False


def _int_range(size: int, signed: bool) -> tuple[int, int]:
    bits = 8 * size
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _scalar(btf: Btf, btf_type: BtfType) -> tuple[str, int, int, int] | None:
    """(C-ish name, byte size, lo, hi) of an integer-like type, else None."""
    if btf_type.kind == KIND_INT:
        size = btf_type.size_or_type
        encoding = btf_type.extra >> 24
        if encoding & INT_BOOL:
            return "bool", size, 0, 1
        signed = bool(encoding & INT_SIGNED)
        if size not in (1, 2, 4, 8):
            return None
        lo, hi = _int_range(size, signed)
        return f"{'s' if signed else 'u'}{8 * size}", size, lo, hi
    if btf_type.kind in (KIND_ENUM, KIND_ENUM64):
        # any value of the enum's width: C lets the loader store one with a cast
        size = btf_type.size_or_type
        if size not in (1, 2, 4, 8):
            return None
        lo, hi = _int_range(size, btf_type.kind_flag)
        return f"enum {btf_type.name or '(anonymous)'}", size, lo, hi
    return None


def describe_type(btf: Btf, type_id: int) -> tuple[str, int, int, int]:
    """(name, element size, lo, hi): element size 0 when the variable holds no
    integer elements (a struct), whose reads are unknown bits; a pointer is a u64."""
    btf_type = btf.skip_aliases(type_id)
    scalar = _scalar(btf, btf_type)
    if scalar is not None:
        return scalar
    if btf_type.kind == KIND_ARRAY:
        elem, count = btf_type.array
        name, elem_size, lo, hi = describe_type(btf, elem)
        return f"{name}[{count}]", elem_size, lo, hi
    if btf_type.kind in (KIND_STRUCT, KIND_UNION):
        word = "struct" if btf_type.kind == KIND_STRUCT else "union"
        return f"{word} {btf_type.name or '(anonymous)'}", 0, 0, 0
    if btf_type.kind == KIND_PTR:
        # an address, or NULL: any 64-bit value (a BPF pointer is 8 bytes); pinning
        # one to 0 says the loader leaves it unset
        return "pointer", 8, 0, (1 << 64) - 1
    return btf_type.name or "?", 0, 0, 0


def find_loader_vars(btf: Btf, section: str, data: bytes,
                     symbol_offsets: Mapping[str, int]) -> tuple[LoaderVar, ...]:
    """The volatile variables of one .rodata* section, by offset."""
    datasec = btf.datasec(section)
    if datasec is None:
        return ()
    found: list[LoaderVar] = []
    for info in datasec.vars:
        var = btf.type(info.type_id)
        if var.kind != KIND_VAR or not is_volatile(btf, var.size_or_type):
            continue
        size = info.size or btf.size_of(var.size_or_type)
        type_name, elem_size, lo, hi = describe_type(btf, var.size_or_type)
        offset = symbol_offsets.get(var.name)
        if offset is None:
            # no symbol says where it is (the DATASEC offsets of a .o are all 0): it
            # may be anywhere, so every read of the section is of unknown bytes
            offset, size, elem_size, lo, hi = 0, len(data), 0, 0, 0
        default = None
        if elem_size == size and 0 <= offset and offset + size <= len(data):
            default = int.from_bytes(data[offset:offset + size], "little", signed=lo < 0)
            if type_name == "bool":
                default = min(default, 1)
        found.append(LoaderVar(var.name, offset, size, type_name, elem_size, lo, hi, lo, hi,
                               default))
    return tuple(sorted(found, key=lambda v: v.offset))


def kconfig_vars(btf: Btf) -> tuple[LoaderVar, ...]:
    """The ``__kconfig`` externs, laid out one after another (8-byte aligned) in a
    pseudo-section: libbpf sets them from the running kernel, so no default."""
    datasec = btf.datasec(KCONFIG_MAP)
    if datasec is None:
        return ()
    found: list[LoaderVar] = []
    offset = 0
    for info in datasec.vars:
        var = btf.type(info.type_id)
        if var.kind != KIND_VAR:
            continue
        size = info.size or btf.size_of(var.size_or_type)
        type_name, elem_size, lo, hi = describe_type(btf, var.size_or_type)
        found.append(LoaderVar(var.name, offset, size, type_name, elem_size, lo, hi, lo, hi,
                               None))
        offset += (size + 7) // 8 * 8
    return tuple(found)


def loader_vars(obj: BpfObject) -> list[tuple[MapDef, LoaderVar]]:
    return [(mapdef, var) for mapdef in obj.maps.values() for var in mapdef.loader_vars]


def check_pin(var: LoaderVar, lo: int, hi: int, where: str) -> None:
    """A pin outside the variable's type is a mistake (exit 2), not an empty range."""
    if lo > hi:
        raise BpfLintError(f"{where}: range {lo}..{hi} of {var.name} is empty")
    if var.elem_size == 0:
        raise BpfLintError(f"{where}: {var.name} is a {var.type_name}: only integer "
                           f"variables (and arrays of them) can be pinned")
    if lo < var.type_lo or hi > var.type_hi:
        raise BpfLintError(f"{where}: {lo if lo < var.type_lo else hi} is outside the range of "
                           f"{var.name}'s type {var.type_name} "
                           f"({var.type_lo}..{var.type_hi})")


def pin(obj: BpfObject, pins: Mapping[str, Pin]) -> BpfObject:
    """The object with the named variables narrowed (checked with check_pin first).

    A scalar pinned to one value also gets that value written into the section's
    bytes, so wider or narrower reads that cover it see it too.
    """
    if not pins:
        return obj
    maps = dict(obj.maps)
    for name, mapdef in obj.maps.items():
        if not any(var.name in pins for var in mapdef.loader_vars):
            continue
        data = bytearray(mapdef.data)
        narrowed: list[LoaderVar] = []
        for var in mapdef.loader_vars:
            got = pins.get(var.name)
            if got is None:
                narrowed.append(var)
                continue
            lo, hi = got
            narrowed.append(dataclasses.replace(var, lo=lo, hi=hi, pinned=True))
            if lo == hi and var.elem_size and var.offset + var.size <= len(data):
                count = var.size // var.elem_size
                word = (lo & ((1 << (8 * var.elem_size)) - 1)).to_bytes(var.elem_size, "little")
                data[var.offset:var.offset + var.elem_size * count] = word * count
        maps[name] = dataclasses.replace(mapdef, data=bytes(data), loader_vars=tuple(narrowed))
    return dataclasses.replace(obj, maps=maps)


def apply_pins(obj: BpfObject, pins: Sequence[RodataPin]) -> BpfObject:
    """The object with every pin whose glob matches it applied (a later pin of the same
    name wins: --set comes after [rodata]). A value outside the type is an error."""
    chosen: dict[str, RodataPin] = {}
    for rodata_pin in pins:
        if rodata_pin.matches(obj.path):
            chosen[rodata_pin.name] = rodata_pin
    if not chosen:
        return obj
    for _mapdef, var in loader_vars(obj):
        got = chosen.get(var.name)
        if got is not None:
            check_pin(var, got.lo, got.hi, got.origin)
    return pin(obj, {name: (p.lo, p.hi) for name, p in chosen.items()})


def unknown_pin_notes(pins: Sequence[RodataPin], known: Iterable[str]) -> list[str]:
    """One note per pinned name that no analysed object has, with a did-you-mean."""
    names = sorted(set(known))
    notes = []
    for name in dict.fromkeys(p.name for p in pins):
        if name in names:
            continue
        origin = next(p.origin for p in pins if p.name == name)
        import difflib  # only for a message: not start-up time

        close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else \
            (f" (they have: {', '.join(names)})" if names else " (they have none)")
        notes.append(f"{WARNING}{origin}: no loader-set variable named '{name}' in the "
                     f"analysed objects, the pin is ignored{hint}")
    return notes


def parse_value(text: str) -> Pin:
    """``N`` or ``LO..HI`` (decimal, 0x hex, negative allowed) -> (lo, hi)."""
    lo_text, dots, hi_text = text.partition("..")
    try:
        lo = int(lo_text.strip(), 0)
        hi = int(hi_text.strip(), 0) if dots else lo
    except ValueError:
        raise ValueError(f"expected an integer or a range LO..HI, got {text!r}") from None
    if lo > hi:
        raise ValueError(f"range {text!r} is empty (LO above HI)")
    return lo, hi


def pin_defaults(obj: BpfObject) -> BpfObject:
    """The one configuration a loader that sets nothing runs (``bpflint measure``, the
    audit's comparison): every unpinned integer variable pinned to the object's own
    value, and every other unpinned one (a struct, an array of structs) read as the
    object's bytes, like the compiler's constants."""
    pinned = pin(obj, {var.name: (var.default, var.default) for _, var in loader_vars(obj)
                       if not var.pinned and var.default is not None})
    maps = dict(pinned.maps)
    for name, mapdef in pinned.maps.items():
        kept = tuple(var for var in mapdef.loader_vars
                     if var.pinned or var.default is not None)
        if len(kept) != len(mapdef.loader_vars):
            maps[name] = dataclasses.replace(mapdef, loader_vars=kept)
    return dataclasses.replace(pinned, maps=maps)

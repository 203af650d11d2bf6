"""What a load from a map value gives: read-only data (`.rodata`) is a constant
except for the variables a loader may set before load (`const volatile` knobs and
`.kconfig` externs), which take any value of their type or their pinned range."""

from __future__ import annotations

import struct
from typing import Final

from bpflint.analysis import scalar as sc
from bpflint.analysis.scalar import Scalar
from bpflint.analysis.state import Kind, Val, const, scalar, unknown_bits
from bpflint.isa.insn import Insn
from bpflint.obj.model import KCONFIG_MAP, LoaderVar, MapDef


def read_map_value(mapdef: MapDef, off: Scalar, size: int, insn: Insn,
                   reads: dict[str, dict[int, Insn]] | None) -> Val:
    """A load from a map value: a constant where the map is read-only data, except
    for loader-set variables (any value of their type, or their pinned range).
    ``reads`` (Env.loader_reads) records which loads read which variable."""
    if not (mapdef.read_only and mapdef.data):
        return unknown_bits(size)
    vars_read = _loader_vars_at(mapdef, off, size)
    if reads is not None:
        for var in vars_read:
            reads.setdefault(var.name, {})[id(insn)] = insn
    if not off.is_const:
        return unknown_bits(size)
    o = sc.to_s64(off.umin)
    if o < 0 or o + size > len(mapdef.data):
        return unknown_bits(size)
    if all(var.value is not None for var in vars_read):
        # constant data, or variables pinned to one value (written into the bytes)
        fmt = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}[size]
        return const(struct.unpack_from(fmt, mapdef.data, o)[0])
    if len(vars_read) == 1:
        var = vars_read[0]
        if size == var.elem_size and (o - var.offset) % size == 0:
            return _element_value(var.lo, var.hi, size)
    return unknown_bits(size)


_ELEMENT_VALUES: Final[dict[tuple[int, int, int], Val]] = {}


def _element_value(lo: int, hi: int, size: int) -> Val:
    """The bits a load of ``size`` bytes gives for an element in [lo, hi] (kept: a
    loop reads its knob on every iteration)."""
    key = (lo, hi, size)
    got = _ELEMENT_VALUES.get(key)
    if got is None:
        # a negative range wraps to the top of the width; one across zero is any bits
        wrap = 1 << (8 * size)
        if lo >= 0:
            got = scalar(Scalar.urange(lo, hi))
        elif hi < 0:
            got = scalar(Scalar.urange(lo + wrap, hi + wrap))
        else:
            got = unknown_bits(size)
        if len(_ELEMENT_VALUES) < 4096:
            _ELEMENT_VALUES[key] = got
    return got


def _loader_vars_at(mapdef: MapDef, off: Scalar, size: int) -> list[LoaderVar]:
    """The loader-set variables a read of ``size`` bytes at ``off`` may touch."""
    if not mapdef.loader_vars:
        return []
    start = sc.to_s64(off.umin) if off.is_const else off.umin
    end = start + size if off.is_const else off.umax + size
    return [var for var in mapdef.loader_vars
            if var.offset < end and start < var.offset + var.size]


def kconfig_pointer(kconfig: MapDef, name: str) -> Val:
    """A ``__kconfig`` extern: a pointer into the .kconfig pseudo-map, whose reads are
    its loader-set variables; any other extern (``__ksym``) is kernel memory."""
    for var in kconfig.loader_vars:
        if var.name == name:
            return Val(Kind.MAP_VALUE, sc.const_scalar(var.offset), KCONFIG_MAP)
    return Val(Kind.MEM, sc.const_scalar(0))

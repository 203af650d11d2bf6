"""The range of a helper call's size arguments, bounded by what the verifier enforces.

The value analysis alone may leave a size argument at the full range of its type
(a length the compiler moved through a copy the analysis does not relate to the
checked one, a 64-bit register whose bound the kernel proved through a 32-bit
compare). The verifier accepts the call only when the size fits the memory its
pointer argument points at (bpflint/isa/helper_args.py), so every execution of a
loaded program passes a size within that buffer: the range here is the value
analysis's, capped by the buffer wherever bpflint knows the pointer's kind and
offset, and by ``BPF_MAX_VAR_SIZ`` where it does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bpflint.analysis.scalar import U32
from bpflint.analysis.state import CALLER_STACK, Kind, Val
from bpflint.isa.helper_args import (
    BPF_MAX_VAR_SIZ,
    CTXLEN_FLAGS_HELPERS,
    CTXLEN_MASK_BITS,
    MAX_BPF_STACK,
    MAX_CTX_BYTES,
    MAX_PACKET_RANGE,
    SIZED_ARGS_BY_ID,
)
from bpflint.isa.helper_ids import HELPER_NAMES
from bpflint.obj.model import MapDef

LIMIT_BYTES = BPF_MAX_VAR_SIZ - 1  # the largest size the verifier lets through


@dataclass(frozen=True, slots=True)
class SizeArg:
    """One (buffer, size) argument pair of a call."""

    what: str  # the argument, in words ("size argument (r2)")
    lo: int  # bytes, best case
    hi: int  # bytes, worst case (kernel-enforced cap applied)
    cap: int  # what the buffer alone allows
    buffer: str  # the buffer, in words ("map value 'events'", ...)
    capped: bool  # the cap, not the value analysis, gave ``hi``


@dataclass(frozen=True, slots=True)
class CallSizes:
    lo: int
    hi: int
    args: tuple[SizeArg, ...]


def buffer_bytes(ptr: Val, maps: Mapping[str, MapDef]) -> tuple[int, str]:
    """The most bytes a helper may access from ``ptr`` in a program the verifier
    accepts, and the buffer in words. Offsets: the lowest the analysis allows (every
    execution's pointer is at or above it, so it leaves the most room)."""
    kind = ptr.kind
    if kind == Kind.STACK:
        room = max(0, min(MAX_BPF_STACK, -ptr.s.smin))
        return room, f"the stack ({room} bytes above the pointer)"
    if kind == Kind.MEM and ptr.ref == CALLER_STACK:
        return MAX_BPF_STACK, f"a caller's stack (at most {MAX_BPF_STACK} bytes)"
    if kind == Kind.MAP_VALUE and isinstance(ptr.ref, str) and ptr.ref in maps:
        size = maps[ptr.ref].value_size
        room = max(0, size - max(0, ptr.s.smin))
        return room, f"map value '{ptr.ref}' ({size} bytes, {room} past the pointer)"
    if kind in (Kind.PKT, Kind.PKT_META):
        return MAX_PACKET_RANGE, "the packet (the verifier proves at most 64 KiB " \
                                 "past a packet pointer)"
    if kind == Kind.CTX:
        return MAX_CTX_BYTES, f"the context (at most {MAX_CTX_BYTES} bytes)"
    if kind == Kind.SCALAR and ptr.s.umax == 0:
        return 0, "NULL (only a zero size goes with it)"
    return LIMIT_BYTES, "memory bpflint cannot size (the verifier's BPF_MAX_VAR_SIZ limit)"


def call_sizes(helper_id: int, regs: tuple[Val, ...], maps: Mapping[str, MapDef]
               ) -> CallSizes | None:
    """The summed size arguments of a call of a sized helper (None for others)."""
    pairs = SIZED_ARGS_BY_ID.get(helper_id)
    if pairs is None:
        return None
    args = []
    for ptr_reg, size_reg in pairs:
        cap, buffer = buffer_bytes(regs[ptr_reg], maps)
        size = regs[size_reg]
        if size.kind == Kind.SCALAR:
            lo, hi = size.s.umin, size.s.umax
        else:  # the verifier wants a scalar: any value it could hold
            lo, hi = 0, cap
        args.append(SizeArg(f"size argument (r{size_reg})", min(lo, cap), min(hi, cap), cap,
                            buffer, hi > cap))
    if HELPER_NAMES[helper_id] in CTXLEN_FLAGS_HELPERS:
        flags = regs[3]
        # (flags >> 32) & mask is at most umax >> 32; the best case copies none
        # (the kernel refuses a length above the packet's before copying)
        hi = flags.s.umax >> 32 if flags.kind == Kind.SCALAR else U32
        if hi:
            args.append(SizeArg("packet length in its flags (r3 >> 32)", 0,
                                min(hi, CTXLEN_MASK_BITS), CTXLEN_MASK_BITS,
                                "BPF_F_CTXLEN_MASK (the packet bytes its flags ask for)",
                                hi > CTXLEN_MASK_BITS))
    return CallSizes(sum(a.lo for a in args), sum(a.hi for a in args), tuple(args))

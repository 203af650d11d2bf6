"""The smallest BTF the verifier needs to accept callbacks: one FUNC per function.

A program that passes a function's address (``bpf_loop``, ``bpf_for_each_map_elem``,
timers, ...) must carry ``func_info`` naming a BTF FUNC for every subprogram; the
verifier rejects it with "missing btf func_info" otherwise. Static linkage keeps
the verifier checking each function in its caller's context (as it would inline),
so the prototypes need no parameters: ``int fN(void)`` for all of them.
"""

from __future__ import annotations

import struct

_MAGIC = 0xEB9F
_HEADER_BYTES = 24
_KIND_INT, _KIND_FUNC, _KIND_FUNC_PROTO = 1, 12, 13
_INT_SIGNED = 1
_LINKAGE_STATIC = 0
FUNC_INFO_REC_BYTES = 8  # struct bpf_func_info { __u32 insn_off; __u32 type_id; }


def _type(name_off: int, kind: int, vlen: int, size_or_type: int) -> bytes:
    return struct.pack("<III", name_off, (kind << 24) | vlen, size_or_type)


def func_btf(nfuncs: int) -> bytes:
    """BTF with ``int`` (id 1), ``int (void)`` (id 2) and FUNCs f0.. (ids 3..)."""
    strings = bytearray(b"\0int\0")
    types = bytearray(_type(1, _KIND_INT, 0, 4) + struct.pack("<I", (_INT_SIGNED << 24) | 32))
    types += _type(0, _KIND_FUNC_PROTO, 0, 1)
    for index in range(nfuncs):
        name_off = len(strings)
        strings += f"f{index}".encode() + b"\0"
        types += _type(name_off, _KIND_FUNC, _LINKAGE_STATIC, 2)
    header = struct.pack("<HBBIIIII", _MAGIC, 1, 0, _HEADER_BYTES, 0, len(types),
                         len(types), len(strings))
    return header + bytes(types) + bytes(strings)


def func_info(starts_insns: list[int]) -> bytes:
    """func_info records for functions starting at these instruction offsets, in the
    order func_btf numbered them (the first must be 0: the entry)."""
    return b"".join(struct.pack("<II", start, 3 + index)
                    for index, start in enumerate(starts_insns))

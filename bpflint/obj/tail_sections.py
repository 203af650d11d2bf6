"""Tail-call targets named by section: iproute2's ``__section_tail(ID, KEY)``.

iproute2's tc loader, and Cilium's loader after it (pkg/bpf ``iproute2Compat``),
put the program of ELF section ``"ID/KEY"`` into slot ``KEY`` of the prog array
whose legacy ``struct bpf_elf_map`` (section ``maps``) has ``.id == ID``. Cilium's
datapath objects (bpf_lxc.o, bpf_host.o, ...) declare their internal tail calls
this way: ``2/15`` is slot 15 of ``cilium_calls``. Read as such, those slots are
statically known targets like a BTF map's ``.values``, and a tail call through them
costs its target instead of being an open edge.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace

from bpflint.obj.model import MapDef, Program

__all__ = ["ELF_MAP_ID_OFFSET", "parse_tail_section", "section_tail_slots"]

# struct bpf_elf_map (iproute2 include/bpf_elf.h): type, size_key, size_value,
# max_elem, flags, id, pinning, inner_id, inner_idx; ``id`` is the sixth u32
ELF_MAP_ID_OFFSET = 20

# "%u/%i" in iproute2, "%d/%v" in Cilium: a decimal map id, then a slot written in
# decimal, hex (0x..) or octal (leading 0); nothing may follow
_TAIL_SECTION = re.compile(r"([0-9]+)/(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def parse_tail_section(section: str) -> tuple[int, int] | None:
    """``"2/15"`` -> (2, 15), ``"1/0x0515"`` -> (1, 1301); None for other names."""
    found = _TAIL_SECTION.fullmatch(section)
    if found is None:
        return None
    slot = found.group(2)
    if slot[:2] in ("0x", "0X"):
        key = int(slot, 16)
    elif len(slot) > 1 and slot[0] == "0":
        key = int(slot, 8)
    else:
        key = int(slot)
    return int(found.group(1)), key


def section_tail_slots(maps: Mapping[str, MapDef], elf_ids: Mapping[str, int],
                       programs: Iterable[Program]) -> tuple[dict[str, MapDef], list[str]]:
    """``maps`` with the slots that ``"ID/KEY"`` sections fill, and notes on what was
    read. ``elf_ids``: legacy map name -> its ``.id`` (only maps whose id is not 0).
    Only a prog array whose id no other map shares takes slots (the loaders refuse a
    duplicate id), only slots under its max_entries, only programs whose name is
    unique in the object (a tail call's target is found by name), and none at all
    when two sections name the same slot."""
    by_id: dict[int, list[str]] = {}
    for name, map_id in elf_ids.items():
        by_id.setdefault(map_id, []).append(name)
    programs = list(programs)
    names = [p.name for p in programs]
    slots: dict[str, dict[int, str]] = {}
    clashes: set[str] = set()  # two sections for one slot: which one wins is unknown
    for program in programs:
        parsed = parse_tail_section(program.section)
        if parsed is None:
            continue
        map_id, key = parsed
        holders = by_id.get(map_id, [])
        if len(holders) != 1:
            continue
        mapdef = maps.get(holders[0])
        if mapdef is None or mapdef.type_name != "prog_array" or key >= mapdef.max_entries \
                or names.count(program.name) != 1:
            continue
        filled = slots.setdefault(mapdef.name, dict(mapdef.prog_slots))
        if key in filled:
            clashes.add(mapdef.name)
        filled[key] = program.name
    out = dict(maps)
    notes: list[str] = []
    for map_name, filled in sorted(slots.items()):
        if map_name in clashes:
            notes.append(f"prog array {map_name}: several sections '<id>/<slot>' name one "
                         f"slot; its tail calls stay open")
            continue
        out[map_name] = replace(maps[map_name], prog_slots=tuple(sorted(filled.items())),
                                section_slots=True)
        notes.append(f"prog array {map_name}: {len(filled)} slots filled by the programs of "
                     f"sections '{elf_ids[map_name]}/<slot>' (iproute2's and Cilium's "
                     f"loaders fill them so)")
    return out, notes

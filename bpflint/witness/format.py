"""The replayable witness file: one JSON object per program (docs/witness.md).

Packet and context are hex strings; everything outside the program (map lookups
hitting or missing, the byte map values hold, helper results, callback rounds) is
the interpreter's :class:`World`, written field by field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from typing import Any

from bpflint.errors import BpfLintError
from bpflint.interp.refinterp import Input, World

FORMAT = "bpflint-witness"
# 2: "maps" is what the maps hold before the run and the replay loads it (version 1
# listed the hash keys that hit, for measure --worst only); world.values
VERSION = 2
READABLE_VERSIONS = (1, 2)

_SEQUENCES = ("lookup_hits", "update_results", "scalars", "callback_rounds")
_FLAGS = ("array_lookup_null", "reads_fail", "ringbuf_full", "tail_call_fails")


@dataclass(frozen=True)
class Witness:
    """An input and what executing it showed."""

    object: str
    program: str
    type: str
    by: str  # "insns" or "ns": which worst path it aims at
    input: Input
    executed_insns: int
    insns_max: int | None
    retval: int = 0
    # (map, key, value) the maps hold before the run, as its lookups found them (a
    # hash hit, an array element's bytes): the interpreter's replay and measure
    # --worst load them, so a kernel map takes the run the same way
    map_entries: tuple[tuple[str, bytes, bytes], ...] = ()

    @property
    def reached(self) -> float | None:
        if not self.insns_max:
            return None
        return self.executed_insns / self.insns_max


def world_to_json(world: World) -> dict[str, Any]:
    """The world but its map contents (the witness file's "maps")."""
    doc: dict[str, Any] = {}
    for name in _SEQUENCES:
        doc[name] = [bool(v) if name == "lookup_hits" else int(v) for v in getattr(world, name)]
    for name in _FLAGS:
        doc[name] = bool(getattr(world, name))
    doc["value_fill"] = world.value_fill
    doc["hash_elems"] = world.hash_elems
    doc["sample"] = world.sample.hex()
    if world.values:
        doc["values"] = [v.hex() for v in world.values]
    if world.rodata:
        doc["rodata"] = dict(world.rodata)
    if world.globals:
        doc["globals"] = {name: data.hex() for name, data in world.globals}
    return doc


def input_to_json(inp: Input) -> dict[str, Any]:
    return {"packet": inp.packet.hex(), "ctx": inp.ctx.hex(), "world": world_to_json(inp.world)}


def to_json(w: Witness) -> dict[str, Any]:
    reached = w.reached
    return {"format": FORMAT, "version": VERSION, "object": w.object, "program": w.program,
            "type": w.type, "by": w.by, "executed_insns": w.executed_insns,
            "insns_max": w.insns_max, "reached": None if reached is None else round(reached, 4),
            "retval": w.retval, "input": input_to_json(w.input),
            "maps": maps_to_json(w.input.world.map_contents)}


def maps_to_json(entries: tuple[tuple[str, bytes, bytes], ...]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name, key, value in entries:
        out.setdefault(name, {})[key.hex()] = value.hex()
    return out


def maps_from_json(where: str, doc: dict[str, Any]) -> tuple[tuple[str, bytes, bytes], ...]:
    maps = doc.get("maps", {})
    if not isinstance(maps, dict):
        raise BpfLintError(f"{where}: maps must be an object")
    out = []
    for name, entries in maps.items():
        if not isinstance(entries, dict):
            raise BpfLintError(f"{where}: maps.{name} must be an object of hex keys")
        for key, value in entries.items():
            out.append((name, _hex(where, f"maps.{name} key", key),
                        _hex(where, f"maps.{name}[{key}]", value)))
    return tuple(out)


def dumps(w: Witness) -> str:
    return json.dumps(to_json(w), indent=2) + "\n"


def _hex(where: str, key: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise BpfLintError(f"{where}: {key} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise BpfLintError(f"{where}: {key} is not hex: {value[:40]!r}") from None


def world_from_json(where: str, doc: Any) -> World:
    if not isinstance(doc, dict):
        raise BpfLintError(f"{where}: input.world must be an object")
    known = {f.name for f in fields(World)}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise BpfLintError(f"{where}: unknown world field {unknown[0]!r}")
    kwargs: dict[str, Any] = {}
    for name in _SEQUENCES:
        if name in doc:
            seq = doc[name]
            if not isinstance(seq, list) or not all(isinstance(v, (int, bool)) for v in seq):
                raise BpfLintError(f"{where}: world.{name} must be a list of numbers")
            kwargs[name] = tuple(bool(v) for v in seq) if name == "lookup_hits" \
                else tuple(int(v) for v in seq)
    for name in _FLAGS:
        if name in doc:
            if not isinstance(doc[name], bool):
                raise BpfLintError(f"{where}: world.{name} must be true or false")
            kwargs[name] = doc[name]
    for name in ("value_fill", "hash_elems"):
        if name in doc:
            if not isinstance(doc[name], int) or isinstance(doc[name], bool) or doc[name] < 0:
                raise BpfLintError(f"{where}: world.{name} must be a non-negative integer")
            kwargs[name] = doc[name]
    if kwargs.get("value_fill", 0) > 255:
        raise BpfLintError(f"{where}: world.value_fill must be a byte (0-255)")
    if "sample" in doc:
        kwargs["sample"] = _hex(where, "world.sample", doc["sample"])
    if "values" in doc:
        if not isinstance(doc["values"], list):
            raise BpfLintError(f"{where}: world.values must be a list of hex strings")
        kwargs["values"] = tuple(_hex(where, f"world.values[{i}]", v)
                                 for i, v in enumerate(doc["values"]))
    if "rodata" in doc:
        ro = doc["rodata"]
        if not isinstance(ro, dict) or not all(isinstance(v, int) and not isinstance(v, bool)
                                               for v in ro.values()):
            raise BpfLintError(f"{where}: world.rodata must map names to integers")
        kwargs["rodata"] = tuple(sorted(ro.items()))
    if "globals" in doc:
        gd = doc["globals"]
        if not isinstance(gd, dict):
            raise BpfLintError(f"{where}: world.globals must map sections to hex strings")
        kwargs["globals"] = tuple(sorted((name, _hex(where, f"world.globals.{name}", v))
                                         for name, v in gd.items()))
    return World(**kwargs)


def loads(where: str, text: str) -> dict[str, Any]:
    """The parsed witness file, its input checked; a one-line error otherwise."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise BpfLintError(f"{where}: not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BpfLintError(f"{where}: not a bpflint witness (no \"format\": \"{FORMAT}\")")
    if doc.get("version") not in READABLE_VERSIONS:
        raise BpfLintError(f"{where}: witness version {doc.get('version')!r} "
                           f"is not one of {', '.join(map(str, READABLE_VERSIONS))}")
    if not isinstance(doc.get("input"), dict):
        raise BpfLintError(f"{where}: no input object")
    return doc


def input_from_json(where: str, doc: dict[str, Any]) -> Input:
    """The saved input; from version 2 on, with the maps holding "maps" before the run."""
    inp = doc["input"]
    world = world_from_json(where, inp.get("world", {}))
    if doc.get("version", VERSION) >= 2:
        world = replace(world, map_contents=maps_from_json(where, doc))
    return Input(ctx=_hex(where, "input.ctx", inp.get("ctx", "")),
                 packet=_hex(where, "input.packet", inp.get("packet", "")), world=world)

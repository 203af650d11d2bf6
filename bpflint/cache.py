"""A cache of analysis results, one JSON file per object content.

A result depends only on the object's bytes, the code that analysed it, the cost
table and the analysis options, so those (hashed) are the key; the object's path is
not, and a cached result is handed back under whatever path the object has now.

Layout under the cache directory (default ``$XDG_CACHE_HOME/bpflint``, else
``~/.cache/bpflint``)::

    results/<k[:2]>/<k>.json    {"format", "key", "programs", "errors", "notes",
                                 "loader_vars"}
    toml/<sha256>.marshal       a budget file's parsed TOML, by its text's sha256
                                (cost/table_ready.py: `check` skips tomllib)

The directory is safe to delete at any time and safe to share between concurrent
runs: an entry is written to a temporary file in its final directory and renamed into
place, so a reader sees the whole old entry, the whole new one or none. An entry that
cannot be read or does not validate is ignored (the object is analysed again and the
entry rewritten); a cache that cannot be written only costs speed.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bpflint import __version__
from bpflint.results import ProgramResult

FORMAT = 1
RESULTS_DIR = "results"
_PACKAGE_DIR = Path(__file__).resolve().parent
# how the engine reports a program stopped by its CPU-time budget (BPF006)
ANALYSIS_LIMIT = "analysis-limit"
CPU_TIME_MARK = "CPU-time"

T = TypeVar("T")
# tempfile.mkstemp's: a new file (never one already there, nor a link) for this process
_NEW_FILE_FLAGS = (os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                   | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


# ---------------------------------------------------------------- where

def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/bpflint``, else ``~/.cache/bpflint`` (XDG base directory spec:
    a relative XDG_CACHE_HOME is invalid and ignored)."""
    xdg = environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "bpflint"
    return Path.home() / ".cache" / "bpflint"


# ---------------------------------------------------------------- what

@dataclass(frozen=True)
class ObjectOutcome:
    """What analysing one object produced, independent of the path it was read from.

    ``errors`` and ``notes`` are messages without the object's path; results carry the
    path they were analysed under, replaced by :meth:`at` for another path.
    """

    programs: tuple[ProgramResult, ...] = ()
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    loader_vars: tuple[str, ...] = ()  # names of the object's loader-set variables

    def at(self, path: str) -> ObjectOutcome:
        programs = tuple(p if p.object == path else dataclasses.replace(p, object=path)
                         for p in self.programs)
        return ObjectOutcome(programs, self.errors, self.notes, self.loader_vars)


def is_cacheable(outcome: ObjectOutcome) -> bool:
    """Only outcomes that the same inputs always reproduce are cached.

    Errors are left out: besides bad input they cover running out of memory and
    internal errors, which another run may not meet; an object with errors fails the
    run anyway, so caching it would save nothing worth the risk. A result cut short by
    the CPU-time budget depends on the machine's speed, not on the inputs.
    """
    if outcome.errors:
        return False
    return not any(diag.name == ANALYSIS_LIMIT and CPU_TIME_MARK in diag.message
                   for result in outcome.programs for diag in result.diagnostics)


def code_digest() -> str:
    """Hash of every module of the installed package: results from other code (a new
    release, or an edited checkout whose version did not change) never match."""
    digest = hashlib.sha256(__version__.encode())
    for parts in _module_files(str(_PACKAGE_DIR)):
        digest.update(b"\0" + "/".join(parts).encode() + b"\0")
        with open(os.path.join(_PACKAGE_DIR, *parts), "rb") as module:
            digest.update(module.read())
    return digest.hexdigest()


def _module_files(root: str) -> list[tuple[str, ...]]:
    """The *.py files under root, as path parts from root, in the order of sorted
    Path objects (part by part). os.scandir, not Path.rglob: a third of the time."""
    found: list[tuple[str, ...]] = []
    pending: list[tuple[str, ...]] = [()]
    while pending:
        where = pending.pop()
        with os.scandir(os.path.join(root, *where)) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((*where, entry.name))
                elif entry.name.endswith(".py") and entry.is_file():
                    found.append((*where, entry.name))
    return sorted(found)


def entry_key(content_sha256: str, code: str, table_digest: str | None,
              settings: Mapping[str, Any]) -> str:
    """The cache key of one object: its content, the analysing code, the cost table
    and every setting that changes a result (analysis options, read limits)."""
    text = json.dumps({"format": FORMAT, "bpflint": __version__, "code": code,
                       "table": table_digest, "settings": settings, "object": content_sha256},
                      sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------- (de)serialising

def to_dict(value: Any) -> Any:
    """A results dataclass (and what it holds) as JSON-ready data, field by field."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_dict(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_dict(item) for item in value]
    return value


class EntryError(ValueError):
    """Cached data that does not fit the type it should decode to."""


def from_dict(cls: type[T], data: Any) -> T:
    """Inverse of :func:`to_dict`, checking every field against its annotation, so a
    damaged entry is rejected instead of producing a result of the wrong shape."""
    return typing.cast(T, _decode(cls, data, cls.__name__))


def _decode(hint: Any, data: Any, where: str) -> Any:
    try:
        return _decoder(hint)(data)
    except EntryError as exc:
        raise EntryError(f"{where}{exc}") from None


Decoder = typing.Callable[[Any], Any]


@functools.cache
def _decoder(hint: Any) -> Decoder:
    """A checking decoder for values of ``hint``, built once per type: a warm run
    decodes a million values, and inspecting the annotation each time took most of it.
    Errors carry the path below the value (".field[3]: expected ..."); the caller
    puts the top-level name in front."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [_decoder(option) for option in typing.get_args(hint)]

        def union(data: Any) -> Any:
            for option in options:
                try:
                    return option(data)
                except EntryError:
                    continue
            raise EntryError(f": {data!r} fits none of {hint}")
        return union
    if origin is tuple:
        item = _decoder(typing.get_args(hint)[0])  # results only use tuple[X, ...]

        def sequence(data: Any) -> Any:
            if not isinstance(data, list):
                raise EntryError(": expected a list")
            out = []
            for i, value in enumerate(data):
                try:
                    out.append(item(value))
                except EntryError as exc:
                    raise EntryError(f"[{i}]{exc}") from None
            return tuple(out)
        return sequence
    if hint is type(None):
        def null(data: Any) -> Any:
            if data is not None:
                raise EntryError(": expected null")
            return None
        return null
    if dataclasses.is_dataclass(hint):
        return _dataclass_decoder(hint)
    if hint in _SCALARS:
        allowed, name = _SCALARS[hint]
        convert = float if hint is float else (lambda value: value)

        def scalar(data: Any) -> Any:
            if type(data) not in allowed:
                raise EntryError(f": expected {name}")
            return convert(data)
        return scalar
    raise EntryError(f": cannot decode type {hint}")


# the exact types (as json.loads builds them) each scalar annotation accepts, and its
# name for errors; bool is not an int here
_SCALARS: dict[Any, tuple[frozenset[type], str]] = {
    bool: (frozenset({bool}), "a boolean"),
    int: (frozenset({int}), "an integer"),
    float: (frozenset({int, float}), "a number"),
    str: (frozenset({str}), "a string"),
}


def _dataclass_decoder(cls: Any) -> Decoder:
    hints = typing.get_type_hints(cls)
    fields = [(f.name, _decoder(hints[f.name])) for f in dataclasses.fields(cls) if f.init]
    names = {name for name, _ in fields}

    def record(data: Any) -> Any:
        if not isinstance(data, dict):
            raise EntryError(": expected an object")
        if len(data) != len(fields) or not names.issuperset(data):
            unknown = set(data) - names
            if unknown:
                raise EntryError(f": unknown field {sorted(unknown)[0]}")
            missing = next(name for name, _ in fields if name not in data)
            raise EntryError(f": missing field {missing}")
        values = {}
        for name, decode in fields:
            try:
                values[name] = decode(data[name])
            except EntryError as exc:
                raise EntryError(f".{name}{exc}") from None
        return cls(**values)

    if not all(hints[name] in _SCALARS for name, _ in fields):
        return record
    # Every field a plain scalar (LineCost: a warm run decodes ~180k of them): check
    # the types in one pass, and leave error messages to ``record``.
    checks = [(name, _SCALARS[hints[name]][0], hints[name] is float) for name, _ in fields]

    def flat(data: Any) -> Any:
        if type(data) is not dict or len(data) != len(checks):
            return record(data)
        values = []
        for name, allowed, is_float in checks:
            value = data.get(name, _ABSENT)
            if type(value) not in allowed:
                return record(data)
            values.append(float(value) if is_float else value)
        return cls(*values)
    return flat


_ABSENT = object()


def _str_tuple(data: Any, where: str) -> tuple[str, ...]:
    return typing.cast(tuple[str, ...], _decode(tuple[str, ...], data, where))


# ---------------------------------------------------------------- the store

class ResultCache:
    """Entries under ``directory``; lookups and stores never raise for cache trouble."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.write_problem: str | None = None  # the first failed store, for a note

    def path_of(self, key: str) -> Path:
        return self.directory / RESULTS_DIR / key[:2] / f"{key}.json"

    def load(self, key: str) -> ObjectOutcome | None:
        try:
            data = json.loads(self.path_of(key).read_bytes())
            if not isinstance(data, dict) or data.get("format") != FORMAT \
                    or data.get("key") != key:
                return None
            programs = data["programs"]
            if not isinstance(programs, list):
                return None
            return ObjectOutcome(
                tuple(from_dict(ProgramResult, item) for item in programs),
                _str_tuple(data["errors"], "errors"),
                _str_tuple(data["notes"], "notes"),
                _str_tuple(data["loader_vars"], "loader_vars"),
            )
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return None  # absent, half-written by an old crash, or damaged: analyse again

    def store(self, key: str, outcome: ObjectOutcome) -> None:
        entry = {"format": FORMAT, "key": key, "programs": to_dict(outcome.programs),
                 "errors": list(outcome.errors), "notes": list(outcome.notes),
                 "loader_vars": list(outcome.loader_vars)}
        try:
            # NaN or infinity has no JSON form; such a result is simply not cached
            data = json.dumps(entry, allow_nan=False, separators=(",", ":")).encode()
        except ValueError:
            return
        target = self.path_of(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # a file of its own, made as tempfile.mkstemp makes one, without importing
            # tempfile (and shutil, bz2, lzma, random with it: 3-5 ms of a run)
            tmp = str(target.parent / f".{target.name}.{os.urandom(6).hex()}")
            fd = os.open(tmp, _NEW_FILE_FLAGS, 0o600)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, target)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            if self.write_problem is None:
                self.write_problem = f"{self.directory}: cannot write the result cache " \
                                     f"({exc.strerror or exc}); results are not cached"

"""The committed baseline: per-program cost ranges, diff-friendly, written atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpflint import __version__
from bpflint.budget.keys import object_identity, program_key
from bpflint.errors import BpfLintError
from bpflint.results import ProgramResult

FORMAT_VERSION = 1


@dataclass(frozen=True)
class BaselineEntry:
    """One program's recorded figures in the baseline file."""

    key: str  # keys.program_key: object path (relative to the budget file), section, name
    object: str  # the object's path relative to the budget file (older baselines: its name)
    section: str
    name: str
    type: str
    bounded: bool
    insns_min: int | None
    insns_max: int | None
    ns_min: float | None
    ns_max: float | None

    @classmethod
    def from_result(cls, result: ProgramResult, identity: str) -> BaselineEntry:
        return cls(
            key=program_key(identity, result.section, result.name),
            object=identity,
            section=result.section,
            name=result.name,
            type=result.type,
            bounded=result.bounded,
            insns_min=result.insns_min,
            insns_max=result.insns_max,
            ns_min=baseline_ns(result.ns_min),
            ns_max=baseline_ns(result.ns_max),
        )


def baseline_ns(value: float | None) -> float | None:
    """ns as a baseline keeps it: one decimal keeps diffs quiet without hiding a real
    change. Compare a current figure with a baseline's only after this rounding, or
    an unchanged 0.34 ns program 'regresses' against its stored 0.3 ns."""
    return None if value is None else round(value, 1)


@dataclass(frozen=True)
class Baseline:
    """The recorded results a run is compared with."""

    source: str  # what it came from, for reports: a file path or "git ref REF"
    entries: Mapping[str, BaselineEntry]


def from_results(results: Iterable[ProgramResult], source: str, root: Path | None = None,
                 identities: Mapping[str, str] | None = None) -> Baseline:
    """``identities`` names each object (by ``result.object``) relative to the budget
    file; objects it does not name are taken relative to ``root`` (default: the cwd)."""
    entries: dict[str, BaselineEntry] = {}
    for result in results:
        identity = (identities or {}).get(result.object) or \
            object_identity(result.object, root or Path.cwd())
        entry = BaselineEntry.from_result(result, identity)
        if entry.key in entries:
            raise BpfLintError(f"{result.object}: program {result.name!r} in section "
                               f"{result.section!r} is analysed twice; the baseline keeps "
                               "one entry per program")
        entries[entry.key] = entry
    return Baseline(source=source, entries=dict(sorted(entries.items())))


def to_json_text(baseline: Baseline) -> str:
    programs = {
        key: {
            "object": entry.object,
            "section": entry.section,
            "name": entry.name,
            "type": entry.type,
            "bounded": entry.bounded,
            "insns": {"min": entry.insns_min, "max": entry.insns_max},
            "ns": {"min": entry.ns_min, "max": entry.ns_max},
        }
        for key, entry in sorted(baseline.entries.items())
    }
    document = {"version": FORMAT_VERSION, "generator": f"bpflint {__version__}",
                "programs": programs}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_baseline(path: Path, baseline: Baseline) -> None:
    """Replace ``path`` atomically: readers see the old file or the new one, never half.

    The temporary file lives in the same directory so os.replace is a rename on one
    file system; fsync before the rename so a crash cannot leave an empty file under
    the final name.
    """
    text = to_json_text(baseline)
    directory = path.parent if str(path.parent) else Path(".")
    import tempfile  # here: a check reads the baseline, only `baseline` writes it

    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise BpfLintError(f"{path}: cannot write baseline: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(tmp_name, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException as exc:
        Path(tmp_name).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise BpfLintError(f"{path}: cannot write baseline: {exc.strerror or exc}") from None
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every file system allows it, and the
    # rename has already happened, so failing here is not worth an error.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_baseline(path: Path) -> Baseline:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BpfLintError(f"{path}: cannot read baseline: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BpfLintError(f"{path}: not a bpflint baseline (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        raise BpfLintError(f"{path}: not a version {FORMAT_VERSION} bpflint baseline")
    programs = data.get("programs")
    if not isinstance(programs, dict):
        raise BpfLintError(f"{path}: baseline has no 'programs' table")
    entries = {}
    for key, item in programs.items():
        try:
            entries[key] = _entry(key, item)
        except (KeyError, TypeError, ValueError):
            raise BpfLintError(f"{path}: baseline entry {key!r} is malformed") from None
    return Baseline(source=str(path), entries=entries)


def _entry(key: str, item: Mapping[str, Any]) -> BaselineEntry:
    insns, ns = item["insns"], item["ns"]
    return BaselineEntry(
        key=key,
        object=str(item["object"]),
        section=str(item["section"]),
        name=str(item["name"]),
        type=str(item.get("type", "")),
        bounded=bool(item["bounded"]),
        insns_min=_opt_int(insns["min"]),
        insns_max=_opt_int(insns["max"]),
        ns_min=_opt_float(ns["min"]),
        ns_max=_opt_float(ns["max"]),
    )


def _opt_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(value)
    return value


def _opt_float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(value)
    return float(value)

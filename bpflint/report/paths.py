"""One spelling of every path a report shows: relative to the repository root when
the file is inside it, else as given, normalised; a line 0 is never shown.

BTF records a source path as clang was given it: absolute, or relative to the
directory clang ran in ("././parse.h" after -fdebug-prefix-map=$(CURDIR)=.), which
is usually the object's directory or one of its parents. So a relative path is
looked up there first, then at the root, then in the current directory.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path, PurePath
from typing import Any

from bpflint.budget.keys import relative_or_given
from bpflint.results import (
    AnalysisReport,
    CallNote,
    Diagnostic,
    LineCost,
    LoopNote,
    ObjectError,
    ProgramResult,
    SourceLoc,
)


def where(file: str, line: int | None) -> str:
    """"file:line", or the file alone when there is no line (None or 0)."""
    return f"{file}:{line}" if line is not None and line > 0 else file


class PathNamer:
    """Names objects and source files relative to ``root``; remembers each lookup."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self._sources: dict[tuple[str, str], str] = {}

    def object(self, path: str) -> str:
        return relative_or_given(path, self.root)

    def source(self, file: str, object_path: str) -> str:
        if not file:
            return file
        key = (file, object_path)
        named = self._sources.get(key)
        if named is None:
            named = self._find(file, object_path)
            self._sources[key] = named
        return named

    def _find(self, file: str, object_path: str) -> str:
        if os.path.isabs(file):
            return relative_or_given(file, self.root)
        start = Path(os.path.abspath(object_path)).parent
        bases = [start]
        for parent in start.parents:
            bases.append(parent)
            if parent == self.root:
                break
        bases += [self.root, Path.cwd()]
        for base in bases:
            candidate = base / file
            if candidate.is_file():
                return relative_or_given(str(candidate), self.root)
        return PurePath(os.path.normpath(file)).as_posix()

    def result(self, result: ProgramResult) -> ProgramResult:
        """The result with its object and every source location renamed. Fields are
        found by type, so a location field added later is renamed too."""
        obj = result.object

        def loc(value: SourceLoc) -> SourceLoc:
            return SourceLoc(self.source(value.file, obj), value.line)

        def rename(value: Any) -> Any:
            if isinstance(value, SourceLoc):
                return loc(value)
            if isinstance(value, (LineCost, LoopNote, CallNote)):
                return dataclasses.replace(value, file=self.source(value.file, obj))
            if isinstance(value, Diagnostic) and value.loc is not None:
                return dataclasses.replace(value, loc=loc(value.loc),
                                           related=tuple(loc(r) for r in value.related))
            if isinstance(value, tuple):
                return tuple(rename(item) for item in value)
            return value

        changes = {f.name: rename(getattr(result, f.name)) for f in dataclasses.fields(result)
                   if f.name != "object"}
        return dataclasses.replace(result, object=self.object(obj), **changes)

    def report(self, report: AnalysisReport) -> AnalysisReport:
        return dataclasses.replace(
            report, programs=tuple(self.result(r) for r in report.programs),
            errors=tuple(ObjectError(self.object(e.object), e.message) for e in report.errors))

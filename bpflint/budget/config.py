"""bpfbudget.toml: parse, validate and locate every mistake at its file and line.

tomllib gives values without positions, so a small scan of the text (key_lines)
records the line of every key and table header; validation then names a mistake
as ``FILE:LINE: key 'x': problem``. See docs/bpfbudget.md for the format.
"""

from __future__ import annotations

import glob
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bpflint.budget.units import Allowance, parse_allowance, parse_time_ns
from bpflint.build import BuildSettings
from bpflint.errors import BpfLintError
from bpflint.obj.loader_vars import RodataPin, parse_value

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from tomllib import TOMLDecodeError
    else:  # pragma: no cover - exercised on 3.10 only
        from tomli import TOMLDecodeError

DEFAULT_NAME = "bpfbudget.toml"

KeyPath = tuple[str | int, ...]
Policy = Literal["fail", "warn", "ignore"]
POLICIES: tuple[Policy, ...] = ("fail", "warn", "ignore")


@dataclass(frozen=True)
class Budget:
    """One [[budget]] table. A table with no matcher key is the default budget."""

    number: int  # 1-based position among the [[budget]] tables of the file
    line: int
    program: str | None = None
    section: str | None = None
    object: str | None = None
    type: str | None = None
    max_insns: int | None = None
    max_ns: float | None = None
    max_time: str | None = None  # as written, for reports

    @property
    def matchers(self) -> dict[str, str]:
        found = {
            "program": self.program,
            "section": self.section,
            "object": self.object,
            "type": self.type,
        }
        return {key: value for key, value in found.items() if value is not None}

    @property
    def label(self) -> str:
        what = ", ".join(f"{k} {v!r}" for k, v in self.matchers.items()) or "default"
        return f"budget #{self.number} (line {self.line}: {what})"

    @property
    def limit_text(self) -> str:
        parts = []
        if self.max_insns is not None:
            parts.append(f"{self.max_insns} insns")
        if self.max_time is not None:
            parts.append(self.max_time)
        return " / ".join(parts)


@dataclass(frozen=True)
class Limits:
    """[limits]: analysis and input-size limits; None keeps bpflint's default."""

    max_steps: int | None = None  # abstract-interpretation steps per program
    max_seconds: float | None = None  # CPU seconds per program
    max_object_bytes: int | None = None
    max_btf_bytes: int | None = None


@dataclass(frozen=True)
class BudgetConfig:
    """A budget file (bpfbudget.toml), read and checked."""

    path: Path
    objects: tuple[str, ...] = ()  # globs relative to the config's directory
    sources: tuple[str, ...] = ()
    build: BuildSettings = BuildSettings()
    budgets: tuple[Budget, ...] = ()
    allowance: Allowance | None = None
    unbounded: Policy = "fail"
    unmatched: Policy = "warn"
    baseline: Path | None = None
    cost_table: Path | None = None
    tail_calls: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    warn_only: bool = False
    limits: Limits = Limits()
    rodata: tuple[RodataPin, ...] = ()  # [rodata]: loader-set variables pinned
    key_lines: Mapping[KeyPath, int] = field(default_factory=dict)
    # [analyze] build: argv that builds the objects, run by `check --base` in a
    # temporary checkout of the base revision (relative to the budget file's directory)
    build_command: tuple[str, ...] = ()
    # [analyze] allow_empty: finding no program at all is expected, not an error
    allow_empty: bool = False
    # [analyze] may_goto: "any" (either kernel), "timed" (Linux >= 6.15 JIT) or
    # "count"; None: the default
    may_goto: str | None = None
    # [analyze] cpu_caches: what ns.max assumes about the CPU caches hash maps sit in,
    # "cold" (sound for a busy hook) or "hot" (typical of a map used again and again);
    # None: the default (bpflint/cost/model.py CPU_CACHES)
    cpu_caches: str | None = None

    @property
    def root(self) -> Path:
        return self.path.parent

    def line_of(self, key: KeyPath) -> int:
        """Line of a key, else of its closest enclosing table, else 1."""
        while key:
            if key in self.key_lines:
                return self.key_lines[key]
            key = key[:-1]
        return 1

    def error(self, key: KeyPath, problem: str) -> BpfLintError:
        return BpfLintError(f"{self.path}:{self.line_of(key)}: key '{dotted(key)}': {problem}")

    def expand(self, key: Literal["objects", "sources"], strict: bool = True
               ) -> tuple[Path, ...]:
        """Files the [analyze] globs name; a glob that matches nothing is an error
        unless ``strict`` is off (a base revision may predate the files)."""
        found: dict[Path, None] = {}
        for index, pattern in enumerate(getattr(self, key)):
            hits = sorted(glob.glob(os.path.join(self.root, pattern), recursive=True))
            files = [Path(hit) for hit in hits if os.path.isfile(hit)]
            if not files and strict:
                raise self.error(("analyze", key, index), f"glob {pattern!r} matches no file")
            found.update(dict.fromkeys(files))
        return tuple(found)


def dotted(key: KeyPath) -> str:
    """("budget", 1, "max_time") -> "budget[2].max_time" (tables numbered from 1)."""
    out = ""
    for part in key:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            out += ("." if out else "") + part
    return out


# ---------------------------------------------------------------- key positions

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_SIMPLE_KEY = r"(?:[A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')"
_KEY = re.compile(rf"^\s*({_SIMPLE_KEY}(?:\s*\.\s*{_SIMPLE_KEY})*)\s*=(.*)$")
_PART = re.compile(_SIMPLE_KEY)


def _split_key(text: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in _PART.findall(text))


def _bracket_depth(value: str) -> int:
    """Net open brackets in a value, ignoring those inside strings and comments."""
    depth, quote = 0, ""
    for char in value:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#":
            break
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
    return depth


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map each key path (and table header) of a TOML text to its 1-based line.

    Array-of-tables entries get their index: the second [[budget]]'s "type" key is
    ("budget", 1, "type"). Lines inside multi-line strings and arrays are skipped.
    Array elements on their own lines are numbered too, so ("analyze", "objects", 2)
    is the line of the third glob when the array spans several lines.
    """
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()
    array_counts: dict[tuple[str, ...], int] = {}
    in_string = ""  # the triple quote we are inside, if any
    open_array: KeyPath | None = None
    array_depth = 0
    element = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string:
            if in_string in line:
                in_string = ""
            continue
        if open_array is not None:
            if line.strip() and not line.strip().startswith(("#", "]")):
                lines.setdefault((*open_array, element), number)
                element += line.count(",") if line.rstrip().endswith(",") else 1
            array_depth += _bracket_depth(line)
            if array_depth <= 0:
                open_array = None
            continue
        if header := _HEADER.match(line):
            names = _split_key(header.group(2))
            if header.group(1) == "[[":
                index = array_counts.get(names, -1) + 1
                array_counts[names] = index
                table = (*names, index)
            else:
                table = names
            lines.setdefault(table, number)
            continue
        if key := _KEY.match(line):
            path = (*table, *_split_key(key.group(1)))
            lines.setdefault(path, number)
            value = key.group(2)
            for quote in ('"""', "'''"):
                if value.count(quote) % 2 == 1:
                    in_string = quote
            depth = _bracket_depth(value)
            if depth > 0 and value.strip().startswith("["):
                open_array, array_depth, element = path, depth, 0
    return lines


# ---------------------------------------------------------------- validation

Checker = Callable[[Any], bool]


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_table(value: Any) -> bool:
    return isinstance(value, dict)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


_TYPE_NAMES: dict[Checker, str] = {
    _is_str: "a string",
    _is_bool: "true or false",
    _is_str_list: "a list of strings",
    _is_int: "an integer",
    _is_number: "a number",
    _is_table: "a table",
    _is_table_list: "an array of tables ([[budget]])",
}

_TOP: dict[str, Checker] = {
    "baseline": _is_str,
    "cost_table": _is_str,
    "warn_only": _is_bool,
    "analyze": _is_table,
    "build": _is_table,
    "regression": _is_table,
    "budget": _is_table_list,
    "tail_calls": _is_table,
    "limits": _is_table,
    "rodata": _is_table,
}
_ANALYZE: dict[str, Checker] = {"objects": _is_str_list, "sources": _is_str_list,
                                "build": _is_str_list, "allow_empty": _is_bool,
                                "may_goto": _is_str, "cpu_caches": _is_str}
MAY_GOTO_MODELS = ("any", "timed", "count")  # bpflint/cost/may_goto.py MODELS
CPU_CACHES = ("cold", "hot")  # bpflint/cost/model.py CPU_CACHES
_BUILD: dict[str, Checker] = {
    "clang": _is_str,
    "flags": _is_str_list,
    "include_dirs": _is_str_list,
    "defines": _is_str_list,
}
_LIMITS: dict[str, Checker] = {
    "max_steps": _is_int,
    "max_seconds": _is_number,
    "max_object_bytes": _is_int,
    "max_btf_bytes": _is_int,
}
_REGRESSION: dict[str, Checker] = {"allowed": _is_str, "unbounded": _is_str, "unmatched": _is_str}
_BUDGET: dict[str, Checker] = {
    "program": _is_str,
    "section": _is_str,
    "object": _is_str,
    "type": _is_str,
    "max_insns": _is_int,
    "max_time": _is_str,
}


class _Validator:
    def __init__(self, path: Path, lines: Mapping[KeyPath, int]) -> None:
        self.stub = BudgetConfig(path=path, key_lines=lines)

    def check_table(self, table: Mapping[str, Any], where: KeyPath,
                    schema: Mapping[str, Checker]) -> None:
        for key, value in table.items():
            path = (*where, key)
            if key not in schema:
                raise self.stub.error(path, self._unknown(key, where, schema))
            if not schema[key](value):
                kind = _TYPE_NAMES[schema[key]]
                raise self.stub.error(path, f"expected {kind}, got {_describe(value)}")

    @staticmethod
    def _unknown(key: str, where: KeyPath, schema: Mapping[str, Checker]) -> str:
        message = "unknown key"
        import difflib  # only for a message: not start-up time

        close = difflib.get_close_matches(key, list(schema), n=1, cutoff=0.6)
        if close:
            return f"{message}; did you mean '{close[0]}'?"
        if where and key in _TOP:
            # TOML puts a key written after a [table] header inside that table.
            return f"{message}; top-level keys such as '{key}' must come before the first [table]"
        return f"{message}; expected one of: {', '.join(sorted(schema))}"


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list" + (" with a non-string item" if value else "")
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _syntax_error(path: Path, exc: TOMLDecodeError) -> BpfLintError:
    message = str(exc)
    match = re.search(r"\(at line (\d+), column \d+\)", message)
    line = match.group(1) if match else "1"
    reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
    return BpfLintError(f"{path}:{line}: invalid TOML: {reason}")


def toml_document(path: Path, text: str) -> dict[str, Any]:
    """The budget file's text parsed; tomllib is imported here, only when a text
    is parsed (a check keeps the documents it parsed: load_config)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(path, exc) from None


Remembered = Callable[[str, Callable[[], dict[str, Any]]], dict[str, Any]]


def load_config(path: Path, remembered: Remembered | None = None) -> BudgetConfig:
    """Read and validate a bpfbudget.toml; any mistake raises a located BpfLintError.
    ``remembered(text, parse)``, when given, returns the text's document, from
    ``parse()`` or from a store of documents parsed before (cost/table_ready.py)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BpfLintError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BpfLintError(f"{path}: not UTF-8 text") from None
    if remembered is None:
        data = toml_document(path, text)
    else:
        data = remembered(text, lambda: toml_document(path, text))
    lines = key_lines(text)
    check = _Validator(path, lines)
    stub = check.stub
    check.check_table(data, (), _TOP)
    analyze = data.get("analyze", {})
    check.check_table(analyze, ("analyze",), _ANALYZE)
    build = data.get("build", {})
    check.check_table(build, ("build",), _BUILD)
    regression = data.get("regression", {})
    check.check_table(regression, ("regression",), _REGRESSION)
    limits = data.get("limits", {})
    check.check_table(limits, ("limits",), _LIMITS)
    for key, value in limits.items():
        if not value > 0:
            raise stub.error(("limits", key), f"must be more than zero, got {value!r}")

    allowance = None
    if "allowed" in regression:
        try:
            allowance = parse_allowance(regression["allowed"])
        except ValueError as exc:
            raise stub.error(("regression", "allowed"), str(exc)) from None
    policies: dict[str, Policy] = {"unbounded": "fail", "unmatched": "warn"}
    for name in policies:
        if name in regression:
            value = regression[name]
            if value not in POLICIES:
                raise stub.error(("regression", name),
                                 f"expected \"fail\", \"warn\" or \"ignore\", got {value!r}")
            policies[name] = value

    tail_calls: dict[str, tuple[str, ...]] = {}
    for map_name, targets in data.get("tail_calls", {}).items():
        if not _is_str_list(targets):
            raise stub.error(("tail_calls", map_name),
                             f"expected a list of program names, got {_describe(targets)}")
        tail_calls[map_name] = tuple(targets)

    budgets = tuple(
        _budget(stub, check, index, table) for index, table in enumerate(data.get("budget", []))
    )
    defaults = [budget for budget in budgets if not budget.matchers]
    if len(defaults) > 1:
        raise stub.error(("budget", defaults[1].number - 1),
                         f"a second default budget (no program/section/object/type); "
                         f"the first is {defaults[0].label}")

    build_command = tuple(analyze.get("build", ()))
    if "build" in analyze and not (build_command and build_command[0].strip()):
        raise stub.error(("analyze", "build"), 'expected a command as a list of arguments, '
                         'e.g. ["make", "-C", "bpf"]')

    if analyze.get("may_goto", "any") not in MAY_GOTO_MODELS:
        raise stub.error(("analyze", "may_goto"), 'expected "any" (the larger bound of '
                         'the two models), "timed" (Linux >= 6.15 with the JIT) or '
                         f'"count" (older kernels), got {analyze["may_goto"]!r}')

    if analyze.get("cpu_caches", "cold") not in CPU_CACHES:
        raise stub.error(("analyze", "cpu_caches"), 'expected "cold" (hash maps priced '
                         'with cold caches: sound for a busy hook) or "hot" (typical of '
                         f'a map used again and again), got {analyze["cpu_caches"]!r}')

    root = path.parent
    files = {}
    for key in ("baseline", "cost_table"):
        files[key] = root / data[key] if key in data else None
    cost_table = files["cost_table"]
    if cost_table is not None:
        try:
            present = cost_table.is_file()
        except OSError as exc:  # e.g. a name longer than the file system allows
            raise stub.error(("cost_table",), f"unusable path: {exc.strerror}") from None
        if not present:
            raise stub.error(("cost_table",), f"no such file: {cost_table}")

    return BudgetConfig(
        path=path,
        objects=tuple(analyze.get("objects", ())),
        sources=tuple(analyze.get("sources", ())),
        build=BuildSettings(
            clang=build.get("clang"),
            flags=tuple(build.get("flags", ())),
            include_dirs=tuple(root / item for item in build.get("include_dirs", ())),
            defines=tuple(build.get("defines", ())),
        ),
        budgets=budgets,
        allowance=allowance,
        unbounded=policies["unbounded"],
        unmatched=policies["unmatched"],
        baseline=files["baseline"],
        cost_table=cost_table,
        tail_calls=tail_calls,
        warn_only=data.get("warn_only", False),
        rodata=_rodata(stub, data.get("rodata", {})),
        limits=Limits(
            max_steps=limits.get("max_steps"),
            max_seconds=float(limits["max_seconds"]) if "max_seconds" in limits else None,
            max_object_bytes=limits.get("max_object_bytes"),
            max_btf_bytes=limits.get("max_btf_bytes"),
        ),
        key_lines=lines,
        build_command=build_command,
        allow_empty=analyze.get("allow_empty", False),
        may_goto=analyze.get("may_goto"),
        cpu_caches=analyze.get("cpu_caches"),
    )


def _budget(stub: BudgetConfig, check: _Validator, index: int,
            table: Mapping[str, Any]) -> Budget:
    where: KeyPath = ("budget", index)
    check.check_table(table, where, _BUDGET)
    for key in ("program", "section", "object", "type", "max_time"):
        if key in table and not table[key].strip():
            raise stub.error((*where, key), "must not be empty")
    if "max_insns" not in table and "max_time" not in table:
        raise stub.error(where, "a [[budget]] needs max_insns and/or max_time")
    max_insns = table.get("max_insns")
    if max_insns is not None and max_insns <= 0:
        raise stub.error((*where, "max_insns"), f"must be a positive integer, got {max_insns}")
    max_ns = None
    if "max_time" in table:
        try:
            max_ns = parse_time_ns(table["max_time"])
        except ValueError as exc:
            raise stub.error((*where, "max_time"), str(exc)) from None
        if max_ns <= 0:
            raise stub.error((*where, "max_time"), "must be more than zero")
    return Budget(
        number=index + 1,
        line=stub.line_of(where),
        program=table.get("program"),
        section=table.get("section"),
        object=table.get("object"),
        type=table.get("type"),
        max_insns=max_insns,
        max_ns=max_ns,
        max_time=table.get("max_time"),
    )


_PIN_FORMS = 'an integer, true/false, [LO, HI] or "LO..HI"'


def _rodata(stub: BudgetConfig, table: Mapping[str, Any]) -> tuple[RodataPin, ...]:
    """[rodata]: ``NAME = VALUE`` pins in every object, ``[rodata."GLOB"]`` tables pin in
    the objects the glob matches (as a [[budget]]'s object: with a '/', the path
    relative to this file, else the file name). Those for every object come first, so
    a glob's pin of the same name wins."""
    every: list[RodataPin] = []
    per_glob: list[RodataPin] = []
    for key, value in table.items():
        if isinstance(value, dict):
            if not key.strip():
                raise stub.error(("rodata", key), "the object glob must not be empty")
            for name, item in value.items():
                per_glob.append(_pin(stub, ("rodata", key, name), name, item, key))
        else:
            every.append(_pin(stub, ("rodata", key), key, value, "*"))
    return (*every, *per_glob)


def _pin(stub: BudgetConfig, where: KeyPath, name: str, value: Any, glob_: str) -> RodataPin:
    if not name.isidentifier():
        raise stub.error(where, "expected the name of a const volatile variable (a C "
                                "identifier) or an object glob table")
    if isinstance(value, bool):
        lo = hi = int(value)
    elif _is_int(value):
        lo = hi = value
    elif isinstance(value, list) and len(value) == 2 and all(_is_int(v) for v in value):
        lo, hi = value
    elif isinstance(value, str):
        try:
            lo, hi = parse_value(value)
        except ValueError as exc:
            raise stub.error(where, str(exc)) from None
    else:
        raise stub.error(where, f"expected {_PIN_FORMS}, got {_describe(value)}")
    if lo > hi:
        raise stub.error(where, f"range [{lo}, {hi}] is empty (LO above HI)")
    origin = f"{stub.path}:{stub.line_of(where)}: key '{dotted(where)}'"
    return RodataPin(name, lo, hi, origin, glob_, str(stub.root))


def find_config(explicit: Path | None) -> Path:
    """--config, else ./bpfbudget.toml; a missing file is a usage error."""
    path = explicit if explicit is not None else Path(DEFAULT_NAME)
    if not path.is_file():
        hint = "" if explicit is not None else " (pass --config FILE)"
        raise BpfLintError(f"{path}: no such budget file{hint}")
    return path

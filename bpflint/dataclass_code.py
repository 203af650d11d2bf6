"""The code dataclasses generates for bpflint's classes, compiled once when bpflint is built.

For every class, dataclasses writes its methods (``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, a frozen class's ``__setattr__`` and ``__delattr__``) as Python source
and compiles that text, on every import. For the ~60 frozen dataclasses on the path of
`bpflint analyze` (compiled modules' included) that was about a third of a whole run on
a small object (callgrind, xdp-forward: 200M of 610M instructions parsing and compiling
those texts).

Building a wheel (setup.py) imports every bpflint module once in a fresh interpreter and
keeps, for each text dataclasses compiled, the code compiled from it: CODE_FILE in the
package, by module, marshalled with the exact Python (and -O level) that made it. The
command line calls install() before it imports a command: dataclasses then gets a
stand-in for the built-in ``exec`` (a module global of that name comes before the
built-in) that runs the kept code for a text it has and compiles any other text as
dataclasses would. The code is found by the text itself, so a class changed since the
build (an edited source) is compiled as before, and a file from any other Python (or a
damaged one) is not used at all: every class comes out the same, only sooner.
Checkouts and editable installs have no CODE_FILE and compile, as does a program that
imports bpflint's modules without the command line.

Standard library only: setup.py runs it on the package it builds.
"""

from __future__ import annotations

import marshal
import os
import sys
from collections.abc import Callable
from types import CodeType
from typing import Any

CODE_FILE = "_dataclass_code.marshal"  # in bpflint/, beside __init__
_MAGIC = "bpflint dataclass code: 2"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

Codes = dict[str, CodeType]  # compiled code by the text it was compiled from


def code_path(package_dir: str = _PACKAGE_DIR) -> str:
    return os.path.join(package_dir, CODE_FILE)


def _compile(text: str) -> CodeType:
    # dont_inherit: exactly what dataclasses' own exec(text) compiles (dataclasses has
    # no __future__ import), whatever this module's flags
    return compile(text, "<string>", "exec", dont_inherit=True)


def _module_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The module whose class dataclasses is making: it runs each text in the globals
    of the class's module."""
    scope = args[0] if args else kwargs.get("globals")
    name = scope.get("__name__") if isinstance(scope, dict) else None
    return name if isinstance(name, str) else ""


class _KeptCodeExec:
    """``exec`` for dataclasses: the code kept for a text, else the text compiled. Each
    module's code is unmarshalled when the first class of that module is made."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs
        self.codes: dict[str, Codes] = {}

    def __call__(self, source: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(source, str):
            source = self._kept(_module_of(args, kwargs)).get(source) or _compile(source)
        exec(source, *args, **kwargs)

    def _kept(self, module: str) -> Codes:
        codes = self.codes.get(module)
        if codes is None:
            try:
                loaded = marshal.loads(self.blobs.get(module, b"0"))
            except (ValueError, EOFError, TypeError):
                loaded = None
            codes = self.codes[module] = loaded if isinstance(loaded, dict) else {}
        return codes


def _made_by() -> str:
    """The Python that compiles: its exact build, and -O (what it compiles differs)."""
    return f"{sys.version} optimize={sys.flags.optimize}"


def load(path: str) -> dict[str, bytes] | None:
    """Each module's kept code, marshalled, if path holds code made by this very Python;
    else None."""
    try:
        with open(path, "rb") as kept:
            magic, python, blobs = marshal.loads(kept.read())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if magic != _MAGIC or python != _made_by() or not isinstance(blobs, dict):
        return None
    return blobs


def install(package_dir: str = _PACKAGE_DIR) -> bool:
    """Let dataclasses use the code kept in package_dir (the command line does, before
    it imports a command); False, and nothing changed, where there is none for this
    Python. Imports dataclasses."""
    blobs = load(code_path(package_dir))
    if not blobs:
        return False
    import dataclasses

    current = vars(dataclasses).get("exec")
    if current is not None and not isinstance(current, _KeptCodeExec):
        return False  # someone else's stand-in: leave it
    dataclasses.exec = _KeptCodeExec(blobs)  # type: ignore[attr-defined]
    return True


def installed() -> bool:
    """Whether this process's dataclasses use kept code."""
    dataclasses = sys.modules.get("dataclasses")
    return dataclasses is not None and isinstance(vars(dataclasses).get("exec"), _KeptCodeExec)


class _Recorder:
    """``exec`` for dataclasses that compiles, and remembers what it compiled for
    which module."""

    def __init__(self) -> None:
        self.codes: dict[str, Codes] = {}

    def __call__(self, source: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(source, str):
            codes = self.codes.setdefault(_module_of(args, kwargs), {})
            code = codes.get(source)
            if code is None:
                code = codes[source] = _compile(source)
            source = code
        exec(source, *args, **kwargs)


def modules_under(root: str) -> list[str]:
    """Every importable module of the package under root (a directory holding
    bpflint/), but the ``__main__`` ones, which run on import."""
    names = []
    for directory, dirnames, filenames in os.walk(os.path.join(root, "bpflint")):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        prefix = os.path.relpath(directory, root).split(os.sep)
        for filename in sorted(filenames):
            if not filename.endswith(".py") or filename == "__main__.py":
                continue
            stem = filename[:-3]
            names.append(".".join(prefix if stem == "__init__" else [*prefix, stem]))
    return names


def record(root: str, modules: Callable[[str], list[str]] = modules_under
           ) -> dict[str, Codes]:
    """The code of every text dataclasses compiles while each module of the package
    under root is imported, by module (in this process: run it in a fresh one). A module
    that cannot be imported here (an optional dependency missing) is passed over: its
    classes compile at run time."""
    import dataclasses
    import importlib

    recorder = _Recorder()
    sys.path.insert(0, root)
    dataclasses.exec = recorder  # type: ignore[attr-defined]
    try:
        for name in modules(root):
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - it compiles at run time
                pass
    finally:
        del dataclasses.exec  # type: ignore[attr-defined]
        sys.path.remove(root)
    return recorder.codes


def write(path: str, codes: dict[str, Codes]) -> bool:
    """Write codes to path (renamed into place); False when that fails."""
    blobs = {module: marshal.dumps(kept) for module, kept in codes.items()}
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as out:
            out.write(marshal.dumps((_MAGIC, _made_by(), blobs)))
        os.replace(temporary, path)
    except (OSError, ValueError):
        try:
            os.unlink(temporary)
        except OSError:
            pass
        return False
    return True


def build(root: str) -> int:
    """Keep the dataclass code of the package under root in its CODE_FILE (setup.py runs
    this in a fresh interpreter, on the package it builds). Returns how many texts."""
    codes = record(root)
    count = sum(len(kept) for kept in codes.values())
    if count and write(code_path(os.path.join(root, "bpflint")), codes):
        return count
    return 0

"""Build bpflint with its compiled core where it can; pure Python where it cannot.

pyproject.toml holds the metadata; this file only adds the compiled core: every wheel
build (`pip install .`, `pip install git+...`, `pip wheel`, cibuildwheel) compiles the
modules in bpflint/native.py's MODULES with mypyc (a build requirement), as mypy and
black ship themselves. The install never fails because of it: without a C compiler or
Python's headers, or when mypyc fails, the wheel holds the pure-Python sources only and
the build says so in one line; `bpflint --version` names the code that runs.

    BPFLINT_NO_COMPILE=1       build pure Python without trying
    BPFLINT_REQUIRE_COMPILE=1  fail instead of falling back (the release wheels)

Editable installs (`pip install -e .`) and sdists are never compiled: a checkout
builds its core in place with `python scripts/native.py build`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
NO_COMPILE_ENV = "BPFLINT_NO_COMPILE"
REQUIRE_COMPILE_ENV = "BPFLINT_REQUIRE_COMPILE"
# The commands that build a wheel's contents; metadata (egg_info, dist_info), sdist and
# editable builds run this file too and must not pay for mypyc.
BUILD_COMMANDS = {"build", "build_ext", "bdist_wheel", "install"}


def _module(*path: str):  # one file alone: importing the package would run its set-up
    spec = importlib.util.spec_from_file_location(
        "_bpflint_for_build_" + path[-1][:-3], os.path.join(HERE, "bpflint", *path))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


native = _module("native.py")
dataclass_code = _module("dataclass_code.py")


def note(why: str) -> None:
    """The one line an install prints when it falls back to pure Python."""
    why = " ".join(why.split())
    if os.environ.get(REQUIRE_COMPILE_ENV):
        sys.exit(f"bpflint: the compiled core could not be built: {why} "
                 f"({REQUIRE_COMPILE_ENV} is set)")
    print(f"bpflint: installing pure Python (same results, slower): {why}", file=sys.stderr)


def compiled_extensions() -> list:
    if os.environ.get(NO_COMPILE_ENV):
        print(f"bpflint: installing pure Python: {NO_COMPILE_ENV} is set", file=sys.stderr)
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        note(f"mypyc is not available ({exc})")
        return []
    os.chdir(HERE)  # mypyc names each module by its path from here
    sources = [os.path.relpath(native.source_of(module, HERE), HERE)
               for module in native.MODULES]
    try:
        return mypycify(sources, opt_level="3", group_name=native.GROUP,
                        target_dir=os.path.join("build", "mypyc"))
    except (Exception, SystemExit) as exc:  # mypyc reports its errors by sys.exit
        note(f"mypyc failed ({exc})")
        return []


def purge_compiled(build_lib: str) -> None:
    """Delete compiled modules and the record an earlier build left in build_lib: the
    wheel is made of everything there, and an in-tree build/ outlives a build."""
    for directory, _, names in os.walk(build_lib):
        for name in names:
            if name.endswith(tuple(EXTENSION_SUFFIXES)) or name == native.RECORD:
                os.unlink(os.path.join(directory, name))


def write_ready_cost_table(build_lib: str) -> None:
    """The shipped cost table parsed, beside it (bpflint/cost/table_ready.py): runs
    then skip the TOML parse. Without tomllib (or tomli) here, runs parse it instead."""
    table_ready = _module("cost", "table_ready.py")
    shipped = os.path.join(build_lib, "bpflint", "data", "costs.toml")
    try:
        if sys.version_info >= (3, 11):
            import tomllib
        else:
            import tomli as tomllib  # mypy, a build requirement, needs it there
        with open(shipped, encoding="utf-8") as table:  # as bpflint reads it
            text = table.read()
        doc = tomllib.loads(text)
    except (ImportError, OSError, ValueError):
        return
    table_ready.write(shipped, os.path.dirname(shipped),
                      hashlib.sha256(text.encode()).hexdigest(), doc)


# Run by keep_dataclass_code in a fresh interpreter (-B: no __pycache__ in the wheel),
# the package's directory as argv[1]
_KEEP_DATACLASS_CODE = ("import sys; sys.path.insert(0, sys.argv[1]); "
                        "from bpflint import dataclass_code; "
                        "print(dataclass_code.build(sys.argv[1]))")


def keep_dataclass_code(build_lib: str) -> None:
    """The code dataclasses compiles for bpflint's classes, compiled here once and kept
    in the package (bpflint/dataclass_code.py): each run then starts sooner. Made
    after the compiled core, by importing the package as built; where that fails, runs
    compile it as before."""
    kept = os.path.join(build_lib, "bpflint", dataclass_code.CODE_FILE)
    if os.path.exists(kept):
        os.unlink(kept)  # an earlier build's, in an in-tree build/
    subprocess.run([sys.executable, "-B", "-c", _KEEP_DATACLASS_CODE, build_lib],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


class PureBuildPy(build_py):
    """build_py that, when no core is to be compiled, leaves none from before, and
    writes the parsed cost table (and then the dataclass code)."""

    def run(self) -> None:
        super().run()
        if not self.distribution.ext_modules:
            purge_compiled(self.build_lib)
        write_ready_cost_table(self.build_lib)
        if not self.distribution.ext_modules:
            keep_dataclass_code(self.build_lib)


class OptionalBuildExt(build_ext):
    """build_ext that falls back to no extension at all when any of them fails:
    compiled modules call each other directly, so it is all of them or none."""

    def run(self) -> None:
        try:
            super().run()
        except (Exception, SystemExit) as exc:  # no compiler, no Python.h, a C error
            self._fall_back(f"the C build failed ({str(exc).strip() or type(exc).__name__})")
            return
        built = [ext.name for ext in self.extensions
                 if os.path.exists(self.get_ext_fullpath(ext.name))]
        if len(built) != len(self.extensions):
            self._fall_back(f"only {len(built)} of {len(self.extensions)} modules built")
            return
        # the record bpflint/native.py compares the installed sources against
        native.write_record(HERE, HERE if self.inplace else self.build_lib)
        if not self.inplace:  # a checkout compiles its dataclasses as it always did
            keep_dataclass_code(self.build_lib)

    def _fall_back(self, why: str) -> None:
        note(why)
        purge_compiled(self.build_lib)
        self.extensions = []
        self.distribution.ext_modules = []
        if not self.inplace:
            keep_dataclass_code(self.build_lib)


def wants_compiled_core() -> bool:
    return bool(BUILD_COMMANDS.intersection(sys.argv[1:]))


if __name__ == "__main__":  # as setuptools runs it; tests/test_install.py imports it
    setup(
        ext_modules=compiled_extensions() if wants_compiled_core() else [],
        cmdclass={"build_ext": OptionalBuildExt, "build_py": PureBuildPy},
    )

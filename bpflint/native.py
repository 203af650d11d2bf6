"""The compiled core: the modules mypyc compiles, and whether this run uses them.

`python scripts/native.py build` compiles MODULES in place, each next to its
source. Python imports an extension module in preference to the .py beside it, so
a built core is used without any switch; `scripts/native.py clean` deletes the
built files. The sources stay the pure-Python fallback, with identical results.

An installed wheel holds the same layout: setup.py compiles MODULES with mypyc on
every wheel build where it can (the sources stay beside the built files).

Each build writes RECORD next to the package's __init__: the SHA-256 of every source
it compiled. A built core is set aside, and every one of MODULES imported from its
source, when BPFLINT_PURE_PYTHON is set (to non-empty) or when a source differs from
the record (the old compiled code would otherwise run). Contents, not mtimes: an
install or a checkout of another branch sets mtimes without changing the code. All
or none: compiled modules call each other directly, so one module from source next
to compiled ones would not be the code that runs.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec
from types import ModuleType

# The modules the analysis spends its time in (py-spy over pyperf and Cilium
# objects): the value analysis, the CFG and loops, pricing and the path solver, the
# decoder. Their frozen dataclasses are never pickled: a compiled one can't be
# unpickled, so what crosses to worker processes lives in other modules.
MODULES = (
    "bpflint.analysis.scalar",
    "bpflint.analysis.state",
    "bpflint.analysis.alu",
    "bpflint.analysis.transfer",
    "bpflint.analysis.jumps",
    "bpflint.analysis.map_values",
    "bpflint.analysis.fixpoint",
    "bpflint.analysis.walk",
    "bpflint.analysis.branch",
    "bpflint.analysis.bounds",
    "bpflint.analysis.unroll",
    "bpflint.analysis.calls",
    "bpflint.cfg.graph",
    "bpflint.cfg.loops",
    "bpflint.cost.frame",
    "bpflint.cost.lanes",
    "bpflint.cost.expand",
    "bpflint.cost.pricing",
    "bpflint.cost.shared_prices",
    "bpflint.cost.loop_bounds",
    "bpflint.cost.engine",
    "bpflint.cost.paths",
    "bpflint.cost.overlap",
    "bpflint.isa.insn",
)
GROUP = "bpflint._native"  # mypyc's shared runtime library: bpflint/_native__mypyc.*
PURE_ENV = "BPFLINT_PURE_PYTHON"
RECORD = "_native_sources.txt"  # in bpflint/: "<sha256> <module>" a line

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def source_of(module: str, root: str = _ROOT) -> str:
    return os.path.join(root, *module.split(".")) + ".py"


def built_of(module: str, root: str = _ROOT) -> str | None:
    """The compiled module that Python would import instead of the source, if any."""
    base = os.path.join(root, *module.split("."))
    for suffix in EXTENSION_SUFFIXES:
        if os.path.exists(base + suffix):
            return base + suffix
    return None


def compiled(root: str = _ROOT) -> list[str]:
    return [module for module in MODULES if built_of(module, root) is not None]


def digest(path: str) -> str:
    import hashlib  # here, not on importing bpflint: `bpflint --version` starts sooner

    with open(path, "rb") as source:
        return hashlib.sha256(source.read()).hexdigest()


def record_of(root: str = _ROOT) -> str:
    return os.path.join(root, "bpflint", RECORD)


def write_record(sources_root: str, package_root: str) -> None:
    """Record the sources under sources_root as the ones the compiled core under
    package_root was built from (setup.py and scripts/native.py, after a build)."""
    lines = [f"{digest(source_of(module, sources_root))} {module}\n" for module in MODULES]
    with open(record_of(package_root), "w", encoding="ascii") as record:
        record.writelines(lines)


def stale(root: str = _ROOT) -> list[str]:
    """Sources (relative to root) of compiled modules that differ from the ones the
    build recorded (all of them when there is no record)."""
    built_from: dict[str, str] = {}
    try:
        with open(record_of(root), encoding="ascii") as record:
            for line in record:
                sha256, _, module = line.strip().partition(" ")
                built_from[module] = sha256
    except (OSError, ValueError):
        pass
    out = []
    for module in MODULES:
        source = source_of(module, root)
        if built_of(module, root) is None:
            continue
        try:
            same = built_from.get(module) == digest(source)
        except OSError:
            same = False
        if not same:
            out.append(os.path.relpath(source, root))
    return out


class _Sources:
    """A meta path finder that imports MODULES from their .py files."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: ModuleType | None = None
                  ) -> ModuleSpec | None:
        if name not in MODULES:
            return None
        import importlib.util

        return importlib.util.spec_from_file_location(name, source_of(name))


# Why a built core is set aside in this process (None: it is used, or none is built),
# and whether BPFLINT_PURE_PYTHON asked for it.
set_aside: str | None = None
pure_asked = False


def choose() -> None:
    """Run on importing bpflint: set a built core aside where it must not run."""
    global set_aside, pure_asked
    built = len(compiled())
    if not built:
        return
    # PURE_ENV, spelt out for the audit of environment reads (tests/test_security.py)
    pure_asked = bool(os.environ.get("BPFLINT_PURE_PYTHON"))
    if pure_asked:
        set_aside = f"{PURE_ENV} is set"
    elif built < len(MODULES):
        set_aside = f"only {built} of its {len(MODULES)} modules are built"
    elif changed := stale():
        set_aside = f"{changed[0]} is not the source it was built from"
    else:
        return
    if not any(isinstance(finder, _Sources) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Sources())


def describe() -> str:
    """Which code this process runs, in words for --version and the benchmarks."""
    if not compiled():
        return "pure Python"
    if set_aside is not None:
        return f"pure Python; the compiled core is set aside: {set_aside}"
    return "compiled core"

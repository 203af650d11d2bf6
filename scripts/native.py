#!/usr/bin/env python3
"""Build bpflint's compiled core in place with mypyc, remove it, or say which is in use.

    python scripts/native.py build    # needs mypy (in bpflint[test]) and a C compiler;
                                      # does nothing when built and fresh (--force)
    python scripts/native.py clean    # back to pure Python
    python scripts/native.py status

The modules are listed in bpflint/native.py. The C sources and object files go to
build/native/; each compiled module goes next to its source, and bpflint/native.py's
RECORD holds the digests of the sources built. An installed bpflint gets its compiled
core from setup.py instead, on every wheel build (`pip install .`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import warnings
from importlib.machinery import EXTENSION_SUFFIXES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bpflint import native  # noqa: E402 - this checkout's

BUILD_DIR = os.path.join(ROOT, "build", "native")


def build(force: bool) -> int:
    try:
        from mypyc.build import mypycify
        from setuptools import setup
    except ImportError as exc:
        print(f"native: cannot build: {exc} (pip install mypy setuptools)", file=sys.stderr)
        return 2
    if not force and up_to_date():
        print(f"native: up to date ({len(native.MODULES)} modules)")
        return 0
    clean()
    os.chdir(ROOT)  # build_ext --inplace puts each module by its path from here
    sources = [os.path.relpath(native.source_of(module), ROOT) for module in native.MODULES]
    extensions = mypycify(sources, opt_level="3", group_name=native.GROUP,
                          target_dir=BUILD_DIR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # setuptools on pyproject.toml's [tool.setuptools]
        setup(name="bpflint-native", ext_modules=extensions, script_name="native.py",
              script_args=["-q", "build_ext", "--inplace", "--build-temp", BUILD_DIR])
    missing = [module for module in native.MODULES if native.built_of(module) is None]
    if missing:
        print(f"native: not built: {', '.join(missing)}", file=sys.stderr)
        return 1
    native.write_record(ROOT, ROOT)  # what bpflint/native.py checks the sources against
    print(f"native: built {len(native.MODULES)} modules")
    return 0


def built_files() -> list[str]:
    """Every extension module in the package: bpflint has none but those built here,
    and one left from a module since dropped from MODULES would shadow its source."""
    found = []
    for directory, _, names in os.walk(os.path.join(ROOT, "bpflint")):
        found += [os.path.join(directory, name) for name in names
                  if name.endswith(tuple(EXTENSION_SUFFIXES))]
    return sorted(found)


def up_to_date() -> bool:
    return len(native.compiled()) == len(native.MODULES) and not native.stale() and \
        len(built_files()) == len(native.MODULES) + 1  # + the shared library


def clean() -> int:
    removed = built_files()
    for path in removed:
        os.unlink(path)
    if os.path.exists(native.record_of()):
        os.unlink(native.record_of())
    shutil.rmtree(BUILD_DIR, ignore_errors=True)
    print(f"native: removed {len(removed)} built files")
    return 0


def status() -> int:
    print(native.describe())
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("action", choices=("build", "clean", "status"))
    parser.add_argument("--force", action="store_true", help="build even when up to date")
    args = parser.parse_args()
    if args.action == "build":
        return build(args.force)
    return clean() if args.action == "clean" else status()


if __name__ == "__main__":
    raise SystemExit(main())

"""The compiled core (bpflint/native.py): used when built and fresh, set aside
otherwise, and giving the same results as the pure-Python sources."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest
from bpfc import PROGS, compile_bpf, needs_clang
from cases import CASES

import bpflint.cost.engine
from bpflint import native

REPO = Path(__file__).resolve().parent.parent
needs_core = pytest.mark.skipif(
    not native.compiled(), reason="the compiled core is not built (python scripts/native.py build)")


def _fake_tree(root: Path, built: bool) -> None:
    for module in native.MODULES:
        source = Path(native.source_of(module, str(root)))
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(f"# {module}\n")
        if built:
            Path(native.built_of(module, str(root)) or
                 source.with_suffix(EXTENSION_SUFFIXES[0])).write_bytes(b"")
    if built:
        native.write_record(str(root), str(root))


def test_a_source_unlike_the_one_built_is_stale(tmp_path: Path) -> None:
    _fake_tree(tmp_path, built=True)
    assert native.compiled(str(tmp_path)) == list(native.MODULES)
    assert native.stale(str(tmp_path)) == []
    edited = Path(native.source_of("bpflint.cost.paths", str(tmp_path)))
    edited.write_text(edited.read_text() + "x = 1\n")
    assert native.stale(str(tmp_path)) == [os.path.join("bpflint", "cost", "paths.py")]


def test_mtimes_do_not_make_a_core_stale(tmp_path: Path) -> None:
    # an installed wheel writes each .py after the compiled module beside it
    _fake_tree(tmp_path, built=True)
    for module in native.MODULES:
        os.utime(native.built_of(module, str(tmp_path)) or "", (1_000, 1_000))
        os.utime(native.source_of(module, str(tmp_path)), (2_000, 2_000))
    assert native.stale(str(tmp_path)) == []


def test_a_core_without_its_record_is_stale(tmp_path: Path) -> None:
    _fake_tree(tmp_path, built=True)
    os.unlink(native.record_of(str(tmp_path)))
    assert len(native.stale(str(tmp_path))) == len(native.MODULES)


def test_no_compiled_modules_means_none_stale(tmp_path: Path) -> None:
    _fake_tree(tmp_path, built=False)
    assert native.compiled(str(tmp_path)) == []
    assert native.stale(str(tmp_path)) == []


def test_this_process_runs_the_code_describe_names() -> None:
    runs_compiled = not bpflint.cost.engine.__file__.endswith(".py")
    assert runs_compiled == (native.describe() == "compiled core")


def _child(code: str, pythonpath: Path = REPO, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != native.PURE_ENV}
    environ.update(env, PYTHONPATH=str(pythonpath))
    # run in pythonpath: `python -c` puts the working directory first on sys.path
    return subprocess.run([sys.executable, "-c", code], env=environ, check=True,
                          capture_output=True, text=True, cwd=pythonpath).stdout


ENGINE_FILE = "import bpflint.cost.engine as e, bpflint.native as n; print(e.__file__); " \
              "print(n.describe())"


@needs_core
def test_the_environment_variable_sets_the_core_aside() -> None:
    built, _ = _child(ENGINE_FILE).splitlines()
    assert not built.endswith(".py")
    source, described = _child(ENGINE_FILE, **{native.PURE_ENV: "1"}).splitlines()
    assert source.endswith(os.path.join("cost", "engine.py"))
    assert described.endswith(f"set aside: {native.PURE_ENV} is set")


@needs_core
def test_an_edited_source_sets_the_whole_core_aside(tmp_path: Path) -> None:
    # a copy of the package with its compiled modules, one source edited after them
    shutil.copytree(REPO / "bpflint", tmp_path / "bpflint",
                    ignore=shutil.ignore_patterns("__pycache__"))
    edited = tmp_path / "bpflint" / "cfg" / "loops.py"
    edited.write_text(edited.read_text() + "\n# edited\n")
    code = ("import bpflint.cost.engine as e, bpflint.cfg.loops as l, bpflint.native as n; "
            "print(e.__file__); print(l.__file__); print(n.describe())")
    engine_file, loops_file, described = _child(code, tmp_path).splitlines()
    # all or none: the unedited engine is set aside too
    assert engine_file == str(tmp_path / "bpflint" / "cost" / "engine.py")
    assert loops_file == str(edited)
    assert described.endswith("bpflint/cfg/loops.py is not the source it was built from")


@needs_core
@needs_clang
def test_compiled_and_pure_python_give_the_same_results(tmp_path: Path) -> None:
    objects = [str(compile_bpf(PROGS / case.file, case.flags)) for case in CASES]
    objects += [str(path) for path in sorted((REPO / "examples").glob("*/*.bpf.o"))]
    assert len(objects) > 30
    argv = [sys.executable, "-m", "bpflint", "analyze", "--no-cache", "--format", "json",
            *objects]
    runs = []
    for pure in ("", "1"):
        environ = {**os.environ, native.PURE_ENV: pure}
        got = subprocess.run(argv, env=environ, capture_output=True, text=True, cwd=REPO)
        assert got.returncode in (0, 2), got.stderr
        runs.append(json.loads(got.stdout))
    compiled, pure_python = runs
    assert len(compiled["programs"]) > 50
    assert compiled == pure_python

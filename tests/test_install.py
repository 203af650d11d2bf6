"""A fresh `pip install .` gets the compiled core where a C compiler is present (setup.py),
pure Python with BPFLINT_NO_COMPILE=1, and never fails because of the core.

The install runs offline, with pip's usual build isolation: pip is given no index and
a directory of wheels made from the distributions installed in this test environment
(setuptools and mypy, the build requirements, are in bpflint[test]; pyelftools is a
runtime dependency). A wheel is the files an installed distribution's RECORD lists,
zipped again beside its dist-info: no network and no pip cache are involved, so the
test behaves the same on any machine that can run the suite.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType

import pytest

from bpflint import native

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
FIREWALL = REPO / "examples" / "xdp-firewall" / "firewall.bpf.o"


def _load_setup() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bpflint_setup_py", REPO / "setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def can_compile() -> bool:
    """A C compiler and Python's headers: what building the core needs besides mypyc."""
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"], "Python.h")
    return shutil.which(compiler) is not None and headers.exists()


# ------------------------------------------------------------------- the fallback

def test_a_failing_c_build_falls_back_to_pure_python(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from setuptools import Distribution, Extension

    setup_py = _load_setup()
    broken = tmp_path / "broken.c"
    broken.write_text("this is not C;\n")

    def build_ext() -> tuple[object, Distribution]:
        dist = Distribution({"name": "x", "ext_modules": [Extension("pkg.broken", [str(broken)])]})
        cmd = setup_py.OptionalBuildExt(dist)
        cmd.build_lib, cmd.build_temp = str(tmp_path / "lib"), str(tmp_path / "temp")
        cmd.ensure_finalized()
        return cmd, dist

    cmd, dist = build_ext()
    # what an earlier, compiled build left in an in-tree build/
    stale = [tmp_path / "lib" / "pkg" / f"old{EXTENSION_SUFFIXES[0]}",
             tmp_path / "lib" / "bpflint" / native.RECORD]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    cmd.run()  # does not raise
    assert cmd.extensions == [] and dist.ext_modules == []  # so the wheel is pure Python
    assert not [path for path in stale if path.exists()]
    notes = [line for line in capsys.readouterr().err.splitlines() if "bpflint:" in line]
    assert len(notes) == 1 and "installing pure Python" in notes[0], notes

    monkeypatch.setenv(setup_py.REQUIRE_COMPILE_ENV, "1")  # the release wheels
    cmd, _ = build_ext()
    with pytest.raises(SystemExit, match="compiled core could not be built"):
        cmd.run()


def test_only_wheel_builds_compile() -> None:
    setup_py = _load_setup()
    for argv, compiles in ((["bdist_wheel", "--dist-dir", "d"], True), (["build_ext"], True),
                           (["egg_info"], False), (["dist_info"], False), (["sdist"], False),
                           (["editable_wheel", "--dist-dir", "d"], False)):
        assert bool(setup_py.BUILD_COMMANDS.intersection(argv)) == compiles, argv


# ------------------------------------------------------------- a fresh install

def _requirement_names(requirements: list[str]) -> list[str]:
    """Names of the requirements that apply without extras."""
    names = []
    for requirement in requirements:
        spec, _, marker = requirement.partition(";")
        if "extra" not in marker:
            match = re.match(r"[A-Za-z0-9._-]+", spec.strip())
            assert match, requirement
            names.append(match.group(0))
    return names


def _installed_closure(names: list[str]) -> list[metadata.Distribution]:
    """These distributions and what they need, as installed here. A requirement that
    is not installed is one whose environment marker excludes it."""
    found: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        key = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if key in found:
            continue
        try:
            dist = metadata.distribution(key)
        except metadata.PackageNotFoundError:
            continue
        found[key] = dist
        todo += _requirement_names(dist.requires or [])
    return list(found.values())


def _wheel_of(dist: metadata.Distribution, wheelhouse: Path) -> Path:
    """The installed distribution zipped back into a wheel: the files its RECORD lists
    under site-packages (scripts are left out: pip writes them from entry_points.txt)."""
    dist_info = next(f for f in dist.files or [] if f.name == "RECORD").parent
    tags = [line.split(":", 1)[1].strip() for line in
            (dist.read_text("WHEEL") or "").splitlines() if line.startswith("Tag:")]
    assert tags, f"{dist.metadata['Name']}: no wheel tags in its dist-info"
    parts = [sorted({tag.split("-")[i] for tag in tags}) for i in range(3)]
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    wheel = wheelhouse / f"{name}-{dist.version}-{'-'.join('.'.join(p) for p in parts)}.whl"
    rows = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as zf:
        for file in dist.files or []:
            if file.parts[0] == ".." or "__pycache__" in file.parts or \
                    (file.parent == dist_info and file.name in (
                        "RECORD", "INSTALLER", "REQUESTED", "direct_url.json")):
                continue
            data = Path(str(dist.locate_file(file))).read_bytes()
            zf.writestr(file.as_posix(), data)
            sha = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            rows.append([file.as_posix(), f"sha256={sha.decode()}", str(len(data))])
        record = io.StringIO()
        csv.writer(record, lineterminator="\n").writerows(
            [*rows, [f"{dist_info.as_posix()}/RECORD", "", ""]])
        zf.writestr(f"{dist_info.as_posix()}/RECORD", record.getvalue())
    return wheel


def wheelhouse(dest: Path) -> Path:
    """Wheels of the build requirements and bpflint's runtime dependencies."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    names = _requirement_names(pyproject["build-system"]["requires"])
    names += _requirement_names(pyproject["project"]["dependencies"])
    dest.mkdir()
    for dist in _installed_closure(names):
        _wheel_of(dist, dest)
    return dest


def copy_source(dest: Path) -> Path:
    """What an sdist of this checkout holds: no built files, no caches."""
    dest.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "bpflint", dest / "bpflint", ignore=shutil.ignore_patterns(
        "__pycache__", *(f"*{suffix}" for suffix in EXTENSION_SUFFIXES),
        native.RECORD))
    return dest


def _offline_env(**extra: str) -> dict[str, str]:
    """No pip configuration of this machine (indexes, find-links), none of the test
    session's BPFLINT_ variables."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "BPFLINT_")) and k != "VIRTUAL_ENV"}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def pip_install(venv: Path, source: Path, wheels: Path, *args: str,
                **env: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index",
         "--find-links", str(wheels), *args, str(source)],
        env=_offline_env(**env), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def bpflint(venv: Path, *args: str) -> str:
    done = subprocess.run([str(venv / "bin" / "bpflint"), *args], env=_offline_env(),
                          capture_output=True, text=True, timeout=300, cwd=venv)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get(native.PURE_ENV)),
                    reason="one compiled build per suite: runs in the compiled-core pass")
@pytest.mark.skipif(importlib.util.find_spec("mypy") is None or
                    importlib.util.find_spec("setuptools") is None,
                    reason="needs setuptools and mypy (bpflint[test]) to install offline")
def test_a_fresh_pip_install_runs_the_compiled_core(tmp_path: Path) -> None:
    wheels = wheelhouse(tmp_path / "wheels")
    source = copy_source(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)

    pip_install(venv, source, wheels)
    version = bpflint(venv, "--version")
    if can_compile():
        assert version.strip().endswith("(compiled core)"), version
        # the compiled modules came from the wheel, next to their sources, in site-packages
        engine = subprocess.run(
            [str(venv / "bin" / "python"), "-c",
             "import bpflint.cost.engine as e; print(e.__file__)"],
            env=_offline_env(), capture_output=True, text=True, cwd=venv, check=True)
        assert engine.stdout.strip().endswith(tuple(EXTENSION_SUFFIXES))
    else:
        assert version.strip().endswith("(pure Python)"), version
    compiled_report = json.loads(bpflint(venv, "analyze", "--no-cache", "--format", "json",
                                         str(FIREWALL)))
    # the shipped cost table comes parsed (cost/table_ready.py): a run never imports tomllib
    modules = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import sys\nfrom bpflint.cost.table_file import load_cost_table\n"
         "load_cost_table(None)\nprint('tomllib' in sys.modules, 'tomli' in sys.modules)"],
        env=_offline_env(), capture_output=True, text=True, cwd=venv, check=True)
    assert modules.stdout.split() == ["False", "False"]
    assert_dataclass_code_kept(venv)

    # the opt-out: no attempt, a note, and the pure-Python sources
    opted_out = pip_install(venv, source, wheels, "-v", "--force-reinstall", "--no-deps",
                            BPFLINT_NO_COMPILE="1")
    assert "bpflint: installing pure Python: BPFLINT_NO_COMPILE is set" in \
        opted_out.stdout + opted_out.stderr
    assert bpflint(venv, "--version").strip().endswith("(pure Python)")
    assert not list((venv / "lib").glob("python*/site-packages/bpflint/**/*.so"))
    pure_report = json.loads(bpflint(venv, "analyze", "--no-cache", "--format", "json",
                                     str(FIREWALL)))
    assert compiled_report["programs"] and compiled_report == pure_report
    assert_dataclass_code_kept(venv)


def assert_dataclass_code_kept(venv: Path) -> None:
    """The install holds the dataclass code compiled at build time (dataclass_code.py),
    and a command's classes are made with it, without compiling their methods."""
    kept = list((venv / "lib").glob("python*/site-packages/bpflint/_dataclass_code.marshal"))
    assert len(kept) == 1 and kept[0].stat().st_size > 100_000
    probe = ("import sys\nfrom bpflint import cli, dataclass_code\n"
             "def compiled(text): raise SystemExit('compiled: ' + text[:80])\n"
             "dataclass_code._compile = compiled\n"
             "cli.build_parser(['analyze', 'x.o'])\n"
             "import bpflint.api, bpflint.obj.reader, bpflint.report.json\n"
             "print(dataclass_code.installed(), 'bpflint.results' in sys.modules)")
    done = subprocess.run([str(venv / "bin" / "python"), "-c", probe], env=_offline_env(),
                          capture_output=True, text=True, cwd=venv)
    assert done.stdout.split() == ["True", "True"], done.stdout + done.stderr

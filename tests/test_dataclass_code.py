"""The dataclass code kept at build time (bpflint/dataclass_code.py): the same classes,
without compiling what was kept; anything else compiles as before."""

from __future__ import annotations

import dataclasses
import importlib
import marshal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpflint import dataclass_code

REPO = Path(__file__).resolve().parent.parent

PROBE = '''
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shape:
    name: str
    points: list[Point] = field(default_factory=list)


@dataclass
class Counter:
    count: int = 0
'''


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A module of dataclasses under tmp_path, unimported; dataclasses as found after."""
    name = f"dcprobe_{abs(hash(tmp_path))}"
    (tmp_path / f"{name}.py").write_text(PROBE)
    yield tmp_path, name
    sys.modules.pop(name, None)
    if "exec" in vars(dataclasses):
        del dataclasses.exec  # type: ignore[attr-defined]


def _keep(root: Path, name: str) -> dict[str, dataclass_code.Codes]:
    codes = dataclass_code.record(str(root), lambda _: [name])
    sys.modules.pop(name, None)  # recorded: import it afresh below
    assert dataclass_code.write(dataclass_code.code_path(str(root)), codes)
    return codes


def _methods(module: object) -> dict[str, object]:
    out = {}
    for cls_name in ("Point", "Shape", "Counter"):
        cls = getattr(module, cls_name)
        for method in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__",
                       "__delattr__"):
            function = vars(cls).get(method)
            if function is not None and hasattr(function, "__code__"):
                out[f"{cls_name}.{method}"] = function.__code__
    return out


def test_kept_code_makes_the_same_classes_without_compiling(
        probe: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    root, name = probe
    codes = _keep(root, name)
    assert sum(map(len, codes.values())) >= 12  # 6 + 5 + 4 methods, a few shared texts
    sys.path.insert(0, str(root))
    try:
        compiled = _methods(importlib.import_module(name))  # no kept code: compiled
        sys.modules.pop(name)
        assert dataclass_code.install(str(root)) and dataclass_code.installed()

        def no_compiling(text: str) -> None:
            raise AssertionError(f"compiled although kept: {text[:60]}")

        monkeypatch.setattr(dataclass_code, "_compile", no_compiling)
        module = importlib.import_module(name)
    finally:
        sys.path.remove(str(root))
    kept = _methods(module)
    assert kept.keys() == compiled.keys() and len(kept) >= 10
    assert kept == compiled  # code objects compare by their bytecode, names, constants
    point = module.Point(1, tags=("a",))
    assert point == module.Point(1, 0, ("a",)) and hash(point) == hash(module.Point(1, 0, ("a",)))
    assert repr(point) == "Point(x=1, y=0, tags=('a',))"
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 2  # type: ignore[misc]
    assert module.Shape("s").points == [] and module.Counter().count == 0
    assert module.Point.__init__.__annotations__ == {"x": "int", "y": "int",
                                                     "tags": "tuple[str, ...]",
                                                     "return": None}


def test_a_class_changed_since_the_build_compiles(probe: tuple[Path, str]) -> None:
    root, name = probe
    _keep(root, name)
    changed = PROBE.replace("    y: int = 0\n", "    y: int = 0\n    z: int = 5\n")
    (root / f"{name}.py").write_text(changed)
    assert dataclass_code.install(str(root))
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(name)
    finally:
        sys.path.remove(str(root))
    assert module.Point(1).z == 5 and repr(module.Point(1, 2, 3)) == \
        "Point(x=1, y=2, z=3, tags=())"


def test_code_from_another_python_or_damaged_is_not_used(probe: tuple[Path, str]) -> None:
    root, name = probe
    path = Path(dataclass_code.code_path(str(root)))
    _keep(root, name)
    assert dataclass_code.load(str(path))
    magic, _python, blobs = marshal.loads(path.read_bytes())
    path.write_bytes(marshal.dumps((magic, "3.99.0 (other)", blobs)))
    assert dataclass_code.load(str(path)) is None
    assert not dataclass_code.install(str(root)) and not dataclass_code.installed()
    path.write_bytes(b"\x00garbage")
    assert dataclass_code.load(str(path)) is None
    path.unlink()
    assert not dataclass_code.install(str(root))


def test_someone_elses_exec_stand_in_is_left_alone(probe: tuple[Path, str]) -> None:
    root, name = probe
    _keep(root, name)
    dataclasses.exec = exec  # type: ignore[attr-defined]
    assert not dataclass_code.install(str(root))
    assert vars(dataclasses)["exec"] is exec


def test_building_keeps_the_code_of_every_module() -> None:
    # in a fresh interpreter, as setup.py does: this one has imported bpflint already
    code = ("import sys; from bpflint import dataclass_code as d; "
            "codes = d.record(sys.argv[1]); print(len(codes), sum(map(len, codes.values())))")
    got = subprocess.run([sys.executable, "-B", "-c", code, str(REPO)], capture_output=True,
                         text=True, check=True, cwd=REPO)
    modules, texts = map(int, got.stdout.split())
    assert modules > 40 and texts > 400, got.stdout


def test_the_command_line_installs_kept_code_before_importing_a_command(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bpflint import cli

    calls: list[str] = []
    real_import = importlib.import_module
    monkeypatch.setattr(dataclass_code, "install", lambda: calls.append("install") or False)
    monkeypatch.setattr(cli.importlib, "import_module",
                        lambda name: calls.append(name) or real_import(name))
    cli.build_parser(["disasm", "x.o"])
    assert calls == ["install", "bpflint.commands.disasm"]


def test_code_kept_without_optimizing_is_not_used_under_dash_o(
        probe: tuple[Path, str]) -> None:
    root, name = probe
    _keep(root, name)
    code = "import sys; from bpflint import dataclass_code as d; print(d.install(sys.argv[1]))"
    runs = [subprocess.run([sys.executable, *flags, "-c", code, str(root)], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.strip()
            for flags in ([], ["-O"])]
    assert runs == ["True", "False"]

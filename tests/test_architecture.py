"""Import directions: docs/architecture.md's table, checked against every module.

Each module's imports are read with ast (TYPE_CHECKING and function-level imports
count: a cycle there is still a cycle in the design), mapped to units (a package
under bpflint/, or a top-level module), and compared with ALLOWED, which mirrors the
page's table. The checker itself is tested on synthetic graphs and source trees.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "bpflint"
DOC = ROOT / "docs" / "architecture.md"

# Sub-packages that are units of their own (their row differs from their parent's).
SUBUNITS = ("kernel.calibrate",)

# unit -> the units it may import (itself always allowed). Mirrors docs/architecture.md.
ALLOWED: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "native": frozenset(),
    "dataclass_code": frozenset(),
    "bpflint": frozenset({"native"}),
    "results": frozenset({"errors"}),
    "isa": frozenset({"errors"}),
    "obj": frozenset({"errors", "isa"}),
    "cfg": frozenset({"errors", "isa", "obj"}),
    "analysis": frozenset({"errors", "isa", "obj", "cfg"}),
    "cost": frozenset({"errors", "results", "isa", "obj", "cfg", "analysis"}),
    "kernel": frozenset({"errors", "isa", "obj"}),
    "kernel.calibrate": frozenset({"errors", "isa", "kernel", "cost"}),
    "audit": frozenset({"errors", "results", "cost", "kernel"}),
    "interp": frozenset({"errors", "isa", "obj"}),
    "witness": frozenset({"errors", "results", "isa", "obj", "interp", "cost"}),
    "cache": frozenset({"bpflint", "errors", "results"}),
    "api": frozenset({"bpflint", "errors", "results", "cache", "isa", "obj", "cfg",
                      "analysis", "cost"}),
    "build": frozenset({"errors"}),
    "budget": frozenset({"bpflint", "errors", "results", "obj", "build"}),
    "report": frozenset({"bpflint", "errors", "results", "audit", "budget"}),
    "commands": frozenset({"bpflint", "errors", "results", "isa", "obj", "cfg", "analysis",
                           "cost", "kernel", "kernel.calibrate", "audit", "interp", "witness",
                           "cache", "api", "build", "budget", "report"}),
    "cli": frozenset({"bpflint", "native", "dataclass_code", "errors", "commands"}),
    "__main__": frozenset({"cli"}),
    "action": frozenset({"bpflint", "errors", "results", "cache", "budget", "report"}),
}

Graph = Mapping[str, Mapping[str, str]]  # unit -> imported unit -> one module doing it


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str, root: Path) -> bool:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    return (root / relative).with_suffix(".py").is_file() or (root / relative).is_dir()


def unit_of(name: str) -> str:
    """bpflint.cost.engine -> cost; bpflint.kernel.calibrate.timing -> kernel.calibrate."""
    parts = name.split(".")[1:]
    if not parts:
        return name
    for sub in SUBUNITS:
        if parts[:len(sub.split("."))] == sub.split("."):
            return sub
    return parts[0]


def imported_modules(path: Path, root: Path) -> set[str]:
    """The bpflint modules (or packages) one source file imports."""
    package = root.name
    here = module_name(path, root).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here[:len(here) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if is_module(candidate, root) else base)
    return {name for name in found if name == package or name.startswith(package + ".")}


def import_graph(root: Path) -> dict[str, dict[str, str]]:
    graph: dict[str, dict[str, str]] = {}
    for path in sorted(root.rglob("*.py")):
        source = unit_of(module_name(path, root))
        edges = graph.setdefault(source, {})
        for name in sorted(imported_modules(path, root)):
            target = unit_of(name)
            if target != source:
                edges.setdefault(target, str(path.relative_to(root.parent)))
    return graph


def forbidden(graph: Graph, allowed: Mapping[str, frozenset[str]]) -> list[str]:
    problems = []
    for source, edges in sorted(graph.items()):
        if source not in allowed:
            problems.append(f"unit {source} is not in the table (docs/architecture.md)")
            continue
        for target, where in sorted(edges.items()):
            if target not in allowed[source]:
                problems.append(f"{source} may not import {target} ({where})")
    return problems


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle of the directed graph (unit -> iterable of units), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def doc_table() -> dict[str, frozenset[str]]:
    """The page's "Who may import whom" rows: unit -> may import."""
    rows: dict[str, frozenset[str]] = {}
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = frozenset(re.findall(r"`([\w.]+)`", cells[2]))
    return rows


def test_imports_follow_the_table() -> None:
    assert forbidden(import_graph(PACKAGE), ALLOWED) == []


def test_no_import_cycle_between_packages() -> None:
    assert find_cycle(import_graph(PACKAGE)) is None


def test_table_is_a_layering() -> None:
    assert find_cycle(ALLOWED) is None
    for targets in ALLOWED.values():
        assert targets <= ALLOWED.keys()


def test_doc_mirrors_the_table() -> None:
    assert doc_table() == ALLOWED


def test_doc_names_every_module() -> None:
    doc = DOC.read_text()
    missing = [str(path.relative_to(ROOT)) for path in sorted(PACKAGE.rglob("*.py"))
               if path.name != "__init__.py" and f"`{path.relative_to(ROOT)}`" not in doc]
    assert missing == []


def test_checker_flags_a_forbidden_import_and_a_cycle() -> None:
    graph = {"isa": {"errors": "isa/x.py", "cost": "isa/y.py"}, "cost": {"isa": "cost/z.py"}}
    assert forbidden(graph, ALLOWED) == ["isa may not import cost (isa/y.py)"]
    assert find_cycle(graph) == ["cost", "isa", "cost"]
    assert forbidden({"newpkg": {}}, ALLOWED) == [
        "unit newpkg is not in the table (docs/architecture.md)"]
    assert find_cycle({"a": {"b": ""}, "b": {"c": ""}, "c": {}}) is None


def test_checker_reads_real_source(tmp_path: Path) -> None:
    root = tmp_path / "bpflint"
    for folder in ("isa", "cost", "kernel/calibrate"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "errors.py").write_text("")
    (root / "cost" / "model.py").write_text("from bpflint.errors import X\n")
    (root / "kernel" / "calibrate" / "table.py").write_text(
        "from bpflint.cost import model\n")
    (root / "isa" / "insn.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..cost.model import Cost\n"
        "def late():\n    import bpflint.kernel.calibrate.table\n")
    graph = import_graph(root)
    allowed = {"bpflint": frozenset(), "errors": frozenset(), "isa": frozenset({"errors"}),
               "cost": frozenset({"errors"}), "kernel": frozenset()}
    assert graph["isa"] == {"cost": "bpflint/isa/insn.py",
                            "kernel.calibrate": "bpflint/isa/insn.py"}
    assert graph["kernel.calibrate"] == {"cost": "bpflint/kernel/calibrate/table.py"}
    assert forbidden(graph, allowed) == [
        "isa may not import cost (bpflint/isa/insn.py)",
        "isa may not import kernel.calibrate (bpflint/isa/insn.py)",
        "unit kernel.calibrate is not in the table (docs/architecture.md)",
    ]


# The engine's rooms stay small enough to read in one sitting (issue 20/22): a module
# of cost/ or analysis/ past this is split by job, not trimmed of its comments.
MAX_ENGINE_MODULE_LINES = 544


def test_engine_modules_stay_small() -> None:
    sizes = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines())
             for room in ("cost", "analysis") for path in (PACKAGE / room).glob("*.py")}
    assert len(sizes) > 10  # the rooms were found
    too_big = {name: n for name, n in sizes.items() if n > MAX_ENGINE_MODULE_LINES}
    assert not too_big, too_big

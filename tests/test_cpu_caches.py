"""What ns.max assumes about CPU caches: cold (the default, sound for a busy hook) or
hot (--cpu-caches hot, [analyze] cpu_caches = "hot"), and the JSON that says which."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bpflint.budget.config import load_config
from bpflint.cli import main
from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.cost.table_file import load_cost_table
from bpflint.obj.reader import load_object

ROOT = Path(__file__).resolve().parents[1]
TRACING = ROOT / "examples" / "tracing"
OBJ = TRACING / "openlat.bpf.o"


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def analyzed(*argv: str) -> dict[str, Any]:
    code, out, err = run_cli("analyze", "--format", "json", *argv)
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in doc["programs"]}


def test_cold_is_the_default_and_hot_prices_hash_maps_with_their_hot_figures(
        tmp_path: Path) -> None:
    cache = ("--cache-dir", str(tmp_path / "cache"))
    cold = analyzed(*cache, str(OBJ))
    hot = analyzed(*cache, "--cpu-caches", "hot", str(OBJ))  # not the cached cold result
    assert cold["cost_table"]["cpu_caches"] == "cold"
    assert hot["cost_table"]["cpu_caches"] == "hot"
    assert cold["cost_table"]["path"] == hot["cost_table"]["path"] == "bpflint/data/costs.toml"
    table = load_cost_table(None)
    assert cold["cost_table"]["kernel"] == table.provenance.kernel
    obj = load_object(str(OBJ))
    for name, program in by_name(cold).items():
        other = by_name(hot)[name]
        # the same paths and instructions, the same (hot) minimum; only max moves
        assert program["insns"] == other["insns"] and program["ns"]["min"] == other["ns"]["min"]
        assert other["ns"]["max"] <= program["ns"]["max"]
        # each is the engine's figure with that table
        for doc, caches in ((program, "cold"), (other, "hot")):
            [prog] = [p for p in obj.programs if p.name == name]
            got = analyze_program(obj, prog, load_cost_table(None, caches), AnalysisOptions())
            assert doc["ns"]["max"] == pytest.approx(got.ns_max, abs=1e-3), (name, caches)
    # the openat tracepoint updates a hash map: far dearer with cold caches
    enter = "handle_openat_enter"
    assert by_name(cold)[enter]["ns"]["max"] > 2 * by_name(hot)[enter]["ns"]["max"]
    assert analyzed(*cache, "--cpu-caches", "cold", str(OBJ)) == cold


def test_the_budget_file_chooses_and_the_command_line_overrides(tmp_path: Path) -> None:
    project = tmp_path / "tracing"
    shutil.copytree(TRACING, project, ignore=shutil.ignore_patterns("Makefile", "*.c", "*.h"))
    config = project / "bpfbudget.toml"
    text = config.read_text()
    config.write_text(text.replace("[analyze]\n", '[analyze]\ncpu_caches = "hot"\n', 1))
    assert load_config(config).cpu_caches == "hot"
    _, out, _ = run_cli("check", "--no-cache", "--config", str(config), "--format", "json")
    assert json.loads(out)["cost_table"]["cpu_caches"] == "hot"
    _, out, _ = run_cli("check", "--no-cache", "--config", str(config), "--format", "json",
                        "--cpu-caches", "cold")
    assert json.loads(out)["cost_table"]["cpu_caches"] == "cold"
    config.write_text(text)
    assert load_config(config).cpu_caches is None


def test_a_bad_value_is_a_one_line_error(tmp_path: Path) -> None:
    config = tmp_path / "bpfbudget.toml"
    config.write_text('[analyze]\nobjects = []\ncpu_caches = "warm"\n')
    code, _, err = run_cli("check", "--config", str(config))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{config}:3" in err and "cpu_caches" in err and "'warm'" in err
    code, _, err = run_cli("analyze", "--cpu-caches", "warm", str(OBJ))
    assert code == 2 and "--cpu-caches" in err

"""The composite GitHub Action, run step by step the way the runner runs it.

The runner expands `${{ ... }}` expressions, writes each `run:` script to a file and
runs it with `bash --noprofile --norc -eo pipefail`, with the step's `env:` on top of
the job's environment, in $GITHUB_WORKSPACE. `uses:` steps (actions/setup-python) are
left out: this interpreter is the Python they would provide.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import yaml
from test_make import CLANG, copy_example, push_firewall_over_budget, run_make
from test_precommit import copy_checkout

ROOT = Path(__file__).resolve().parents[1]
# the official SARIF 2.1.0 schema (a copy of the one in ../shared/)
SARIF_SCHEMA = Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json"
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")

pytestmark = pytest.mark.slow


def evaluate(expression: str, contexts: dict[str, dict[str, str]]) -> str:
    """The subset of the expression language action.yml uses: context lookups,
    string literals and `||` (the first truthy operand)."""
    value = ""
    for operand in (part.strip() for part in expression.split("||")):
        if operand.startswith("'") and operand.endswith("'"):
            value = operand[1:-1]
        else:
            context, _, name = operand.partition(".")
            assert context in contexts, f"unsupported expression {expression!r}"
            value = contexts[context].get(name, "")
        if value:
            return value
    return value


def substitute(text: str, contexts: dict[str, dict[str, str]]) -> str:
    return EXPRESSION.sub(lambda m: evaluate(m.group(1), contexts), text)


def read_outputs(path: Path) -> dict[str, str]:
    """$GITHUB_OUTPUT lines: name=value, or name<<DELIM ... DELIM."""
    outputs: dict[str, str] = {}
    lines = iter(path.read_text().splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            outputs[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


@dataclass
class Run:
    status: int  # the first failing step's exit code, else 0
    stdout: str
    stderr: str
    outputs: dict[str, str]  # the action's outputs, from its `outputs:` expressions
    summary: str


@dataclass
class Runner:
    action_path: Path
    runner_temp: Path

    def run(self, workspace: Path, inputs: dict[str, str], skip: tuple[str, ...] = (),
            base_ref: str = "") -> Run:
        specs = ACTION["inputs"]
        assert set(inputs) <= set(specs), "unknown input"
        contexts = {
            "inputs": {name: inputs.get(name, str(spec.get("default", "")))
                       for name, spec in specs.items()},
            "github": {"action_path": str(self.action_path), "base_ref": base_ref,
                       "workspace": str(workspace)},
        }
        files = self.runner_temp / f"files-{len(list(self.runner_temp.glob('files-*')))}"
        files.mkdir()
        output_file, summary = files / "output", files / "summary.md"
        output_file.touch()
        summary.touch()
        base_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")},
            "GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_OUTPUT": str(output_file), "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_ACTION_PATH": str(self.action_path), "RUNNER_TEMP": str(self.runner_temp),
            "GITHUB_BASE_REF": base_ref,
        }
        base_env.pop("VIRTUAL_ENV", None)
        step_outputs: dict[str, dict[str, str]] = {}
        stdout, stderr, status = [], [], 0
        for index, step in enumerate(ACTION["runs"]["steps"]):
            if "uses" in step or step.get("name") in skip:
                continue
            # Inputs must never be pasted into shell code.
            assert "${{" not in step["run"], f"expression inside run: of {step.get('name')}"
            script = files / f"step{index}.sh"
            script.write_text(step["run"])
            env = {**base_env,
                   **{k: substitute(str(v), contexts) for k, v in step.get("env", {}).items()}}
            output_file.write_text("")
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                cwd=workspace, env=env, capture_output=True, text=True, timeout=300,
            )
            stdout.append(done.stdout)
            stderr.append(done.stderr)
            if "id" in step:
                step_outputs[step["id"]] = read_outputs(output_file)
            if done.returncode != 0:
                status = done.returncode
                break
        steps_context = {
            f"{step_id}.outputs.{name}": value
            for step_id, values in step_outputs.items() for name, value in values.items()
        }
        outputs = {
            name: substitute(spec["value"], {"steps": steps_context})
            for name, spec in ACTION["outputs"].items()
        }
        return Run(status, "".join(stdout), "".join(stderr), outputs, summary.read_text())


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    """The action checked out, and its install step run once for every case."""
    base = tmp_path_factory.mktemp("action")
    action_path = copy_checkout(base / "action")
    runner = Runner(action_path=action_path, runner_temp=base / "runner-temp")
    runner.runner_temp.mkdir()
    only_install = tuple(s["name"] for s in ACTION["runs"]["steps"]
                         if s.get("name") != "Install bpflint")
    installed = runner.run(base, {}, skip=only_install)
    assert installed.status == 0, installed.stdout + installed.stderr
    assert "bpflint" in installed.stdout  # `bpflint --version`
    return runner


def workspace_with_firewall(tmp_path: Path) -> Path:
    workspace = tmp_path / "workspace"
    workspace.mkdir(parents=True)
    copy_example("xdp-firewall", workspace)
    return workspace


def test_inputs_reach_scripts_only_through_env() -> None:
    for step in ACTION["runs"]["steps"]:
        if "run" in step:
            assert "${{" not in step["run"]
            assert step["shell"] == "bash"
    install = next(s for s in ACTION["runs"]["steps"] if s.get("name") == "Install bpflint")
    assert install["env"]["BPFLINT_SOURCE"] == "${{ github.action_path }}"


def test_action_passes_and_writes_summary_outputs_and_sarif(
    runner: Runner, tmp_path: Path
) -> None:
    workspace = workspace_with_firewall(tmp_path)
    run = runner.run(workspace, {"config": "xdp-firewall/bpfbudget.toml",
                                 "sarif": "out/bpflint.sarif"},
                     skip=("Install bpflint",))
    assert run.status == 0, run.stdout + run.stderr
    assert run.outputs == {"verdict": "pass", "failures": "0"}
    assert "::error" not in run.stdout
    assert "xdp_firewall" in run.summary and "|" in run.summary

    sarif = json.loads((workspace / "out" / "bpflint.sarif").read_text())
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    results = sarif["runs"][0]["results"]
    assert not [r for r in results if r.get("level", "warning") == "error"]


def test_action_fails_on_a_program_over_budget(runner: Runner, tmp_path: Path) -> None:
    if CLANG is None or shutil.which("make") is None:
        pytest.skip("needs clang and make to build the costlier object")
    workspace = workspace_with_firewall(tmp_path)
    project = workspace / "xdp-firewall"
    push_firewall_over_budget(project)
    assert run_make(project, "all").returncode == 0

    inputs = {"config": "xdp-firewall/bpfbudget.toml"}
    run = runner.run(workspace, inputs, skip=("Install bpflint",))
    assert run.status == 1, run.stdout + run.stderr
    assert run.outputs == {"verdict": "fail", "failures": "1"}
    # An annotation at the source, relative to the workspace, naming the program.
    annotations = [line for line in run.stdout.splitlines() if line.startswith("::error ")]
    assert any("file=xdp-firewall/firewall.bpf.c" in a and ",line=" in a and
               "xdp_firewall" in a for a in annotations), annotations
    assert "xdp_firewall" in run.summary

    sarif = json.loads((workspace / "bpflint.sarif").read_text())
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    located = [
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for result in sarif["runs"][0]["results"] if result.get("level") == "error"
        for loc in result["locations"]
    ]
    assert "xdp-firewall/firewall.bpf.c" in located

    warned = runner.run(workspace, {**inputs, "warn-only": "true"}, skip=("Install bpflint",))
    assert warned.status == 0, warned.stdout + warned.stderr
    assert warned.outputs == {"verdict": "fail", "failures": "1"}


def test_action_reports_a_bad_config_as_an_error_without_running_it(
    runner: Runner, tmp_path: Path
) -> None:
    workspace = workspace_with_firewall(tmp_path)
    hostile = "missing.toml; touch pwned $(touch pwned2)"
    run = runner.run(workspace, {"config": hostile}, skip=("Install bpflint",))
    assert run.status == 2
    assert run.outputs == {"verdict": "error", "failures": "0"}
    assert "::error title=bpflint::bpflint: error:" in run.stdout
    assert "could not check" in run.summary
    assert not list(workspace.rglob("pwned*"))


def test_action_compares_with_the_pull_requests_base_branch(
    runner: Runner, tmp_path: Path
) -> None:
    """github.base_ref is used when base-ref is empty; the base is fetched from origin
    when the checkout has only the pull request's commit, as actions/checkout leaves it."""
    from test_precommit import commit_all, git

    origin = workspace_with_firewall(tmp_path / "origin")
    git(origin, "init", "-q", "-b", "main")
    commit_all(origin, "base")
    workspace = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", "--depth=1", "--branch", "main",
        origin.as_uri(), str(workspace))
    git(workspace, "checkout", "-q", "-b", "pr")
    git(workspace, "branch", "-q", "-D", "main")
    git(workspace, "update-ref", "-d", "refs/remotes/origin/main")
    config = workspace / "xdp-firewall" / "bpfbudget.toml"
    config.write_text(config.read_text().replace('baseline = "bpf-baseline.json"\n', ""))

    run = runner.run(workspace, {"config": "xdp-firewall/bpfbudget.toml"},
                     skip=("Install bpflint",), base_ref="main")
    assert run.status == 0, run.stdout + run.stderr
    assert run.outputs["verdict"] == "pass"
    assert "main" in run.summary  # the table compares with the base branch

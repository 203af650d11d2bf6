"""The composite GitHub Action, run step by step the way the runner runs it.

The runner expands `${{ ... }}` expressions, writes each `run:` script to a file and
runs it with `bash --noprofile --norc -eo pipefail`, with the step's `env:` on top of
the job's environment, in $GITHUB_WORKSPACE, with the runner's files ($GITHUB_OUTPUT,
$GITHUB_ENV, $GITHUB_STEP_SUMMARY, $GITHUB_EVENT_PATH). `uses:` steps
(actions/setup-python, actions/cache) are left out: this interpreter is the Python
setup-python would provide, and a cold cache is what a first run sees. The GitHub
REST API is a local HTTP server that records the comments it is sent.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from test_make import CLANG, HEAVY_LOOP, copy_example, push_firewall_over_budget, run_make
from test_precommit import commit_all, copy_checkout, git

from bpflint import __version__
from bpflint.action import check as action_check
from bpflint.action import comment, gitbase
from bpflint.action.github_api import ApiError, Client
from bpflint.budget.config import load_config
from bpflint.errors import BpfLintError

ROOT = Path(__file__).resolve().parents[1]
# the official SARIF 2.1.0 schema (a copy of the one in ../shared/)
SARIF_SCHEMA = Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json"
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
INSTALL = "Install bpflint"
REPOSITORY = "octo/widgets"
PR_NUMBER = 7
TOKEN = "ghs_test_token"

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
    steps: dict[str, dict[str, str]]  # each step's outputs, by step id

    @property
    def log(self) -> str:
        return self.stdout + self.stderr

    def annotations(self, kind: str = "error") -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith(f"::{kind} ")]


@dataclass
class Runner:
    action_path: Path
    runner_temp: Path
    cache_home: Path  # XDG_CACHE_HOME: where bpflint's result cache goes

    def run(self, workspace: Path, inputs: dict[str, str], skip: tuple[str, ...] = (INSTALL,),
            base_ref: str = "", event: dict[str, Any] | None = None, api_url: str = "",
            token: str = "") -> Run:
        specs = ACTION["inputs"]
        assert set(inputs) <= set(specs), "unknown input"
        github = {"action_path": str(self.action_path), "base_ref": base_ref,
                  "workspace": str(workspace), "token": token}
        contexts: dict[str, dict[str, str]] = {
            "github": github,
            "inputs": {name: inputs[name] if name in inputs else
                       substitute(str(spec.get("default", "")), {"github": github})
                       for name, spec in specs.items()},
        }
        files = self.runner_temp / f"files-{len(list(self.runner_temp.glob('files-*')))}"
        files.mkdir()
        output_file, summary, env_file = files / "output", files / "summary.md", files / "env"
        event_file = files / "event.json"
        event_file.write_text(json.dumps(event or {}))
        for path in (output_file, summary, env_file):
            path.touch()
        base_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")},
            "GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_OUTPUT": str(output_file), "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_ENV": str(env_file), "GITHUB_EVENT_PATH": str(event_file),
            "GITHUB_EVENT_NAME": "pull_request" if event and "pull_request" in event else "push",
            "GITHUB_ACTION_PATH": str(self.action_path), "RUNNER_TEMP": str(self.runner_temp),
            "GITHUB_BASE_REF": base_ref, "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_API_URL": api_url or "http://127.0.0.1:9", "GITHUB_RUN_ID": "4242",
            "GITHUB_RUN_ATTEMPT": "1", "RUNNER_OS": "Linux",
            "GITHUB_SERVER_URL": "https://github.test",
            "XDG_CACHE_HOME": str(self.cache_home), "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
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
            contexts["steps"] = {f"{step_id}.outputs.{name}": value
                                 for step_id, values in step_outputs.items()
                                 for name, value in values.items()}
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
        assert TOKEN not in "".join(stdout) + "".join(stderr), "the token was printed"
        return Run(status, "".join(stdout), "".join(stderr), outputs, summary.read_text(),
                   step_outputs)


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    """The action checked out, and its install step run once for every case."""
    base = tmp_path_factory.mktemp("action")
    action_path = copy_checkout(base / "action")
    runner = Runner(action_path=action_path, runner_temp=base / "runner-temp",
                    cache_home=base / "cache-home")
    runner.runner_temp.mkdir()
    only_install = tuple(s["name"] for s in ACTION["runs"]["steps"] if s.get("name") != INSTALL)
    installed = runner.run(base, {}, skip=only_install)
    assert installed.status == 0, installed.stdout + installed.stderr
    assert "bpflint" in installed.stdout  # `bpflint --version`
    return runner


@dataclass
class FakeGitHub:
    """The REST endpoints the Action calls, on 127.0.0.1; ``forbid`` answers writes
    with 403, as GitHub does for a fork's read-only token."""

    url: str = ""
    forbid: bool = False
    comments: dict[int, str] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)


@pytest.fixture
def github_api() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    prefix = f"/repos/{REPOSITORY}/issues"

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, status: int, payload: object) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

        def _record(self) -> None:
            fake.requests.append((self.command, self.path))
            fake.tokens.add(self.headers.get("Authorization", ""))

        def do_GET(self) -> None:
            self._record()
            if self.path.startswith(f"{prefix}/{PR_NUMBER}/comments"):
                page = int(re.search(r"[?&]page=(\d+)", self.path).group(1))  # type: ignore[union-attr]
                # other people's comments first, as on a busy pull request
                listed = [{"id": 1, "body": "LGTM"}] + \
                    [{"id": i, "body": b} for i, b in fake.comments.items()]
                self._answer(200, listed if page == 1 else [])
            else:
                self._answer(404, {"message": "Not Found"})

        def do_POST(self) -> None:
            self._record()
            body = self._body()
            if fake.forbid:
                self._answer(403, {"message": "Resource not accessible by integration"})
            elif self.path == f"{prefix}/{PR_NUMBER}/comments":
                comment_id = 1000 + len(fake.comments)
                fake.comments[comment_id] = body["body"]
                self._answer(201, {"id": comment_id,
                                   "html_url": f"https://github.test/c/{comment_id}"})
            else:
                self._answer(404, {"message": "Not Found"})

        def do_PATCH(self) -> None:
            self._record()
            body = self._body()
            match = re.fullmatch(rf"{prefix}/comments/(\d+)", self.path)
            if fake.forbid:
                self._answer(403, {"message": "Resource not accessible by integration"})
            elif match and int(match.group(1)) in fake.comments:
                fake.comments[int(match.group(1))] = body["body"]
                self._answer(200, {"id": int(match.group(1)),
                                   "html_url": f"https://github.test/c/{match.group(1)}"})
            else:
                self._answer(404, {"message": "Not Found"})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def pull_request_event() -> dict[str, Any]:
    return {"pull_request": {"number": PR_NUMBER, "base": {"ref": "main"},
                             "head": {"ref": "pr"}}}


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
                                 "sarif": "out/bpflint.sarif"})
    assert run.status == 0, run.stdout + run.stderr
    assert (run.outputs["verdict"], run.outputs["failures"]) == ("pass", "0")
    assert run.outputs["sarif"] == str(workspace / "out" / "bpflint.sarif")
    report = json.loads(Path(run.outputs["report"]).read_text())
    assert report["verdict"] == "pass"
    assert [p["name"] for p in report["programs"]] == ["xdp_firewall"]
    assert run.outputs["comment-url"] == ""  # a push: no pull request to comment on
    assert "::error" not in run.stdout
    assert "xdp_firewall" in run.summary and "|" in run.summary
    # the cost map the upload step takes: one self-contained page naming the program
    cost_map = Path(run.outputs["html"]).read_text()
    assert cost_map.startswith("<!DOCTYPE html>") and "xdp_firewall" in cost_map
    upload = next(s for s in ACTION["runs"]["steps"] if s.get("id") == "cost-map")
    assert upload["with"]["path"] == "${{ steps.check.outputs.html }}"

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
    run = runner.run(workspace, inputs)
    assert run.status == 1, run.stdout + run.stderr
    assert (run.outputs["verdict"], run.outputs["failures"]) == ("fail", "1")
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

    warned = runner.run(workspace, {**inputs, "warn-only": "true"})
    assert warned.status == 0, warned.stdout + warned.stderr
    assert (warned.outputs["verdict"], warned.outputs["failures"]) == ("fail", "1")


def test_action_reports_a_bad_config_as_an_error_without_running_it(
    runner: Runner, tmp_path: Path
) -> None:
    workspace = workspace_with_firewall(tmp_path)
    hostile = "missing.toml; touch pwned $(touch pwned2)"
    run = runner.run(workspace, {"config": hostile})
    assert run.status == 2
    assert (run.outputs["verdict"], run.outputs["failures"], run.outputs["report"]) == \
        ("error", "0", "")
    assert "::error title=bpflint::bpflint: error:" in run.stdout
    assert all(a.split("::", 2)[2].strip() for a in run.annotations())
    assert "could not check" in run.summary
    assert not list(workspace.rglob("pwned*"))


def test_action_compares_with_the_pull_requests_base_branch(
    runner: Runner, tmp_path: Path
) -> None:
    """github.base_ref is used when base-ref is empty; the base is fetched from origin
    when the checkout has only the pull request's commit, as actions/checkout leaves it."""
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

    run = runner.run(workspace, {"config": "xdp-firewall/bpfbudget.toml"}, base_ref="main")
    assert run.status == 0, run.stdout + run.stderr
    assert run.outputs["verdict"] == "pass"
    assert "origin/main" in run.summary  # the table compares with the base branch


# ---------------------------------------------------------------- pull requests

def pr_checkout(tmp_path: Path, on_main: Any = None, on_pr: Any = None,
                main_moves_on: Any = None, merge_commit: bool = False) -> Path:
    """A pull request as actions/checkout leaves it: ``origin`` is a bare repository
    holding ``main``; the checkout has the ``pr`` branch, one commit deep, or with
    ``merge_commit`` (what a pull_request event checks out by default) the test merge
    of the pull request into main, refs/pull/7/merge, one commit deep.

    ``on_main(project)`` edits the base before it is committed, ``on_pr(project)`` the
    pull request's change, ``main_moves_on(project)`` a later commit on main.
    """
    src = tmp_path / "src"
    project = workspace_with_firewall(src).parent / "workspace" / "xdp-firewall"
    repo = project.parent
    config = project / "bpfbudget.toml"
    # compare with the base only, not with the committed baseline file
    config.write_text(config.read_text().replace('baseline = "bpf-baseline.json"\n', ""))
    if on_main:
        on_main(project)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "base")
    git(repo, "checkout", "-q", "-b", "pr")
    (project / "NOTES.md").write_text("a change that costs nothing\n")
    if on_pr:
        on_pr(project)
    commit_all(repo, "the pull request")
    if main_moves_on:
        git(repo, "checkout", "-q", "main")
        main_moves_on(project)
        commit_all(repo, "main moves on")
    if merge_commit:
        git(repo, "checkout", "-q", "--detach", "main")
        git(repo, "merge", "-q", "--no-ff", "-m", "Merge pr into main", "pr")
        git(repo, "update-ref", f"refs/pull/{PR_NUMBER}/merge", "HEAD")
        git(repo, "checkout", "-q", "pr")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--mirror", str(repo), str(origin))
    checkout = tmp_path / "checkout"
    if not merge_commit:
        git(tmp_path, "clone", "-q", "--depth=1", "--branch", "pr", origin.as_uri(),
            str(checkout))
        return checkout
    # actions/checkout's own commands for a pull_request event
    checkout.mkdir()
    git(checkout, "init", "-q")
    git(checkout, "remote", "add", "origin", origin.as_uri())
    tracking = f"refs/remotes/pull/{PR_NUMBER}/merge"
    git(checkout, "fetch", "-q", "--no-tags", "--depth=1", "origin",
        f"+refs/pull/{PR_NUMBER}/merge:{tracking}")
    git(checkout, "checkout", "-q", "--detach", tracking)
    return checkout


PR_INPUTS = {"config": "xdp-firewall/bpfbudget.toml"}


def run_pr(runner: Runner, checkout: Path, api: FakeGitHub | None = None,
           token: str = TOKEN, **inputs: str) -> Run:
    return runner.run(checkout, {**PR_INPUTS, **inputs}, base_ref="main",
                      event=pull_request_event(), api_url=api.url if api else "", token=token)


def test_pr_comment_is_created_once_then_updated_in_place(
    runner: Runner, github_api: FakeGitHub, tmp_path: Path
) -> None:
    checkout = pr_checkout(tmp_path)
    first = run_pr(runner, checkout, github_api)
    assert first.status == 0, first.log
    assert list(github_api.comments) == [1000]
    body = github_api.comments[1000]
    assert body.startswith(comment.marker("xdp-firewall/bpfbudget.toml") + "\n")
    # the one program did not change: folded away, still listed in a details block
    assert "<details><summary>1 unchanged program</summary>" in body
    assert "xdp_firewall" in body and "merge base" not in body  # HEAD's base is main's tip
    assert "Compared with the tip of origin/main" in body
    assert first.outputs["comment-url"] == "https://github.test/c/1000"
    assert body.rstrip().endswith(f"(https://github.test/{REPOSITORY}/actions/runs/4242)</sub>")
    assert github_api.tokens == {f"Bearer {TOKEN}"}

    second = run_pr(runner, checkout, github_api, **{"warn-only": "true"})
    assert second.status == 0, second.log
    assert list(github_api.comments) == [1000], (github_api.requests, second.log)
    assert ("PATCH", f"/repos/{REPOSITORY}/issues/comments/1000") in github_api.requests
    assert [r for r in github_api.requests if r[0] == "POST"] == \
        [("POST", f"/repos/{REPOSITORY}/issues/{PR_NUMBER}/comments")]
    assert "updated the pull-request comment" in second.stdout

    # another budget file in the same pull request gets a comment of its own
    assert comment.marker("b/bpfbudget.toml") != comment.marker("xdp-firewall/bpfbudget.toml")


def test_the_default_pull_request_checkout_a_test_merge_compares_with_mains_tip(
    runner: Runner, tmp_path: Path
) -> None:
    """actions/checkout checks out refs/pull/N/merge, one commit deep: its merge base
    with main is main's tip (its first parent), found after deepening the history."""
    def moves_on(project: Path) -> None:
        (project / "CHANGELOG.md").write_text("main moved on\n")

    checkout = pr_checkout(tmp_path, main_moves_on=moves_on, merge_commit=True)
    assert git(checkout, "rev-parse", "--is-shallow-repository") == "true"
    main_tip = git(tmp_path / "origin.git", "rev-parse", "refs/heads/main")
    run = run_pr(runner, checkout)
    assert run.status == 0, run.log
    assert f"tip of origin/main ({main_tip[:12]})" in run.summary
    assert "--deepen=" in run.stderr  # the one-commit clone had to be deepened
    report = json.loads(Path(run.outputs["report"]).read_text())
    assert report["baseline"] == f"git ref {main_tip}"


def test_merge_base_takes_local_revisions_and_refuses_options(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a").write_text("1")
    first = commit_all(repo, "one")
    (repo / "a").write_text("2")
    commit_all(repo, "two")
    # no origin: HEAD~1 is not a branch name; it resolves locally
    assert gitbase.merge_base("HEAD~1", repo).commit == first
    assert gitbase.merge_base(first, repo).commit == first
    for bad in ("--upload-pack=touch pwned", "", "main two"):
        with pytest.raises(BpfLintError):
            gitbase.merge_base(bad, repo)
    with pytest.raises(BpfLintError, match="no branch of that name"):
        gitbase.merge_base("nosuchbranch", repo)
    assert not list(tmp_path.rglob("pwned"))


@pytest.mark.parametrize("how", ["fork", "no-token"])
def test_a_pull_request_that_cannot_be_commented_gets_the_table_in_the_log(
    runner: Runner, github_api: FakeGitHub, tmp_path: Path, how: str
) -> None:
    github_api.forbid = True  # what a fork's read-only token gets
    checkout = pr_checkout(tmp_path)
    run = run_pr(runner, checkout, github_api, token=TOKEN if how == "fork" else "")
    assert run.status == 0, run.log
    assert github_api.comments == {}
    notices = run.annotations("notice")
    expected = "HTTP 403: Resource not accessible by integration" if how == "fork" \
        else "no github-token"
    assert any("could not comment on pull request #7" in n and expected in n
               for n in notices), notices
    # the comment's Markdown, verbatim, inside a log group with commands switched off
    logged = run.stdout.split("::stop-commands::", 1)[1]
    assert comment.marker("xdp-firewall/bpfbudget.toml") in logged
    assert "| Program |" in logged and "xdp_firewall" in logged
    assert "could not comment" in run.summary and "xdp_firewall" in run.summary
    assert run.outputs["comment-url"] == ""


@pytest.mark.skipif(CLANG is None or shutil.which("make") is None, reason="needs clang and make")
def test_the_comparison_uses_the_merge_base_not_the_moved_on_branch_tip(
    runner: Runner, tmp_path: Path
) -> None:
    """main got cheaper after the pull request branched: against main's tip the
    unchanged pull request would look like a regression; against the merge base it
    is unchanged."""
    light = (tmp_path / "light.o")

    def heavy_base(project: Path) -> None:
        shutil.copy(project / "firewall.bpf.o", light)
        push_firewall_over_budget(project)  # a costlier program...
        config = project / "bpfbudget.toml"  # ...that the budget allows
        config.write_text(config.read_text().replace("max_insns = 800", "max_insns = 100000")
                          .replace('max_time = "1us"\n', ""))
        assert run_make(project, "all").returncode == 0

    def cheaper_main(project: Path) -> None:
        source = project / "firewall.bpf.c"
        source.write_text(source.read_text().replace(HEAVY_LOOP, ""))
        shutil.copy(light, project / "firewall.bpf.o")

    checkout = pr_checkout(tmp_path, on_main=heavy_base, main_moves_on=cheaper_main)
    assert git(checkout, "rev-parse", "--is-shallow-repository") == "true"
    run = run_pr(runner, checkout)
    assert run.status == 0, run.log
    assert "merge base of HEAD and origin/main" in run.summary
    report = json.loads(Path(run.outputs["report"]).read_text())
    (program,) = report["programs"]
    assert (program["change"], program["delta"]["insns"], program["verdict"]) == \
        ("same", 0, "pass")

    # The same check against the tip fails: the case this test is about is real.
    tip = subprocess.run(
        [str(runner.runner_temp / "bpflint-venv" / "bin" / "bpflint"), "check",
         "--config", "xdp-firewall/bpfbudget.toml", "--base", "origin/main", "--no-cache"],
        cwd=checkout, capture_output=True, text=True, timeout=300,
        env={**os.environ, "GITHUB_ACTIONS": "", "NO_COLOR": "1"})
    assert tip.returncode == 1, tip.stdout + tip.stderr


def _ignored_objects_built_by_make(project: Path, build_command: bool) -> None:
    """Objects are build products: ignored by git, so the base ref has none."""
    (project / "firewall.bpf.o").unlink()
    (project.parent / ".gitignore").write_text("*.bpf.o\n")
    config = project / "bpfbudget.toml"
    text = config.read_text().replace("max_insns = 800", "max_insns = 100000") \
        .replace('max_time = "1us"\n', "")
    if build_command:
        text = text.replace('objects = ["*.bpf.o"]\n', 'objects = ["*.bpf.o"]\nbuild = '
                            f'["make", "--no-print-directory", "CLANG={CLANG}", "all"]\n')
    config.write_text(text)


def _base_build_supported() -> bool:
    """Whether this bpflint knows `[analyze] build` (issue 17 item 2), which
    `check --base` runs at the base ref to make the objects git ignores."""
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "bpfbudget.toml"
        config.write_text('[analyze]\nobjects = ["x.o"]\nbuild = ["make"]\n')
        try:
            load_config(config)
        except BpfLintError:
            return False
    return True


MISSING_BASE_BUILD = ("check --base does not build the objects at the base ref yet "
                      "(issue 17 item 2: [analyze] build command, or compiling the "
                      "configured sources, in the base worktree; branch i17-gate): every "
                      "program shows as new and the gate passes")
# Strict both ways: once [analyze] build exists these tests run for real (and must
# pass); without it they must still fail.
needs_base_build = pytest.mark.xfail(not _base_build_supported(), reason=MISSING_BASE_BUILD,
                                     strict=True)


@pytest.mark.skipif(CLANG is None or shutil.which("make") is None, reason="needs clang and make")
@needs_base_build
def test_a_base_branch_whose_objects_must_be_built(runner: Runner, tmp_path: Path) -> None:
    checkout = pr_checkout(
        tmp_path, on_main=lambda p: _ignored_objects_built_by_make(p, build_command=True),
        on_pr=push_firewall_over_budget)
    assert run_make(checkout / "xdp-firewall", "all").returncode == 0  # the CI build step
    run = run_pr(runner, checkout)
    report = json.loads(Path(run.outputs["report"]).read_text()) if run.outputs["report"] \
        else {"programs": []}
    assert [(p["change"], p["verdict"]) for p in report["programs"]] == [("same", "fail")], \
        run.log
    assert report["programs"][0]["delta"]["insns"] > 0
    assert run.status == 1 and run.outputs["verdict"] == "fail"


@pytest.mark.skipif(CLANG is None or shutil.which("make") is None, reason="needs clang and make")
@needs_base_build
def test_a_base_with_nothing_to_compare_is_an_error_the_action_shows(
    runner: Runner, github_api: FakeGitHub, tmp_path: Path
) -> None:
    checkout = pr_checkout(
        tmp_path, on_main=lambda p: _ignored_objects_built_by_make(p, build_command=False),
        on_pr=push_firewall_over_budget)
    assert run_make(checkout / "xdp-firewall", "all").returncode == 0
    run = run_pr(runner, checkout, github_api)
    assert run.status == 2 and run.outputs["verdict"] == "error", run.log
    assert "could not check" in run.summary
    assert any(a.split("::", 2)[2].strip() for a in run.annotations())
    (body,) = github_api.comments.values()
    assert "could not check" in body


def test_a_comment_for_hundreds_of_programs_is_cut_under_githubs_limit(
    runner: Runner, github_api: FakeGitHub, tmp_path: Path
) -> None:
    copies = 500  # ~150 characters a row: well over 65,536 in all

    def many_objects(project: Path) -> None:
        for index in range(copies):  # same bytes: analysed once, thanks to the cache
            name = f"one_of_many_firewalls_built_for_a_separate_customer_{index:04d}.bpf.o"
            shutil.copy(project / "firewall.bpf.o", project / name)

    checkout = pr_checkout(tmp_path, on_pr=many_objects)
    # bpflint analyses identical objects of one run each on its own: cache the result
    # first, so the copies cost a cache read each (1.6 s for all, not 36 s)
    warm = runner.run(workspace_with_firewall(tmp_path / "warm"), PR_INPUTS)
    assert warm.status == 0, warm.log
    run = run_pr(runner, checkout, github_api)
    assert run.status == 0, run.log[-3000:]
    report = json.loads(Path(run.outputs["report"]).read_text())
    assert len(report["programs"]) == copies + 1
    (body,) = github_api.comments.values()
    assert len(body) <= 65_536
    assert "**The report was cut to fit GitHub's comment size limit" in body
    assert body.count("<details>") == body.count("</details>")
    assert body.rstrip().endswith("/actions/runs/4242)</sub>")
    assert len(run.summary) > 65_536  # the job summary keeps every row


# ---------------------------------------------------------------- errors, args, cache

def test_an_unreadable_object_is_named_in_the_annotation_summary_and_comment(
    runner: Runner, github_api: FakeGitHub, tmp_path: Path
) -> None:
    def broken(project: Path) -> None:
        (project / "bad.bpf.o").write_bytes(b"not an ELF file at all")

    checkout = pr_checkout(tmp_path, on_pr=broken)
    run = run_pr(runner, checkout, github_api)
    assert run.status == 2, run.log
    assert run.outputs["verdict"] == "error"
    annotations = run.annotations()
    assert annotations and all(a.split("::", 2)[2].strip() for a in annotations)
    assert any("bad.bpf.o" in a for a in annotations), annotations
    block = run.summary.split("### bpflint could not check the budgets", 1)[1]
    assert "bad.bpf.o" in block.split("```")[1]
    (body,) = github_api.comments.values()
    assert "could not check" in body and "bad.bpf.o" in body


def test_an_unknown_argument_is_shown_not_swallowed(runner: Runner, tmp_path: Path) -> None:
    workspace = workspace_with_firewall(tmp_path)
    run = runner.run(workspace, {**PR_INPUTS, "args": "--no-such-flag"})
    assert run.status == 2
    assert any("unrecognized arguments: --no-such-flag" in a for a in run.annotations()), \
        run.log
    assert "unrecognized arguments: --no-such-flag" in run.summary


@pytest.mark.parametrize("stderr, stdout, expected", [
    # check after issue 17 item 5: one line per problem on stderr
    ("bpflint: note: x\nbpflint: error: a.o: not an ELF file\nbpflint: error: b.o: no BTF\n",
     "", ["bpflint: error: a.o: not an ELF file", "bpflint: error: b.o: no BTF"]),
    # check before it: the problem in the text report on stdout, nothing on stderr
    ("", "  no BPF programs found\n\nerror: bad.bpf.o: not an ELF file\n\n"
         "bpflint: 1 object(s) could not be analysed\n",
     ["error: bad.bpf.o: not an ELF file"]),
    # argparse
    ("usage: bpflint [-h] COMMAND ...\nbpflint check: error: unrecognized arguments: -x\n",
     "", ["bpflint check: error: unrecognized arguments: -x"]),
    # a crash: the traceback's last line
    ("Traceback (most recent call last):\n  File \"x\"\nKeyError: 'insns'\n", "",
     ["KeyError: 'insns'"]),
    ("", "::error::already annotated\n", ["bpflint exited with status 2 and printed no message"]),
    ("", "", ["bpflint exited with status 2 and printed no message"]),
])
def test_problem_lines_come_from_whichever_stream_has_them(
    stderr: str, stdout: str, expected: list[str]
) -> None:
    assert action_check.problem_lines(stderr, stdout, 2) == expected


def test_args_are_split_without_a_shell_and_passed_to_check(
    runner: Runner, tmp_path: Path
) -> None:
    workspace = workspace_with_firewall(tmp_path)
    run = runner.run(workspace, {**PR_INPUTS, "args": "--jobs 1 --max-steps '2000000'"})
    assert run.status == 0, run.log

    hostile = runner.run(workspace,
                         {**PR_INPUTS, "args": "--jobs 1 $(touch pwned) `touch pwned2`"})
    assert hostile.status == 2  # "$(touch" is a PATH bpflint cannot read
    assert not list(workspace.rglob("pwned*"))

    managed = runner.run(workspace, {**PR_INPUTS, "args": "--form json"})
    assert managed.status == 2
    assert any("--form json" not in a and "set by the Action's inputs" in a
               for a in managed.annotations()), managed.log

    unbalanced = runner.run(workspace, {**PR_INPUTS, "args": "--jobs '1"})
    assert unbalanced.status == 2
    assert any("args: cannot split" in a for a in unbalanced.annotations())


def test_the_result_cache_is_where_actions_cache_keeps_it(
    runner: Runner, tmp_path: Path
) -> None:
    cache_steps = [s for s in ACTION["runs"]["steps"]
                   if str(s.get("uses", "")).startswith("actions/cache/")]
    assert [s["uses"].split("@")[0] for s in cache_steps] == \
        ["actions/cache/restore", "actions/cache/save"]
    restore, save = cache_steps
    for step in cache_steps:
        assert step["with"]["path"] == "${{ steps.prepare.outputs.cache-dir }}"
    assert restore["with"]["restore-keys"] == "${{ steps.prepare.outputs.cache-restore-key }}"
    assert save["with"]["key"] == "${{ steps.check.outputs.cache-key }}"
    assert "!cancelled()" in save["if"]  # saved when the gate fails too
    assert "steps.restore.outputs.cache-matched-key" in save["if"]

    workspace = workspace_with_firewall(tmp_path)
    shutil.rmtree(runner.cache_home, ignore_errors=True)
    run = runner.run(workspace, PR_INPUTS)
    assert run.status == 0, run.log
    prepared = run.steps["prepare"]
    assert prepared["cache-dir"] == str(runner.cache_home / "bpflint")
    assert list((runner.cache_home / "bpflint").rglob("*.json")), "nothing was cached"
    assert prepared["cache-key"].startswith(prepared["cache-restore-key"])
    assert prepared["cache-restore-key"].startswith(f"bpflint-{__version__}-Linux-")
    saved = run.steps["check"]["cache-key"]
    assert saved.startswith(prepared["cache-restore-key"])
    again = runner.run(workspace, PR_INPUTS)  # nothing new analysed: the same key
    assert again.steps["check"]["cache-key"] == saved

    # another cost table, another cache
    config = workspace / "xdp-firewall" / "bpfbudget.toml"
    table = workspace / "xdp-firewall" / "costs.toml"
    shipped = (ROOT / "bpflint" / "data" / "costs.toml").read_text()
    table.write_text(shipped + "\n# calibrated elsewhere\n")
    config.write_text('cost_table = "costs.toml"\n' + config.read_text())
    other = runner.run(workspace, PR_INPUTS)
    assert other.status == 0, other.log
    assert other.steps["prepare"]["cache-restore-key"] != prepared["cache-restore-key"]
    assert other.steps["check"]["cache-key"] not in ("", saved)  # a new entry too


def test_working_directory_and_report_output(runner: Runner, tmp_path: Path) -> None:
    workspace = workspace_with_firewall(tmp_path)
    run = runner.run(workspace, {"working-directory": "xdp-firewall",
                                 "config": "bpfbudget.toml", "sarif": "out/b.sarif"})
    assert run.status == 0, run.log
    assert run.outputs["sarif"] == str(workspace / "xdp-firewall" / "out" / "b.sarif")
    report = json.loads(Path(run.outputs["report"]).read_text())
    assert report["verdict"] == "pass" and report["programs"][0]["name"] == "xdp_firewall"

    missing = runner.run(workspace, {"working-directory": "nowhere"})
    assert missing.status == 2
    assert any("working-directory nowhere" in a for a in missing.annotations())


def test_the_callers_python_is_left_alone_by_default() -> None:
    assert ACTION["inputs"]["python-version"]["default"] == ""
    (setup,) = [s for s in ACTION["runs"]["steps"] if "setup-python" in str(s.get("uses"))]
    assert setup["if"] == "inputs.python-version != ''"
    install = next(s for s in ACTION["runs"]["steps"] if s.get("name") == INSTALL)
    assert 'python3 -m venv "$RUNNER_TEMP/bpflint-venv"' in install["run"]


# ---------------------------------------------------------------- the comment body

def _row(key: str, delta: str = "= +0 insns (+0.0%) / = +0.0ns", icon: str = "\u2705") -> str:
    return f"| {icon} | `{key}` | 800 insns | 535 insns / 161ns | 535 insns / 161ns | {delta} |"


def _markdown(rows: list[str], details: int = 0) -> str:
    lines = ["<!-- bpflint-report -->", "### bpflint: BPF runtime budget", "",
             "\u274c 1 of 2 program(s) over budget or regressed", "",
             "| | Program | Budget | Before | After | Delta |", "|---|---|---|---|---|---|",
             *rows]
    for index in range(details):
        lines += ["", f"<details><summary>\u274c <code>p{index}</code></summary>", "",
                  "- **BPF001 over-budget**: " + "x" * 200, "", "</details>"]
    return "\n".join(lines) + "\n"


def _program(key: str, same: bool) -> dict[str, Any]:
    return {"key": key, "verdict": "pass", "change": "same",
            "delta": {"insns": 0 if same else 12, "ns": 0.0 if same else 3.5}}


def test_unchanged_rows_fold_into_a_details_block() -> None:
    keys = ["o.o:xdp:a|b", "o.o:xdp:grew", "o.o:xdp:same"]
    rows = [_row("o.o:xdp:a\\|b"), _row(keys[1], "\u25b2 +12 insns (+2.2%)"), _row(keys[2])]
    report = {"programs": [_program(keys[0], True), _program(keys[1], False),
                           _program(keys[2], True)]}
    body = comment.build("cfg.toml", _markdown(rows), report)
    table, folded = body.split("<details><summary>2 unchanged programs</summary>")
    assert rows[1] in table and rows[0] not in table and rows[2] not in table
    assert rows[0] in folded and rows[2] in folded and "</details>" in folded

    error_line = "- error: `bad.bpf.o`: not an ELF file"
    everything_same = comment.build("cfg.toml", _markdown([rows[2]]) + error_line + "\n",
                                    {"programs": [_program(keys[2], True)]})
    assert f"</details>\n\n{error_line}\n" in everything_same  # a list again, not HTML
    assert "1 unchanged program</summary>" in everything_same
    assert everything_same.count("| | Program |") == 1  # no empty table left behind


@pytest.mark.parametrize("unchanged", [False, True])
def test_a_too_long_table_is_cut_under_githubs_limit(unchanged: bool) -> None:
    keys = [f"objects/very/long/path/number_{i:05d}.bpf.o:xdp:program_{i:05d}"
            for i in range(3000)]
    rows = [_row(key) if unchanged and i else _row(key, "\u25b2 +1 insns") for i, key
            in enumerate(keys)]
    report = {"programs": [_program(key, unchanged and i > 0) for i, key in enumerate(keys)]}
    text = _markdown(rows, details=40)
    assert len(text) > 65_536
    footer = "<sub>[workflow run](https://github.test/o/r/actions/runs/1)</sub>"
    body = comment.build("cfg.toml", text, report, footer=footer)
    assert len(body) <= 65_536 and len(body.encode("utf-16-le")) // 2 <= 65_536
    assert body.endswith("\n\n" + footer + "\n")  # the link to the whole report stays
    body = body.removesuffix("\n" + footer + "\n")
    assert body.startswith(comment.marker("cfg.toml") + "\n")
    assert body.count("<details>") == body.count("</details>")
    assert rows[0] in body  # the top of the table (the worst programs) stays
    lines = body.splitlines()
    assert all(line in text.splitlines() or not line.startswith("| ") for line in lines)
    if unchanged:  # the unchanged list goes first, as one line
        assert "2999 unchanged programs (not listed" in body
        assert body.endswith("</details>\n")  # nothing else had to be cut
    else:
        assert lines[-1].startswith("**The report was cut to fit GitHub's comment size limit")
        assert re.search(r"; \d+ of \d+ lines are left out", lines[-1])
        assert lines[-3] == ""  # the note stands after the table, not in it


def test_the_documented_workflow_uses_only_inputs_and_outputs_the_action_has() -> None:
    doc = (ROOT / "docs" / "integrations.md").read_text()
    section = doc.split("## GitHub Action\n", 1)[1].split("\n## ", 1)[0]
    workflow = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    steps = workflow["jobs"]["bpf-budget"]["steps"]
    (ours,) = [s for s in steps if str(s.get("uses", "")).startswith("bpflint/bpflint@")]
    assert set(ours["with"]) <= set(ACTION["inputs"])
    used = set(re.findall(r"steps\.bpflint\.outputs\.([\w-]+)", section))
    assert used and used <= set(ACTION["outputs"])
    assert workflow["permissions"]["pull-requests"] == "write"
    for name in ACTION["inputs"]:
        assert f"| `{name}` |" in section, f"input {name} is not documented"
    for name in ACTION["outputs"]:
        assert f"| `{name}` |" in section, f"output {name} is not documented"


def test_a_runner_python_too_old_for_bpflint_is_a_clear_error(tmp_path: Path) -> None:
    """The runner's python3 is used as it is: when it cannot run bpflint, the install
    step says so and names the input that fixes it, before pip fails obscurely."""
    fake = tmp_path / "bin" / "python3"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\n[ "$1" = "-V" ] && echo "Python 3.8.10" && exit 0\nexit 1\n')
    fake.chmod(0o755)
    install = next(s for s in ACTION["runs"]["steps"] if s.get("name") == INSTALL)
    script = tmp_path / "install.sh"
    script.write_text(install["run"])
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        env={**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}",
             "RUNNER_TEMP": str(tmp_path), "BPFLINT_SOURCE": str(tmp_path / "nowhere")},
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "::error title=bpflint::bpflint needs Python 3.10 or newer" in done.stdout
    assert "Python 3.8.10" in done.stdout and "python-version" in done.stdout
    assert not (tmp_path / "bpflint-venv").exists()


def test_the_rest_client_finds_its_own_comment_among_others(github_api: FakeGitHub) -> None:
    client = Client(github_api.url + "/", TOKEN, REPOSITORY)
    mine, theirs = comment.marker("a/bpfbudget.toml"), comment.marker("b/bpfbudget.toml")
    github_api.comments[500] = theirs + "\nanother budget file's table\n"
    created = client.upsert_comment(PR_NUMBER, mine, mine + "\nfirst\n")
    assert created.created and created.comment_id != 500
    updated = client.upsert_comment(PR_NUMBER, mine, mine + "\nsecond\n")
    assert (updated.created, updated.comment_id) == (False, created.comment_id)
    assert github_api.comments[created.comment_id].endswith("second\n")
    assert github_api.comments[500].startswith(theirs)

    github_api.forbid = True
    with pytest.raises(ApiError) as forbidden:
        client.upsert_comment(PR_NUMBER, mine, mine + "\nthird\n")
    assert forbidden.value.status == 403
    assert "Resource not accessible by integration" in str(forbidden.value)

    unreachable = Client("http://127.0.0.1:9", TOKEN, REPOSITORY)
    with pytest.raises(ApiError) as refused:
        unreachable.upsert_comment(PR_NUMBER, mine, "x")
    assert refused.value.status == 0
    leaky = Client(github_api.url, "token\nX-Evil: 1", REPOSITORY)
    with pytest.raises(ApiError) as malformed:
        leaky.upsert_comment(PR_NUMBER, mine, "x")
    assert "token" not in str(malformed.value).replace("github-token", "")

"""The Action's check step: compare with the merge base, run ``bpflint check``, set
the outputs, show any error in an annotation and the job summary, and post (or
update) the pull-request comment.

Exit status: bpflint's own (0 pass, 1 a budget or regression failure, 2 could not
check), so the step fails exactly when the gate does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpflint import __version__
from bpflint.action import comment, gitbase
from bpflint.action.github_api import ApiError, Client
from bpflint.action.runner import (
    append_summary,
    command,
    env_input,
    is_true,
    print_verbatim,
    set_output,
    workspace,
)
from bpflint.errors import BpfLintError

EXIT_ERROR = 2
MAX_PROBLEMS = 20
# options the Action sets itself from its inputs (argparse also takes abbreviations)
MANAGED = ("--config", "--base", "--format", "--output", "--warn-only")
_ERROR_LINE = re.compile(r"(^|: )error: ")


@dataclass(frozen=True)
class Inputs:
    workdir: Path
    config: str
    base_ref: str
    sarif: str
    warn_only: bool
    args: tuple[str, ...]
    cache_dir: str
    token: str
    comment: bool


def read_inputs(environ: Mapping[str, str]) -> Inputs:
    """The inputs, from the step's environment; a bad one is a BpfLintError."""
    root = Path(workspace(environ))
    workdir = root / env_input(environ, "WORKING_DIRECTORY", ".")
    if not workdir.is_dir():
        raise BpfLintError(f"working-directory {env_input(environ, 'WORKING_DIRECTORY')}: "
                           f"no such directory in {root}")
    try:
        args = tuple(shlex.split(env_input(environ, "ARGS")))
    except ValueError as exc:
        raise BpfLintError(f"args: cannot split {env_input(environ, 'ARGS')!r}: {exc}") \
            from None
    for arg in args:
        name = arg.split("=", 1)[0]
        clash = [opt for opt in MANAGED if len(name) > 3 and opt.startswith(name)]
        if clash:
            raise BpfLintError(f"args: {arg} is set by the Action's inputs (config, "
                               "base-ref, sarif, warn-only); use those instead")
    return Inputs(
        workdir=workdir,
        config=env_input(environ, "CONFIG", "bpfbudget.toml") or "bpfbudget.toml",
        base_ref=env_input(environ, "BASE_REF"),
        sarif=env_input(environ, "SARIF", "bpflint.sarif") or "bpflint.sarif",
        warn_only=is_true(env_input(environ, "WARN_ONLY", "false")),
        args=args,
        cache_dir=env_input(environ, "CACHE_DIR"),
        token=environ.get("BPFLINT_GITHUB_TOKEN", "").strip(),
        comment=is_true(env_input(environ, "COMMENT", "true")),
    )


HTML_NAME = "bpflint-cost-map.html"


def check_argv(inputs: Inputs, base: str | None, json_path: Path, md_path: Path) -> list[str]:
    argv = [sys.executable, "-m", "bpflint", "check", "--config", inputs.config,
            "--format", "text", "--format", "github",
            "--format", "sarif", "--output", inputs.sarif,
            "--format", "json", "--output", str(json_path),
            "--format", "markdown", "--output", str(md_path),
            # the cost map the Action uploads as an artifact: beside the Markdown
            "--format", "html", "--output", str(md_path.with_name(HTML_NAME))]
    if inputs.warn_only:
        argv.append("--warn-only")
    if base:
        argv += ["--base", base]
    if inputs.cache_dir and not {"--no-cache", "--cache-dir"} & \
            {a.split("=", 1)[0] for a in inputs.args}:
        argv += ["--cache-dir", inputs.cache_dir]
    # `--` is not added: args may hold PATHs and options alike, as on a command line
    return [*argv, *inputs.args]


def problem_lines(stderr: str, stdout: str, status: int) -> list[str]:
    """What went wrong, one line per problem, from whichever stream bpflint used:
    error lines on stderr, else on stdout, else the last line of either, else the
    status. Never empty, never an empty line."""
    def lines(text: str) -> list[str]:
        return [line.strip() for line in text.splitlines()
                if line.strip() and not line.startswith("::")]

    for stream in (stderr, stdout):
        found = [line for line in lines(stream) if _ERROR_LINE.search(line)]
        if found:
            return list(dict.fromkeys(found))[:MAX_PROBLEMS]
    for stream in (stderr, stdout):
        rest = [line for line in lines(stream) if "note:" not in line]
        if rest:
            return rest[-1:]
    return [f"bpflint exited with status {status} and printed no message"]


def report_errors(report: Mapping[str, Any] | None) -> list[str]:
    """The objects the JSON report says could not be analysed, one line each."""
    errors = (report or {}).get("errors") or []
    return [f"{e.get('object', '?')}: {e.get('message', '')}".strip()
            for e in errors if isinstance(e, dict)][:MAX_PROBLEMS]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "verdict" in data else None


def _failures(report: Mapping[str, Any]) -> int:
    return sum(1 for p in [*report.get("programs", []), *report.get("removed", [])]
               if p.get("verdict") == "fail")


def cache_save_key(prefix: str, cache_dir: str) -> str:
    """The actions/cache key to save the result cache under: the restore prefix and a
    hash of the entries' names (each named by its own content key), so a run that
    analysed nothing new saves nothing new. Empty when there is nothing to save."""
    root = Path(cache_dir) if cache_dir and prefix else None
    if root is None or not root.is_dir():
        return ""
    names = sorted(str(path.relative_to(root)) for path in root.rglob("*.json"))
    if not names:
        return ""
    return prefix + hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()[:16]


def run_footer(environ: Mapping[str, str]) -> str:
    """A link to the workflow run, whose job summary holds the whole report."""
    server, repository = environ.get("GITHUB_SERVER_URL"), environ.get("GITHUB_REPOSITORY")
    run_id = environ.get("GITHUB_RUN_ID")
    if not (server and repository and run_id):
        return ""
    return (f"<sub>bpflint {__version__} \u00b7 [workflow run and job summary]"
            f"({server}/{repository}/actions/runs/{run_id})</sub>")


def pull_request_number(environ: Mapping[str, str]) -> int | None:
    path = environ.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    number = (event.get("pull_request") or {}).get("number") if isinstance(event, dict) \
        else None
    return number if isinstance(number, int) else None


def post_comment(environ: Mapping[str, str], inputs: Inputs, body: str, marker: str) -> str:
    """Create or update the comment; when that is not possible, the body goes to the
    log and a notice says why. Returns the comment's URL, or ""."""
    number = pull_request_number(environ)
    if not inputs.comment or number is None:
        return ""
    why = ""
    if not inputs.token:
        why = "no github-token was given"
    elif not environ.get("GITHUB_REPOSITORY"):
        why = "GITHUB_REPOSITORY is not set"
    else:
        client = Client(environ.get("GITHUB_API_URL") or "https://api.github.com",
                        inputs.token, environ["GITHUB_REPOSITORY"])
        try:
            posted = client.upsert_comment(number, marker, body)
        except ApiError as exc:
            why = str(exc)
            if exc.status in (401, 403, 404):
                why += (" (a pull request from a fork gets a read-only token; elsewhere "
                        "give the job `permissions: pull-requests: write`)")
        else:
            verb = "posted" if posted.created else "updated"
            print(f"bpflint: {verb} the pull-request comment {posted.url or posted.comment_id}")
            return posted.url
    print(command("notice", f"could not comment on pull request #{number}: {why}. "
                            "The report is in the log below and in the job summary."))
    print_verbatim(body, "bpflint report (Markdown)")
    append_summary(environ, f"\n> bpflint could not comment on pull request #{number} "
                            f"({why}); this summary is the report.\n")
    return ""


def _could_not_check(environ: Mapping[str, str], problems: Sequence[str],
                     annotate: bool) -> None:
    if annotate:
        for problem in problems:
            print(command("error", problem))
    append_summary(environ, "\n".join(["", "### bpflint could not check the budgets", "", "```",
                                       *problems, "```", ""]))


def _run_check(inputs: Inputs, base: str | None, json_path: Path,
               md_path: Path) -> tuple[int, str, str]:
    """Run bpflint check, echo what it printed (the runner reads the annotations
    from standard output); its status, folded into 0, 1 or 2, and its two streams."""
    done = subprocess.run(check_argv(inputs, base, json_path, md_path), cwd=inputs.workdir,
                          capture_output=True, text=True, check=False)
    sys.stdout.write(done.stdout)
    sys.stdout.flush()
    sys.stderr.write(done.stderr)
    sys.stderr.flush()
    status = done.returncode if done.returncode in (0, 1) else EXIT_ERROR
    return status, done.stdout, done.stderr


def run(environ: Mapping[str, str]) -> int:
    outdir = Path(tempfile.mkdtemp(prefix="bpflint-", dir=environ.get("RUNNER_TEMP") or None))
    json_path, md_path = outdir / "report.json", outdir / "report.md"
    try:
        inputs = read_inputs(environ)
    except BpfLintError as exc:
        for name, value in (("verdict", "error"), ("failures", "0"), ("report", "")):
            set_output(environ, name, value)
        _could_not_check(environ, [f"bpflint: error: {exc}"], annotate=True)
        return EXIT_ERROR
    identity = os.path.normpath(os.path.relpath(inputs.workdir / inputs.config,
                                                workspace(environ)))
    sarif = inputs.workdir / inputs.sarif
    base: gitbase.Base | None = None
    status, stdout, stderr = EXIT_ERROR, "", ""
    problems: list[str] = []
    try:
        if inputs.base_ref:
            base = gitbase.merge_base(inputs.base_ref, inputs.workdir)
            print(f"bpflint: comparing with {base.detail}")
            append_summary(environ, f"bpflint compares with the {base.detail}.\n")
        sarif.parent.mkdir(parents=True, exist_ok=True)
    except (BpfLintError, OSError) as exc:
        problems = [f"bpflint: error: {exc}"]
    if not problems:
        status, stdout, stderr = _run_check(inputs, base.commit if base else None,
                                            json_path, md_path)
    set_output(environ, "sarif", str(sarif) if sarif.is_file() else "")
    report = _read_json(json_path)
    set_output(environ, "report", str(json_path) if report is not None else "")
    html_path = md_path.with_name(HTML_NAME)
    set_output(environ, "html", str(html_path) if html_path.is_file() else "")
    verdict = "error" if status >= EXIT_ERROR or report is None else str(report["verdict"])
    set_output(environ, "verdict", verdict)
    set_output(environ, "failures", str(_failures(report) if report is not None else 0))
    if status >= EXIT_ERROR:
        problems = problems or report_errors(report) or problem_lines(stderr, stdout, status)
        # objects bpflint could not read are annotated by its own github format
        _could_not_check(environ, problems, annotate=not (report and report.get("errors")))
    markdown_text = md_path.read_text(encoding="utf-8") if md_path.is_file() else ""
    if base is not None:  # name the branch, not only the commit
        markdown_text = markdown_text.replace(f"Compared with git ref {base.commit}.",
                                              f"Compared with the {base.detail}.")
    body = comment.build(identity, markdown_text, report,
                         errors=problems if status >= EXIT_ERROR else (),
                         footer=run_footer(environ))
    set_output(environ, "comment-url",
               post_comment(environ, inputs, body, comment.marker(identity)))
    set_output(environ, "cache-key",
               cache_save_key(env_input(environ, "CACHE_PREFIX"), inputs.cache_dir))
    return status

"""What the Actions runner gives a step and takes back: inputs, outputs, the job
summary and workflow commands (annotations, log groups)."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping

from bpflint.report.github import escape_data, escape_property


def env_input(environ: Mapping[str, str], name: str, default: str = "") -> str:
    """An input the step's ``env:`` passed as BPFLINT_<NAME>, surrounding spaces removed."""
    return environ.get(f"BPFLINT_{name}", default).strip()


def is_true(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes")


def set_output(environ: Mapping[str, str], name: str, value: str) -> None:
    """Append name=value to $GITHUB_OUTPUT (the heredoc form, safe for any value)."""
    target = environ.get("GITHUB_OUTPUT")
    if not target:
        return
    delimiter = f"bpflint_{secrets.token_hex(8)}"
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def append_summary(environ: Mapping[str, str], markdown: str) -> None:
    target = environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(markdown if markdown.endswith("\n") else markdown + "\n")
    except OSError as exc:  # a summary is a courtesy; the gate's verdict is the job
        print(f"bpflint: warning: {target}: cannot append the job summary: {exc}",
              file=sys.stderr)


def command(kind: str, message: str, title: str = "bpflint") -> str:
    """One workflow command line (``::error title=...::message``), never empty."""
    text = message.strip() or "(no message)"
    return f"::{kind} title={escape_property(title)}::{escape_data(text)}"


def print_verbatim(text: str, title: str) -> None:
    """Print text into a collapsed log group with workflow commands switched off, so
    a line of the report that starts with ``::`` cannot act as a command."""
    token = secrets.token_hex(16)
    out = sys.stdout
    out.write(f"::group::{escape_data(title)}\n::stop-commands::{token}\n")
    out.write(text if text.endswith("\n") else text + "\n")
    out.write(f"::{token}::\n::endgroup::\n")
    out.flush()


def workspace(environ: Mapping[str, str]) -> str:
    return environ.get("GITHUB_WORKSPACE") or os.getcwd()

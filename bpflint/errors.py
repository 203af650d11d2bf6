"""The one exception type bpflint turns into a one-line message and exit code 2."""

from __future__ import annotations


class BpfLintError(Exception):
    """A problem with user input (object, config, arguments) worth one line."""

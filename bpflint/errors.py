"""The one exception type bpflint turns into a one-line message and exit code 2."""

from __future__ import annotations


class BpfLintError(Exception):
    """A problem with user input (object, config, arguments) worth one line."""

    def __str__(self) -> str:
        # the one line holds names read from the input (a section name of a corrupt
        # object may contain a newline): escaped here, once for every message
        return printable(super().__str__())


def printable(text: str) -> str:
    """Escape control characters: names read from a corrupt object may hold newlines,
    and every message and table row must stay on one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)

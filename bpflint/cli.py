"""Command-line front end: argument parsing, dispatch and exit codes.

Exit codes for every command: 0 success, 1 a budget or regression failure,
2 a usage, configuration or input error (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bpflint import __version__
from bpflint.commands import COMMANDS
from bpflint.errors import BpfLintError

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_ERROR = 2

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_ERROR)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser, with the arguments of the command ``argv`` names (its first word
    that is not an option; the others are listed but not imported)."""
    parser = _Parser(
        prog="bpflint",
        description="Static worst-case runtime cost of eBPF programs, and a CI gate on it.",
    )
    parser.add_argument("--version", action="version", version=f"bpflint {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    chosen = next((word for word in argv if not word.startswith("-")), None)
    for name, help_text in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(f"bpflint.commands.{name}")
            module.add_arguments(cmd)
            cmd.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words)
    args = parser.parse_args(words)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return int(args.run(args))
    except BpfLintError as exc:
        print(f"bpflint: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("bpflint: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK

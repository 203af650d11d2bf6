"""Command-line front end: argument parsing, dispatch and exit codes.

Exit codes for every command: 0 success, 1 a budget or regression failure,
2 a usage, configuration or input error (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from bpflint import __version__, dataclass_code, native
from bpflint.commands import COMMANDS
from bpflint.errors import BpfLintError

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_ERROR = 2

# The analysis allocates millions of short-lived tuples while it keeps large acyclic
# structures (states, views, memos). At the collector's default thresholds (a
# collection every 700 allocations) it walked those over and over: 27 % of
# pyperf180's time. Reference counting frees nearly all of it; the collector still
# runs, about 70 times less often. Peak memory stayed the same (the 1M-instruction
# program: 510 MB either way). Set by entry(), the process's own entry point; worker
# processes are forked and inherit it. While one program is analysed the collector
# is off altogether (cost/engine.py's analyze_program): these thresholds cover the rest.
GC_THRESHOLDS = (50_000, 20, 20)


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, which looks the terminal's width up only to format help.

    argparse makes a formatter for every add_argument, only to check the argument,
    and the stock one asks shutil for the width each time: importing shutil (and bz2
    and lzma with it) was 2-3 ms of every start that never shows any help."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         width=80 if width is None else width)
        self._terminal_width = width is None
        self._wanted_help_position = max_help_position

    def format_help(self) -> str:
        if self._terminal_width:  # as HelpFormatter.__init__ does with no width given
            import shutil

            self._width = shutil.get_terminal_size().columns - 2
            self._max_help_position = min(self._wanted_help_position,
                                          max(self._width - 20, self._indent_increment * 2))
            self._terminal_width = False
        return super().format_help()


class _RawDescriptionFormatter(argparse.RawDescriptionHelpFormatter, _Formatter):
    """The same, keeping the description's line breaks (--version on one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_ERROR)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser, with the arguments of the command ``argv`` names (its first word
    that is not an option; the others are listed, where they could show, but not
    imported)."""
    parser = _Parser(
        prog="bpflint",
        description="Static worst-case runtime cost of eBPF programs, and a CI gate on it.",
        formatter_class=_RawDescriptionFormatter,  # --version on one line
    )
    parser.add_argument("--version", action="version",
                        version=f"bpflint {__version__} ({native.describe()})")
    # prog given: argparse would format a usage line to find it (no positionals: the
    # name alone), and with it the terminal's width (_Formatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser,
                                prog=parser.prog)
    chosen = next((word for word in argv if not word.startswith("-")), None)
    # A command named first is the only one parsed, and nothing before it can show the
    # others (the top-level help, an unknown command's error): only its parser is made.
    # argparse makes each with a dozen gettext calls, every one probing the file
    # system for translations.
    listed = COMMANDS
    if chosen in COMMANDS and argv[0] == chosen:
        listed = {chosen: COMMANDS[chosen]}
    for name, help_text in listed.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text,
                             formatter_class=_Formatter)
        if name == chosen:
            # before the command's modules make their dataclasses (dataclass_code.py)
            dataclass_code.install()
            module = importlib.import_module(f"bpflint.commands.{name}")
            module.add_arguments(cmd)
            cmd.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if native.set_aside is not None and not native.pure_asked:
        print(f"bpflint: note: running pure Python; the compiled core is set aside: "
              f"{native.set_aside} (python scripts/native.py build)", file=sys.stderr)
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


def entry() -> NoReturn:
    """The `bpflint` command and `python -m bpflint`: main(), then an exit without the
    interpreter's teardown. Teardown frees, one by one, every object the analysis
    left (caches, the last program's states) and runs a full collection: 0.07 s of
    a 0.57 s run on a Cilium object. bpflint leaves nothing to it: its files are
    closed as they are written (baselines fsynced and renamed into place), its
    threads and worker processes are joined, and the standard streams are flushed
    here."""
    gc.set_threshold(*GC_THRESHOLDS)
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a reader gone, or a stream closed
            pass
    os._exit(code)

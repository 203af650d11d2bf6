"""`bpflint calibrate`: measure a cost table on this machine's kernel."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from bpflint.commands import COMMANDS
from bpflint.cost.table_file import load_cost_table, parse_cost_table
from bpflint.errors import BpfLintError
from bpflint.kernel.calibrate.run import bench_list, calibrate, select
from bpflint.kernel.calibrate.timing import FULL, QUICK

NAME = "calibrate"
HELP = COMMANDS[NAME]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="where to write the table (default: standard output)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer samples and repetitions (under a minute)")
    parser.add_argument("--base-table", metavar="FILE",
                        help="table that prices what is not measured here (refused by "
                             "this kernel or left out; default: the shipped table)")
    parser.add_argument("--only", action="append", default=[], metavar="PATTERN",
                        help="measure only these entries: a helper or instruction class "
                             "name or glob (map_lookup_elem, 'insn.alu_*', 'helper.xdp_*');"
                             " repeatable, or comma-separated")
    parser.add_argument("--skip", action="append", default=[], metavar="PATTERN",
                        help="do not measure these entries (same patterns as --only)")
    parser.add_argument("--list", action="store_true",
                        help="list the entries and their benchmarks, and exit")


def _patterns(values: list[str]) -> tuple[str, ...]:
    return tuple(p.strip() for value in values for p in value.split(",") if p.strip())


class StderrProgress:
    """Progress on stderr, one line per benchmark: "[n/total] entry (variant)" is
    written when the benchmark starts (a hang or a crash names it) and the line is
    completed with its figures when it ends."""

    def __init__(self) -> None:
        self._open = ""  # a message written without its line end, awaiting its outcome

    def __call__(self, message: str) -> None:
        if self._open and message.startswith(self._open):
            self._write(message[len(self._open):] + "\n")
            self._open = ""
            return
        self._end()
        self._write(f"calibrate: {message}")
        self._open = message

    def line(self, message: str) -> None:
        self._end()
        self._write(f"calibrate: {message}\n")

    def _end(self) -> None:
        if self._open:
            self._write("\n")
            self._open = ""

    @staticmethod
    def _write(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    only, skip = _patterns(args.only), _patterns(args.skip)
    benches = bench_list()
    if args.list:
        for key, variant in benches:
            print(f"{key}\t{variant}")
        return 0
    select((key for key, _ in benches), only, skip)  # a misspelt pattern: before any work
    if os.geteuid() != 0:
        raise BpfLintError("calibrate needs root (it loads and runs BPF programs)")
    base = load_cost_table(args.base_table)
    progress = StderrProgress()
    opts = replace(QUICK if args.quick else FULL, progress=progress)
    start = time.monotonic()
    result = calibrate(opts, base=base, only=only, skip=skip)
    # A table we cannot read back is a bug here, not a user error: check before writing.
    parse_cost_table(result.text, args.output or "<stdout>")
    if args.output:
        out = Path(args.output)
        tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
        try:
            tmp.write_text(result.text, encoding="utf-8")
            tmp.replace(out)
        except OSError as exc:
            raise BpfLintError(f"{out}: cannot write cost table: {exc.strerror}") from None
    else:
        sys.stdout.write(result.text)
    summary = result.summary()
    if summary:
        progress.line(summary)
    progress.line(f"done in {time.monotonic() - start:.0f} s"
                  + (f", wrote {args.output}" if args.output else ""))
    return 0

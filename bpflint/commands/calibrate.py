"""`bpflint calibrate`: measure a cost table on this machine's kernel."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from bpflint.commands import COMMANDS
from bpflint.cost.calibrate import FULL, QUICK, run_calibration, stderr_progress
from bpflint.cost.model import parse_cost_table
from bpflint.errors import BpfLintError

NAME = "calibrate"
HELP = COMMANDS[NAME]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="where to write the table (default: standard output)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer samples and repetitions (under a minute)")


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise BpfLintError("calibrate needs root (it loads and runs BPF programs)")
    opts = replace(QUICK if args.quick else FULL, progress=stderr_progress)
    start = time.monotonic()
    text = run_calibration(opts)
    # A table we cannot read back is a bug here, not a user error: check before writing.
    parse_cost_table(text, args.output or "<stdout>")
    if args.output:
        out = Path(args.output)
        tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
        try:
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(out)
        except OSError as exc:
            raise BpfLintError(f"{out}: cannot write cost table: {exc.strerror}") from None
    else:
        sys.stdout.write(text)
    stderr_progress(f"done in {time.monotonic() - start:.0f} s"
                    + (f", wrote {args.output}" if args.output else ""))
    return 0

"""`bpflint baseline`: record the current results as the committed baseline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bpflint.budget.baseline import from_results, write_baseline
from bpflint.budget.gate import check_config_use
from bpflint.commands import COMMANDS
from bpflint.commands.check import (
    add_config_arguments,
    analyze_inputs,
    cache_dir,
    load_setup,
    require_programs,
)
from bpflint.errors import BpfLintError

NAME = "baseline"
HELP = COMMANDS[NAME]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--output", "-o", type=Path, metavar="FILE",
                        help="baseline file to write (default: the config's baseline)")


def run(args: argparse.Namespace) -> int:
    config, table, settings = load_setup(args)
    target = args.output or config.baseline
    if target is None:
        raise BpfLintError(f"{config.path}: no baseline file: set baseline = \"...\" or pass "
                           "--output FILE")
    analysed = analyze_inputs(config, args.paths, table, settings, cache_dir(config))
    report = analysed.report
    if report.errors:
        # A partial baseline would make every missing program look removed later.
        first, more = report.errors[0], len(report.errors) - 1
        also = f"; {more} more error(s)" if more else ""
        raise BpfLintError(f"{first.object}: {first.message} (baseline {target} left "
                           f"unchanged{also})")
    require_programs(config, args.paths, analysed)
    if not args.paths:
        check_config_use(config, report.programs, analysed.identities)
    write_baseline(target, from_results(report.programs, str(target), config.root,
                                        analysed.identities))
    print(f"bpflint: wrote {len(report.programs)} program(s) to {target}", file=sys.stderr)
    return 0

"""`bpflint check`: analyse, compare with budgets and a baseline, report, exit 0/1/2.

Formats pair with files by order: each ``--output FILE`` belongs to the ``--format``
just before it; a format without one writes to standard output, e.g.
``--format text --format sarif --output out.sarif --format github``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bpflint import api
from bpflint.budget import gitref, keys
from bpflint.budget.baseline import Baseline, from_results, read_baseline
from bpflint.budget.config import BudgetConfig, Remembered, find_config, load_config
from bpflint.budget.gate import GateReport, check_config_use, evaluate
from bpflint.build import is_bpf_source
from bpflint.cache import default_cache_dir
from bpflint.commands import COMMANDS
from bpflint.commands.analyze import (
    RunSettings,
    add_run_arguments,
    cpu_caches,
    load_table,
    note_line,
    printable,
    run_settings,
)
from bpflint.cost import table_ready
from bpflint.errors import BpfLintError
from bpflint.report import text
from bpflint.report.paths import PathNamer
from bpflint.results import AnalysisReport

if TYPE_CHECKING:
    from bpflint.budget.history import History

NAME = "check"
HELP = COMMANDS[NAME]

FORMATS = ("text", "json", "sarif", "github", "markdown", "html")
# Formats whose output is lines a person or the Actions runner reads, so they may
# share standard output; the others are documents that must stand alone.
_LINE_FORMATS = {"text", "github"}
CACHE_DIR_NAME = ".bpflint-cache"
TREND_COMMITS = 20  # commits of the baseline file the HTML report's trends span


class _OutputAction(argparse.Action):
    """--format appends a (format, None) pair; --output fills the last pair's file."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        pairs: list[list[str | None]] = [list(p) for p in getattr(namespace, self.dest) or []]
        if option_string == "--format":
            pairs.append([values, None])
        elif not pairs:
            parser.error("--output FILE must follow the --format it is for")
        elif pairs[-1][1] is not None:
            parser.error(f"--format {pairs[-1][0]} already writes to {pairs[-1][1]}")
        else:
            pairs[-1][1] = values
        setattr(namespace, self.dest, pairs)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments `check` and `baseline` share."""
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="objects, directories or .bpf.c sources to analyse instead of "
                             "the config's [analyze] globs")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="budget file (default: ./bpfbudget.toml)")
    add_run_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--base", metavar="REF",
                        help="compare with the results at git REF (from a temporary worktree) "
                             "instead of the baseline file")
    parser.add_argument("--format", dest="outputs", action=_OutputAction, choices=FORMATS,
                        help="report format, repeatable (default: text; github is added "
                             "when GITHUB_ACTIONS=true)")
    parser.add_argument("--output", dest="outputs", action=_OutputAction, metavar="FILE",
                        help="write the preceding --format to FILE instead of stdout")
    parser.add_argument("--explain-match", action="store_true",
                        help="show which budget each program matched, and why")
    parser.add_argument("--warn-only", action="store_true",
                        help="report failures but exit 0 (also: warn_only = true)")


def plan_outputs(requested: Sequence[Sequence[str | None]] | None,
                 environ: Mapping[str, str]) -> list[tuple[str, Path | None]]:
    """The (format, file) pairs to write; None means standard output."""
    pairs = [(str(fmt), None if out is None else Path(out)) for fmt, out in requested or []]
    if not pairs:
        pairs = [("text", None)]
    on_stdout = [fmt for fmt, out in pairs if out is None]
    if environ.get("GITHUB_ACTIONS") == "true" and "github" not in {f for f, _ in pairs} \
            and set(on_stdout) <= _LINE_FORMATS:
        pairs.append(("github", None))
        on_stdout.append("github")
    if len(on_stdout) > 1 and not set(on_stdout) <= _LINE_FORMATS:
        raise BpfLintError(f"formats {', '.join(on_stdout)} would all go to standard output; "
                           "give each document format its own --output FILE")
    return pairs


def cache_dir(config: BudgetConfig) -> Path:
    return config.root / CACHE_DIR_NAME


@dataclass(frozen=True)
class Analysed:
    """An analysis of the configured (or given) inputs, and what to call its objects."""

    report: AnalysisReport
    # result.object -> the object's path relative to the budget file (keys.py); a
    # compiled source is named by the object beside it, not by its cache path
    identities: Mapping[str, str]
    objects: tuple[str, ...]  # the object files named (not compiled), as given


def analyze_inputs(config: BudgetConfig, paths: Sequence[str], table: Any,
                   settings: RunSettings, build_cache: Path, strict: bool = True
                   ) -> Analysed:
    """Compile sources (the build step) and analyse objects: the PATHs, else [analyze]."""
    if paths:
        sources = [Path(p) for p in paths if is_bpf_source(Path(p))]
        objects = [p for p in paths if not is_bpf_source(Path(p))]
    else:
        if not config.objects and not config.sources:
            raise BpfLintError(f"{config.path}: [analyze] names no objects or sources, and "
                               "no PATH was given")
        sources = list(config.expand("sources", strict))
        objects = [str(p) for p in config.expand("objects", strict)]
    compiled = []
    if sources:
        from bpflint.build.compile import compile_sources  # subprocess, tempfile: only here

        compiled = compile_sources(sources, config.build, build_cache, settings.jobs)
    report = api.analyze_paths([*objects, *(str(p) for p in compiled)], table,
                               settings.options, jobs=settings.jobs, cache=settings.cache,
                               limits=settings.limits)
    names = {str(obj): keys.source_identity(src, config.root)
             for src, obj in zip(sources, compiled, strict=True)}
    identities = {r.object: keys.object_identity(r.object, config.root, names)
                  for r in report.programs}
    return Analysed(report, identities, tuple(objects))


def require_programs(config: BudgetConfig, paths: Sequence[str], analysed: Analysed) -> None:
    """A gate that found nothing to check must not pass: no program and no error is a
    configuration mistake unless [analyze] allow_empty says it is expected."""
    report = analysed.report
    if report.programs or report.errors or config.allow_empty:
        return
    what = ", ".join(paths) if paths else \
        ", ".join(repr(glob) for glob in (*config.objects, *config.sources))
    raise BpfLintError(f"{config.path}: no BPF program found in {what}; set [analyze] "
                       "allow_empty = true if that is expected")


def load_setup(args: argparse.Namespace) -> tuple[BudgetConfig, Any, RunSettings]:
    config = load_config(find_config(args.config), remembered_documents(args))
    settings = run_settings(args, config.limits, config.tail_calls, config.rodata,
                            config.may_goto)
    table = load_table(str(config.cost_table) if config.cost_table else None,
                       cpu_caches(args, config.cpu_caches))
    return config, table, settings


def remembered_documents(args: argparse.Namespace) -> Remembered | None:
    """Where the budget file's parsed document is kept: in the result cache (saves
    tomllib's import and parse, 5-8 ms of a check), none with --no-cache."""
    if args.no_cache:
        return None
    directory = args.cache_dir or default_cache_dir(os.environ)
    return table_ready.Remembered(str(directory / table_ready.TOML_DIR))


def _not_committed(paths: Sequence[Path], top: Path) -> list[Path]:
    """Those of ``paths`` git does not track: build products, not sources."""
    tracked = set(gitref.tracked_files(paths, top))
    return [path for path in paths if path.resolve() not in tracked]


def _base_baseline(ref: str, config: BudgetConfig, paths: Sequence[str], current: Analysed,
                   table: Any, settings: RunSettings
                   ) -> tuple[Baseline, list[str], AnalysisReport]:
    """Results at git REF, analysed in a temporary worktree, as a baseline.

    Objects the working tree has but git does not track (``build/`` ignored) are
    build products: at REF they come from [analyze] build, run in the worktree, or
    from [analyze] sources compiled there. An object still missing there is new only
    when the build ran and made some of the others; otherwise nothing was compared,
    which is an error, never "every program is new".
    """
    with gitref.worktree_at(ref, config.root) as (top, tree):
        there = gitref.map_into(config.path, top, tree)
        # The budget file may be new in this change: then its globs apply at REF too.
        base_config = load_config(there) if there.is_file() else \
            dataclasses.replace(config, path=there)
        if base_config.build_command:
            from bpflint.build.command import run_build

            base_config.root.mkdir(parents=True, exist_ok=True)
            run_build(base_config.build_command, base_config.root, f"--base {ref}")
        _check_base_objects(ref, config, base_config, current, top)
        base_paths = [str(gitref.map_into(Path(p), top, tree)) for p in paths]
        existing = [p for p in base_paths if Path(p).exists()]
        if paths and not existing:
            analysed = Analysed(AnalysisReport((), ()), {}, ())
        else:
            # tail-call targets describe the base's code; the limits are this run's, so a
            # change to [limits] cannot by itself look like a regression or a fix
            base_options = dataclasses.replace(
                settings.options, tail_call_targets=dict(base_config.tail_calls))
            analysed = analyze_inputs(base_config, existing, table,
                                      dataclasses.replace(settings, options=base_options),
                                      cache_dir(config), strict=False)
    # Problems at the base are not this change's fault: mention them, do not fail.
    notes = [f"at {ref}: {err.object.replace(str(tree), '.')}: {err.message}"
             for err in analysed.report.errors]
    baseline = from_results(analysed.report.programs, f"git ref {ref}", base_config.root,
                            analysed.identities)
    return baseline, notes, analysed.report


def _check_base_objects(ref: str, config: BudgetConfig, base_config: BudgetConfig,
                        current: Analysed, top: Path) -> None:
    objects = [Path(obj) for obj in current.objects]
    products = _not_committed(objects, top)
    if not products:
        return
    missing = [obj for obj in products
               if not (base_config.root / keys.object_identity(str(obj), config.root)).is_file()]
    if not missing or (base_config.build_command and len(missing) < len(products)):
        return
    named = keys.object_identity(str(missing[0]), config.root)
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    if base_config.build_command:
        how = (f"[analyze] build = {list(base_config.build_command)} ran but made none of "
               "the objects")
    else:
        how = ("set [analyze] build to the command that builds them (e.g. [\"make\"]) or "
               "[analyze] sources, so bpflint can build them there")
    raise BpfLintError(f"--base {ref}: {named}{more} is not committed and does not exist at "
                       f"{ref}, so there is nothing to compare with: {how}")


def gate(args: argparse.Namespace, config: BudgetConfig, table: Any,
         settings: RunSettings, root: Path | None = None) -> GateReport:
    current = analyze_inputs(config, args.paths, table, settings, cache_dir(config))
    require_programs(config, args.paths, current)
    if not args.paths:
        check_config_use(config, current.report.programs, current.identities)
    notes: list[str] = []
    baseline: Baseline | None = None
    base = AnalysisReport((), ())
    if args.base:
        baseline, notes, base = _base_baseline(args.base, config, args.paths, current,
                                               table, settings)
    elif config.baseline is not None:
        if config.baseline.is_file():
            baseline = read_baseline(config.baseline)
        else:
            notes.append(f"no baseline at {config.baseline} yet: run `bpflint baseline` "
                         "and commit it")
    # One spelling of every path in every report: relative to the repository.
    namer = PathNamer(root if root is not None else workspace_root(config))
    identities = {namer.object(obj): name for obj, name in current.identities.items()}
    report = evaluate(namer.report(current.report), config, baseline,
                      warn_only=args.warn_only, identities=identities)
    hint = accept_hint(config, args, report)
    return dataclasses.replace(report, notes=(*report.notes, *notes), accept_hint=hint,
                               base_results=base.programs)


def accept_hint(config: BudgetConfig, args: argparse.Namespace, report: GateReport
                ) -> str | None:
    """How to accept a regression, when one failed the gate."""
    if not any(f.rule == "BPF002" and f.level == "error"
               for v in report.failures for f in v.findings):
        return None
    config_arg = "" if args.config is None else f" --config {args.config}"
    if args.base or config.baseline is None:
        line = config.line_of(("regression", "allowed"))
        return (f"to accept a regression against {args.base or 'the base'}, raise [regression] "
                f"allowed in {config.path} (line {line}), or record a baseline file "
                f"(baseline = \"bpf-baseline.json\", then `bpflint baseline{config_arg}`)")
    return (f"to accept it, run `bpflint baseline{config_arg}` and commit "
            f"{config.baseline} with this change")


def workspace_root(config: BudgetConfig) -> Path:
    """What SARIF and annotation paths are relative to: the checkout Actions made,
    else the git work tree, else the budget file's directory."""
    if os.environ.get("GITHUB_WORKSPACE"):
        return Path(os.environ["GITHUB_WORKSPACE"])
    return gitref.repo_root(config.root) or config.root.resolve()


def use_colour(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return stream.isatty() and not environ.get("NO_COLOR")


def _render(fmt: str, report: GateReport, root: Path, colour: bool,
            trends: History | None = None) -> str:
    if fmt == "text":
        return text.render(report, colour=colour)
    # the other formats are imported when asked for: a pre-commit run writes text
    from bpflint.report import check_json, github, html, markdown, sarif

    if fmt == "json":
        return check_json.render(report)
    if fmt == "sarif":
        return sarif.render(report, root)
    if fmt == "github":
        return github.render(report, root)
    if fmt == "html":
        return html.render_check(report, trends, root)
    return markdown.render(report)


def _write(path: Path, content: str) -> None:
    try:
        path.write_text(content, encoding="utf-8")
    except OSError as exc:
        raise BpfLintError(f"{path}: cannot write report: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    outputs = plan_outputs(args.outputs, os.environ)
    config, table, settings = load_setup(args)
    root = workspace_root(config)
    report = gate(args, config, table, settings, root)
    stdout_formats = {fmt for fmt, out in outputs if out is None}
    colour = use_colour(sys.stdout, os.environ)
    if args.explain_match:
        stream = sys.stdout if stdout_formats <= _LINE_FORMATS else sys.stderr
        stream.write(text.render_explain(report))
    for note in report.notes:
        print(note_line(note), file=sys.stderr)
    # Problems go to stderr, one line each naming the file; stdout is the report's.
    for err in report.errors:
        print(f"bpflint: error: {printable(err.object)}: {printable(err.message)}",
              file=sys.stderr)
    trends = None  # the HTML report's trend per program, from the baseline's git history
    if any(fmt == "html" for fmt, _ in outputs) and config.baseline is not None \
            and config.baseline.is_file():
        from bpflint.budget.history import baseline_history

        trends = baseline_history(config.baseline, TREND_COMMITS)
    for fmt, out in outputs:
        if out is None:
            sys.stdout.write(_render(fmt, report, root, colour, trends))
        else:
            _write(out, _render(fmt, report, root, colour=False, trends=trends))
        if fmt == "github":
            from bpflint.report import github

            github.append_step_summary(report)
    sys.stdout.flush()
    return report.exit_code

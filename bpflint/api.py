"""Entry points: find objects, read them, cost every program. Nothing here prints.

A bad object becomes an :class:`ObjectError` in the report and the other objects are
still analysed, so one broken file in a build tree does not hide the rest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpflint.cache import ObjectOutcome, ResultCache, code_digest, entry_key, is_cacheable
from bpflint.cost.options import AnalysisOptions
from bpflint.errors import BpfLintError
from bpflint.isa.insn import Insn
from bpflint.obj.elf import EM_BPF
from bpflint.obj.loader_vars import apply_pins, loader_vars, unknown_pin_notes
from bpflint.obj.model import BpfObject, FuncKey, Function, Program
from bpflint.obj.reader import ReadLimits, parse_object, read_object_bytes
from bpflint.results import AnalysisReport, ObjectError, ProgramResult, TableInfo

if TYPE_CHECKING:
    from concurrent.futures import Future


def analyze_program(obj: BpfObject, program: Program, table: Any,
                    options: AnalysisOptions, targets: Any = None) -> ProgramResult:
    """bpflint.cost.engine's, imported on first use: a run whose every result comes
    from the cache never imports the engine (most of a run's start-up). ``targets``
    (a bpflint.cost.targets.Targets) shares tail-call targets between an object's
    programs."""
    from bpflint.cost.engine import analyze_program as analyze

    return analyze(obj, program, table, options, targets)


def _new_targets() -> Any:
    """A bpflint.cost.targets.Targets, imported on first use (as analyze_program)."""
    from bpflint.cost.targets import Targets

    return Targets()


def analyze_async_callbacks(obj: BpfObject, table: Any,
                            options: AnalysisOptions) -> list[ProgramResult]:
    """bpflint.cost.engine's, imported on first use (as analyze_program)."""
    from bpflint.cost.engine import analyze_async_callbacks as analyze

    return analyze(obj, table, options)

OBJECT_SUFFIX = ".o"  # covers *.bpf.o too

_ELF_MAGIC = b"\x7fELF"
# e_machine values of the hosts whose objects sit next to BPF ones in build trees
_MACHINES = {3: "x86", 8: "MIPS", 21: "PowerPC64", 22: "s390", 40: "ARM", 62: "x86-64",
             183: "AArch64", 243: "RISC-V", 258: "LoongArch"}


def discover(paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """Expand files and directories (recursively, ``*.o``) into object paths.

    Returns (objects, notes). A file named on the command line is always returned,
    so a broken one is reported; inside a directory an ELF file for another machine
    (a host object next to the BPF ones) is skipped with a note. A path that does
    not exist is an error.
    """
    objects: list[str] = []
    notes: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            objects.append(path)

    for given in paths:
        path = Path(given)
        if path.is_dir():
            before = len(objects)
            for found in sorted(_walk_objects(path)):
                machine = _foreign_elf_machine(found)
                if machine is None:
                    add(str(found))
                else:
                    what = _MACHINES.get(machine, f"machine {machine}")
                    notes.append(f"skipped {found}: not a BPF object (ELF for {what})")
            if len(objects) == before:
                notes.append(f"no BPF objects (*{OBJECT_SUFFIX}) found under {given}")
        elif path.is_file():
            add(given)
        elif path.exists():
            # a FIFO or device would block or never end; objects are regular files
            raise BpfLintError(f"{given}: not a regular file or directory")
        else:
            raise BpfLintError(f"{given}: no such file or directory")
    return objects, notes


def _walk_objects(root: Path) -> Iterable[Path]:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            if name.endswith(OBJECT_SUFFIX) and path.is_file():
                yield path


def _foreign_elf_machine(path: Path) -> int | None:
    """The e_machine of an ELF file that is not BPF; None for BPF, non-ELF or unreadable.

    Non-ELF and unreadable files are not skipped: loading them reports the problem.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != _ELF_MAGIC:
        return None
    machine = int.from_bytes(head[18:20], "big" if head[5] == 2 else "little")
    return None if machine == EM_BPF else machine


def default_jobs() -> int:
    """Worker processes when --jobs is not given: every core this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def analyze_paths(paths: Sequence[str], table: Any, options: AnalysisOptions | None = None,
                  jobs: int = 1, cache: ResultCache | None = None,
                  limits: ReadLimits | None = None) -> AnalysisReport:
    """Discover, read and cost every program of every object under ``paths``.

    Objects whose results are in ``cache`` are not analysed again; the others are
    analysed in up to ``jobs`` processes (the engine is pure Python, so threads would
    share one core) and their results stored in the cache.
    """
    objects: list[str] = []
    notes: list[str] = []
    missing: list[ObjectError] = []
    seen: set[str] = set()
    for given in paths:
        # one path at a time, so a missing one is reported next to the others' results
        try:
            found, found_notes = discover([given])
        except BpfLintError as exc:
            missing.append(ObjectError(given, _without_path(given, str(exc))))
            continue
        for path in found:
            if os.path.realpath(path) not in seen:
                seen.add(os.path.realpath(path))
                objects.append(path)
        notes.extend(found_notes)
    opts = options if options is not None else AnalysisOptions()
    limits = limits if limits is not None else ReadLimits()
    keyer = _Keyer(table, opts, limits) if cache is not None else None
    outcomes: dict[int, ObjectOutcome] = {}
    digests: dict[int, str] = {}  # sha256 of the objects' bytes, where computed
    for index, path in enumerate(objects):
        if cache is not None and keyer is not None:
            content = _content_digest(path, limits)
            hit = cache.load(keyer.key(content)) if content is not None else None
            if content is not None:
                digests[index] = content
            if hit is not None:
                outcomes[index] = hit.at(path)
    pending = [index for index in range(len(objects)) if index not in outcomes]
    copies = _copies(objects, pending, digests, limits)
    unique = [index for index in pending if index not in copies]
    for index, (content, outcome) in zip(unique, _run_all(
            [objects[index] for index in unique], table, opts, limits, jobs), strict=True):
        outcomes[index] = outcome
        if cache is not None and keyer is not None and content is not None \
                and is_cacheable(outcome):
            cache.store(keyer.key(content), outcome)
    for index, first in copies.items():
        outcomes[index] = outcomes[first].at(objects[index])
    programs: list[ProgramResult] = []
    errors: list[ObjectError] = missing
    loader_names: dict[str, None] = {}
    for index, path in enumerate(objects):
        outcome = outcomes[index]
        programs.extend(outcome.programs)
        errors.extend(ObjectError(path, message) for message in outcome.errors)
        notes.extend(f"{path}: {note}" for note in outcome.notes)
        loader_names.update(dict.fromkeys(outcome.loader_vars))
    if cache is not None and cache.write_problem is not None:
        notes.append(cache.write_problem)
    if objects:
        notes.extend(unknown_pin_notes(opts.rodata, loader_names))
    return AnalysisReport(tuple(programs), tuple(errors), tuple(notes),
                          tuple(sorted(loader_names)), table_info(table))


def table_info(table: Any) -> TableInfo | None:
    """Where a cost table's figures come from (None for a stand-in without provenance)."""
    prov = getattr(table, "provenance", None)
    if prov is None:
        return None
    return TableInfo(table.path, prov.kernel, prov.cpu, prov.date,
                     getattr(table, "cpu_caches", "cold"))  # cost.model's default


def _copies(objects: list[str], pending: list[int], digests: dict[int, str],
            limits: ReadLimits) -> dict[int, int]:
    """Pending objects that are byte-for-byte copies of an earlier pending one (a
    build tree's output and its install directory, say), each to the index of its
    first copy: they are analysed once. Only files of a size another one shares are
    hashed for this; the cache has hashed the others already where it is on."""
    by_size: dict[int, list[int]] = {}
    for index in pending:
        by_size.setdefault(_file_size(objects[index]), []).append(index)
    copies: dict[int, int] = {}
    for same_size in by_size.values():
        if len(same_size) < 2:
            continue
        first_of: dict[str, int] = {}
        for index in same_size:
            content = digests.get(index) or _content_digest(objects[index], limits)
            if content is None:
                continue  # unreadable: its analysis says why
            copies_first = first_of.setdefault(content, index)
            if copies_first != index:
                copies[index] = copies_first
    return copies


class _Keyer:
    """Cache keys for one run: everything but the object's content is fixed."""

    def __init__(self, table: Any, options: AnalysisOptions, limits: ReadLimits) -> None:
        self.code = code_digest()
        self.table = getattr(table, "digest", None)
        self.settings = {"options": dataclasses.asdict(options),
                         "limits": dataclasses.asdict(limits)}

    def key(self, content_sha256: str) -> str:
        return entry_key(content_sha256, self.code, self.table, self.settings)


def _content_digest(path: str, limits: ReadLimits) -> str | None:
    """sha256 of the object's bytes; None when it cannot be read (analysis says why)."""
    try:
        return hashlib.sha256(read_object_bytes(path, limits)).hexdigest()
    except BpfLintError:
        return None


# An object is split between workers by program when it alone holds more than this
# share of a parallel run's work (by file size): the run then waits less for its
# biggest object. Each part reads the object again, and a worker takes time to
# start, so objects under SPLIT_MIN_BYTES (most tools' objects) stay whole.
SPLIT_SHARE = 0.5
SPLIT_MIN_BYTES = 512 * 1024


def _run_all(paths: list[str], table: Any, options: AnalysisOptions, limits: ReadLimits,
             jobs: int) -> list[tuple[str | None, ObjectOutcome]]:
    if jobs <= 1 or not paths:
        return [_analyze_object(path, table, options, limits) for path in paths]
    sizes = [_file_size(path) for path in paths]
    fair = sum(sizes) / jobs
    tasks = [(index, part, parts)
             for index, parts in enumerate(_parts(size, fair, jobs) for size in sizes)
             for part in range(parts)]
    if len(tasks) <= 1:
        return [_analyze_object(path, table, options, limits) for path in paths]
    # imported here: a run of one object (a pre-commit hook's) starts 15 ms sooner
    from concurrent.futures import ProcessPoolExecutor

    # the engine too, before the workers fork: each would import it again otherwise
    import bpflint.cost.engine  # noqa: F401

    # the biggest first, so that the last to start are the quick ones (LPT order)
    tasks.sort(key=lambda task: sizes[task[0]], reverse=True)
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
        futures = [(index, pool.submit(_analyze_part, paths[index], table, options, limits,
                                       part, parts)) for index, part, parts in tasks]
        shares: list[list[_Part]] = [[] for _ in paths]
        for index, future in futures:
            shares[index].append(_part_of(future))
    return [_merge(got) for got in shares]


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0  # reading it will say what is wrong


def _parts(size: int, fair: float, jobs: int) -> int:
    """How many workers share an object of ``size`` bytes when each should get
    ``fair`` bytes' worth of the run."""
    if size < SPLIT_MIN_BYTES or size <= SPLIT_SHARE * fair:
        return 1
    return max(1, min(jobs, round(size / (SPLIT_SHARE * fair))))


@dataclasses.dataclass(frozen=True)
class _Part:
    """One worker's share of an object: its programs by index in the object, each a
    result or an error message; and in the first part, the rest of the outcome
    (errors reading the object, timer callbacks, notes)."""

    content: str | None  # sha256 of the bytes analysed; None if unread
    programs: tuple[tuple[int, ProgramResult | str], ...]
    rest: ObjectOutcome


def _part_of(future: Future[_Part]) -> _Part:
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except BrokenProcessPool:
        # the worker was killed (the kernel's OOM killer, a signal): say so per object
        return _Part(None, (), ObjectOutcome(
            errors=("the analysis process died (out of memory?)",)))


def _merge(parts: list[_Part]) -> tuple[str | None, ObjectOutcome]:
    """The object's outcome as one worker analysing it alone would have it."""
    programs = sorted((entry for part in parts for entry in part.programs),
                      key=lambda entry: entry[0])
    results = [got for _, got in programs if isinstance(got, ProgramResult)]
    errors = [got for _, got in programs if isinstance(got, str)]
    content = next((part.content for part in parts if part.content is not None), None)
    for part in parts:
        results.extend(part.rest.programs)
        errors.extend(part.rest.errors)
    notes = tuple(note for part in parts for note in part.rest.notes)
    loader_names = tuple(name for part in parts for name in part.rest.loader_vars)
    # A part that died left an error (is_cacheable keeps such an outcome out); when
    # the pool breaks, every part of the object says so: once is enough.
    return content, ObjectOutcome(tuple(results), tuple(dict.fromkeys(errors)), notes,
                                  loader_names)


def _analyze_object(path: str, table: Any, options: AnalysisOptions, limits: ReadLimits
                    ) -> tuple[str | None, ObjectOutcome]:
    """(sha256 of the bytes analysed, or None if unread; what the analysis produced)."""
    return _merge([_analyze_part(path, table, options, limits, 0, 1)])


def _analyze_part(path: str, table: Any, options: AnalysisOptions, limits: ReadLimits,
                  part: int, parts: int) -> _Part:
    """Programs ``part``, ``part + parts``, ... of the object; part 0 also reports
    what belongs to the whole object."""
    first = part == 0
    try:
        raw = read_object_bytes(path, limits)
    except BpfLintError as exc:
        return _Part(None, (), _object_error(first, _without_path(path, str(exc))))
    content = hashlib.sha256(raw).hexdigest()
    try:
        obj = parse_object(path, raw, limits)
    except BpfLintError as exc:
        return _Part(content, (), _object_error(first, _without_path(path, str(exc))))
    except MemoryError:
        return _Part(content, (), _object_error(first, "file too large to read"))
    except Exception as exc:  # noqa: BLE001 - the last line of "never a traceback"
        return _Part(content, (), _object_error(
            first, f"internal error while reading: {_describe(exc)}"))
    del raw
    names = tuple(sorted({var.name for _, var in loader_vars(obj)}))
    try:
        obj = apply_pins(obj, options.rodata)
    except BpfLintError as exc:
        return _Part(content, (), ObjectOutcome(errors=(str(exc),), loader_vars=names)
                     if first else ObjectOutcome())
    programs: list[tuple[int, ProgramResult | str]] = []
    # the object's tail-call targets, analysed once for all its programs
    targets = _new_targets() if part < len(obj.programs) else None
    for index in range(part, len(obj.programs), parts):
        program = obj.programs[index]
        try:
            programs.append((index, analyze_program(obj, program, table, options,
                                                    targets)))
        except BpfLintError as exc:
            programs.append((index, f"program {program.name}: "
                                    f"{_without_path(path, str(exc))}"))
        except Exception as exc:  # noqa: BLE001 - as above: one line, never a traceback
            programs.append((index, f"program {program.name}: internal error: "
                                    f"{_describe(exc)}"))
    if not first:
        return _Part(content, tuple(programs), ObjectOutcome())
    callbacks: list[ProgramResult] = []
    errors: list[str] = []
    try:
        callbacks.extend(analyze_async_callbacks(obj, table, options))
    except Exception as exc:  # noqa: BLE001 - as above: one line, never a traceback
        errors.append(f"timer callbacks: internal error: {_describe(exc)}")
    # reader notes name the section, not the file: the path is added when reported
    notes = tuple(_without_path(path, note) for note in obj.notes)
    if not obj.programs:
        notes += ("no programs in this object (maps and data only, or every program "
                  "compiled out)",)
    return _Part(content, tuple(programs), ObjectOutcome(tuple(callbacks), tuple(errors), notes,
                                                        names))


def _object_error(first: bool, message: str) -> ObjectOutcome:
    """An object that cannot be read is reported once, by its first part."""
    return ObjectOutcome(errors=(message,)) if first else ObjectOutcome()


def _without_path(path: str, message: str) -> str:
    """Reader messages start with the file name; the report stores it separately."""
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def reachable_functions(obj: BpfObject, program: Program) -> list[Function]:
    """The program's entry, then every function it calls or passes as a callback."""
    order: list[FuncKey] = [program.entry]
    seen = {program.entry}
    index = 0
    while index < len(order):
        func = obj.functions[order[index]]
        index += 1
        for insn in func.insns:
            callee = _referenced_function(func, insn)
            if callee is not None and callee not in seen and callee in obj.functions:
                seen.add(callee)
                order.append(callee)
    return [obj.functions[key] for key in order]


def _referenced_function(func: Function, insn: Insn) -> FuncKey | None:
    if insn.reloc is not None:
        return insn.reloc.func
    if insn.is_pseudo_call:
        # A call inside one section may carry no relocation: imm is the distance.
        return (func.section, insn.pc + insn.imm + 1)
    return None

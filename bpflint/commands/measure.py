"""`bpflint measure`: run one program on the live kernel and compare with the estimate."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from bpflint.commands import COMMANDS
from bpflint.errors import BpfLintError
from bpflint.kernel import syscall as sc
from bpflint.kernel.loader import LoadedProgram, load_program
from bpflint.obj.loader_vars import apply_pins, loader_vars, pin_defaults, unknown_pin_notes
from bpflint.obj.model import BpfObject, Program
from bpflint.obj.reader import load_object
from bpflint.witness.format import Witness

NAME = "measure"
HELP = COMMANDS[NAME]

_DURATION_TYPES = ("xdp", "sched_cls", "sched_act", "socket_filter", "cgroup_skb",
                   "flow_dissector", "sk_lookup")
_EMPTY = bytes.fromhex("b700000000000000" "9500000000000000")  # r0 = 0; exit
SAMPLES = 7
# A timing above the estimate's max is taken again, up to this many more times, and the
# least counts: a neighbour on a shared machine only adds time, while an estimate that
# is really too low stays above on every try (a CI run of the validation set measured
# a loop at 156 ns, median 194 ns, that measures 98-110 ns on a quiet machine).
RETRIES = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("object", metavar="OBJ", help="BPF object file")
    parser.add_argument("--program", "-p", required=True, metavar="NAME", help="program to run")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--data", metavar="FILE", help="packet bytes to run on")
    data.add_argument("--data-hex", metavar="HEX", help="packet bytes as hex")
    data.add_argument("--worst", action="store_true",
                      help="run on a worst-case witness (bpflint witness), "
                           "its map entries written first")
    data.add_argument("--witness", metavar="FILE",
                      help="run on a saved witness (bpflint witness --output)")
    parser.add_argument("--seconds", type=float, default=10.0, metavar="S",
                        help="witness search time for --worst (default 10)")
    parser.add_argument("--repeat", type=int, default=100000, metavar="N",
                        help="runs per sample (default 100000)")
    parser.add_argument("--cost-table", metavar="FILE", help="cost table for the estimate")
    parser.add_argument("--set", dest="rodata_set", action="append", default=[],
                        metavar="NAME=VALUE",
                        help="load with this loader-set (const volatile) variable set to "
                             "VALUE, repeatable; the others keep the object's values")


@dataclass(frozen=True, slots=True)
class Timing:
    measured_ns: float  # min(program) - min(empty program): stable on a shared machine
    median_ns: float  # median(program) - median(empty program): drifts with neighbours
    baseline_ns: float  # the empty program's minimum (test-run overhead)
    retval: int


def tolerance_ns(measured_ns: float) -> float:
    """Slack for the lower bound: the kernel averages to whole ns, and the empty
    program's own minimum takes two values ~8 ns apart on a shared machine
    (its core alone, or its SMT sibling busy)."""
    return max(8.0, 0.1 * measured_ns)


def inside(measured_ns: float, est_min_ns: float, est_max_ns: float) -> bool:
    return est_min_ns - tolerance_ns(measured_ns) <= measured_ns <= est_max_ns


def time_program_ns(prog_fd: int, prog_type: str, data: bytes, repeat: int,
                    samples: int = SAMPLES) -> Timing:
    """Time the program against an empty one of the same type on the same packet,
    interleaved so both see the same neighbours."""
    empty = sc.prog_load(sc.PROG_TYPES[prog_type], _EMPTY, name="empty", log_level=0)
    try:
        base: list[int] = []
        runs: list[int] = []
        retval = 0
        for _ in range(samples):
            base.append(sc.prog_test_run(empty.fd, data=data, repeat=repeat).duration_ns)
            res = sc.prog_test_run(prog_fd, data=data, repeat=repeat)
            runs.append(res.duration_ns)
            retval = res.retval
    finally:
        sc.close(empty.fd)
    return Timing(float(min(runs) - min(base)),
                  float(statistics.median(runs) - statistics.median(base)),
                  float(min(base)), retval)


def least_of_tries(prog_fd: int, prog_type: str, data: bytes, repeat: int, est_max_ns: float,
                   samples: int = SAMPLES) -> tuple[Timing, int]:
    """time_program_ns, taken again (up to RETRIES more times) while the least timing
    so far is above ``est_max_ns``; the least timing and how many were taken."""
    best = time_program_ns(prog_fd, prog_type, data, repeat, samples)
    tries = 1
    while best.measured_ns > est_max_ns and tries <= RETRIES:
        again = time_program_ns(prog_fd, prog_type, data, repeat, samples)
        tries += 1
        if again.measured_ns < best.measured_ns:
            best = again
    return best, tries


def _packet(args: argparse.Namespace) -> bytes:
    if args.data:
        try:
            return Path(args.data).read_bytes()
        except OSError as exc:
            raise BpfLintError(f"{args.data}: cannot read: {exc.strerror}") from None
    if args.data_hex:
        try:
            return bytes.fromhex(args.data_hex)
        except ValueError:
            raise BpfLintError(f"--data-hex: not hex: {args.data_hex[:40]!r}") from None
    return bytes(64)


def _estimate(obj: BpfObject, program: Program, table_path: str | None
              ) -> tuple[float, float] | None:
    """The cost engine's ns range, or None for an unbounded program."""
    from bpflint.cost.engine import analyze_program
    from bpflint.cost.options import AnalysisOptions
    from bpflint.cost.table_file import load_cost_table

    result = analyze_program(obj, program, load_cost_table(table_path), AnalysisOptions())
    if result.ns_min is None or result.ns_max is None:
        return None
    return result.ns_min, result.ns_max


def _load(path: str, obj: BpfObject, program: Program) -> LoadedProgram:
    """load_program, its failure a one-line message naming the object and program."""
    try:
        return load_program(obj, program)
    except sc.BpfSyscallError as exc:
        lacks = sc.missing_feature(exc)
        if lacks is not None:
            raise BpfLintError(f"{path}: {program.name}: this kernel cannot load it: "
                               f"{lacks}") from None
        raise BpfLintError(f"{path}: {program.name}: {exc}") from None
    except BpfLintError as exc:
        raise BpfLintError(f"{path}: {exc}") from None


def _configured(obj: BpfObject, args: argparse.Namespace) -> BpfObject:
    """The object as it is loaded: --set values written into its read-only data, and
    the estimate made for that one configuration (every other loader-set variable
    at the object's value), not for every value a loader could set."""
    from bpflint.commands.analyze import note_line, set_pins

    pins = set_pins(args)
    for ranged in (p for p in pins if p.lo != p.hi):
        raise BpfLintError(f"{ranged.origin}: measure loads one configuration: give a "
                           "value, not a range")
    for note in unknown_pin_notes(pins, {var.name for _, var in loader_vars(obj)}):
        print(note_line(note), file=sys.stderr)
    return pin_defaults(apply_pins(obj, pins))


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise BpfLintError("measure needs root (it loads and runs the program)")
    if args.repeat < 1:
        raise BpfLintError(f"--repeat must be at least 1, got {args.repeat}")
    obj = load_object(args.object)
    program = next((p for p in obj.programs if p.name == args.program), None)
    if program is None:
        names = ", ".join(p.name for p in obj.programs) or "none"
        raise BpfLintError(f"{args.object}: no program {args.program!r} (programs: {names})")
    obj = _configured(obj, args)
    witness = _witness(args, obj, program) if args.worst or args.witness else None
    data = witness.input.packet if witness is not None else _packet(args)
    est = _estimate(obj, program, args.cost_table)
    with _load(args.object, obj, program) as loaded:
        if witness is not None:
            _fill_maps(args.object, obj, loaded, witness.map_entries)
        if loaded.prog_type not in _DURATION_TYPES:
            raise BpfLintError(f"{args.object}: {program.name}: the kernel reports no "
                               f"test-run duration for {loaded.prog_type} programs")
        try:
            timing, tries = least_of_tries(loaded.fd, loaded.prog_type, data, args.repeat,
                                           est[1] if est is not None else float("inf"))
        except sc.BpfSyscallError as exc:
            raise BpfLintError(f"{args.object}: {program.name}: this kernel cannot test-run "
                               f"{loaded.prog_type} programs: {exc.reason}") from None
        stats = loaded.stats
    again = f"; the least of {tries} timings" if tries > 1 else ""
    print(f"{program.name} ({program.section}): measured {timing.measured_ns:.0f} ns "
          f"(median {timing.median_ns:.0f} ns; empty-program baseline "
          f"{timing.baseline_ns:.0f} ns subtracted), retval {timing.retval}, "
          f"{len(data)}-byte packet, {SAMPLES} x {args.repeat} runs{again}")
    if stats.processed_insns is not None:
        print(f"verifier: {stats.processed_insns} insns processed in "
              f"{stats.verification_usec} usec")
    if witness is not None:
        print(_worst_line(program, witness, timing, est))
    if est is None:
        print("estimate: unbounded (no ns range; see `bpflint analyze`)")
        return 0
    verdict = "inside" if inside(timing.measured_ns, *est) else "OUTSIDE"
    print(f"estimate: [{est[0]:.1f}, {est[1]:.1f}] ns -> measured {timing.measured_ns:.0f} ns "
          f"is {verdict} the range (lower bound with {tolerance_ns(timing.measured_ns):.0f} "
          "ns tolerance)")
    return 0


# -- --worst: time a worst-case witness (docs/witness.md) -----------------------------

def _witness(args: argparse.Namespace, obj: BpfObject, program: Program) -> Witness:
    from bpflint.cost.table_file import load_cost_table
    from bpflint.witness import format as wformat
    from bpflint.witness.runner import witness_program

    if args.witness:
        try:
            text = Path(args.witness).read_text()
        except OSError as exc:
            raise BpfLintError(f"{args.witness}: cannot read: {exc.strerror}") from None
        doc = wformat.loads(args.witness, text)
        inp = wformat.input_from_json(args.witness, doc)
        return wformat.Witness(args.object, program.name, program.prog_type,
                               str(doc.get("by", "insns")), inp,
                               int(doc.get("executed_insns") or 0), doc.get("insns_max"),
                               int(doc.get("retval") or 0),
                               wformat.maps_from_json(args.witness, doc))
    table = load_cost_table(args.cost_table)
    out = witness_program(obj, program, table, "insns", args.seconds)
    if out.search is None or out.search.witness is None:
        why = out.skipped if out.search is None else out.search.note
        raise BpfLintError(f"{args.object}: {program.name}: no witness: {why}")
    if not out.search.witness.input.packet:
        raise BpfLintError(f"{args.object}: {program.name}: the witness has no packet; "
                           "test_run times packet programs only")
    return out.search.witness


def _fill_maps(path: str, obj: BpfObject, loaded: LoadedProgram,
               entries: tuple[tuple[str, bytes, bytes], ...]) -> None:
    """Write the witness's map entries, so lookups hit in the kernel as they did in
    the interpreter (a freshly loaded map is empty)."""
    from bpflint.kernel.loader import possible_cpus

    for name, key, value in entries:
        fd = loaded.map_fds.get(name)
        mdef = obj.maps.get(name)
        if fd is None or mdef is None:
            continue
        if mdef.type_name.startswith(("percpu", "lru_percpu")):
            # user space writes one value per possible CPU, each 8-byte aligned
            slot = -(-len(value) // 8) * 8
            value = value.ljust(slot, b"\0") * possible_cpus()
        try:
            sc.map_update(fd, key, value)
        except sc.BpfSyscallError as exc:
            raise BpfLintError(f"{path}: cannot write the witness's entry of map {name}: "
                               f"{exc}") from None


def _worst_line(program: Program, witness: Witness, timing: Timing,
                est: tuple[float, float] | None) -> str:
    bound = f"the bound is {est[1]:.0f} ns" if est is not None else "no bound (unbounded)"
    reached = f", reached {witness.reached:.2f}" if witness.reached is not None else ""
    same = "" if timing.retval == witness.retval else \
        f" (the kernel returned {timing.retval}, the interpreter {witness.retval}: " \
        "the kernel's run took another way)"
    return (f"worst case: this packet makes {program.name} take {timing.measured_ns:.0f} ns; "
            f"{bound} (the interpreter executes {witness.executed_insns} of "
            f"{witness.insns_max} insns on it{reached}){same}")

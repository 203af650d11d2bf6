"""Audit what the running kernel has loaded: each program's translated code costed by
the same engine as ``analyze``, beside where it is attached and, where statistics are
on, what its runs really cost. Nothing here prints; ``bpflint audit`` reports it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bpflint.cost.engine import analyze_program
from bpflint.cost.options import AnalysisOptions
from bpflint.errors import BpfLintError
from bpflint.kernel import introspect
from bpflint.kernel.introspect import Link, LoadedMap, LoadedProgram
from bpflint.kernel.syscall import MAP_TYPES
from bpflint.kernel.xlated import Loaded, TranslatedError, kallsyms, may_goto_model, translate
from bpflint.results import ProgramResult

PROG_ARRAY = MAP_TYPES["prog_array"]
OBJECT_PREFIX = "prog/"  # a loaded program's "object" is its id: budgets' object globs


@dataclass(frozen=True)
class Measured:
    """What the kernel's run-time statistics counted for one program."""

    run_cnt: int
    run_time_ns: int
    seconds: float | None  # the sampling window; None: since statistics were turned on
    # what bpf_stats reports for an empty program here (its own clock reads, part of
    # every average it reports); 0.0 when it could not be measured
    floor_ns: float = 0.0

    @property
    def avg_ns(self) -> float | None:
        return self.run_time_ns / self.run_cnt if self.run_cnt else None

    @property
    def net_avg_ns(self) -> float | None:
        """The average less the statistics' own floor: what the program itself took."""
        avg = self.avg_ns
        return None if avg is None else max(0.0, avg - self.floor_ns)


@dataclass(frozen=True)
class AuditedProgram:
    id: int
    name: str  # the entry function's full name from BTF, else the kernel's (15 chars)
    kernel_name: str
    type: str
    tag: str
    links: tuple[Link, ...]
    section: str  # what budgets match as the section: the attach point, else the type
    result: ProgramResult | None  # None when the translated code could not be analysed
    error: str = ""
    notes: tuple[str, ...] = ()
    measured: Measured | None = None
    xlated_insns: int = 0
    verified_insns: int = 0
    jited_bytes: int = 0

    @property
    def attached(self) -> str:
        return ", ".join(link.target for link in self.links) or "-"

    @property
    def ratio(self) -> float | None:
        """Measured average, less bpf_stats' own floor, over the static ns.max (above 1:
        a run cost more than the bound says any can)."""
        net = self.measured.net_avg_ns if self.measured else None
        ns_max = self.result.ns_max if self.result is not None else None
        if net is None or not ns_max:
            return None
        return net / ns_max

    @property
    def over_static_max(self) -> bool:
        """Whether the program's measured average, less what bpf_stats itself adds to
        every run, is above its static maximum: an average above the maximum is a run
        above it."""
        ratio = self.ratio
        return ratio is not None and ratio > 1.0

    def warning(self) -> str:
        """The loud message for a measured average above the static maximum."""
        if not self.over_static_max or self.measured is None or self.result is None:
            return ""
        floor = self.measured.floor_ns
        less = f" ({floor:.1f} ns of it bpf_stats' own clock reads)" if floor else ""
        return (f"prog {self.id} {self.name}: measured average {self.measured.avg_ns:.1f} ns"
                f"{less} is above the static maximum {self.result.ns_max:.1f} ns: "
                f"recalibrate (bpflint calibrate) or report a bug (program attached: "
                f"bpftool prog dump xlated id {self.id})")


@dataclass(frozen=True)
class HookSum:
    """Everything attached to one hook: its worst cases add up on every event."""

    hook: str
    target: str
    program_ids: tuple[int, ...]
    insns_max: int | None  # None when one of them is unbounded or unanalysed
    ns_max: float | None


@dataclass(frozen=True)
class AuditReport:
    programs: tuple[AuditedProgram, ...]
    hooks: tuple[HookSum, ...]
    stats: str  # "sample", "sysctl" or "" (no statistics)
    sample_seconds: float | None
    notes: tuple[str, ...] = ()
    stats_floor_ns: float | None = None  # bpf_stats' average for an empty program


def section_for(prog_type: str, links: Sequence[Link]) -> str:
    """A loaded program's section for budget matching: its one link's attach point as
    libbpf would spell the SEC() (``xdp``, ``kprobe/do_unlinkat``, ``tcx/ingress``),
    else its program type (the ELF section name is not kept by the kernel)."""
    sections = {link.section for link in links}
    return sections.pop() if len(sections) == 1 else prog_type


# programs followed through prog arrays from one audited program, at most: the
# kernel chains 33 tail calls, and Cilium's datapath fans out to a few dozen
MAX_TAIL_TARGETS = 64


def audit_program(prog: LoadedProgram, links: Sequence[Link], table: Any,
                  options: AnalysisOptions) -> AuditedProgram:
    section = section_for(prog.type, links)
    base = AuditedProgram(id=prog.id, name=prog.name, kernel_name=prog.name, type=prog.type,
                          tag=prog.tag, links=tuple(links), section=section, result=None,
                          xlated_insns=len(prog.xlated) // 8,
                          verified_insns=prog.verified_insns, jited_bytes=prog.jited_bytes)
    try:
        maps, targets, slots = _closure(prog)
        translated = translate(prog, maps, introspect.read_btf(prog.btf_id), kallsyms(),
                               section, tail_targets=targets, prog_slots=slots)
        # the running kernel's may_goto, as its expansion shows, not the default's
        model = may_goto_model(prog.xlated)
        if model is not None:
            options = dataclasses.replace(options, may_goto=model)
        result = analyze_program(translated.obj, translated.program, table, options)
    except TranslatedError as exc:
        return dataclasses.replace(base, error=str(exc))
    except BpfLintError as exc:
        return dataclasses.replace(base, error=f"analysis failed: {exc}")
    except Exception as exc:  # noqa: BLE001 - one program must not hide the others
        return dataclasses.replace(base, error=f"internal error: {type(exc).__name__}: {exc}")
    result = dataclasses.replace(result, object=f"{OBJECT_PREFIX}{prog.id}", type=prog.type)
    return dataclasses.replace(base, name=translated.program.name, result=result,
                               notes=translated.notes)


def _closure(prog: LoadedProgram) -> tuple[dict[int, LoadedMap], list[Loaded],
                                            dict[int, tuple[tuple[int, int], ...]]]:
    """The program's maps, and the programs its prog arrays hold now (and theirs)."""
    maps: dict[int, LoadedMap] = {}
    slots: dict[int, tuple[tuple[int, int], ...]] = {}
    targets: list[Loaded] = []
    seen = {prog.id}
    queue = [prog]
    while queue:
        current = queue.pop(0)
        for map_id in current.map_ids:
            if map_id in maps:
                continue
            loaded = introspect.read_map(map_id)
            if loaded is None:
                continue
            maps[map_id] = loaded
            if loaded.type != PROG_ARRAY:
                continue
            slots[map_id] = introspect.prog_array_entries(map_id, loaded.max_entries)
            for _, target_id in slots[map_id]:
                if target_id in seen or len(seen) > MAX_TAIL_TARGETS:
                    continue
                seen.add(target_id)
                target = introspect.read_program(target_id)
                if target is not None:
                    targets.append(Loaded(target, introspect.read_btf(target.btf_id)))
                    queue.append(target)
    return maps, targets, slots


def hook_sums(programs: Sequence[AuditedProgram]) -> tuple[HookSum, ...]:
    by_hook: dict[str, list[tuple[AuditedProgram, Link]]] = {}
    for program in programs:
        for link in program.links:
            by_hook.setdefault(link.hook, []).append((program, link))
    sums = []
    for hook, members in sorted(by_hook.items()):
        results = [p.result for p, _ in members]
        insns: int | None = None
        ns: float | None = None
        if all(r is not None and r.bounded and r.insns_max is not None for r in results):
            insns = sum(r.insns_max or 0 for r in results if r is not None)
            if all(r is not None and r.ns_max is not None for r in results):
                ns = round(sum(r.ns_max or 0.0 for r in results if r is not None), 3)
        target = members[0][1].target
        sums.append(HookSum(hook, target, tuple(p.id for p, _ in members), insns, ns))
    return tuple(sums)


def run_audit(table: Any, options: AnalysisOptions, *, ids: Sequence[int] = (),
              sample_seconds: float | None = None) -> AuditReport:
    """Audit the loaded programs (only ``ids`` when given)."""
    wanted = set(ids)
    prog_ids = [pid for pid in introspect.program_ids() if not wanted or pid in wanted]
    notes: list[str] = []
    missing = sorted(wanted - set(prog_ids))
    if missing:
        notes.append(f"no loaded program with id {', '.join(map(str, missing))}")
    measured: dict[int, Measured] = {}
    stats = ""
    floor: float | None = None
    if sample_seconds is not None or introspect.stats_sysctl_on():
        floor = introspect.stats_floor_ns()
        if floor is None:
            notes.append("could not measure what bpf_stats adds to a run (no XDP test "
                         "runs): averages are compared with the static maximum as they are")
    if sample_seconds is not None:
        for pid, (run_ns, runs) in introspect.sample(prog_ids, sample_seconds).items():
            measured[pid] = Measured(runs, run_ns, sample_seconds, floor or 0.0)
        stats = "sample"
    elif introspect.stats_sysctl_on():
        stats = "sysctl"
    links_by_prog: dict[int, list[Link]] = {}
    for link in introspect.links():
        links_by_prog.setdefault(link.prog_id, []).append(link)
    for link in introspect.netlink_xdp():  # an XDP link shows there too: once is enough
        if not any(known.hook == link.hook for known in links_by_prog.get(link.prog_id, [])):
            links_by_prog.setdefault(link.prog_id, []).append(link)
    programs = []
    for pid in prog_ids:
        prog = introspect.read_program(pid)
        if prog is None:
            continue  # unloaded since it was listed
        if stats == "sysctl":
            measured[pid] = Measured(prog.run_cnt, prog.run_time_ns, None, floor or 0.0)
        audited = audit_program(prog, links_by_prog.get(pid, []), table, options)
        programs.append(dataclasses.replace(audited, measured=measured.get(pid)))
    return AuditReport(tuple(programs), hook_sums(programs), stats, sample_seconds,
                       tuple(notes), floor)

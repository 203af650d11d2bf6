"""Analysis results: what the cost engine hands to the budget gate and the reporters."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SourceLoc:
    """A line of a source file."""

    file: str
    line: int


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A finding about a program: a BPF rule, where, and why."""

    rule: str  # stable id, e.g. "BPF003"
    name: str  # stable slug, e.g. "unbounded-loop"
    message: str
    loc: SourceLoc | None = None
    # every place the finding is about, ``loc`` first (one finding for many calls)
    related: tuple[SourceLoc, ...] = ()


@dataclass(frozen=True, slots=True)
class LineCost:
    """Worst-case cost attributed to one source line (loop bodies multiplied)."""

    file: str
    line: int
    insns: int
    ns: float
    text: str = ""


@dataclass(frozen=True, slots=True)
class LoaderSetting:
    """A loader-set variable (``const volatile``) the program reads, and the values
    its worst case assumed for it: its type's whole range unless pinned."""

    name: str
    type: str  # "u32", "bool", "enum mode", "u8[16]"
    lo: int
    hi: int
    default: int | None  # the object's own value (integer variables)
    pinned: bool = False

    @property
    def value(self) -> int | None:
        return self.lo if self.pinned and self.lo == self.hi else None


@dataclass(frozen=True, slots=True)
class LoopNote:
    """A loop's bound as the engine proved it (the widest over calling contexts):
    ``kind`` "loop" (a back edge, taken at most ``max_runs`` times) or "callback" (a
    helper runs its callback at most ``max_runs`` times); ``how``: the proof."""

    file: str
    line: int
    kind: str
    max_runs: int | None  # None: no bound proven
    how: str


@dataclass(frozen=True, slots=True)
class CallNote:
    """A helper or kfunc call and its priced worst case (one call; a callback
    helper's callbacks included)."""

    file: str
    line: int
    name: str
    insns: int
    ns: float


@dataclass(frozen=True)
class ProgramResult:
    """One program's costs: what every report and the gate read."""

    object: str  # path of the object file as given / found
    section: str
    name: str
    type: str
    insn_count: int  # static instructions reachable from the entry (incl. subprograms)
    bounded: bool
    insns_min: int | None
    insns_max: int | None  # None when unbounded
    ns_min: float | None
    ns_max: float | None
    source: SourceLoc | None = None
    worst_path: tuple[LineCost, ...] = ()  # in path order, one entry per line visited
    # the same for the path with the most ns (design.md): its lines add up to ns_max
    worst_path_ns: tuple[LineCost, ...] = ()
    loops: tuple[LoopNote, ...] = ()  # by source line (the cost map)
    calls: tuple[CallNote, ...] = ()  # by source line (the cost map)
    line_costs: tuple[LineCost, ...] = ()  # per line, hottest first (explain)
    diagnostics: tuple[Diagnostic, ...] = ()
    tail_call_targets: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    # loader-set variables read on the program's analysed paths (see LoaderSetting)
    loader_set: tuple[LoaderSetting, ...] = ()

    @property
    def key(self) -> str:
        """Identity across runs: object basename, section and program name."""
        from pathlib import PurePath

        return f"{PurePath(self.object).name}:{self.section}:{self.name}"


@dataclass(frozen=True, slots=True)
class ObjectError:
    """An object that could not be analysed, and why."""

    object: str
    message: str


@dataclass(frozen=True)
class TableInfo:
    """The cost table the ns figures come from, and what its max assumed."""

    path: str
    kernel: str
    cpu: str
    date: str
    cpu_caches: str  # "cold" or "hot" (bpflint/cost/model.py CPU_CACHES)


@dataclass(frozen=True)
class AnalysisReport:
    """Every program of a run's objects, the objects that failed, and notes."""

    programs: tuple[ProgramResult, ...]
    errors: tuple[ObjectError, ...]
    notes: tuple[str, ...] = ()
    loader_vars: tuple[str, ...] = ()  # loader-set variables of the analysed objects
    cost_table: TableInfo | None = None

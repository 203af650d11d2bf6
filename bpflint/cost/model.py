"""Cost tables: nanoseconds per instruction class, helper and kfunc.

``CostTable`` holds what a table prices; ``insn_cost_keys`` names the classes an
instruction is priced by. The TOML file format, parsing and loading are in
bpflint/cost/table_file.py.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

from bpflint.errors import BpfLintError
from bpflint.isa.helper_args import MAY_STOP_EARLY
from bpflint.isa.helper_ids import HELPER_NAMES
from bpflint.isa.insn import Insn
from bpflint.isa.opcodes import (
    ATOMIC_ARITH_OPS,
    ATOMIC_CMPXCHG,
    ATOMIC_FETCH,
    ATOMIC_LOAD_ACQ,
    ATOMIC_STORE_REL,
    ATOMIC_XCHG,
    CLS_ALU,
    CLS_ALU64,
    CLS_STX,
    AluOp,
    Cls,
    Mode,
)

MEM_KINDS = ("stack", "ctx", "packet", "map", "other")

# Instruction classes a table must price, one key each.
INSN_KEYS: tuple[str, ...] = (
    "alu_mov", "alu_simple", "alu_mul", "alu_div", "alu_mod", "alu_neg", "alu_end",
    "jmp_cond_taken", "jmp_cond_not_taken", "jmp_ja", "may_goto",
    "ld_imm64", "ld_abs",
    *(f"load_{k}" for k in MEM_KINDS), *(f"store_{k}" for k in MEM_KINDS),
    "atomic_add", "atomic_fetch", "atomic_xchg", "atomic_cmpxchg",
    "call", "exit",
)

# Classes a table may price; absent, they cost what the class named here does.
OPTIONAL_INSN_KEYS: dict[str, str] = {
    "alu_mov_reg": "alu_mov",  # 64-bit register move: renamed away on many cores
    "jmp_loop_back": "jmp_cond_taken",  # a loop's back edge (steady iterations)
}

_ALU_KEYS: dict[int, str] = {
    AluOp.MOV: "alu_mov", AluOp.ADD: "alu_simple", AluOp.SUB: "alu_simple",
    AluOp.OR: "alu_simple", AluOp.AND: "alu_simple", AluOp.XOR: "alu_simple",
    AluOp.LSH: "alu_simple", AluOp.RSH: "alu_simple", AluOp.ARSH: "alu_simple",
    AluOp.MUL: "alu_mul", AluOp.DIV: "alu_div", AluOp.MOD: "alu_mod",
    AluOp.NEG: "alu_neg", AluOp.END: "alu_end",
}

# Helpers a table need not measure: they run the routine of the named one. The
# legacy probe_read(_str) is the kernel variant on x86; the user variants copy with
# copy_from_user_nofault, which fails fast instead of faulting pages in, like the
# kernel copy does.
SAME_COST_AS = {
    "probe_read": "probe_read_kernel", "probe_read_str": "probe_read_kernel_str",
    "probe_read_user": "probe_read_kernel", "probe_read_user_str": "probe_read_kernel_str",
}

_MOV64_REG = Cls.ALU64 | AluOp.MOV | 0x08


# What a table's max assumes about the CPU caches a helper's data sits in
# (--cpu-caches, [analyze] cpu_caches): "cold", the sound default, or "hot".
CPU_CACHES = ("cold", "hot")
DEFAULT_CPU_CACHES = "cold"

_ALU_CLASSES = frozenset((CLS_ALU, CLS_ALU64))


@dataclass(frozen=True, slots=True)
class Provenance:
    kernel: str
    cpu: str
    date: str
    method: str
    # entry ("helper.xdp_adjust_meta", "insn.ld_abs") -> why calibration did not measure
    # it here and where its figure comes from; informational, never used for pricing
    not_measured: tuple[tuple[str, str], ...] = ()
    # entry -> where and how it was measured, for entries merged into a table later
    # than its own calibration (kernel, CPU, date, command); informational too
    added: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Cost:
    min_ns: float
    max_ns: float
    median_ns: float | None = None
    spread_pct: float | None = None
    issue_ns: float | None = None  # instruction classes: throughput in a stream
    per_key: tuple[float, float] | None = None  # map variants: max as base + per key byte
    hot_max_ns: float | None = None  # hash-map entries: max with hot caches (cold: max_ns)

    @property
    def stream_ns(self) -> float:
        return self.max_ns if self.issue_ns is None else self.issue_ns

    def max_for_key(self, key_size: int | None) -> float:
        if self.per_key is None or not key_size:
            return self.max_ns
        base, per_byte = self.per_key
        return max(self.min_ns, base + per_byte * key_size)

    def hot(self) -> Cost:
        """This cost with hot caches: ``hot_max_ns`` as its max, flat over key sizes."""
        if self.hot_max_ns is None:
            return self
        return Cost(self.min_ns, self.hot_max_ns, self.median_ns, self.spread_pct,
                    self.issue_ns)


@dataclass(frozen=True, slots=True)
class HelperCost:
    base: Cost
    per_unit_min_ns: float = 0.0
    per_unit_max_ns: float = 0.0
    max_units: int | None = None  # None: not size-dependent
    by_map_type: tuple[tuple[str, Cost], ...] = ()

    def variant(self, map_type: str | None) -> Cost | None:
        for name, cost in self.by_map_type:
            if name == map_type:
                return cost
        return None

    def hot(self) -> HelperCost:
        return HelperCost(self.base.hot(), self.per_unit_min_ns, self.per_unit_max_ns,
                          self.max_units, tuple((n, c.hot()) for n, c in self.by_map_type))


@dataclass(frozen=True, slots=True)
class Defaults:
    helper: Cost
    kfunc: Cost
    size_cap_bytes: int


@dataclass
class CostTable:
    """A parsed cost table; lookups record what fell back to the default."""

    path: str
    provenance: Provenance
    defaults: Defaults
    insns: dict[str, Cost]
    helpers: dict[str, HelperCost]
    kfuncs: dict[str, Cost]
    digest: str
    # what max assumes about caches (CPU_CACHES): "cold" prices as the table is written
    cpu_caches: str = DEFAULT_CPU_CACHES
    _missing: dict[str, None] = field(default_factory=dict)
    # (opcode, atomic op, memory kind) -> (min ns, max ns, issue ns): the analysis
    # prices every instruction of every block visit, and these repeat
    _priced: dict[tuple[int, int, str | None], tuple[float, float, float]] = field(
        default_factory=dict, compare=False, repr=False)

    def with_cpu_caches(self, cpu_caches: str) -> CostTable:
        """This table pricing with ``cpu_caches``: "hot" takes every ``hot_max_ns``
        as the entry's max (and a new digest: results cached with the cold figures
        are not these)."""
        if cpu_caches not in CPU_CACHES:
            raise BpfLintError(f"cpu caches must be one of {', '.join(CPU_CACHES)}, "
                               f"not {cpu_caches!r}")
        if cpu_caches == self.cpu_caches:
            return self
        if cpu_caches == DEFAULT_CPU_CACHES:
            raise BpfLintError("a table priced with hot caches has lost its cold figures")
        digest = hashlib.sha256(f"{self.digest}\0cpu_caches={cpu_caches}".encode()).hexdigest()
        return CostTable(self.path, self.provenance, self.defaults, dict(self.insns),
                         {name: h.hot() for name, h in self.helpers.items()},
                         {name: c.hot() for name, c in self.kfuncs.items()},
                         digest, cpu_caches)

    # -- instructions -----------------------------------------------------
    def insn_ns(self, insn: Insn, mem_kind: str | None) -> tuple[float, float]:
        """(min, max) ns of one non-helper instruction (pseudo-calls included)."""
        if insn.is_call:
            costs = [self.insns[k] for k in insn_cost_keys(insn, mem_kind)]
            return min(c.min_ns for c in costs), max(c.max_ns for c in costs)
        lo, hi, _ = self.insn_price(insn, mem_kind)
        return lo, hi

    def insn_price(self, insn: Insn, mem_kind: str | None) -> tuple[float, float, float]:
        """(min, max, issue) ns of one non-call instruction; issue is what it adds to
        a stream of independent ones."""
        cls = insn.opcode & 0x07
        # the atomic operation of an STX, the offset of an ALU (a sign-extending
        # move is not a plain register move)
        detail = insn.imm if cls == CLS_STX else insn.off if cls in _ALU_CLASSES else 0
        key = (insn.opcode, detail, mem_kind)
        got = self._priced.get(key)
        if got is None:
            costs = [self.insns[k] for k in insn_cost_keys(insn, mem_kind)]
            got = (min(c.min_ns for c in costs), max(c.max_ns for c in costs),
                   max(c.stream_ns for c in costs))
            self._priced[key] = got
        return got

    @functools.cached_property
    def slot_ns(self) -> float:
        """A front-end slot: the dearest stream cost of a simple ALU instruction."""
        return max(self.insns["alu_mov"].stream_ns, self.insns["alu_simple"].stream_ns)

    # -- helpers ----------------------------------------------------------
    def helper_ns(self, helper_id: int, map_type: str | None,
                  size_bytes: tuple[int, int] | None,
                  key_size: int | None = None) -> tuple[float, float]:
        """(min, max) ns of a helper call, the call instruction included.

        ``size_bytes`` is the range of the helper's size-like argument: bytes for
        copying helpers (already capped by the buffer they point at:
        bpflint/analysis/sizes.py), ``nr_loops`` for ``loop``, the map's
        ``max_entries`` for ``for_each_map_elem``. Unknown: the table's ``max_units``
        for that helper (else ``defaults.size_cap_bytes``) prices the worst case and
        0 the best. A helper that may return before touching its bytes
        (``MAY_STOP_EARLY``: a string copy ending at its NUL, a full ring buffer)
        adds nothing per byte to its best case.
        """
        name = helper_name(helper_id)
        entry = self.helpers.get(name) or self.helpers.get(SAME_COST_AS.get(name, ""))
        if entry is None:
            self._missing[name] = None
            return self.defaults.helper.min_ns, self.defaults.helper.max_ns
        base = entry.base
        if map_type:
            variant = entry.variant(map_type)
            if variant is not None:
                base = variant
            elif entry.by_map_type:
                # A map type calibration never saw may be slower than any it did.
                self._missing[f"{name}[{map_type}]"] = None
                base = Cost(min(c.min_ns for _, c in entry.by_map_type),
                            max(entry.base.max_ns, self.defaults.helper.max_ns))
        lo, hi = base.min_ns, base.max_for_key(key_size)
        if entry.max_units is not None:
            cap = entry.max_units or self.defaults.size_cap_bytes
            units = size_bytes if size_bytes is not None else (0, cap)
            if name not in MAY_STOP_EARLY:
                lo += entry.per_unit_min_ns * max(0, units[0])
            hi += entry.per_unit_max_ns * max(0, units[1])
        return lo, hi

    def per_unit_max_ns(self, helper_id: int) -> float | None:
        """A size-dependent helper's worst-case cost per unit (a callback helper's
        per iteration), None when the table does not price it by size."""
        entry = self.helpers.get(helper_name(helper_id))
        if entry is None or entry.max_units is None:
            return None
        return entry.per_unit_max_ns

    def kfunc_ns(self, name: str) -> tuple[float, float]:
        cost = self.kfuncs.get(name)
        if cost is None:
            self._missing[name] = None
            return self.defaults.kfunc.min_ns, self.defaults.kfunc.max_ns
        return cost.min_ns, cost.max_ns

    def missing(self) -> tuple[str, ...]:
        """Helpers and kfuncs priced with the default so far, in first-use order."""
        return tuple(self._missing)


def helper_name(helper_id: int) -> str:
    if 0 <= helper_id < len(HELPER_NAMES):
        return HELPER_NAMES[helper_id]
    return f"helper#{helper_id}"


def insn_cost_keys(insn: Insn, mem_kind: str | None) -> tuple[str, ...]:
    """The table keys whose costs bound this instruction (two for a conditional jump)."""
    cls = insn.opcode & 0x07
    kind = mem_kind if mem_kind in MEM_KINDS else "other"
    if cls in (Cls.ALU, Cls.ALU64):
        if insn.opcode == _MOV64_REG and insn.off == 0:
            return ("alu_mov_reg",)
        return (_ALU_KEYS[insn.opcode & 0xF0],)  # no AluOp(): it is slow
    if cls in (Cls.JMP, Cls.JMP32):
        if insn.is_helper_call or insn.is_kfunc_call:
            raise ValueError(f"instruction {insn.pc}: price helper and kfunc calls with "
                             "helper_ns/kfunc_ns")
        if insn.is_pseudo_call:
            return ("call",)
        if insn.is_exit:
            return ("exit",)
        if insn.is_may_goto:
            return ("may_goto",)
        if insn.is_unconditional_jump:
            return ("jmp_ja",)
        return ("jmp_cond_taken", "jmp_cond_not_taken")
    if cls == Cls.LD:
        return ("ld_imm64",) if insn.is_ld_imm64 else ("ld_abs",)
    if cls == Cls.LDX:
        return (f"load_{kind}",)
    if cls == Cls.ST:
        return (f"store_{kind}",)
    if insn.opcode & 0xE0 == Mode.ATOMIC:
        op = insn.imm
        if op == ATOMIC_LOAD_ACQ:
            return (f"load_{kind}",)
        if op == ATOMIC_STORE_REL:
            return (f"store_{kind}",)
        if op == ATOMIC_XCHG:
            return ("atomic_xchg",)
        if op == ATOMIC_CMPXCHG:
            return ("atomic_cmpxchg",)
        if op & ATOMIC_FETCH and (op & ~ATOMIC_FETCH) in ATOMIC_ARITH_OPS:
            return ("atomic_fetch",)
        return ("atomic_add",)
    return (f"store_{kind}",)

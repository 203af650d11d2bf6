"""The reference interpreter, watched: which source lines a run visits, which way
each conditional jump went, and (for ``--by ns``) the run's price in the cost table."""

from __future__ import annotations

from bpflint.cost.model import CostTable
from bpflint.interp.refinterp import _ARRAY_TYPES, Input, Interpreter
from bpflint.isa.helper_ids import HELPER_NAMES
from bpflint.isa.insn import Insn
from bpflint.obj.model import BpfObject, MapDef

Line = tuple[str, int]


class TracingInterpreter(Interpreter):
    """Records lines and branch directions from the instruction-class hooks (every
    instruction but ``ja``, ``exit`` and ``may_goto`` passes one)."""

    def __init__(self, obj: BpfObject, inp: Input, step_cap: int,
                 table: CostTable | None = None) -> None:
        super().__init__(obj, inp, step_cap)
        self.lines: dict[Line, int] = {}  # instructions executed per line (but ja/exit)
        self.branches: set[tuple[int, int, bool]] = set()  # (id of insn tuple, pc, taken)
        self.table = table
        self.ns = 0.0
        # keys of hash-like maps whose lookup hit: what a kernel map must hold for the
        # run to go the same way there (array lookups hit by themselves)
        self.hit_keys: dict[tuple[str, bytes], bytes] = {}

    def _see(self, insn: Insn) -> None:
        line = insn.line
        if line is not None:
            key = (line.file, line.line)
            self.lines[key] = self.lines.get(key, 0) + 1
        if self.table is not None:
            if insn.is_call and not insn.is_pseudo_call and not insn.is_kfunc_call:
                self.ns += self.table.helper_ns(insn.imm, None, None)[1]
            else:
                self.ns += self.table.insn_ns(insn, None)[1]

    def lookup(self, mdef: MapDef, key: bytes) -> int:
        ptr = super().lookup(mdef, key)
        if ptr and mdef.type_name not in _ARRAY_TYPES and (mdef.name, key) not in self.hit_keys:
            self.hit_keys[(mdef.name, key)] = bytes([self.world.value_fill]) * mdef.value_size
        return ptr

    def _alu(self, insn: Insn, regs: list[int]) -> None:
        self._see(insn)
        super()._alu(insn, regs)

    def _cond(self, insn: Insn, regs: list[int]) -> bool:
        self._see(insn)
        taken = super()._cond(insn, regs)
        self.branches.add((self.depth, insn.pc, taken))
        return taken

    def _mem(self, insn: Insn, regs: list[int]) -> None:
        self._see(insn)
        super()._mem(insn, regs)

    def _ld_imm64(self, insn: Insn) -> int:
        self._see(insn)
        return super()._ld_imm64(insn)

    def _call(self, insn: Insn, regs: list[int]) -> None:
        self._see(insn)
        super()._call(insn, regs)


def helper_name(insn: Insn) -> str:
    hid = insn.imm
    return HELPER_NAMES[hid] if 0 <= hid < len(HELPER_NAMES) else ""

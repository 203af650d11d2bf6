"""Basic blocks and control-flow edges of one BPF function."""

from __future__ import annotations

from dataclasses import dataclass

from bpflint.isa.insn import BRANCHES, CONDITIONAL_JUMPS, Insn
from bpflint.obj.model import Function

TAIL_CALL_HELPER = 12


def is_tail_call(insn: Insn) -> bool:
    return insn.is_helper_call and insn.imm == TAIL_CALL_HELPER and insn.reloc is None


# Opcodes that end the program: exit, and LD_ABS / LD_IND (the LD class but
# ld_imm64), where a read outside the packet ends it returning 0. A set of opcode
# bytes: it is tested for every instruction built into a CFG and priced.
RET_OPCODES = frozenset(op for op in range(256) if op == 0x95 or (op & 0x07 == 0 and op != 0x18))


@dataclass(frozen=True, slots=True)
class Block:
    id: int
    insns: tuple[Insn, ...]
    # successors: for a conditional jump (fallthrough, taken); else zero or one
    succs: tuple[int, ...]

    @property
    def last(self) -> Insn:
        return self.insns[-1]

    @property
    def ends_in_exit(self) -> bool:
        return self.insns[-1].is_exit

    @property
    def ends_in_tail_call(self) -> bool:
        return is_tail_call(self.insns[-1])

    @property
    def falls_off(self) -> bool:
        """Control runs past the function's last instruction (the verifier rejects it)."""
        last = self.insns[-1]
        return not self.succs and not last.is_exit


@dataclass(frozen=True)
class Cfg:
    func: Function
    blocks: tuple[Block, ...]
    preds: tuple[tuple[int, ...], ...]
    rpo: tuple[int, ...]  # reverse postorder of the blocks reachable from block 0
    rpo_index: dict[int, int]  # block -> position in rpo

    @property
    def reachable(self) -> frozenset[int]:
        return frozenset(self.rpo)


def build_cfg(func: Function) -> Cfg:
    insns = func.insns
    if not insns:
        raise ValueError(f"function {func.name} has no instructions")
    # One pass over every instruction of every function analysed: the tests are on
    # the opcode byte itself (Insn's properties cost a call each), and blocks are
    # slices of the function's instructions.
    leaders = {insns[0].pc}
    for insn in insns:
        op = insn.opcode
        if op in BRANCHES:
            leaders.add(insn.jump_target)
            leaders.add(insn.pc + insn.size)
        elif op in RET_OPCODES or (op == 0x85 and is_tail_call(insn)):
            leaders.add(insn.pc + insn.size)
    starts = [i for i, insn in enumerate(insns) if insn.pc in leaders]  # [0] is 0
    index_of = {insns[start].pc: i for i, start in enumerate(starts)}
    ends = starts[1:] + [len(insns)]
    blocks = []
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        last = insns[end - 1]
        op = last.opcode
        nxt = index_of.get(last.pc + last.size)
        succs: tuple[int, ...]
        if op == 0x95:
            succs = ()
        elif op == 0x05 or op == 0x06:
            succs = (index_of[last.jump_target],)
        elif op in CONDITIONAL_JUMPS:
            taken = index_of[last.jump_target]
            succs = (nxt, taken) if nxt is not None else (taken,)
        else:
            succs = (nxt,) if nxt is not None else ()
        blocks.append(Block(i, insns[start:end], succs))
    preds: list[list[int]] = [[] for _ in blocks]
    for b in blocks:
        for s in set(b.succs):
            preds[s].append(b.id)
    rpo = _rpo(blocks)
    return Cfg(func, tuple(blocks), tuple(tuple(p) for p in preds), rpo,
               {b: i for i, b in enumerate(rpo)})


def _rpo(blocks: list[Block]) -> tuple[int, ...]:
    seen = {0}
    order: list[int] = []
    stack: list[tuple[int, int]] = [(0, 0)]
    while stack:
        node, i = stack[-1]
        succs = blocks[node].succs
        if i < len(succs):
            stack[-1] = (node, i + 1)
            nxt = succs[i]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, 0))
        else:
            stack.pop()
            order.append(node)
    order.reverse()
    return tuple(order)

"""Block prices shared by the blocks that hold the same instructions.

An unrolled loop is its body's blocks copied once per iteration, and most copies
are priced from the same view (what pricing reads of the state: memory kinds, call
arguments): pyperf180 prices 5,536 blocks of which 224 differ. A price depends on a
block's instructions (all but their pcs), its view, the program type and the call
chain, and on which of its successors its closing jump prices: the rest of
BlockPricing's work is recording, done again on a block that takes another's price
(Replays) where it is not the same whatever the block.
"""

from __future__ import annotations

from bpflint.analysis.fixpoint import InsnView
from bpflint.analysis.sizes import CallSizes
from bpflint.cfg.graph import Block, is_tail_call
from bpflint.cost.frame import BlockInfo
from bpflint.cost.paths import Cost
from bpflint.obj.model import FuncKey

# A priced block: its costs, and the tail-call targets and open maps it added.
PricedBlock = tuple[BlockInfo, frozenset[str], frozenset[str]]
# What pricing a block recorded that another block taking its price records again:
# notes on calls (instruction index, line, cost) and size findings (instruction
# index, helper, sizes, max ns), both kept per instruction (their pcs). The rest
# (a callee's analysis, the names priced, loop notes by line) the same instructions
# in the same view record unchanged.
Replays = tuple[list[tuple[int, tuple[str, int], Cost]],
                list[tuple[int, int, CallSizes, float]]]
# (content number, program type, call chain, view)
SharedKey = tuple[int, str, tuple[FuncKey, ...], tuple[InsnView, ...]]


class SharedPrices:
    """One analysis's shared prices, by content number; blocks are numbered by id(),
    as BlockPricing.block_memo keys them (they live in its cfgs, as long as it)."""

    __slots__ = ("priced", "contents", "content_of")

    def __init__(self) -> None:
        self.priced: dict[SharedKey, tuple[PricedBlock, Replays]] = {}
        self.contents: dict[tuple[object, ...], int] = {}  # a block's content -> number
        self.content_of: dict[int, int] = {}  # id(block) -> its content's number

    def content(self, block: Block) -> int:
        """The number of what ``block`` holds (pricing reads of an instruction all but
        its pc, and of its line the file and line number)."""
        content = self.content_of.get(id(block))
        if content is None:
            # how many successors, and distinct ones: whether its closing jump is
            # priced on its edges
            held: list[object] = [len(block.succs), len(set(block.succs)), block.falls_off]
            for insn in block.insns:
                held.append(insn[1:7])  # opcode, dst, src, off, imm, size
                line, reloc = insn.line, insn.reloc
                held.append(None if line is None else (line.file, line.line))
                if reloc is not None:
                    held.append((reloc.kind, reloc.symbol, reloc.func, reloc.map, reloc.offset))
                if insn.opcode == 0x85 and is_tail_call(insn):
                    # BPF005 counts tail-call instructions, by pc: priced on their own
                    held.append(("tail call", id(block)))
            content = self.contents.setdefault(tuple(held), len(self.contents))
            self.content_of[id(block)] = content
        return content

    def put(self, key: SharedKey, priced: PricedBlock, replays: Replays, kept: int) -> None:
        if len(self.priced) >= kept:
            self.priced.clear()
        self.priced[key] = (priced, replays)

"""The overlap model: a run costs the longer of its dependency chain and its issue bound."""

from __future__ import annotations

from bpflint.cost.overlap import MEMORY, Timed, operands, run_max_ns
from bpflint.isa.insn import decode
from bpflint.isa.opcodes import AluOp
from bpflint.kernel import bytecode as bc


def _timed(code: bytes, latency: float = 1.0, issue: float = 0.25) -> list[Timed]:
    return [Timed(latency, issue, *operands(i)) for i in decode(code)]


def test_a_dependent_chain_pays_every_latency() -> None:
    chain = b"".join(bc.alu64(AluOp.ADD, 1, imm=k) for k in range(8))
    assert run_max_ns(_timed(chain)) == 8.0


def test_independent_instructions_pay_the_issue_bound() -> None:
    spread = b"".join(bc.alu64(AluOp.ADD, r, imm=1) for r in (1, 2, 3, 4, 5, 6, 7, 8))
    assert run_max_ns(_timed(spread)) == 2.0  # 8 x 0.25, longer than one latency
    assert run_max_ns(_timed(spread[:16])) == 1.0  # two of them: one latency


def test_mov_breaks_a_chain_and_a_read_of_its_source_continues_it() -> None:
    code = (bc.alu64(AluOp.ADD, 1, imm=1) + bc.mov64(1, imm=5)  # r1 rewritten: new chain
            + bc.alu64(AluOp.ADD, 1, imm=1) + bc.alu64(AluOp.ADD, 2, 1))  # r2 += r1
    assert run_max_ns(_timed(code)) == 3.0  # mov, add, add after it


def test_loads_wait_for_earlier_stores() -> None:
    code = (bc.alu64(AluOp.ADD, 1, imm=1) + bc.stx(8, 10, -8, 1) + bc.ldx(8, 2, 10, -8)
            + bc.alu64(AluOp.ADD, 2, imm=1))
    reads, writes = operands(decode(code)[2])
    assert MEMORY in reads and writes == (2,)
    assert run_max_ns(_timed(code)) == 4.0  # add -> store -> load -> add

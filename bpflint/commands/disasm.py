"""`bpflint disasm OBJ`: each program and its subprograms, with source lines interleaved.

The listing reads like ``llvm-objdump -d -l -S``: a function header, then for every
change of source line a ``; file:line`` comment and the line's text, then the
instructions as ``slot:<TAB>assembly``. Slots count 8-byte units from the start of
the ELF section, as llvm-objdump's do; jump targets are shown as ``<function+bytes>``
and helpers, maps, kfuncs and called functions by name.
"""

from __future__ import annotations

import argparse
import sys

from bpflint.api import reachable_functions
from bpflint.commands import COMMANDS
from bpflint.commands.names import find_program
from bpflint.errors import printable
from bpflint.isa.asm import annotation, format_insn
from bpflint.isa.insn import INSN_SIZE, Insn
from bpflint.obj.model import BpfObject, Function, Program, SourceLine
from bpflint.obj.reader import load_object

NAME = "disasm"
HELP = COMMANDS[NAME]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("object", metavar="OBJ", help="BPF object file")
    parser.add_argument("--program", "-p", metavar="NAME",
                        help="only this program (default: every program)")


def run(args: argparse.Namespace) -> int:
    obj = load_object(args.object)
    programs = select_programs(obj, args.program)
    sys.stdout.write("\n".join(render_program(obj, program) for program in programs))
    return 0


def select_programs(obj: BpfObject, name: str | None) -> tuple[Program, ...]:
    if name is None:
        return obj.programs
    chosen = tuple(program for program in obj.programs if program.name == name)
    return chosen or (find_program(obj.programs, name, str(obj.path)),)


def render_program(obj: BpfObject, program: Program) -> str:
    attach = f", attach {program.attach}" if program.attach else ""
    lines = [printable(f"Program {program.name} (section {program.section}, "
                       f"type {program.prog_type}{attach}):"), ""]
    for func in reachable_functions(obj, program):
        lines.extend(render_function(func))
        lines.append("")
    return "\n".join(lines) + "\n"


def render_function(func: Function) -> list[str]:
    lines = [printable(f"{func.start * INSN_SIZE:016x} <{func.name}> ({func.section}):")]
    current: SourceLine | None = None
    for insn in func.insns:
        if insn.line is not None and _moved(current, insn.line):
            current = insn.line
            lines.append(printable(f"; {current.file}:{current.line}"))
            if current.text:
                lines.append(printable(f"; {current.text.strip()}"))
        lines.append(f"{insn.pc:>8}:\t{describe(func, insn)}")
    return lines


def _moved(current: SourceLine | None, line: SourceLine) -> bool:
    return current is None or (current.file, current.line) != (line.file, line.line)


def describe(func: Function, insn: Insn) -> str:
    """The instruction's assembly followed by what it refers to, llvm-objdump style."""
    text = format_insn(insn)
    if insn.is_branch:
        delta_bytes = (insn.jump_target - func.start) * INSN_SIZE
        return f"{text} <{func.name}+{delta_bytes:#x}>"
    note = annotation(insn)
    return f"{text} <{note}>" if note else text

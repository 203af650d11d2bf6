"""`bpflint witness OBJ`: find, run and save an input that drives each program along
its worst path (docs/witness.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bpflint.commands import COMMANDS
from bpflint.cost.table_file import load_cost_table
from bpflint.errors import BpfLintError
from bpflint.obj.reader import load_object

NAME = "witness"
HELP = COMMANDS[NAME]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("object", metavar="OBJ", help="BPF object file")
    parser.add_argument("--program", "-p", metavar="NAME", help="only this program")
    parser.add_argument("--output", "-o", metavar="DIR",
                        help="write each witness to DIR/<program>.witness.json")
    parser.add_argument("--by", choices=("insns", "ns"), default="insns",
                        help="aim at the worst path by instructions (default) or by time")
    parser.add_argument("--seconds", type=float, default=10.0, metavar="S",
                        help="search time per program (default 10)")
    parser.add_argument("--no-solver", action="store_true",
                        help="guided random search only, even with z3 installed")
    parser.add_argument("--replay", metavar="FILE",
                        help="execute a saved witness on the program (-p) and count")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--cost-table", metavar="FILE", help="cost table for the bound")


def run(args: argparse.Namespace) -> int:
    from bpflint.witness import format as wformat
    from bpflint.witness.runner import pick, replay, witness_program

    if not args.seconds > 0:
        raise BpfLintError(f"--seconds must be more than zero, not {args.seconds:g}")
    obj = load_object(args.object)
    table = load_cost_table(args.cost_table)
    if args.replay:
        try:
            text = Path(args.replay).read_text()
        except OSError as exc:
            raise BpfLintError(f"{args.replay}: cannot read: {exc.strerror}") from None
        doc = wformat.loads(args.replay, text)
        name = args.program or doc.get("program")
        if not isinstance(name, str):
            raise BpfLintError(f"{args.replay}: no program named; give -p NAME")
        program = pick(obj, name)[0]
        got = replay(obj, program, doc, args.replay, table)
        reached = f", reached {got.executed_insns / got.insns_max:.3f}" \
            if got.insns_max else ""
        saved = doc.get("executed_insns")
        same = "" if saved is None else \
            (" (as saved)" if saved == got.executed_insns else f" (saved: {saved})")
        if args.format == "json":
            print(json.dumps({"program": program.name, "executed_insns": got.executed_insns,
                              "insns_max": got.insns_max, "retval": got.retval,
                              "reached": None if not got.insns_max else
                              round(got.executed_insns / got.insns_max, 4)}))
        else:
            print(f"{program.name}: executed {got.executed_insns} of {got.insns_max} insns"
                  f"{reached}{same}, retval {got.retval}")
        return 0
    from bpflint.witness.search import z3_available

    if not args.no_solver and not z3_available():
        print("bpflint: note: z3 is not installed: guided random search only "
              "(pip install 'bpflint[witness]')", file=sys.stderr)
    outcomes = [witness_program(obj, prog, table, args.by, args.seconds, not args.no_solver)
                for prog in pick(obj, args.program)]
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        for out in outcomes:
            w = out.search.witness if out.search else None
            if w is None:
                continue
            path = Path(args.output) / f"{out.program.name}.witness.json"
            try:
                path.write_text(wformat.dumps(w))
            except OSError as exc:
                raise BpfLintError(f"{path}: cannot write: {exc.strerror}") from None
    if args.format == "json":
        doc = {"version": 1, "programs": [
            {"object": args.object, "name": o.program.name, "type": o.program.prog_type,
             "insns": {"max": o.result.insns_max}, "ns": {"max": o.result.ns_max},
             "witness": o.to_json()} for o in outcomes]}
        print(json.dumps(doc, indent=1))
        return 0
    for out in outcomes:
        print(_line(out))
    return 0


def _line(out: object) -> str:
    from bpflint.witness.runner import Outcome

    assert isinstance(out, Outcome)
    head = f"{out.program.name} ({out.program.prog_type})"
    if out.search is None:
        return f"{head}: no witness: {out.skipped}"
    w = out.search.witness
    if w is None:
        return f"{head}: no witness: {out.search.note}"
    reached = f"{w.reached:.3f}" if w.reached is not None else "-"
    how = f"{out.search.method}, {out.search.runs} runs"
    priced = f"; priced {out.search.priced_ns:.0f} ns at the table's dearest (a ranking; " \
        f"ns.max {out.result.ns_max:.0f})" \
        if out.search.priced_ns is not None and out.result.ns_max is not None else ""
    line = f"{head}: executed {w.executed_insns} of {w.insns_max} insns, reached {reached} " \
           f"({how}){priced}"
    return line + (f"\n  {out.search.note}" if out.search.note else "")

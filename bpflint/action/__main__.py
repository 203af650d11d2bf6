"""``python -m bpflint.action prepare|check``: the steps action.yml runs."""

from __future__ import annotations

import os
import sys
import traceback

from bpflint.action import check, prepare
from bpflint.action.runner import command

STEPS = {"prepare": prepare.run, "check": check.run}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STEPS:
        print(f"usage: python -m bpflint.action {{{'|'.join(STEPS)}}}", file=sys.stderr)
        return 2
    try:
        return STEPS[argv[0]](os.environ)
    except Exception as exc:  # a bug here must not read as a budget failure (exit 1)
        traceback.print_exc()
        print(command("error", f"the action's {argv[0]} step failed: "
                               f"{type(exc).__name__}: {exc}"))
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``python -m bpflint.action prepare|check``: the steps action.yml runs."""

from __future__ import annotations

import os
import sys

from bpflint.action import check, prepare

STEPS = {"prepare": prepare.run, "check": check.run}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STEPS:
        print(f"usage: python -m bpflint.action {{{'|'.join(STEPS)}}}", file=sys.stderr)
        return 2
    return STEPS[argv[0]](os.environ)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

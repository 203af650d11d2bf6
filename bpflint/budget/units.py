"""Human units in bpfbudget.toml: times ("1.5us") and regression allowances ("5%").

Parsers raise ValueError with the problem only; config.py adds file, line and key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Both micro signs occur in the wild: U+00B5 (keyboard "µ") and U+03BC (Greek mu).
_NS_PER_UNIT = {"ns": 1.0, "us": 1e3, "\u00b5s": 1e3, "\u03bcs": 1e3, "ms": 1e6, "s": 1e9}
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_TIME = re.compile(rf"^{_NUMBER}\s*(ns|us|\u00b5s|\u03bcs|ms|s)$")
_PERCENT = re.compile(rf"^\+?{_NUMBER}\s*%$")
_INSNS = re.compile(r"^\+?(\d+)\s*insns?$")
_TIME_DELTA = re.compile(rf"^\+?{_NUMBER}\s*(ns|us|\u00b5s|\u03bcs|ms|s)$")

TIME_HELP = "write a number with a unit: ns, us (or µs), ms or s, e.g. \"1.5us\""
ALLOWANCE_HELP = 'write a percentage ("5%"), instructions ("+200 insns") or a time ("+50ns")'


def parse_time_ns(text: str) -> float:
    """"1.5us" -> 1500.0 nanoseconds."""
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"bad time {text!r}: {TIME_HELP}")
    return float(match.group(1)) * _NS_PER_UNIT[match.group(2)]


def format_ns(value_ns: float) -> str:
    """Shortest readable form: 850ns, 1.50us, 2.00ms, 1.20s."""
    if value_ns < 1e3:
        return f"{value_ns:.0f}ns" if value_ns >= 100 else f"{value_ns:.1f}ns"
    if value_ns < 1e6:
        return f"{value_ns / 1e3:.2f}us"
    if value_ns < 1e9:
        return f"{value_ns / 1e6:.2f}ms"
    return f"{value_ns / 1e9:.2f}s"


@dataclass(frozen=True)
class Allowance:
    """How much a program's worst case may grow against its baseline.

    Exactly one of the three limits is set: a percentage applies to both the
    worst-case instructions and the worst-case time; an absolute amount applies
    to its own measure only.
    """

    text: str
    percent: float | None = None
    insns: int | None = None
    ns: float | None = None

    def insns_excess(self, before: int, after: int) -> bool:
        if self.percent is not None:
            return after > before * (1 + self.percent / 100)
        return self.insns is not None and after - before > self.insns

    def ns_excess(self, before: float, after: float) -> bool:
        if self.percent is not None:
            return after > before * (1 + self.percent / 100)
        return self.ns is not None and after - before > self.ns


def parse_allowance(text: str) -> Allowance:
    stripped = text.strip()
    if match := _PERCENT.match(stripped):
        return Allowance(text=stripped, percent=float(match.group(1)))
    if match := _INSNS.match(stripped):
        return Allowance(text=stripped, insns=int(match.group(1)))
    if match := _TIME_DELTA.match(stripped):
        ns = float(match.group(1)) * _NS_PER_UNIT[match.group(2)]
        return Allowance(text=stripped, ns=ns)
    raise ValueError(f"bad regression allowance {text!r}: {ALLOWANCE_HELP}")

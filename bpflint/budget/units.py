"""Human units in bpfbudget.toml: times ("1.5us") and regression allowances ("5%").

Parsers raise ValueError with the problem only; config.py adds file, line and key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

# Both micro signs occur in the wild: U+00B5 (keyboard "µ") and U+03BC (Greek mu).
_NS_PER_UNIT = {"ns": 1.0, "us": 1e3, "\u00b5s": 1e3, "\u03bcs": 1e3, "ms": 1e6, "s": 1e9}
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_TIME = re.compile(rf"^{_NUMBER}\s*(ns|us|\u00b5s|\u03bcs|ms|s)$")
_PERCENT = re.compile(rf"^\+?{_NUMBER}\s*%$")
_INSNS = re.compile(r"^\+?(\d+)\s*insns?$")
_TIME_DELTA = re.compile(rf"^\+?{_NUMBER}\s*(ns|us|\u00b5s|\u03bcs|ms|s)$")

TIME_HELP = "write a number with a unit: ns, us (or µs), ms or s, e.g. \"1.5us\""
ALLOWANCE_HELP = ('write a percentage ("5%"), instructions ("+200 insns"), a time ("+50ns"), '
                  'or several joined by "or" ("5% or +8 insns or +20ns"), each kind once')


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

    One or more limits joined by "or" ("5% or +8 insns or +20ns"): a change passes
    when it is within any limit that applies to its measure. A percentage applies to
    both the worst-case instructions and the worst-case time; an absolute amount to
    its own measure only, so "+8 insns" alone leaves time unchecked. Exactly at a
    limit is within it. Comparisons are exact (Fraction of the decimal as written),
    so "+5%" of 60 insns is 63, not 62.99999999999999.
    """

    text: str
    percent: float | None = None
    insns: int | None = None
    ns: float | None = None

    def insns_excess(self, before: int, after: int) -> bool:
        limits = [self._within_percent(before, after)] if self.percent is not None else []
        if self.insns is not None:
            limits.append(after - before <= self.insns)
        return bool(limits) and not any(limits)

    def ns_excess(self, before: float, after: float) -> bool:
        limits = [self._within_percent(before, after)] if self.percent is not None else []
        if self.ns is not None:
            limits.append(_exact(after) - _exact(before) <= _exact(self.ns))
        return bool(limits) and not any(limits)

    def _within_percent(self, before: float, after: float) -> bool:
        assert self.percent is not None
        grown = (_exact(after) - _exact(before)) * 100
        return grown <= _exact(before) * _exact(self.percent)


def _exact(value: float) -> Fraction:
    """The decimal a person reads (repr), exactly: 1.05 is 105/100, not a binary float."""
    return Fraction(repr(float(value))) if isinstance(value, float) else Fraction(value)


def parse_allowance(text: str) -> Allowance:
    """"5%", "+200 insns", "+50ns", or several joined by "or": "5% or +8 insns"."""
    stripped = text.strip()
    percent: float | None = None
    insns: int | None = None
    ns: float | None = None
    parts = [part.strip() for part in re.split(r"\s+or\s+", stripped)]
    for part in parts:
        if (match := _PERCENT.match(part)) and percent is None:
            percent = float(match.group(1))
        elif (match := _INSNS.match(part)) and insns is None:
            insns = int(match.group(1))
        elif (match := _TIME_DELTA.match(part)) and ns is None:
            ns = float(match.group(1)) * _NS_PER_UNIT[match.group(2)]
        else:
            raise ValueError(f"bad regression allowance {text!r}: {ALLOWANCE_HELP}")
    return Allowance(text=stripped, percent=percent, insns=insns, ns=ns)

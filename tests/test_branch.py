"""Refining scalars on the two sides of a conditional jump (bpflint/analysis/branch.py).

Soundness: every pair of concrete values for which the comparison holds stays in the
refined operands. Exactness on known values: two constants refine to themselves when
the comparison holds and to nothing (an infeasible edge) when it does not.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpflint.analysis import scalar as sc
from bpflint.analysis.branch import refine
from bpflint.analysis.scalar import EmptyValue, Scalar

RELATIONS = ("<", "<=", ">", ">=", "==", "!=", "set", "!set")
u64 = st.integers(min_value=0, max_value=sc.U64)
small = st.integers(min_value=0, max_value=1 << 34)


def concrete(x: int, rel: str, y: int, signed: bool, width: int) -> bool:
    """What the jump compares, on concrete 64-bit register values."""
    if width == 32:
        x, y = x & sc.U32, y & sc.U32
        if signed:
            x, y = sc.to_s32(x), sc.to_s32(y)
    elif signed:
        x, y = sc.to_s64(x), sc.to_s64(y)
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y, "==": x == y,
            "!=": x != y, "set": x & y != 0, "!set": x & y == 0}[rel]


def contains(s: Scalar, v: int) -> bool:
    return (s.umin <= v <= s.umax and s.smin <= sc.to_s64(v) <= s.smax
            and v & ~s.tmask & sc.U64 == s.tval)


@st.composite
def scalar_around(draw: st.DrawFn, value: int) -> Scalar:
    """A scalar holding ``value``: the constant, or an unsigned range around it."""
    if draw(st.booleans()):
        return Scalar.const(value)
    below = draw(st.sampled_from((0, 1, 7, 1 << 20, 1 << 40)))
    above = draw(st.sampled_from((0, 1, 7, 1 << 20, 1 << 40)))
    return Scalar.urange(max(value - below, 0), min(value + above, sc.U64))


@settings(max_examples=600, deadline=None)
@given(st.data(), st.one_of(u64, small), st.one_of(u64, small),
       st.sampled_from(RELATIONS), st.booleans(), st.sampled_from((32, 64)))
def test_refining_keeps_every_pair_the_comparison_admits(
        data: st.DataObject, x: int, y: int, rel: str, signed: bool, width: int) -> None:
    a = data.draw(scalar_around(x))
    b = data.draw(scalar_around(y))
    if not concrete(x, rel, y, signed, width):
        return
    na, nb = refine(a, b, signed, rel, width)  # must not call the edge infeasible
    assert contains(na, x) and contains(nb, y)


@settings(max_examples=600, deadline=None)
@given(st.one_of(u64, small), st.one_of(u64, small), st.sampled_from(RELATIONS),
       st.booleans(), st.sampled_from((32, 64)))
def test_two_known_values_take_exactly_one_way(x: int, y: int, rel: str, signed: bool,
                                               width: int) -> None:
    a, b = Scalar.const(x), Scalar.const(y)
    if concrete(x, rel, y, signed, width):
        assert refine(a, b, signed, rel, width) == (a, b)
    else:
        with pytest.raises(EmptyValue):
            refine(a, b, signed, rel, width)

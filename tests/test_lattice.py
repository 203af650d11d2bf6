"""The value lattice the fixpoint runs on: a join is above both of its inputs.

The worklist stops revisiting a block once the incoming state is below (leq) the
one it holds; if a join could produce a state that leq does not see above its
inputs, a loop would be revisited until the step budget ran out (it did, for an
iterator element pointer joined with a scalar).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bpflint.analysis import scalar as sc
from bpflint.analysis.scalar import Scalar
from bpflint.analysis.state import (
    CALLER_STACK,
    UNINIT,
    UNKNOWN,
    Kind,
    State,
    Val,
    join_state,
    join_states,
    join_val,
    leq_state,
    leq_val,
    widen_val,
)

U64 = (1 << 64) - 1
scalars = st.one_of(
    st.integers(0, U64).map(Scalar.const),
    st.tuples(st.integers(0, 1 << 40), st.integers(0, 1 << 40)).map(
        lambda t: Scalar.urange(min(t), max(t))),
    st.tuples(st.integers(-(1 << 40), 1 << 40), st.integers(-(1 << 40), 1 << 40)).map(
        lambda t: Scalar.srange(min(t), max(t))),
    st.just(Scalar.unknown()),
)
vals = st.one_of(
    st.just(UNINIT), st.just(UNKNOWN),
    scalars.map(lambda s: Val(Kind.SCALAR, s)),  # builds() would invent ref and maybe_null
    st.builds(Val, st.sampled_from([k for k in Kind if k not in (Kind.UNINIT, Kind.SCALAR)]),
              scalars, st.sampled_from([None, "m1", -8, CALLER_STACK]), st.booleans(),
              st.one_of(st.none(), st.just((0, 10)), st.just((2, 5)))),
    # function pointers: one callback or a set of candidates (a join of several);
    # not builds(): on the compiled core it would invent `extra` and `link` from the
    # field types, and draw any object for them
    st.tuples(scalars, st.sampled_from(
        [(".text", 0), (".text", 5), frozenset({(".text", 0), (".text", 9)}),
         frozenset((".text", i) for i in range(8))]), st.booleans()).map(
        lambda t: Val(Kind.FUNC, t[0], t[1], t[2])),
)
THRESHOLDS = (0, 1, 10, 255)


@settings(max_examples=1000)
@given(vals, vals)
def test_a_join_is_above_both_values(a: Val, b: Val) -> None:
    j = join_val(a, b)
    assert leq_val(a, j) and leq_val(b, j), j
    assert join_val(j, a) == j  # joining again changes nothing


@settings(max_examples=500)
@given(vals, vals)
def test_widening_is_above_the_join(a: Val, b: Val) -> None:
    w = widen_val(a, join_val(a, b), THRESHOLDS)
    assert leq_val(join_val(a, b), w)


@settings(max_examples=300)
@given(st.lists(vals, min_size=11, max_size=11), st.lists(vals, min_size=11, max_size=11),
       st.lists(vals, min_size=2, max_size=2), st.lists(vals, min_size=2, max_size=2))
def test_a_joined_state_is_above_both_states(ra: list[Val], rb: list[Val], sa: list[Val],
                                             sb: list[Val]) -> None:
    a = State(tuple(ra), ((-16, 8, sa[0]), (-8, 8, sa[1])))
    b = State(tuple(rb), ((-16, 8, sb[0]), (-8, 4, sb[1])))  # -8 differs in size
    j = join_state(a, b)
    assert leq_state(a, j) and leq_state(b, j)


# Stacks of a few shapes (offsets, sizes) so that folds meet equal, joinable and
# disjoint slots; states drawn from a small pool of values, so that some repeat.
stacks = st.lists(st.tuples(st.sampled_from([-24, -16, -8]), st.sampled_from([4, 8]), vals),
                  max_size=3).map(lambda slots: tuple(sorted({s[0]: s for s in slots}.values())))


# scalars with a link (the verifier's ids) or none, as join_states folds them most
linked_scalars = st.tuples(scalars, st.sampled_from([0, 1 << 64, (2 << 64) | 3])).map(
    lambda t: Val(Kind.SCALAR, t[0], link=t[1]))


@settings(max_examples=600)
@given(st.lists(st.tuples(st.lists(st.sampled_from([0, 1, 2, 3]), min_size=11, max_size=11),
                          stacks), min_size=1, max_size=5),
       st.lists(st.one_of(vals, linked_scalars, linked_scalars), min_size=4, max_size=4),
       st.lists(st.integers(0, 4), max_size=3))
def test_joining_states_in_one_go_is_the_fold_of_pairwise_joins(
        shapes: list[tuple[list[int], tuple[tuple[int, int, Val], ...]]], pool: list[Val],
        repeats: list[int]) -> None:
    states = [State(tuple(pool[i] for i in picks), stack) for picks, stack in shapes]
    states += [states[i % len(states)] for i in repeats]  # the same object again
    folded = states[0]
    for other in states[1:]:
        folded = join_state(folded, other)
    joined = join_states(states)
    assert joined == folded
    assert (joined is states[0]) == (folded is states[0])


def test_a_store_at_a_variable_stack_offset_forgets_only_what_it_can_reach() -> None:
    from bpflint.analysis.transfer import Machine

    it = Val(Kind.ITER, Scalar.urange(0, 16), None, False, (0, 16))
    seven = Val(Kind.SCALAR, Scalar.const(7))
    regs = (UNKNOWN,) * 10 + (Val(Kind.STACK, Scalar.const(0)),)
    m = Machine(State(regs, ((-264, 8, it), (-64, 8, seven), (-8, 8, seven))))
    m._stack_store(Scalar.srange(-128, -16), 8, seven)  # arr[i] = 7 with arr at fp-128
    assert m.slot(-264) == (8, it)  # the iterator below the array survives
    assert m.slot(-64) is None  # inside the array: may have been overwritten
    assert m.slot(-8) == (8, seven)  # above it: untouched


def test_widening_opens_the_tnum_so_a_growing_bound_reaches_its_threshold() -> None:
    # The join of [0, 300] and [0, 510] has the tnum 0..511; widening that kept it
    # clamped the bound to 511, then 1023, ... one bit per round of the loop header
    # (pyperf600 built by clang 14 ran its 5M-step budget out this way).
    thresholds = (0, 599, (1 << 32) - 1)
    old = Scalar.urange(0, 300)
    widened = sc.widen(old, sc.join(old, Scalar.urange(0, 510)), thresholds)
    assert widened.umax == 599
    again = sc.widen(widened, sc.join(widened, Scalar.urange(0, 1022)), thresholds)
    assert again.umax == (1 << 32) - 1


def test_widening_keeps_known_low_bits() -> None:
    aligned = Scalar(0, 300, 0, 300, 0, 0x1FC)  # multiples of 4 up to 300
    grown = Scalar(0, 508, 0, 508, 0, 0x1FC)
    widened = sc.widen(aligned, sc.join(aligned, grown), (0, 599))
    assert widened.umax == 599 and widened.tmask & 3 == 0


@given(scalars, scalars)
@settings(max_examples=300, deadline=None)
def test_widening_a_scalar_is_above_the_join(a: Scalar, b: Scalar) -> None:
    joined = sc.join(a, b)
    assert sc.leq(joined, sc.widen(a, joined, (0, 1, 599, 1 << 32)))

"""64-bit scalar abstract values: unsigned and signed intervals plus a tnum.

The same three views the kernel verifier keeps (umin/umax, smin/smax, tnum),
synchronised after every operation so each one can sharpen the others. Every
operation is sound: the result contains every concrete result of the concrete
operation applied to concrete members of the operands.
"""

from __future__ import annotations

from typing import Final, NamedTuple

U64: Final = (1 << 64) - 1
U32: Final = (1 << 32) - 1
S64_MIN: Final = -(1 << 63)
S64_MAX: Final = (1 << 63) - 1


# Constants are the most built values (every immediate, every offset); the first
# _CONSTS_KEPT distinct ones are kept and shared.
# (Final, these and every module-level memo of the engine: compiled, a C static each,
# where a plain global is a lookup in the module's dict on every use)
_CONSTS: Final[dict[int, Scalar]] = {}
_CONSTS_KEPT: Final = 1 << 16
# the two hottest constructions build the tuple directly, without the NamedTuple
# constructor's extra Python-level call
_new_tuple: Final = tuple.__new__


def to_s64(v: int) -> int:
    v &= U64
    return v - (1 << 64) if v >> 63 else v


def to_s32(v: int) -> int:
    v &= U32
    return v - (1 << 32) if v >> 31 else v


class Scalar(NamedTuple):
    # A NamedTuple rather than a frozen dataclass: built and compared millions of
    # times per analysis, and tuples do both in C.
    umin: int
    umax: int
    smin: int
    smax: int
    tval: int  # tnum: bits known to be 1
    tmask: int  # tnum: bits unknown

    # -- construction -----------------------------------------------------
    @staticmethod
    def const(v: int) -> Scalar:
        return const_scalar(v)

    @staticmethod
    def unknown() -> Scalar:
        return UNKNOWN

    @staticmethod
    def urange(lo: int, hi: int) -> Scalar:
        if lo > hi:
            raise ValueError("empty range")
        return _sync(lo, hi, S64_MIN, S64_MAX, *_tnum_range(lo, hi))

    @staticmethod
    def srange(lo: int, hi: int) -> Scalar:
        return _sync(0, U64, lo, hi, 0, U64)

    # -- queries ----------------------------------------------------------
    @property
    def is_const(self) -> bool:
        # (compiled, a NamedTuple's property is a generic attribute lookup and call:
        # the operations below test umin == umax themselves)
        return self.umin == self.umax

    def fits_u32(self) -> bool:
        return self.umax <= U32

    def __repr__(self) -> str:
        if self.is_const:
            return f"#{self.umin}"
        return f"[u{self.umin}..{self.umax} s{self.smin}..{self.smax}]"


_SCALAR: Final = Scalar  # compiled, a C static (the class's own name: a dict lookup)


def const_scalar(v: int) -> Scalar:
    """const_scalar(v); compiled, a call of this function is a direct one."""
    v &= U64
    known = _CONSTS.get(v)
    if known is not None:
        return known
    sv = v - (1 << 64) if v >> 63 else v
    made = _new_tuple(_SCALAR, (v, v, sv, sv, v, 0))
    if len(_CONSTS) < _CONSTS_KEPT:
        _CONSTS[v] = made
    return made


def _tnum_range(lo: int, hi: int) -> tuple[int, int]:
    chi = lo ^ hi
    bits = chi.bit_length()
    if bits > 63:
        return 0, U64
    delta = (1 << bits) - 1
    return lo & ~delta & U64, delta


def _sync(umin: int, umax: int, smin: int, smax: int, tval: int, tmask: int) -> Scalar:
    """Intersect the three views with each other (the kernel's reg_bounds_sync)."""
    # tnum -> intervals
    umin = max(umin, tval)
    umax = min(umax, (tval | tmask) & U64)
    # a range crossing a boundary is two pieces in the other view; where the other
    # range misses one piece, it narrows to the other: signed [-1, 13] with unsigned
    # [0, 2^64 - 2] (r != -1 after r -= 1) is [0, 13]
    if smin < 0 <= smax:
        if umax < smin & U64:
            umax = min(umax, smax)
        elif umin > smax:
            umin = max(umin, smin & U64)
    elif umin <= umax and (umin >> 63) != (umax >> 63):
        if smax < umin:
            smax = min(smax, to_s64(umax))
        elif smin > to_s64(umax):
            smin = max(smin, umin)
    # unsigned <-> signed: when the unsigned range does not cross the sign boundary
    if umin <= umax and (umin >> 63) == (umax >> 63):
        smin = max(smin, to_s64(umin))
        smax = min(smax, to_s64(umax))
    if smin <= smax and (smin >= 0 or smax < 0):
        umin = max(umin, smin & U64)
        umax = min(umax, smax & U64)
    if umin > umax or smin > smax:
        # Contradiction: the value set is empty. Callers treat an empty
        # scalar as an infeasible path; keep a canonical representation.
        raise EmptyValue()
    # intervals -> tnum
    rv, rm = _tnum_range(umin, umax)
    nv, nm = _tnum_intersect(tval, tmask, rv, rm)
    if nv is None:
        raise EmptyValue()
    return _new_tuple(_SCALAR, (umin, umax, smin, smax, nv, nm))


def _tnum_intersect(av: int, am: int, bv: int, bm: int) -> tuple[int | None, int]:
    v = av | bv
    mu = am & bm
    # known bits must agree
    known_both = ~am & ~bm & U64
    if (av ^ bv) & known_both:
        return None, 0
    return v & ~mu & U64, mu


class EmptyValue(Exception):
    """Refinement proved that no concrete value is possible: the path is infeasible."""


UNKNOWN: Final = Scalar(0, U64, S64_MIN, S64_MAX, 0, U64)
UNKNOWN32: Final = Scalar(0, U32, 0, U32, 0, U32)


def join(a: Scalar, b: Scalar) -> Scalar:
    if a is b or a == b:
        return a
    tv = a.tval & b.tval
    tm = a.tmask | b.tmask | (a.tval ^ b.tval)
    # (conditional expressions, not min()/max(): a call each, on every join)
    return _new_tuple(_SCALAR, (a.umin if a.umin <= b.umin else b.umin,
                               a.umax if a.umax >= b.umax else b.umax,
                               a.smin if a.smin <= b.smin else b.smin,
                               a.smax if a.smax >= b.smax else b.smax,
                               tv & ~tm & U64, tm))


def meet(a: Scalar, b: Scalar) -> Scalar:
    """The values in both ``a`` and ``b`` (EmptyValue if there are none)."""
    if a == b:
        return a
    tv, tm = _tnum_intersect(a.tval, a.tmask, b.tval, b.tmask)
    if tv is None:
        raise EmptyValue()
    return _sync(max(a.umin, b.umin), min(a.umax, b.umax), max(a.smin, b.smin),
                 min(a.smax, b.smax), tv, tm)


def widen(old: Scalar, new: Scalar, thresholds: tuple[int, ...]) -> Scalar:
    """Widen ``old`` towards ``new``: a bound that moved jumps to the next threshold."""
    if new == old:
        return old
    j = join(old, new)
    umin, umax, smin, smax = old.umin, old.umax, old.smin, old.smax
    if j.umax > umax:
        umax = next((t for t in thresholds if j.umax <= t <= U64), U64)
    if j.umin < umin:
        umin = next((t for t in reversed(thresholds) if 0 <= t <= j.umin), 0)
    if j.smax > smax:
        smax = next((t for t in thresholds if j.smax <= t <= S64_MAX), S64_MAX)
    if j.smin < smin:
        smin = next((t for t in reversed(thresholds) if S64_MIN <= t <= j.smin), S64_MIN)
    # The tnum widens too: otherwise _sync clamps the widened bounds back to what
    # the joined tnum allows, which grows by one bit per round (64 rounds of a loop
    # header instead of one). Bits from the lowest unknown one up to the top of the
    # widened range become unknown; known low bits (alignment) stay.
    tval, tmask = j.tval, j.tmask
    if tmask:
        low = (tmask & -tmask).bit_length() - 1
        top = 64 if umax >> 63 or smin < 0 else umax.bit_length()
        tmask |= ((1 << top) - 1) & ~((1 << low) - 1)
        tval &= ~tmask
    try:
        return _sync(umin, umax, smin, smax, tval, tmask)
    except EmptyValue:
        return UNKNOWN


def leq(a: Scalar, b: Scalar) -> bool:
    """a is contained in b."""
    return (b.umin <= a.umin and a.umax <= b.umax and b.smin <= a.smin and a.smax <= b.smax
            and (a.tmask & ~b.tmask) == 0 and (a.tval & ~b.tmask) == (b.tval & ~b.tmask))


# -- arithmetic -------------------------------------------------------------

def _from_u(lo: int, hi: int) -> Scalar:
    return Scalar.urange(lo, hi) if lo <= hi else UNKNOWN


def add(a: Scalar, b: Scalar) -> Scalar:
    if a.umin == a.umax and b.umin == b.umax:
        return const_scalar(a.umin + b.umin)
    umin, umax = a.umin + b.umin, a.umax + b.umax
    smin, smax = a.smin + b.smin, a.smax + b.smax
    tv, tm = _tnum_add(a, b)
    if umax > U64:
        umin, umax = 0, U64
    if smin < S64_MIN or smax > S64_MAX:
        smin, smax = S64_MIN, S64_MAX
    return _sync_or_unknown(umin, umax, smin, smax, tv, tm)


def neg(a: Scalar) -> Scalar:
    if a.umin == a.umax:
        return const_scalar(-a.umin)
    if a.smin > S64_MIN:
        return _sync_or_unknown(0, U64, -a.smax, -a.smin, 0, U64)
    return UNKNOWN


def sub(a: Scalar, b: Scalar) -> Scalar:
    if a.umin == a.umax and b.umin == b.umax:
        return const_scalar(a.umin - b.umin)
    umin, umax = a.umin - b.umax, a.umax - b.umin
    smin, smax = a.smin - b.smax, a.smax - b.smin
    if umin < 0:
        umin, umax = 0, U64
    if smin < S64_MIN or smax > S64_MAX:
        smin, smax = S64_MIN, S64_MAX
    return _sync_or_unknown(umin, umax, smin, smax, 0, U64)


def mul(a: Scalar, b: Scalar) -> Scalar:
    if a.umin == a.umax and b.umin == b.umax:
        return const_scalar(a.umin * b.umin)
    if a.umax * b.umax <= U64:
        return _sync_or_unknown(a.umin * b.umin, a.umax * b.umax, S64_MIN, S64_MAX, 0, U64)
    return UNKNOWN


def udiv(a: Scalar, b: Scalar) -> Scalar:
    # BPF: division by zero yields zero.
    if a.umin == a.umax and b.umin == b.umax:
        return const_scalar(a.umin // b.umin if b.umin else 0)
    lo = a.umin // b.umax if b.umax else 0
    hi = a.umax // max(b.umin, 1)
    if b.umin == 0:
        lo = 0
    return _from_u(lo, hi)


def umod(a: Scalar, b: Scalar) -> Scalar:
    # BPF: modulo by zero leaves the dividend unchanged.
    if a.umin == a.umax and b.umin == b.umax:
        return const_scalar(a.umin % b.umin if b.umin else a.umin)
    if b.umin == 0:
        return join(a, _from_u(0, max(b.umax - 1, 0)))
    return _from_u(0, min(a.umax, b.umax - 1))


def bit_and(a: Scalar, b: Scalar) -> Scalar:
    if a.umin == a.umax and b.umin == b.umax:
        return const_scalar(a.umin & b.umin)
    av, am, bv, bm = a.tval, a.tmask, b.tval, b.tmask
    alpha, beta = av | am, bv | bm
    v = av & bv
    tm = alpha & beta & ~v
    return _sync_or_unknown(0, min(a.umax, b.umax), S64_MIN, S64_MAX, v, tm)


def bit_or(a: Scalar, b: Scalar) -> Scalar:
    if a.umin == a.umax and b.umin == b.umax:
        return const_scalar(a.umin | b.umin)
    v = a.tval | b.tval
    mu = a.tmask | b.tmask
    return _sync_or_unknown(max(a.umin, b.umin), U64, S64_MIN, S64_MAX, v, mu & ~v)


def bit_xor(a: Scalar, b: Scalar) -> Scalar:
    if a.umin == a.umax and b.umin == b.umax:
        return const_scalar(a.umin ^ b.umin)
    v = a.tval ^ b.tval
    mu = a.tmask | b.tmask
    return _sync_or_unknown(0, U64, S64_MIN, S64_MAX, v & ~mu, mu)


def lsh(a: Scalar, b: Scalar, width: int = 64) -> Scalar:
    if b.umin != b.umax:
        return UNKNOWN
    sh = b.umin & (width - 1)
    if a.umin == a.umax:
        return const_scalar(a.umin << sh)
    smin, smax = S64_MIN, S64_MAX
    if width == 64:
        if S64_MIN <= a.smin << sh and a.smax << sh <= S64_MAX:
            smin, smax = a.smin << sh, a.smax << sh  # no signed overflow: exact
        elif sh == 32:
            # the result is the low half, as s32, times 2^32 (clang's r <<= 32;
            # r s>>= 32 sign extension of a 32-bit counter)
            lo32, hi32 = s32_range(a)
            smin, smax = lo32 << 32, hi32 << 32
    if (a.umax << sh) <= U64:
        return _sync_or_unknown(a.umin << sh, a.umax << sh, smin, smax,
                                (a.tval << sh) & U64, (a.tmask << sh) & U64)
    return _sync_or_unknown(0, U64, smin, smax, (a.tval << sh) & U64,
                            (a.tmask << sh) & U64)


def rsh(a: Scalar, b: Scalar, width: int = 64) -> Scalar:
    if b.umin != b.umax:
        return _from_u(0, a.umax)
    sh = b.umin & (width - 1)
    return _sync_or_unknown(a.umin >> sh, a.umax >> sh, S64_MIN, S64_MAX, a.tval >> sh,
                            a.tmask >> sh)


def arsh(a: Scalar, b: Scalar) -> Scalar:
    if b.umin != b.umax:
        return UNKNOWN
    sh = b.umin & 63
    if a.umin == a.umax:
        return const_scalar(to_s64(a.umin) >> sh)
    return _sync_or_unknown(0, U64, a.smin >> sh, a.smax >> sh, 0, U64)


def _sync_or_unknown(umin: int, umax: int, smin: int, smax: int, tv: int, tm: int) -> Scalar:
    try:
        return _sync(umin, umax, smin, smax, tv & U64, tm & U64)
    except EmptyValue:
        return UNKNOWN


def _tnum_add(a: Scalar, b: Scalar) -> tuple[int, int]:
    sm = a.tmask + b.tmask
    sv = a.tval + b.tval
    sigma = sm + sv
    chi = sigma ^ sv
    mu = chi | a.tmask | b.tmask
    return sv & ~mu & U64, mu & U64


# -- 32-bit sub-register views ----------------------------------------------

def low32(a: Scalar) -> Scalar:
    """The value of the lower 32 bits, zero-extended (what a `w` register reads)."""
    if a.umax <= U32:
        return a
    if a.umin == a.umax:
        return const_scalar(a.umin & U32)
    # If the whole unsigned range lies in one 2^32 window, the low half is a
    # plain translation of it.
    if a.umin >> 32 == a.umax >> 32:
        return _from_u(a.umin & U32, a.umax & U32)
    return _sync_or_unknown(0, U32, 0, U32, a.tval & U32, a.tmask & U32)


def with_low32_in(a: Scalar, r: Scalar) -> Scalar:
    """``a`` knowing that its low 32 bits, zero-extended, lie in ``r`` (a value of
    at most U32): what r's tnum says of the low half (no interval holds for the whole
    64 bits where the high half is unknown), or r itself moved into a's window where
    a lies in one. EmptyValue if none is left."""
    if a.umax <= U32:
        return meet(a, r)
    if a.umin >> 32 == a.umax >> 32:  # one 2^32 window: the low half translates a
        window = a.umin & ~U32
        return meet(a, _from_u(window + r.umin, window + r.umax))
    tv, tm = _tnum_intersect(r.tval, r.tmask, *_tnum_range(r.umin, r.umax))
    if tv is None:
        raise EmptyValue()
    tv2, tm2 = _tnum_intersect(a.tval, a.tmask, tv, tm | (U64 ^ U32))
    if tv2 is None:
        raise EmptyValue()
    return _sync(a.umin, a.umax, a.smin, a.smax, tv2, tm2)


def trunc32(a: Scalar) -> Scalar:
    """Result of a 32-bit ALU operation: keep the low half, zero the high half."""
    return low32(a)


def sext(a: Scalar, bits: int) -> Scalar:
    """Sign-extend the low ``bits`` bits (movsx, ldsx)."""
    half = 1 << (bits - 1)
    mask = (1 << bits) - 1
    if -half <= a.smin and a.smax < half:
        return a  # small signed values are their own sign extension
    lo = low_bits(a, bits)
    if lo.umax < half:
        return lo
    if lo.umin == lo.umax:
        v = lo.umin & mask
        return const_scalar(v - (1 << bits) if v >= half else v)
    if lo.umin >= half:
        return Scalar.srange(lo.umin - (1 << bits), lo.umax - (1 << bits))
    return Scalar.srange(-half, half - 1)


def low_bits(a: Scalar, bits: int) -> Scalar:
    if bits >= 64:
        return a
    mask = (1 << bits) - 1
    if a.umax <= mask:
        return a
    if a.umin == a.umax:
        return const_scalar(a.umin & mask)
    if a.umin >> bits == a.umax >> bits:
        return _from_u(a.umin & mask, a.umax & mask)
    return _from_u(0, mask)


def s32_range(a: Scalar) -> tuple[int, int]:
    """Signed 32-bit view of the low half: (smin, smax)."""
    if -(1 << 31) <= a.smin and a.smax < 1 << 31:
        return a.smin, a.smax  # small signed values: the low half as s32 is the value
    lo = low32(a)
    if lo.umax < 1 << 31:
        return lo.umin, lo.umax
    if lo.umin >= 1 << 31:
        return lo.umin - (1 << 32), lo.umax - (1 << 32)
    return -(1 << 31), (1 << 31) - 1

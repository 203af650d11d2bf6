"""Random BPF programs for the program-level differential fuzzer (issue 16).

A program is a small AST (frozen dataclasses, one per statement kind) drawn from a
seeded ``random.Random``; :func:`compile_program` turns it into bytecode per
function plus the relocations an object file carries (maps, global data, calls
into ``.text``, callback addresses). The statements are those real programs are
made of: branches on packet, context and map data, bounded loops of several
shapes (counted up or down, ``<``/``<=``/``!=``/``>``/``>=``, signed and 32-bit
compares, data-dependent clamped trip counts, nesting, breaks), bpf-to-bpf calls
whose callee writes the caller's stack through a pointer argument, ``bpf_loop``
and ``bpf_for_each_map_elem`` callbacks, map lookups and updates, spills and
fills of pointers and scalars, 32- and 64-bit ALU (div/mod signed and unsigned,
shifts, movsx, byte swaps), atomics, and reads of global data.

Every frame keeps its scalars in stack slots (``v0``..``v5``), so a statement
loads what it needs into r1-r5, works, and stores back: any statement can be
dropped without breaking the others, which is what the minimiser does.

Constructs that touch a hole another change is fixing sit behind flags of
:class:`Features` (off by default, see docs/validation.md).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from bpflint.isa.opcodes import AluOp, Cls, JmpOp, Mode, Size
from bpflint.kernel import bytecode as bc

# -- frame layout (bytes below r10) ---------------------------------------------------
NVARS = 6
VAR_OFF = [-8 * (i + 1) for i in range(NVARS)]  # v0..v5
MAX_LOOP_DEPTH = 3
CTR_OFF = [-56 - 8 * d for d in range(MAX_LOOP_DEPTH + 1)]  # loop counters per depth
PTR_SPILL_OFF = -88
KEY_OFF = -96
VALUE_OFF = -104
BOUND_OFF = [-112 - 8 * d for d in range(MAX_LOOP_DEPTH + 1)]  # loop bounds per depth

HELPER_MAP_LOOKUP = 1
HELPER_MAP_UPDATE = 2
HELPER_TAIL_CALL = 12
PROG_ARRAY = "jmp"  # the prog array (BTF-defined, slots filled in the object)
PROG_ARRAY_SLOTS = 4
HELPER_FOR_EACH = 164
HELPER_LOOP = 181

# map name -> (type, key size, value size, max entries); all in the legacy maps section
MAPS = {
    "arr": ("array", 4, 8, 8),
    "hmap": ("hash", 4, 8, 64),
    "cfg": ("array", 4, 8, 4),  # the loader's configuration: inputs set its values
}
DATA_BYTES = 32  # .data: globals user space may change between runs
RODATA_BYTES = 32  # .rodata: const volatile globals (loader-set before load)

XDP = "xdp"
TC = "tc"
PROG_TYPES = (XDP, TC)
# readable context fields: (offset, size); TC's are __sk_buff len, mark, priority, cb[0..1]
CTX_FIELDS = {XDP: ((12, 4), (16, 4)), TC: ((0, 4), (8, 4), (32, 4), (48, 4), (52, 4))}
DATA_FIELD = {XDP: (0, 4), TC: (76, 80)}  # ctx offsets of data and data_end


@dataclass(frozen=True)
class Features:
    """Which constructs the generator may use. The three flags off by default hit
    holes being fixed elsewhere (issue 16 items 1 and 2) and are turned on once the
    fixes are merged."""

    callback_writes: bool = False  # callbacks write ctx (caller's stack) / map values
    rodata_globals: bool = False  # reads of const volatile .rodata, varied per run
    tail_calls: bool = False  # bpf_tail_call into programs of a statically filled prog array
    packet_walks: bool = False  # parser loops advancing a packet cursor (TLV-style steps)
    loop_variants: bool = False  # data-dependent extra steps, continue statements
    loops: bool = True
    calls: bool = True
    callbacks: bool = True
    maps: bool = True
    atomics: bool = True
    globals: bool = True

    @staticmethod
    def parse(text: str) -> Features:
        """``"callback_writes,rodata_globals"`` turns those on; ``-loops`` turns off."""
        feats = Features()
        for word in filter(None, (w.strip() for w in text.split(","))):
            on = not word.startswith("-")
            name = word.lstrip("+-")
            if name not in Features.__dataclass_fields__:
                raise ValueError(f"unknown generator feature {name!r}")
            feats = replace(feats, **{name: on})
        return feats


# -- the AST ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Alu:
    dst: int
    op: str  # add sub mul div mod sdiv smod or and xor lsh rsh arsh neg mov movsx be bswap
    w64: bool
    src: int | None  # a var, or None for the immediate
    imm: int


@dataclass(frozen=True)
class If:
    a: int
    op: str  # jeq jne jgt jge jlt jle jset jsgt jsge jslt jsle
    w64: bool
    b: int | None
    imm: int
    body: tuple[Stmt, ...]  # runs when the condition is false (the jump skips it)
    other: tuple[Stmt, ...] = ()  # runs when it is true


@dataclass(frozen=True)
class PktGuard:
    length: int
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class PktRead:
    dst: int
    off: int
    size: int
    swap: bool
    via_spill: bool = False  # through a spilled and filled copy of the packet pointer


@dataclass(frozen=True)
class PktWrite:
    src: int
    off: int
    size: int


@dataclass(frozen=True)
class CtxRead:
    dst: int
    off: int
    size: int
    via_spill: bool = False


@dataclass(frozen=True)
class Loop:
    depth: int
    in_reg: bool  # counter in r9 instead of its stack slot
    bottom_test: bool  # do { } while: the body runs at least once
    cond: str  # jump op of the continue test
    w64: bool
    start: int
    step: int
    bound: int  # the constant, or the clamp when bound_var is set
    bound_var: int | None  # data-dependent trip count: var & mask, or min(var, bound)
    clamp_and: bool
    body: tuple[Stmt, ...]
    extra_step_var: int | None = None  # the latch also moves by (var & 3) (loop_variants)


@dataclass(frozen=True)
class Break:
    a: int
    op: str
    imm: int


@dataclass(frozen=True)
class Continue:
    """Skip to the innermost loop's latch when the condition holds (loop_variants)."""

    a: int
    op: str
    imm: int


@dataclass(frozen=True)
class Call:
    func: str
    ptr_var: int  # the callee reads and writes this var through a pointer
    arg_var: int
    ret_var: int


@dataclass(frozen=True)
class BpfLoop:
    func: str
    n_var: int | None
    n: int  # nr_loops, or the mask applied to n_var
    ctx_var: int
    ret_var: int | None


@dataclass(frozen=True)
class ForEach:
    func: str
    ctx_var: int
    ret_var: int | None


@dataclass(frozen=True)
class MapLookup:
    map: str
    key_var: int | None
    key: int  # the key, or a mask for key_var (0: unmasked)
    dst: int
    update: str  # "" | "store" | "add" | "atomic"
    src: int
    spill: bool
    body: tuple[Stmt, ...]  # runs when the lookup found the element


@dataclass(frozen=True)
class MapUpdate:
    map: str
    key_var: int
    mask: int
    val_var: int
    ret_var: int | None


@dataclass(frozen=True)
class GlobalRead:
    section: str
    off: int
    size: int
    dst: int


@dataclass(frozen=True)
class TailCall:
    index_var: int | None
    index: int  # the slot, or a mask for index_var


@dataclass(frozen=True)
class PktWalk:
    """A parser loop: up to ``limit`` rounds, each checks ``cursor + step <= data_end``
    (else stops), reads ``size`` bytes at the cursor into ``dst`` (added, or compared
    with ``stop`` to end the walk), and advances by ``step`` or, with ``tlv``, by the
    length byte at ``cursor + 1`` masked to 0..7 plus ``step`` (TLV options)."""

    depth: int
    limit: int
    step: int
    size: int
    tlv: bool
    stop: int | None
    dst: int


@dataclass(frozen=True)
class Atomic:
    var: int
    src: int
    op: str  # add or and xor xchg cmpxchg
    size: int
    fetch: bool
    dst: int


Stmt = (Alu | If | PktGuard | PktRead | PktWrite | CtxRead | Loop | Break | Call | BpfLoop
        | ForEach | MapLookup | MapUpdate | GlobalRead | Atomic | TailCall | PktWalk
        | Continue)

# var init sources
INIT_CONST = "const"


@dataclass(frozen=True)
class Func:
    name: str
    kind: str  # main | sub | loop_cb | each_cb
    inits: tuple[tuple[int, str, int], ...]  # (var, source, value)
    body: tuple[Stmt, ...]
    ret_var: int
    cb_ret: int = 0  # callbacks: 0 returns 0; 1 returns ret_var & 1
    writes_ptr: int | None = None  # sub: var written through the pointer argument;
    # callbacks: var written to *ctx (Features.callback_writes)


@dataclass(frozen=True)
class Program:
    prog_type: str
    funcs: tuple[Func, ...]  # funcs[0] is the entry
    targets: tuple[Func, ...] = ()  # tail-call targets: slot i holds targets[i]

    def with_funcs(self, funcs: tuple[Func, ...]) -> Program:
        return Program(self.prog_type, funcs, self.targets)


# -- generation ---------------------------------------------------------------------------
_ALU_OPS = ("add", "sub", "mul", "div", "mod", "sdiv", "smod", "or", "and", "xor", "lsh",
            "rsh", "arsh", "neg", "mov", "movsx", "be", "bswap")
_JMP_OPS = ("jeq", "jne", "jgt", "jge", "jlt", "jle", "jset", "jsgt", "jsge", "jslt", "jsle")
_ATOMIC_OPS = ("add", "or", "and", "xor", "xchg", "cmpxchg")
_INTERESTING = (0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 63, 64, 100, 127, 128, 255, 256, 1000,
                0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, -1, -2, -128, -0x80000000)


@dataclass
class _Scope:
    feats: Features
    kind: str
    prog_type: str
    depth: int = 0  # loop nesting
    r9_free: bool = True
    pkt_len: int = 0  # bytes the enclosing guards proved
    budget: int = 0  # statements left
    iters: int = 1  # product of enclosing trip counts (keeps the verifier's walk small)
    plain: bool = False  # a tail-call target: no maps, globals, calls or callbacks
    subs: list[Func] = field(default_factory=list)
    consts: list[int] = field(default_factory=list)


class Generator:
    """Draw one program from a seed."""

    def __init__(self, seed: int, feats: Features | None = None) -> None:
        self.rng = random.Random(seed)
        self.feats = feats or Features()
        self.nfuncs = 0

    def imm(self) -> int:
        rng = self.rng
        pick = rng.random()
        if pick < 0.5:
            return rng.choice(_INTERESTING)
        if pick < 0.8:
            return rng.randint(-20, 300)
        return rng.randint(-(1 << 31), (1 << 31) - 1)

    def program(self) -> Program:
        rng = self.rng
        prog_type = rng.choice(PROG_TYPES)
        scope = _Scope(self.feats, "main", prog_type, budget=rng.randint(3, 16))
        inits = tuple(self._main_init(v, prog_type) for v in range(NVARS))
        body = self.block(scope, rng.randint(2, 7))
        main = Func("prog", "main", inits, body, rng.randrange(NVARS))
        targets: list[Func] = []
        if self.feats.tail_calls:
            for index in range(rng.randint(1, PROG_ARRAY_SLOTS - 1)):
                plain = _Scope(self.feats, "main", prog_type, budget=rng.randint(1, 8),
                               plain=True)
                target_inits = tuple(self._main_init(v, prog_type) for v in range(NVARS))
                targets.append(Func(f"t{index}", "main", target_inits,
                                    self.block(plain, rng.randint(1, 4)),
                                    rng.randrange(NVARS)))
        return Program(prog_type, (main, *scope.subs), tuple(targets))

    def _main_init(self, var: int, prog_type: str) -> tuple[int, str, int]:
        pick = self.rng.random()
        if pick < 0.3:
            return (var, "pktlen", 0)
        if pick < 0.55:
            off, _size = self.rng.choice(CTX_FIELDS[prog_type])
            return (var, "ctx", off)
        return (var, INIT_CONST, self.imm())

    def block(self, scope: _Scope, n: int) -> tuple[Stmt, ...]:
        out: list[Stmt] = []
        for _ in range(n):
            if scope.budget <= 0:
                break
            scope.budget -= 1
            stmt = self.stmt(scope)
            if stmt is None:
                continue
            out.append(stmt)
            written = _written_through_pointer(stmt)
            if written is not None and self.rng.random() < 0.6:
                out.append(self._use(scope, written))  # the caller reads what was written
        return tuple(out)

    def _use(self, scope: _Scope, var: int) -> Stmt:
        """A branch or a loop on ``var``: how results come back from callees."""
        op, w64, _b, imm = self._cond()
        if self.rng.random() < 0.5 or not scope.feats.loops or scope.depth >= MAX_LOOP_DEPTH:
            return If(var, op, w64, None, self.rng.choice((imm, 0, 1, 7, 100)),
                      self.block(scope, 1))
        loop = Loop(scope.depth, False, False, "jlt", True, 0, 1, self.rng.choice((3, 7)),
                    var, True, ())
        outer = scope.depth
        scope.depth += 1
        body = self.block(scope, 1)
        scope.depth = outer
        return replace(loop, body=body)

    def var(self) -> int:
        return self.rng.randrange(NVARS)

    def stmt(self, scope: _Scope) -> Stmt | None:
        rng = self.rng
        feats = scope.feats
        choices: list[tuple[str, float]] = [("alu", 5), ("if", 3),
                                            ("atomic", 1 if feats.atomics else 0)]
        if scope.kind == "main":
            choices += [("guard", 3 if not scope.pkt_len else 1), ("ctx", 1)]
            if scope.pkt_len:
                choices += [("pktread", 4), ("pktwrite", 1.5)]
        if feats.loops and scope.depth < MAX_LOOP_DEPTH and scope.iters <= 8:
            choices.append(("loop", 2.5))
        if scope.depth:
            choices.append(("break", 1))
            if feats.loop_variants:
                choices.append(("continue", 1))
        if not scope.plain:
            if scope.kind == "main" and feats.calls:
                choices.append(("call", 1.2))
            if scope.kind in ("main", "sub") and feats.callbacks and scope.iters <= 4:
                choices += [("bpf_loop", 1.2), ("for_each", 0.5)]
            if feats.maps:
                choices += [("lookup", 1.5), ("update", 0.8)]
            if feats.globals:
                choices.append(("global", 0.8))
            if scope.kind == "main" and feats.tail_calls:
                choices.append(("tail_call", 0.8))
        if scope.kind == "main" and feats.packet_walks and scope.depth < MAX_LOOP_DEPTH \
                and scope.iters <= 4:
            choices.append(("pkt_walk", 1.5))
        names = [c for c, _ in choices]
        weights = [w for _, w in choices]
        kind = rng.choices(names, weights)[0]
        return getattr(self, "_s_" + kind)(scope)

    def _s_alu(self, scope: _Scope) -> Stmt:
        rng = self.rng
        op = rng.choice(_ALU_OPS)
        w64 = rng.random() < 0.6
        src: int | None = self.var() if rng.random() < 0.5 else None
        imm = self.imm()
        if op in ("lsh", "rsh", "arsh") and src is None:
            imm = rng.randrange(64 if w64 else 32)
        if op in ("div", "mod", "sdiv", "smod") and src is None and imm == 0:
            imm = 7
        if op == "neg":
            src, imm = None, 0
        if op == "movsx":
            src = self.var()
            imm = rng.choice((8, 16, 32) if w64 else (8, 16))
        if op in ("be", "bswap"):
            src, imm = None, rng.choice((16, 32, 64))
        return Alu(self.var(), op, w64, src, imm)

    def _cond(self) -> tuple[str, bool, int | None, int]:
        rng = self.rng
        return (rng.choice(_JMP_OPS), rng.random() < 0.6,
                self.var() if rng.random() < 0.35 else None, self.imm())

    def _s_if(self, scope: _Scope) -> Stmt:
        op, w64, b, imm = self._cond()
        body = self.block(scope, self.rng.randint(1, 3))
        other = self.block(scope, self.rng.randint(0, 2)) if self.rng.random() < 0.4 else ()
        return If(self.var(), op, w64, b, imm, body, other)

    def _s_guard(self, scope: _Scope) -> Stmt:
        length = self.rng.choice((1, 2, 4, 8, 14, 20, 34, 40, 54, 64, 100))
        outer = scope.pkt_len
        scope.pkt_len = max(outer, length)
        body = self.block(scope, self.rng.randint(1, 5))
        scope.pkt_len = outer
        return PktGuard(length, body)

    def _s_pktread(self, scope: _Scope) -> Stmt:
        size = self.rng.choice([s for s in (1, 2, 4, 8) if s <= scope.pkt_len] or [1])
        off = self.rng.randint(0, scope.pkt_len - size)
        return PktRead(self.var(), off, size, self.rng.random() < 0.3, self.rng.random() < 0.2)

    def _s_pktwrite(self, scope: _Scope) -> Stmt:
        size = self.rng.choice([s for s in (1, 2, 4, 8) if s <= scope.pkt_len] or [1])
        return PktWrite(self.var(), self.rng.randint(0, scope.pkt_len - size), size)

    def _s_ctx(self, scope: _Scope) -> Stmt:
        off, size = self.rng.choice(CTX_FIELDS[scope.prog_type])
        return CtxRead(self.var(), off, size, self.rng.random() < 0.3)

    def _s_loop(self, scope: _Scope) -> Stmt | None:
        rng = self.rng
        for _ in range(20):
            loop = self._loop_header(scope)
            if loop is not None:
                break
        else:
            return None
        trips = _max_trips(loop)
        outer = (scope.depth, scope.r9_free, scope.iters)
        scope.depth += 1
        scope.iters *= max(1, trips)
        if loop.in_reg:
            scope.r9_free = False
        body = self.block(scope, rng.randint(1, 4))
        scope.depth, scope.r9_free, scope.iters = outer
        if scope.feats.loop_variants and loop.cond != "jne" and scope.iters == 1 \
                and trips <= 8 and rng.random() < 0.5:
            # (the verifier walks every counter range a variable step makes: kept small)
            # a bigger step only ends the loop sooner (no "!=" test it could jump past)
            loop = replace(loop, extra_step_var=self.var())
        return replace(loop, body=body)

    def _loop_header(self, scope: _Scope) -> Loop | None:
        rng = self.rng
        w64 = rng.random() < 0.7
        in_reg = scope.r9_free and rng.random() < 0.4
        bottom = rng.random() < 0.4
        if rng.random() < 0.35:  # data-dependent trip count, clamped
            clamp_and = rng.random() < 0.5
            bound = rng.choice((3, 7, 15)) if clamp_and else rng.randint(1, 16)
            cond = rng.choice(("jlt", "jle") if not w64 else ("jlt", "jle", "jslt"))
            if cond == "jslt" and not clamp_and:
                return None  # a signed compare with an unsigned clamp has no lower bound
            loop = Loop(scope.depth, in_reg, bottom, cond, w64, rng.randint(0, 2),
                        rng.choice((1, 1, 1, 2, 3)), bound, self.var(), clamp_and, ())
        else:
            up = rng.random() < 0.6
            step = rng.choice((1, 1, 1, 2, 3, 4))
            if up:
                start = rng.choice((0, 0, 1, rng.randint(-10, 10)))
                cond = rng.choice(("jlt", "jle", "jne", "jslt", "jsle"))
                end = start + step * rng.randint(0, 12) + (0 if cond == "jne" else
                                                           rng.randint(0, step - 1))
            else:
                end = rng.choice((0, 1, rng.randint(-5, 5)))
                cond = rng.choice(("jgt", "jge", "jne", "jsgt", "jsge"))
                start = end + step * rng.randint(0, 12)
                step = -step
            if cond in ("jlt", "jle", "jgt", "jge") and (start < 0 or end < 0):
                return None
            loop = Loop(scope.depth, in_reg, bottom, cond, w64, start, step, end, None,
                        False, ())
        trips = _max_trips(loop)
        if trips < 0 or trips > 16 or trips * scope.iters > 24:
            return None
        return loop

    def _s_continue(self, scope: _Scope) -> Stmt:
        op, _w64, _b, imm = self._cond()
        return Continue(self.var(), op, imm)

    def _s_break(self, scope: _Scope) -> Stmt:
        op, _w64, _b, imm = self._cond()
        return Break(self.var(), op, imm)

    def _new_func(self, scope: _Scope, kind: str) -> Func:
        rng = self.rng
        self.nfuncs += 1
        name = f"f{self.nfuncs}"
        sub_scope = _Scope(scope.feats, kind, scope.prog_type, budget=rng.randint(1, 7),
                           subs=scope.subs)
        sub_scope.iters = scope.iters
        inits: list[tuple[int, str, int]] = []
        for v in range(NVARS):
            inits.append((v, INIT_CONST, self.imm()))
        if kind == "sub":
            inits[0] = (0, "arg", 0)
            inits[1] = (1, "ptr", 0)
        elif kind == "loop_cb":
            inits[0] = (0, "index", 0)
            inits[1] = (1, "ptr", 0)
        else:
            inits[0] = (0, "key", 0)
            inits[1] = (1, "ptr", 0)
            inits[2] = (2, "value", 0)
        body = self.block(sub_scope, rng.randint(1, 4))
        writes: int | None = None
        if kind == "sub" or scope.feats.callback_writes:
            writes = self.var() if rng.random() < 0.8 else None
        func = Func(name, kind, tuple(inits), body, self.var(),
                    cb_ret=int(rng.random() < 0.4), writes_ptr=writes)
        scope.subs.append(func)
        return func

    def _s_call(self, scope: _Scope) -> Stmt:
        func = self._new_func(scope, "sub")
        return Call(func.name, self.var(), self.var(), self.var())

    def _s_bpf_loop(self, scope: _Scope) -> Stmt:
        func = self._new_func(scope, "loop_cb")
        if self.rng.random() < 0.5:
            return BpfLoop(func.name, self.var(), self.rng.choice((1, 3, 7)), self.var(),
                           self.var() if self.rng.random() < 0.5 else None)
        return BpfLoop(func.name, None, self.rng.randint(0, 8), self.var(),
                       self.var() if self.rng.random() < 0.5 else None)

    def _s_for_each(self, scope: _Scope) -> Stmt:
        func = self._new_func(scope, "each_cb")
        return ForEach(func.name, self.var(), self.var() if self.rng.random() < 0.5 else None)

    def _s_lookup(self, scope: _Scope) -> Stmt:
        rng = self.rng
        name = rng.choice(tuple(MAPS))
        entries = MAPS[name][3]
        key_var: int | None = self.var() if rng.random() < 0.6 else None
        key = rng.choice((entries - 1, 0, 0)) if key_var is not None else rng.randint(0, entries)
        update = rng.choice(("", "", "store", "add", "atomic"))
        if name == "cfg":
            update = ""  # the configuration is the loader's: the program only reads it
        body = self.block(scope, rng.randint(0, 2))
        return MapLookup(name, key_var, key, self.var(), update, self.var(),
                         rng.random() < 0.3, body)

    def _s_update(self, scope: _Scope) -> Stmt:
        name = self.rng.choice(("arr", "hmap"))
        return MapUpdate(name, self.var(), MAPS[name][3] - 1 if self.rng.random() < 0.8 else 0,
                         self.var(), self.var() if self.rng.random() < 0.5 else None)

    def _s_global(self, scope: _Scope) -> Stmt:
        sections = [".data"] + ([".rodata"] if scope.feats.rodata_globals else [])
        size = self.rng.choice((1, 2, 4, 8))
        sec = self.rng.choice(sections)
        total = DATA_BYTES if sec == ".data" else RODATA_BYTES
        off = self.rng.randrange(0, total - size + 1, size)
        return GlobalRead(sec, off, size, self.var())

    def _s_pkt_walk(self, scope: _Scope) -> Stmt:
        rng = self.rng
        step = rng.choice((1, 2, 4, 8))
        tlv = step >= 2 and rng.random() < 0.5
        size = rng.choice([s for s in (1, 2, 4, 8) if s <= step])
        stop = rng.choice((0, 1, 0xFF, self.imm())) if rng.random() < 0.5 else None
        return PktWalk(scope.depth, rng.randint(1, 16), step, size, tlv, stop, self.var())

    def _s_tail_call(self, scope: _Scope) -> Stmt:
        if self.rng.random() < 0.5:
            return TailCall(self.var(), self.rng.choice((1, 3)))
        return TailCall(None, self.rng.randint(0, PROG_ARRAY_SLOTS))

    def _s_atomic(self, scope: _Scope) -> Stmt:
        rng = self.rng
        return Atomic(self.var(), self.var(), rng.choice(_ATOMIC_OPS), rng.choice((4, 8)),
                      rng.random() < 0.5, self.var())


def _written_through_pointer(stmt: Stmt) -> int | None:
    """The caller's var a call or callback helper passes by pointer."""
    if isinstance(stmt, Call):
        return stmt.ptr_var
    if isinstance(stmt, (BpfLoop, ForEach)):
        return stmt.ctx_var
    return None


def _mask(w64: bool) -> int:
    return (1 << 64) - 1 if w64 else (1 << 32) - 1


def _holds(op: str, a: int, b: int, w64: bool) -> bool:
    bits = 64 if w64 else 32
    m = _mask(w64)
    ua, ub = a & m, b & m
    sa = ua - (1 << bits) if ua >> (bits - 1) else ua
    sb = ub - (1 << bits) if ub >> (bits - 1) else ub
    return {"jeq": ua == ub, "jne": ua != ub, "jgt": ua > ub, "jge": ua >= ub, "jlt": ua < ub,
            "jle": ua <= ub, "jset": bool(ua & ub), "jsgt": sa > sb, "jsge": sa >= sb,
            "jslt": sa < sb, "jsle": sa <= sb}[op]


def _trips(loop: Loop, bound: int) -> int:
    """Body runs of ``loop`` with this bound; -1 if more than 64."""
    i = loop.start
    runs = 0
    if loop.bottom_test:
        while True:
            runs += 1
            i += loop.step
            if runs > 64:
                return -1
            if not _holds(loop.cond, i, bound, loop.w64):
                return runs
    while _holds(loop.cond, i, bound, loop.w64):
        runs += 1
        i += loop.step
        if runs > 64:
            return -1
    return runs


def _max_trips(loop: Loop) -> int:
    if loop.bound_var is None:
        return _trips(loop, loop.bound)
    worst = 0
    for bound in range(0, loop.bound + 1):
        got = _trips(loop, bound)
        if got < 0:
            return -1
        worst = max(worst, got)
    return worst


# -- code generation ----------------------------------------------------------------------
_ALU_CODE = {"add": AluOp.ADD, "sub": AluOp.SUB, "mul": AluOp.MUL, "div": AluOp.DIV,
             "mod": AluOp.MOD, "sdiv": AluOp.DIV, "smod": AluOp.MOD, "or": AluOp.OR,
             "and": AluOp.AND, "xor": AluOp.XOR, "lsh": AluOp.LSH, "rsh": AluOp.RSH,
             "arsh": AluOp.ARSH, "neg": AluOp.NEG, "mov": AluOp.MOV, "movsx": AluOp.MOV}
_JMP_CODE = {"jeq": JmpOp.JEQ, "jne": JmpOp.JNE, "jgt": JmpOp.JGT, "jge": JmpOp.JGE,
             "jlt": JmpOp.JLT, "jle": JmpOp.JLE, "jset": JmpOp.JSET, "jsgt": JmpOp.JSGT,
             "jsge": JmpOp.JSGE, "jslt": JmpOp.JSLT, "jsle": JmpOp.JSLE}
_ATOMIC_CODE = {"add": 0x00, "or": 0x40, "and": 0x50, "xor": 0xA0, "xchg": 0xE1,
                "cmpxchg": 0xF1}
FETCH = 0x01
R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)


@dataclass(frozen=True)
class Reloc:
    slot: int  # instruction index (8-byte slots) inside its function
    kind: str  # map | data | call | func_ptr
    target: str  # map name, data section, or function name
    offset: int = 0  # data: byte offset inside the section


@dataclass(frozen=True)
class CompiledFunc:
    name: str
    code: bytes
    relocs: tuple[Reloc, ...]


class _Emitter:
    """One function's instructions with symbolic labels, resolved at the end."""

    def __init__(self) -> None:
        self.items: list[tuple[str, object]] = []
        self.labels: dict[str, int] = {}
        self.slots = 0
        self.next_label = 0
        self.relocs: list[Reloc] = []

    def label(self) -> str:
        self.next_label += 1
        return f"L{self.next_label}"

    def place(self, label: str) -> None:
        self.labels[label] = self.slots

    def raw(self, code: bytes) -> None:
        self.items.append(("raw", code))
        self.slots += len(code) // 8

    def jump(self, opcode: int, dst: int, src: int, imm: int, label: str) -> None:
        self.items.append(("jmp", (opcode, dst, src, imm, label, self.slots)))
        self.slots += 1

    def reloc(self, kind: str, target: str, offset: int = 0) -> None:
        self.relocs.append(Reloc(self.slots, kind, target, offset))

    def finish(self) -> tuple[bytes, tuple[Reloc, ...]]:
        out = bytearray()
        for kind, item in self.items:
            if kind == "raw":
                assert isinstance(item, bytes)
                out += item
            else:
                opcode, dst, src, imm, label, at = item  # type: ignore[misc]
                out += bc.raw(opcode, dst, src, self.labels[label] - at - 1, imm)
        return bytes(out), tuple(self.relocs)


class _FuncCompiler:
    def __init__(self, prog: Program, func: Func, feats_writes: bool) -> None:
        self.prog = prog
        self.func = func
        self.e = _Emitter()
        self.loop_exits: list[str] = []
        self.loop_latches: list[str] = []
        self.callback_writes = feats_writes

    # helpers
    def ldv(self, reg: int, var: int) -> None:
        self.e.raw(bc.ldx(8, reg, R10, VAR_OFF[var]))

    def stv(self, var: int, reg: int) -> None:
        self.e.raw(bc.stx(8, R10, VAR_OFF[var], reg))

    def compile(self) -> CompiledFunc:
        func, e = self.func, self.e
        if func.kind == "main":
            data_off, end_off = DATA_FIELD[self.prog.prog_type]
            e.raw(bc.mov64(R6, R1))
            e.raw(bc.ldx(4, R7, R6, data_off))
            e.raw(bc.ldx(4, R8, R6, end_off))
        elif func.kind == "sub":
            e.raw(bc.mov64(R6, R1))  # the pointer into the caller's stack
            e.raw(bc.mov64(R7, R2))
        elif func.kind == "loop_cb":
            e.raw(bc.mov64(R6, R2))  # ctx
            e.raw(bc.mov64(R7, R1))  # index
        else:
            e.raw(bc.mov64(R6, R4))  # ctx
            e.raw(bc.ldx(4, R7, R2, 0))  # *key
            e.raw(bc.mov64(R8, R3))  # value
        for var, source, value in func.inits:
            if source == INIT_CONST:
                if -(1 << 31) <= value < (1 << 31):
                    e.raw(bc.st(8, R10, VAR_OFF[var], value))
                else:
                    e.raw(bc.ld_imm64(R1, value & ((1 << 64) - 1)))
                    self.stv(var, R1)
            elif source == "pktlen":
                e.raw(bc.mov64(R1, R8))
                e.raw(bc.alu64(AluOp.SUB, R1, R7))
                self.stv(var, R1)
            elif source == "ctx":
                e.raw(bc.ldx(4, R1, R6, value))
                self.stv(var, R1)
            elif source in ("arg", "index", "key"):
                self.stv(var, R7)
            elif source == "ptr":
                e.raw(bc.ldx(8, R1, R6, 0))
                self.stv(var, R1)
            elif source == "value":
                e.raw(bc.ldx(8, R1, R8, 0))
                self.stv(var, R1)
        self.block(func.body)
        if func.kind == "main":
            done = e.label()
            e.raw(bc.mov64(R1, R7))
            e.raw(bc.alu64(AluOp.ADD, R1, imm=8))
            e.jump(Cls.JMP | JmpOp.JGT | 0x08, R1, R8, 0, done)
            self.ldv(R2, 0)
            for var in range(1, NVARS):
                self.ldv(R3, var)
                e.raw(bc.alu64(AluOp.XOR, R2, R3))
            e.raw(bc.stx(8, R7, 0, R2))
            e.place(done)
            self.ldv(R0, func.ret_var)
            if self.prog.prog_type == XDP:
                e.raw(bc.alu64(AluOp.AND, R0, imm=3))  # ABORTED, DROP, PASS, TX
        elif func.kind == "sub":
            if func.writes_ptr is not None:
                self.ldv(R1, func.writes_ptr)
                e.raw(bc.stx(8, R6, 0, R1))
            self.ldv(R0, func.ret_var)
        else:
            if func.writes_ptr is not None and self.callback_writes:
                self.ldv(R1, func.writes_ptr)
                e.raw(bc.stx(8, R6, 0, R1))
                if func.kind == "each_cb":
                    e.raw(bc.stx(8, R8, 0, R1))
            if func.cb_ret:
                self.ldv(R0, func.ret_var)
                e.raw(bc.alu64(AluOp.AND, R0, imm=1))
            else:
                e.raw(bc.mov64(R0, imm=0))
        e.raw(bc.exit_())
        code, relocs = e.finish()
        return CompiledFunc(func.name, code, relocs)

    def block(self, stmts: tuple[Stmt, ...]) -> None:
        for stmt in stmts:
            getattr(self, "_c_" + type(stmt).__name__)(stmt)

    def _c_Alu(self, s: Alu) -> None:
        e = self.e
        alu = bc.alu64 if s.w64 else bc.alu32
        self.ldv(R1, s.dst)
        if s.op in ("be", "bswap"):
            if s.op == "be":
                e.raw(bc.endian_be(R1, s.imm))
            else:
                e.raw(bc.bswap(R1, s.imm))
        elif s.op == "neg":
            e.raw(bc.raw((Cls.ALU64 if s.w64 else Cls.ALU) | AluOp.NEG, R1))
        elif s.op == "movsx":
            assert s.src is not None
            self.ldv(R2, s.src)
            e.raw(alu(AluOp.MOV, R1, R2, off=s.imm))
        else:
            signed = 1 if s.op in ("sdiv", "smod") else 0
            code = _ALU_CODE[s.op]
            if s.src is None:
                e.raw(alu(code, R1, imm=s.imm, off=signed))
            else:
                self.ldv(R2, s.src)
                if s.op in ("lsh", "rsh", "arsh"):
                    e.raw(bc.alu64(AluOp.AND, R2, imm=63 if s.w64 else 31))
                e.raw(alu(code, R1, R2, off=signed))
        self.stv(s.dst, R1)

    def _cmp(self, a: int, op: str, w64: bool, b: int | None, imm: int, label: str) -> None:
        cls = Cls.JMP if w64 else Cls.JMP32
        self.ldv(R1, a)
        if b is None:
            self.e.jump(cls | _JMP_CODE[op], R1, 0, imm, label)
        else:
            self.ldv(R2, b)
            self.e.jump(cls | _JMP_CODE[op] | 0x08, R1, R2, 0, label)

    def _c_If(self, s: If) -> None:
        e = self.e
        taken, end = e.label(), e.label()
        self._cmp(s.a, s.op, s.w64, s.b, s.imm, taken)
        self.block(s.body)
        if s.other:
            e.jump(Cls.JMP | JmpOp.JA, 0, 0, 0, end)
            e.place(taken)
            self.block(s.other)
            e.place(end)
        else:
            e.place(taken)

    def _c_PktGuard(self, s: PktGuard) -> None:
        e = self.e
        skip = e.label()
        e.raw(bc.mov64(R1, R7))
        e.raw(bc.alu64(AluOp.ADD, R1, imm=s.length))
        e.jump(Cls.JMP | JmpOp.JGT | 0x08, R1, R8, 0, skip)
        self.block(s.body)
        e.place(skip)

    def _c_PktRead(self, s: PktRead) -> None:
        e = self.e
        base = R7
        if s.via_spill:
            e.raw(bc.stx(8, R10, PTR_SPILL_OFF, R7))
            e.raw(bc.ldx(8, R3, R10, PTR_SPILL_OFF))
            base = R3
        e.raw(bc.ldx(s.size, R1, base, s.off))
        if s.swap and s.size > 1:
            e.raw(bc.endian_be(R1, 8 * s.size))
        self.stv(s.dst, R1)

    def _c_PktWrite(self, s: PktWrite) -> None:
        self.ldv(R1, s.src)
        self.e.raw(bc.stx(s.size, R7, s.off, R1))

    def _c_CtxRead(self, s: CtxRead) -> None:
        e = self.e
        base = R6
        if s.via_spill:
            e.raw(bc.stx(8, R10, PTR_SPILL_OFF, R6))
            e.raw(bc.ldx(8, R3, R10, PTR_SPILL_OFF))
            base = R3
        e.raw(bc.ldx(s.size, R1, base, s.off))
        self.stv(s.dst, R1)

    def _ctr_load(self, s: Loop, reg: int) -> int:
        if s.in_reg:
            return R9
        self.e.raw(bc.ldx(8, reg, R10, CTR_OFF[s.depth]))
        return reg

    def _c_Loop(self, s: Loop) -> None:
        e = self.e
        head, exit_ = e.label(), e.label()
        cls = Cls.JMP if s.w64 else Cls.JMP32
        if s.bound_var is not None:
            self.ldv(R1, s.bound_var)
            if s.clamp_and:
                e.raw(bc.alu64(AluOp.AND, R1, imm=s.bound))
            else:
                ok = e.label()
                e.jump(Cls.JMP | JmpOp.JLE, R1, 0, s.bound, ok)
                e.raw(bc.mov64(R1, imm=s.bound))
                e.place(ok)
            e.raw(bc.stx(8, R10, BOUND_OFF[s.depth], R1))
        if s.in_reg:
            e.raw(bc.mov64(R9, imm=s.start))
        else:
            e.raw(bc.st(8, R10, CTR_OFF[s.depth], s.start))

        def test(op: str, label: str) -> None:
            reg = self._ctr_load(s, R1)
            if s.bound_var is None:
                e.jump(cls | _JMP_CODE[op], reg, 0, s.bound, label)
            else:
                e.raw(bc.ldx(8, R2, R10, BOUND_OFF[s.depth]))
                e.jump(cls | _JMP_CODE[op] | 0x08, reg, R2, 0, label)

        latch = e.label()

        def step() -> None:
            e.place(latch)
            extra = AluOp.ADD if s.step > 0 else AluOp.SUB
            if s.extra_step_var is not None:
                self.ldv(R2, s.extra_step_var)
                e.raw(bc.alu64(AluOp.AND, R2, imm=3))
            if s.in_reg:
                e.raw(bc.alu64(AluOp.ADD, R9, imm=s.step))
                if s.extra_step_var is not None:
                    e.raw(bc.alu64(extra, R9, R2))
            else:
                e.raw(bc.ldx(8, R1, R10, CTR_OFF[s.depth]))
                e.raw(bc.alu64(AluOp.ADD, R1, imm=s.step))
                if s.extra_step_var is not None:
                    e.raw(bc.alu64(extra, R1, R2))
                e.raw(bc.stx(8, R10, CTR_OFF[s.depth], R1))

        self.loop_exits.append(exit_)
        self.loop_latches.append(latch)
        e.place(head)
        if s.bottom_test:
            self.block(s.body)
            step()
            test(s.cond, head)
        else:
            body = e.label()
            test(s.cond, body)
            e.jump(Cls.JMP | JmpOp.JA, 0, 0, 0, exit_)
            e.place(body)
            self.block(s.body)
            step()
            e.jump(Cls.JMP | JmpOp.JA, 0, 0, 0, head)
        e.place(exit_)
        self.loop_exits.pop()
        self.loop_latches.pop()

    def _c_Continue(self, s: Continue) -> None:
        if self.loop_latches:
            self._cmp(s.a, s.op, True, None, s.imm, self.loop_latches[-1])

    def _c_Break(self, s: Break) -> None:
        if self.loop_exits:
            self._cmp(s.a, s.op, True, None, s.imm, self.loop_exits[-1])

    def _c_Call(self, s: Call) -> None:
        e = self.e
        e.raw(bc.mov64(R1, R10))
        e.raw(bc.alu64(AluOp.ADD, R1, imm=VAR_OFF[s.ptr_var]))
        self.ldv(R2, s.arg_var)
        e.reloc("call", s.func)
        e.raw(bc.raw(Cls.JMP | JmpOp.CALL, 0, 1, 0, -1))
        self.stv(s.ret_var, R0)

    def _ctx_arg(self, reg: int, var: int) -> None:
        self.e.raw(bc.mov64(reg, R10))
        self.e.raw(bc.alu64(AluOp.ADD, reg, imm=VAR_OFF[var]))

    def _func_ptr(self, reg: int, name: str) -> None:
        self.e.reloc("func_ptr", name)
        self.e.raw(bc.ld_imm64(reg, 0, src=4))

    def _map_ptr(self, reg: int, name: str) -> None:
        self.e.reloc("map", name)
        self.e.raw(bc.ld_imm64(reg, 0, src=1))

    def _c_BpfLoop(self, s: BpfLoop) -> None:
        e = self.e
        if s.n_var is None:
            e.raw(bc.mov64(R1, imm=s.n))
        else:
            self.ldv(R1, s.n_var)
            e.raw(bc.alu64(AluOp.AND, R1, imm=s.n))
        self._func_ptr(R2, s.func)
        self._ctx_arg(R3, s.ctx_var)
        e.raw(bc.mov64(R4, imm=0))
        e.raw(bc.call_helper(HELPER_LOOP))
        if s.ret_var is not None:
            self.stv(s.ret_var, R0)

    def _c_ForEach(self, s: ForEach) -> None:
        e = self.e
        self._map_ptr(R1, "arr")
        self._func_ptr(R2, s.func)
        self._ctx_arg(R3, s.ctx_var)
        e.raw(bc.mov64(R4, imm=0))
        e.raw(bc.call_helper(HELPER_FOR_EACH))
        if s.ret_var is not None:
            self.stv(s.ret_var, R0)

    def _key(self, key_var: int | None, key: int) -> None:
        e = self.e
        if key_var is None:
            e.raw(bc.st(4, R10, KEY_OFF, key))
            return
        self.ldv(R1, key_var)
        if key:
            e.raw(bc.alu64(AluOp.AND, R1, imm=key))
        e.raw(bc.stx(4, R10, KEY_OFF, R1))

    def _c_MapLookup(self, s: MapLookup) -> None:
        e = self.e
        miss = e.label()
        self._key(s.key_var, s.key)
        self._map_ptr(R1, s.map)
        e.raw(bc.mov64(R2, R10))
        e.raw(bc.alu64(AluOp.ADD, R2, imm=KEY_OFF))
        e.raw(bc.call_helper(HELPER_MAP_LOOKUP))
        e.jump(Cls.JMP | JmpOp.JEQ, R0, 0, 0, miss)
        value = R0
        if s.spill:
            e.raw(bc.stx(8, R10, PTR_SPILL_OFF, R0))
            e.raw(bc.ldx(8, R3, R10, PTR_SPILL_OFF))
            value = R3
        e.raw(bc.ldx(8, R1, value, 0))
        self.stv(s.dst, R1)
        if s.update == "store":
            self.ldv(R2, s.src)
            e.raw(bc.stx(8, value, 0, R2))
        elif s.update == "add":
            self.ldv(R2, s.src)
            e.raw(bc.alu64(AluOp.ADD, R2, R1))
            e.raw(bc.stx(8, value, 0, R2))
        elif s.update == "atomic":
            self.ldv(R2, s.src)
            e.raw(bc.atomic(8, value, 0, R2, 0x00))
        self.block(s.body)
        e.place(miss)

    def _c_MapUpdate(self, s: MapUpdate) -> None:
        e = self.e
        self._key(s.key_var, s.mask)
        self.ldv(R1, s.val_var)
        e.raw(bc.stx(8, R10, VALUE_OFF, R1))
        self._map_ptr(R1, s.map)
        e.raw(bc.mov64(R2, R10))
        e.raw(bc.alu64(AluOp.ADD, R2, imm=KEY_OFF))
        e.raw(bc.mov64(R3, R10))
        e.raw(bc.alu64(AluOp.ADD, R3, imm=VALUE_OFF))
        e.raw(bc.mov64(R4, imm=0))
        e.raw(bc.call_helper(HELPER_MAP_UPDATE))
        if s.ret_var is not None:
            self.stv(s.ret_var, R0)

    def _c_GlobalRead(self, s: GlobalRead) -> None:
        e = self.e
        e.reloc("data", s.section, s.off)
        e.raw(bc.ld_imm64(R1, 0, src=2))
        e.raw(bc.ldx(s.size, R2, R1, 0))
        self.stv(s.dst, R2)

    def _c_PktWalk(self, s: PktWalk) -> None:
        """r3 is the cursor (kept in the pointer spill slot across rounds)."""
        e = self.e
        head, exit_ = e.label(), e.label()
        e.raw(bc.stx(8, R10, PTR_SPILL_OFF, R7))
        e.raw(bc.st(8, R10, CTR_OFF[s.depth], 0))
        e.place(head)
        e.raw(bc.ldx(8, R1, R10, CTR_OFF[s.depth]))
        e.jump(Cls.JMP | JmpOp.JGE, R1, 0, s.limit, exit_)
        e.raw(bc.alu64(AluOp.ADD, R1, imm=1))
        e.raw(bc.stx(8, R10, CTR_OFF[s.depth], R1))
        e.raw(bc.ldx(8, R3, R10, PTR_SPILL_OFF))
        e.raw(bc.mov64(R4, R3))
        e.raw(bc.alu64(AluOp.ADD, R4, imm=s.step))
        e.jump(Cls.JMP | JmpOp.JGT | 0x08, R4, R8, 0, exit_)
        e.raw(bc.ldx(s.size, R2, R3, 0))
        if s.stop is not None:
            e.jump(Cls.JMP | JmpOp.JEQ, R2, 0, s.stop & ((1 << (8 * s.size)) - 1)
                   if s.size < 4 else s.stop, exit_)
        self.ldv(R1, s.dst)
        e.raw(bc.alu64(AluOp.ADD, R1, R2))
        self.stv(s.dst, R1)
        if s.tlv:  # step >= 2: the length byte at cursor + 1 was proved in range
            e.raw(bc.ldx(1, R2, R3, 1))
            e.raw(bc.alu64(AluOp.AND, R2, imm=7))
            e.raw(bc.alu64(AluOp.ADD, R4, R2))
        e.raw(bc.stx(8, R10, PTR_SPILL_OFF, R4))
        e.jump(Cls.JMP | JmpOp.JA, 0, 0, 0, head)
        e.place(exit_)

    def _c_TailCall(self, s: TailCall) -> None:
        e = self.e
        if s.index_var is None:
            e.raw(bc.mov64(R3, imm=s.index))
        else:
            self.ldv(R3, s.index_var)
            e.raw(bc.alu64(AluOp.AND, R3, imm=s.index))
        e.raw(bc.mov64(R1, R6))
        self._map_ptr(R2, PROG_ARRAY)
        e.raw(bc.call_helper(HELPER_TAIL_CALL))

    def _c_Atomic(self, s: Atomic) -> None:
        e = self.e
        code = _ATOMIC_CODE[s.op]
        if s.fetch and s.op not in ("xchg", "cmpxchg"):
            code |= FETCH
        if s.op == "cmpxchg":
            self.ldv(R0, s.dst)
        self.ldv(R2, s.src)
        e.raw(bc.raw(Cls.STX | Mode.ATOMIC | (Size.DW if s.size == 8 else Size.W), R10, R2,
                     VAR_OFF[s.var], code))
        if s.op == "cmpxchg":
            self.stv(s.dst, R0)
        elif code & FETCH:
            self.stv(s.dst, R2)


def compile_program(prog: Program, feats: Features) -> tuple[CompiledFunc, ...]:
    return tuple(_FuncCompiler(prog, func, feats.callback_writes).compile()
                 for func in prog.funcs)


def compile_targets(prog: Program, feats: Features) -> tuple[CompiledFunc, ...]:
    return tuple(_FuncCompiler(prog, func, feats.callback_writes).compile()
                 for func in prog.targets)


def generate(seed: int, feats: Features | None = None) -> Program:
    return Generator(seed, feats).program()


# -- what inputs should aim at -------------------------------------------------------------
def constants(prog: Program) -> list[int]:
    """Compare constants and guard lengths: values inputs should hit and miss by one."""
    out: set[int] = set()

    def walk(stmts: tuple[Stmt, ...]) -> None:
        for s in stmts:
            if isinstance(s, If):
                out.update((s.imm, s.imm + 1, s.imm - 1))
                walk(s.body)
                walk(s.other)
            elif isinstance(s, Break):
                out.update((s.imm, s.imm + 1, s.imm - 1))
            elif isinstance(s, PktGuard):
                out.update((s.length, s.length - 1))
                walk(s.body)
            elif isinstance(s, Loop):
                out.update((s.bound, s.bound + 1))
                walk(s.body)
            elif isinstance(s, MapLookup):
                walk(s.body)

    for func in prog.funcs:
        walk(func.body)
    return sorted(out)

"""Reference interpreter: run one program of a BpfObject on a concrete input and
count the BPF instructions it executes, per the counting contract of design.md.

It is the ground truth the cost engine's [min, max] is tested against, so it
follows the kernel's run-time semantics (RFC 9669 plus the kernel's rules for
helpers, tail calls, iterators and may_goto) and models everything outside the
program -- map contents, helper results, callback rounds -- as choices of a
:class:`World`, which tests draw with hypothesis or build by hand.

Counting contract (design.md, "What the cost means"):
  * every executed instruction counts 1, a 16-byte ld_imm64 included;
  * a helper or kfunc call counts 1 (its own work is not instructions);
  * a bpf-to-bpf call counts 1 plus everything the callee executes, its exit too;
  * a callback run by a helper counts its instructions on every round;
  * a tail call counts 1 and the count continues in the target program.

Memory is a set of regions (context, packet, one stack per frame, map values,
global data, ring-buffer records, ...). A pointer is ``region_id << 32 | offset``,
so pointer arithmetic is plain integer arithmetic and a stray access lands
outside every region and raises :class:`InterpError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from bpflint.isa.helper_ids import HELPER_NAMES
from bpflint.isa.insn import Insn
from bpflint.isa.opcodes import (
    ATOMIC_CMPXCHG,
    ATOMIC_FETCH,
    ATOMIC_LOAD_ACQ,
    ATOMIC_STORE_REL,
    ATOMIC_XCHG,
    AluOp,
    Cls,
    JmpOp,
    Mode,
)
from bpflint.obj.model import BpfObject, FuncKey, Function, MapDef, Program

MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1
STACK_BYTES = 512
MAX_TAIL_CALLS = 33  # MAX_TAIL_CALL_CNT
BPF_MAX_LOOPS = 1 << 23  # bpf_loop's nr_loops limit and bpf_iter_num's range limit
MAX_USER_RINGBUF_SAMPLES = 128 * 1024  # BPF_MAX_USER_RINGBUF_SAMPLES
MAY_GOTO_BUDGET = 1 << 23  # BPF_MAX_LOOPS: may_goto rounds per frame before it jumps
DEFAULT_STEP_CAP = 20_000_000
MAX_CALL_DEPTH = 8  # MAX_CALL_FRAMES
PACKET_HEADROOM = 256  # XDP_PACKET_HEADROOM: bytes of the packet's region before data

EINVAL = 22
ENOENT = 2
EFAULT = 14
E2BIG = 7
EAGAIN = 11
EEXIST = 17

# Context fields the kernel rewrites into packet pointers: offset -> which pointer.
XDP_PTR_FIELDS = {0: "data", 4: "data_end", 8: "data"}  # data, data_end, data_meta
SKB_PTR_FIELDS = {76: "data", 80: "data_end", 140: "data"}  # __sk_buff data, data_end, data_meta
SKB_TYPES = frozenset({"socket_filter", "sched_cls", "sched_act", "cgroup_skb", "sk_skb",
                        "lwt_in", "lwt_out", "lwt_xmit", "lwt_seg6local"})

ARRAY_TYPES = frozenset({"array", "percpu_array", "cgroup_array", "prog_array",
                          "perf_event_array", "array_of_maps"})

# Plain ints: enum members cost an attribute lookup on every instruction run.
_ALUOP_ADD = int(AluOp.ADD)
_ALUOP_AND = int(AluOp.AND)
_ALUOP_ARSH = int(AluOp.ARSH)
_ALUOP_DIV = int(AluOp.DIV)
_ALUOP_END = int(AluOp.END)
_ALUOP_LSH = int(AluOp.LSH)
_ALUOP_MOD = int(AluOp.MOD)
_ALUOP_MOV = int(AluOp.MOV)
_ALUOP_MUL = int(AluOp.MUL)
_ALUOP_NEG = int(AluOp.NEG)
_ALUOP_OR = int(AluOp.OR)
_ALUOP_RSH = int(AluOp.RSH)
_ALUOP_SUB = int(AluOp.SUB)
_ALUOP_XOR = int(AluOp.XOR)
_CLS_ALU = int(Cls.ALU)
_CLS_ALU64 = int(Cls.ALU64)
_CLS_JMP = int(Cls.JMP)
_CLS_JMP32 = int(Cls.JMP32)
_CLS_LD = int(Cls.LD)
_CLS_LDX = int(Cls.LDX)
_CLS_ST = int(Cls.ST)
_JMPOP_CALL = int(JmpOp.CALL)
_JMPOP_EXIT = int(JmpOp.EXIT)
_JMPOP_JA = int(JmpOp.JA)
_JMPOP_JCOND = int(JmpOp.JCOND)
_JMPOP_JEQ = int(JmpOp.JEQ)
_JMPOP_JGE = int(JmpOp.JGE)
_JMPOP_JGT = int(JmpOp.JGT)
_JMPOP_JLE = int(JmpOp.JLE)
_JMPOP_JLT = int(JmpOp.JLT)
_JMPOP_JNE = int(JmpOp.JNE)
_JMPOP_JSET = int(JmpOp.JSET)
_JMPOP_JSGE = int(JmpOp.JSGE)
_JMPOP_JSGT = int(JmpOp.JSGT)
_JMPOP_JSLE = int(JmpOp.JSLE)
_JMPOP_JSLT = int(JmpOp.JSLT)
_MODE_IND = int(Mode.IND)
_MODE_MEM = int(Mode.MEM)
_MODE_MEMSX = int(Mode.MEMSX)


class InterpError(Exception):
    """The program did something the model cannot run (or the kernel would refuse)."""


class StepCapExceeded(InterpError):
    """More instructions than the step cap: the run is abandoned, not counted."""


@dataclass(frozen=True)
class World:
    """Everything outside the program, as choices a test makes.

    Sequences are consumed one element per use; the last element repeats.
    """

    lookup_hits: tuple[bool, ...] = (True,)  # hash-like map lookups of absent keys
    array_lookup_null: bool = False  # array lookups of keys > 0 may return NULL (a shrunk map)
    value_fill: int = 0  # byte every fresh map value / read buffer starts with
    update_results: tuple[int, ...] = (0,)  # map update/delete return values (0 or -errno)
    reads_fail: bool = False  # probe_read*, get_current_comm fail with -EFAULT
    # probe_read_kernel{,_str} of memory the run can see (a map value, the stack) copy
    # it, as the kernel does; other sources follow reads_fail and value_fill
    reads_real: bool = False
    ringbuf_full: bool = False  # ringbuf_reserve -> NULL, *_output -> -EAGAIN
    scalars: tuple[int, ...] = (0,)  # ktime / prandom / pid_tgid / uid_gid / cpu results
    callback_rounds: tuple[int, ...] = (0,)  # user_ringbuf_drain samples, find_vma hit (>0)
    sample: bytes = bytes(8)  # each user ring buffer sample's contents
    hash_elems: int = 0  # elements present when for_each_map_elem walks a hash map
    tail_call_fails: bool = False  # every tail call falls through (slot emptied at run time)
    # elements present before the run, as user space put them: (map name, key, value)
    map_contents: tuple[tuple[str, bytes, bytes], ...] = ()
    # the first bytes of each map value the run finds fresh (a lookup hit of an absent
    # key, an array element not yet used), in the order the run meets them; missing
    # elements and bytes are value_fill
    values: tuple[bytes, ...] = ()
    # writable global data (.data, .bss, ...) as user space left it before the run:
    # (section, its first bytes); the rest keeps the object's bytes
    globals: tuple[tuple[str, bytes], ...] = ()
    # loader-set (const volatile) variables as a loader sets them before load: (name,
    # value); an array variable gets the value in every element; __kconfig externs too
    rodata: tuple[tuple[str, int], ...] = ()


def _with_rodata(mdef: MapDef, values: tuple[tuple[str, int], ...]) -> bytes:
    """A global-data section's bytes with the loader's settings written in."""
    data = bytearray(mdef.data)
    for name, value in values:
        for var in mdef.loader_vars:
            if var.name == name:
                width = var.elem_size or var.size
                word = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
                data[var.offset:var.offset + var.size] = word * (var.size // width)
    return bytes(data)


@dataclass(frozen=True)
class Input:
    """One concrete run: context bytes, packet, pointer fields of the context, world.

    ctx_pointers: (ctx offset, bytes of a region to point at, or None for NULL) --
    for contexts holding kernel pointers (iterators' meta and task, ...).
    """

    ctx: bytes = b""
    packet: bytes = b""
    ctx_pointers: tuple[tuple[int, bytes | None], ...] = ()
    world: World = World()


@dataclass
class _Region:
    name: str
    data: bytearray
    writable: bool = True
    ptr_fields: dict[int, int] = field(default_factory=dict)  # offset -> 64-bit pointer


class _Choices:
    """Sequential consumption of one World sequence; the last element repeats."""

    def __init__(self, values: tuple[int, ...] | tuple[bool, ...]) -> None:
        self._values = values
        self._next = 0

    def take(self) -> int:
        if not self._values:
            return 0
        value = self._values[min(self._next, len(self._values) - 1)]
        self._next += 1
        return int(value)


class _TailCall(Exception):
    def __init__(self, program: Program, ctx: int) -> None:
        super().__init__(program.name)
        self.program = program
        self.ctx = ctx


class _LdAbsAbort(Exception):
    """LD_ABS/LD_IND out of the packet: the kernel ends the program with r0 = 0."""


def _s64(value: int) -> int:
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


def entries(mdef: MapDef) -> int:
    """A map's max_entries; 0 in the object means user space sets it before load (an
    array per CPU sized to nr_cpus, ...), and any index may then be in range."""
    return mdef.max_entries or 1 << 32


def s32(value: int) -> int:
    value &= MASK32
    return value - (1 << 32) if value >> 31 else value


def _sext(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _trunc_div(a: int, b: int) -> int:
    """C division: the quotient rounds toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _trunc_mod(a: int, b: int) -> int:
    """C remainder: the sign follows the dividend."""
    return a - b * _trunc_div(a, b)


class Interpreter:
    """One run of one program. Use :func:`run`."""

    def __init__(self, obj: BpfObject, inp: Input, step_cap: int = DEFAULT_STEP_CAP,
                 may_goto_budget: int = MAY_GOTO_BUDGET) -> None:
        self.obj = obj
        self.world = inp.world
        self.inp = inp
        self.step_cap = step_cap
        self.may_goto_budget = may_goto_budget
        self.count = 0
        self.tail_calls = 0
        self.depth = 0
        self._regions: dict[int, _Region] = {}
        self._next_region = 1
        self._funcs_by_addr: dict[int, FuncKey] = {}
        self._func_addr: dict[FuncKey, int] = {}
        self._map_by_addr: dict[int, MapDef] = {}
        self._map_addr: dict[str, int] = {}
        self._map_store: dict[str, dict[bytes, int]] = {}  # map -> key -> value pointer
        self._deleted: set[tuple[str, bytes]] = set()  # (map, key) deleted by the run
        self._data_addr: dict[str, int] = {}
        self._extern_addr: dict[str, int] = {}
        self._pc_index: dict[FuncKey, dict[int, int]] = {}
        self._lookups = _Choices(self.world.lookup_hits)
        self._updates = _Choices(self.world.update_results)
        self._scalars = _Choices(self.world.scalars)
        self._rounds = _Choices(self.world.callback_rounds)
        self._task = 0
        self.bit_iters: dict[int, list[int]] = {}  # bpf_iter_bits at an address -> bits left
        self.packet = 0
        self.packet_end = 0
        self._fresh: dict[int, int] = {}  # region id of a fresh map value -> its ordinal
        for name, key, value in self.world.map_contents:
            self._map_store.setdefault(name, {})[key] = self.alloc(f"value of {name}", value)

    # -- regions ------------------------------------------------------------
    def alloc(self, name: str, data: bytes | bytearray, writable: bool = True) -> int:
        rid = self._next_region
        self._next_region += 1
        self._regions[rid] = _Region(name, bytearray(data), writable)
        return rid << 32

    def _region(self, addr: int, size: int) -> tuple[_Region, int]:
        region = self._regions.get(addr >> 32)
        off = addr & MASK32
        if region is None or off + size > len(region.data):
            where = region.name if region else "no region"
            raise InterpError(f"access of {size} bytes at {addr:#x} outside memory ({where})")
        return region, off

    def load(self, addr: int, size: int) -> int:
        region, off = self._region(addr, size)
        if off in region.ptr_fields:
            return region.ptr_fields[off]
        return int.from_bytes(region.data[off:off + size], "little")

    def store(self, addr: int, size: int, value: int) -> None:
        region, off = self._region(addr, size)
        if not region.writable:
            raise InterpError(f"store into read-only {region.name}")
        region.data[off:off + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")

    def read_bytes(self, addr: int, size: int) -> bytes:
        region, off = self._region(addr, size)
        return bytes(region.data[off:off + size])

    def write_bytes(self, addr: int, data: bytes) -> None:
        region, off = self._region(addr, len(data))
        if not region.writable:
            raise InterpError(f"store into read-only {region.name}")
        region.data[off:off + len(data)] = data

    # -- symbols ------------------------------------------------------------
    def func_addr(self, key: FuncKey) -> int:
        if key not in self._func_addr:
            addr = self.alloc(f"func {key}", b"", writable=False)
            self._func_addr[key] = addr
            self._funcs_by_addr[addr] = key
        return self._func_addr[key]

    def map_addr(self, name: str) -> int:
        if name not in self._map_addr:
            if name not in self.obj.maps:
                raise InterpError(f"reference to unknown map {name}")
            addr = self.alloc(f"map {name}", b"", writable=False)
            self._map_addr[name] = addr
            self._map_by_addr[addr] = self.obj.maps[name]
        return self._map_addr[name]

    def map_of(self, addr: int) -> MapDef:
        if addr not in self._map_by_addr:
            raise InterpError(f"helper given {addr:#x}, which is not a map")
        return self._map_by_addr[addr]

    def data_addr(self, section: str) -> int:
        if section not in self._data_addr:
            mdef = self.obj.maps.get(section)
            if mdef is None:
                raise InterpError(f"reference to unknown data section {section}")
            size = max(mdef.value_size, len(mdef.data))
            content = _with_rodata(mdef, self.world.rodata).ljust(size, b"\0")
            given = dict(self.world.globals).get(section, b"")[:size]
            if given and not mdef.read_only:
                content = given + content[len(given):]
            self._data_addr[section] = self.alloc(section, content, writable=not mdef.read_only)
        return self._data_addr[section]

    def task(self) -> int:
        if not self._task:
            self._task = self.alloc("task_struct", bytes(8192), writable=False)
        return self._task

    # -- map model ------------------------------------------------------------
    def map_value(self, mdef: MapDef, key: bytes, create: bool) -> int:
        store = self._map_store.setdefault(mdef.name, {})
        if key not in store and create:
            store[key] = self.fresh_region(f"value of {mdef.name}", mdef.value_size,
                                           self.world.value_fill)
            self._deleted.discard((mdef.name, key))
        return store.get(key, 0)

    def fresh_region(self, name: str, size: int, fill: int = 0) -> int:
        """A new object whose first bytes the world gives (World.values, in the order
        the run creates them; ``fill`` elsewhere): a map value, a found socket."""
        n = len(self._fresh)
        given = self.world.values[n] if n < len(self.world.values) else b""
        addr = self.alloc(name, given[:size] + bytes([fill]) * max(0, size - len(given)))
        self._fresh[addr >> 32] = n
        return addr

    @property
    def fresh_values(self) -> int:
        """How many fresh map values the run has created so far."""
        return len(self._fresh)

    def fresh_ordinal(self, addr: int) -> int | None:
        """Which fresh map value (World.values index) ``addr`` points into, if any."""
        return self._fresh.get(addr >> 32)

    def hash_elements(self, mdef: MapDef) -> list[bytes]:
        """The keys a hash map holds when bpf_for_each_map_elem starts its walk: what
        the world put there and the run added (in that order: the kernel's bucket
        order differs, so a callback whose work depends on the order is not
        modelled), then, up to World.hash_elems, keys 0, 1, ... not among them;
        never more than max_entries."""
        keys = list(self._map_store.get(mdef.name, {}))
        wanted = min(max(self.world.hash_elems, len(keys)), mdef.max_entries)
        i = 0
        while len(keys) < wanted:
            key = i.to_bytes(mdef.key_size, "little")
            if key not in keys and (mdef.name, key) not in self._deleted:
                keys.append(key)
            i += 1
        return keys[:mdef.max_entries]

    def holds(self, mdef: MapDef, key: bytes) -> bool:
        """Whether a key a walk listed is still there (not deleted since)."""
        return (mdef.name, key) not in self._deleted

    def delete(self, mdef: MapDef, key: bytes) -> None:
        self._map_store.get(mdef.name, {}).pop(key, None)
        self._deleted.add((mdef.name, key))

    def lookup(self, mdef: MapDef, key: bytes) -> int:
        if mdef.type_name in ARRAY_TYPES:
            index = int.from_bytes(key[:4], "little")
            if index >= entries(mdef):
                return 0
            # key 0 always exists (an array has one entry at least, whatever size a
            # loader sets): the flag models a loader shrinking max_entries below a key
            if self.world.array_lookup_null and index and not self._lookups.take():
                return 0
            return self.map_value(mdef, key, create=True)
        store = self._map_store.setdefault(mdef.name, {})
        if key in store:
            return store[key]
        if not self._lookups.take():
            return 0
        return self.map_value(mdef, key, create=True)

    def next_hit(self) -> bool:
        """The next lookup_hits choice (a lookup of something absent: hit or miss)."""
        return bool(self._lookups.take())

    def next_scalar(self) -> int:
        return self._scalars.take() & MASK64

    def next_rounds(self) -> int:
        return max(0, self._rounds.take())

    def next_update_result(self) -> int:
        return self._updates.take() & MASK64

    def consumed(self) -> dict[str, int]:
        """How many elements of each World sequence the run has taken so far: lookup
        hits ("hit"), scalars, update results ("update") and callback rounds."""
        return {"hit": self._lookups._next, "scalar": self._scalars._next,
                "update": self._updates._next, "rounds": self._rounds._next}

    def region_name(self, addr: int) -> str | None:
        """The name of the region ``addr`` points into ("packet", "value of NAME", ...)."""
        region = self._regions.get(addr >> 32)
        return None if region is None else region.name

    # -- execution ------------------------------------------------------------
    def tick(self, n: int = 1) -> None:
        self.count += n
        if self.count > self.step_cap:
            raise StepCapExceeded(f"step cap of {self.step_cap} instructions exceeded")

    def function(self, key: FuncKey) -> Function:
        func = self.obj.functions.get(key)
        if func is None:
            raise InterpError(f"call of unknown function {key}")
        return func

    def call_function(self, key: FuncKey, args: tuple[int, ...]) -> int:
        """Run a function in a new frame (a bpf-to-bpf call or a callback); return r0."""
        if self.depth >= MAX_CALL_DEPTH:
            raise InterpError(f"call depth above {MAX_CALL_DEPTH}")
        self.depth += 1
        func = self.function(key)
        try:
            while True:
                try:
                    return self._run_frame(func, args)
                except _TailCall as jump:
                    # the target replaces this frame: its exit returns to our caller
                    func, args = self.function(jump.program.entry), (jump.ctx,)
        finally:
            self.depth -= 1

    def _run_frame(self, func: Function, args: tuple[int, ...]) -> int:
        regs = [0] * 11
        for i, value in enumerate(args[:5]):
            regs[i + 1] = value & MASK64
        stack = self.alloc(f"stack of {func.name}", bytes(STACK_BYTES))
        regs[10] = stack + STACK_BYTES
        index = self._pc_index.get(func.key)
        if index is None:
            index = {insn.pc: i for i, insn in enumerate(func.insns)}
            self._pc_index[func.key] = index
        insns = func.insns
        may_goto_left = self.may_goto_budget
        i = 0
        while True:
            if i >= len(insns):
                raise InterpError(f"{func.name}: fell off the end of the function")
            insn = insns[i]
            self.count += 1
            if self.count > self.step_cap:
                raise StepCapExceeded(f"step cap of {self.step_cap} instructions exceeded")
            cls = insn.opcode & 0x07
            if cls == _CLS_ALU64 or cls == _CLS_ALU:
                self._alu(insn, regs)
                i += 1
                continue
            if cls == _CLS_JMP or cls == _CLS_JMP32:
                op = insn.opcode & 0xF0
                if op == _JMPOP_EXIT:
                    self._jump(insn)
                    return regs[0]
                if op == _JMPOP_CALL:
                    self._call(insn, regs)
                    i += 1
                    continue
                if op == _JMPOP_JCOND:  # may_goto
                    if may_goto_left == 0:
                        i = index[insn.jump_target]
                    else:
                        may_goto_left -= 1
                        i += 1
                    continue
                if op == _JMPOP_JA:
                    self._jump(insn)
                    i = index[insn.jump_target]
                    continue
                if self._cond(insn, regs):
                    i = index[insn.jump_target]
                else:
                    i += 1
                continue
            if cls == _CLS_LD:
                if insn.is_ld_imm64:
                    regs[insn.dst] = self._ld_imm64(insn)
                else:
                    self._ld_abs(insn, regs)
                i += 1
                continue
            self._mem(insn, regs)
            i += 1

    # -- instruction classes ------------------------------------------------------
    def _jump(self, insn: Insn) -> None:
        """A ``ja`` or ``exit``: nothing to compute (a hook for tracing runs)."""

    def _alu(self, insn: Insn, regs: list[int]) -> None:
        op = insn.opcode
        is64 = (op & 0x07) == _CLS_ALU64
        aop = op & 0xF0
        dst = regs[insn.dst]
        if aop == _ALUOP_END:
            regs[insn.dst] = _byteswap(dst, insn.imm, to_be=bool(op & 0x08), always=is64)
            return
        src = regs[insn.src] if op & 0x08 else insn.imm & MASK64
        bits = 64 if is64 else 32
        mask = MASK64 if is64 else MASK32
        a, b = dst & mask, src & mask
        if aop == _ALUOP_ADD:
            r = a + b
        elif aop == _ALUOP_SUB:
            r = a - b
        elif aop == _ALUOP_MUL:
            r = a * b
        elif aop == _ALUOP_DIV:
            if insn.off == 1:  # sdiv: x / 0 = 0; INT_MIN / -1 wraps to INT_MIN
                sa, sb = _sext(a, bits), _sext(b, bits)
                r = 0 if sb == 0 else _trunc_div(sa, sb)
            else:
                r = 0 if b == 0 else a // b
        elif aop == _ALUOP_MOD:
            if insn.off == 1:  # smod: x % 0 = x; the sign follows the dividend
                sa, sb = _sext(a, bits), _sext(b, bits)
                r = sa if sb == 0 else _trunc_mod(sa, sb)
            else:
                r = a if b == 0 else a % b
        elif aop == _ALUOP_OR:
            r = a | b
        elif aop == _ALUOP_AND:
            r = a & b
        elif aop == _ALUOP_XOR:
            r = a ^ b
        elif aop == _ALUOP_LSH:
            r = a << (b & (bits - 1))
        elif aop == _ALUOP_RSH:
            r = a >> (b & (bits - 1))
        elif aop == _ALUOP_ARSH:
            r = _sext(a, bits) >> (b & (bits - 1))
        elif aop == _ALUOP_NEG:
            r = -a
        elif aop == _ALUOP_MOV:
            r = _sext(b, insn.off) if insn.off else b  # movsx: off is the source width
        else:
            raise InterpError(f"pc {insn.pc}: unknown ALU opcode {op:#04x}")
        regs[insn.dst] = r & mask  # ALU32 results are zero-extended

    def _cond(self, insn: Insn, regs: list[int]) -> bool:
        op = insn.opcode
        is32 = (op & 0x07) == _CLS_JMP32
        mask = MASK32 if is32 else MASK64
        bits = 32 if is32 else 64
        a = regs[insn.dst] & mask
        b = (regs[insn.src] if op & 0x08 else insn.imm & MASK64) & mask
        jop = op & 0xF0
        if jop == _JMPOP_JEQ:
            return a == b
        if jop == _JMPOP_JNE:
            return a != b
        if jop == _JMPOP_JGT:
            return a > b
        if jop == _JMPOP_JGE:
            return a >= b
        if jop == _JMPOP_JLT:
            return a < b
        if jop == _JMPOP_JLE:
            return a <= b
        if jop == _JMPOP_JSET:
            return (a & b) != 0
        sa, sb = _sext(a, bits), _sext(b, bits)
        if jop == _JMPOP_JSGT:
            return sa > sb
        if jop == _JMPOP_JSGE:
            return sa >= sb
        if jop == _JMPOP_JSLT:
            return sa < sb
        if jop == _JMPOP_JSLE:
            return sa <= sb
        raise InterpError(f"pc {insn.pc}: unknown jump opcode {op:#04x}")

    def _ld_imm64(self, insn: Insn) -> int:
        reloc = insn.reloc
        if reloc is None:
            if insn.src != 0:
                raise InterpError(f"pc {insn.pc}: ld_imm64 with source {insn.src} "
                                  "and no relocation")
            return insn.imm & MASK64
        if reloc.kind == "map" and reloc.map is not None:
            return self.map_addr(reloc.map)
        if reloc.kind == "data" and reloc.map is not None:
            return self.data_addr(reloc.map) + reloc.offset
        if reloc.kind == "func_ptr" and reloc.func is not None:
            return self.func_addr(reloc.func)
        if reloc.kind == "extern":
            if reloc.symbol not in self._extern_addr:
                # a __kconfig value the world sets (as libbpf from the kernel), else 0
                value = dict(self.world.rodata).get(reloc.symbol, 0)
                content = (value & MASK64).to_bytes(8, "little") + bytes(56)
                self._extern_addr[reloc.symbol] = self.alloc(f"extern {reloc.symbol}",
                                                             content, writable=False)
            return self._extern_addr[reloc.symbol]
        raise InterpError(f"pc {insn.pc}: ld_imm64 with relocation {reloc.kind}")

    def _ld_abs(self, insn: Insn, regs: list[int]) -> None:
        """LD_ABS / LD_IND: big-endian packet load into r0; out of range ends the run."""
        size = insn.opcode.size_bytes
        off = s32(insn.imm)
        if (insn.opcode & 0xE0) == _MODE_IND:
            off += s32(regs[insn.src])
        length = self.packet_end - self.packet
        if not self.packet or off < 0 or off + size > length:
            raise _LdAbsAbort()
        regs[0] = int.from_bytes(self.read_bytes(self.packet + off, size), "big")

    def _mem(self, insn: Insn, regs: list[int]) -> None:
        op = insn.opcode
        cls = op & 0x07
        size = insn.opcode.size_bytes
        mode = op & 0xE0
        if cls == _CLS_LDX:
            value = self.load((regs[insn.src] + insn.off) & MASK64, size)
            if mode == _MODE_MEMSX:
                value = _sext(value, 8 * size) & MASK64
            regs[insn.dst] = value
            return
        addr = (regs[insn.dst] + insn.off) & MASK64
        if cls == _CLS_ST:
            self.store(addr, size, insn.imm)
            return
        if mode == _MODE_MEM:
            self.store(addr, size, regs[insn.src])
            return
        self._atomic(insn, regs, addr, size)

    def _atomic(self, insn: Insn, regs: list[int], addr: int, size: int) -> None:
        imm = insn.imm
        if imm == ATOMIC_LOAD_ACQ:
            regs[insn.dst] = self.load((regs[insn.src] + insn.off) & MASK64, size)
            return
        if imm == ATOMIC_STORE_REL:
            self.store(addr, size, regs[insn.src])
            return
        mask = (1 << (8 * size)) - 1
        old = self.load(addr, size)
        src = regs[insn.src] & mask
        if imm == ATOMIC_XCHG:
            self.store(addr, size, src)
            regs[insn.src] = old
            return
        if imm == ATOMIC_CMPXCHG:
            if old == regs[0] & mask:
                self.store(addr, size, src)
            regs[0] = old
            return
        base = imm & ~ATOMIC_FETCH
        if base == _ALUOP_ADD:
            new = old + src
        elif base == _ALUOP_OR:
            new = old | src
        elif base == _ALUOP_AND:
            new = old & src
        elif base == _ALUOP_XOR:
            new = old ^ src
        else:
            raise InterpError(f"pc {insn.pc}: unknown atomic operation {imm:#x}")
        self.store(addr, size, new)
        if imm & ATOMIC_FETCH:
            regs[insn.src] = old

    # -- calls ----------------------------------------------------------------
    def _call(self, insn: Insn, regs: list[int]) -> None:
        reloc = insn.reloc
        # in an object file a kfunc call is a pseudo call relocated against an extern
        if insn.is_kfunc_call or (reloc is not None and reloc.kind == "kfunc"):
            name = reloc.symbol if reloc else ""
            kfunc = KFUNCS.get(name)
            if kfunc is None:
                raise InterpError(f"pc {insn.pc}: unmodelled kfunc {name or insn.imm}")
            regs[0] = kfunc(self, regs) & MASK64
            return
        if insn.is_pseudo_call:
            if reloc is None or reloc.func is None:
                raise InterpError(f"pc {insn.pc}: bpf-to-bpf call without a resolved callee")
            # r6-r9 and r10 are callee-saved: the callee runs in its own frame
            regs[0] = self.call_function(reloc.func, tuple(regs[1:6]))
            return
        helper_id = insn.imm
        name = HELPER_NAMES[helper_id] if 0 <= helper_id < len(HELPER_NAMES) else ""
        helper = HELPERS.get(name)
        if helper is None:
            raise InterpError(f"pc {insn.pc}: unmodelled helper {name or helper_id} "
                              f"(id {helper_id})")
        regs[0] = helper(self, regs) & MASK64

    def run_callback(self, func_ptr: int, args: tuple[int, ...]) -> int:
        key = self._funcs_by_addr.get(func_ptr)
        if key is None:
            raise InterpError(f"callback {func_ptr:#x} is not a function")
        return self.call_function(key, args)

    def program_named(self, name: str) -> Program:
        for prog in self.obj.programs:
            if prog.name == name:
                return prog
        raise InterpError(f"no program named {name}")

    # -- entry ------------------------------------------------------------------
    def setup_ctx(self, prog: Program) -> int:
        inp = self.inp
        # the packet starts after a headroom, as in the kernel (XDP_PACKET_HEADROOM):
        # a pointer into it is never 0 in its low 32 bits (clang may test `w4 == 0`
        # on a 32-bit __sk_buff.data), and there is room in front for metadata
        self.packet = self.alloc("packet", bytes(PACKET_HEADROOM) + inp.packet) + \
            PACKET_HEADROOM
        self.packet_end = self.packet + len(inp.packet)
        ctx = self.alloc("ctx", inp.ctx)
        region = self._regions[ctx >> 32]
        fields = {}
        if prog.prog_type == "xdp":
            fields = XDP_PTR_FIELDS
        elif prog.prog_type in SKB_TYPES:
            fields = SKB_PTR_FIELDS
        for off, which in fields.items():
            region.ptr_fields[off] = self.packet if which == "data" else self.packet_end
        for off, content in inp.ctx_pointers:
            region.ptr_fields[off] = 0 if content is None else self.alloc(f"ctx+{off}", content)
        return ctx

    def ctx_pointer(self, ctx: int, off: int) -> int | None:
        """The pointer a context field holds (data, data_end, data_meta), if any."""
        region = self._regions.get(ctx >> 32)
        return None if region is None else region.ptr_fields.get(off)

    def set_ctx_pointer(self, ctx: int, off: int, value: int) -> None:
        """Point a context pointer field elsewhere (a helper moving data or data_meta)."""
        region = self._regions.get(ctx >> 32)
        if region is not None and off in region.ptr_fields:
            region.ptr_fields[off] = value

    def run_program(self, prog: Program, ctx: int) -> int:
        """Run a program from its entry; return r0 at its (or a tail-call target's) exit."""
        try:
            return self.call_function(prog.entry, (ctx,))
        except _LdAbsAbort:
            return 0

    def tail_call(self, ctx: int, map_ptr: int, index: int) -> int:
        mdef = self.map_of(map_ptr)
        if self.tail_calls >= MAX_TAIL_CALLS or self.world.tail_call_fails:
            return -2 & MASK64
        target = dict(mdef.prog_slots).get(index & MASK32)
        if target is None:
            return -ENOENT & MASK64  # empty slot: execution continues after the call
        self.tail_calls += 1
        raise _TailCall(self.program_named(target), ctx)


def _byteswap(value: int, width: int, to_be: bool, always: bool) -> int:
    """BPF_END: on a little-endian machine to-LE truncates, to-BE and bswap swap."""
    low = value & ((1 << width) - 1)
    if not (to_be or always):
        return low
    return int.from_bytes(low.to_bytes(width // 8, "little"), "big")


def run(obj: BpfObject, program_name: str, inp: Input,
        step_cap: int = DEFAULT_STEP_CAP, may_goto_budget: int = MAY_GOTO_BUDGET) -> int:
    """Execute one program on one input; return the number of executed instructions."""
    return run_full(obj, program_name, inp, step_cap, may_goto_budget)[0]


def run_full(obj: BpfObject, program_name: str, inp: Input,
             step_cap: int = DEFAULT_STEP_CAP,
             may_goto_budget: int = MAY_GOTO_BUDGET) -> tuple[int, int]:
    """Execute one program; return (executed instructions, r0 at exit)."""
    interp = Interpreter(obj, inp, step_cap, may_goto_budget)
    prog = interp.program_named(program_name)
    ctx = interp.setup_ctx(prog)
    r0 = interp.run_program(prog, ctx)
    return interp.count, r0


def run_function(obj: BpfObject, function_name: str, inp: Input,
                 step_cap: int = DEFAULT_STEP_CAP) -> int:
    """Execute a function as its own entry point (a timer callback, say): r1-r5
    point to fresh 4 KiB buffers filled with the world's value byte."""
    interp = Interpreter(obj, inp, step_cap)
    func = obj.function_named(function_name)
    if func is None:
        raise InterpError(f"no function named {function_name}")
    fill = bytes([inp.world.value_fill]) * 4096
    args = tuple(interp.alloc(f"argument {i}", fill) for i in range(1, 6))
    interp.call_function(func.key, args)
    return interp.count


# -- helpers --------------------------------------------------------------------
Helper = Callable[[Interpreter, list[int]], int]


def _key_bytes(it: Interpreter, mdef: MapDef, ptr: int) -> bytes:
    return it.read_bytes(ptr, mdef.key_size)


def _h_lookup(it: Interpreter, r: list[int]) -> int:
    mdef = it.map_of(r[1])
    return it.lookup(mdef, _key_bytes(it, mdef, r[2]))


def _h_update(it: Interpreter, r: list[int]) -> int:
    mdef = it.map_of(r[1])
    if mdef.type_name in ARRAY_TYPES and \
            int.from_bytes(_key_bytes(it, mdef, r[2])[:4], "little") >= entries(mdef):
        return -E2BIG  # array_map_update_elem: an index past the end is refused
    result = it.next_update_result()
    if result == 0 and mdef.value_size:
        value = it.read_bytes(r[3], mdef.value_size)
        ptr = it.map_value(mdef, _key_bytes(it, mdef, r[2]), create=True)
        it.write_bytes(ptr, value)
    return result


def _h_delete(it: Interpreter, r: list[int]) -> int:
    mdef = it.map_of(r[1])
    result = it.next_update_result()
    if result == 0:
        it.delete(mdef, _key_bytes(it, mdef, r[2]))
    return result


def _h_scalar(it: Interpreter, r: list[int]) -> int:
    return it.next_scalar()


def _h_u32_scalar(it: Interpreter, r: list[int]) -> int:
    return it.next_scalar() & MASK32


def _h_zero(it: Interpreter, r: list[int]) -> int:
    return 0


def _readable(it: Interpreter, addr: int, size: int) -> bytes | None:
    """The bytes at addr if the run's memory holds them all (reads_real only)."""
    if not it.world.reads_real:
        return None
    try:
        return it.read_bytes(addr, size)
    except InterpError:
        return None


def _h_probe_read(it: Interpreter, r: list[int]) -> int:
    size = r[2] & MASK32
    real = _readable(it, r[3], size) if size else None
    if real is not None:
        it.write_bytes(r[1], real)
        return 0
    return _h_probe_read_user(it, r)


def _h_probe_read_user(it: Interpreter, r: list[int]) -> int:
    """User memory is not the run's memory: reads_real never applies."""
    size = r[2] & MASK32
    if it.world.reads_fail:
        it.write_bytes(r[1], bytes(size))
        return -EFAULT
    it.write_bytes(r[1], bytes([it.world.value_fill]) * size)
    return 0


def _real_str(it: Interpreter, src: int, size: int) -> bytes | None:
    """strncpy_from_kernel_nofault's copy: up to size - 1 bytes, then NUL (None if
    the source runs out of the run's memory before a NUL or the limit)."""
    out = bytearray()
    while len(out) < size - 1:
        byte = _readable(it, src + len(out), 1)
        if byte is None:
            return None
        if byte == b"\0":
            break
        out += byte
    return bytes(out) + b"\0"


def _h_probe_read_str(it: Interpreter, r: list[int]) -> int:
    size = r[2] & MASK32
    if size == 0 and it.world.reads_real:
        return 0  # strncpy_from_kernel_nofault(dst, src, 0) copies nothing, returns 0
    real = _real_str(it, r[3], size) if size and it.world.reads_real else None
    if real is not None:
        it.write_bytes(r[1], real)
        return len(real)  # the length with its NUL, as the kernel's
    if it.world.reads_fail or size == 0:
        if size:
            it.write_bytes(r[1], bytes(size))
        return -EFAULT
    it.write_bytes(r[1], b"bpflint\0"[:size].ljust(size, b"\0"))
    return min(size, 8)


def _h_strncmp(it: Interpreter, r: list[int]) -> int:
    """The kernel's strncmp(s1, s2, s1_sz): -1, 0 or 1, stopping at s2's NUL."""
    for i in range(r[2] & MASK32):
        c1, c2 = it.load(r[1] + i, 1), it.load(r[3] + i, 1)
        if c1 != c2:
            return -1 if c1 < c2 else 1
        if not c1:
            break
    return 0


def _h_probe_read_user_str(it: Interpreter, r: list[int]) -> int:
    """User memory is not the run's memory: reads_real never applies."""
    if not it.world.reads_real:
        return _h_probe_read_str(it, r)
    size = r[2] & MASK32
    if size == 0:
        return 0  # strncpy_from_user_nofault(dst, src, 0)
    if it.world.reads_fail or size == 0:
        if size:
            it.write_bytes(r[1], bytes(size))
        return -EFAULT
    it.write_bytes(r[1], b"bpflint\0"[:size].ljust(size, b"\0"))
    return min(size, 8)


def _h_get_current_comm(it: Interpreter, r: list[int]) -> int:
    size = r[2] & MASK32
    if it.world.reads_fail:
        it.write_bytes(r[1], bytes(size))
        return -EFAULT
    it.write_bytes(r[1], b"bpflint"[:size].ljust(size, b"\0"))
    return 0


def _h_skb_load_bytes(it: Interpreter, r: list[int]) -> int:
    off, size = r[2] & MASK32, r[4] & MASK32
    if off + size > it.packet_end - it.packet:
        it.write_bytes(r[3], bytes(size))
        return -EFAULT
    it.write_bytes(r[3], it.read_bytes(it.packet + off, size))
    return 0


def _h_output(it: Interpreter, r: list[int]) -> int:
    return -EAGAIN if it.world.ringbuf_full else 0


def _h_ringbuf_reserve(it: Interpreter, r: list[int]) -> int:
    if it.world.ringbuf_full:
        return 0
    return it.alloc("ringbuf record", bytes(r[2] & MASK32))


def _h_tail_call(it: Interpreter, r: list[int]) -> int:
    return it.tail_call(r[1], r[2], r[3])


def _h_loop(it: Interpreter, r: list[int]) -> int:
    nr_loops, callback, ctx = r[1] & MASK32, r[2], r[3]
    if nr_loops > BPF_MAX_LOOPS:
        return -E2BIG
    for index in range(nr_loops):
        if it.run_callback(callback, (index, ctx)) & MASK64:
            return index + 1
    return nr_loops


def _h_for_each_map_elem(it: Interpreter, r: list[int]) -> int:
    mdef = it.map_of(r[1])
    callback, ctx = r[2], r[3]
    if mdef.type_name in ARRAY_TYPES:
        keys = [i.to_bytes(4, "little") for i in range(mdef.max_entries)]
    else:
        keys = it.hash_elements(mdef)
    done = 0
    for key in keys:
        if mdef.type_name not in ARRAY_TYPES and not it.holds(mdef, key):
            continue  # deleted by an earlier callback: the kernel's walk skips it too
        value = it.map_value(mdef, key, create=True)
        key_ptr = it.alloc("for_each key", key, writable=False)
        done += 1
        if it.run_callback(callback, (r[1], key_ptr, value, ctx)) & MASK64:
            break
    return done


def _h_user_ringbuf_drain(it: Interpreter, r: list[int]) -> int:
    callback, ctx = r[2], r[3]
    samples = min(it.next_rounds(), MAX_USER_RINGBUF_SAMPLES)
    done = 0
    for _ in range(samples):
        # a dynptr is 16 bytes on the stack in the kernel; here: pointer to the sample
        sample = it.alloc("user ringbuf sample", it.world.sample, writable=False)
        dynptr = it.alloc("dynptr", struct.pack("<QQ", sample, len(it.world.sample)))
        done += 1
        if it.run_callback(callback, (dynptr, ctx)) & MASK64:
            break
    return done


def _h_dynptr_read(it: Interpreter, r: list[int]) -> int:
    dst, size, dynptr, off = r[1], r[2] & MASK32, r[3], r[4] & MASK32
    sample, length = struct.unpack("<QQ", it.read_bytes(dynptr, 16))
    if off + size > length:
        it.write_bytes(dst, bytes(size))
        return -E2BIG
    it.write_bytes(dst, it.read_bytes(sample + off, size))
    return 0


def _h_find_vma(it: Interpreter, r: list[int]) -> int:
    task, callback, ctx = r[1], r[3], r[4]
    if not it.next_rounds():
        return -ENOENT
    vma = it.alloc("vm_area_struct", bytes(256), writable=False)
    it.run_callback(callback, (task, vma, ctx))
    return 0


def _h_task(it: Interpreter, r: list[int]) -> int:
    return it.task()


HELPERS: dict[str, Helper] = {
    "map_lookup_elem": _h_lookup,
    "map_update_elem": _h_update,
    "map_delete_elem": _h_delete,
    "probe_read": _h_probe_read,
    "probe_read_kernel": _h_probe_read,
    "probe_read_user": _h_probe_read_user,
    "probe_read_str": _h_probe_read_str,
    "probe_read_kernel_str": _h_probe_read_str,
    "probe_read_user_str": _h_probe_read_user_str,
    "strncmp": _h_strncmp,
    "ktime_get_ns": _h_scalar,
    "ktime_get_boot_ns": _h_scalar,
    "ktime_get_coarse_ns": _h_scalar,
    "jiffies64": _h_scalar,
    "get_prandom_u32": _h_u32_scalar,
    "get_smp_processor_id": _h_u32_scalar,
    "get_current_pid_tgid": _h_scalar,
    "get_current_uid_gid": _h_scalar,
    "get_current_cgroup_id": _h_scalar,
    "get_current_comm": _h_get_current_comm,
    "get_current_task": _h_task,
    "get_current_task_btf": _h_task,
    "trace_printk": _h_zero,
    "seq_write": _h_zero,
    "seq_printf": _h_zero,
    "skb_load_bytes": _h_skb_load_bytes,
    "xdp_load_bytes": _h_skb_load_bytes,  # (xdp_md, offset, buf, len): the same layout
    "perf_event_output": _h_output,
    "ringbuf_output": _h_output,
    "ringbuf_reserve": _h_ringbuf_reserve,
    "ringbuf_submit": _h_zero,
    "ringbuf_discard": _h_zero,
    "redirect": _h_u32_scalar,
    "redirect_map": _h_u32_scalar,
    "sk_redirect_map": _h_u32_scalar,
    "tail_call": _h_tail_call,
    "loop": _h_loop,
    "for_each_map_elem": _h_for_each_map_elem,
    "user_ringbuf_drain": _h_user_ringbuf_drain,
    "dynptr_read": _h_dynptr_read,
    "find_vma": _h_find_vma,
    # timers: the callback runs later, asynchronously, and is not in the caller's count
    "timer_init": _h_zero,
    "timer_set_callback": _h_zero,
    "timer_start": _h_zero,
    "timer_cancel": _h_zero,
}


# -- kfuncs ---------------------------------------------------------------------
def _k_iter_num_new(it: Interpreter, r: list[int]) -> int:
    """struct bpf_iter_num_kern { int cur; int end; }: cur = start - 1."""
    start, end = s32(r[2]), s32(r[3])
    if start > end or end - start > BPF_MAX_LOOPS:
        it.store(r[1], 8, 0)
        return -EINVAL
    it.store(r[1], 4, start - 1)
    it.store(r[1] + 4, 4, end)
    return 0


def _k_iter_num_next(it: Interpreter, r: list[int]) -> int:
    cur, end = s32(it.load(r[1], 4)), s32(it.load(r[1] + 4, 4))
    if cur + 1 >= end:
        it.store(r[1], 8, 0)
        return 0
    it.store(r[1], 4, cur + 1)
    return r[1]


def _k_iter_num_destroy(it: Interpreter, r: list[int]) -> int:
    it.store(r[1], 8, 0)
    return 0


BITS_ITER_NR_WORDS_MAX = 511


def _k_iter_bits_new(it: Interpreter, r: list[int]) -> int:
    """The set bits of nr_words u64 words at r2, lowest first; the element is an int
    inside the iterator (struct bpf_iter_bits_kern's ``bit``, at offset 8)."""
    nr_words = r[3] & 0xFFFF_FFFF
    if not r[2] or not nr_words or nr_words > BITS_ITER_NR_WORDS_MAX:
        it.bit_iters[r[1]] = []
        return -EINVAL if not nr_words or not r[2] else -E2BIG
    bits = []
    for w in range(nr_words):
        word = it.load(r[2] + 8 * w, 8)
        bits += [64 * w + b for b in range(64) if word >> b & 1]
    it.bit_iters[r[1]] = bits
    return 0


def _k_iter_bits_next(it: Interpreter, r: list[int]) -> int:
    bits = it.bit_iters.get(r[1], [])
    if not bits:
        return 0
    it.store(r[1] + 8, 4, bits.pop(0))
    return r[1] + 8


def _k_iter_bits_destroy(it: Interpreter, r: list[int]) -> int:
    it.bit_iters.pop(r[1], None)
    return 0


KFUNCS: dict[str, Helper] = {
    "bpf_iter_bits_new": _k_iter_bits_new,
    "bpf_iter_bits_next": _k_iter_bits_next,
    "bpf_iter_bits_destroy": _k_iter_bits_destroy,
    "bpf_iter_num_new": _k_iter_num_new,
    "bpf_iter_num_next": _k_iter_num_next,
    "bpf_iter_num_destroy": _k_iter_num_destroy,
    "bpf_rcu_read_lock": _h_zero,
    "bpf_rcu_read_unlock": _h_zero,
}

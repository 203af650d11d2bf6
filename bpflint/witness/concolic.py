"""Concolic execution: the traced interpreter runs concretely while a shadow of every
register and memory byte holds a z3 bit-vector expression over the input's symbols
(packet bytes and length, context bytes, map lookup hits, helper results, every
byte of a fresh map value). Each conditional jump whose operands depend on the input adds a
path condition; negating one of them and solving gives an input down the other way.

Only imported when z3 is installed (``pip install 'bpflint[witness]'``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import z3

from bpflint.cost.model import CostTable
from bpflint.interp.refinterp import (
    EAGAIN,
    EFAULT,
    MASK32,
    MASK64,
    MAX_CALL_DEPTH,
    SKB_PTR_FIELDS,
    SKB_TYPES,
    XDP_PTR_FIELDS,
    Input,
    s32,
)
from bpflint.isa.insn import Insn
from bpflint.isa.opcodes import AluOp, Cls, JmpOp, Mode
from bpflint.obj.model import BpfObject, LoaderVar, MapDef, Program
from bpflint.witness.seeds import MAX_PACKET_BYTES, ctx_for
from bpflint.witness.trace import FOUND_HELPERS, FOUND_KFUNCS, TracingInterpreter, helper_name

Expr = Any  # a z3 BitVecRef (64-bit in registers, 8-bit in memory)
_PLACEHOLDER_PTR = 0x7FFF_0000_0000  # a non-NULL pointer for a lookup that missed this run
_UPDATE_RESULTS = (0, -2, -7, -17)  # 0, -ENOENT, -E2BIG, -EEXIST
MAX_CALLBACK_ROUNDS = 64  # the solver picks rounds up to this (the count grows with it)
_SCALAR_HELPERS = frozenset({"check_mtu", "tcp_check_syncookie", "tcp_gen_syncookie",
                             "tcp_raw_check_syncookie_ipv4", "tcp_raw_check_syncookie_ipv6",
                             "tcp_raw_gen_syncookie_ipv4", "tcp_raw_gen_syncookie_ipv6",
                             "ktime_get_ns", "ktime_get_boot_ns", "ktime_get_coarse_ns",
                             "jiffies64", "get_current_pid_tgid", "get_current_uid_gid",
                             "get_current_cgroup_id",
                             # the witness runner's neutral models drawing a world scalar
                             "csum_diff", "get_hash_recalc", "get_socket_cookie",
                             "get_numa_node_id", "ktime_get_tai_ns", "get_route_realm",
                             "get_cgroup_classid", "fib_lookup", "csum_update",
                             "get_socket_uid", "skb_get_tunnel_key", "perf_event_read"})
# helpers whose effect on the run depends on the world in ways the shadow does not
# follow (callback rounds, read failures, early stops): a run calling one is not
# evidence that every feasible path was explored
_UNFOLLOWED = frozenset({"loop", "for_each_map_elem", "user_ringbuf_drain", "find_vma",
                         "probe_read", "probe_read_kernel", "probe_read_user",
                         "probe_read_str", "probe_read_kernel_str", "probe_read_user_str",
                         "get_current_comm", "dynptr_read"})
# helpers reading a key or an index: a symbolic one is fixed to this run's value
_KEYED = {"map_lookup_elem": 2, "map_update_elem": 2, "map_delete_elem": 2, "tail_call": 3,
          "skb_load_bytes": 2, "xdp_load_bytes": 2}
_LOAD_BYTES = frozenset({"skb_load_bytes", "xdp_load_bytes"})
_U32_HELPERS = frozenset({"get_prandom_u32", "get_smp_processor_id", "redirect",
                          "redirect_map", "sk_redirect_map"})


@dataclass(frozen=True)
class Branch:
    """One input-dependent conditional jump of a run: ``cond`` is what held."""

    cond: Any  # z3 BoolRef
    pc: int
    taken: bool
    line: tuple[str, int] | None
    other_line: tuple[str, int] | None  # the first line down the way not taken
    # False for a pin: an input-dependent address fixed to this run's value, so the
    # bytes this run read stay the ones an input solved from its path reads
    flippable: bool = True


class Symbols:
    """The input's symbols, created on first use and shared by every run of a search."""

    def __init__(self) -> None:
        self.plen = z3.BitVec("packet_len", 32)
        self.rbfull = z3.Bool("ringbuf_full")
        self._bytes: dict[tuple[str, int], Expr] = {}
        self._seq: dict[tuple[str, int], Any] = {}
        self.domain: list[Any] = [z3.ULE(self.plen, MAX_PACKET_BYTES)]
        self.loader_vars: dict[str, LoaderVar] = {}
        # z3 shares equal terms, so a run repeating an earlier run's computation builds
        # the very same term (same id): its simplification is looked up, not redone
        # (z3.simplify was half a run's time). The key term is kept, so its id stays.
        self._simplified: dict[int, tuple[Expr, Expr]] = {}
        self.var_bytes: dict[str, bytes] = {}  # a struct variable's bytes in the object
        self.section_bytes: dict[str, bytes] = {}  # a writable section's first bytes

    def simplify(self, expr: Expr) -> Expr:
        key = expr.get_id()
        hit = self._simplified.get(key)
        if hit is None:
            hit = self._simplified[key] = (expr, z3.simplify(expr))
        return hit[1]

    def rodata_byte(self, var: LoaderVar, index: int) -> Expr:
        """Byte ``index`` of one element of a loader-set variable: the engine lets it
        be any value in [lo, hi], so the solver may choose the loader's setting."""
        if var.name not in self.loader_vars:
            self.loader_vars[var.name] = var
            width = var.elem_size or var.size  # a struct: one integer of its bytes
            parts = [self.byte(f"ro:{var.name}.", i) for i in range(width)]
            value = z3.Concat(*reversed(parts)) if len(parts) > 1 else parts[0]
            if var.elem_size and (var.lo > var.type_lo or var.hi < var.type_hi):
                bits = 8 * var.elem_size  # pinned or narrowed
                lo = z3.BitVecVal(var.lo % (1 << bits), bits)
                hi = z3.BitVecVal(var.hi % (1 << bits), bits)
                self.domain.append(z3.And(lo <= value, value <= hi) if var.type_lo < 0
                                   else z3.And(z3.ULE(lo, value), z3.ULE(value, hi)))
        return self.byte(f"ro:{var.name}.", index)

    def byte(self, where: str, off: int) -> Expr:
        key = (where, off)
        sym = self._bytes.get(key)
        if sym is None:
            sym = self._bytes[key] = z3.BitVec(f"{where}{off}", 8)
        return sym

    def seq(self, kind: str, index: int) -> Any:
        key = (kind, index)
        sym = self._seq.get(key)
        if sym is None:
            name = f"{kind}{index}"
            if kind == "hit":
                sym = z3.Bool(name)
            else:
                sym = z3.BitVec(name, 64)
                if kind == "update":
                    self.domain.append(z3.Or(*(sym == (v & MASK64) for v in _UPDATE_RESULTS)))
                elif kind == "rounds":
                    self.domain.append(z3.ULE(sym, MAX_CALLBACK_ROUNDS))
            self._seq[key] = sym
        return sym

    def input_from(self, model: Any, parent: Input, prog_type: str,
                   uses: dict[str, int]) -> Input:
        """The parent input with every symbol the model decides replaced."""
        def val(e: Any, default: int) -> int:
            got = model.eval(e, model_completion=False)
            return got.as_long() if z3.is_bv_value(got) else default

        def flag(e: Any, default: bool) -> bool:
            got = model.eval(e, model_completion=False)
            return bool(z3.is_true(got)) if z3.is_bool(got) and (z3.is_true(got) or
                                                                  z3.is_false(got)) else default

        plen = min(val(self.plen, len(parent.packet)), MAX_PACKET_BYTES)
        packet = bytearray(parent.packet[:plen].ljust(plen, b"\0"))
        ctx = bytearray(parent.ctx)
        w = parent.world
        values = [bytearray(v) for v in w.values]
        rodata = dict(w.rodata)
        var_bytes = self.var_bytes
        data_bytes: dict[str, dict[int, int]] = {}
        ro_bytes: dict[str, dict[int, int]] = {}
        for (where, off), sym in self._bytes.items():
            if where == "pkt" and off < plen:
                packet[off] = val(sym, packet[off])
            elif where == "ctx" and off < len(ctx):
                ctx[off] = val(sym, ctx[off])
            elif where.startswith("gd:"):
                got = model.eval(sym, model_completion=False)
                if z3.is_bv_value(got):
                    data_bytes.setdefault(where[3:-1], {})[off] = got.as_long()
            elif where.startswith("ro:"):
                got = model.eval(sym, model_completion=False)
                if z3.is_bv_value(got):
                    ro_bytes.setdefault(where[3:-1], {})[off] = got.as_long()
            elif where.startswith("val"):
                got = model.eval(sym, model_completion=False)
                if not z3.is_bv_value(got):
                    continue
                n = int(where[3:-1])
                while len(values) <= n:
                    values.append(bytearray())
                if len(values[n]) <= off:
                    values[n] += bytes([w.value_fill]) * (off + 1 - len(values[n]))
                values[n][off] = got.as_long()
        if parent.packet or prog_type in SKB_TYPES or prog_type == "xdp":
            ctx = bytearray(ctx_for(prog_type, bytes(packet), bytes(ctx)))

        for name, chosen in ro_bytes.items():
            var = self.loader_vars[name]
            width = var.elem_size or var.size
            old_value = rodata.get(name, var.default if var.default is not None else
                                   int.from_bytes(var_bytes.get(name, b""), "little"))
            raw = bytearray((old_value % (1 << 8 * width)).to_bytes(width, "little"))
            for i, b in chosen.items():
                raw[i] = b
            rodata[name] = int.from_bytes(raw, "little")

        sections = dict(w.globals)
        for name, chosen in data_bytes.items():
            raw = bytearray(sections.get(name, b""))
            end = max(chosen) + 1
            if len(raw) < end:
                raw += self.section_bytes.get(name, b"")[len(raw):end].ljust(
                    end - len(raw), b"\0")
            for i, b in chosen.items():
                raw[i] = b
            sections[name] = bytes(raw)

        def seq(kind: str, old: tuple[Any, ...], conv: Any) -> tuple[Any, ...]:
            n = max(uses.get(kind, 0), len(old))
            out = []
            for i in range(n):
                prev = old[min(i, len(old) - 1)] if old else 0
                sym = self._seq.get((kind, i))
                if sym is None:
                    out.append(prev)
                elif kind == "hit":
                    out.append(flag(sym, bool(prev)))
                else:
                    out.append(conv(val(sym, int(prev) & MASK64)))
            return tuple(out) if out else old

        def signed(v: int) -> int:
            return v - (1 << 64) if v >> 63 else v

        world = replace(w, lookup_hits=seq("hit", w.lookup_hits, bool),
                        scalars=seq("scalar", w.scalars, int),
                        update_results=seq("update", w.update_results, signed),
                        callback_rounds=seq("rounds", w.callback_rounds, int),
                        values=tuple(bytes(v) for v in values),
                        rodata=tuple(sorted(rodata.items())),
                        globals=tuple(sorted(sections.items())),
                        ringbuf_full=flag(self.rbfull, w.ringbuf_full))
        return Input(ctx=bytes(ctx), packet=bytes(packet), ctx_pointers=parent.ctx_pointers,
                     world=world)


def kconfig_var(name: str) -> LoaderVar:
    """A ``.kconfig`` extern as a loader-set u64 (the interpreter's extern region)."""
    return LoaderVar(name, 0, 8, "u64", 8, 0, MASK64, 0, MASK64, 0)


def _bv(value: int) -> Expr:
    return z3.BitVecVal(value & MASK64, 64)


class ConcolicInterpreter(TracingInterpreter):
    def __init__(self, obj: BpfObject, inp: Input, syms: Symbols, step_cap: int,
                 line_of: dict[int, tuple[str, int]], table: CostTable | None = None) -> None:
        super().__init__(obj, inp, step_cap, table)
        self.syms = syms
        self.path: list[Branch] = []
        self.uses: dict[str, int] = {}
        # a symbolic value was replaced by this run's concrete one (an address, a key,
        # an operation z3 is not given): other paths may exist that no flip finds
        self.concretized = False
        self._shadow: list[list[Expr | None]] = [[None] * 11 for _ in range(MAX_CALL_DEPTH + 2)]
        self._mem_shadow: dict[int, Expr | None] = {}  # address -> byte expr (None: concrete)
        self._pending: list[Expr | None] | None = None
        self._ctx_region = -1
        self._pkt_region = -1
        self._ptr_bytes: set[int] = set()  # ctx offsets inside pointer fields
        self._data_end_offs: set[int] = set()
        self._skb = False
        self._line_of = line_of
        self._rodata_regions: dict[int, MapDef] = {}  # region id -> section with knobs
        self._data_regions: dict[int, MapDef] = {}  # region id -> writable data section

    # -- set-up ---------------------------------------------------------------
    def setup_ctx(self, prog: Program) -> int:
        ctx = super().setup_ctx(prog)
        self._ctx_region = ctx >> 32
        self._pkt_region = self.packet >> 32
        fields = XDP_PTR_FIELDS if prog.prog_type == "xdp" else \
            SKB_PTR_FIELDS if prog.prog_type in SKB_TYPES else {}
        self._skb = prog.prog_type in SKB_TYPES
        for off, which in fields.items():
            self._ptr_bytes.update(range(off, off + 4))
            if which == "data_end":
                self._data_end_offs.add(off)
        return ctx

    def data_addr(self, section: str) -> int:
        addr = super().data_addr(section)
        mdef = self.obj.maps.get(section)
        if mdef is not None and mdef.loader_vars:
            self._rodata_regions[addr >> 32] = mdef
        elif mdef is not None and not mdef.read_only:
            # writable global data: user space may have written any bytes (the engine
            # reads them as unknown), so the solver may choose them
            self._data_regions[addr >> 32] = mdef
            if section not in self.syms.section_bytes:
                self.syms.section_bytes[section] = self.read_bytes(
                    addr & ~MASK32, max(mdef.value_size, len(mdef.data)))
        return addr

    # -- shadow memory ----------------------------------------------------------
    def _initial_byte(self, addr: int) -> Expr | None:
        rid, off = addr >> 32, addr & MASK32
        section = self._rodata_regions.get(rid)
        if section is not None:
            for var in section.loader_vars:
                if var.offset <= off < var.offset + var.size:
                    if var.name not in self.syms.var_bytes:
                        self.syms.var_bytes[var.name] = bytes(
                            section.data[var.offset:var.offset + var.size])
                    return self.syms.rodata_byte(var, (off - var.offset) % var.elem_size
                                                 if var.elem_size else off - var.offset)
            return None
        data = self._data_regions.get(rid)
        if data is not None:
            return self.syms.byte(f"gd:{data.name}.", off)
        if off < 8:
            name = self.region_name(addr)
            if name is not None and name.startswith("extern "):
                # a .kconfig extern: any value of its type, as the engine assumes
                return self.syms.rodata_byte(kconfig_var(name[7:]), off)
        if rid == self._pkt_region:
            at = addr - self.packet  # the headroom in front of the packet is not input
            return self.syms.byte("pkt", at) if at >= 0 else None
        if rid == self._ctx_region:
            if off in self._ptr_bytes:
                return None
            if self._skb and off < 4:  # __sk_buff.len is the packet's length
                return z3.Extract(8 * off + 7, 8 * off, self.syms.plen)
            return self.syms.byte("ctx", off)
        n = self.fresh_ordinal(addr)
        if n is not None:  # a fresh map value: its first bytes are World.values[n]
            return self.syms.byte(f"val{n}.", off)
        return None

    def _byte_shadow(self, addr: int) -> Expr | None:
        if addr in self._mem_shadow:
            return self._mem_shadow[addr]
        return self._initial_byte(addr)

    def _load_shadow(self, addr: int, size: int, concrete: int) -> Expr | None:
        parts = [self._byte_shadow(addr + i) for i in range(size)]
        if all(p is None for p in parts):
            return None
        out = [p if p is not None else z3.BitVecVal(concrete >> (8 * i) & 0xFF, 8)
               for i, p in enumerate(parts)]
        return out[0] if size == 1 else z3.Concat(*reversed(out))

    def _clear(self, addr: int, size: int) -> None:
        for i in range(size):
            self._mem_shadow[addr + i] = None

    def store(self, addr: int, size: int, value: int) -> None:
        super().store(addr, size, value)
        self._clear(addr, size)

    def write_bytes(self, addr: int, data: bytes) -> None:
        super().write_bytes(addr, data)
        self._clear(addr, len(data))

    # -- frames -------------------------------------------------------------------
    def call_function(self, key: Any, args: tuple[int, ...]) -> int:
        shadow: list[Expr | None] = [None] * 11
        if self._pending is not None:
            shadow[1:6] = self._pending
            self._pending = None
        if self.depth + 1 < len(self._shadow):
            self._shadow[self.depth + 1] = shadow
        return super().call_function(key, args)

    # -- instruction hooks --------------------------------------------------------
    def _alu(self, insn: Insn, regs: list[int]) -> None:
        sh = self._shadow[self.depth]
        op = insn.opcode
        uses_src = bool(op & 0x08) and (op & 0xF0) != AluOp.END
        d, s = sh[insn.dst], sh[insn.src] if uses_src else None
        a_c = regs[insn.dst]
        b_c = regs[insn.src] if uses_src else insn.imm & MASK64
        super()._alu(insn, regs)
        if d is None and s is None:
            sh[insn.dst] = None
            return
        if (op & 0xF0) == AluOp.MOV and not uses_src:
            sh[insn.dst] = None
            return
        is_copy = (op & 0xF0) == AluOp.MOV and insn.off == 0
        try:
            r = _alu_expr(insn, d if d is not None else _bv(a_c), s if s is not None else _bv(b_c))
        except z3.Z3Exception:
            r = None
        if r is None:
            self.concretized = True
        if r is not None and not (is_copy and insn.opcode & 0x07 == Cls.ALU64):
            # a 64-bit register copy is already simplified: z3.simplify is most of a
            # run's time (0.17 ms a call), so it is not asked again
            r = self.syms.simplify(r)
            if z3.is_bv_value(r):
                r = None
        sh[insn.dst] = r

    def _cond(self, insn: Insn, regs: list[int]) -> bool:
        sh = self._shadow[self.depth]
        uses_src = bool(insn.opcode & 0x08)
        d, s = sh[insn.dst], sh[insn.src] if uses_src else None
        a_c = regs[insn.dst]
        b_c = regs[insn.src] if uses_src else insn.imm & MASK64
        taken = super()._cond(insn, regs)
        if d is None and s is None:
            return taken
        cond = self.syms.simplify(_cond_expr(insn, d if d is not None else _bv(a_c),
                                             s if s is not None else _bv(b_c)))
        if z3.is_true(cond) or z3.is_false(cond):
            return taken
        held = cond if taken else z3.Not(cond)
        other = self._line_of.get(insn.pc + 1 if taken else insn.jump_target)
        here = (insn.line.file, insn.line.line) if insn.line is not None else None
        self.path.append(Branch(held, insn.pc, taken, here, other))
        return taken

    def _mem(self, insn: Insn, regs: list[int]) -> None:
        sh = self._shadow[self.depth]
        op = insn.opcode
        cls = op & 0x07
        size = insn.opcode.size_bytes
        mode = op & 0xE0
        base = sh[insn.src] if cls == Cls.LDX else sh[insn.dst]
        if base is not None and not self._is_packet_end(base):
            self.concretized = True  # the address is this run's
            concrete = regs[insn.src] if cls == Cls.LDX else regs[insn.dst]
            self.path.append(Branch(base == _bv(concrete), insn.pc, True, None, None, False))
        if cls == Cls.LDX:
            addr = (regs[insn.src] + insn.off) & MASK64
            super()._mem(insn, regs)
            if addr >> 32 == self._ctx_region and (addr & MASK32) in self._data_end_offs:
                # the packet's end: its start plus the (symbolic) length
                sh[insn.dst] = _bv(self.packet) + z3.ZeroExt(32, self.syms.plen)
                return
            val = self._load_shadow(addr, size, regs[insn.dst])
            if val is not None and size < 8:
                val = z3.SignExt(64 - 8 * size, val) if mode == Mode.MEMSX \
                    else z3.ZeroExt(64 - 8 * size, val)
            sh[insn.dst] = val
            return
        addr = (regs[insn.dst] + insn.off) & MASK64
        src = sh[insn.src] if cls == Cls.STX else None
        super()._mem(insn, regs)
        if cls == Cls.STX and mode == Mode.MEM and src is not None:
            for i in range(size):
                self._mem_shadow[addr + i] = z3.Extract(8 * i + 7, 8 * i, src)
        elif cls == Cls.STX and mode != Mode.MEM:
            sh[insn.src] = None  # atomics: fetched values are concrete here
            sh[0] = None

    def _ld_imm64(self, insn: Insn) -> int:
        # the destination now holds a constant (an address, an immediate): forget the
        # expression it held before, or a later load through it pins that expression
        self._shadow[self.depth][insn.dst] = None
        return super()._ld_imm64(insn)

    def _is_packet_end(self, expr: Expr) -> bool:
        return expr is not None and z3.eq(expr, _bv(self.packet) +
                                          z3.ZeroExt(32, self.syms.plen))

    def _ld_abs(self, insn: Insn, regs: list[int]) -> None:
        """LD_ABS / LD_IND: in range of the (symbolic) packet length, r0 is the
        big-endian bytes; out of range the run ends, which is a path condition too."""
        sh = self._shadow[self.depth]
        size = insn.opcode.size_bytes
        off = s32(insn.imm)
        if (insn.opcode & 0xE0) == Mode.IND:
            if sh[insn.src] is not None:
                self.concretized = True
                self.path.append(Branch(sh[insn.src] == _bv(regs[insn.src]), insn.pc, True,
                                        None, None, False))
            off += s32(regs[insn.src])
        inside = z3.ULE(z3.BitVecVal(max(off, 0) + size, 32), self.syms.plen) if \
            0 <= off < MAX_PACKET_BYTES else None
        here = (insn.line.file, insn.line.line) if insn.line is not None else None
        try:
            super()._ld_abs(insn, regs)
        except Exception:
            if inside is not None:
                self.path.append(Branch(z3.Not(inside), insn.pc, False, here, None))
            raise
        if inside is not None:
            self.path.append(Branch(inside, insn.pc, True, here, None))
        parts = [self._byte_shadow(self.packet + off + i) for i in range(size)]
        concrete = regs[0]
        out = [p if p is not None else
               z3.BitVecVal(concrete >> (8 * (size - 1 - i)) & 0xFF, 8)
               for i, p in enumerate(parts)]
        value = out[0] if size == 1 else z3.Concat(*out)
        sh[0] = z3.ZeroExt(64 - 8 * size, value)

    def _call(self, insn: Insn, regs: list[int]) -> None:
        sh = self._shadow[self.depth]
        before = self.consumed()
        pseudo = insn.is_pseudo_call and not insn.is_kfunc_call and \
            not (insn.reloc is not None and insn.reloc.kind == "kfunc")
        name = "" if pseudo or insn.is_kfunc_call else helper_name(insn)
        kfunc = insn.reloc.symbol if not pseudo and not name and insn.reloc is not None else ""
        args = list(regs)
        if name in _UNFOLLOWED:
            self.concretized = True
        if not pseudo and not name and any(sh[r] is not None for r in range(1, 6)):
            self.concretized = True  # a kfunc given an input-dependent argument
        if not pseudo and not name and insn.reloc is not None and \
                insn.reloc.symbol.startswith("bpf_iter_bits"):
            self.concretized = True  # it reads the words its argument points at
        keyed = _KEYED.get(name)
        if keyed is not None and (sh[keyed] is not None or name in _LOAD_BYTES and
                                  (sh[4] is not None)):
            self.concretized = True
        if keyed is not None and name != "tail_call" and name not in _LOAD_BYTES:
            # the key's bytes: a symbolic key picks which element this run reads
            try:
                mdef = self.map_of(args[1])
                if self._load_shadow(args[keyed], mdef.key_size, 0) is not None:
                    self.concretized = True
            except Exception:
                pass
        if pseudo:
            self._pending = list(sh[1:6])
        super()._call(insn, regs)
        result: Expr | None = None
        after = self.consumed()
        taken = {k: (before[k], after[k]) for k in after}
        for kind, (lo, hi) in taken.items():
            if hi > lo:
                self.uses[kind] = max(self.uses.get(kind, 0), hi)
        if pseudo:
            if self.depth + 1 < len(self._shadow):
                result = self._shadow[self.depth + 1][0]
        elif (name == "map_lookup_elem" or name in FOUND_HELPERS or kfunc in FOUND_KFUNCS) \
                and taken["hit"][1] > taken["hit"][0]:
            hit = self.syms.seq("hit", taken["hit"][0])
            result = z3.If(hit, _bv(regs[0] or _PLACEHOLDER_PTR), _bv(0))
        elif (name in _SCALAR_HELPERS or name in self.unmodelled or
              kfunc in self.unmodelled) and \
                taken["scalar"][1] > taken["scalar"][0]:
            result = self.syms.seq("scalar", taken["scalar"][0])
        elif name in _U32_HELPERS and taken["scalar"][1] > taken["scalar"][0]:
            result = z3.ZeroExt(32, z3.Extract(31, 0, self.syms.seq("scalar", taken["scalar"][0])))
        elif name in ("map_update_elem", "map_delete_elem") and \
                taken["update"][1] > taken["update"][0]:
            result = self.syms.seq("update", taken["update"][0])
        elif name == "ringbuf_reserve":
            result = z3.If(self.syms.rbfull, _bv(0), _bv(regs[0] or _PLACEHOLDER_PTR))
        elif name in ("ringbuf_output", "perf_event_output"):
            result = z3.If(self.syms.rbfull, _bv(-EAGAIN), _bv(0))
        elif name in _LOAD_BYTES:
            off, size, dst = args[2] & MASK32, args[4] & MASK32, args[3]
            if regs[0] == 0:
                for i in range(size):
                    self._mem_shadow[dst + i] = self._byte_shadow(self.packet + off + i)
            result = z3.If(z3.UGT(z3.BitVecVal(off + size, 32), self.syms.plen),
                           _bv(-EFAULT), _bv(0))
        sh[0] = result
        for r in range(1, 6):
            sh[r] = None


def _alu_expr(insn: Insn, a: Expr, b: Expr) -> Expr | None:
    op = insn.opcode
    is64 = (op & 0x07) == Cls.ALU64
    aop = op & 0xF0
    if aop == AluOp.END:
        width = insn.imm
        low = z3.Extract(width - 1, 0, a)
        if (op & 0x08) or is64:
            nbytes = width // 8
            low = z3.Concat(*[z3.Extract(8 * i + 7, 8 * i, low) for i in range(nbytes)]) \
                if nbytes > 1 else low
        return z3.ZeroExt(64 - width, low) if width < 64 else low
    bits = 64 if is64 else 32
    if not is64:
        a, b = z3.Extract(31, 0, a), z3.Extract(31, 0, b)
    zero = z3.BitVecVal(0, bits)
    if aop == AluOp.ADD:
        r = a + b
    elif aop == AluOp.SUB:
        r = a - b
    elif aop == AluOp.MUL:
        r = a * b
    elif aop == AluOp.DIV:
        # sdiv is z3's signed '/', which also truncates toward zero
        r = z3.If(b == 0, zero, a / b if insn.off == 1 else z3.UDiv(a, b))
    elif aop == AluOp.MOD:
        r = z3.If(b == 0, a, z3.SRem(a, b) if insn.off == 1 else z3.URem(a, b))
    elif aop == AluOp.OR:
        r = a | b
    elif aop == AluOp.AND:
        r = a & b
    elif aop == AluOp.XOR:
        r = a ^ b
    elif aop == AluOp.LSH:
        r = a << (b & (bits - 1))
    elif aop == AluOp.RSH:
        r = z3.LShR(a, b & (bits - 1))
    elif aop == AluOp.ARSH:
        r = a >> (b & (bits - 1))
    elif aop == AluOp.NEG:
        r = -a
    elif aop == AluOp.MOV:
        if insn.off:
            r = z3.SignExt(bits - insn.off, z3.Extract(insn.off - 1, 0, b))
        else:
            r = b
    else:
        return None
    return r if is64 else z3.ZeroExt(32, r)


def _cond_expr(insn: Insn, a: Expr, b: Expr) -> Any:
    op = insn.opcode
    if (op & 0x07) == Cls.JMP32:
        a, b = z3.Extract(31, 0, a), z3.Extract(31, 0, b)
    jop = op & 0xF0
    if jop == JmpOp.JEQ:
        return a == b
    if jop == JmpOp.JNE:
        return a != b
    if jop == JmpOp.JGT:
        return z3.UGT(a, b)
    if jop == JmpOp.JGE:
        return z3.UGE(a, b)
    if jop == JmpOp.JLT:
        return z3.ULT(a, b)
    if jop == JmpOp.JLE:
        return z3.ULE(a, b)
    if jop == JmpOp.JSET:
        return (a & b) != 0
    if jop == JmpOp.JSGT:
        return a > b
    if jop == JmpOp.JSGE:
        return a >= b
    if jop == JmpOp.JSLT:
        return a < b
    if jop == JmpOp.JSLE:
        return a <= b
    raise ValueError(f"pc {insn.pc}: unknown jump opcode {op:#04x}")


def lines_by_pc(obj: BpfObject) -> dict[int, tuple[str, int]]:
    """pc -> source line, for naming the way a branch did not go (pcs of different
    sections may collide: the name is a hint in a message, never a number)."""
    out: dict[int, tuple[str, int]] = {}
    for func in obj.functions.values():
        for insn in func.insns:
            if insn.line is not None:
                out.setdefault(insn.pc, (insn.line.file, insn.line.line))
    return out

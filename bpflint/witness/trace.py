"""The reference interpreter, watched: which source lines a run visits, which way
each conditional jump went, and (for ``--by ns``) the run's price in the cost table."""

from __future__ import annotations

from collections.abc import Callable

from bpflint.cost.model import CostTable
from bpflint.interp.refinterp import (
    EFAULT,
    EINVAL,
    HELPERS,
    KFUNCS,
    MASK32,
    MASK64,
    PACKET_HEADROOM,
    Input,
    Interpreter,
    s32,
)
from bpflint.isa.helper_ids import HELPER_NAMES
from bpflint.isa.insn import Insn
from bpflint.obj.model import BpfObject, MapDef

Line = tuple[str, int]


class TracingInterpreter(Interpreter):
    """Records lines and branch directions from the instruction-class hooks (every
    instruction but ``may_goto`` passes one)."""

    def __init__(self, obj: BpfObject, inp: Input, step_cap: int,
                 table: CostTable | None = None) -> None:
        super().__init__(obj, inp, step_cap)
        self.lines: dict[Line, int] = {}  # instructions executed per line
        self.branches: set[tuple[int, int, bool]] = set()  # (id of insn tuple, pc, taken)
        self.table = table
        self.ns = 0.0
        self.unmodelled: set[str] = set()  # helpers run as a world scalar, no effect
        # what the maps held before the run, as far as its lookups saw: the elements
        # given in the world and every fresh value a lookup found (a hash hit, an array
        # element), with its first bytes. A kernel map holding these takes the run the
        # same way; so does the interpreter with them as World.map_contents.
        self.hit_keys: dict[tuple[str, bytes], bytes] = {
            (name, key): value for name, key, value in inp.world.map_contents}

    def _see(self, insn: Insn) -> None:
        line = insn.line
        if line is not None:
            key = (line.file, line.line)
            self.lines[key] = self.lines.get(key, 0) + 1
        if self.table is not None:
            if insn.is_call and not insn.is_pseudo_call and not insn.is_kfunc_call:
                self.ns += self.table.helper_ns(insn.imm, None, None)[1]
            else:
                self.ns += self.table.insn_ns(insn, None)[1]

    def lookup(self, mdef: MapDef, key: bytes) -> int:
        before = self.fresh_values
        ptr = super().lookup(mdef, key)
        if ptr and mdef.inner and mdef.inner in self.obj.maps:
            # map-in-map: a hit is the inner map (its template stands for every one)
            return self.map_addr(mdef.inner)
        if ptr and self.fresh_values > before and mdef.value_size:
            self.hit_keys[(mdef.name, key)] = self.read_bytes(ptr, mdef.value_size)
        return ptr

    def _jump(self, insn: Insn) -> None:
        self._see(insn)

    def _alu(self, insn: Insn, regs: list[int]) -> None:
        self._see(insn)
        super()._alu(insn, regs)

    def _cond(self, insn: Insn, regs: list[int]) -> bool:
        self._see(insn)
        taken = super()._cond(insn, regs)
        self.branches.add((self.depth, insn.pc, taken))
        return taken

    def _mem(self, insn: Insn, regs: list[int]) -> None:
        self._see(insn)
        super()._mem(insn, regs)

    def _ld_imm64(self, insn: Insn) -> int:
        self._see(insn)
        return super()._ld_imm64(insn)

    def _call(self, insn: Insn, regs: list[int]) -> None:
        self._see(insn)
        if not insn.is_pseudo_call and not insn.is_kfunc_call and insn.reloc is None:
            name = helper_name(insn)
            extra = NEUTRAL_HELPERS.get(name)
            if extra is None and name not in HELPERS:
                # no model at all: its result is a world scalar, its effects none (the
                # run goes on; the witness names such helpers)
                extra = _scalar
                self.unmodelled.add(name or str(insn.imm))
            if extra is not None and name not in HELPERS:
                regs[0] = extra(self, regs) & MASK64
                return
        reloc = insn.reloc
        if (insn.is_kfunc_call or reloc is not None and reloc.kind == "kfunc") and \
                reloc is not None and reloc.symbol not in KFUNCS:
            kfunc = NEUTRAL_KFUNCS.get(reloc.symbol)
            if kfunc is None:  # no model at all: as an unmodelled helper
                kfunc = _scalar
                self.unmodelled.add(reloc.symbol)
            regs[0] = kfunc(self, regs) & MASK64
            return
        super()._call(insn, regs)


def _ok(it: Interpreter, r: list[int]) -> int:
    return 0


def _scalar(it: Interpreter, r: list[int]) -> int:
    return it.next_scalar()


def _store_bytes(it: Interpreter, r: list[int]) -> int:
    """skb_store_bytes(skb, offset, from, len, flags): into the packet when in range."""
    off, size = r[2] & MASK32, r[4] & MASK32
    if off + size > it.packet_end - it.packet:
        return -EFAULT
    it.write_bytes(it.packet + off, it.read_bytes(r[3], size))
    return 0


# Helpers the reference interpreter does not model, given a neutral model here so a
# witness run goes on past them: success and no effect on the packet's bounds (the
# program re-reads data/data_end after a resize, as the verifier makes it), or a
# scalar from the world. They count one instruction, as every helper call does.
NEUTRAL_HELPERS: dict[str, Callable[[Interpreter, list[int]], int]] = {
    name: _ok for name in (
        "skb_adjust_room", "skb_change_head", "skb_change_tail", "skb_change_proto",
        "skb_change_type", "l3_csum_replace", "l4_csum_replace", "xdp_adjust_head",
        "xdp_adjust_tail", "xdp_adjust_meta", "skb_vlan_push", "skb_vlan_pop",
        "set_hash", "skb_set_tunnel_key", "skb_set_tunnel_opt", "clone_redirect",
        "redirect_neigh", "redirect_peer", "skb_pull_data", "csum_level", "spin_lock",
        "spin_unlock", "snprintf", "trace_vprintk", "send_signal", "override_return")}
NEUTRAL_HELPERS.update({name: _scalar for name in (
    "csum_diff", "get_hash_recalc", "get_socket_cookie", "get_numa_node_id",
    "ktime_get_tai_ns", "get_route_realm", "get_cgroup_classid", "fib_lookup",
    "csum_update", "get_socket_uid", "skb_get_tunnel_key", "perf_event_read")})
NEUTRAL_HELPERS["skb_store_bytes"] = _store_bytes
NEUTRAL_HELPERS["xdp_store_bytes"] = _store_bytes  # (xdp_md, offset, from, len)


XDP_DATA, XDP_DATA_META = 0, 8  # struct xdp_md offsets (refinterp.XDP_PTR_FIELDS)
XDP_META_MAX = 32  # the kernel's limit on XDP metadata bytes
ETH_HLEN = 14


def _xdp_adjust_meta(it: Interpreter, r: list[int]) -> int:
    """bpf_xdp_adjust_meta(ctx, delta): data_meta moves by delta within the headroom,
    at most 32 bytes before data, 4-byte aligned; -EINVAL otherwise."""
    ctx, delta = r[1], s32(r[2])
    data, meta = it.ctx_pointer(ctx, XDP_DATA), it.ctx_pointer(ctx, XDP_DATA_META)
    if data is None or meta is None:
        return -EINVAL
    new = meta + delta
    if delta & 3 or new > data or data - new > XDP_META_MAX or \
            new < it.packet - PACKET_HEADROOM:
        return -EINVAL
    it.set_ctx_pointer(ctx, XDP_DATA_META, new)
    return 0


def _xdp_adjust_head(it: Interpreter, r: list[int]) -> int:
    """bpf_xdp_adjust_head(ctx, delta): data (and the metadata before it) moves by
    delta, staying in the headroom and ETH_HLEN before data_end; -EINVAL otherwise."""
    ctx, delta = r[1], s32(r[2])
    data, meta = it.ctx_pointer(ctx, XDP_DATA), it.ctx_pointer(ctx, XDP_DATA_META)
    if data is None or meta is None:
        return -EINVAL
    new = data + delta
    if new - (data - meta) < it.packet - PACKET_HEADROOM or new > it.packet_end - ETH_HLEN:
        return -EINVAL
    it.set_ctx_pointer(ctx, XDP_DATA, new)
    it.set_ctx_pointer(ctx, XDP_DATA_META, new - (data - meta))
    return 0


NEUTRAL_HELPERS["xdp_adjust_meta"] = _xdp_adjust_meta
NEUTRAL_HELPERS["xdp_adjust_head"] = _xdp_adjust_head
SOCKET_BYTES = 4096  # a found socket / conntrack entry: zero bytes the program may read


def _found(it: Interpreter, r: list[int]) -> int:
    """A lookup of a socket or a conntrack entry: found or NULL, as the world's next
    lookup choice says; a found object's bytes are the world's (World.values), so the
    solver may choose its fields."""
    return it.fresh_region("found object", SOCKET_BYTES) if it.next_hit() else 0


# lookups returning an object or NULL (their choice is a lookup hit, solved like one)
FOUND_HELPERS = frozenset({"sk_lookup_tcp", "sk_lookup_udp", "skc_lookup_tcp"})
NEUTRAL_HELPERS.update({name: _found for name in FOUND_HELPERS})
NEUTRAL_HELPERS.update({name: _ok for name in ("sk_release", "skb_ecn_set_ce")})
NEUTRAL_HELPERS.update({name: _scalar for name in (
    "tcp_check_syncookie", "tcp_gen_syncookie", "check_mtu", "tcp_raw_check_syncookie_ipv4",
    "tcp_raw_check_syncookie_ipv6", "tcp_raw_gen_syncookie_ipv4",
    "tcp_raw_gen_syncookie_ipv6")})
FOUND_KFUNCS = frozenset({"bpf_xdp_ct_lookup", "bpf_skb_ct_lookup", "bpf_xdp_flow_lookup"})
NEUTRAL_KFUNCS: dict[str, Callable[[Interpreter, list[int]], int]] = {
    name: _found for name in FOUND_KFUNCS}
NEUTRAL_KFUNCS.update({name: _ok for name in ("bpf_ct_release",)})


def helper_name(insn: Insn) -> str:
    hid = insn.imm
    return HELPER_NAMES[hid] if 0 <= hid < len(HELPER_NAMES) else ""

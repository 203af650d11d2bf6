"""Pricing one basic block in one abstract state: instructions on the overlap model
(lanes and chains), helper and kfunc calls by their arguments, bpf-to-bpf calls,
callbacks times their iteration range, tail calls."""

from __future__ import annotations

import math

from bpflint.analysis import calls
from bpflint.analysis import scalar as sc
from bpflint.analysis.fixpoint import (
    BlockView,
    Budget,
    InsnView,
    Views,
    insn_view,
    step,
)
from bpflint.analysis.sizes import CallSizes, call_sizes
from bpflint.analysis.state import (
    UNKNOWN,
    Kind,
    State,
    Val,
    func_keys,
)
from bpflint.analysis.transfer import Env, Machine
from bpflint.cfg.graph import RET_OPCODES, Block, Cfg, build_cfg, is_tail_call
from bpflint.cfg.loops import LoopForest, find_loops
from bpflint.cost.callbacks import (
    ByIndex,
    callback_by_index,
    callback_runs,
    dearest_callback,
    overlapped_iterations,
)
from bpflint.cost.callee_cost import callee_total
from bpflint.cost.callsites import caller_insn
from bpflint.cost.frame import (
    LOOSE_SIZE_BYTES,
    PATH_INSNS,
    PATH_NS,
    SHARPEN_STEPS,
    BlockInfo,
    CalleeOverlap,
    FuncResult,
    Lines,
    TimedKey,
    Unbounded,
    add_lines,
    add_path_lines,
    callee_entry,
    callee_ns,
    last_state_read,
    source_loc,
    widen_thresholds,
)
from bpflint.cost.lanes import Run, jump_ns
from bpflint.cost.model import CostTable
from bpflint.cost.model import helper_name as model_helper_name
from bpflint.cost.options import AnalysisOptions
from bpflint.cost.overlap import (
    BRANCH,
    CALL,
    Timed,
    add_lanes,
    call_step,
    lane_costs,
    sum_lanes,
)
from bpflint.cost.paths import (
    RET,
    TAIL,
    Cost,
    Count,
    Target,
    add,
    scale,
)
from bpflint.cost.shared_prices import PricedBlock, Replays, SharedPrices
from bpflint.isa.insn import Insn
from bpflint.obj.model import BpfObject, FuncKey, Function, MapDef
from bpflint.results import (
    CallNote,
    Diagnostic,
    LoopNote,
)

BLOCK_MEMO_KEPT = 200_000  # priced blocks a program keeps before starting afresh


class BlockPricing:
    """Analysis state shared by every function context of one object, and the pricing
    of one block: its instructions, helper and kfunc calls, callbacks, tail calls.

    Subclassed by LoopBounds (loop_bounds.py) and ProgramAnalysis (engine.py), which
    walks functions: ``function`` and ``program_cost`` are its."""

    def __init__(self, obj: BpfObject, table: CostTable | None, options: AnalysisOptions,
                 budget: Budget) -> None:
        self.obj = obj
        self.table = table
        self.options = options
        self.budget = budget
        self.cfgs: dict[FuncKey, tuple[Cfg, LoopForest, tuple[int, ...]]] = {}
        self.memo: dict[tuple[FuncKey, str, State], FuncResult] = {}
        self.chain: list[FuncKey] = []
        self.diags: list[Diagnostic] = []
        self.loose_sizes: set[tuple[int, str]] = set()  # (pc, argument) diagnosed
        # BPF005's message -> the tail calls it is about, by (function, pc)
        self.open_calls: dict[str, set[tuple[FuncKey, int]]] = {}
        self.async_callbacks: set[FuncKey] = set()
        self.priced: set[str] = set()  # helper/kfunc names looked up in the table
        self.sharpen_left = SHARPEN_STEPS
        # Timed values of priced instructions, by what they are made of (Run.add)
        self.timed: dict[TimedKey, Timed] = {}
        # Priced blocks by (id(block), program type, call chain, what pricing read of
        # the state): (its costs, tail-call targets and open maps it added). Keyed by
        # id(): the blocks live in ``cfgs``, as long as this analysis.
        self.block_memo: dict[tuple[int, str, tuple[FuncKey, ...], tuple[InsnView, ...]],
                              PricedBlock] = {}
        # the same by what a block holds (_shared_pricing): an unrolled loop's copies
        self.shared = SharedPrices()
        self.replays: tuple[Block, Replays] | None = None  # the pricing recording them
        self.last_reads: dict[int, int] = {}  # id(block) -> last_state_read(block)
        # loader-set variables read on the analysed paths -> the loads reading them
        self.loader_reads: dict[str, dict[int, Insn]] = {}
        # for the cost map: loop bounds and priced calls by source line, the widest
        # over calling contexts
        self.loop_notes: dict[tuple[str, int, str], LoopNote] = {}
        self.call_notes: dict[tuple[str, int, str], CallNote] = {}

    def _note_loop(self, insn: Insn, kind: str, max_runs: int | None, how: str) -> None:
        loc = insn.line
        if loc is None:
            return
        key = (loc.file, loc.line, kind)
        old = self.loop_notes.get(key)
        if old is None or (old.max_runs is not None
                           and (max_runs is None or max_runs > old.max_runs)):
            self.loop_notes[key] = LoopNote(loc.file, loc.line, kind, max_runs, how)

    def _note_call(self, insn: Insn, where: tuple[str, int], cost: Cost) -> None:
        if self.replays is not None:
            block, replays = self.replays
            replays[0].append((block.insns.index(insn), where, cost))
        if insn.is_kfunc_call:
            name = insn.reloc.symbol if insn.reloc is not None else f"kfunc#{insn.imm}"
        else:
            name = calls.helper_name(insn.imm)
        key = (where[0], where[1], name)
        old = self.call_notes.get(key)
        if math.isinf(cost[1]) or (old is not None and old.ns >= cost[3]
                                   and old.insns >= cost[1]):
            return
        self.call_notes[key] = CallNote(where[0], where[1], name, int(cost[1]),
                                        round(cost[3], 3))

    # -- per-function structure ----------------------------------------------
    def structure(self, func: Function) -> tuple[Cfg, LoopForest, tuple[int, ...]]:
        return function_structure(self.cfgs, func)

    def diag(self, rule: str, name: str, message: str, insn: Insn | None) -> Diagnostic:
        d = Diagnostic(rule, name, message, source_loc(insn))
        if d not in self.diags:
            self.diags.append(d)
        return d

    def function(self, key: FuncKey, entry: State, prog_type: str) -> FuncResult:
        """The cost of one function in one context (ProgramAnalysis.function)."""
        raise NotImplementedError

    def program_cost(self, program_name: str, depth: int) -> tuple[Cost, Lines]:
        """The cost of a tail-call target program (ProgramAnalysis.program_cost)."""
        raise NotImplementedError

    # -- costs of the instructions of one block -------------------------------
    def _cost_block(self, cfg: Cfg, b: int, state: State, env: Env, prog_type: str,
                    tail_targets: set[str], open_maps: set[str], views: Views
                    ) -> tuple[BlockInfo, Val | None]:
        """A block's costs from one entry state, and r0 at its exit (None: no exit).

        A block's price reads the state only where the block touches memory (which
        kind) and at calls (their arguments): those views are its memo key, so a
        loop body costed once per iteration is priced once. The views come from the
        fixpoint's walk of the block from the same state where it made one, else
        from walking it here."""
        block = cfg.blocks[b]
        view = views.get(block, state)
        reads, r0 = view if view is not None else self._block_view(block, state, env, prog_type)
        chain = tuple(self.chain)
        key = (id(block), prog_type, chain, reads)
        got = self.block_memo.get(key)
        if got is None:
            got = self._shared_pricing(block, reads, prog_type, chain)
            if len(self.block_memo) >= BLOCK_MEMO_KEPT:
                self.block_memo.clear()
            self.block_memo[key] = got
        info, tails_added, opens_added = got
        tail_targets.update(tails_added)
        open_maps.update(opens_added)
        return info, r0

    def _shared_pricing(self, block: Block, reads: tuple[InsnView, ...], prog_type: str,
                        chain: tuple[FuncKey, ...]) -> PricedBlock:
        """A block's price from its view, shared with the blocks holding the same
        instructions (shared_prices.py): one taking another's price records what
        pricing it would (Replays), its closing jump priced on its own edges."""
        content = self.shared.content_of.get(id(block))
        if content is None:
            content = self.shared.content(block)
        key = (content, prog_type, chain, reads)
        got = self.shared.priced.get(key)
        recording, self.replays = self.replays, None
        try:
            if got is not None:
                (info, tails, opens), (notes, sizes) = got
                for index, where, cost in notes:
                    self._note_call(block.insns[index], where, cost)
                for index, hid, call_sizes_, max_ns in sizes:
                    self._loose_size(block.insns[index], hid, call_sizes_, max_ns)
                edge_ns = jump_ns(self.table, block)
                if edge_ns != info.edge_ns:
                    info = BlockInfo(info.cost, info.lines, info.exits, edge_ns, info.lanes,
                                     info.goto_ns, info.steps, info.jump_line)
                return info, tails, opens
            tails_added: set[str] = set()
            opens_added: set[str] = set()
            replays: Replays = ([], [])
            self.replays = (block, replays)
            info = self._price_block(block, reads, prog_type, tails_added, opens_added)
        finally:
            self.replays = recording
        priced = (info, frozenset(tails_added), frozenset(opens_added))
        self.shared.put(key, priced, replays, BLOCK_MEMO_KEPT)
        return priced

    def _block_view(self, block: Block, state: State, env: Env, prog_type: str) -> BlockView:
        """Walk a block for its view (fixpoint.BlockView), bpf-to-bpf calls returning
        what the callee returns."""
        m = Machine(state)
        reads: list[InsnView] = []
        r0: Val | None = None
        # Pricing reads the state only at memory accesses, calls and exits: past
        # the last of them the block need not be interpreted.
        interpret_until = self.last_reads.get(id(block))
        if interpret_until is None:
            interpret_until = self.last_reads[id(block)] = last_state_read(block)
        insns = block.insns
        for index in range(interpret_until + 1):
            insn = insns[index]
            reads.append(insn_view(m, insn))
            if insn.is_exit:
                r0 = m.regs[0]
            elif index < interpret_until and not insn.is_branch:
                step(m, insn, env, lambda i, mm: self._subcall_result(i, mm.regs, prog_type))
        reads.extend([None] * (len(insns) - len(reads)))
        return tuple(reads), r0

    def _price_block(self, block: Block, reads: tuple[InsnView, ...], prog_type: str,
                     tail_targets: set[str], open_maps: set[str]) -> BlockInfo:
        table = self.table
        # the block's cost so far, field by field, summed in instruction order
        n_lo: Count = 0
        n_hi: Count = 0
        lo_sum = 0.0
        hi_sum = 0.0
        lines: Lines = {}
        exits: list[Target] = []
        edge_ns = jump_ns(self.table, block)
        run = Run(self.timed, table.slot_ns if table is not None else 0.0)
        steps: list[Timed | float] = []
        goto_ns = 0.0
        last_insn = block.last
        n_reads = len(reads)
        for index, insn in enumerate(block.insns):
            src_line = insn.line
            key = (src_line.file, src_line.line) if src_line is not None else None
            line = None
            if key is not None:
                line = lines.get(key)
                if line is None:
                    line = lines[key] = [0, 0.0, 0, 0.0]
                line[0] += 1
                line[2] += 1
            read = reads[index] if index < n_reads else None
            op = insn.opcode
            if op != 0x85:  # not a call (the opcode byte: Insn's properties cost a call)
                n_lo += 1
                n_hi += 1
                if op in RET_OPCODES:
                    exits.append(RET)
                if table is None or (edge_ns and insn is last_insn):
                    continue  # free, or priced on the edges instead
                lo, hi, issue = table.insn_price(insn, read if isinstance(read, str) else None)
                lo_sum += lo
                # priced with the rest of its run between calls (overlap.py)
                timed_insn = run.add(insn, key, hi, issue)
                if insn is last_insn and (op == 0x05 or op == 0x06):
                    goto_ns = timed_insn.lanes[BRANCH]
                steps.append(timed_insn)
                continue
            assert isinstance(read, tuple)
            extra: Lines = {}
            cost = self._call_cost(insn, read, prog_type, extra, tail_targets, open_maps)
            if not insn.is_pseudo_call and key is not None:
                self._note_call(insn, key, cost)
            overlap = self._call_overlap(insn, read, prog_type)
            if edge_ns and insn is last_insn:
                cost = (cost[0], cost[1], 0.0, 0.0)  # priced on the edges instead
            elif overlap is not None:
                # one step of the run (overlap.py); the callee's lines keep their
                # instructions, the call's line takes its share of the run's ns
                call_ns = self._ns(insn, None)
                step_ = call_step(tuple(lat + call_ns[0] for lat in overlap.read_latency),
                                  add_lanes(overlap.lanes, lane_costs(CALL, call_ns[1], 0.0)))
                run.add_step(step_, key, cost[3])
                steps.append(step_)
                cost = (cost[0], cost[1], cost[2], 0.0)
                for callee_line in extra.values():
                    callee_line[1] = callee_line[3] = 0.0
            else:
                hi_sum += run.flush(lines)[3]
                if cost[3]:
                    steps.append(cost[3])
            n_lo += cost[0]
            n_hi += cost[1]
            lo_sum += cost[2]
            hi_sum += cost[3]
            if line is not None:
                line[1] += cost[3] - callee_ns(extra, PATH_INSNS)
                line[3] += cost[3] - callee_ns(extra, PATH_NS)
            add_lines(lines, extra, 1)
            if is_tail_call(insn):
                exits.append(TAIL)
        if block.falls_off:
            exits.append(RET)
        hi_sum += run.flush(lines)[3]
        lanes = sum_lanes(steps)
        last = last_insn.line
        jump_line = (last.file, last.line) if edge_ns and last is not None else None
        return BlockInfo((n_lo, n_hi, lo_sum, hi_sum), lines, exits, edge_ns, lanes, goto_ns,
                          tuple(steps), jump_line)

    def _call_overlap(self, insn: Insn, regs: tuple[Val, ...], prog_type: str
                      ) -> CalleeOverlap | None:
        """How a bpf-to-bpf call overlaps its caller, None for other instructions (and
        for calls priced as barriers)."""
        if not insn.is_pseudo_call or self.table is None or insn.reloc is None \
                or insn.reloc.func is None:
            return None
        try:  # memoised: _call_cost analysed this callee in this context already
            callee = self.function(insn.reloc.func, callee_entry(regs[1:6]), prog_type)
        except Unbounded:
            return None
        return callee.as_callee

    def _subcall_result(self, insn: Insn, regs: list[Val], prog_type: str) -> Val:
        target = insn.reloc.func if insn.reloc is not None else None
        if target is None:
            return UNKNOWN
        try:
            return self.function(target, callee_entry(regs[1:6]), prog_type).ret_val
        except Unbounded:
            return UNKNOWN

    def _ns(self, insn: Insn, kind: str | None) -> tuple[float, float]:
        if self.table is None:
            return (0.0, 0.0)
        return self.table.insn_ns(insn, kind)

    def _call_cost(self, insn: Insn, regs: tuple[Val, ...], prog_type: str, lines: Lines,
                   tail_targets: set[str], open_maps: set[str]) -> Cost:
        """A call's cost from the registers r0..r5 before it."""
        if insn.is_pseudo_call:
            lo, hi = self._ns(insn, None)
            target = insn.reloc.func if insn.reloc is not None else None
            if target is None:
                raise Unbounded(self.diag("BPF007", "bad-call", "unresolved bpf-to-bpf call",
                                          insn))
            callee = self.function(target, callee_entry(regs[1:6]), prog_type)
            callee_cost = callee_total(callee, self, prog_type)
            add_lines(lines, callee.lines_ret, 1)
            return add((1, 1, lo, hi), callee_cost)
        if insn.is_kfunc_call:
            name = insn.reloc.symbol if insn.reloc is not None else f"kfunc#{insn.imm}"
            self.priced.add(name)
            lo, hi = self.table.kfunc_ns(name) if self.table else (0.0, 0.0)
            return (1, 1, lo, hi)
        return self._helper_cost(insn, regs, prog_type, lines, tail_targets, open_maps)

    def _helper_cost(self, insn: Insn, regs: tuple[Val, ...], prog_type: str, lines: Lines,
                     tail_targets: set[str], open_maps: set[str]) -> Cost:
        hid = insn.imm
        map_type, key_size = None, None
        if regs[1].kind == Kind.MAP_PTR and isinstance(regs[1].ref, str):
            mapdef = self.obj.maps.get(regs[1].ref)
            if mapdef:
                map_type, key_size = mapdef.type_name, mapdef.key_size
        sizes = call_sizes(hid, regs, self.obj.maps)
        size = None if sizes is None else (sizes.lo, sizes.hi)
        base = (1, 1, 0.0, 0.0)
        name = model_helper_name(hid)
        self.priced.update((name, f"{name}[{map_type}]"))
        if hid == calls.TAIL_CALL:
            self._tail_call(insn, regs, tail_targets, open_maps)
        if hid == calls.FOR_EACH_MAP_ELEM and self._map_def(regs[1]) is None:
            # Its callback may run any number of times, or none (an empty hash map):
            # the worst case is unbounded, the best still known (the call alone).
            self.diag("BPF003", "unknown-map",
                      "bpf_for_each_map_elem over a map bpflint cannot identify", insn)
            self._note_loop(insn, "callback", None, "bpf_for_each_map_elem over a map "
                            "bpflint cannot identify")
            min_ns = self.table.helper_ns(hid, None, (0, 0))[0] if self.table else 0.0
            return (1, math.inf, min_ns, math.inf)
        if hid in calls.CALLBACK_ARG and hid != calls.TIMER_SET_CALLBACK:
            iters, cb_cost, cb_lines, overlap, by_index = self._callback(insn, regs, hid,
                                                                         prog_type)
            if self.table is not None:
                lo, hi = self.table.helper_ns(hid, map_type, iters)
                base = (1, 1, lo, hi)
            cb_total = scale(cb_cost, iters[0], iters[1])
            ns_mult = float(iters[1])
            saved = overlapped_iterations(self.table, hid, cb_cost, overlap, iters[1])
            if saved:
                cb_total = (*cb_total[:3], cb_total[3] - saved)
                ns_mult *= cb_total[3] / (cb_total[3] + saved)
            if by_index is None or by_index[0][1] > cb_total[1]:
                add_lines(lines, cb_lines, iters[1], ns_mult)
            else:  # instructions run by run (callbacks.by_index), ns as before
                cb_total = (max(cb_total[0], by_index[0][0]), by_index[0][1], *cb_total[2:])
                add_path_lines(lines, cb_lines, iters[1], ns_mult, PATH_NS)
                add_path_lines(lines, by_index[1], 1, 1.0, PATH_INSNS)
            self._note_loop(insn, "callback", iters[1], f"{calls.helper_name(hid)}: "
                            f"{iters[0]} to {iters[1]} callback runs")
            return add(base, cb_total)
        if hid == calls.TIMER_SET_CALLBACK:
            self.async_callbacks.update(func_keys(regs[2]))
        if self.table is not None:
            lo, hi = self.table.helper_ns(hid, map_type, size, key_size)
            base = (1, 1, lo, hi)
        if sizes is not None:
            self._loose_size(insn, hid, sizes, base[3])
        return base

    def _loose_size(self, insn: Insn, hid: int, sizes: CallSizes, max_ns: float) -> None:
        """Say where a large size bound comes from when the value analysis did not
        bound the size itself: the number alone would look like a bug."""
        if self.replays is not None:
            block, replays = self.replays
            replays[1].append((block.insns.index(insn), hid, sizes, max_ns))
        for arg in sizes.args:
            if not arg.capped or arg.hi <= LOOSE_SIZE_BYTES:
                continue
            where = "" if insn.line is not None else f" (instruction {insn.pc})"
            priced = f", priced at up to {max_ns / 1000:.1f}us" if max_ns else ""
            message = (f"{arg.what} of {calls.helper_name(hid)}"
                       f"{where} is bounded only by {arg.buffer}: up to {arg.hi} bytes"
                       f"{priced}; bound it in the program (n &= MASK, or "
                       f"if (n > MAX) return) to tighten the worst case")
            if (insn.pc, arg.what) not in self.loose_sizes:  # first context only
                self.loose_sizes.add((insn.pc, arg.what))
                self.diag("BPF008", "loose-size-bound", message, insn)

    def open_tail_calls(self) -> dict[str, int]:
        """How many tail-call instructions each BPF005 message is about."""
        return {message: len(sites) for message, sites in self.open_calls.items()}

    def _open_tail_call(self, insn: Insn, message: str) -> None:
        """BPF005 at the caller's line (not bpf_tail_call_static's asm in libbpf's
        header), counted per call instruction: one finding lists them all."""
        func = self.chain[-1] if self.chain else ("", -1)
        site = caller_insn(self.obj.functions[func].insns, insn) if self.chain else insn
        self.open_calls.setdefault(message, set()).add((func, insn.pc))
        self.diag("BPF005", "open-tail-call", message, site)

    def _tail_call(self, insn: Insn, regs: tuple[Val, ...], tail_targets: set[str],
                   open_maps: set[str]) -> None:
        prog_map = regs[2]
        name = prog_map.ref if prog_map.kind == Kind.MAP_PTR else None
        if not isinstance(name, str):
            open_maps.add("?")
            self._open_tail_call(insn, "tail call through a map bpflint cannot identify")
            return
        configured = self.options.tail_call_targets.get(name)
        if configured:
            tail_targets.update(configured)
            return
        mapdef = self.obj.maps.get(name)
        index = regs[3].s if regs[3].kind == Kind.SCALAR else sc.UNKNOWN
        known = () if mapdef is None or (mapdef.section_slots and index.umin != index.umax) \
            else mapdef.prog_slots  # section-filled slots: a constant index only
        slots = [prog for slot, prog in known if index.umin <= slot <= index.umax]
        if not slots:
            open_maps.add(name)
            self._open_tail_call(insn, f"tail call through prog array '{name}' with no "
                                 "known targets (add them under [tail_calls] in "
                                 "bpfbudget.toml)")
            return
        tail_targets.update(slots)

    def _map_def(self, val: Val) -> MapDef | None:
        """The map a map pointer points to, if bpflint knows it."""
        name = val.ref if val.kind == Kind.MAP_PTR else None
        return self.obj.maps.get(name) if isinstance(name, str) else None

    def _callback(self, insn: Insn, regs: tuple[Val, ...], hid: int, prog_type: str
                  ) -> tuple[tuple[int, int], Cost, Lines, CalleeOverlap | None, ByIndex]:
        keys = func_keys(regs[calls.CALLBACK_ARG[hid]])
        if not keys:
            raise Unbounded(self.diag("BPF003", "unknown-callback",
                                      f"{calls.helper_name(hid)} with a callback bpflint "
                                      "cannot identify", insn))
        lo, hi, args = callback_runs(hid, regs, self._map_def(regs[1]))

        def price(key: FuncKey, at: list[Val] = args
                  ) -> tuple[Cost, Lines, CalleeOverlap | None, Val]:
            res = self.function(key, callee_entry(at, foreign=False), prog_type)
            return callee_total(res, self, prog_type), res.lines_ret, res.as_callee, res.ret_val

        def run(at: list[Val]) -> tuple[Cost, Lines, Val]:
            cost, cb_lines, _, ret = price(keys[0], at)
            return cost, cb_lines, ret

        # a register that may hold one of several callbacks: the dearest, as a whole;
        # one callback: also run by run (bpf_loop)
        cb_cost, lines, overlap, always_continues = dearest_callback(keys, price)
        by_index = None if len(keys) > 1 else callback_by_index(
            hid, lo, hi, args, self.structure(self.obj.functions[keys[0]])[0], run)
        if not always_continues:  # the helper stops early where the callback returns 1
            lo = min(lo, 1)
        return (lo, hi), cb_cost, lines, overlap, by_index


def function_structure(cfgs: dict[FuncKey, tuple[Cfg, LoopForest, tuple[int, ...]]],
                       func: Function) -> tuple[Cfg, LoopForest, tuple[int, ...]]:
    """A function's CFG, loops and widening thresholds, built once per ``cfgs``."""
    got = cfgs.get(func.key)
    if got is None:
        cfg = build_cfg(func)
        got = (cfg, find_loops(cfg), widen_thresholds(func))
        cfgs[func.key] = got
    return got

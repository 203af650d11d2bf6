"""The cost engine: [min, max] instructions and nanoseconds of every program.

For each function reached from a program's entry (per calling context), the
value analysis gives abstract states, the loop analysis gives trip bounds, and
the path solver (bpflint/cost/paths.py) gives the cheapest and dearest paths.
bpf-to-bpf calls add their callee's cost; callback helpers add the callback's
cost times their iteration range; successful tail calls add the target
program's cost, up to the kernel's chain limit."""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Mapping

from bpflint.analysis.fixpoint import (
    Budget,
    Iterations,
    StepBudgetExceeded,
    analyze_function,
)
from bpflint.analysis.scalar import Scalar
from bpflint.analysis.state import (
    UNKNOWN,
    Kind,
    State,
    Val,
    join_val,
)
from bpflint.analysis.transfer import Env
from bpflint.cfg.graph import Cfg
from bpflint.cfg.loops import LoopForest
from bpflint.cost.callee_writes import CalleeWrites
from bpflint.cost.callsites import fold_call_sites
from bpflint.cost.expand import (
    expand_lines,
    path_line_costs,
)
from bpflint.cost.frame import (
    MAX_CALL_FRAMES,
    MAX_TAIL_CALLS,
    PATH_INSNS,
    PATH_NS,
    BlockInfo,
    FuncContext,
    FuncResult,
    Lines,
    Unbounded,
    add_lines,
    callee_entry,
    edge_costs,
    exit_targets,
    is_unbounded,
    merge,
    no_subcall,
    pick,
    program_entry,
    source_loc,
)
from bpflint.cost.lanes import (
    CALLEE_OVERLAP_MAX_INSNS,
)
from bpflint.cost.loop_bounds import LoopBounds
from bpflint.cost.model import CostTable
from bpflint.cost.options import AnalysisOptions
from bpflint.cost.paths import (
    RET,
    TAIL,
    Cost,
    add,
    solve_region,
)
from bpflint.cost.pricing import callee_total, function_structure
from bpflint.cost.targets import (
    ANY_DEPTH,
    CUT_CHAIN,
    Chain,
    Targets,
    find_cycle,
    replay,
    snapshot,
)
from bpflint.cost.timer_callbacks import timer_callbacks
from bpflint.obj.model import BpfObject, FuncKey, Function, Program
from bpflint.results import (
    LoaderSetting,
    ProgramResult,
)


class ProgramAnalysis(LoopBounds):
    """Walks the functions of one object: each function in each calling context, once
    (memoised), to a fixpoint, priced (pricing.py), its loops bounded (loop_bounds.py)
    and its worst paths solved (paths.py) and expanded (expand.py)."""

    def __init__(self, obj: BpfObject, table: CostTable | None, options: AnalysisOptions,
                 budget: Budget, targets: Targets | None = None) -> None:
        super().__init__(obj, table, options, budget)
        # tail-call targets analysed so far, shared by the object's programs
        self.targets = Targets() if targets is None else targets
        self.replayed: set[str] = set()  # targets whose findings this analysis has
        self.target_names: set[str] | None = None  # _target_names, once computed
        # what callees write of their callers' frames (a caller forgets only that)
        self.callee_writes = CalleeWrites(obj, budget, _structure_of(obj, self.cfgs),
                                          self.loader_reads)
        # the program itself with its tail calls (targets' are in self.targets)
        self.chain_memo: dict[tuple[str, int], Chain] = {}
        self.chain_lines: dict[tuple[str, int], Lines] = {}

    # -- one function in one context -----------------------------------------
    def function(self, key: FuncKey, entry: State, prog_type: str) -> FuncResult:
        func = self.obj.functions.get(key)
        if func is None:
            raise Unbounded(self.diag("BPF007", "bad-call",
                                      f"call to unknown function at {key[0]}+{key[1]}", None))
        if key in self.chain:
            raise Unbounded(self.diag("BPF007", "recursion",
                                      f"recursive call of {func.name} (the kernel rejects it)",
                                      func.insns[0]))
        if len(self.chain) >= MAX_CALL_FRAMES:
            raise Unbounded(self.diag("BPF007", "call-depth",
                                      f"call chain deeper than {MAX_CALL_FRAMES} frames at "
                                      f"{func.name}", func.insns[0]))
        memo_key = (key, prog_type, entry)
        got = self.memo.get(memo_key)
        if got is not None:
            return got
        self.chain.append(key)
        try:
            result = self._analyze(func, entry, prog_type)
        finally:
            self.chain.pop()
        self.memo[memo_key] = result
        return result

    def _analyze(self, func: Function, entry: State, prog_type: str) -> FuncResult:
        cfg, forest, thresholds = self.structure(func)
        env = Env(prog_type, self.obj.maps, self.loader_reads,
                  self.callee_writes.hook(prog_type))
        if forest.irreducible:
            b, _ = forest.irreducible[0]
            raise Unbounded(self.diag("BPF003", "irreducible-loop",
                                      f"irreducible control flow in {func.name}",
                                      cfg.blocks[b].last))
        self.budget.check_clock()
        # Loop iterations the fixpoint runs are run again to bound and to cost loops.
        iterations = Iterations()
        flow = analyze_function(cfg, forest, entry, env, no_subcall, self.budget, thresholds,
                                iterations)
        blocks: dict[int, BlockInfo] = {}
        ret_val: Val | None = None
        tail_targets: set[str] = set()
        open_maps: set[str] = set()
        for b in cfg.rpo:
            state = flow.block_in.get(b)
            if state is None:
                continue
            info, r0 = self._cost_block(cfg, b, state, env, prog_type, tail_targets, open_maps,
                                        iterations.views)
            blocks[b] = info
            if r0 is not None:
                ret_val = r0 if ret_val is None else join_val(ret_val, r0)

        ctx = FuncContext(cfg, forest, thresholds, env, prog_type, tail_targets, open_maps,
                   iterations)
        summaries = self._summaries(ctx, sorted(forest.loops), flow, blocks)
        region = solve_region(cfg, forest, None, edge_costs(blocks), exit_targets(blocks),
                              flow.edge_out, summaries)
        if any(math.isinf(c[1]) for c in region.cost.values()):
            for header, summary in summaries.items():
                parent = forest.loops[header].parent
                if is_unbounded(summary) and (parent is None or parent not in summaries
                                               or is_unbounded(summaries[parent])):
                    cause, read = self._loader_cause(cfg, forest.loops[header], func)
                    self.diag("BPF003", "unbounded-loop",
                              f"no bound proven for the loop in {func.name} "
                              f"({summary.bound.how}){cause}",
                              read or cfg.blocks[header].insns[0])
        as_callee = None
        if self.table is not None and len(self.chain) > 1 and TAIL not in region.cost \
                and RET in region.cost and not math.isinf(region.cost[RET][3]) \
                and len(func.insns) <= CALLEE_OVERLAP_MAX_INSNS:
            as_callee = self._callee_overlap(ctx, flow, blocks, summaries)
        lines_ret: Lines = {}
        lines_tail: Lines = {}
        for at in (PATH_INSNS, PATH_NS):
            if RET in region.cost:
                expand_lines(region, RET, 1, blocks, summaries, lines_ret, None, at)
            if TAIL in region.cost:
                expand_lines(region, TAIL, 1, blocks, summaries, lines_tail, None, at)
        return FuncResult(region.cost.get(RET), region.cost.get(TAIL), ret_val or UNKNOWN,
                          lines_ret, lines_tail, frozenset(tail_targets), frozenset(open_maps),
                          as_callee)

    # -- whole programs, tail calls included ----------------------------------
    def program_cost(self, program_name: str, depth: int) -> tuple[Cost, Lines]:
        """Cost of running a program that was reached after ``depth`` tail calls, and
        the lines of its worst paths."""
        chain = self._chain(program_name, depth)
        if depth == 0 and chain.height == CUT_CHAIN:
            self._note_cycle(program_name, chain)
        return chain.cost, self._chain_lines(program_name, depth)

    def tail_targets_of(self, program_name: str) -> tuple[str, ...]:
        """The programs the tail calls of a program analysed from its entry (depth 0)
        may jump to, as bpflint resolved them (JSON ``tail_call_targets``)."""
        chain = self.chain_memo.get((program_name, ANY_DEPTH)) or \
            self.chain_memo.get((program_name, 0))
        return tuple(sorted(chain.res.tail_targets)) if chain is not None else ()

    def _note_cycle(self, program_name: str, chain: Chain) -> None:
        """BPF010: the worst case went as deep as the kernel lets tail calls go, which
        takes a cycle of them (first found depth-first, targets in name order)."""
        edges = {name: sorted(run.res.tail_targets) for name, run in self.targets.runs.items()
                 if run.res is not None}
        edges[program_name] = sorted(chain.res.tail_targets)
        cycle = find_cycle(program_name, edges)
        prog = next(p for p in self.obj.programs if p.name == program_name)
        entry = self.obj.functions[prog.entry]
        how = f"they can cycle ({' -> '.join(cycle)})" if cycle else "their chain is longer"
        self.diag("BPF010", "tail-call-cycle",
                  f"tail calls reach the kernel's limit of {MAX_TAIL_CALLS} chained calls: "
                  f"{how}, and the worst case follows them that far; a flag that ends "
                  "such a cycle at run time (skb->cb, tc_index, the mark) is not carried "
                  "across tail calls", entry.insns[0])

    def _chain(self, program_name: str, depth: int) -> Chain:
        """A program's cost with the tail calls it makes, without lines (those of the
        worst chains only are built, by _chain_lines). An uncut result is the same at
        every depth its chains fit under the kernel's limit and is kept once for all
        of them (key ANY_DEPTH): Cilium's 30 tail-call programs, reached at many
        depths, are then costed once each; a cut one (tail-call cycles) holds at its
        own depth only. Targets' results (depth > 0) are shared by the object's
        programs (targets.py)."""
        chains = self.targets.chains if depth else self.chain_memo
        memo = chains.get((program_name, ANY_DEPTH))
        if memo is None or depth + memo.height > MAX_TAIL_CALLS:
            memo = chains.get((program_name, depth))
        if memo is not None:
            for name in memo.closure:
                self._replay(name)
            return memo
        prog = next((p for p in self.obj.programs if p.name == program_name), None)
        if prog is None:
            raise Unbounded(self.diag("BPF005", "open-tail-call",
                                      f"tail-call target '{program_name}' is not a program "
                                      "of this object", None))
        # a program that may be another's target too is analysed once, for both
        res = self._target(prog) if depth or prog.name in self._target_names() else \
            self.function(prog.entry, program_entry(), prog.prog_type)
        closure = [program_name] if depth else []
        cost, tail_cost = res.ret, res.tail
        height, by_insns, by_ns = 0, "", ""
        if tail_cost is not None and res.tail_targets:
            if depth >= MAX_TAIL_CALLS:
                height = CUT_CHAIN  # the kernel lets this tail call fail: not followed
            else:
                worst: Cost | None = None
                for target in sorted(res.tail_targets):
                    below = self._chain(target, depth + 1)
                    closure.extend(n for n in below.closure if n not in closure)
                    c = below.cost
                    height = CUT_CHAIN if CUT_CHAIN in (height, below.height) else \
                        max(height, below.height + 1)
                    if worst is None or c[1] > worst[1]:
                        by_insns = target
                    if worst is None or c[3] > worst[3]:
                        by_ns = target
                    worst = c if worst is None else merge(worst, c)
                assert worst is not None
                tail_cost = add(tail_cost, worst)
        if tail_cost is not None:
            cost = tail_cost if cost is None else merge(cost, tail_cost)
        if cost is None:  # no path ends: an infinite loop for all the analysis knows
            raise Unbounded(self.diag("BPF003", "no-exit",
                                      f"no path of {prog.name} reaches exit",
                                      self.obj.functions[prog.entry].insns[0]))
        found = Chain(cost, height, res, tail_cost, by_insns, by_ns, tuple(closure))
        chains[(program_name, depth if height == CUT_CHAIN else ANY_DEPTH)] = found
        return found

    def _target_names(self) -> set[str]:
        """The programs a tail call may reach: in a prog array's known slots, or named
        in [tail_calls]."""
        if self.target_names is None:
            self.target_names = {prog for mapdef in self.obj.maps.values()
                                 for _, prog in mapdef.prog_slots}
            self.target_names.update(prog for progs in self.options.tail_call_targets.values()
                                     for prog in progs)
        return self.target_names

    def _replay(self, name: str) -> None:
        if name not in self.replayed:
            self.replayed.add(name)
            replay(self, self.targets.runs[name])

    def _target(self, prog: Program) -> FuncResult:
        """A program's entry function, analysed once for all the object's programs
        (targets.py: as a program and as any program's tail-call target) and its
        findings replayed into this analysis."""
        run = self.targets.runs.get(prog.name)
        if run is None:
            child = ProgramAnalysis(self.obj, self.table, self.options,
                                    Budget(self.options.max_steps, self.options.max_seconds),
                                    self.targets)
            try:
                run = snapshot(child, child.function(prog.entry, program_entry(),
                                                     prog.prog_type), None)
            except (Unbounded, StepBudgetExceeded, RecursionError) as exc:
                run = snapshot(child, None, exc)
            self.targets.runs[prog.name] = run
        self._replay(prog.name)
        if run.res is None:
            assert run.failure is not None
            raise run.failure
        return run.res

    def _chain_lines(self, program_name: str, depth: int) -> Lines:
        """The lines of _chain's worst paths: the program's own, and along its paths
        through a tail call those of the target dearest by instructions (for the
        instructions' pair) and by ns (for the ns pair)."""
        chain = self._chain(program_name, depth)
        key = (program_name, depth if chain.height == CUT_CHAIN else ANY_DEPTH)
        memo = self.targets.lines if depth else self.chain_lines
        got = memo.get(key)
        if got is not None:
            return got
        res = chain.res
        tail_cost = chain.tail_cost
        by_insns = by_ns = tail_cost is not None
        if tail_cost is not None and res.ret is not None:
            by_insns, by_ns = tail_cost[1] > res.ret[1], tail_cost[3] > res.ret[3]
        # Fresh dicts (the memoised function results' lines must not grow), one copy
        # each: the lines of a cycle's 33 levels are thousands of entries apiece.
        lines: Lines = {}
        if not (by_insns and by_ns):
            lines = pick(res.lines_ret, res.lines_ret)
        if by_insns or by_ns:
            tail_lines = pick(res.lines_tail, res.lines_tail)
            if chain.by_insns:
                below = self._chain_lines(chain.by_insns, depth + 1)
                if chain.by_ns != chain.by_insns:
                    below = pick(below, self._chain_lines(chain.by_ns, depth + 1))
                add_lines(tail_lines, below, 1)
            lines = tail_lines if by_insns and by_ns else \
                pick(tail_lines if by_insns else lines, tail_lines if by_ns else lines)
        memo[key] = lines
        return lines


def _reachable(obj: BpfObject, entry: FuncKey) -> list[FuncKey]:
    """The entry function and every function it calls or passes as a callback."""
    seen = [entry]
    work = [entry]
    while work:
        func = obj.functions.get(work.pop())
        if func is None:
            continue
        for insn in func.insns:
            ref = insn.reloc
            if ref is not None and ref.func is not None and ref.func not in seen:
                seen.append(ref.func)
                work.append(ref.func)
    return seen


def _structure_of(obj: BpfObject, cfgs: dict[FuncKey, tuple[Cfg, LoopForest, tuple[int, ...]]]
                  ) -> Callable[[FuncKey], tuple[Cfg, LoopForest, tuple[int, ...]] | None]:
    """CalleeWrites' way to a function's structure, sharing the analysis' cache but not
    holding the analysis: a bound method would close a reference cycle, and the whole
    analysis (170k objects for pyperf100) would then wait for the cycle collector,
    0.1-0.2 s a program, instead of being freed as the result is returned."""
    def structure_of(key: FuncKey) -> tuple[Cfg, LoopForest, tuple[int, ...]] | None:
        func = obj.functions.get(key)
        return function_structure(cfgs, func) if func is not None else None
    return structure_of


def _static_insns(obj: BpfObject, entry: FuncKey) -> int:
    return sum(len(obj.functions[k].insns) for k in _reachable(obj, entry)
               if k in obj.functions)


def analyze_program(obj: BpfObject, program: Program, table: CostTable | None,
                    options: AnalysisOptions, targets: Targets | None = None
                    ) -> ProgramResult:
    """One program's result. ``targets``: the tail-call targets analysed for the
    object's other programs (targets.py), to share across them."""
    # The cycle collector is off while a program is analysed: the analysis builds
    # millions of short-lived tuples and next to no reference cycles, and the
    # collector's passes over its live states cost 8-14% of the time and freed
    # nothing (the same peak RSS for loop1, pyperf600 and a 100k-instruction
    # loop-heavy program). What it would collect, it collects once this returns.
    enabled = gc.isenabled()
    gc.disable()
    try:
        analysis = ProgramAnalysis(obj, table, options,
                                   Budget(options.max_steps, options.max_seconds), targets)
        return _result(analysis, program.entry, program.section, program.name,
                       program.prog_type,
                       lambda: analysis.program_cost(program.name, 0)
                       if _is_named(obj, program) else _single(analysis, program))
    finally:
        if enabled:
            gc.enable()


ASYNC_CALLBACK_TYPE = "timer_callback"


def analyze_async_callbacks(obj: BpfObject, table: CostTable | None,
                            options: AnalysisOptions) -> list[ProgramResult]:
    """Timer callbacks run later, on their own: each is priced as an entry point
    (type "timer_callback", named after the function, in its arming program's section)."""
    results = []
    for key, program in timer_callbacks(obj, _reachable).items():
        analysis = ProgramAnalysis(obj, table, options,
                                   Budget(options.max_steps, options.max_seconds))
        mem = Val(Kind.MEM, Scalar.const(0))
        entry = callee_entry([mem, mem, mem], foreign=False)  # (map, key, value)

        def compute(analysis: ProgramAnalysis = analysis, key: FuncKey = key,
                    entry: State = entry, program: Program = program) -> tuple[Cost, Lines]:
            res = analysis.function(key, entry, program.prog_type)
            return callee_total(res, analysis, program.prog_type), res.lines_ret

        results.append(_result(analysis, key, program.section, obj.functions[key].name,
                               ASYNC_CALLBACK_TYPE, compute))
    return results


def _result(analysis: ProgramAnalysis, entry: FuncKey, section: str, name: str, kind: str,
            compute: Callable[[], tuple[Cost, Lines]]) -> ProgramResult:
    obj, table = analysis.obj, analysis.table
    entry_func = obj.functions[entry]
    bounded = True
    cost: Cost | None = None
    lines: Lines = {}
    try:
        cost, lines = compute()
    except Unbounded:
        bounded = False
    except StepBudgetExceeded as exc:
        bounded = False
        analysis.diag("BPF006", "analysis-limit", f"analysis stopped: {exc}",
                      entry_func.insns[0])
    except RecursionError:
        bounded = False
        analysis.diag("BPF006", "analysis-limit", "analysis stopped: nesting too deep",
                      entry_func.insns[0])
    if cost is not None and math.isinf(cost[1]):
        bounded = False
    has_ns = table is not None
    worst = path_line_costs(lines, obj, has_ns) if bounded else ()
    worst_ns = path_line_costs(lines, obj, has_ns, PATH_NS) if bounded and has_ns else ()
    min_insns = int(cost[0]) if cost is not None else None
    min_ns = round(cost[2], 3) if cost is not None and has_ns else None
    return ProgramResult(
        object=obj.path,
        section=section,
        name=name,
        type=kind,
        insn_count=_static_insns(obj, entry),
        bounded=bounded,
        insns_min=min_insns,
        insns_max=int(cost[1]) if bounded and cost is not None else None,
        ns_min=min_ns,
        ns_max=round(cost[3], 3) if bounded and cost is not None and has_ns else None,
        source=source_loc(entry_func.insns[0]),
        worst_path=worst,
        worst_path_ns=worst_ns,
        loops=tuple(analysis.loop_notes[k] for k in sorted(analysis.loop_notes)),
        calls=tuple(analysis.call_notes[k] for k in sorted(analysis.call_notes)),
        line_costs=tuple(sorted(worst, key=lambda lc: (-lc.insns, lc.file, lc.line))),
        diagnostics=fold_call_sites(analysis.diags, analysis.open_tail_calls()),
        warnings=tuple(f"no cost known for {n}; using the table's default"
                       for n in (table.missing() if table else ())
                       if n in analysis.priced),
        loader_set=_loader_settings(obj, analysis.loader_reads),
        tail_call_targets=analysis.tail_targets_of(name),
    )


def _loader_settings(obj: BpfObject, reads: Mapping[str, object]) -> tuple[LoaderSetting, ...]:
    if not reads:
        return ()
    found: dict[str, LoaderSetting] = {}
    for mapdef in obj.maps.values():
        for var in mapdef.loader_vars:
            if var.name in reads and var.name not in found:
                found[var.name] = LoaderSetting(var.name, var.type_name, var.lo, var.hi,
                                                var.default, var.pinned)
    return tuple(found[name] for name in sorted(found))


def _is_named(obj: BpfObject, program: Program) -> bool:
    return sum(1 for p in obj.programs if p.name == program.name) == 1


def _single(analysis: ProgramAnalysis, program: Program) -> tuple[Cost, Lines]:
    """A program whose name is not unique in the object (no tail calls resolvable)."""
    res = analysis.function(program.entry, program_entry(), program.prog_type)
    cost = res.ret if res.tail is None else res.tail if res.ret is None else \
        merge(res.ret, res.tail)
    if cost is None:
        raise Unbounded(analysis.diag("BPF003", "no-exit",
                                      f"no path of {program.name} reaches exit", None))
    return cost, res.lines_ret

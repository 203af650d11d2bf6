"""Path reconstruction: the source lines of a function's worst paths (by
instructions and by ns), expanded through loop summaries, and their texts."""

from __future__ import annotations

from bpflint.cost.frame import (
    PATH_INSNS,
    PATH_NS,
    BlockInfo,
    Lines,
    add_path_lines,
)
from bpflint.cost.paths import (
    LATCH,
    Count,
    LoopSummary,
    Node,
    Piece,
    Region,
    Target,
)
from bpflint.obj.model import BpfObject
from bpflint.results import (
    LineCost,
)

# A loop-free path's lines, in the order expand_lines adds them: (line, insns, ns),
# insns None for a jump's ns alone. Replaying it adds the same products in the same
# order as walking the path again, so the floating-point sums come out the same.
FlatPath = list[tuple[tuple[str, int], Count | None, float]]
# (region, target, blocks) by identity -> the objects (kept alive: their ids stay
# theirs) and the flat path; None: the path enters a loop
PathMemo = dict[tuple[int, Target, int], tuple[Region, dict[int, BlockInfo], FlatPath | None]]
# What one replay added: (the line's entry, insns added or None, ns added)
Added = list[tuple[list[float], Count | None, float]]


def expand_lines(region: Region, target: Target, mult: Count, blocks: dict[int, BlockInfo],
            summaries: dict[int, LoopSummary], into: Lines, ns_mult: float | None = None,
            at: int = PATH_INSNS, memo: PathMemo | None = None) -> Added | None:
    """Accumulate the source lines of the most expensive path to ``target`` (by
    instructions, or by ns: ``at``) into that path's pair of ``into``, its
    instructions ``mult`` times and its ns ``ns_mult`` times (overlapped loop
    iterations count less than whole ones). Iteration-by-iteration summaries hold
    thousands of pieces, mostly one region's path over the same blocks: ``memo``
    keeps each loop-free path's lines to replay. Returns what a replay added (None
    if it was no loop-free path): a next piece alike adds the very same again."""
    ns_mult = mult if ns_mult is None else ns_mult
    flat: FlatPath | None = None
    if memo is None:
        memo = {}  # (the function's own path is walked once: not kept)
    else:
        key = (id(region), target, id(blocks))
        got = memo.get(key)
        if got is None or got[0] is not region or got[1] is not blocks:
            flat = _flat_path(region, target, blocks, at)
            memo[key] = (region, blocks, flat)
        else:
            flat = got[2]
    n_at = at + 1
    if flat is not None:
        added: Added = []
        for line, insns, ns in flat:
            cur = into.get(line)
            if cur is None:
                cur = into[line] = [0, 0.0, 0, 0.0]
            n_insns = None
            if insns is not None:
                n_insns = insns * mult
                cur[at] += n_insns
            n_ns = ns * ns_mult
            cur[n_at] += n_ns
            added.append((cur, n_insns, n_ns))
        return added
    by_ns = at == PATH_NS
    path = region.path_to(target, by_ns)
    for i, node in enumerate(path):
        nxt = path[i + 1] if i + 1 < len(path) else None
        if node[0] == "b":
            info = blocks[node[1]]
            add_path_lines(into, info.lines, mult, ns_mult, at)
            succ = _successor(nxt, target, path)
            jump = info.edge_ns.get(succ) if succ is not None else None
            if jump is not None and info.jump_line is not None:
                into.setdefault(info.jump_line, [0, 0.0, 0, 0.0])[at + 1] += jump[1] * ns_mult
            continue
        summary = summaries[node[1]]
        # Consecutive pieces alike (iteration by iteration, mostly) add the same
        # products: the last replay's, added again in the same order.
        last: Added | None = None
        last_piece: Piece | None = None
        last_mults: tuple[Count, float] = (0, 0.0)
        for piece in summary.pieces_by(by_ns).get(_exit_key(nxt, target, summary), []):
            if piece.mult and piece.target in piece.region.cost:
                piece_ns = piece.mult if piece.ns_mult is None else piece.ns_mult
                mults = (mult * piece.mult, ns_mult * piece_ns)
                if last is not None and last_piece is not None \
                        and _alike(piece, last_piece, mults, last_mults):
                    for cur, n_insns, n_ns in last:
                        if n_insns is not None:
                            cur[at] += n_insns
                        cur[n_at] += n_ns
                    continue
                last = expand_lines(piece.region, piece.target, mults[0], piece.context,
                                    piece.summaries, into, mults[1], at, memo)
                last_piece, last_mults = piece, mults
    return None


def _alike(piece: Piece, other: Piece, mults: tuple[Count, float],
           other_mults: tuple[Count, float]) -> bool:
    """The same path over the same blocks, as often (the same types: an int count
    and a float one add differently)."""
    return piece.region is other.region and piece.context is other.context \
        and piece.target == other.target and mults[0] == other_mults[0] \
        and mults[1] == other_mults[1] and type(mults[0]) is type(other_mults[0]) \
        and type(mults[1]) is type(other_mults[1])


def _flat_path(region: Region, target: Target, blocks: dict[int, BlockInfo], at: int
               ) -> FlatPath | None:
    """The lines expand_lines adds for a path of blocks alone; None if it enters a loop."""
    path = region.path_to(target, at == PATH_NS)
    flat: FlatPath = []
    for i, node in enumerate(path):
        if node[0] != "b":
            return None
        info = blocks[node[1]]
        for line, v in info.lines.items():
            flat.append((line, v[at], v[at + 1]))
        nxt = path[i + 1] if i + 1 < len(path) else None
        succ = _successor(nxt, target, path)
        jump = info.edge_ns.get(succ) if succ is not None else None
        if jump is not None and info.jump_line is not None:
            flat.append((info.jump_line, None, jump[1]))
    return flat


def _successor(nxt: Node | None, target: Target, path: list[Node]) -> int | None:
    """The block a path's node leaves to: the next node's, the loop header for a back
    edge (a loop region's path starts at its header), or an outside block."""
    if nxt is not None:
        return nxt[1]
    if target == LATCH:
        return path[0][1]
    if isinstance(target, tuple) and target[0] == "x":
        return int(target[1])
    return None


def _exit_key(nxt: Node | None, target: Target, summary: LoopSummary) -> Target:
    if nxt is not None:
        return ("x", nxt[1])
    if target in summary.totals:
        return target
    # target is LATCH of the enclosing loop: the inner loop left towards its header
    for key in summary.totals:
        if isinstance(key, tuple):
            return key
    return target


# The source text of every line of the object analysed last: an object's programs
# are analysed one after the other, and collecting it took as long as costing a
# small program.
_LAST_TEXTS: list[tuple[BpfObject, dict[tuple[str, int], str]]] = []


def _line_texts(obj: BpfObject) -> dict[tuple[str, int], str]:
    if _LAST_TEXTS and _LAST_TEXTS[0][0] is obj:
        return _LAST_TEXTS[0][1]
    texts: dict[tuple[str, int], str] = {}
    for func in obj.functions.values():
        for insn in func.insns:
            if insn.line is not None:
                texts.setdefault((insn.line.file, insn.line.line), insn.line.text)
    _LAST_TEXTS[:] = [(obj, texts)]
    return texts


def path_line_costs(lines: Lines, obj: BpfObject, has_ns: bool, at: int = PATH_INSNS
                ) -> tuple[LineCost, ...]:
    """The lines of one worst path (``at``); a line the other path alone visits has
    nothing in this path's pair."""
    texts = _line_texts(obj)
    return tuple(LineCost(f, ln, int(round(v[at])), round(v[at + 1], 3) if has_ns else 0.0,
                          texts.get((f, ln), ""))
                 for (f, ln), v in lines.items() if ln > 0 and (v[at] or v[at + 1]))

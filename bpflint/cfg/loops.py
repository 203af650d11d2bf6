"""Back edges, natural loops and the loop-nesting tree of a CFG."""

from __future__ import annotations

from dataclasses import dataclass

from bpflint.cfg.graph import Cfg


@dataclass(frozen=True)
class Loop:
    header: int
    body: frozenset[int]  # blocks of the loop, inner loops' blocks included
    order: tuple[int, ...]  # the body in reverse postorder (header first)
    latches: tuple[int, ...]  # sources of back edges to the header
    exits: tuple[tuple[int, int], ...]  # edges (inside, outside)
    parent: int | None  # header of the enclosing loop
    children: tuple[int, ...]  # headers of the loops directly inside


@dataclass(frozen=True)
class LoopForest:
    loops: dict[int, Loop]  # by header
    innermost: dict[int, int]  # block -> header of the innermost loop holding it
    irreducible: tuple[tuple[int, int], ...]  # retreating edges that are not back edges

    def top_level(self) -> tuple[int, ...]:
        return tuple(h for h, lp in self.loops.items() if lp.parent is None)


def body_insns(cfg: Cfg, loop: Loop) -> int:
    """How many instructions the loop's blocks hold (its body's size)."""
    return sum(len(cfg.blocks[b].insns) for b in loop.body)


def find_loops(cfg: Cfg) -> LoopForest:
    reachable = cfg.reachable
    pos = cfg.rpo_index
    latches: dict[int, list[int]] = {}
    bodies: dict[int, set[int]] = {}
    irreducible = []
    for u in cfg.rpo:
        for h in set(cfg.blocks[u].succs):
            if pos[h] > pos[u]:
                continue
            # A retreating edge u -> h is a back edge when h dominates u: searching
            # backwards from u without crossing h must not reach the entry. The
            # search collects the natural loop's body at the same time.
            body = bodies.setdefault(h, {h})
            found = {u} - body
            work = list(found)
            reducible = True
            while work and reducible:
                n = work.pop()
                if n == 0:
                    reducible = False
                for p in cfg.preds[n]:
                    if p in reachable and p not in body and p not in found:
                        found.add(p)
                        work.append(p)
            if reducible:
                body |= found
                latches.setdefault(h, []).append(u)
            else:
                # The engine refuses irreducible control flow outright, so one
                # such edge is enough; stopping keeps random code linear.
                irreducible.append((u, h))
                return LoopForest({}, {}, tuple(irreducible))
    for h in [h for h in bodies if h not in latches]:
        del bodies[h]
    # Natural loops of a reducible graph nest. Going from the largest to the
    # smallest, the loop last recorded for a header's block is its parent.
    parents: dict[int, int | None] = {}
    innermost: dict[int, int] = {}
    for h in sorted(bodies, key=lambda x: len(bodies[x]), reverse=True):
        parents[h] = innermost.get(h)
        for b in bodies[h]:
            innermost[b] = h
    children: dict[int, list[int]] = {h: [] for h in bodies}
    for h, parent in parents.items():
        if parent is not None:
            children[parent].append(h)
    loops = {}
    for h, body in bodies.items():
        exits = tuple(sorted({(b, s) for b in body for s in cfg.blocks[b].succs
                              if s not in body}))
        order = tuple(sorted(body, key=pos.__getitem__))
        loops[h] = Loop(h, frozenset(body), order, tuple(sorted(latches[h])), exits,
                        parents[h], tuple(sorted(children[h])))
    return LoopForest(loops, innermost, tuple(irreducible))

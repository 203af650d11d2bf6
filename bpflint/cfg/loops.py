"""Back edges, natural loops and the loop-nesting tree of a CFG."""

from __future__ import annotations

from dataclasses import dataclass

from bpflint.cfg.graph import Cfg


@dataclass(frozen=True)
class Loop:
    header: int
    body: frozenset[int]  # blocks of the loop, inner loops' blocks included
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


def dominates(cfg: Cfg, a: int, b: int) -> bool:
    """Whether every path from the entry to ``b`` passes ``a`` (search around ``a``)."""
    if a == b or a == 0:
        return True
    seen = {0, a}
    work = [0]
    while work:
        n = work.pop()
        for s in cfg.blocks[n].succs:
            if s == b:
                return False
            if s not in seen:
                seen.add(s)
                work.append(s)
    return True


def find_loops(cfg: Cfg) -> LoopForest:
    reachable = cfg.reachable
    pos = {b: i for i, b in enumerate(cfg.rpo)}
    latches: dict[int, list[int]] = {}
    irreducible = []
    for b in cfg.rpo:
        for s in set(cfg.blocks[b].succs):
            if pos[s] <= pos[b]:  # retreating edge in this DFS order
                # A retreating edge is a back edge when its target dominates its
                # source; the few retreating edges are checked one by one, which
                # stays linear where a full dominator tree is quadratic on long
                # chains of early exits.
                if dominates(cfg, s, b):
                    latches.setdefault(s, []).append(b)
                else:
                    irreducible.append((b, s))
    bodies: dict[int, set[int]] = {}
    for header, srcs in latches.items():
        body = {header}
        work = [s for s in srcs if s != header]
        body.update(work)
        while work:
            n = work.pop()
            for p in cfg.preds[n]:
                if p in reachable and p not in body:
                    body.add(p)
                    work.append(p)
        bodies[header] = body
    # Nesting: the parent is the smallest other loop whose body holds the header.
    parents: dict[int, int | None] = {}
    for h, body in bodies.items():
        best = None
        for h2, body2 in bodies.items():
            if h2 != h and h in body2 and body <= body2:
                if best is None or len(body2) < len(bodies[best]):
                    best = h2
        parents[h] = best
    loops = {}
    for h, body in bodies.items():
        exits = tuple(sorted({(b, s) for b in body for s in cfg.blocks[b].succs
                              if s not in body}))
        children = tuple(sorted(c for c, p in parents.items() if p == h))
        loops[h] = Loop(h, frozenset(body), tuple(sorted(latches[h])), exits, parents[h],
                        children)
    innermost: dict[int, int] = {}
    for h in sorted(bodies, key=lambda x: len(bodies[x]), reverse=True):
        for b in bodies[h]:
            innermost[b] = h
    return LoopForest(loops, innermost, tuple(irreducible))

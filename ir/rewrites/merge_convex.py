"""merge-convex: merge two compatible layers by a convex combination with learnable lam = 1.

Paper 001 §3.2.3 (morphism type IV): ``l* = lam * l_i + (1 - lam) * l_j`` replaces ``l_i``
for its readers; ``lam`` starts at 1, so ``l*`` equals ``l_i``. Both layers must be the end
of a block — a ReLU or a max-pooling — and have the same shape; ``l_j`` may sit anywhere that
does not make a cycle (an earlier layer, or a parallel branch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import Convex
from genomorph.ir.weights import Weights

from ._base import Outcome, RewriteResult, Work, collect, describe, draw_seed, require, require_node, run
from ._init import FLOAT
from ._places import Reach, is_output

NAME = "merge-convex"
EXACT = True


def mergeable(graph: Graph, nid: NodeId) -> bool:
    return graph.op(nid).traits.mergeable and not is_output(graph, nid)


@dataclass(frozen=True)
class Move:
    node: NodeId
    """l_i: the layer whose readers get the merge (its value is kept)."""
    other: NodeId
    """l_j: the layer merged in with weight 1 - lam."""


def partners(graph: Graph, node: NodeId, same_size: bool, reach: Reach, pool: list[NodeId]) -> list[NodeId]:
    """Values of ``pool`` that may be merged into ``node`` without making a cycle."""
    direct = set(graph.inputs(node))
    shape = graph.shape(node)
    found = []
    for other in pool:
        if other == node or other in direct or reach.before(node, other):
            continue
        theirs = graph.shape(other)
        if (theirs == shape) if same_size else (len(theirs) == len(shape)):
            found.append(other)
    return found


def mergeables(graph: Graph) -> list[NodeId]:
    return [n for n in graph.order() if mergeable(graph, n)]


def _moves(graph: Graph, node: NodeId, reach: Reach, pool: list[NodeId]) -> list[Move]:
    require_node(graph, node)
    require(
        mergeable(graph, node),
        f"merge-convex merges ReLU or max-pooling layers that are not outputs; {describe(graph, node)} is not one",
    )
    moves = [Move(node, other) for other in partners(graph, node, True, reach, pool)]
    require(bool(moves), f"no other ReLU or max-pooling layer has the shape of {describe(graph, node)}")
    return moves


def moves_at(graph: Graph, node: NodeId, weights: Weights | None = None) -> list[Move]:
    require_node(graph, node)
    return _moves(graph, node, Reach(graph), mergeables(graph))


def candidates(graph: Graph, weights: Weights | None = None) -> list[Move]:
    reach, pool = Reach(graph), mergeables(graph)
    return collect(graph, lambda g, n, w: _moves(g, n, reach, pool))


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    require_node(g, move.other)
    require(
        any(m.other == move.other for m in moves_at(g, move.node)),
        f"{describe(g, move.other)} cannot be merged into {describe(g, move.node)}",
        hint="both must be ReLU or max-pooling layers of the same shape, and the merge must not make a cycle",
    )
    merge = g.add(Convex(init=1.0), [move.node, move.other])
    work.put(merge, {"lam": np.asarray(1.0, dtype=FLOAT)})
    g.replace_uses(move.node, merge, keep=[merge])
    return Outcome(
        move, f"merged {describe(g, move.other)} into {describe(g, move.node)} as n{merge} = convex(lam=1)"
    )


def apply(graph: Graph, weights: Weights | None, move: Move, rng: np.random.Generator) -> RewriteResult:
    return run(NAME, EXACT, edit, graph, weights, move, draw_seed(rng))

"""merge-convex: merge two compatible layers by a convex combination with learnable lam = 1.

Paper 001 §3.2.3 (morphism type IV): ``l* = lam * l_i + (1 - lam) * l_j`` replaces ``l_i``
for its readers; ``lam`` starts at 1, so ``l*`` equals ``l_i``. Both layers must be the end
of a block — a ReLU or a max-pooling — and have the same shape; ``l_j`` may sit anywhere that
does not make a cycle (an earlier layer, or a parallel branch). Places: ``_merge``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import Convex

from ._base import Outcome, Rewrite, Work, describe, require, require_node
from ._init import FLOAT
from ._merge import MergeContext, merge_context, merge_partners


@dataclass(frozen=True)
class Move:
    node: NodeId
    """l_i: the layer whose readers get the merge (its value is kept)."""
    other: NodeId
    """l_j: the layer merged in with weight 1 - lam."""


def _moves(graph: Graph, node: NodeId, context: MergeContext) -> list[Move]:
    others = merge_partners(graph, node, context, "merge-convex", same_size=True)
    moves = [Move(node, other) for other in others]
    require(bool(moves), f"no other ReLU or max-pooling layer has the shape of {describe(graph, node)}")
    return moves


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    require_node(g, move.other)
    require(
        any(m.other == move.other for m in _moves(g, move.node, merge_context(g))),
        f"{describe(g, move.other)} cannot be merged into {describe(g, move.node)}",
        hint="both must be ReLU or max-pooling layers of the same shape, and the merge must not make a cycle",
    )
    merge = g.add(Convex(init=1.0), [move.node, move.other])
    work.put(merge, {"lam": np.asarray(1.0, dtype=FLOAT)})
    g.replace_uses(move.node, merge, keep=[merge])
    return Outcome(
        move, f"merged {describe(g, move.other)} into {describe(g, move.node)} as n{merge} = convex(lam=1)"
    )


REWRITE = Rewrite("merge-convex", True, Move, _moves, edit, context=merge_context)
apply, candidates, moves_at = REWRITE.apply, REWRITE.candidates, REWRITE.moves_at

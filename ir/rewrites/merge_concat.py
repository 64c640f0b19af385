"""merge-concat: merge two layers by concatenation, max-pooling the larger by 2 or 4.

Paper 001 §3.2.4 (morphism type II): ``l* = concat(l_i, l_j)`` replaces ``l_i`` for its
readers, whose weights for ``l_j``'s channels start at zero, as in widen. Both layers are
ReLU or max-pooling outputs; ``(H_j, W_j) = f * (H_i, W_i)`` with ``f`` in {1, 2, 4}, the
larger one pooled down so ``l_i``'s readers see the size they saw before. Places are
merge-convex's (``_merge``); the concatenation is skip-concat's (``concat_onto``).
"""

from __future__ import annotations

from dataclasses import dataclass

from genomorph.ir.graph import Graph, NodeId

from ._base import Outcome, Rewrite, Work, describe, require, require_node
from ._merge import MergeContext, merge_context, merge_partners
from .skip_concat import concat_onto, concat_partners


@dataclass(frozen=True)
class Move:
    node: NodeId
    """l_i: the layer whose readers get the concatenation (its channels come first)."""
    other: NodeId
    """l_j: the layer concatenated after it, 1, 2 or 4 times as large."""


def _moves(graph: Graph, node: NodeId, context: MergeContext) -> list[Move]:
    others = merge_partners(graph, node, context, "merge-concat", same_size=False)
    moves = [Move(node, other) for other in concat_partners(graph, node, others)]
    require(
        bool(moves),
        f"no other ReLU or max-pooling layer is 1, 2 or 4 times the size of {describe(graph, node)}",
    )
    return moves


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    require_node(g, move.other)
    require(
        any(m.other == move.other for m in _moves(g, move.node, merge_context(g))),
        f"{describe(g, move.other)} cannot be concatenated onto {describe(g, move.node)}",
        hint="both must be ReLU or max-pooling layers, the second 1, 2 or 4 times as large, without a cycle",
    )
    merge, factor = concat_onto(work, move.node, move.other)
    pooled = f", the latter max-pooled by {factor}" if factor > 1 else ""
    return Outcome(
        move,
        f"merged {describe(g, move.node)} and {describe(g, move.other)} as n{merge} = concat{pooled}; "
        "zero weights for the new channels",
    )


REWRITE = Rewrite("merge-concat", True, Move, _moves, edit, context=merge_context)
apply, candidates, moves_at = REWRITE.apply, REWRITE.candidates, REWRITE.moves_at

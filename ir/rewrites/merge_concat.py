"""merge-concat: merge two layers by concatenation, max-pooling the larger by 2 or 4.

Paper 001 §3.2.4 (morphism type II): ``l* = concat(l_i, l_j)`` replaces ``l_i`` for its
readers, whose weights for ``l_j``'s channels start at zero, as in widen. Both layers are
ReLU or max-pooling outputs; ``(H_j, W_j) = f * (H_i, W_i)`` with ``f`` in {1, 2, 4}, the
larger one pooled down so ``l_i``'s readers see the size they saw before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.weights import Weights

from ._base import Outcome, RewriteResult, Work, collect, describe, draw_seed, require, require_node, run
from ._channels import plan, widened
from ._places import Reach
from .merge_convex import mergeable, mergeables, partners
from .skip_add import stride_between
from .skip_concat import concat_onto

NAME = "merge-concat"
EXACT = True


@dataclass(frozen=True)
class Move:
    node: NodeId
    """l_i: the layer whose readers get the concatenation (its channels come first)."""
    other: NodeId
    """l_j: the layer concatenated after it, 1, 2 or 4 times as large."""


def _moves(graph: Graph, node: NodeId, reach: Reach, pool: list[NodeId]) -> list[Move]:
    require_node(graph, node)
    require(
        mergeable(graph, node),
        f"merge-concat merges ReLU or max-pooling layers that are not outputs; {describe(graph, node)} is not one",
    )
    target = graph.shape(node)
    changed = plan(graph, node, widened(target[0], 1), virtual=True).maps
    moves = [
        Move(node, other)
        for other in partners(graph, node, False, reach, pool)
        if other not in changed and stride_between(graph.shape(other), target) is not None
    ]
    require(
        bool(moves),
        f"no other ReLU or max-pooling layer is 1, 2 or 4 times the size of {describe(graph, node)}",
    )
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


def apply(graph: Graph, weights: Weights | None, move: Move, rng: np.random.Generator) -> RewriteResult:
    return run(NAME, EXACT, edit, graph, weights, move, draw_seed(rng))

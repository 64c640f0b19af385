"""skip-concat: a skip connection by concatenation, DenseNet style.

Morphism type II of paper 002: readers of ``b`` (``node``) now read ``concat(b, a)``; the
channels of the earlier value ``a`` (``source``) arrive after ``b``'s and meet zero weights
in every layer that reads them (``_channels`` finds those layers, through batch norms,
pooling and adds). A source 2 or 4 times larger is max-pooled down by the concat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import Concat
from genomorph.ir.weights import Weights

from ._base import Outcome, RewriteResult, Work, collect, describe, draw_seed, require, require_node, run
from ._channels import plan, realise, widened
from ._places import Reach
from .skip_add import end_points, sources, starts, stride_between

NAME = "skip-concat"
EXACT = True


@dataclass(frozen=True)
class Move:
    node: NodeId
    """b: the value whose readers get the concatenation."""
    source: NodeId
    """a: the earlier value concatenated after it."""


def concat_onto(work: Work, node: NodeId, other: NodeId) -> tuple[NodeId, int]:
    """Replace ``node`` for its readers by ``concat(node, other)`` with zero weights on ``other``.

    Shared with merge-concat. Returns the new concat's id and the pooling factor used.
    """
    g = work.graph
    shapes = g.shapes()
    factor = stride_between(shapes[other], shapes[node])
    require(
        factor is not None,
        f"{describe(g, other)} ({shapes[other]}) must be 1, 2 or 4 times as large as {describe(g, node)} "
        f"({shapes[node]}) to be concatenated onto it",
    )
    change = plan(g, node, widened(shapes[node][0], shapes[other][0]), virtual=True, keep=[other])
    merge = g.add(Concat(downsample=factor > 1), [node, other])
    g.replace_uses(node, merge, keep=[merge])
    realise(work, change)
    return merge, factor or 1


def _moves(graph: Graph, node: NodeId, reach: Reach, begins: list[NodeId]) -> list[Move]:
    require_node(graph, node)
    require(
        end_points(graph, node),
        f"a skip lands after a block, pooling or merge that is not an output; {describe(graph, node)} is not one",
    )
    target = graph.shape(node)
    changed = plan(graph, node, widened(target[0], 1), virtual=True).maps
    moves = [
        Move(node, a)
        for a in sources(graph, node, reach, begins)
        if a not in changed and stride_between(graph.shape(a), target) is not None
    ]
    require(bool(moves), f"no earlier value fits a concatenation onto {describe(graph, node)}")
    return moves


def moves_at(graph: Graph, node: NodeId, weights: Weights | None = None) -> list[Move]:
    require_node(graph, node)
    return _moves(graph, node, Reach(graph), starts(graph))


def candidates(graph: Graph, weights: Weights | None = None) -> list[Move]:
    reach, begins = Reach(graph), starts(graph)
    return collect(graph, lambda g, n, w: _moves(g, n, reach, begins))


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    require_node(g, move.source)
    require(
        any(m.source == move.source for m in moves_at(g, move.node)),
        f"no concatenation skip from {describe(g, move.source)} onto {describe(g, move.node)}",
        hint="the source must be an earlier block end, 1, 2 or 4 times as large, not already a direct input",
    )
    merge, factor = concat_onto(work, move.node, move.source)
    pooled = f" (max-pooled by {factor})" if factor > 1 else ""
    return Outcome(
        move,
        f"concatenated {describe(g, move.source)}{pooled} after {describe(g, move.node)} as n{merge}, "
        "zero weights in its readers",
    )


def apply(graph: Graph, weights: Weights | None, move: Move, rng: np.random.Generator) -> RewriteResult:
    return run(NAME, EXACT, edit, graph, weights, move, draw_seed(rng))

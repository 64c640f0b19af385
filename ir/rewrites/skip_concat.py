"""skip-concat: a skip connection by concatenation, DenseNet style.

Morphism type II of paper 002: readers of ``b`` (``node``) now read ``concat(b, a)``; the
channels of the earlier value ``a`` (``source``) arrive after ``b``'s and meet zero weights
in every layer that reads them (``_channels`` finds those layers, through batch norms,
pooling and adds). A source 2 or 4 times larger is max-pooled down by the concat.
"""

from __future__ import annotations

from dataclasses import dataclass

from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import Concat

from ._base import Outcome, Rewrite, Work, describe, require, require_node
from ._channels import plan, realise, widened
from ._places import Reach
from .skip_add import landing_sources, skip_context, stride_between


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


def concat_partners(graph: Graph, node: NodeId, others: list[NodeId]) -> list[NodeId]:
    """Those of ``others`` that ``concat_onto`` can put after ``node``.

    Shared with merge-concat: 1, 2 or 4 times as large as ``node``, and not among the values
    whose channels the concatenation would change (that would feed the change back into itself).
    """
    target = graph.shape(node)
    changed = plan(graph, node, widened(target[0], 1), virtual=True).maps
    return [o for o in others if o not in changed and stride_between(graph.shape(o), target) is not None]


def _moves(graph: Graph, node: NodeId, context: tuple[Reach, list[NodeId]]) -> list[Move]:
    sources = landing_sources(graph, node, context)
    moves = [Move(node, a) for a in concat_partners(graph, node, sources)]
    require(bool(moves), f"no earlier value fits a concatenation onto {describe(graph, node)}")
    return moves


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    require_node(g, move.source)
    require(
        any(m.source == move.source for m in _moves(g, move.node, skip_context(g))),
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


REWRITE = Rewrite("skip-concat", True, Move, _moves, edit, context=skip_context)
apply, candidates, moves_at = REWRITE.apply, REWRITE.candidates, REWRITE.moves_at

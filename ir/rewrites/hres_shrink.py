"""hres-shrink: remove an H-ResNet layer whose hidden units fell to one (approximate, paper 000).

After pruning, a residual with (near) no hidden units contributes little; paper 000 removes
the layer altogether, leaving its linear connection: ``f(x) = W(x) + Re(x)`` becomes
``W(x)`` — the opposite of hres-grow. The linear connection and the layers reading the result
are listed for repair.
"""

from __future__ import annotations

from dataclasses import dataclass

from genomorph.ir.graph import Graph, NodeId

from ._base import Outcome, Rewrite, Work, describe, require, require_node
from ._hres import HresLayer, between, layer_at
from ._places import layer_neighbours, parameterised, remove_dead

MAX_HIDDEN = 1


@dataclass(frozen=True)
class Move:
    node: NodeId
    """The add that merges the layer's linear connection and residual."""
    max_hidden: int = MAX_HIDDEN
    """Remove only when the residual has at most this many hidden units."""


def _layer(graph: Graph, node: NodeId, max_hidden: int) -> tuple[HresLayer, set[NodeId]]:
    require_node(graph, node)
    layer = layer_at(graph, node)
    require(
        layer is not None,
        f"{describe(graph, node)} is not the merge of an H-ResNet layer (linear connection + residual)",
    )
    assert layer is not None
    require(
        layer.width <= max_hidden,
        f"the H-ResNet layer at {describe(graph, node)} still has {layer.width} hidden units "
        f"(removed at {max_hidden} or fewer)",
        hint="prune its hidden units first (prune-neurons), or raise max_hidden",
    )
    residual = between(graph, layer.source, layer.residual)
    outside = [
        n for n in residual for user in graph.user_ids(n) if user not in residual and user != layer.add
    ]
    require(
        not outside,
        f"the residual of {describe(graph, node)} is also read elsewhere (by n{min(outside or [0])})",
    )
    return layer, residual


def _moves(graph: Graph, node: NodeId, context: None = None) -> list[Move]:
    _layer(graph, node, MAX_HIDDEN)
    return [Move(node)]


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    layer, residual = _layer(g, move.node, move.max_hidden)
    keep = between(g, layer.source, layer.shortcut)
    near = {n for n in keep if parameterised(g, n)} | layer_neighbours(g, {move.node})
    output = g.output_node()
    g.replace_uses(move.node, layer.shortcut)
    g.remove(move.node)
    remove_dead(g, layer.shortcut if output == move.node else output)
    return Outcome(
        move,
        f"removed the residual of the H-ResNet layer n{move.node} ({len(residual)} nodes, {layer.width} hidden "
        f"unit(s)); its readers now read the linear connection {describe(g, layer.shortcut)}",
        repair=tuple(sorted(n for n in near if n not in residual)),
    )


REWRITE = Rewrite("hres-shrink", False, Move, _moves, edit)
apply, candidates, moves_at = REWRITE.apply, REWRITE.candidates, REWRITE.moves_at

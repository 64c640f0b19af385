"""Where merge-convex and merge-concat may merge two layers (paper 001 §3.2.3-4), written once.

Both merge the output ``l_i`` (``node``) of a ReLU or max-pooling layer with another such
output ``l_j`` (``other``) that sits anywhere that does not make a cycle: an earlier layer,
or a parallel branch. Which ops are merge points is the op trait ``mergeable``.
"""

from __future__ import annotations

from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.weights import Weights

from ._base import describe, require, require_node
from ._places import Reach, is_output

MergeContext = tuple[Reach, list[NodeId]]
"""Reachability and every mergeable value, computed once per candidate list."""


def mergeable(graph: Graph, nid: NodeId) -> bool:
    return graph.op(nid).traits.mergeable and not is_output(graph, nid)


def mergeables(graph: Graph) -> list[NodeId]:
    return [n for n in graph.order() if mergeable(graph, n)]


def merge_context(graph: Graph, weights: Weights | None = None) -> MergeContext:
    return Reach(graph), mergeables(graph)


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


def merge_partners(
    graph: Graph, node: NodeId, context: MergeContext, rewrite: str, *, same_size: bool
) -> list[NodeId]:
    """The partners ``rewrite`` may merge into ``node``, after checking ``node`` is a merge point."""
    require_node(graph, node)
    require(
        mergeable(graph, node),
        f"{rewrite} merges ReLU or max-pooling layers that are not outputs; {describe(graph, node)} is not one",
    )
    return partners(graph, node, same_size, *context)

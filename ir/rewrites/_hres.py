"""Recognising Hierarchical ResNet layers (paper 000 §2) in the graph IR.

An H-ResNet layer is ``f(x) = W(x) + Re(x)`` with ``Re(x) = f2(sigma(f1(x)))``, where ``W``,
``f1`` and ``f2`` are each a linear connection or, recursively, an H-ResNet layer. In the IR
it is an ``add`` of two branches that start from the same value ``x``:

    x ──linear / H-ResNet layer──────────────────────┐
    └──f1 (linear / H-ResNet) ── sigma ── f2 (same) ──┴── add

The hidden units of the layer are the output width of ``f1``.
"""

from __future__ import annotations

from dataclasses import dataclass

from genomorph.ir.graph import Graph, NodeId


@dataclass(frozen=True)
class HresLayer:
    add: NodeId
    source: NodeId
    """x: the value both branches read."""
    shortcut: NodeId
    """Output of the linear connection W (a linear, or a nested layer's add)."""
    hidden: NodeId
    """Output of f1; its width is the layer's hidden units."""
    act: NodeId
    residual: NodeId
    """Output of f2."""
    width: int


def linear_source(graph: Graph, nid: NodeId) -> NodeId | None:
    """``x`` when ``nid`` computes a linear connection or an H-ResNet layer of ``x``, else None."""
    kind = graph.kind(nid)
    if kind == "linear":
        return graph.inputs(nid)[0]
    if kind == "add":
        layer = layer_at(graph, nid)
        return layer.source if layer else None
    return None


def layer_at(graph: Graph, add: NodeId) -> HresLayer | None:
    """The H-ResNet layer whose merge is ``add``, or None when ``add`` is some other sum."""
    if graph.kind(add) != "add":
        return None
    inputs = graph.inputs(add)
    if len(inputs) != 2 or inputs[0] == inputs[1]:
        return None
    for shortcut, residual in (inputs, inputs[::-1]):
        x = linear_source(graph, shortcut)
        if x is None:
            continue
        act = linear_source(graph, residual)
        if act is None or not graph.op(act).traits.activation:
            continue
        hidden = graph.inputs(act)[0]
        if linear_source(graph, hidden) != x:
            continue
        return HresLayer(add, x, shortcut, hidden, act, residual, graph.shape(hidden)[0])
    return None


def layers(graph: Graph) -> list[HresLayer]:
    found = []
    for nid in graph.order():
        layer = layer_at(graph, nid)
        if layer is not None:
            found.append(layer)
    return found


def between(graph: Graph, source: NodeId, out: NodeId) -> set[NodeId]:
    """Nodes that compute ``out`` from ``source`` (``out`` included, ``source`` excluded)."""
    found: set[NodeId] = set()
    stack = [out]
    while stack:
        n = stack.pop()
        if n == source or n in found:
            continue
        found.add(n)
        stack.extend(graph.inputs(n))
    return found


def growth_threshold(features_in: int, features_out: int) -> float:
    """Paper 000's M = (I * O^2)^(1/3): a residual layer with more hidden units than this grows a level."""
    return float((features_in * features_out**2) ** (1 / 3))

"""H-ResNet layers of linear *and* convolutional connections, for the noisy strategy's layer rule.

``ir/rewrites/_hres`` recognises H-ResNet layers whose connections are linear layers, and
``hres-grow``/``hres-shrink`` nest and remove those. Paper 000's convolutional H-ResNets (its
CIFAR networks) are the same construction with convolutions, channels being the units:

    x ──conv W (or a nested layer)──────────────────────────┐
    └──conv f1 (or nested) ── σ ── conv f2 (or nested) ──────┴── add

This module recognises both kinds and, for convolutions, does the two edits itself (the linear
ones go through the registered rewrites): `nest_conv` turns a conv connection ``W`` into
``W(x) + f2(σ(f1(x)))`` with random ``f1`` and zero ``f2`` (the function is kept), and
`unnest` removes a residual, leaving the linear connection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from genomorph.ir import Graph, NodeId, Weights
from genomorph.ir.ops import OP_CLASSES, Add, Conv

#: op kinds that form the connections of an H-ResNet layer
CONNECTIONS = ("linear", "conv")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "swish", "gelu")


@dataclass(frozen=True)
class Layer:
    add: NodeId
    source: NodeId
    shortcut: NodeId
    hidden: NodeId
    act: NodeId
    residual: NodeId
    width: int
    kind: str
    """``linear`` or ``conv``: the kind of its connections."""


def _source(graph: Graph, nid: NodeId, kind: str) -> NodeId | None:
    """``x`` when ``nid`` is a ``kind`` connection of ``x`` or an H-ResNet layer of ``x``."""
    if graph.kind(nid) == kind:
        if kind == "conv":
            op = graph.op(nid)
            if op.stride not in (1, (1, 1)) or op.groups != 1:  # type: ignore[attr-defined]
                return None
        return graph.inputs(nid)[0]
    if graph.kind(nid) == "add":
        layer = layer_at(graph, nid)
        return layer.source if layer is not None and layer.kind == kind else None
    return None


def layer_at(graph: Graph, add: NodeId) -> Layer | None:
    """The H-ResNet layer (either kind) whose merge is ``add``, with the shortcut as input 0."""
    if graph.kind(add) != "add":
        return None
    inputs = graph.inputs(add)
    if len(inputs) != 2 or inputs[0] == inputs[1]:
        return None
    shortcut, residual = inputs
    for kind in CONNECTIONS:
        x = _source(graph, shortcut, kind)
        act = _source(graph, residual, kind)
        if x is None or act is None or graph.kind(act) not in ACTIVATIONS:
            continue
        hidden = graph.inputs(act)[0]
        if _source(graph, hidden, kind) != x:
            continue
        return Layer(add, x, shortcut, hidden, act, residual, graph.shape(hidden)[0], kind)
    return None


def layers(graph: Graph) -> list[Layer]:
    return [layer for nid in graph.order() if (layer := layer_at(graph, nid)) is not None]


def nest_conv(
    graph: Graph, weights: Weights, node: NodeId, hidden: int, rng: np.random.Generator
) -> tuple[Graph, Weights, str]:
    """Conv ``node`` → ``node(x) + conv(hidden) relu conv(C, zero)``; exact (the residual starts at 0)."""
    from genomorph.ir.rewrites import init_node

    g = graph.copy()
    w = dict(weights)
    op: Conv = g.op(node)  # type: ignore[assignment]
    source = g.inputs(node)[0]
    same = {"kernel": op.kernel, "padding": op.padding, "dilation": op.dilation}
    first = g.add(Conv(channels=hidden, **same), [source])
    act = g.add(OP_CLASSES["relu"](), [first])
    second = g.add(Conv(channels=op.channels, bias=False, **same), [act])
    merge = g.add(Add(), [node, second])
    g.replace_uses(node, merge, keep=[merge])
    w[first] = init_node(g, first, rng)
    w[second] = {"weight": np.zeros_like(init_node(g, second, rng)["weight"])}
    text = (
        f"grew a conv H-ResNet layer on n{node}: n{merge} = n{node} + conv({hidden}) relu "
        f"conv({op.channels}, bias=false), residual starting at zero"
    )
    return g, w, text


def unnest(graph: Graph, weights: Weights, add: NodeId) -> tuple[Graph, Weights, str]:
    """Remove the residual of the layer merged at ``add``; its readers read the linear connection."""
    layer = layer_at(graph, add)
    assert layer is not None
    g = graph.copy()
    output = g.output_node()
    g.replace_uses(add, layer.shortcut)
    g.remove(add)
    removed = g.remove_unreachable([layer.shortcut if output == add else output])
    w = {n: arrays for n, arrays in weights.items() if n not in removed and n != add}
    return g, w, f"removed the residual of the conv H-ResNet layer n{add} ({layer.width} hidden channel(s))"


__all__ = ["CONNECTIONS", "Layer", "layer_at", "layers", "nest_conv", "unnest"]

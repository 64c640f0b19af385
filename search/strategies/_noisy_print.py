"""A readable genome for H-ResNet networks: nested ``hres(W, f1, f2)`` forms instead of ``%N`` names.

The canonical printer writes an H-ResNet as named values and adds; the grammar's ``hres`` form
says the same thing the way paper 000 draws it (Figure 2)::

    input 2
    hres(
      linear(2),
      hres(linear(20), linear(6), linear(20, bias=false)),
      linear(2, bias=false)
    )

`readable` handles networks that are one chain of single-input ops and H-ResNet layers (what
the noisy strategy builds); for anything else it returns None. It also returns the source node
of every node the parser will create, in creation order, so the weights can follow the text
(`rekey`); `readable_with_weights` checks that the text parses back to the same graph.
"""

from __future__ import annotations

from genomorph.ir import Graph, NodeId, Weights
from genomorph.ir.rewrites import op_text

from ._noisy_layers import layer_at

INDENT = "  "


class _Unprintable(Exception):
    pass


def _term(graph: Graph, value: NodeId, start: NodeId, order: list[NodeId], depth: int) -> str:
    """Text computing ``value`` from ``start``; appends the nodes in the parser's creation order."""
    if value == start:
        return "_"
    layer = layer_at(graph, value)
    if layer is not None and graph.inputs(value)[0] == layer.shortcut:
        inner = _chain(graph, layer.source, start, order, depth)
        pad = INDENT * (depth + 1)
        w = _chain(graph, layer.shortcut, layer.source, order, depth + 1)
        f1 = _chain(graph, layer.hidden, layer.source, order, depth + 1)
        order.append(layer.act)
        f2 = _chain(graph, layer.residual, layer.act, order, depth + 1)
        order.append(value)
        act = graph.kind(layer.act)
        tail = "" if act == "relu" else f", act={act}"
        parts = [w, f1, f2]
        if all(len(p) < 40 and "\n" not in p for p in parts):
            body = f"hres({', '.join(parts)}{tail})"
        else:
            body = "hres(\n" + ",\n".join(pad + p for p in parts) + f"{tail}\n{INDENT * depth})"
        return body if inner == "" else f"{inner}{_sep(depth, 'hres')}{body}"
    inputs = graph.inputs(value)
    if len(inputs) != 1 or graph.op(value).is_merge:  # type: ignore[attr-defined]
        raise _Unprintable(f"n{value}")
    before = _chain(graph, inputs[0], start, order, depth)
    order.append(value)
    text = op_text(graph.op(value))
    return text if before == "" else f"{before}{_sep(depth, graph.kind(value))}{text}"


#: ops written on the line of the layer before them
_FOLLOWERS = frozenset({"bn", "relu", "sigmoid", "tanh", "swish", "gelu", "dropout", "identity"})


def _sep(depth: int, kind: str) -> str:
    """At the top level each layer starts a line (its batch norm and activation follow it)."""
    return " " if depth > 0 or kind in _FOLLOWERS else "\n"


def _chain(graph: Graph, value: NodeId, start: NodeId, order: list[NodeId], depth: int) -> str:
    """Like `_term`, but the empty string for ``value == start`` (a chain continuing the flow)."""
    if value == start:
        return ""
    return _term(graph, value, start, order, depth)


def readable(graph: Graph) -> tuple[str, list[NodeId]] | None:
    """Nested-``hres`` text of ``graph`` and the source node of each parsed node, or None."""
    source, out = graph.input_node(), graph.output_node()
    if graph.aux_outputs():
        return None
    order: list[NodeId] = [source]
    shape = "x".join(str(d) for d in graph.op(source).shape)  # type: ignore[attr-defined]
    try:
        body = _chain(graph, out, source, order, 0)
    except _Unprintable:
        return None
    if sorted(order) != sorted(graph.order()):
        return None  # a node off the main chain (a second reader of some value)
    return f"input {shape}\n{body}\n", order


def readable_with_weights(graph: Graph, weights: Weights | None) -> tuple[str, Weights | None] | None:
    """The readable text and the weights keyed by the ids ``parse`` of that text gives; None when
    the graph is not a plain H-ResNet chain or the text does not parse back to the same graph."""
    from genomorph.grammar import parse
    from genomorph.ir import GenomeError

    found = readable(graph)
    if found is None:
        return None
    text, order = found
    try:
        parsed = parse(text, source_name="<readable>")
    except GenomeError:
        return None
    position = {old: new for new, old in enumerate(order)}
    if sorted(parsed.order()) != list(range(len(order))):
        return None
    for new, old in enumerate(order):
        if parsed.op(new) != graph.op(old) or parsed.inputs(new) != [position[i] for i in graph.inputs(old)]:
            return None
    if weights is None:
        return text, None
    return text, {position[old]: arrays for old, arrays in weights.items() if old in position}


__all__ = ["readable", "readable_with_weights"]

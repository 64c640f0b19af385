"""Shape inference: the output shape of every node, in topological order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ShapeError, VerifyError
from .ops import Shape, ShapeMismatch

if TYPE_CHECKING:
    from .graph import Graph, NodeId


def _fmt(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def infer_shapes(graph: Graph) -> dict[NodeId, Shape]:
    """Return ``{node: output shape}``; raise ShapeError naming the first node that does not fit."""
    shapes: dict[NodeId, Shape] = {}
    for nid in graph.order():
        node = graph.node(nid)
        inputs = graph.inputs(nid)
        low, high = node.op.arity
        if len(inputs) < low or (high is not None and len(inputs) > high):
            want = f"{low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
            raise VerifyError(
                f"{node.describe()} takes {want} input(s) but has {len(inputs)}", span=node.span
            )
        ins = [shapes[i] for i in inputs]
        try:
            shapes[nid] = node.op.out_shape(ins)
        except ShapeMismatch as err:
            got = ", ".join(_fmt(s) for s in ins)
            raise ShapeError(
                f"{node.describe()}: {err} (input shapes: {got})", span=node.span, hint=err.hint
            ) from None
    return shapes

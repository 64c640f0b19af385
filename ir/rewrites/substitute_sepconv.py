"""substitute-sepconv: replace a conv by a depthwise-separable one (approximate, paper 002 §5.2).

The node keeps its id and becomes ``sep_conv`` with the same channels, kernel, stride,
padding and dilation. Its weights start from the best separable approximation of the old
kernel: for every input channel ``i`` the slice ``W[:, i]`` (out x k*k) is replaced by its
best rank-one approximation ``sigma u v^T`` (SVD), giving pointwise column ``sigma u`` and
depthwise kernel ``v``. The node is listed for repair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import SepConv

from ._base import Outcome, Rewrite, Work, describe, op_text, require, require_node


@dataclass(frozen=True)
class Move:
    node: NodeId
    """A conv without groups and with a kernel larger than 1."""


def _moves(graph: Graph, node: NodeId, context: None = None) -> list[Move]:
    require_node(graph, node)
    op = graph.op(node)
    require(
        graph.kind(node) == "conv" and op.groups == 1 and isinstance(op.kernel, int) and op.kernel > 1,  # type: ignore[attr-defined]
        f"substitute-sepconv replaces a conv with kernel > 1 and no groups; {describe(graph, node)} is not one",
    )
    return [Move(node)]


def separable(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depthwise ``(C_in, 1, k, k)`` and pointwise ``(C_out, C_in, 1, 1)`` closest to ``weight``."""
    out, inp, kh, kw = weight.shape
    depthwise = np.zeros((inp, 1, kh, kw), dtype=weight.dtype)
    pointwise = np.zeros((out, inp, 1, 1), dtype=weight.dtype)
    for i in range(inp):
        u, s, vt = np.linalg.svd(weight[:, i].reshape(out, kh * kw).astype(np.float64), full_matrices=False)
        # share the singular value evenly so neither factor is tiny when the other is huge
        root = np.sqrt(s[0])
        pointwise[:, i, 0, 0] = u[:, 0] * root
        depthwise[i, 0] = (vt[0] * root).reshape(kh, kw)
    return depthwise, pointwise


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    _moves(g, move.node)
    old = g.op(move.node)
    new = SepConv(
        channels=old.channels,  # type: ignore[attr-defined]
        kernel=old.kernel,  # type: ignore[attr-defined]
        stride=old.stride,  # type: ignore[attr-defined]
        padding=old.padding,  # type: ignore[attr-defined]
        dilation=old.dilation,  # type: ignore[attr-defined]
        bias=old.bias,  # type: ignore[attr-defined]
    )
    arrays = work.arrays(move.node)
    depthwise, pointwise = separable(arrays["weight"])
    g.set_op(move.node, new)
    replaced = {"depthwise.weight": depthwise, "pointwise.weight": pointwise}
    if "bias" in arrays:
        replaced["pointwise.bias"] = arrays["bias"]
    work.put(move.node, replaced)
    return Outcome(
        move,
        f"replaced {describe(work.graph, move.node)} {op_text(old)} by {op_text(new)} "
        "(rank-one approximation per input channel)",
        repair=(move.node,),
    )


REWRITE = Rewrite("substitute-sepconv", False, Move, _moves, edit)
apply, candidates, moves_at = REWRITE.apply, REWRITE.candidates, REWRITE.moves_at

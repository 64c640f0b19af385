"""deepen: insert an identity Conv-BN-ReLU block (or an identity linear layer) after a value.

Paper 001 §3.2.1 (morphism types I and III of paper 002): the conv kernel is the identity
(1 at the centre of the diagonal, "same" padding), the batch norm is set to the identity in
eval mode (gamma = sqrt(var + eps), beta = mean), and ReLU is the identity because the
insertion point is provably non-negative — after a ReLU, a pooling of one, or a merge of
such values. For vectors (MLPs) the new layer is a linear layer with the identity matrix,
followed by a ReLU when the input is non-negative. Places and insertion: ``_insert``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import Conv, Linear, Relu

from ._base import Outcome, Rewrite, Work, describe, op_text, require
from ._init import FLOAT, identity_conv
from ._insert import KERNELS, identity_kernel, insert_block, insertion_point
from ._places import nonnegative


@dataclass(frozen=True)
class Move:
    node: NodeId
    """The value after which the new layer goes."""
    kernel: int | None = None
    """Conv kernel (3 or 5) for images; None for vectors, or to let the rng pick."""


def _moves(graph: Graph, node: NodeId, nonneg: set[NodeId]) -> list[Move]:
    if insertion_point(graph, node, nonneg, "deepen"):
        return [Move(node, k) for k in KERNELS]
    return [Move(node, None)]


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    nonneg = nonnegative(g, work.weights)
    if insertion_point(g, move.node, nonneg, "deepen"):
        kernel = identity_kernel(work, move.kernel, "conv")
        width = g.shape(move.node)[0]
        layer_op = Conv(channels=width, kernel=kernel, bias=False)
        inserted = insert_block(work, move.node, layer_op, {"weight": identity_conv(width, kernel)})
        return Outcome(Move(move.node, kernel), f"inserted {inserted} after {describe(g, move.node)}")
    require(move.kernel is None, "a kernel makes no sense for a linear layer on vectors")
    width = g.shape(move.node)[0]
    linear = Linear(features=width)
    layer = last = g.add(linear, [move.node])
    work.put(layer, {"weight": np.eye(width, dtype=FLOAT), "bias": np.zeros(width, dtype=FLOAT)})
    inserted = op_text(linear)
    if move.node in nonneg:
        last = g.add(Relu(), [layer])
        inserted += " relu"
    g.replace_uses(move.node, last, keep=[layer])
    return Outcome(Move(move.node, None), f"inserted {inserted} after {describe(g, move.node)}")


REWRITE = Rewrite("deepen", True, Move, _moves, edit, context=nonnegative)
apply, candidates, moves_at = REWRITE.apply, REWRITE.candidates, REWRITE.moves_at

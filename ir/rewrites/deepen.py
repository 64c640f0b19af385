"""deepen: insert an identity Conv-BN-ReLU block (or an identity linear layer) after a value.

Paper 001 §3.2.1 (morphism types I and III of paper 002): the conv kernel is the identity
(1 at the centre of the diagonal, "same" padding), the batch norm is set to the identity in
eval mode (gamma = sqrt(var + eps), beta = mean), and ReLU is the identity because the
insertion point is provably non-negative — after a ReLU, a pooling of one, or a merge of
such values. For vectors (MLPs) the new layer is a linear layer with the identity matrix,
followed by a ReLU when the input is non-negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import BatchNorm, Conv, Linear, Relu
from genomorph.ir.weights import Weights

from ._base import (
    Outcome,
    RewriteResult,
    Work,
    collect,
    describe,
    draw_seed,
    op_text,
    require,
    require_node,
    run,
)
from ._init import FLOAT, identity_bn, identity_conv
from ._places import ends_block, is_output, nonnegative

NAME = "deepen"
EXACT = True
KERNELS = (3, 5)


@dataclass(frozen=True)
class Move:
    node: NodeId
    """The value after which the new layer goes."""
    kernel: int | None = None
    """Conv kernel (3 or 5) for images; None for vectors, or to let the rng pick."""


def _moves(graph: Graph, node: NodeId, nonneg: set[NodeId]) -> list[Move]:
    require_node(graph, node)
    kind = graph.kind(node)
    require(
        not is_output(graph, node) and kind != "input",
        f"deepen does not insert after {describe(graph, node)}: it is an input or output of the network",
    )
    if len(graph.shape(node)) == 3:
        require(
            ends_block(graph, node),
            f"deepen inserts a block only between blocks, after pooling or after a merge; "
            f"{describe(graph, node)} is inside a block",
            hint="choose a relu, maxpool or merge node",
        )
        require(
            node in nonneg,
            f"{describe(graph, node)} can be negative, so the new block's ReLU would change the function",
            hint="insert after a ReLU, a pooling of ReLU outputs, or a merge of such values",
        )
        return [Move(node, k) for k in KERNELS]
    require(
        ends_block(graph, node),
        f"deepen inserts a linear layer after an activation, pooling, flatten or merge; "
        f"{describe(graph, node)} is a {kind}",
    )
    return [Move(node, None)]


def moves_at(graph: Graph, node: NodeId, weights: Weights | None = None) -> list[Move]:
    return _moves(graph, node, nonnegative(graph, weights))


def candidates(graph: Graph, weights: Weights | None = None) -> list[Move]:
    nonneg = nonnegative(graph, weights)
    return collect(graph, lambda g, n, w: _moves(g, n, nonneg))


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    nonneg = nonnegative(g, work.weights)
    _moves(g, move.node, nonneg)
    width = g.shape(move.node)[0]
    image = len(g.shape(move.node)) == 3
    if image:
        kernel = move.kernel if move.kernel is not None else int(work.rng.choice(KERNELS))
        require(kernel % 2 == 1, f"an identity conv needs an odd kernel, not {kernel}")
        layer_op = Conv(channels=width, kernel=kernel, bias=False)
        layer = g.add(layer_op, [move.node])
        bn_op = BatchNorm()
        bn = g.add(bn_op, [layer])
        last = g.add(Relu(), [bn])
        work.put(layer, {"weight": identity_conv(width, kernel)})
        work.put(bn, identity_bn(width, bn_op.eps))
        inserted = f"{op_text(layer_op)} bn relu"
    else:
        require(move.kernel is None, "a kernel makes no sense for a linear layer on vectors")
        kernel = None
        layer_op = Linear(features=width)
        layer = last = g.add(layer_op, [move.node])
        work.put(layer, {"weight": np.eye(width, dtype=FLOAT), "bias": np.zeros(width, dtype=FLOAT)})
        inserted = op_text(layer_op)
        if move.node in nonneg:
            last = g.add(Relu(), [layer])
            inserted += " relu"
    g.replace_uses(move.node, last, keep=[layer])
    return Outcome(Move(move.node, kernel), f"inserted {inserted} after {describe(g, move.node)}")


def apply(graph: Graph, weights: Weights | None, move: Move, rng: np.random.Generator) -> RewriteResult:
    return run(NAME, EXACT, edit, graph, weights, move, draw_seed(rng))

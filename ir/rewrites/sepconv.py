"""sepconv: insert an identity SepConv-BN-ReLU block after a value.

Paper 001 §3.2.6: a depthwise-separable conv is two identity maps in a row — the depthwise
kernels are 1 at the centre, the pointwise kernels form the identity matrix — followed, as in
deepen, by an identity batch norm and a ReLU that is the identity on the non-negative
insertion point. The places allowed are deepen's image places.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import BatchNorm, Relu, SepConv
from genomorph.ir.weights import Weights

from ._base import Outcome, RewriteResult, Work, collect, describe, draw_seed, op_text, require, run
from ._init import FLOAT, identity_bn, identity_depthwise
from ._places import nonnegative
from .deepen import KERNELS
from .deepen import _moves as deepen_moves

NAME = "sepconv"
EXACT = True


@dataclass(frozen=True)
class Move:
    node: NodeId
    """The value after which the block goes."""
    kernel: int | None = None
    """Depthwise kernel, 3 or 5 (None: the rng picks)."""


def _moves(graph: Graph, node: NodeId, nonneg: set[NodeId]) -> list[Move]:
    places = deepen_moves(graph, node, nonneg)
    require(
        len(graph.shape(node)) == 3,
        f"sepconv inserts a convolution, which needs an image; {describe(graph, node)} is a vector",
    )
    return [Move(node, m.kernel) for m in places]


def moves_at(graph: Graph, node: NodeId, weights: Weights | None = None) -> list[Move]:
    return _moves(graph, node, nonnegative(graph, weights))


def candidates(graph: Graph, weights: Weights | None = None) -> list[Move]:
    nonneg = nonnegative(graph, weights)
    return collect(graph, lambda g, n, w: _moves(g, n, nonneg))


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    _moves(g, move.node, nonnegative(g, work.weights))
    kernel = move.kernel if move.kernel is not None else int(work.rng.choice(KERNELS))
    require(kernel % 2 == 1, f"an identity depthwise kernel must be odd, not {kernel}")
    width = g.shape(move.node)[0]
    conv_op = SepConv(channels=width, kernel=kernel, bias=False)
    conv = g.add(conv_op, [move.node])
    bn_op = BatchNorm()
    bn = g.add(bn_op, [conv])
    relu = g.add(Relu(), [bn])
    work.put(
        conv,
        {
            "depthwise.weight": identity_depthwise(width, kernel),
            "pointwise.weight": np.eye(width, dtype=FLOAT)[:, :, None, None].copy(),
        },
    )
    work.put(bn, identity_bn(width, bn_op.eps))
    g.replace_uses(move.node, relu, keep=[conv])
    return Outcome(
        Move(move.node, kernel), f"inserted {op_text(conv_op)} bn relu after {describe(g, move.node)}"
    )


def apply(graph: Graph, weights: Weights | None, move: Move, rng: np.random.Generator) -> RewriteResult:
    return run(NAME, EXACT, edit, graph, weights, move, draw_seed(rng))

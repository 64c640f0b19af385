"""sepconv: insert an identity SepConv-BN-ReLU block after a value.

Paper 001 §3.2.6: a depthwise-separable conv is two identity maps in a row — the depthwise
kernels are 1 at the centre, the pointwise kernels form the identity matrix — followed, as in
deepen, by an identity batch norm and a ReLU that is the identity on the non-negative
insertion point. The places allowed are deepen's image places (``_insert``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import SepConv

from ._base import Outcome, Rewrite, Work, describe, require
from ._init import FLOAT, identity_depthwise
from ._insert import KERNELS, identity_kernel, insert_block, insertion_point
from ._places import nonnegative


@dataclass(frozen=True)
class Move:
    node: NodeId
    """The value after which the block goes."""
    kernel: int | None = None
    """Depthwise kernel, 3 or 5 (None: the rng picks)."""


def _moves(graph: Graph, node: NodeId, nonneg: set[NodeId]) -> list[Move]:
    require(
        insertion_point(graph, node, nonneg, "sepconv"),
        f"sepconv inserts a convolution, which needs an image; {describe(graph, node)} is a vector",
    )
    return [Move(node, k) for k in KERNELS]


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    _moves(g, move.node, nonnegative(g, work.weights))
    kernel = identity_kernel(work, move.kernel, "depthwise conv")
    width = g.shape(move.node)[0]
    weights = {
        "depthwise.weight": identity_depthwise(width, kernel),
        "pointwise.weight": np.eye(width, dtype=FLOAT)[:, :, None, None].copy(),
    }
    inserted = insert_block(work, move.node, SepConv(channels=width, kernel=kernel, bias=False), weights)
    return Outcome(Move(move.node, kernel), f"inserted {inserted} after {describe(g, move.node)}")


REWRITE = Rewrite("sepconv", True, Move, _moves, edit, context=nonnegative)
apply, candidates, moves_at = REWRITE.apply, REWRITE.candidates, REWRITE.moves_at

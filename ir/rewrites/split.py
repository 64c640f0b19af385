"""split: split one Conv-BN-ReLU block into two parallel copies weighted alpha and 1 - alpha.

Paper 001 §3.2.5 (morphism type IV): ``block_1 = alpha * block``, ``block_2 = (1 - alpha) *
block``, and their outputs are summed. The scaling lives in the weights, not in the merge:
batch norm's gamma and beta are multiplied by the factor (in eval mode BN is affine, so its
output scales), and ReLU is positively homogeneous (``relu(a z) = a relu(z)`` for ``a > 0``).
Without a batch norm the layer's own weight and bias are scaled. The copies then train apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import Add

from ._base import Outcome, Rewrite, Work, describe, require, require_node
from ._places import Block, block_at

ALPHA = 0.3


@dataclass(frozen=True)
class Move:
    node: NodeId
    """The conv / sep_conv / linear layer that starts the block."""
    alpha: float = ALPHA


def _block(graph: Graph, node: NodeId) -> Block:
    require_node(graph, node)
    block = block_at(graph, node, homogeneous=True)
    require(
        block is not None,
        f"split needs a Conv-BN-ReLU block starting at {describe(graph, node)}, "
        "whose inner values nothing else reads",
        hint="choose the conv, sep_conv or linear layer of a block that ends in relu",
    )
    assert block is not None
    if block.bn is not None:
        require(
            graph.op(block.bn).affine,  # type: ignore[attr-defined]
            f"{describe(graph, block.bn)} has no affine parameters to carry the split factor",
        )
    return block


def _moves(graph: Graph, node: NodeId, context: None = None) -> list[Move]:
    _block(graph, node)
    return [Move(node)]


def _scaled(arrays: dict[str, np.ndarray], factor: float, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {
        name: (array * np.asarray(factor, dtype=array.dtype) if name in names else array)
        for name, array in arrays.items()
    }


def edit(work: Work, move: Move) -> Outcome:
    g = work.graph
    block = _block(g, move.node)
    require(0.0 < move.alpha < 1.0, f"the split factor must lie strictly between 0 and 1, not {move.alpha}")
    source = g.inputs(block.layer)[0]
    # the copy: same ops, new ids, same weights; then each side scaled
    copies: dict[NodeId, NodeId] = {}
    previous = source
    for nid in block.nodes:
        copies[nid] = previous = g.add(g.op(nid), [previous])
        if nid in work.weights:
            work.put(previous, dict(work.arrays(nid)))
    carrier = block.bn if block.bn is not None else block.layer
    # scale one affine stage only: the bn, else the layer's last linear map (pointwise for sep_conv)
    names = g.op(carrier).traits.output_scale
    work.put(carrier, _scaled(work.arrays(carrier), move.alpha, names))
    work.put(copies[carrier], _scaled(work.arrays(copies[carrier]), 1.0 - move.alpha, names))
    merge = g.add(Add(), [block.act, copies[block.act]])
    g.replace_uses(block.act, merge, keep=[merge])
    return Outcome(
        move,
        f"split the block {', '.join(f'n{n}' for n in block.nodes)} into copies weighted {move.alpha:g} and "
        f"{1 - move.alpha:g} (new {', '.join(f'n{n}' for n in copies.values())}), summed by n{merge}",
    )


REWRITE = Rewrite("split", True, Move, _moves, edit)
apply, candidates, moves_at = REWRITE.apply, REWRITE.candidates, REWRITE.moves_at

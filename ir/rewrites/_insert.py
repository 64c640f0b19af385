"""Inserting an identity block after a value: the places and the edit deepen and sepconv share.

Paper 001 §3.2.1 inserts a block only between blocks, after pooling or after a merge, and
the new block ends in a ReLU, which is the identity only on non-negative values (morphism
type III): on images every insertion point must be provably non-negative. On vectors (MLPs)
deepen inserts a linear layer, with a ReLU only where its input is non-negative.
"""

from __future__ import annotations

from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import BatchNorm, OpBase, Relu

from ._base import Work, describe, op_text, require, require_node
from ._init import identity_bn
from ._places import ends_block, is_output

KERNELS = (3, 5)
"""Kernels of an inserted conv (deepen) or depthwise conv (sepconv)."""


def insertion_point(graph: Graph, node: NodeId, nonneg: set[NodeId], rewrite: str) -> bool:
    """Check that ``rewrite`` may insert after ``node``; True for an image, False for a vector."""
    require_node(graph, node)
    kind = graph.kind(node)
    require(
        not is_output(graph, node) and kind != "input",
        f"{rewrite} does not insert after {describe(graph, node)}: it is an input or output of the network",
    )
    if len(graph.shape(node)) == 3:
        require(
            ends_block(graph, node),
            f"{rewrite} inserts a block only between blocks, after pooling or after a merge; "
            f"{describe(graph, node)} is inside a block",
            hint="choose a relu, maxpool or merge node",
        )
        require(
            node in nonneg,
            f"{describe(graph, node)} can be negative, so the new block's ReLU would change the function",
            hint="insert after a ReLU, a pooling of ReLU outputs, or a merge of such values",
        )
        return True
    require(
        ends_block(graph, node),
        f"{rewrite} inserts a linear layer after an activation, pooling, flatten or merge; "
        f"{describe(graph, node)} is a {kind}",
    )
    return False


def identity_kernel(work: Work, kernel: int | None, layer: str) -> int:
    """The kernel asked for, else one drawn from ``KERNELS``; odd, so an identity exists."""
    chosen = kernel if kernel is not None else int(work.rng.choice(KERNELS))
    require(chosen % 2 == 1, f"an identity {layer} needs an odd kernel, not {chosen}")
    return chosen


def insert_block(work: Work, node: NodeId, layer_op: OpBase, layer_weights: dict) -> str:
    """Put ``layer_op`` bn relu after ``node`` for all its readers; return the inserted ops as text.

    ``layer_weights`` make the layer the identity; the batch norm is the identity in eval mode
    and the ReLU is on the non-negative values ``insertion_point`` admits.
    """
    g = work.graph
    layer = g.add(layer_op, [node])
    bn_op = BatchNorm()
    bn = g.add(bn_op, [layer])
    relu = g.add(Relu(), [bn])
    work.put(layer, layer_weights)
    work.put(bn, identity_bn(g.shape(node)[0], bn_op.eps))
    g.replace_uses(node, relu, keep=[layer])
    return f"{op_text(layer_op)} bn relu"

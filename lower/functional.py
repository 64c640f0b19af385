"""Free functions the generated ``forward`` calls for merges that torch has no single op for.

They are plain module-level functions so torch.fx can reference them by qualified name in the
code it generates; each runs a handful of tensor ops and holds no state.
"""

from __future__ import annotations

from torch import Tensor


def zero(x: Tensor, stride: int) -> Tensor:
    """DARTS' ``none`` op: zeros shaped like ``x`` subsampled by ``stride``.

    Multiplying by zero (rather than allocating zeros) keeps DARTS' semantics exactly,
    including a zero gradient flowing back into ``x``.
    """
    if stride == 1:
        return x.mul(0.0)
    return x[:, :, ::stride, ::stride].mul(0.0)


def weighted_sum(a: Tensor, b: Tensor, alpha: float) -> Tensor:
    """Split-up merge: ``alpha * a + (1 - alpha) * b`` with a fixed ``alpha``."""
    return alpha * a + (1.0 - alpha) * b


def mixed(weights: Tensor, row: int, *candidates: Tensor) -> Tensor:
    """DARTS mixed op: ``sum_i weights[row, i] * candidates[i]``.

    ``weights`` is the softmax of one architecture-parameter group, computed once per
    forward and shared by every mixed op of that group. Summing from the first term (not from
    0) changes nothing numerically and saves one op.
    """
    w = weights[row]
    out = w[0] * candidates[0]
    for i in range(1, len(candidates)):
        out = out + w[i] * candidates[i]
    return out


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """ShuffleNet's channel shuffle, as PC-DARTS writes it: ``(N, g, C/g, H, W)`` transposed to
    ``(N, C/g, g, H, W)``. Equal to ``torch.nn.functional.channel_shuffle``, written with view
    and transpose so autograd and every device support it."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def edge_sum(weights: Tensor, first: int, *edges: Tensor) -> Tensor:
    """PC-DARTS' edge normalisation: ``sum_j softmax(beta[first:first+n])_j * edges[j]``.

    ``weights`` is the softmax over *all* rows of the group's edge parameters (computed once per
    forward, as for α); renormalising its slice gives the softmax over this node's rows exactly,
    because ``softmax(b)[S] / sum(softmax(b)[S]) = softmax(b[S])``.
    """
    w = weights[first : first + len(edges)]
    w = w / w.sum()
    out = w[0] * edges[0]
    for i in range(1, len(edges)):
        out = out + w[i] * edges[i]
    return out

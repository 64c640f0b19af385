"""The DARTS operations (quark0/darts ``cnn/operations.py`` ``OPS``) as IR op chains.

Each entry maps ``(C, stride, affine)`` to the chain of IR ops the reference module computes,
in the same order, so parameter shapes line up one for one:

- ``none``: ``Zero(stride)``: zeros, subsampled by the stride;
- ``max_pool_3x3`` / ``avg_pool_3x3``: 3x3 pooling, padding 1 (average without the padding);
- ``skip_connect``: identity, or at stride 2 ``FactorizedReduce``, which starts with a ReLU
  that the IR's ``factorized_reduce`` leaves out, hence ``relu factorized_reduce``;
- ``sep_conv_KxK``: twice ReLU, depthwise KxK, pointwise 1x1, BN (stride on the first only);
- ``dil_conv_KxK``: ReLU, depthwise KxK with dilation 2, pointwise 1x1, BN;
- ``conv_7x1_1x7`` (AmoebaNet): ReLU, a 1x7 conv (stride ``1 x s``), a 7x1 conv (stride
  ``s x 1``), BN: rectangular kernels, written ``conv(C, 1x7, stride=1x2)`` in a genome.

Convolutions carry no bias; BN is affine unless the network says otherwise (the search
network uses ``affine=False`` everywhere inside its cells).
"""

from __future__ import annotations

from collections.abc import Callable

from genomorph.ir import OpBase
from genomorph.ir.ops import (
    AvgPool,
    BatchNorm,
    Conv,
    FactorizedReduce,
    Identity,
    MaxPool,
    Relu,
    SepConv,
    Zero,
)

EdgeOps = Callable[[int, int, bool], tuple[OpBase, ...]]

#: the eight candidate operations of the DARTS search space, in the order of its alphas
PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)


def _sep_conv(kernel: int) -> EdgeOps:
    def build(c: int, stride: int, affine: bool) -> tuple[OpBase, ...]:
        return (
            Relu(),
            SepConv(channels=c, kernel=kernel, stride=stride, bias=False),
            BatchNorm(affine=affine),
            Relu(),
            SepConv(channels=c, kernel=kernel, bias=False),
            BatchNorm(affine=affine),
        )

    return build


def _dil_conv(kernel: int) -> EdgeOps:
    def build(c: int, stride: int, affine: bool) -> tuple[OpBase, ...]:
        return (
            Relu(),
            SepConv(channels=c, kernel=kernel, stride=stride, dilation=2, bias=False),
            BatchNorm(affine=affine),
        )

    return build


def _skip(c: int, stride: int, affine: bool) -> tuple[OpBase, ...]:
    if stride == 1:
        return (Identity(),)
    return (Relu(), FactorizedReduce(channels=c, affine=affine))


def _conv_7x1_1x7(c: int, stride: int, affine: bool) -> tuple[OpBase, ...]:
    # padding 0x3 / 3x0 is the IR default for these kernels ("same" at stride 1)
    return (
        Relu(),
        Conv(channels=c, kernel=(1, 7), stride=(1, stride), bias=False),
        Conv(channels=c, kernel=(7, 1), stride=(stride, 1), bias=False),
        BatchNorm(affine=affine),
    )


OPS: dict[str, EdgeOps] = {
    "none": lambda c, stride, affine: (Zero(stride=stride),),
    "max_pool_3x3": lambda c, stride, affine: (MaxPool(kernel=3, stride=stride, padding=1),),
    "avg_pool_3x3": lambda c, stride, affine: (
        AvgPool(kernel=3, stride=stride, padding=1, count_include_pad=False),
    ),
    "skip_connect": _skip,
    "sep_conv_3x3": _sep_conv(3),
    "sep_conv_5x5": _sep_conv(5),
    "sep_conv_7x7": _sep_conv(7),
    "dil_conv_3x3": _dil_conv(3),
    "dil_conv_5x5": _dil_conv(5),
    "conv_7x1_1x7": _conv_7x1_1x7,
}

#: operations of the reference code that have no IR form, with the reason
UNSUPPORTED: dict[str, str] = {}


def search_candidate(name: str, c: int, stride: int) -> tuple[OpBase, ...]:
    """A candidate of the search network's MixedOp: pools get a non-affine BN appended."""
    ops = OPS[name](c, stride, False)
    if "pool" in name:
        ops = (*ops, BatchNorm(affine=False))
    return ops


def relu_conv_bn(c: int, affine: bool) -> tuple[OpBase, ...]:
    """``ReLUConvBN(C_in, C, 1, 1, 0)``: the preprocessing of a cell input."""
    return (Relu(), Conv(channels=c, kernel=1, bias=False), BatchNorm(affine=affine))


def factorized_reduce(c: int, affine: bool) -> tuple[OpBase, ...]:
    """``FactorizedReduce(C_in, C)``: preprocessing of input 0 after a reduction cell."""
    return (Relu(), FactorizedReduce(channels=c, affine=affine))

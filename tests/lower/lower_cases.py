"""Small IR graphs for the lowering tests: one or more per op kind, and a seeded random builder.

Built with the Graph API so these tests do not depend on the parser.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from genomorph.ir import Graph, NodeId
from genomorph.ir.ops import (
    AdaptiveAvgPool,
    Add,
    Aux,
    AvgPool,
    BatchNorm,
    Concat,
    Conv,
    Convex,
    Dropout,
    FactorizedReduce,
    Flatten,
    Gelu,
    GlobalAvgPool,
    Hardsigmoid,
    Hardswish,
    Identity,
    Input,
    LeakyRelu,
    Linear,
    MaxPool,
    Mixed,
    Mul,
    OpBase,
    Relu,
    Relu6,
    SepConv,
    Sigmoid,
    StochasticDepth,
    Swish,
    Tanh,
    WeightedSum,
    Zero,
)
from genomorph.lower import GenomeModule
from torch.utils.flop_counter import FlopCounterMode


def example_input(graph: Graph, batch: int = 2, seed: int = 0) -> torch.Tensor:
    shape = graph.stats().input_shape
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))


def main_output(out: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def flops(module: GenomeModule, x: torch.Tensor) -> int:
    """FLOPs of one eval-mode forward, as torch's own counter sees them."""
    module.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops()


def chain(shape: tuple[int, ...], *ops: OpBase) -> Graph:
    """``input shape`` followed by ``ops`` in a line."""
    g = Graph()
    x = g.add(Input(shape=shape))
    for op in ops:
        x = g.add(op, [x])
    return g


def _head(g: Graph, x: NodeId, classes: int = 3) -> NodeId:
    return g.add(Linear(features=classes), [g.add(GlobalAvgPool(), [x])])


def _merge(op: OpBase, shape: tuple[int, ...] = (4, 8, 8)) -> Graph:
    """Two conv branches of the input merged by ``op``, then a head."""
    g = Graph()
    x = g.add(Input(shape=shape))
    a = g.add(Conv(channels=4), [x])
    b = g.add(Relu(), [g.add(Conv(channels=4, kernel=1), [x])])
    _head(g, g.add(op, [a, b]))
    return g


def _add3() -> Graph:
    g = Graph()
    x = g.add(Input(shape=(4, 6, 6)))
    a, b, c = (g.add(Conv(channels=4, kernel=k), [x]) for k in (1, 3, 5))
    g.add(Relu(), [g.add(Add(), [a, b, c])])
    return g


def _concat_downsample() -> Graph:
    g = Graph()
    x = g.add(Input(shape=(3, 16, 16)))
    full = g.add(Conv(channels=4), [x])
    half = g.add(Conv(channels=5, stride=2), [full])
    quarter = g.add(Conv(channels=6, stride=2), [half])
    _head(g, g.add(Concat(downsample=True), [full, half, quarter]))
    return g


def _concat_vectors() -> Graph:
    g = Graph()
    x = g.add(Input(shape=(6,)))
    a = g.add(Linear(features=4), [x])
    b = g.add(Tanh(), [g.add(Linear(features=3), [x])])
    g.add(Linear(features=2), [g.add(Concat(), [a, b])])
    return g


def _mixed_cell() -> Graph:
    """A tiny DARTS-like supernet: two groups, two rows each, with none/pool/skip candidates."""
    g = Graph()
    x = g.add(Input(shape=(4, 8, 8)))
    s = g.add(BatchNorm(), [g.add(Conv(channels=4, kernel=1, bias=False), [x])])

    def edge(src: NodeId, group: str, row: int, stride: int) -> NodeId:
        relu = g.add(Relu(), [src])
        cands = [
            g.add(Zero(stride=stride), [src]),
            g.add(MaxPool(kernel=3, stride=stride, padding=1), [src]),
            g.add(Identity(), [src]) if stride == 1 else g.add(FactorizedReduce(channels=4), [relu]),
            g.add(BatchNorm(affine=False), [g.add(SepConv(channels=4, stride=stride, bias=False), [relu])]),
        ]
        labels = ("none", "max_pool_3x3", "skip_connect", "sep_conv_3x3")
        return g.add(Mixed(group=group, row=row, labels=labels), cands)

    n0 = edge(s, "normal", 0, 1)
    n1 = g.add(Add(), [edge(s, "normal", 1, 1), edge(n0, "normal", 1, 1)])
    r0 = edge(n1, "reduce", 0, 2)
    r1 = edge(n1, "reduce", 1, 2)
    _head(g, g.add(Concat(), [r0, r1]))
    return g


def _partial_channel_cell() -> Graph:
    """PC-DARTS' form of a small cell (channel_slice, channel_shuffle, edge_sum), built by the IR pass."""
    from genomorph.ir.partial_channels import partial_channels

    g = Graph()
    x = g.add(Input(shape=(4, 8, 8)))
    s = g.add(BatchNorm(), [g.add(Conv(channels=4, kernel=1, bias=False), [x])])

    def edge(src: NodeId, row: int) -> NodeId:
        relu = g.add(Relu(), [src])
        cands = [
            g.add(Zero(), [src]),
            g.add(MaxPool(kernel=3, stride=1, padding=1), [src]),
            g.add(Identity(), [src]),
            g.add(BatchNorm(affine=False), [g.add(SepConv(channels=4, bias=False), [relu])]),
        ]
        labels = ("none", "max_pool_3x3", "skip_connect", "sep_conv_3x3")
        return g.add(Mixed(group="normal", row=row, labels=labels), cands)

    n0 = edge(s, 0)
    n1 = g.add(Add(), [edge(s, 1), edge(n0, 2)])
    _head(g, g.add(Concat(), [n0, n1]))
    return partial_channels(g, 2)


def _aux_head() -> Graph:
    g = Graph()
    x = g.add(Input(shape=(3, 8, 8)))
    a = g.add(Relu(), [g.add(BatchNorm(), [g.add(Conv(channels=4), [x])])])
    g.add(Aux(weight=0.4), [_head(g, a, classes=5)])
    b = g.add(Conv(channels=6, stride=2), [a])
    g.add(Aux(weight=0.2), [g.add(Identity(), [_head(g, b, classes=5)])])
    _head(g, g.add(Relu(), [b]), classes=5)
    return g


#: case name -> graph builder. Every op kind of ir/ops.py appears in at least one case
#: (tests/lower/test_lower_ops.py checks this, so a new kind cannot go untested).
def _squeeze_excitation() -> Graph:
    """MobileNetV3's SE block: pool to 1x1, squeeze, excite, scale the map channel by channel."""
    g = Graph()
    x = g.add(Conv(channels=8), [g.add(Input(shape=(3, 6, 6)))])
    s = g.add(AdaptiveAvgPool(size=1), [x])
    s = g.add(
        Hardsigmoid(),
        [g.add(Conv(channels=8, kernel=1), [g.add(Relu(), [g.add(Conv(channels=2, kernel=1), [s])])])],
    )
    _head(g, g.add(Mul(), [s, x]))
    return g


def _stochastic_residual() -> Graph:
    """EfficientNet's residual: the branch goes through stochastic depth before the add."""
    g = Graph()
    x = g.add(Conv(channels=4), [g.add(Input(shape=(3, 6, 6)))])
    branch = g.add(StochasticDepth(p=0.5), [g.add(Conv(channels=4), [x])])
    _head(g, g.add(Add(), [branch, x]))
    return g


CASES: dict[str, Callable[[], Graph]] = {
    "conv": lambda: chain((3, 8, 8), Conv(channels=4), Relu()),
    "conv_strided_dilated_grouped": lambda: chain(
        (4, 9, 9), Conv(channels=6, kernel=3, stride=2, dilation=2, groups=2, bias=False)
    ),
    "conv_explicit_padding": lambda: chain((3, 7, 7), Conv(channels=4, kernel=5, padding=1)),
    "sep_conv": lambda: chain((4, 8, 8), SepConv(channels=6, kernel=5)),
    "sep_conv_dilated_strided": lambda: chain(
        (4, 9, 9), SepConv(channels=5, kernel=3, stride=2, dilation=2, bias=False)
    ),
    "bn_2d": lambda: chain((3, 6, 6), Conv(channels=4), BatchNorm(eps=1e-3, momentum=0.3)),
    "bn_1d": lambda: chain((5,), Linear(features=4), BatchNorm()),
    "bn_no_affine": lambda: chain((3, 6, 6), Conv(channels=4), BatchNorm(affine=False)),
    "activations": lambda: chain(
        (3, 6, 6), Conv(channels=4), Sigmoid(), Relu(), Conv(channels=4), Tanh(), Swish(), Gelu(), Relu()
    ),
    "identity": lambda: chain((3, 6, 6), Conv(channels=4), Identity(), Relu(), Identity()),
    "maxpool": lambda: chain((3, 9, 9), MaxPool(kernel=3, stride=2, padding=1), Conv(channels=4)),
    "avgpool_include_pad": lambda: chain((3, 8, 8), AvgPool(kernel=3, stride=1, padding=1)),
    "avgpool_exclude_pad": lambda: chain(
        (3, 8, 8), AvgPool(kernel=3, stride=1, padding=1, count_include_pad=False)
    ),
    "gap_linear": lambda: chain((3, 6, 6), Conv(channels=4), GlobalAvgPool(), Linear(features=3)),
    "flatten_linear": lambda: chain((3, 4, 4), Flatten(), Linear(features=5, bias=False)),
    "dropout": lambda: chain(
        (3, 6, 6), Conv(channels=4), Dropout(p=0.3), GlobalAvgPool(), Linear(features=2)
    ),
    "zero": lambda: chain((3, 6, 6), Conv(channels=4), Zero()),
    "zero_strided": lambda: chain((3, 7, 7), Conv(channels=4), Zero(stride=2)),
    "factorized_reduce": lambda: chain((3, 8, 8), Relu(), FactorizedReduce(channels=6)),
    "factorized_reduce_no_affine": lambda: chain((3, 8, 8), FactorizedReduce(channels=4, affine=False)),
    "add": lambda: _merge(Add()),
    "add_three": _add3,
    "concat": lambda: _merge(Concat()),
    "concat_downsample": _concat_downsample,
    "concat_vectors": _concat_vectors,
    "convex": lambda: _merge(Convex(init=0.7)),
    "weighted_sum": lambda: _merge(WeightedSum(alpha=0.3)),
    "mixed": _mixed_cell,
    "partial_channels": _partial_channel_cell,
    "aux": _aux_head,
    # ops of imported networks (issue 11)
    "imported_activations": lambda: chain(
        (3, 6, 6),
        Conv(channels=4),
        Relu6(),
        Conv(channels=4),
        Hardswish(),
        Hardsigmoid(),
        LeakyRelu(slope=0.2),
    ),
    "conv_rectangular": lambda: chain(
        (3, 9, 8),
        Conv(channels=4, kernel=(1, 7), stride=(1, 2)),
        Conv(channels=5, kernel=(7, 1), stride=(2, 1)),
    ),
    "pool_rectangular_ceil": lambda: chain(
        (3, 9, 9),
        MaxPool(kernel=3, stride=2, ceil_mode=True),
        AvgPool(kernel=(3, 1), stride=1, padding=(1, 0), ceil_mode=True),
        Conv(channels=4),
    ),
    "squeeze_excitation": _squeeze_excitation,
    "adaptive_avgpool": lambda: chain((3, 9, 7), Conv(channels=4), AdaptiveAvgPool(size=(3, 2)), Flatten()),
    "stochastic_depth": _stochastic_residual,
}


# ---------------------------------------------------------------------------------------------
# Random graphs: chains of blocks (single ops, residual merges, concats, mixed edges), always
# shape-valid by construction.


class _Random:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.g = Graph()
        self.rows = 0  # rows used so far in the one architecture group

    def pick(self, options: list) -> object:
        return options[int(self.rng.integers(len(options)))]

    def shape(self, nid: NodeId) -> tuple[int, ...]:
        return self.g.shapes()[nid]

    def unary(self, x: NodeId) -> NodeId:
        c, h, _ = self.shape(x)
        ops: list[OpBase] = [
            Conv(
                channels=int(self.rng.integers(2, 7)),
                kernel=self.pick([1, 3, 5]),
                bias=bool(self.rng.random() < 0.5),
            ),
            SepConv(
                channels=int(self.rng.integers(2, 7)), kernel=self.pick([3, 5]), dilation=self.pick([1, 2])
            ),
            BatchNorm(),
            self.pick([Relu(), Sigmoid(), Tanh(), Swish(), Gelu(), Identity()]),
            self.pick([Relu(), Sigmoid(), Tanh(), Swish(), Gelu(), Relu()]),
            Dropout(p=0.2),
            AvgPool(kernel=3, stride=1, padding=1, count_include_pad=bool(self.rng.random() < 0.5)),
        ]
        if h >= 4:
            ops.append(MaxPool(kernel=2))
            ops.append(Conv(channels=c * 2, kernel=3, stride=2, groups=self.pick([1, c])))
        if h >= 4 and h % 2 == 0:
            ops.append(FactorizedReduce(channels=2 * int(self.rng.integers(1, 4))))
        return self.g.add(self.pick(ops), [x])

    def same_shape_branch(self, x: NodeId) -> NodeId:
        c = self.shape(x)[0]
        y = self.g.add(Conv(channels=c, kernel=self.pick([1, 3])), [x])
        return self.g.add(self.pick([BatchNorm(), Relu(), Identity()]), [y])

    def block(self, x: NodeId) -> NodeId:
        kind = self.pick(["unary", "unary", "residual", "concat", "mixed"])
        if kind == "unary":
            return self.unary(x)
        if kind == "residual":
            merge = self.pick([Add(), Convex(init=float(self.rng.random())), WeightedSum(alpha=0.3)])
            branch = self.same_shape_branch(x)
            return self.g.add(merge, [branch, x] if self.rng.random() < 0.5 else [x, branch])
        if kind == "concat":
            h = self.shape(x)[1]
            stride = 2 if h % 2 == 0 and h >= 4 else 1
            y = self.g.add(Conv(channels=3, stride=stride), [x])
            return self.g.add(Concat(downsample=True), [x, y])
        c = self.shape(x)[0]
        cands = [
            self.g.add(Zero(), [x]),
            self.g.add(Identity(), [x]),
            self.g.add(MaxPool(kernel=3, stride=1, padding=1), [x]),
            self.g.add(SepConv(channels=c, bias=False), [self.g.add(Relu(), [x])]),
        ]
        self.rows += 1
        return self.g.add(Mixed(group="cell", row=self.rows - 1), cands)

    def build(self, blocks: int) -> Graph:
        shape = (int(self.rng.integers(1, 4)), *(2 * [int(self.pick([6, 8, 9]))]))
        x = self.g.add(Input(shape=shape))
        for _ in range(blocks):
            x = self.block(x)
            if self.rng.random() < 0.15:  # an auxiliary head off the middle
                self.g.add(
                    Aux(weight=0.4), [self.g.add(Linear(features=2), [self.g.add(GlobalAvgPool(), [x])])]
                )
        self.g.add(Linear(features=3), [self.g.add(Flatten(), [x])])
        return self.g


def random_graph(seed: int, blocks: int = 6) -> Graph:
    """A shape-valid graph of ``blocks`` random blocks, reproducible from ``seed``."""
    return _Random(seed).build(blocks)

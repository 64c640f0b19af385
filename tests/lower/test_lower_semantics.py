"""The lowered ops compute what docs/internals.md and ir/ops.py say, checked against plain torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from genomorph.ir import Graph
from genomorph.ir.ops import (
    AvgPool,
    BatchNorm,
    Conv,
    Convex,
    FactorizedReduce,
    Identity,
    Input,
    Linear,
    Mixed,
    Relu,
    SepConv,
    Sigmoid,
    WeightedSum,
    Zero,
)
from genomorph.lower import lower
from lower_cases import CASES, chain, example_input
from torch import nn


def _eval(graph: Graph, seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    module = lower(graph).eval()
    x = example_input(graph, seed=seed)
    with torch.no_grad():
        return module, x, module(x)


@pytest.mark.parametrize(
    "conv",
    [
        Conv(channels=4, kernel=5),
        Conv(channels=4, kernel=3, padding=0, stride=2),
        Conv(channels=6, kernel=3, dilation=2, groups=3, bias=False),
    ],
)
def test_conv_matches_f_conv2d(conv: Conv) -> None:
    module, x, y = _eval(chain((3, 9, 9), conv))
    layer = module.n1
    want = F.conv2d(x, layer.weight, layer.bias, conv.stride, conv.pad, conv.dilation, conv.groups)
    torch.testing.assert_close(y, want)


def test_sep_conv_is_depthwise_then_pointwise() -> None:
    op = SepConv(channels=5, kernel=3, dilation=2)
    module, x, y = _eval(chain((4, 9, 9), op))
    dw, pw = module.n1.depthwise, module.n1.pointwise
    assert dw.groups == 4 and dw.bias is None and pw.kernel_size == (1, 1)
    want = F.conv2d(F.conv2d(x, dw.weight, None, 1, 2, 2, groups=4), pw.weight, pw.bias)
    torch.testing.assert_close(y, want)


def test_factorized_reduce_shifts_the_second_conv_by_one_pixel() -> None:
    module, x, y = _eval(chain((3, 8, 8), FactorizedReduce(channels=6)))
    fr = module.n1
    assert fr.conv_1.bias is None and fr.conv_1.stride == (2, 2)
    both = torch.cat(
        [F.conv2d(x, fr.conv_1.weight, stride=2), F.conv2d(x[:, :, 1:, 1:], fr.conv_2.weight, stride=2)], 1
    )
    torch.testing.assert_close(y, fr.bn(both))


@pytest.mark.parametrize("include", [True, False])
def test_avgpool_count_include_pad(include: bool) -> None:
    _, x, y = _eval(chain((3, 6, 6), AvgPool(kernel=3, stride=2, padding=1, count_include_pad=include)))
    torch.testing.assert_close(y, F.avg_pool2d(x, 3, 2, 1, count_include_pad=include))


def test_bn_follows_input_rank_and_attributes() -> None:
    module = lower(chain((5,), Linear(features=4), BatchNorm(eps=1e-3, momentum=0.3, affine=False)))
    assert isinstance(module.n2, nn.BatchNorm1d)
    assert (module.n2.eps, module.n2.momentum, module.n2.affine) == (1e-3, 0.3, False)
    assert isinstance(lower(CASES["bn_2d"]()).n2, nn.BatchNorm2d)


def test_concat_max_pools_larger_inputs() -> None:
    module, x, y = _eval(CASES["concat_downsample"]())
    full = module.n1(x)
    half = module.n2(full)
    quarter = module.n3(half)
    want = torch.cat([F.max_pool2d(full, 4), F.max_pool2d(half, 2), quarter], 1)
    torch.testing.assert_close(y, module.n6(want.mean((2, 3))))


def _two_inputs(merge: Convex | WeightedSum) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    g = Graph()
    x = g.add(Input(shape=(2, 3, 3)))
    g.add(merge, [g.add(Conv(channels=2, kernel=1), [x]), g.add(Relu(), [x])])
    return _eval(g)


def test_convex_is_learnable_lambda_combination() -> None:
    module, x, y = _two_inputs(Convex(init=0.7))
    assert module.n3.lam.item() == pytest.approx(0.7)
    assert [name for name, _ in module.n3.named_parameters()] == ["lam"]
    torch.testing.assert_close(y, 0.7 * module.n1(x) + 0.3 * x.relu())


def test_weighted_sum_uses_fixed_alpha() -> None:
    module, x, y = _two_inputs(WeightedSum(alpha=0.3))
    assert not list(module.parameters())[2:]  # only the conv's weight and bias
    torch.testing.assert_close(y, 0.3 * module.n1(x) + 0.7 * x.relu())


def test_zero_subsamples_like_darts() -> None:
    _, x, y = _eval(chain((3, 7, 7), Zero(stride=2)))
    assert tuple(y.shape) == (2, 3, 4, 4) and not y.any()


def test_mixed_is_softmax_weighted_sum_with_shared_rows() -> None:
    g = Graph()
    x = g.add(Input(shape=(2, 4, 4)))
    a, b = g.add(Relu(), [x]), g.add(Conv(channels=2, kernel=1), [x])
    m0 = g.add(Mixed(group="normal", row=0), [a, b])
    m1 = g.add(Mixed(group="normal", row=0), [m0, g.add(Identity(), [m0])])
    g.add(Mixed(group="normal", row=1), [m1, g.add(Zero(), [m1])])
    module, inp, y = _eval(g)
    (alphas,) = module.arch_parameters()
    assert tuple(alphas.shape) == (2, 2)
    w = torch.softmax(alphas.detach(), -1)
    first = w[0, 0] * inp.relu() + w[0, 1] * module.n2(inp)
    second = w[0, 0] * first + w[0, 1] * first
    torch.testing.assert_close(y, w[1, 0] * second)


def test_identity_emits_nothing() -> None:
    module = lower(chain((3, 4, 4), Identity(), Conv(channels=2), Identity(), Identity()))
    ops = [n.op for n in module.graph.nodes]
    assert ops == ["placeholder", "call_module", "output"]


def test_relu_after_sigmoid_is_not_in_place() -> None:
    # sigmoid's backward reads its output: overwriting it would corrupt the gradient.
    module = lower(chain((2, 3, 3), Conv(channels=2), Sigmoid(), Relu()))
    targets = [n.target for n in module.graph.nodes if n.op == "call_function"]
    assert torch.relu in targets and torch.relu_ not in targets

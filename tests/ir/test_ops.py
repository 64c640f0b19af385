"""Op models: validation of arguments, shape rules, parameter shapes and MACs."""

from __future__ import annotations

import pydantic
import pytest
from genomorph.ir.ops import (
    OP_CLASSES,
    AvgPool,
    BatchNorm,
    Conv,
    FactorizedReduce,
    Flatten,
    GlobalAvgPool,
    Input,
    Linear,
    MaxPool,
    Mixed,
    SepConv,
    ShapeMismatch,
    Zero,
    op_from_dict,
)


def test_every_kind_is_registered_under_its_kind() -> None:
    for kind, cls in OP_CLASSES.items():
        assert cls.model_fields["kind"].default == kind


def test_ops_are_frozen_and_reject_unknown_fields() -> None:
    conv = Conv(channels=8)
    with pytest.raises(pydantic.ValidationError):
        conv.channels = 9  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        Conv(channels=8, kernal=3)  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError):
        Conv(channels=0)


def test_op_from_dict_discriminates_on_kind() -> None:
    assert op_from_dict({"kind": "linear", "features": 3}) == Linear(features=3)
    with pytest.raises(pydantic.ValidationError):
        op_from_dict({"kind": "warp", "features": 3})


@pytest.mark.parametrize(
    ("op", "ins", "out"),
    [
        (Conv(channels=8, kernel=3), [(3, 32, 32)], (8, 32, 32)),
        (Conv(channels=8, kernel=7, stride=2, padding=3), [(3, 224, 224)], (8, 112, 112)),
        (Conv(channels=8, kernel=3, dilation=2), [(3, 9, 9)], (8, 9, 9)),
        (SepConv(channels=8, kernel=5, stride=2), [(4, 16, 16)], (8, 8, 8)),
        (MaxPool(kernel=3, stride=2, padding=1), [(4, 112, 112)], (4, 56, 56)),
        (AvgPool(kernel=2), [(4, 7, 7)], (4, 3, 3)),
        (GlobalAvgPool(), [(4, 7, 7)], (4,)),
        (Flatten(), [(4, 2, 3)], (24,)),
        (Linear(features=5), [(24,)], (5,)),
        (Zero(stride=2), [(4, 7, 7)], (4, 4, 4)),
        (FactorizedReduce(channels=6), [(4, 8, 8)], (6, 4, 4)),
        (BatchNorm(), [(9,)], (9,)),
    ],
)
def test_shape_rules(op, ins, out) -> None:
    assert op.out_shape(ins) == out


@pytest.mark.parametrize(
    ("op", "ins", "message"),
    [
        (Conv(channels=8, kernel=5, padding=0), [(3, 3, 3)], "does not fit"),
        (Conv(channels=8), [(16,)], "needs an image"),
        (Linear(features=4), [(3, 4, 4)], "needs a vector"),
        (Conv(channels=8, groups=3), [(4, 8, 8)], "groups=3"),
        (FactorizedReduce(channels=4), [(4, 7, 7)], "even height"),
    ],
)
def test_shape_errors(op, ins, message) -> None:
    with pytest.raises(ShapeMismatch, match=message):
        op.out_shape(ins)


def test_param_shapes_follow_torch_names() -> None:
    assert Conv(channels=8, kernel=3, groups=2).param_shapes([(4, 8, 8)]) == {
        "weight": (8, 2, 3, 3),
        "bias": (8,),
    }
    assert set(SepConv(channels=8, bias=False).param_shapes([(4, 8, 8)])) == {
        "depthwise.weight",
        "pointwise.weight",
    }
    assert BatchNorm(affine=False).param_shapes([(4, 8, 8)]) == {}
    assert set(BatchNorm().buffer_shapes([(4, 8, 8)])) == {
        "running_mean",
        "running_var",
        "num_batches_tracked",
    }


def test_macs() -> None:
    assert Conv(channels=8, kernel=3).macs([(4, 8, 8)], (8, 8, 8)) == 8 * 8 * 8 * 4 * 9
    assert Linear(features=5).macs([(7,)], (5,)) == 35
    assert SepConv(channels=8).macs([(4, 8, 8)], (8, 8, 8)) == 64 * 4 * 9 + 64 * 4 * 8


def test_arguments_are_non_defaults_plus_positionals() -> None:
    assert Conv(channels=8, kernel=3, bias=False).arguments() == {"channels": 8, "kernel": 3, "bias": False}
    assert Input(shape=(3, 8, 8)).arguments() == {"shape": (3, 8, 8)}
    assert Mixed(group="reduce", row=2).arguments() == {"group": "reduce", "row": 2}

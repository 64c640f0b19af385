"""Op traits: every op kind declares every trait itself, and the traits agree with each other."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from genomorph.ir import ops
from genomorph.ir.ops import ACTIVATIONS, OP_CLASSES, Conv, Relu
from genomorph.ir.traits import TRAIT_NAMES, Traits
from genomorph.search.strategies.space import Activation

KINDS = sorted(OP_CLASSES)


def test_traits_have_no_defaults() -> None:
    # a new op kind cannot leave a trait out: the constructor needs every one
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(Traits))
    with pytest.raises(TypeError, match="missing"):
        Traits(channels="pass")  # type: ignore[call-arg]
    assert len(TRAIT_NAMES) == len(dataclasses.fields(Traits)) >= 15


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_declares_its_own_traits(kind: str) -> None:
    cls = OP_CLASSES[kind]
    # declared on the class itself, not inherited from a base (MaxPool and AvgPool share _Pool)
    assert "traits" in vars(cls), f"{cls.__name__} does not declare traits = Traits(...)"
    assert isinstance(cls.traits, Traits)


@pytest.mark.parametrize("kind", KINDS)
def test_traits_agree_with_each_other(kind: str) -> None:
    cls = OP_CLASSES[kind]
    t = cls.traits
    if t.activation:
        assert t.pointwise and t.ends_block and cls.arity == (1, 1)
    if t.ends_block:
        assert t.ends_vector_block  # a block end on images ends a block on vectors too
    if t.channels == "layer" or t.starts_block:
        assert t.width_field in cls.model_fields
    else:
        assert t.width_field is None or kind == "conv"
    if t.joins_branches:
        assert cls.is_merge and cls.arity[0] >= 2
    if t.mergeable:
        assert t.ends_block
    if t.inplace:
        assert cls.arity[0] >= 1
    if t.pointwise:
        assert t.channels == "pass"
    if t.channels == "addlike":
        assert cls.is_merge


def test_activations_are_the_activation_kinds_everywhere() -> None:
    # identity used to count as an activation in ops.ACTIVATIONS but not in the rewrites
    imported = {"relu6", "hardswish", "hardsigmoid", "leaky_relu"}  # the ops of torchvision imports
    assert {"relu", "sigmoid", "tanh", "swish", "gelu"} | imported == ACTIVATIONS
    assert set(typing.get_args(Activation)) <= ACTIVATIONS  # the search space's activations


def test_conv_refines_its_channel_traits_by_groups() -> None:
    ins = [(8, 6, 6)]
    assert Conv(channels=8).channel_role(ins) == "layer"
    assert Conv(channels=8, groups=8).channel_role(ins) == "pass"  # depthwise
    assert Conv(channels=8, groups=2).channel_role(ins) == "fixed"
    assert set(Conv(channels=8, groups=8).channel_layout(ins)) == {"weight", "bias"}
    assert Conv(channels=8, groups=8).resized(12) == Conv(channels=12, groups=12)
    assert Conv(channels=8).resized(12) == Conv(channels=12)
    with pytest.raises(TypeError, match="no output width"):
        Relu().resized(3)


def test_docstring_table_matches_the_traits() -> None:
    lines = (ops.__doc__ or "").splitlines()
    header = next(line.split() for line in lines if line.split()[:2] == ["kind", "channels"])
    rows = [
        line.split() for line in lines if len(line.split()) == len(header) and line.split()[0] in OP_CLASSES
    ]
    assert [row[0] for row in rows] == list(OP_CLASSES), "one row per op kind, in OP_CLASSES order"
    columns = {
        "channels": "channels", "width": "width_field", "act": "activation", "pw": "pointwise",
        "sign": "sign", "end": "ends_block", "vend": "ends_vector_block", "start": "starts_block",
        "join": "joins_branches", "merge": "mergeable", "homog": "homogeneous", "scale": "output_scale",
        "overw": "overwritable", "inpl": "inplace",
    }  # fmt: skip
    assert set(header[1:]) == set(columns) and set(columns.values()) == set(TRAIT_NAMES) - {"layout"}
    for row in rows:
        traits = OP_CLASSES[row[0]].traits
        for column, cell in zip(header[1:], row[1:], strict=True):
            value = getattr(traits, columns[column])
            if isinstance(value, bool):
                assert cell == ("x" if value else "."), f"{row[0]}.{column}"
            elif column == "scale":
                assert (cell == ".") == (not value), f"{row[0]}.{column}"
            else:
                assert cell == (value or "."), f"{row[0]}.{column}"


def test_an_op_kind_without_traits_is_refused_when_defined() -> None:
    with pytest.raises(TypeError, match="must declare traits"):

        class LeakyRelu(ops.OpBase):  # no traits at all
            kind: typing.Literal["leaky_relu"] = "leaky_relu"

    with pytest.raises(TypeError, match="must declare traits"):

        class Relu6(Relu):  # inheriting relu's traits would make it homogeneous, which it is not
            kind: typing.Literal["relu6"] = "relu6"

"""What rewrites and lowering need to know about an op kind, declared once on its class.

Every op class in ``ir/ops.py`` sets ``traits = Traits(...)``. ``Traits`` has no defaults, so
an op kind that leaves a field out fails when its class is defined, and so does an op kind
that declares no traits of its own (``OpBase.__pydantic_init_subclass__``: inheriting relu's
traits would make a relu6 homogeneous, which it is not). Activations, which share all but
four facts, are declared with ``activation_traits(sign=..., homogeneous=..., mergeable=...,
inplace=...)``: those four stay explicit per kind. The trait table itself
is in the ``ir/ops.py`` module docstring. Adding an op kind means: its class (shape rules,
tensors, traits) and its lowering (``lower/lower.py``), nothing else.

Two traits depend on the op's arguments, not only its kind: a convolution whose ``groups``
equals its input and output channels is *depthwise* and passes channels through like batch
norm, and any other grouped convolution has fixed channels. ``OpBase.channel_role`` and
``OpBase.channel_layout`` (given the input shapes) give the per-node answer; the class traits
are those of the plain (ungrouped) op.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

ChannelRole = Literal["pass", "addlike", "derived", "layer", "reader", "fixed"]
"""How an op relates to the channel axis of its input (``ir/rewrites/_channels.py``).

- ``pass``: output channels are the input's, one for one (batch norm, activations, pooling,
  dropout, depthwise conv): a change of the input's channels flows through unchanged;
- ``addlike``: a merge of equal shapes (add, convex, weighted sum, mixed): all inputs and the
  output share one channel map, so a change must reach every input;
- ``derived``: output channels are computed from the inputs' (concat: an offset; flatten:
  one channel becomes ``H*W`` features);
- ``layer``: mixes all input channels into a width of its own (conv without groups,
  sep_conv, linear): a change of its input remaps its weight columns, and its own width can
  change (``width_field``);
- ``reader``: reads input channels with weights but its output width stays (factorized_reduce);
- ``fixed``: cannot follow a change of its input's channels (grouped conv, the network input,
  an auxiliary output).
"""

Sign = Literal["nonnegative", "keeps", "unit_mix", "any"]
"""What an op guarantees about the sign of its output (``ir/rewrites/_places.nonnegative``).

- ``nonnegative``: ``>= 0`` whatever the input (relu, sigmoid, zero);
- ``keeps``: ``>= 0`` when every input is (max/average/sum/reshape/copy of its inputs);
- ``unit_mix``: ``a*x + (1-a)*y``: keeps the sign when the coefficient ``a`` lies in [0, 1];
- ``any``: no guarantee.
"""

Space = Literal["out", "in"]
Fresh = Literal["init", "mix", "one", "zero"]
Placement = tuple[Space, int, Fresh]
"""Where a tensor keeps channels: ``(space, axis, fresh)``.

``space`` is ``"out"`` (the node's output channels) or ``"in"`` (its input channels); ``fresh``
says how a new channel's slice starts: ``init`` as torch initialises the layer, ``one``,
``zero``, or ``mix`` for the input columns of a mixing layer (zero when fresh, divided by the
replica count when a channel is copied, so the function is kept).
"""
Layout = Mapping[str, tuple[Placement, ...]]
"""Tensor name (as in ``param_shapes`` / ``buffer_shapes``) -> where its channels are."""


def layout(**tensors: tuple[Placement, ...]) -> Layout:
    """A read-only layout; keyword names with dots are given through ``**{"a.b": ...}``."""
    return MappingProxyType(dict(tensors))


NO_TENSORS: Layout = layout()
#: a conv or linear layer: weight rows are output channels, columns input channels
LAYER_LAYOUT: Layout = layout(
    weight=(("out", 0, "init"), ("in", 1, "mix")),
    bias=(("out", 0, "init"),),
)
#: a depthwise conv: one filter per channel, input and output channels are one map
DEPTHWISE_LAYOUT: Layout = layout(weight=(("out", 0, "init"),), bias=(("out", 0, "init"),))


@dataclass(frozen=True)
class Traits:
    """The facts about one op kind that passes act on. Every field must be given."""

    channels: ChannelRole
    """Relation to the channel axis (see ``ChannelRole``); conv refines it per node."""
    width_field: str | None
    """The op field holding the output width of a ``layer`` (``channels``, ``features``)."""
    layout: Layout
    """Where each channel-carrying tensor keeps its channels (empty: the op has none)."""
    activation: bool
    """A nonlinearity that ends a ``layer [bn] activation`` block (not identity)."""
    pointwise: bool
    """Output element ``i`` depends only on input element ``i`` (activations, batch norm in eval
    mode, dropout, identity): a unit's activation can be looked for through it."""
    sign: Sign
    """Sign guarantee of the output (see ``Sign``)."""
    ends_block: bool
    """On images: the last op of a block (an activation, a pooling) or a merge of branches; where
    paper 001 §3.2.1 inserts new blocks and skips start or land."""
    ends_vector_block: bool
    """The same on vectors (MLPs), where gap, flatten and dropout also end a block."""
    starts_block: bool
    """A layer with weights that starts a ``layer [bn] activation`` block (conv, sep_conv, linear)."""
    joins_branches: bool
    """A merge of separate branches, one of which a skip-removal may cut (not ``mixed``, whose
    inputs are the candidates of one edge)."""
    mergeable: bool
    """Paper 001 §3.2.3-4: an output merge-convex / merge-concat may merge (ReLU, max-pooling)."""
    homogeneous: bool
    """``f(a*x) = a*f(x)`` for every ``a > 0`` whatever the weights (relu, pooling, ...): split
    may carry its factor through it."""
    output_scale: tuple[str, ...]
    """Tensors whose joint scaling by ``a`` scales the output by ``a`` (split's carrier)."""
    overwritable: bool
    """Lowering: autograd never reads this op's output back and the output is a fresh tensor
    (not a view, not the input itself), so its only consumer may overwrite it in place."""
    inplace: bool
    """Lowering: the op may write its result into its first input (relu, add) when that input
    is overwritable and read by nothing else."""


def activation_traits(*, sign: Sign, homogeneous: bool, mergeable: bool, inplace: bool) -> Traits:
    """The traits of an elementwise activation: what all share is filled in, what differs is given.

    An activation passes channels through, has no tensors, is pointwise and ends a block on
    images and vectors; it starts no block, joins no branches, scales nothing and its output
    may not be overwritten (autograd reads it back, or it is a cheap recompute not worth it).
    """
    return Traits(
        channels="pass", width_field=None, layout=NO_TENSORS, activation=True, pointwise=True, sign=sign,
        ends_block=True, ends_vector_block=True, starts_block=False, joins_branches=False,
        mergeable=mergeable, homogeneous=homogeneous, output_scale=(), overwritable=False, inplace=inplace,
    )  # fmt: skip


#: trait names, in declaration order (for tests and the docs table)
TRAIT_NAMES: tuple[str, ...] = tuple(Traits.__dataclass_fields__)

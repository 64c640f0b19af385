"""The op set of the genomorph IR: one frozen pydantic model per op kind.

Shapes exclude the batch dimension: images are ``(C, H, W)``, vectors ``(F,)``.
Every op declares its own rules, so a pass never needs an ``if kind == ...`` chain:

- ``arity``: how many inputs it takes (``(min, max)``, ``max=None`` for "any");
- ``out_shape(ins)``: output shape from input shapes, raising :class:`ShapeMismatch`;
- ``param_shapes(ins)`` / ``buffer_shapes(ins)``: trainable tensors and state, by the exact
  names the lowered torch module uses in its ``state_dict`` (weights travel keyed by them);
- ``macs(ins, out)``: multiply-accumulates of conv and linear layers, as
  ``torch.utils.flop_counter`` counts them (FLOPs / 2); elementwise work counts zero.
- ``traits``: what rewrites and lowering need to know about the kind (``ir/traits.py``, table
  below); ``channel_role(ins)`` / ``channel_layout(ins)`` / ``resized(width)`` refine it per node.

Op semantics (input -> output):

- ``input(shape)``: no inputs; the network input.
- ``conv(channels, kernel, stride, padding, dilation, groups, bias)``: 2-D convolution;
  ``padding=None`` means ``dilation*(kernel-1)//2`` ("same" at stride 1 for odd kernels).
- ``sep_conv(channels, kernel, stride, padding, dilation, bias)``: depthwise conv
  (``groups=C_in``, no bias) then pointwise 1x1 conv to ``channels`` (bias as given).
- ``bn(affine, eps, momentum)``: batch norm over channels (1-D for vectors, 2-D for images).
- ``relu sigmoid tanh swish gelu identity``: elementwise.
- ``maxpool/avgpool(kernel, stride, padding)``: ``stride=None`` means ``stride=kernel``.
- ``gap``: global average pool, ``(C, H, W) -> (C,)``.  ``flatten``: ``(C, H, W) -> (C*H*W,)``.
- ``linear(features, bias)``: ``(F,) -> (features,)``.  ``dropout(p)``: identity in eval mode.
- ``zero(stride)``: zeros shaped like the input subsampled by ``stride`` (DARTS "none").
- ``factorized_reduce(channels, affine)``: two 1x1 stride-2 convs on the input and on the
  input shifted by one pixel, concatenated, then batch norm (DARTS' FactorizedReduce minus ReLU).
- ``add``: sum of >= 2 equal shapes.  ``concat(downsample)``: along channels (features for
  vectors); with ``downsample`` larger inputs are max-pooled by 2 or 4 to the smallest size.
- ``convex(init)``: ``lam*a + (1-lam)*b`` with a learnable scalar ``lam`` (starts at ``init``).
- ``weighted_sum(alpha)``: ``alpha*a + (1-alpha)*b`` with a fixed ``alpha`` (split-up).
- ``mixed(group, row, labels)``: DARTS mixed op: ``sum_i softmax(arch[group][row])_i * x_i`` over
  its candidate inputs; architecture parameters are shared by all mixed ops of a group and row.
- ``aux(weight)``: marks an auxiliary output (e.g. DARTS' auxiliary head) with its loss weight.
- ``relu6 hardswish hardsigmoid leaky_relu(slope)``: elementwise, as torch's functions.
- ``mul``: elementwise product of two values; size-1 axes broadcast (squeeze-excitation's
  ``(C, 1, 1)`` scales times a ``(C, H, W)`` map).
- ``adaptive_avgpool(size)``: average pooling to ``size`` (``k`` or ``KxL``), ``(C, H, W) -> (C, k, l)``.
- ``stochastic_depth(p, mode)``: training only: drops the input per sample (``row``) or per batch
  with probability ``p`` and scales the rest by ``1/(1-p)``; the identity in eval mode.
  ``schedule=linear`` (DARTS' drop-path) makes the trainer raise the rate linearly from 0 to ``p``.
- ``channel_slice(start, stop)``: channels ``start..stop-1`` of the input (PC-DARTS' sampled part).
- ``channel_shuffle(groups)``: ShuffleNet's channel shuffle: ``C`` channels seen as ``groups x C/groups``,
  transposed to ``C/groups x groups`` (PC-DARTS mixes the sampled channels into the others with it).
- ``edge_sum(group, first)``: PC-DARTS' edge normalisation: ``sum_j softmax(beta)_j * x_j`` over the
  inputs, ``beta`` = rows ``first..first+n-1`` of the group's edge parameters (``{group}_beta``:
  one per row of the group's mixed ops), shared by every edge_sum of the group reading those rows.
- conv and pool ``kernel``, ``stride`` and ``padding`` take ``k`` or rectangular ``KxL``
  (height x width); pools also take ``ceil_mode`` (torch's rounding up of the output size).

Op traits (``x`` = true; field docs in ``ir/traits.py``; every class gives every field):

  kind              channels width    act pw sign        end vend start join merge homog scale     overw inpl
  ----------------- -------- -------- --- -- ----------- --- ---- ----- ---- ----- ----- --------- ----- ----
  input             fixed    .        .   .  any         .   .    .     .    .     .     .         .     .
  conv              layer    channels .   .  any         .   .    x     .    .     .     w+b       x     .
  sep_conv          layer    channels .   .  any         .   .    x     .    .     .     po.w+po.b x     .
  bn                pass     .        .   x  any         .   .    .     .    .     .     w+b       x     .
  relu              pass     .        x   x  nonnegative x   x    .     .    x     x     .         .     x
  sigmoid           pass     .        x   x  nonnegative x   x    .     .    .     .     .         .     .
  tanh              pass     .        x   x  any         x   x    .     .    .     .     .         .     .
  swish             pass     .        x   x  any         x   x    .     .    .     .     .         .     .
  gelu              pass     .        x   x  any         x   x    .     .    .     .     .         .     .
  identity          pass     .        .   x  keeps       .   .    .     .    .     x     .         .     .
  maxpool           pass     .        .   .  keeps       x   x    .     .    x     x     .         .     .
  avgpool           pass     .        .   .  keeps       x   x    .     .    .     x     .         .     .
  gap               pass     .        .   .  keeps       .   x    .     .    .     x     .         .     .
  flatten           derived  .        .   .  keeps       .   x    .     .    .     x     .         .     .
  linear            layer    features .   .  any         .   .    x     .    .     .     w+b       x     .
  dropout           pass     .        .   x  keeps       .   x    .     .    .     x     .         .     .
  zero              pass     .        .   .  nonnegative .   .    .     .    .     x     .         .     .
  factorized_reduce reader   .        .   .  any         .   .    .     .    .     .     bn.w+bn.b x     .
  add               addlike  .        .   .  keeps       x   x    .     x    .     x     .         x     x
  concat            derived  .        .   .  keeps       x   x    .     x    .     x     .         .     .
  convex            addlike  .        .   .  unit_mix    x   x    .     x    .     x     .         .     .
  weighted_sum      addlike  .        .   .  unit_mix    x   x    .     x    .     x     .         .     .
  mixed             addlike  .        .   .  keeps       .   .    .     .    .     x     .         .     .
  aux               fixed    .        .   .  keeps       .   .    .     .    .     x     .         .     .
  relu6             pass     .        x   x  nonnegative x   x    .     .    .     .     .         .     .
  hardswish         pass     .        x   x  any         x   x    .     .    .     .     .         .     .
  hardsigmoid       pass     .        x   x  nonnegative x   x    .     .    .     .     .         .     .
  leaky_relu        pass     .        x   x  any         x   x    .     .    .     x     .         .     .
  mul               addlike  .        .   .  keeps       .   .    .     .    .     .     .         .     .
  adaptive_avgpool  pass     .        .   .  keeps       .   .    .     .    .     x     .         .     .
  stochastic_depth  pass     .        .   x  keeps       .   x    .     .    .     x     .         .     .
  channel_slice     fixed    .        .   .  keeps       .   .    .     .    .     x     .         .     .
  channel_shuffle   fixed    .        .   .  keeps       .   .    .     .    .     x     .         .     .
  edge_sum          addlike  .        .   .  keeps       .   .    .     .    .     x     .         .     .

``channels``: role on the channel axis (``ir/rewrites/_channels.py``); a depthwise conv is
``pass`` and another grouped conv ``fixed``. ``width``: field holding a layer's output width.
``act``: an activation (ends ``layer [bn] act`` blocks; identity is none). ``pw``: output
element i depends on input element i only. ``sign``: the non-negativity proof of deepen and
sepconv. ``end``/``vend``: a block end on images / on vectors (where blocks go and skips start
and land). ``start``: starts a block. ``join``: a merge of branches whose input a skip-cut may
remove. ``merge``: merge-convex / merge-concat may merge it (paper 001: ReLU, max-pooling).
``homog``: ``f(a*x) = a*f(x)`` for ``a > 0``. ``scale``: tensors that scale the output (split).
``overw``/``inpl``: in-place lowering: an ``inpl`` op overwrites its first input when that
comes from an ``overw`` op and nothing else reads it. The per-channel tensor layouts
(``traits.layout``) are given next to the classes that have tensors.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationInfo, field_validator

from .traits import (
    DEPTHWISE_LAYOUT,
    LAYER_LAYOUT,
    NO_TENSORS,
    ChannelRole,
    Layout,
    Traits,
    activation_traits,
    layout,
)

Shape = tuple[int, ...]


class ShapeMismatch(ValueError):
    """An op cannot take these input shapes; carries a hint for the user."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def _fmt(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def _need_image(kind: str, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeMismatch(
            f"{kind} needs an image input (C x H x W) but gets a vector of {_fmt(shape)}",
            "put it before gap/flatten, or use linear for vectors",
        )
    return shape  # type: ignore[return-value]


def _need_vector(kind: str, shape: Shape) -> int:
    if len(shape) != 1:
        raise ShapeMismatch(
            f"{kind} needs a vector input but gets an image of {_fmt(shape)}",
            "insert gap or flatten before it",
        )
    return shape[0]


def _conv_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


class OpBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: (min, max) number of inputs; max None = unbounded.
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    #: fields the printer writes positionally, in this order (the rest as keywords).
    positional: ClassVar[tuple[str, ...]] = ()
    #: is this op a merge of several values (printed as a call on names).
    is_merge: ClassVar[bool] = False
    #: what rewrites and lowering need to know about this kind (``ir/traits.py``); every
    #: concrete op class declares its own, with every field given.
    traits: ClassVar[Traits]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: object) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # an op kind (a class with a `kind` field) must state its traits itself, not inherit them
        if "kind" in cls.model_fields and "traits" not in vars(cls):
            raise TypeError(f"op class {cls.__name__} must declare traits = Traits(...) (see ir/traits.py)")

    def channel_role(self, ins: list[Shape]) -> ChannelRole:
        """This node's relation to its input channels (``traits.channels`` unless refined)."""
        return self.traits.channels

    def channel_layout(self, ins: list[Shape]) -> Layout:
        """Where this node's tensors keep their channels (``traits.layout`` unless refined)."""
        return self.traits.layout

    def resized(self, width: int) -> OpBase:
        """This op with ``width`` output channels (for ``layer`` ops, and depthwise convs)."""
        field = self.traits.width_field
        if field is None:
            raise TypeError(f"{self.kind} has no output width to resize")  # type: ignore[attr-defined]
        return self.model_copy(update={field: width})

    def out_shape(self, ins: list[Shape]) -> Shape:
        return ins[0]

    def param_shapes(self, ins: list[Shape]) -> dict[str, Shape]:
        return {}

    def buffer_shapes(self, ins: list[Shape]) -> dict[str, Shape]:
        return {}

    def macs(self, ins: list[Shape], out: Shape) -> int:
        return 0

    def arguments(self) -> dict[str, object]:
        """Fields that differ from their defaults, in declaration order (for the printer)."""
        out: dict[str, object] = {}
        for name, field in type(self).model_fields.items():
            if name == "kind":
                continue
            value = getattr(self, name)
            if name in self.positional or value != field.default:
                out[name] = value
        return out


#: a square setting (one int) or a rectangular one, ``(height, width)``
Pair = int | tuple[int, int]


def _hw(v: Pair) -> tuple[int, int]:
    """``(height, width)`` of a square or rectangular setting."""
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _square_or_pair(v: object, *, minimum: int) -> object:
    """Check a kernel/stride/padding before pydantic does; ``(k, k)`` becomes ``k`` (one
    canonical form). Values of other types pass through for pydantic to reject."""

    def integer(d: object) -> bool:  # ints and numpy integers, not booleans
        return not isinstance(d, bool) and hasattr(d, "__index__")

    if isinstance(v, list | tuple):
        if len(v) != 2:
            raise ValueError("give one number or two (height x width), e.g. 3 or 7x1")
        if not all(integer(d) for d in v):
            return v
        h, w = (int(d.__index__()) for d in v)  # type: ignore[attr-defined]
    elif integer(v):
        h = w = int(v.__index__())  # type: ignore[attr-defined]
    else:
        return v
    if min(h, w) < minimum:
        raise ValueError("must be a positive integer" if minimum else "must not be negative")
    return h if h == w else (h, w)


def _positive_pair(v: object) -> object:
    return _square_or_pair(v, minimum=1)


def _non_negative_pair(v: object) -> object:
    return _square_or_pair(v, minimum=0)


def _fmt_pair(v: Pair) -> str:
    h, w = _hw(v)
    return str(h) if h == w else f"{h}x{w}"


def _positive(v: int) -> int:
    if v < 1:
        raise ValueError("must be a positive integer")
    return v


def _positive_or_none(v: int | None) -> int | None:
    if v is not None and v < 1:
        raise ValueError("must be a positive integer")
    return v


def _non_negative_or_none(v: int | None) -> int | None:
    if v is not None and v < 0:
        raise ValueError("must not be negative")
    return v


class Input(OpBase):
    kind: Literal["input"] = "input"
    traits: ClassVar[Traits] = Traits(
        channels="fixed", width_field=None, layout=NO_TENSORS, activation=False, pointwise=False,
        sign="any", ends_block=False, ends_vector_block=False, starts_block=False, joins_branches=False,
        mergeable=False, homogeneous=False, output_scale=(), overwritable=False, inplace=False,
    )  # fmt: skip
    shape: tuple[int, ...]
    arity: ClassVar[tuple[int, int | None]] = (0, 0)
    positional: ClassVar[tuple[str, ...]] = ("shape",)

    @field_validator("shape")
    @classmethod
    def _check_shape(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if len(v) not in (1, 3) or any(d < 1 for d in v):
            raise ValueError("input shape must be C x H x W or a feature count, all positive")
        return v

    def out_shape(self, ins: list[Shape]) -> Shape:
        return self.shape


class Conv(OpBase):
    kind: Literal["conv"] = "conv"
    traits: ClassVar[Traits] = Traits(
        channels="layer", width_field="channels", layout=LAYER_LAYOUT, activation=False, pointwise=False,
        sign="any", ends_block=False, ends_vector_block=False, starts_block=True, joins_branches=False,
        mergeable=False, homogeneous=False, output_scale=("weight", "bias"), overwritable=True,
        inplace=False,
    )  # fmt: skip
    channels: int
    #: ``k`` or rectangular ``(kh, kw)`` (genome text ``7x1``); stride and padding likewise
    kernel: Pair = 3
    stride: Pair = 1
    padding: Pair | None = None
    dilation: int = 1
    groups: int = 1
    bias: bool = True
    positional: ClassVar[tuple[str, ...]] = ("channels", "kernel")

    _pos = field_validator("channels", "dilation", "groups")(_positive)
    _pairs = field_validator("kernel", "stride", mode="before")(_positive_pair)
    _pad = field_validator("padding", mode="before")(_non_negative_pair)

    @property
    def pad(self) -> Pair:
        """Padding per side: ``padding``, or ``dilation*(k-1)//2`` per dimension when it is None."""
        if self.padding is not None:
            return self.padding
        kh, kw = _hw(self.kernel)
        ph, pw = self.dilation * (kh - 1) // 2, self.dilation * (kw - 1) // 2
        return ph if ph == pw else (ph, pw)

    def out_shape(self, ins: list[Shape]) -> Shape:
        c, h, w = _need_image(self.kind, ins[0])
        if c % self.groups or self.channels % self.groups:
            raise ShapeMismatch(
                f"conv groups={self.groups} must divide both input channels {c} and output channels {self.channels}"
            )
        (kh, kw), (sh, sw), (ph, pw) = _hw(self.kernel), _hw(self.stride), _hw(self.pad)
        oh = _conv_size(h, kh, sh, ph, self.dilation)
        ow = _conv_size(w, kw, sw, pw, self.dilation)
        if oh < 1 or ow < 1:
            raise ShapeMismatch(
                f"conv kernel {_fmt_pair(self.kernel)} (dilation {self.dilation}) does not fit the {h}x{w} input",
                "use a smaller kernel, more padding, or fewer downsampling steps before it",
            )
        return (self.channels, oh, ow)

    def param_shapes(self, ins: list[Shape]) -> dict[str, Shape]:
        c = ins[0][0]
        shapes: dict[str, Shape] = {"weight": (self.channels, c // self.groups, *_hw(self.kernel))}
        if self.bias:
            shapes["bias"] = (self.channels,)
        return shapes

    def macs(self, ins: list[Shape], out: Shape) -> int:
        return math.prod(out) * (ins[0][0] // self.groups) * math.prod(_hw(self.kernel))

    def is_depthwise(self, ins: list[Shape]) -> bool:
        """One filter per channel (``groups`` = input = output channels): channels pass through."""
        return self.groups > 1 and self.groups == self.channels == ins[0][0]

    def channel_role(self, ins: list[Shape]) -> ChannelRole:
        # a depthwise conv follows its input's channels like batch norm; other groupings are fixed
        if self.groups == 1:
            return "layer"
        return "pass" if self.is_depthwise(ins) else "fixed"

    def channel_layout(self, ins: list[Shape]) -> Layout:
        return DEPTHWISE_LAYOUT if self.is_depthwise(ins) else LAYER_LAYOUT

    def resized(self, width: int) -> Conv:
        # a depthwise conv keeps one group per channel
        return self.model_copy(
            update={"channels": width, "groups": width} if self.groups > 1 else {"channels": width}
        )


#: depthwise filters follow the input channels; pointwise is a 1x1 layer
_SEP_CONV_LAYOUT = layout(
    **{
        "depthwise.weight": (("in", 0, "init"),),
        "pointwise.weight": (("out", 0, "init"), ("in", 1, "mix")),
        "pointwise.bias": (("out", 0, "init"),),
    }
)


class SepConv(OpBase):
    kind: Literal["sep_conv"] = "sep_conv"
    traits: ClassVar[Traits] = Traits(
        channels="layer", width_field="channels", layout=_SEP_CONV_LAYOUT, activation=False,
        pointwise=False, sign="any", ends_block=False, ends_vector_block=False, starts_block=True,
        joins_branches=False, mergeable=False, homogeneous=False,
        output_scale=("pointwise.weight", "pointwise.bias"), overwritable=True, inplace=False,
    )  # fmt: skip
    channels: int
    kernel: int = 3
    stride: int = 1
    padding: int | None = None
    dilation: int = 1
    bias: bool = True
    positional: ClassVar[tuple[str, ...]] = ("channels", "kernel")

    _pos = field_validator("channels", "kernel", "stride", "dilation")(_positive)
    _pad = field_validator("padding")(_non_negative_or_none)

    @property
    def pad(self) -> int:
        return self.dilation * (self.kernel - 1) // 2 if self.padding is None else self.padding

    def out_shape(self, ins: list[Shape]) -> Shape:
        _, h, w = _need_image(self.kind, ins[0])
        oh = _conv_size(h, self.kernel, self.stride, self.pad, self.dilation)
        ow = _conv_size(w, self.kernel, self.stride, self.pad, self.dilation)
        if oh < 1 or ow < 1:
            raise ShapeMismatch(f"sep_conv kernel {self.kernel} does not fit the {h}x{w} input")
        return (self.channels, oh, ow)

    def param_shapes(self, ins: list[Shape]) -> dict[str, Shape]:
        c = ins[0][0]
        shapes: dict[str, Shape] = {
            "depthwise.weight": (c, 1, self.kernel, self.kernel),
            "pointwise.weight": (self.channels, c, 1, 1),
        }
        if self.bias:
            shapes["pointwise.bias"] = (self.channels,)
        return shapes

    def macs(self, ins: list[Shape], out: Shape) -> int:
        c = ins[0][0]
        spatial = out[1] * out[2]
        return spatial * c * self.kernel * self.kernel + spatial * c * self.channels


#: a new channel's batch norm starts as torch's does: weight 1, bias 0, mean 0, variance 1
_BN_LAYOUT = layout(
    weight=(("out", 0, "one"),),
    bias=(("out", 0, "zero"),),
    running_mean=(("out", 0, "zero"),),
    running_var=(("out", 0, "one"),),
)


class BatchNorm(OpBase):
    kind: Literal["bn"] = "bn"
    traits: ClassVar[Traits] = Traits(
        channels="pass", width_field=None, layout=_BN_LAYOUT, activation=False, pointwise=True, sign="any",
        ends_block=False, ends_vector_block=False, starts_block=False, joins_branches=False,
        mergeable=False, homogeneous=False, output_scale=("weight", "bias"), overwritable=True,
        inplace=False,
    )  # fmt: skip
    affine: bool = True
    eps: float = 1e-5
    momentum: float = 0.1

    def out_shape(self, ins: list[Shape]) -> Shape:
        return ins[0]

    def param_shapes(self, ins: list[Shape]) -> dict[str, Shape]:
        c = ins[0][0]
        return {"weight": (c,), "bias": (c,)} if self.affine else {}

    def buffer_shapes(self, ins: list[Shape]) -> dict[str, Shape]:
        c = ins[0][0]
        return {"running_mean": (c,), "running_var": (c,), "num_batches_tracked": ()}


class Relu(OpBase):
    kind: Literal["relu"] = "relu"
    traits: ClassVar[Traits] = activation_traits(
        sign="nonnegative", homogeneous=True, mergeable=True, inplace=True
    )


class Sigmoid(OpBase):
    kind: Literal["sigmoid"] = "sigmoid"
    traits: ClassVar[Traits] = activation_traits(
        sign="nonnegative", homogeneous=False, mergeable=False, inplace=False
    )


class Tanh(OpBase):
    kind: Literal["tanh"] = "tanh"
    traits: ClassVar[Traits] = activation_traits(
        sign="any", homogeneous=False, mergeable=False, inplace=False
    )


class Swish(OpBase):
    kind: Literal["swish"] = "swish"
    traits: ClassVar[Traits] = activation_traits(
        sign="any", homogeneous=False, mergeable=False, inplace=False
    )


class Gelu(OpBase):
    kind: Literal["gelu"] = "gelu"
    traits: ClassVar[Traits] = activation_traits(
        sign="any", homogeneous=False, mergeable=False, inplace=False
    )


class Identity(OpBase):
    kind: Literal["identity"] = "identity"
    traits: ClassVar[Traits] = Traits(
        channels="pass", width_field=None, layout=NO_TENSORS, activation=False, pointwise=True,
        sign="keeps", ends_block=False, ends_vector_block=False, starts_block=False, joins_branches=False,
        mergeable=False, homogeneous=True, output_scale=(), overwritable=False, inplace=False,
    )  # fmt: skip


def _pool_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """torch's pooling output size; with ``ceil_mode`` the last window may hang over the edge,
    but must start inside the input or its left padding."""
    if not ceil_mode:
        return _conv_size(size, kernel, stride, padding, 1)
    out = -(-(size + 2 * padding - kernel) // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


class _Pool(OpBase):
    #: ``k`` or rectangular ``(kh, kw)``; stride and padding likewise
    kernel: Pair = 2
    stride: Pair | None = None
    padding: Pair = 0
    #: round the output size up, as torch's ``ceil_mode`` (SqueezeNet's pools)
    ceil_mode: bool = False
    positional: ClassVar[tuple[str, ...]] = ("kernel",)

    _pos = field_validator("kernel", "stride", mode="before")(_positive_pair)
    _pad = field_validator("padding", mode="before")(_non_negative_pair)

    @property
    def step(self) -> Pair:
        return self.kernel if self.stride is None else self.stride

    def out_shape(self, ins: list[Shape]) -> Shape:
        c, h, w = _need_image(self.kind, ins[0])
        (kh, kw), (sh, sw), (ph, pw) = _hw(self.kernel), _hw(self.step), _hw(self.padding)
        if ph * 2 > kh or pw * 2 > kw:
            raise ShapeMismatch(
                f"{self.kind} padding {_fmt_pair(self.padding)} must be at most half the kernel {_fmt_pair(self.kernel)}"
            )
        oh = _pool_size(h, kh, sh, ph, self.ceil_mode)
        ow = _pool_size(w, kw, sw, pw, self.ceil_mode)
        if oh < 1 or ow < 1:
            raise ShapeMismatch(
                f"{self.kind} kernel {_fmt_pair(self.kernel)} does not fit the {h}x{w} input",
                "remove a downsampling step before it or use a smaller kernel",
            )
        return (c, oh, ow)


class MaxPool(_Pool):
    kind: Literal["maxpool"] = "maxpool"
    traits: ClassVar[Traits] = Traits(
        channels="pass", width_field=None, layout=NO_TENSORS, activation=False, pointwise=False,
        sign="keeps", ends_block=True, ends_vector_block=True, starts_block=False, joins_branches=False,
        mergeable=True, homogeneous=True, output_scale=(), overwritable=False, inplace=False,
    )  # fmt: skip


class AvgPool(_Pool):
    kind: Literal["avgpool"] = "avgpool"
    traits: ClassVar[Traits] = Traits(
        channels="pass", width_field=None, layout=NO_TENSORS, activation=False, pointwise=False,
        sign="keeps", ends_block=True, ends_vector_block=True, starts_block=False, joins_branches=False,
        mergeable=False, homogeneous=True, output_scale=(), overwritable=False, inplace=False,
    )  # fmt: skip
    count_include_pad: bool = True


class GlobalAvgPool(OpBase):
    kind: Literal["gap"] = "gap"
    traits: ClassVar[Traits] = Traits(
        channels="pass", width_field=None, layout=NO_TENSORS, activation=False, pointwise=False,
        sign="keeps", ends_block=False, ends_vector_block=True, starts_block=False, joins_branches=False,
        mergeable=False, homogeneous=True, output_scale=(), overwritable=False, inplace=False,
    )  # fmt: skip

    def out_shape(self, ins: list[Shape]) -> Shape:
        c, _, _ = _need_image(self.kind, ins[0])
        return (c,)


class Flatten(OpBase):
    kind: Literal["flatten"] = "flatten"
    traits: ClassVar[Traits] = Traits(
        channels="derived", width_field=None, layout=NO_TENSORS, activation=False, pointwise=False,
        sign="keeps", ends_block=False, ends_vector_block=True, starts_block=False, joins_branches=False,
        mergeable=False, homogeneous=True, output_scale=(), overwritable=False, inplace=False,
    )  # fmt: skip

    def out_shape(self, ins: list[Shape]) -> Shape:
        return (math.prod(ins[0]),)


class Linear(OpBase):
    kind: Literal["linear"] = "linear"
    traits: ClassVar[Traits] = Traits(
        channels="layer", width_field="features", layout=LAYER_LAYOUT, activation=False, pointwise=False,
        sign="any", ends_block=False, ends_vector_block=False, starts_block=True, joins_branches=False,
        mergeable=False, homogeneous=False, output_scale=("weight", "bias"), overwritable=True,
        inplace=False,
    )  # fmt: skip
    features: int
    bias: bool = True
    positional: ClassVar[tuple[str, ...]] = ("features",)

    _pos = field_validator("features")(_positive)

    def out_shape(self, ins: list[Shape]) -> Shape:
        _need_vector(self.kind, ins[0])
        return (self.features,)

    def param_shapes(self, ins: list[Shape]) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {"weight": (self.features, ins[0][0])}
        if self.bias:
            shapes["bias"] = (self.features,)
        return shapes

    def macs(self, ins: list[Shape], out: Shape) -> int:
        return ins[0][0] * self.features


class Dropout(OpBase):
    kind: Literal["dropout"] = "dropout"
    traits: ClassVar[Traits] = Traits(
        channels="pass", width_field=None, layout=NO_TENSORS, activation=False, pointwise=True,
        sign="keeps", ends_block=False, ends_vector_block=True, starts_block=False, joins_branches=False,
        mergeable=False, homogeneous=True, output_scale=(), overwritable=False, inplace=False,
    )  # fmt: skip
    p: float = 0.5
    positional: ClassVar[tuple[str, ...]] = ("p",)

    @field_validator("p")
    @classmethod
    def _prob(cls, v: float) -> float:
        if not 0.0 <= v < 1.0:
            raise ValueError("dropout probability must be in [0, 1)")
        return v


class Zero(OpBase):
    kind: Literal["zero"] = "zero"
    traits: ClassVar[Traits] = Traits(
        channels="pass", width_field=None, layout=NO_TENSORS, activation=False, pointwise=False,
        sign="nonnegative", ends_block=False, ends_vector_block=False, starts_block=False,
        joins_branches=False, mergeable=False, homogeneous=True, output_scale=(), overwritable=False,
        inplace=False,
    )  # fmt: skip
    stride: int = 1

    _pos = field_validator("stride")(_positive)

    def out_shape(self, ins: list[Shape]) -> Shape:
        if self.stride == 1:
            return ins[0]
        c, h, w = _need_image(self.kind, ins[0])
        return (c, -(-h // self.stride), -(-w // self.stride))


#: its two convs read the input channels; its output width is its own
_FACTORIZED_REDUCE_LAYOUT = layout(
    **{"conv_1.weight": (("in", 1, "mix"),), "conv_2.weight": (("in", 1, "mix"),)}
)


class FactorizedReduce(OpBase):
    kind: Literal["factorized_reduce"] = "factorized_reduce"
    traits: ClassVar[Traits] = Traits(
        channels="reader", width_field=None, layout=_FACTORIZED_REDUCE_LAYOUT, activation=False,
        pointwise=False, sign="any", ends_block=False, ends_vector_block=False, starts_block=False,
        joins_branches=False, mergeable=False, homogeneous=False, output_scale=("bn.weight", "bn.bias"),
        overwritable=True, inplace=False,
    )  # fmt: skip
    channels: int
    affine: bool = True
    positional: ClassVar[tuple[str, ...]] = ("channels",)

    @field_validator("channels")
    @classmethod
    def _even(cls, v: int) -> int:
        if v < 2 or v % 2:
            raise ValueError("factorized_reduce needs an even number of output channels")
        return v

    def out_shape(self, ins: list[Shape]) -> Shape:
        _, h, w = _need_image(self.kind, ins[0])
        if h % 2 or w % 2 or h < 2:
            raise ShapeMismatch(f"factorized_reduce needs even height and width, got {h}x{w}")
        return (self.channels, h // 2, w // 2)

    def param_shapes(self, ins: list[Shape]) -> dict[str, Shape]:
        c, half = ins[0][0], self.channels // 2
        shapes: dict[str, Shape] = {"conv_1.weight": (half, c, 1, 1), "conv_2.weight": (half, c, 1, 1)}
        if self.affine:
            shapes |= {"bn.weight": (self.channels,), "bn.bias": (self.channels,)}
        return shapes

    def buffer_shapes(self, ins: list[Shape]) -> dict[str, Shape]:
        c = self.channels
        return {"bn.running_mean": (c,), "bn.running_var": (c,), "bn.num_batches_tracked": ()}

    def macs(self, ins: list[Shape], out: Shape) -> int:
        return out[1] * out[2] * ins[0][0] * self.channels


def _same_shapes(kind: str, ins: list[Shape]) -> Shape:
    first = ins[0]
    for i, shape in enumerate(ins[1:], start=1):
        if shape != first:
            what = "channel" if shape[1:] == first[1:] else "shape"
            raise ShapeMismatch(
                f"{kind} inputs must have the same shape: input 0 is {_fmt(first)} but input {i} is {_fmt(shape)} ({what} mismatch)",
                "make both branches end with the same number of channels and the same spatial size",
            )
    return first


class Add(OpBase):
    kind: Literal["add"] = "add"
    traits: ClassVar[Traits] = Traits(
        channels="addlike", width_field=None, layout=NO_TENSORS, activation=False, pointwise=False,
        sign="keeps", ends_block=True, ends_vector_block=True, starts_block=False, joins_branches=True,
        mergeable=False, homogeneous=True, output_scale=(), overwritable=True, inplace=True,
    )  # fmt: skip
    arity: ClassVar[tuple[int, int | None]] = (2, None)
    is_merge: ClassVar[bool] = True

    def out_shape(self, ins: list[Shape]) -> Shape:
        return _same_shapes(self.kind, ins)


class Concat(OpBase):
    kind: Literal["concat"] = "concat"
    traits: ClassVar[Traits] = Traits(
        channels="derived", width_field=None, layout=NO_TENSORS, activation=False, pointwise=False,
        sign="keeps", ends_block=True, ends_vector_block=True, starts_block=False, joins_branches=True,
        mergeable=False, homogeneous=True, output_scale=(), overwritable=False, inplace=False,
    )  # fmt: skip
    downsample: bool = False
    arity: ClassVar[tuple[int, int | None]] = (2, None)
    is_merge: ClassVar[bool] = True

    def pool_factors(self, ins: list[Shape]) -> list[int]:
        """Max-pool factor applied to each input before concatenation (1 = untouched)."""
        if len(ins[0]) == 1:
            if any(len(s) != 1 for s in ins):
                raise ShapeMismatch("concat cannot mix vectors and images")
            return [1] * len(ins)
        if any(len(s) != 3 for s in ins):
            raise ShapeMismatch("concat cannot mix vectors and images")
        target = min(s[1] for s in ins), min(s[2] for s in ins)
        factors = []
        for i, (_, h, w) in enumerate(ins):
            if (h, w) == target:
                factors.append(1)
                continue
            factor = h // target[0]
            if (
                not self.downsample
                or factor not in (2, 4)
                or h != target[0] * factor
                or w != target[1] * factor
            ):
                raise ShapeMismatch(
                    f"concat input {i} is {h}x{w} but the smallest input is {target[0]}x{target[1]} (spatial mismatch)",
                    "use concat(..., downsample=true) when sizes differ by a factor of 2 or 4"
                    if not self.downsample
                    else "downsampling only bridges factors of 2 or 4",
                )
            factors.append(factor)
        return factors

    def out_shape(self, ins: list[Shape]) -> Shape:
        self.pool_factors(ins)
        if len(ins[0]) == 1:
            return (sum(s[0] for s in ins),)
        h = min(s[1] for s in ins)
        w = min(s[2] for s in ins)
        return (sum(s[0] for s in ins), h, w)


class Convex(OpBase):
    kind: Literal["convex"] = "convex"
    traits: ClassVar[Traits] = Traits(
        channels="addlike", width_field=None, layout=NO_TENSORS, activation=False, pointwise=False,
        sign="unit_mix", ends_block=True, ends_vector_block=True, starts_block=False, joins_branches=True,
        mergeable=False, homogeneous=True, output_scale=(), overwritable=False, inplace=False,
    )  # fmt: skip
    init: float = 1.0
    arity: ClassVar[tuple[int, int | None]] = (2, 2)
    is_merge: ClassVar[bool] = True

    def out_shape(self, ins: list[Shape]) -> Shape:
        return _same_shapes(self.kind, ins)

    def param_shapes(self, ins: list[Shape]) -> dict[str, Shape]:
        return {"lam": ()}


class WeightedSum(OpBase):
    kind: Literal["weighted_sum"] = "weighted_sum"
    traits: ClassVar[Traits] = Traits(
        channels="addlike", width_field=None, layout=NO_TENSORS, activation=False, pointwise=False,
        sign="unit_mix", ends_block=True, ends_vector_block=True, starts_block=False, joins_branches=True,
        mergeable=False, homogeneous=True, output_scale=(), overwritable=False, inplace=False,
    )  # fmt: skip
    alpha: float = 0.3
    arity: ClassVar[tuple[int, int | None]] = (2, 2)
    is_merge: ClassVar[bool] = True

    def out_shape(self, ins: list[Shape]) -> Shape:
        return _same_shapes(self.kind, ins)


class Mixed(OpBase):
    kind: Literal["mixed"] = "mixed"
    traits: ClassVar[Traits] = Traits(
        channels="addlike", width_field=None, layout=NO_TENSORS, activation=False, pointwise=False,
        sign="keeps", ends_block=False, ends_vector_block=False, starts_block=False, joins_branches=False,
        mergeable=False, homogeneous=True, output_scale=(), overwritable=False, inplace=False,
    )  # fmt: skip
    group: str = "normal"
    row: int = 0
    labels: tuple[str, ...] = ()
    arity: ClassVar[tuple[int, int | None]] = (1, None)
    is_merge: ClassVar[bool] = True

    def out_shape(self, ins: list[Shape]) -> Shape:
        if self.labels and len(self.labels) != len(ins):
            raise ShapeMismatch(f"mixed has {len(ins)} candidates but {len(self.labels)} labels")
        return _same_shapes(self.kind, ins)


class Aux(OpBase):
    kind: Literal["aux"] = "aux"
    traits: ClassVar[Traits] = Traits(
        channels="fixed", width_field=None, layout=NO_TENSORS, activation=False, pointwise=False,
        sign="keeps", ends_block=False, ends_vector_block=False, starts_block=False, joins_branches=False,
        mergeable=False, homogeneous=True, output_scale=(), overwritable=False, inplace=False,
    )  # fmt: skip
    weight: float = 0.4
    positional: ClassVar[tuple[str, ...]] = ("weight",)


# ---------------------------------------------------------------------------------------------
# Ops that imported networks need (MobileNet, EfficientNet, SqueezeNet, ...).


class Relu6(OpBase):
    kind: Literal["relu6"] = "relu6"
    traits: ClassVar[Traits] = activation_traits(
        sign="nonnegative", homogeneous=False, mergeable=False, inplace=False
    )


class Hardswish(OpBase):
    kind: Literal["hardswish"] = "hardswish"
    traits: ClassVar[Traits] = activation_traits(
        sign="any", homogeneous=False, mergeable=False, inplace=False
    )


class Hardsigmoid(OpBase):
    kind: Literal["hardsigmoid"] = "hardsigmoid"
    traits: ClassVar[Traits] = activation_traits(
        sign="nonnegative", homogeneous=False, mergeable=False, inplace=False
    )


class LeakyRelu(OpBase):
    kind: Literal["leaky_relu"] = "leaky_relu"
    traits: ClassVar[Traits] = activation_traits(sign="any", homogeneous=True, mergeable=False, inplace=False)
    #: slope for negative inputs (torch's ``negative_slope``)
    slope: float = 0.01
    positional: ClassVar[tuple[str, ...]] = ("slope",)


class Mul(OpBase):
    """Elementwise product of two values; a size-1 axis broadcasts (squeeze-excitation's
    ``(C, 1, 1)`` channel scales times the ``(C, H, W)`` map)."""

    kind: Literal["mul"] = "mul"
    traits: ClassVar[Traits] = Traits(
        channels="addlike", width_field=None, layout=NO_TENSORS, activation=False, pointwise=False,
        sign="keeps", ends_block=False, ends_vector_block=False, starts_block=False, joins_branches=False,
        mergeable=False, homogeneous=False, output_scale=(), overwritable=False, inplace=False,
    )  # fmt: skip
    arity: ClassVar[tuple[int, int | None]] = (2, 2)
    is_merge: ClassVar[bool] = True

    def out_shape(self, ins: list[Shape]) -> Shape:
        a, b = ins
        if (
            len(a) != len(b)
            or a[0] != b[0]
            or any(x != y and 1 not in (x, y) for x, y in zip(a, b, strict=True))
        ):
            raise ShapeMismatch(
                f"mul inputs {_fmt(a)} and {_fmt(b)} do not broadcast",
                "multiply equal shapes, or a C x 1 x 1 scale with a C x H x W map",
            )
        return tuple(max(x, y) for x, y in zip(a, b, strict=True))


class AdaptiveAvgPool(OpBase):
    """Average pooling to a fixed output size, as ``nn.AdaptiveAvgPool2d(size)``."""

    kind: Literal["adaptive_avgpool"] = "adaptive_avgpool"
    traits: ClassVar[Traits] = Traits(
        channels="pass", width_field=None, layout=NO_TENSORS, activation=False, pointwise=False,
        sign="keeps", ends_block=False, ends_vector_block=False, starts_block=False, joins_branches=False,
        mergeable=False, homogeneous=True, output_scale=(), overwritable=False, inplace=False,
    )  # fmt: skip
    size: Pair = 1
    positional: ClassVar[tuple[str, ...]] = ("size",)

    _size = field_validator("size", mode="before")(_positive_pair)

    def out_shape(self, ins: list[Shape]) -> Shape:
        c, _, _ = _need_image(self.kind, ins[0])
        return (c, *_hw(self.size))


class StochasticDepth(OpBase):
    """Training only: drop the whole residual branch per sample (``mode=row``) or per batch
    with probability ``p``, scaling kept ones by ``1/(1-p)`` (torchvision's StochasticDepth);
    the identity in eval mode."""

    kind: Literal["stochastic_depth"] = "stochastic_depth"
    traits: ClassVar[Traits] = Traits(
        channels="pass", width_field=None, layout=NO_TENSORS, activation=False, pointwise=True,
        sign="keeps", ends_block=False, ends_vector_block=True, starts_block=False, joins_branches=False,
        mergeable=False, homogeneous=True, output_scale=(), overwritable=False, inplace=False,
    )  # fmt: skip
    p: float = 0.2
    mode: Literal["row", "batch"] = "row"
    schedule: Literal["constant", "linear"] = "constant"
    """``linear``: DARTS' drop-path, the rate rising from 0 in the first epoch to ``p`` (the
    trainer sets the epoch's rate, `search/runtime/drop_path.py`); ``constant``: ``p`` throughout."""
    positional: ClassVar[tuple[str, ...]] = ("p",)

    @field_validator("p")
    @classmethod
    def _prob(cls, v: float) -> float:
        if not 0.0 <= v < 1.0:
            raise ValueError("stochastic depth probability must be in [0, 1)")
        return v


# ---------------------------------------------------------------------------------------------
# Ops of partial-channel supernets (PC-DARTS, ``ir/partial_channels.py``).

#: traits shared by the channel slice and shuffle: they move channels around, so no rewrite may
#: change the channels they read (``fixed``); a slice is a view of its input (not overwritable)
_CHANNEL_MOVE_TRAITS = Traits(
    channels="fixed", width_field=None, layout=NO_TENSORS, activation=False, pointwise=False,
    sign="keeps", ends_block=False, ends_vector_block=False, starts_block=False, joins_branches=False,
    mergeable=False, homogeneous=True, output_scale=(), overwritable=False, inplace=False,
)  # fmt: skip


class ChannelSlice(OpBase):
    """Channels ``start .. stop-1`` of the input (images or vectors): the part of an edge's
    input that PC-DARTS sends through the candidate ops, or the part that bypasses them."""

    kind: Literal["channel_slice"] = "channel_slice"
    traits: ClassVar[Traits] = _CHANNEL_MOVE_TRAITS
    start: int
    stop: int
    positional: ClassVar[tuple[str, ...]] = ("start", "stop")

    @field_validator("start")
    @classmethod
    def _start(cls, v: int) -> int:
        if v < 0:
            raise ValueError("must not be negative")
        return v

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: int, info: ValidationInfo) -> int:
        start = info.data.get("start")
        if start is not None and v <= start:
            raise ValueError(f"must be larger than start ({start}): a slice keeps at least one channel")
        return v

    def out_shape(self, ins: list[Shape]) -> Shape:
        c = ins[0][0]
        if self.stop > c:
            raise ShapeMismatch(
                f"channel_slice({self.start}, {self.stop}) reads past the {c} channels of its input",
                f"slice within 0..{c}",
            )
        return (self.stop - self.start, *ins[0][1:])


class ChannelShuffle(OpBase):
    """ShuffleNet's channel shuffle (``torch.nn.ChannelShuffle``): the ``C`` channels, read as
    ``groups`` blocks of ``C/groups``, are interleaved so that output channel ``i*groups + g`` is
    input channel ``g*C/groups + i``. PC-DARTS shuffles the concatenation of the candidates' and
    the bypassed channels with ``groups = K``."""

    kind: Literal["channel_shuffle"] = "channel_shuffle"
    traits: ClassVar[Traits] = _CHANNEL_MOVE_TRAITS
    groups: int
    positional: ClassVar[tuple[str, ...]] = ("groups",)

    _pos = field_validator("groups")(_positive)

    def out_shape(self, ins: list[Shape]) -> Shape:
        c, _, _ = _need_image(self.kind, ins[0])
        if c % self.groups:
            raise ShapeMismatch(
                f"channel_shuffle({self.groups}) needs channels divisible by {self.groups}, got {c}"
            )
        return ins[0]


class EdgeSum(OpBase):
    """PC-DARTS' edge normalisation: the inputs (a node's incoming edges) summed with the weights
    ``softmax(beta[first : first+n])``, ``beta`` the edge parameters of architecture group
    ``group`` (one per row of its mixed ops, an architecture tensor named `beta_key`)."""

    kind: Literal["edge_sum"] = "edge_sum"
    traits: ClassVar[Traits] = Traits(
        channels="addlike", width_field=None, layout=NO_TENSORS, activation=False, pointwise=False,
        sign="keeps", ends_block=False, ends_vector_block=False, starts_block=False, joins_branches=False,
        mergeable=False, homogeneous=True, output_scale=(), overwritable=False, inplace=False,
    )  # fmt: skip
    group: str = "normal"
    first: int = 0
    """The row of ``beta`` that weights input 0; input ``j`` has row ``first + j``."""
    arity: ClassVar[tuple[int, int | None]] = (2, None)
    is_merge: ClassVar[bool] = True

    _first = field_validator("first")(_non_negative_or_none)

    @property
    def beta_key(self) -> str:
        """Name of the edge parameters among the architecture tensors (``normal_beta``)."""
        return beta_key(self.group)

    def out_shape(self, ins: list[Shape]) -> Shape:
        return _same_shapes(self.kind, ins)


def beta_key(group: str) -> str:
    """The architecture tensor holding group ``group``'s edge parameters (PC-DARTS' β)."""
    return f"{group}_beta"


Op = Annotated[
    Input
    | Conv
    | SepConv
    | BatchNorm
    | Relu
    | Sigmoid
    | Tanh
    | Swish
    | Gelu
    | Identity
    | MaxPool
    | AvgPool
    | GlobalAvgPool
    | Flatten
    | Linear
    | Dropout
    | Zero
    | FactorizedReduce
    | Add
    | Concat
    | Convex
    | WeightedSum
    | Mixed
    | Aux
    | Relu6
    | Hardswish
    | Hardsigmoid
    | LeakyRelu
    | Mul
    | AdaptiveAvgPool
    | StochasticDepth
    | ChannelSlice
    | ChannelShuffle
    | EdgeSum,
    Field(discriminator="kind"),
]

OP_ADAPTER: TypeAdapter[Op] = TypeAdapter(Op)

#: op kind -> model class
OP_CLASSES: dict[str, type[OpBase]] = {
    cls.model_fields["kind"].default: cls
    for cls in (
        Input, Conv, SepConv, BatchNorm, Relu, Sigmoid, Tanh, Swish, Gelu, Identity, MaxPool, AvgPool,
        GlobalAvgPool, Flatten, Linear, Dropout, Zero, FactorizedReduce, Add, Concat, Convex, WeightedSum,
        Mixed, Aux, Relu6, Hardswish, Hardsigmoid, LeakyRelu, Mul, AdaptiveAvgPool, StochasticDepth,
        ChannelSlice, ChannelShuffle, EdgeSum,
    )
}  # fmt: skip

#: kinds that are activations (``traits.activation``): relu, sigmoid, tanh, swish, gelu; not identity
ACTIVATIONS: frozenset[str] = frozenset(kind for kind, cls in OP_CLASSES.items() if cls.traits.activation)


def op_from_dict(data: dict) -> OpBase:
    """Validate a plain dict (``{"kind": "conv", "channels": 16, ...}``) into an op model."""
    return OP_ADAPTER.validate_python(data)

"""What each torch module and function becomes in the IR: one table keyed by type / callable.

A translator gets the fx node (and its module, for ``call_module``) and returns either an
:class:`Emit` (an IR op, as the fields of its model, applied to some of the node's tensor
inputs) or an :class:`Alias` (the node's value *is* one of its inputs: flatten of a vector,
``contiguous``, an identity). It returns ``None`` when the call has settings the IR cannot
express; the importer then names the node and stops.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from ._trace import stochastic_depth_ops


@dataclass(frozen=True)
class Emit:
    """An IR op (the fields of its model, ``kind`` included) on ``inputs`` in port order."""

    op: dict[str, Any]
    inputs: tuple[fx.Node, ...]
    #: why this translation is not exact where torch's call had extra settings (for the log)
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Alias:
    """The call returns (a view of) ``source`` unchanged, as far as the IR is concerned."""

    source: fx.Node


Translation = Emit | Alias | None


def shape(node: fx.Node) -> tuple[int, ...] | None:
    """The node's output shape without the batch dimension; None for non-tensor values."""
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        return None
    return tuple(int(d) for d in meta.shape[1:])


def arg(node: fx.Node, index: int, name: str, default: Any = None) -> Any:
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    a, b = value
    return int(a), int(b)


def _square(value: Any) -> int | tuple[int, int]:
    """An int for square settings, a ``(h, w)`` pair otherwise."""
    a, b = _pair(value)
    return a if a == b else (a, b)


def _single(x: fx.Node) -> tuple[fx.Node, ...]:
    return (x,)


# --------------------------------------------------------------------------- modules
def _conv2d(m: nn.Conv2d, node: fx.Node) -> Translation:
    if m.padding_mode != "zeros":
        return None
    kernel, stride, dilation = _square(m.kernel_size), _square(m.stride), _square(m.dilation)
    if isinstance(m.padding, str):  # "valid" or "same" (stride 1): explicit numbers
        pad: Any = (
            0
            if m.padding == "valid"
            else tuple(d * (k - 1) // 2 for d, k in zip(m.dilation, m.kernel_size, strict=True))
        )
        pad = _square(pad)
    else:
        pad = _square(m.padding)
    op: dict[str, Any] = {"kind": "conv", "channels": m.out_channels, "kernel": kernel, "stride": stride}
    op |= {"padding": pad, "dilation": dilation, "groups": m.groups, "bias": m.bias is not None}
    if isinstance(kernel, int) and isinstance(dilation, int) and pad == dilation * (kernel - 1) // 2:
        op["padding"] = None  # the IR default: "same" for odd kernels
    if isinstance(stride, int) and stride == 1:
        del op["stride"]
    return Emit(op, _single(node.args[0]))  # type: ignore[arg-type]


def _batchnorm(m: nn.modules.batchnorm._BatchNorm, node: fx.Node) -> Translation:
    if not m.track_running_stats or m.momentum is None:
        return None
    return Emit(
        {"kind": "bn", "affine": m.affine, "eps": m.eps, "momentum": m.momentum}, _single(node.args[0])
    )  # type: ignore[arg-type]


def _linear(m: nn.Linear, node: fx.Node) -> Translation:
    return Emit(
        {"kind": "linear", "features": m.out_features, "bias": m.bias is not None}, _single(node.args[0])
    )  # type: ignore[arg-type]


def _pool(
    kind: str, kernel: Any, stride: Any, padding: Any, ceil: bool, x: fx.Node, **extra: Any
) -> Translation:
    k, s, p = _square(kernel), _square(stride if stride not in (None, []) else kernel), _square(padding)
    op: dict[str, Any] = {"kind": kind, "kernel": k, "stride": None if s == k else s, "padding": p}
    if ceil:
        op["ceil_mode"] = True
    return Emit(op | extra, _single(x))


def _maxpool(m: nn.MaxPool2d, node: fx.Node) -> Translation:
    if m.return_indices or _pair(m.dilation) != (1, 1):
        return None
    return _pool("maxpool", m.kernel_size, m.stride, m.padding, m.ceil_mode, node.args[0])  # type: ignore[arg-type]


def _avgpool(m: nn.AvgPool2d, node: fx.Node) -> Translation:
    if m.divisor_override is not None:
        return None
    extra = {} if m.count_include_pad else {"count_include_pad": False}
    return _pool("avgpool", m.kernel_size, m.stride, m.padding, m.ceil_mode, node.args[0], **extra)  # type: ignore[arg-type]


def adaptive_pool(node: fx.Node, x: fx.Node, size: Any) -> Translation:
    """``gap`` when the pooled map is only flattened (the usual head), else ``adaptive_avgpool``."""
    if size is None or (isinstance(size, list | tuple) and None in size):
        return None  # None in an output size keeps that input dimension: not expressible
    h, w = _pair(size)
    in_shape = shape(x)
    if in_shape is not None and len(in_shape) == 3 and (h, w) == in_shape[1:]:
        return Alias(x)  # pooling to the size it already has (VGG's 7x7 head at 224x224)
    if (h, w) == (1, 1) and node.users and all(is_flatten(user) for user in node.users):
        return Emit({"kind": "gap"}, (x,))
    return Emit({"kind": "adaptive_avgpool", "size": h if h == w else (h, w)}, (x,))


def _flatten_module(m: nn.Flatten, node: fx.Node) -> Translation:
    if m.start_dim != 1 or m.end_dim != -1:
        return None
    return flatten(node.args[0])  # type: ignore[arg-type]


def flatten(x: fx.Node) -> Translation:
    in_shape = shape(x)
    if in_shape is not None and len(in_shape) == 1:
        return Alias(x)
    return Emit({"kind": "flatten"}, (x,))


def is_flatten(node: fx.Node) -> bool:
    if node.op == "call_function" and node.target is torch.flatten:
        return True
    if node.op == "call_method" and node.target in ("flatten", "view", "reshape"):
        return shape(node) is not None and len(shape(node) or ()) == 1
    if node.op == "call_module":
        owner = node.graph.owning_module
        return owner is not None and isinstance(owner.get_submodule(str(node.target)), nn.Flatten)
    return False


def _unary(kind: str, **fields: Any) -> Callable[[nn.Module, fx.Node], Translation]:
    return lambda m, node: Emit({"kind": kind, **fields}, _single(node.args[0]))  # type: ignore[arg-type]


def _gelu(m: nn.GELU, node: fx.Node) -> Translation:
    return Emit({"kind": "gelu"}, _single(node.args[0])) if m.approximate == "none" else None  # type: ignore[arg-type]


def _stochastic_depth(m: nn.Module, node: fx.Node) -> Translation:
    return Emit({"kind": "stochastic_depth", "p": float(m.p), "mode": m.mode}, _single(node.args[0]))  # type: ignore[attr-defined, arg-type]


def _module_table() -> dict[type[nn.Module], Callable[[Any, fx.Node], Translation]]:
    table: dict[type[nn.Module], Callable[[Any, fx.Node], Translation]] = {
        nn.Conv2d: _conv2d,
        nn.BatchNorm2d: _batchnorm,
        nn.BatchNorm1d: _batchnorm,
        nn.Linear: _linear,
        nn.MaxPool2d: _maxpool,
        nn.AvgPool2d: _avgpool,
        nn.AdaptiveAvgPool2d: lambda m, node: adaptive_pool(node, node.args[0], m.output_size),  # type: ignore[arg-type]
        nn.Flatten: _flatten_module,
        nn.ReLU: _unary("relu"),
        nn.ReLU6: _unary("relu6"),
        nn.Hardswish: _unary("hardswish"),
        nn.Hardsigmoid: _unary("hardsigmoid"),
        nn.LeakyReLU: lambda m, node: Emit(
            {"kind": "leaky_relu", "slope": m.negative_slope}, _single(node.args[0])
        ),  # type: ignore[arg-type]
        nn.SiLU: _unary("swish"),
        nn.Sigmoid: _unary("sigmoid"),
        nn.Tanh: _unary("tanh"),
        nn.GELU: _gelu,
        nn.Dropout: lambda m, node: Emit({"kind": "dropout", "p": float(m.p)}, _single(node.args[0])),  # type: ignore[arg-type]
        nn.Identity: lambda m, node: Alias(node.args[0]),  # type: ignore[arg-type]
    }
    leaf, _ = stochastic_depth_ops()
    if leaf is not None:
        table[leaf] = _stochastic_depth
    return table


MODULE_TABLE = _module_table()


def translate_module(m: nn.Module, node: fx.Node) -> Translation:
    translator = MODULE_TABLE.get(type(m))
    return translator(m, node) if translator is not None else None


# --------------------------------------------------------------------------- functions
def _tensors(values: Any) -> tuple[fx.Node, ...] | None:
    """The nodes of a list of tensor arguments; None if any is not a traced tensor."""
    if not isinstance(values, list | tuple) or not values:
        return None
    if not all(isinstance(v, fx.Node) and shape(v) is not None for v in values):
        return None
    return tuple(values)


def _binary(kind: str) -> Callable[[fx.Node], Translation]:
    def translate(node: fx.Node) -> Translation:
        if node.kwargs.get("alpha", 1) != 1:
            return None
        pair = _tensors(list(node.args[:2]))
        return Emit({"kind": kind}, pair) if pair is not None else None

    return translate


def _cat(node: fx.Node) -> Translation:
    parts = _tensors(arg(node, 0, "tensors"))
    dim = arg(node, 1, "dim", 0)
    rank = len(shape(node) or ()) + 1
    if parts is None or dim % rank != 1:
        return None
    return Emit({"kind": "concat"}, parts) if len(parts) > 1 else Alias(parts[0])


def _fn_flatten(node: fx.Node) -> Translation:
    start = arg(node, 1, "start_dim", 0)
    end = arg(node, 2, "end_dim", -1)
    rank = len(shape(node.args[0]) or ()) + 1  # type: ignore[arg-type]
    return flatten(node.args[0]) if start == 1 and end % rank == rank - 1 else None  # type: ignore[arg-type]


def _reshape(node: fx.Node) -> Translation:
    """``x.view(x.size(0), -1)`` and friends: a flatten when the result is (batch, features)."""
    out = shape(node)
    return flatten(node.args[0]) if out is not None and len(out) == 1 else None  # type: ignore[arg-type]


def _mean(node: fx.Node) -> Translation:
    dims = arg(node, 1, "dim")
    keep = arg(node, 2, "keepdim", False)
    dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
    if sorted(d % 4 for d in dims) != [2, 3]:
        return None
    return Emit({"kind": "adaptive_avgpool", "size": 1} if keep else {"kind": "gap"}, (node.args[0],))  # type: ignore[arg-type]


def _fn_unary(kind: str, inplace_arg: str | None = None, **fields: Any) -> Callable[[fx.Node], Translation]:
    return lambda node: Emit({"kind": kind, **fields}, (node.args[0],))  # type: ignore[arg-type]


def _fn_dropout(node: fx.Node) -> Translation:
    return Emit({"kind": "dropout", "p": float(arg(node, 1, "p", 0.5))}, (node.args[0],))  # type: ignore[arg-type]


def _fn_gelu(node: fx.Node) -> Translation:
    return (
        Emit({"kind": "gelu"}, (node.args[0],)) if node.kwargs.get("approximate", "none") == "none" else None
    )  # type: ignore[arg-type]


def _fn_leaky_relu(node: fx.Node) -> Translation:
    return Emit({"kind": "leaky_relu", "slope": float(arg(node, 1, "negative_slope", 0.01))}, (node.args[0],))  # type: ignore[arg-type]


def _fn_stochastic_depth(node: fx.Node) -> Translation:
    p, mode = arg(node, 1, "p"), arg(node, 2, "mode")
    return Emit({"kind": "stochastic_depth", "p": float(p), "mode": mode}, (node.args[0],))  # type: ignore[arg-type]


def _fn_max_pool(node: fx.Node) -> Translation:
    if arg(node, 4, "dilation", 1) not in (1, (1, 1), [1, 1]) or arg(node, 6, "return_indices", False):
        return None
    k = arg(node, 1, "kernel_size")
    return _pool(
        "maxpool",
        k,
        arg(node, 2, "stride", None),
        arg(node, 3, "padding", 0),
        arg(node, 5, "ceil_mode", False),
        node.args[0],
    )  # type: ignore[arg-type]


def _fn_avg_pool(node: fx.Node) -> Translation:
    if arg(node, 6, "divisor_override") is not None:
        return None
    extra = {} if arg(node, 5, "count_include_pad", True) else {"count_include_pad": False}
    k = arg(node, 1, "kernel_size")
    return _pool(
        "avgpool",
        k,
        arg(node, 2, "stride", None),
        arg(node, 3, "padding", 0),
        arg(node, 4, "ceil_mode", False),
        node.args[0],
        **extra,
    )  # type: ignore[arg-type]


def _function_table() -> dict[object, Callable[[fx.Node], Translation]]:
    table: dict[object, Callable[[fx.Node], Translation]] = {
        operator.add: _binary("add"),
        operator.iadd: _binary("add"),
        torch.add: _binary("add"),
        operator.mul: _binary("mul"),
        operator.imul: _binary("mul"),
        torch.mul: _binary("mul"),
        torch.cat: _cat,
        torch.concat: _cat,
        torch.flatten: _fn_flatten,
        torch.mean: _mean,
        F.relu: _fn_unary("relu"),
        torch.relu: _fn_unary("relu"),
        F.relu6: _fn_unary("relu6"),
        F.hardswish: _fn_unary("hardswish"),
        F.hardsigmoid: _fn_unary("hardsigmoid"),
        F.leaky_relu: _fn_leaky_relu,
        torch.sigmoid: _fn_unary("sigmoid"),
        F.sigmoid: _fn_unary("sigmoid"),
        F.silu: _fn_unary("swish"),
        torch.tanh: _fn_unary("tanh"),
        F.gelu: _fn_gelu,
        F.dropout: _fn_dropout,
        F.adaptive_avg_pool2d: lambda node: adaptive_pool(node, node.args[0], arg(node, 1, "output_size")),  # type: ignore[arg-type]
        F.max_pool2d: _fn_max_pool,
        F.avg_pool2d: _fn_avg_pool,
        torch.max_pool2d: _fn_max_pool,
    }
    _, function = stochastic_depth_ops()
    if function is not None:
        table[function] = _fn_stochastic_depth
    return table


FUNCTION_TABLE = _function_table()

#: tensor methods (``x.relu()``, ``x.view(n, -1)``) by name
METHOD_TABLE: dict[str, Callable[[fx.Node], Translation]] = {
    "add": _binary("add"),
    "add_": _binary("add"),
    "mul": _binary("mul"),
    "mul_": _binary("mul"),
    "flatten": _fn_flatten,
    "view": _reshape,
    "reshape": _reshape,
    "mean": _mean,
    "relu": _fn_unary("relu"),
    "relu_": _fn_unary("relu"),
    "sigmoid": _fn_unary("sigmoid"),
    "tanh": _fn_unary("tanh"),
    "contiguous": lambda node: Alias(node.args[0]),  # type: ignore[arg-type]
}


def translate_call(node: fx.Node) -> Translation:
    if node.op == "call_method":
        translator = METHOD_TABLE.get(str(node.target))
    else:
        translator = FUNCTION_TABLE.get(node.target)
    return translator(node) if translator is not None else None


def describe_target(node: fx.Node) -> str:
    """``torch.nn.functional.relu6``, ``Tensor.permute``: the callable as a user would write it."""
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    target = node.target
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__qualname__", getattr(target, "__name__", str(target)))
    if module == "_operator":
        module = "operator"
    return f"{module}.{name}" if module else name

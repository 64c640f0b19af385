"""IR -> one standalone Python file: an ``nn.Module`` with one line per op, importing only torch.

``__init__`` builds one submodule per parameterised node, ``forward`` computes one value per
node, both named after the genome (the node's name, else ``n{id}`` / ``x{id}``). The few
helpers a genome can need beyond torch (``SepConv``, ``FactorizedReduce``, ``mixed``, ...)
are copied into the file from ``genomorph.lower`` with ``inspect.getsource``: the file runs
where genomorph is not installed, and the helpers are the very code the lowering runs.

ReLUs and adds run in place exactly where ``lower`` makes them run in place, so the exported
module trains as fast as the lowered one.
"""

from __future__ import annotations

import inspect
import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import OpBase, Shape
from genomorph.ir.stats import arch_param_shapes
from genomorph.lower import functional, modules
from genomorph.lower.lower import _inplace_nodes

HEADER = '''"""{title}

Exported by genomorph from {source}. Needs only torch. Load the weights beside it with
``model.load_state_dict(torch.load("{weights}", weights_only=True))``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
'''


@dataclass
class _Writer:
    graph: Graph
    shapes: dict[NodeId, list[Shape]]
    inplace: set[NodeId]
    init: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    helpers: dict[str, str] = field(default_factory=dict)
    #: IR node id -> attribute (submodule) name
    attrs: dict[NodeId, str] = field(default_factory=dict)
    #: IR node id -> local variable holding its value
    values: dict[NodeId, str] = field(default_factory=dict)

    def helper(self, obj: Callable[..., Any] | type) -> str:
        if obj.__name__ not in self.helpers:
            self.helpers[obj.__name__] = inspect.getsource(obj)
        return obj.__name__

    def module(self, nid: NodeId, expression: str) -> str:
        self.init.append(f"self.{self.attrs[nid]} = {expression}")
        return f"self.{self.attrs[nid]}"


def _identifier(name: str) -> str:
    name = re.sub(r"\W", "_", name)
    return f"{name}_" if keyword.iskeyword(name) or name in {"self", "x", "torch", "F", "nn"} else name


def _args(*positional: object, **keywords: object) -> str:
    parts = [repr(v) for v in positional] + [f"{k}={v!r}" for k, v in keywords.items()]
    return ", ".join(parts)


def _pool_args(op: Any) -> str:
    extra = {"ceil_mode": True} if getattr(op, "ceil_mode", False) else {}
    return _args(op.kernel, op.step, op.padding, **extra)


Emitter = Callable[[_Writer, NodeId, Any, list[str]], str]


def _conv(w: _Writer, nid: NodeId, op: Any, xs: list[str]) -> str:
    c_in = w.shapes[nid][0][0]
    kw: dict[str, object] = {"stride": op.stride} if op.stride != 1 else {}
    kw["padding"] = op.pad
    if op.dilation != 1:
        kw["dilation"] = op.dilation
    if op.groups != 1:
        kw["groups"] = op.groups
    if not op.bias:
        kw["bias"] = False
    return f"{w.module(nid, f'nn.Conv2d({_args(c_in, op.channels, op.kernel, **kw)})')}({xs[0]})"


def _bn(w: _Writer, nid: NodeId, op: Any, xs: list[str]) -> str:
    shape = w.shapes[nid][0]
    cls = "BatchNorm2d" if len(shape) == 3 else "BatchNorm1d"
    kw: dict[str, object] = {}
    if op.eps != 1e-5:
        kw["eps"] = op.eps
    if op.momentum != 0.1:
        kw["momentum"] = op.momentum
    if not op.affine:
        kw["affine"] = False
    return f"{w.module(nid, f'nn.{cls}({_args(shape[0], **kw)})')}({xs[0]})"


def _sep_conv(w: _Writer, nid: NodeId, op: Any, xs: list[str]) -> str:
    cls = w.helper(modules.SepConv)
    args = _args(w.shapes[nid][0][0], op.channels, op.kernel, op.stride, op.pad, op.dilation, op.bias)
    return f"{w.module(nid, f'{cls}({args})')}({xs[0]})"


def _factorized_reduce(w: _Writer, nid: NodeId, op: Any, xs: list[str]) -> str:
    cls = w.helper(modules.FactorizedReduce)
    return f"{w.module(nid, f'{cls}({_args(w.shapes[nid][0][0], op.channels, op.affine)})')}({xs[0]})"


def _convex(w: _Writer, nid: NodeId, op: Any, xs: list[str]) -> str:
    return f"{w.module(nid, f'{w.helper(modules.Convex)}({op.init!r})')}({xs[0]}, {xs[1]})"


def _linear(w: _Writer, nid: NodeId, op: Any, xs: list[str]) -> str:
    kw = {} if op.bias else {"bias": False}
    return f"{w.module(nid, f'nn.Linear({_args(w.shapes[nid][0][0], op.features, **kw)})')}({xs[0]})"


def _dropout(w: _Writer, nid: NodeId, op: Any, xs: list[str]) -> str:
    return f"{w.module(nid, f'nn.Dropout({op.p!r})')}({xs[0]})"


def _stochastic_depth(w: _Writer, nid: NodeId, op: Any, xs: list[str]) -> str:
    schedule = f", {op.schedule!r}" if op.schedule != "constant" else ""
    helper = w.helper(modules.StochasticDepth)
    return f"{w.module(nid, f'{helper}({op.p!r}, {op.mode!r}{schedule})')}({xs[0]})"


def _relu(w: _Writer, nid: NodeId, op: Any, xs: list[str]) -> str:
    return f"torch.relu_({xs[0]})" if nid in w.inplace else f"torch.relu({xs[0]})"


def _add(w: _Writer, nid: NodeId, op: Any, xs: list[str]) -> str:
    if nid in w.inplace:
        return xs[0] + "".join(f".add_({x})" for x in xs[1:])
    return " + ".join(xs)


def _concat(w: _Writer, nid: NodeId, op: Any, xs: list[str]) -> str:
    parts = [
        x if f == 1 else f"F.max_pool2d({x}, {f}, {f})"
        for x, f in zip(xs, op.pool_factors(w.shapes[nid]), strict=True)
    ]
    return f"torch.cat([{', '.join(parts)}], 1)"


def _mixed(w: _Writer, nid: NodeId, op: Any, xs: list[str]) -> str:
    return f"{w.helper(functional.mixed)}(alphas_{op.group}, {op.row}, {', '.join(xs)})"


def _call(template: str) -> Emitter:
    return lambda w, nid, op, xs: template.format(*xs, op=op)


def _helper_call(fn: Callable[..., Any], *fields: str) -> Emitter:
    def emit(w: _Writer, nid: NodeId, op: Any, xs: list[str]) -> str:
        extra = "".join(f", {getattr(op, f)!r}" for f in fields)
        return f"{w.helper(fn)}({', '.join(xs)}{extra})"

    return emit


EMITTERS: dict[str, Emitter] = {
    "conv": _conv,
    "sep_conv": _sep_conv,
    "bn": _bn,
    "linear": _linear,
    "dropout": _dropout,
    "factorized_reduce": _factorized_reduce,
    "convex": _convex,
    "relu": _relu,
    "sigmoid": _call("torch.sigmoid({0})"),
    "tanh": _call("torch.tanh({0})"),
    "swish": _call("F.silu({0})"),
    "gelu": _call("F.gelu({0})"),
    "maxpool": lambda w, nid, op, xs: f"F.max_pool2d({xs[0]}, {_pool_args(op)})",
    "avgpool": lambda w, nid, op, xs: (
        f"F.avg_pool2d({xs[0]}, {_pool_args(op)}"
        + (", count_include_pad=False)" if not op.count_include_pad else ")")
    ),
    "gap": _call("{0}.mean((2, 3))"),
    "flatten": _call("torch.flatten({0}, 1)"),
    "zero": _helper_call(functional.zero, "stride"),
    "add": _add,
    "concat": _concat,
    "weighted_sum": _helper_call(functional.weighted_sum, "alpha"),
    "mixed": _mixed,
    "relu6": _call("F.relu6({0})"),
    "hardswish": _call("F.hardswish({0})"),
    "hardsigmoid": _call("F.hardsigmoid({0})"),
    "leaky_relu": _call("F.leaky_relu({0}, {op.slope!r})"),
    "mul": _call("{0} * {1}"),
    "adaptive_avgpool": _call("F.adaptive_avg_pool2d({0}, {op.size!r})"),
    "stochastic_depth": _stochastic_depth,
    "channel_slice": _call("{0}[:, {op.start}:{op.stop}]"),
    "channel_shuffle": _helper_call(functional.channel_shuffle, "groups"),
    "edge_sum": lambda w, nid, op, xs: (
        f"{w.helper(functional.edge_sum)}(alphas_{op.beta_key}, {op.first}, {', '.join(xs)})"
    ),
}


def _names(graph: Graph) -> tuple[dict[NodeId, str], dict[NodeId, str]]:
    """Attribute and variable names: the genome's names where it has them."""
    attrs: dict[NodeId, str] = {}
    values: dict[NodeId, str] = {}
    taken = {_identifier(n.name) for n in graph.nodes() if n.name is not None}
    for node in graph.nodes():
        if node.name is not None:
            attrs[node.id] = values[node.id] = _identifier(node.name)
        else:
            # a genome may name a value `x3` itself: generated names step aside
            attr, value = f"n{node.id}", f"x{node.id}"
            attrs[node.id] = attr if attr not in taken else f"{attr}_"
            values[node.id] = value if value not in taken else f"{value}_"
    return attrs, values


def python_source(
    graph: Graph, class_name: str = "Model", *, source: str = "a genome", weights_file: str = "model.pt"
) -> tuple[str, dict[str, str]]:
    """The file's text and the state_dict key map (lowered module key -> exported key)."""
    order = graph.order()
    inputs = {nid: graph.inputs(nid) for nid in order}
    shapes = graph.shapes()
    writer = _Writer(
        graph, {nid: [shapes[i] for i in ins] for nid, ins in inputs.items()}, _inplace_nodes(graph, inputs)
    )
    writer.attrs, writer.values = _names(graph)
    keys: dict[str, str] = {}
    groups = arch_param_shapes(graph)
    for group, shape in groups.items():
        # architecture parameters stay buffers, as in the lowered module (not in parameters())
        writer.init.append(f"self.register_buffer('alphas_{group}', torch.zeros{tuple(shape)!r})")
        writer.body.append(f"alphas_{group} = torch.softmax(self.alphas_{group}, dim=-1)")
        keys[f"arch.{group}"] = f"alphas_{group}"
    for nid in order:
        op: OpBase = graph.op(nid)
        kind = op.kind  # type: ignore[attr-defined]
        if kind == "input":
            writer.values[nid] = "x"
            continue
        xs = [writer.values[i] for i in inputs[nid]]
        if kind in ("identity", "aux"):
            writer.values[nid] = xs[0]
            continue
        emit = EMITTERS.get(kind)
        if emit is None:  # a genomorph bug: every op kind the lowering knows must be here too
            raise NotImplementedError(f"no Python export for op kind '{kind}'")
        expression = emit(writer, nid, op, xs)
        writer.body.append(f"{writer.values[nid]} = {expression}")
        for name in {**op.param_shapes(writer.shapes[nid]), **op.buffer_shapes(writer.shapes[nid])}:
            keys[f"n{nid}.{name}"] = f"{writer.attrs[nid]}.{name}"
    aux = graph.aux_outputs()
    outputs = [writer.values[graph.output_node()], *(writer.values[a] for a in aux)]
    writer.body.append(f"return {', '.join(outputs)}" if aux else f"return {outputs[0]}")
    text = HEADER.format(
        title=f"{class_name}: a network exported from a genome.", source=source, weights=weights_file
    )
    for helper in writer.helpers.values():
        text += "\n\n" + helper
    text += f"\n\nclass {class_name}(nn.Module):\n"
    stats = graph.stats()
    text += f'    """Input {"x".join(map(str, stats.input_shape))}, output {"x".join(map(str, stats.output_shape))}, {stats.params:,} parameters."""\n\n'
    text += "    def __init__(self) -> None:\n        super().__init__()\n"
    text += "".join(f"        {line}\n" for line in writer.init)
    text += "\n    def forward(self, x: Tensor) -> Tensor:\n"
    text += "".join(f"        {line}\n" for line in writer.body)
    return text, keys

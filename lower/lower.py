"""IR -> ``torch.fx.GraphModule``, built directly as an fx graph (no tracing, no interpreter).

One walk over ``graph.order()`` emits, per IR node:

- parameterised ops and dropout: one ``call_module`` on a module named ``n{id}`` (built
  straight from its weights when they are given: ``weights.build_loaded``);
- activations, pools, gap, flatten and merges: ``call_function`` on torch functions (or on the
  few helpers in ``functional.py``);
- ``input``: the placeholder ``x``; ``identity`` and ``aux``: nothing (their value is their
  input's fx node);
- ``mixed``: one ``call_module`` on ``arch`` per forward (the softmax of every architecture
  group), then a ``call_function`` per mixed op.

The fx graph is wrapped once as ``GraphModule(modules, graph)``, whose generated ``forward`` is
straight-line torch code, as fast as the same network written by hand.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from genomorph.ir import ops
from genomorph.ir.errors import LoweringError
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import OpBase, Shape
from genomorph.ir.stats import arch_param_shapes
from genomorph.ir.verify import verify
from genomorph.ir.weights import ArchWeights, Weights
from torch import Tensor, fx, nn

from . import functional
from .modules import ARCH, ArchParameters, Convex, FactorizedReduce, SepConv, StochasticDepth
from .weights import build_loaded, check_loadable, fill_arch


class GenomeModule(fx.GraphModule):
    """A lowered genome: an fx ``GraphModule`` whose submodule ``n{id}`` is IR node ``id``.

    ``forward(x)`` returns the main output, or ``(main, *aux)`` when the genome has auxiliary
    outputs (their loss weights are in ``aux_weights``, in the same order).
    """

    aux_weights: tuple[float, ...]

    def __init__(self, root: dict[str, nn.Module], graph: fx.Graph, aux_weights: tuple[float, ...] = ()):
        super().__init__(root, graph, class_name="GenomeModule")
        self.aux_weights = aux_weights

    def arch_parameters(self) -> list[Tensor]:
        """Architecture parameters of the mixed ops, one tensor per group in group order.

        They are not in ``parameters()`` (so ``zero_grad()`` leaves them alone: the optimiser
        of the architecture step clears them), but they are in ``state_dict()`` as
        ``arch.{group}`` and follow ``.to()``.
        """
        return [t for _, t in self.named_arch_parameters()]

    def named_arch_parameters(self) -> list[tuple[str, Tensor]]:
        """``(group, tensor)`` pairs of ``arch_parameters()``."""
        arch = self._modules.get(ARCH)
        return arch.named_tensors() if isinstance(arch, ArchParameters) else []

    def __deepcopy__(self, memo: dict[int, object]) -> GenomeModule:
        # GraphModule's deepcopy rebuilds the module through GraphModule.__init__ and drops
        # plain attributes.
        copied = super().__deepcopy__(memo)
        copied.aux_weights = self.aux_weights
        return copied  # type: ignore[return-value]

    def __reduce__(self) -> tuple[Callable[..., GenomeModule], tuple[object, ...]]:
        # GraphModule pickles as generated source and re-traces it on load, which would come
        # back as a plain GraphModule with the helper functions traced away. Pickle the fx
        # graph itself (a copy detached from this module) and the submodules instead.
        graph = fx.Graph()
        graph.output(graph.graph_copy(self.graph, {}))
        return _rebuild, (dict(self._modules), graph, self.aux_weights, self.training)


def _rebuild(
    modules: dict[str, nn.Module], graph: fx.Graph, aux_weights: tuple[float, ...], training: bool
) -> GenomeModule:
    return GenomeModule(modules, graph, aux_weights).train(training)


# ---------------------------------------------------------------------------------------------
# Modules for parameterised ops: op class -> (op, input shapes) -> nn.Module.
# Argument names follow the IR so the state_dict names are the IR's tensor names.

ModuleFactory = Callable[[Any, list[Shape]], nn.Module]


def _conv(op: Any, ins: list[Shape]) -> nn.Module:
    return nn.Conv2d(
        ins[0][0], op.channels, op.kernel, op.stride, op.pad, op.dilation, groups=op.groups, bias=op.bias
    )


def _sep_conv(op: Any, ins: list[Shape]) -> nn.Module:
    return SepConv(ins[0][0], op.channels, op.kernel, op.stride, op.pad, op.dilation, op.bias)


def _bn(op: Any, ins: list[Shape]) -> nn.Module:
    norm = nn.BatchNorm2d if len(ins[0]) == 3 else nn.BatchNorm1d
    return norm(ins[0][0], eps=op.eps, momentum=op.momentum, affine=op.affine)


MODULES: dict[type[OpBase], ModuleFactory] = {
    ops.Conv: _conv,
    ops.SepConv: _sep_conv,
    ops.BatchNorm: _bn,
    ops.Linear: lambda op, ins: nn.Linear(ins[0][0], op.features, bias=op.bias),
    ops.Dropout: lambda op, ins: nn.Dropout(op.p),
    ops.FactorizedReduce: lambda op, ins: FactorizedReduce(ins[0][0], op.channels, op.affine),
    ops.Convex: lambda op, ins: Convex(op.init),
    ops.StochasticDepth: lambda op, ins: StochasticDepth(op.p, op.mode, op.schedule),
}

# ---------------------------------------------------------------------------------------------
# Emitters: op class -> (builder, node id, op, fx inputs, input shapes) -> fx node.


@dataclass
class _Builder:
    fx_graph: fx.Graph = field(default_factory=fx.Graph)
    modules: dict[str, nn.Module] = field(default_factory=dict)
    values: dict[NodeId, fx.Node] = field(default_factory=dict)
    #: fx node of each architecture group's softmax, created at its first use
    arch_weights: dict[str, fx.Node] = field(default_factory=dict)
    arch_call: fx.Node | None = None
    #: relu and add nodes that may overwrite their first input (see ``_inplace_nodes``)
    inplace: set[NodeId] = field(default_factory=set)
    #: the weights to load, checked: a node given here skips torch's random initialisation
    given: Weights = field(default_factory=dict)

    def call(self, fn: Callable, *args: object, name: str | None = None) -> fx.Node:
        return self.fx_graph.create_node("call_function", fn, tuple(args), {}, name=name)  # type: ignore[arg-type]

    def group_weights(self, group: str) -> fx.Node:
        if group not in self.arch_weights:
            if self.arch_call is None:
                self.arch_call = self.fx_graph.create_node("call_module", ARCH, (), {}, name="alphas")
            arch = self.modules[ARCH]
            assert isinstance(arch, ArchParameters)
            index = arch.groups.index(group)
            self.arch_weights[group] = self.call(
                operator.getitem, self.arch_call, index, name=f"alphas_{group}"
            )
        return self.arch_weights[group]


Emitter = Callable[[_Builder, NodeId, Any, list[fx.Node], list[Shape]], fx.Node]


def _unary(fn: Callable[..., Tensor], *extra: object) -> Emitter:
    return lambda b, nid, op, xs, ins: b.call(fn, xs[0], *extra, name=f"n{nid}")


def _relu(b: _Builder, nid: NodeId, op: Any, xs: list[fx.Node], ins: list[Shape]) -> fx.Node:
    # In place where safe, as a hand-written network does with ReLU(inplace=True).
    fn = torch.relu_ if nid in b.inplace else torch.relu
    return b.call(fn, xs[0], name=f"n{nid}")


def _maxpool(b: _Builder, nid: NodeId, op: Any, xs: list[fx.Node], ins: list[Shape]) -> fx.Node:
    if op.ceil_mode:
        return b.call(torch.max_pool2d, xs[0], op.kernel, op.step, op.padding, 1, True, name=f"n{nid}")
    return b.call(torch.max_pool2d, xs[0], op.kernel, op.step, op.padding, name=f"n{nid}")


def _avgpool(b: _Builder, nid: NodeId, op: Any, xs: list[fx.Node], ins: list[Shape]) -> fx.Node:
    return b.call(
        F.avg_pool2d,
        xs[0],
        op.kernel,
        op.step,
        op.padding,
        op.ceil_mode,
        op.count_include_pad,
        name=f"n{nid}",
    )


def _add(b: _Builder, nid: NodeId, op: Any, xs: list[fx.Node], ins: list[Shape]) -> fx.Node:
    fn = operator.iadd if nid in b.inplace else operator.add
    out = xs[0]
    for i, x in enumerate(xs[1:], start=2):
        out = b.call(fn, out, x, name=f"n{nid}" if i == len(xs) else None)
    return out


def _concat(b: _Builder, nid: NodeId, op: Any, xs: list[fx.Node], ins: list[Shape]) -> fx.Node:
    parts = [
        x if factor == 1 else b.call(torch.max_pool2d, x, factor, factor)
        for x, factor in zip(xs, op.pool_factors(ins), strict=True)
    ]
    return b.call(torch.cat, parts, 1, name=f"n{nid}")


def _mixed(b: _Builder, nid: NodeId, op: Any, xs: list[fx.Node], ins: list[Shape]) -> fx.Node:
    return b.call(functional.mixed, b.group_weights(op.group), op.row, *xs, name=f"n{nid}")


def _edge_sum(b: _Builder, nid: NodeId, op: Any, xs: list[fx.Node], ins: list[Shape]) -> fx.Node:
    # the group's edge parameters are one more architecture tensor: softmax once per forward
    return b.call(functional.edge_sum, b.group_weights(op.beta_key), op.first, *xs, name=f"n{nid}")


def _module(b: _Builder, nid: NodeId, op: Any, xs: list[fx.Node], ins: list[Shape]) -> fx.Node:
    name = f"n{nid}"
    tensors = b.given.get(nid)
    if tensors:
        b.modules[name] = build_loaded(lambda: MODULES[type(op)](op, ins), tensors)
    else:
        b.modules[name] = MODULES[type(op)](op, ins)
    return b.fx_graph.create_node("call_module", name, tuple(xs), {}, name=name)


def _passthrough(b: _Builder, nid: NodeId, op: Any, xs: list[fx.Node], ins: list[Shape]) -> fx.Node:
    return xs[0]


def _placeholder(b: _Builder, nid: NodeId, op: Any, xs: list[fx.Node], ins: list[Shape]) -> fx.Node:
    return b.fx_graph.placeholder("x")


#: the lowering of every op class; ``tests/lower`` checks that none is missing
EMITTERS: dict[type[OpBase], Emitter] = {
    **dict.fromkeys(MODULES, _module),
    ops.Input: _placeholder,
    ops.Identity: _passthrough,
    ops.Aux: _passthrough,
    ops.Relu: _relu,
    ops.Sigmoid: _unary(torch.sigmoid),
    ops.Tanh: _unary(torch.tanh),
    ops.Swish: _unary(F.silu),
    ops.Gelu: _unary(F.gelu),
    ops.MaxPool: _maxpool,
    ops.AvgPool: _avgpool,
    ops.GlobalAvgPool: _unary(torch.mean, (2, 3)),
    ops.Flatten: _unary(torch.flatten, 1),
    ops.Zero: lambda b, nid, op, xs, ins: b.call(functional.zero, xs[0], op.stride, name=f"n{nid}"),
    ops.Add: _add,
    ops.Concat: _concat,
    ops.WeightedSum: lambda b, nid, op, xs, ins: b.call(
        functional.weighted_sum, xs[0], xs[1], op.alpha, name=f"n{nid}"
    ),
    ops.Mixed: _mixed,
    ops.Relu6: _unary(F.relu6),
    ops.Hardswish: _unary(F.hardswish),
    ops.Hardsigmoid: _unary(F.hardsigmoid),
    ops.LeakyRelu: lambda b, nid, op, xs, ins: b.call(F.leaky_relu, xs[0], op.slope, name=f"n{nid}"),
    ops.Mul: lambda b, nid, op, xs, ins: b.call(operator.mul, xs[0], xs[1], name=f"n{nid}"),
    ops.AdaptiveAvgPool: lambda b, nid, op, xs, ins: b.call(
        F.adaptive_avg_pool2d, xs[0], op.size, name=f"n{nid}"
    ),
    ops.ChannelSlice: lambda b, nid, op, xs, ins: b.call(
        torch.narrow, xs[0], 1, op.start, op.stop - op.start, name=f"n{nid}"
    ),
    ops.ChannelShuffle: lambda b, nid, op, xs, ins: b.call(
        functional.channel_shuffle, xs[0], op.groups, name=f"n{nid}"
    ),
    ops.EdgeSum: _edge_sum,
}


def _inplace_nodes(graph: Graph, inputs: Mapping[NodeId, list[NodeId]]) -> set[NodeId]:
    """Nodes of ops with ``traits.inplace`` (relu, add) that may write into their first input.

    That is safe when the input comes from an op with ``traits.overwritable`` and nothing else
    reads it (neither another node nor the caller, as an output). Nodes that emit no code
    (identity, aux) are looked through when readers are counted. ``inputs`` is
    ``graph.inputs`` of every node.
    """
    traits = {nid: graph.op(nid).traits for nid in inputs}
    silent = {nid for nid in inputs if EMITTERS.get(type(graph.op(nid))) is _passthrough}

    def source(nid: NodeId) -> NodeId:
        while nid in silent:
            nid = inputs[nid][0]
        return nid

    readers: dict[NodeId, int] = {}
    sinks = [graph.output_node(), *graph.aux_outputs()]
    for nid in inputs:
        if nid not in silent:
            for src in inputs[nid]:
                first = source(src)
                readers[first] = readers.get(first, 0) + 1
    for out in sinks:
        first = source(out)
        readers[first] = readers.get(first, 0) + 1
    inplace = set()
    for nid, own in traits.items():
        if own.inplace:
            first = source(inputs[nid][0])
            if readers[first] == 1 and traits[first].overwritable:
                inplace.add(nid)
    return inplace


def lower(
    graph: Graph,
    weights: Weights | None = None,
    arch: ArchWeights | None = None,
    *,
    inplace: bool = True,
    strict: bool = True,
) -> GenomeModule:
    """Lower a verified IR graph to a GenomeModule; load ``weights`` / ``arch`` when given.

    ``weights`` are ``Weights`` (node id -> tensor name -> array) and ``arch`` ``ArchWeights``
    (group -> array), as ``extract_weights`` returns them. The result is that of
    ``load_weights(lower(graph), graph, weights, arch, strict=strict)``, built faster: a node
    given its weights skips torch's random initialisation, and its module holds copies of the
    arrays. With ``strict`` (the default) every parameterised node must be given when
    ``weights`` is, and every architecture group when ``arch`` is; with ``strict=False`` the
    others are initialised by torch. Those random values come from torch's global generator as
    usual, but big modules built from their weights draw nothing, so the values drawn for what
    is not given, and the generator's state afterwards, are not those of the plain path.
    With ``inplace`` (the default) ReLUs and adds overwrite
    their first input where no other op reads it, as a hand-written network does; turn it off
    when forward hooks keep references to module outputs, which such an op would then change
    after the hook has run.
    """
    verify(graph)
    # Graph.inputs sorts the node's in-edges on every call: read each node's once
    inputs = {nid: graph.inputs(nid) for nid in graph.order()}
    shapes_of = graph.shapes()
    input_shapes = {nid: [shapes_of[i] for i in ins] for nid, ins in inputs.items()}
    if weights is not None or arch is not None:
        check_loadable(graph, weights, arch, strict=strict, input_shapes=input_shapes)
    builder = _Builder(inplace=_inplace_nodes(graph, inputs) if inplace else set(), given=weights or {})
    shapes = arch_param_shapes(graph)
    if shapes:
        _check_group_names(list(shapes))
        builder.modules[ARCH] = arch_module = ArchParameters(shapes)
        if arch:
            fill_arch(arch_module, arch)
    for nid, ins in inputs.items():
        op = graph.op(nid)
        xs = [builder.values[i] for i in ins]
        emit = EMITTERS.get(type(op))
        if emit is None:  # a genomorph bug, not a user error: every kind must have an emitter
            raise NotImplementedError(f"no lowering for op kind '{op.kind}'")  # type: ignore[attr-defined]
        builder.values[nid] = emit(builder, nid, op, xs, input_shapes[nid])
    aux = graph.aux_outputs()
    main = builder.values[graph.output_node()]
    result = (main, *(builder.values[a] for a in aux)) if aux else main
    builder.fx_graph.output(result)
    aux_weights = tuple(float(graph.op(a).weight) for a in aux)  # type: ignore[attr-defined]
    return GenomeModule(builder.modules, builder.fx_graph, aux_weights)


def _check_group_names(groups: list[str]) -> None:
    probe = nn.Module()
    for group in groups:
        if not group.isidentifier() or hasattr(probe, group) or group in ("groups", "named_tensors"):
            raise LoweringError(
                f"architecture group name '{group}' cannot name a tensor of the lowered module",
                hint="use a plain identifier such as `normal` or `reduce` for mixed(group=...)",
            )

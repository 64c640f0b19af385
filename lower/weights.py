"""Weights in and out of a lowered module, as plain numpy arrays keyed by IR node id.

``state_dict`` key ``n{id}.{name}`` <-> ``Weights[id][name]``, and ``arch.{group}`` <->
``ArchWeights[group]``. The names are those of the op's ``param_shapes`` / ``buffer_shapes``,
so nothing here knows about individual op kinds.
"""

from __future__ import annotations

import numpy as np
import torch
from genomorph.ir.errors import LoweringError
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import Shape
from genomorph.ir.stats import arch_param_shapes
from genomorph.ir.weights import ArchWeights, Weights
from torch import Tensor, nn

from .lower import ARCH


def _to_numpy(t: Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16
        t = t.float()
    return t.numpy().copy()


def _to_tensor(array: np.ndarray) -> Tensor:
    # torch warns on read-only arrays (np.load with mmap, np.broadcast_to): copy those only
    return torch.as_tensor(np.require(array, requirements="W"))


def _declared(graph: Graph) -> dict[NodeId, dict[str, Shape]]:
    """Parameter and buffer shapes of every node that has any, in ``graph.order()``.

    Computed in one pass: ``ir.weights.expected_shapes`` re-reads all shapes per node, which
    is quadratic over a whole graph.
    """
    shapes = graph.shapes()
    declared = {}
    for nid in graph.order():
        ins = [shapes[i] for i in graph.inputs(nid)]
        op = graph.op(nid)
        per = {**op.param_shapes(ins), **op.buffer_shapes(ins)}
        if per:
            declared[nid] = per
    return declared


def _state(module: nn.Module, graph: Graph, declared: dict[NodeId, dict[str, Shape]]) -> dict[str, Tensor]:
    """The module's live tensors, checked to be exactly those the graph's IR declares."""
    state = module.state_dict(keep_vars=True)
    for nid, per in declared.items():
        for name, shape in per.items():
            key = f"n{nid}.{name}"
            if key not in state or tuple(state[key].shape) != tuple(shape):
                raise LoweringError(
                    f"{graph.node(nid).describe()}: the module has no tensor '{key}' of shape {shape}",
                    span=graph.node(nid).span,
                    hint="pass the graph the module was lowered from",
                )
    for group, shape in arch_param_shapes(graph).items():
        key = f"{ARCH}.{group}"
        if key not in state or tuple(state[key].shape) != tuple(shape):
            raise LoweringError(
                f"the module has no architecture parameters '{key}' of shape {shape}",
                hint="pass the graph the module was lowered from",
            )
    return state


def extract_weights(module: nn.Module, graph: Graph) -> tuple[Weights, ArchWeights]:
    """Copy the module's parameters and buffers out as ``(Weights, ArchWeights)`` numpy arrays."""
    declared = _declared(graph)
    state = _state(module, graph, declared)
    weights: Weights = {
        nid: {name: _to_numpy(state[f"n{nid}.{name}"]) for name in names} for nid, names in declared.items()
    }
    arch = {group: _to_numpy(state[f"{ARCH}.{group}"]) for group in arch_param_shapes(graph)}
    return weights, arch


def _check_node(graph: Graph, nid: NodeId, want: dict[str, Shape], given: dict[str, np.ndarray]) -> None:
    node = graph.node(nid)
    for name, shape in want.items():
        if name not in given:
            raise LoweringError(
                f"{node.describe()}: weight '{name}' (shape {shape}) is missing",
                span=node.span,
                hint=f"give all of {sorted(want)} for this node, or none of them",
            )
        got = tuple(np.shape(given[name]))
        if got != tuple(shape):
            raise LoweringError(
                f"{node.describe()}: weight '{name}' has shape {got} but the IR expects {tuple(shape)}",
                span=node.span,
                hint="the weights belong to a different genome, or a rewrite forgot to reshape them",
            )
    extra = sorted(set(given) - set(want))
    if extra:
        raise LoweringError(
            f"{node.describe()}: unexpected weight(s) {extra}; it has {sorted(want) or 'none'}",
            span=node.span,
        )


def _check(
    graph: Graph,
    declared: dict[NodeId, dict[str, Shape]],
    weights: Weights | None,
    arch: ArchWeights | None,
    strict: bool,
) -> None:
    if weights is not None:
        stale = sorted(set(weights) - set(graph.order()))
        if stale:
            raise LoweringError(
                f"weights given for node(s) {', '.join(f'n{n}' for n in stale)}, which are not in the graph",
                hint="remap weights after relabelling a graph (ir.weights.remap)",
            )
        for nid in graph.order():
            if nid in weights or (strict and nid in declared):
                _check_node(graph, nid, declared.get(nid, {}), weights.get(nid, {}))
    if arch is not None:
        shapes = arch_param_shapes(graph)
        for group in sorted(set(arch) | set(shapes)):
            if group not in shapes:
                raise LoweringError(f"architecture parameters given for unknown group '{group}'")
            if group not in arch:
                if strict:
                    raise LoweringError(f"architecture parameters of group '{group}' are missing")
                continue
            if tuple(np.shape(arch[group])) != tuple(shapes[group]):
                raise LoweringError(
                    f"architecture parameters of group '{group}' have shape {tuple(np.shape(arch[group]))}, "
                    f"the IR expects {tuple(shapes[group])} (rows x candidates)"
                )


def load_weights(
    module: nn.Module,
    graph: Graph,
    weights: Weights | None,
    arch: ArchWeights | None = None,
    *,
    strict: bool = True,
) -> None:
    """Copy ``weights`` / ``arch`` into ``module`` in place (on whatever device it lives).

    Everything is checked before anything is copied, so a LoweringError leaves the module as it
    was. With ``strict`` (the default) every parameterised node and every architecture group
    must be given; with ``strict=False`` absent ones keep their current values, but a node that
    is given must still be complete.
    """
    declared = _declared(graph)
    _check(graph, declared, weights, arch, strict)
    state = _state(module, graph, declared)
    with torch.no_grad():
        for nid, per in (weights or {}).items():
            for name, array in per.items():
                state[f"n{nid}.{name}"].copy_(_to_tensor(array))
        for group, array in (arch or {}).items():
            state[f"{ARCH}.{group}"].copy_(_to_tensor(array))

"""Weights in and out of a lowered module, as plain numpy arrays keyed by IR node id.

``state_dict`` key ``n{id}.{name}`` <-> ``Weights[id][name]``, and ``arch.{group}`` <->
``ArchWeights[group]``. The names are those of the op's ``param_shapes`` / ``buffer_shapes``,
so nothing here knows about individual op kinds. ``lower`` builds the module of a node given
its weights with ``build_loaded``, which skips torch's random initialisation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np
import torch
from genomorph.ir.errors import LoweringError
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import Shape
from genomorph.ir.stats import arch_param_shapes
from genomorph.ir.weights import ArchWeights, Weights
from torch import Tensor, nn

from .modules import ARCH, ArchParameters


def _to_numpy(t: Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16
        t = t.float()
    return t.numpy().copy()


def _to_tensor(array: np.ndarray) -> Tensor:
    """A tensor viewing ``array``, to copy from (``from_numpy`` is the cheap common case)."""
    if isinstance(array, np.ndarray) and array.flags.writeable:
        return torch.from_numpy(array)
    # torch warns on read-only arrays (np.load with mmap, np.broadcast_to): copy those only
    return torch.as_tensor(np.require(array, requirements="W"))


def _declared(
    graph: Graph, input_shapes: Mapping[NodeId, list[Shape]] | None = None
) -> dict[NodeId, dict[str, Shape]]:
    """Parameter and buffer shapes of every node that has any, in ``graph.order()``.

    Computed in one pass: ``ir.weights.expected_shapes`` re-reads all shapes per node, which
    is quadratic over a whole graph. ``input_shapes`` (every node's, when the caller has them
    already) saves reading the edges again.
    """
    shapes = graph.shapes()
    declared = {}
    for nid in graph.order():
        ins = input_shapes[nid] if input_shapes is not None else [shapes[i] for i in graph.inputs(nid)]
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


def check_loadable(
    graph: Graph,
    weights: Weights | None,
    arch: ArchWeights | None,
    *,
    strict: bool,
    input_shapes: Mapping[NodeId, list[Shape]] | None = None,
) -> None:
    """Raise the LoweringError ``load_weights`` would raise for these weights, or nothing."""
    _check(graph, _declared(graph, input_shapes), weights, arch, strict)


#: From this many elements on, a module given all its weights is built on the meta device. Below
#: it torch's own initialisation is cheaper than that detour (measured on CPU: building on meta
#: and allocating afterwards adds about 25 us per module; the kaiming-uniform draw that it saves
#: costs about 5 ns per element).
META_FROM = 8192


def build_loaded(build: Callable[[], nn.Module], tensors: Mapping[str, np.ndarray]) -> nn.Module:
    """``build()`` holding ``tensors``, exactly as ``build()`` then ``load_weights`` leaves it.

    ``tensors`` are all of the module's parameters and buffers, already checked against the IR
    (``check_loadable``). A big module is built on the meta device, where torch's random
    initialisation, overwritten at once anyway, costs nothing, and its tensors are then
    allocated on the default device. Values, dtypes and devices are those of the plain path
    (the same ``copy_`` converts the arrays), and each array is copied exactly once into memory
    the module owns: training the module never writes into the caller's arrays.
    """
    if sum(np.size(a) for a in tensors.values()) < META_FROM:
        module = build()
        _fill(module, tensors, fresh=False)
        return module
    with torch.device("meta"):
        module = build()
    _fill(module, tensors, fresh=True)
    return module


def _slots(module: nn.Module) -> Iterator[tuple[str, dict[str, Tensor | None], str]]:
    """``(state_dict name, owning dict, key)`` of every parameter and buffer of ``module``."""
    for prefix, owner in module.named_modules():
        for slots in (owner._parameters, owner._buffers):
            for key, tensor in slots.items():
                if tensor is not None:
                    yield (f"{prefix}.{key}" if prefix else key), slots, key  # type: ignore[misc]


def _fill(module: nn.Module, tensors: Mapping[str, np.ndarray], *, fresh: bool) -> None:
    """Copy ``tensors`` into ``module``: into its tensors, or (``fresh``) into new ones."""
    device = torch.get_default_device() if fresh else None
    filled = 0
    with torch.no_grad():
        for name, slots, key in list(_slots(module)):
            old = slots[key]
            assert old is not None
            array = tensors.get(name)
            # a genomorph bug, not a user error: the arrays were checked against the IR's names
            if array is None or tuple(old.shape) != np.shape(array):
                raise RuntimeError(f"module tensor '{name}' {tuple(old.shape)} is not among the IR's weights")
            if not fresh:
                old.copy_(_to_tensor(array))
            else:
                new = torch.empty(old.shape, dtype=old.dtype, device=device).copy_(_to_tensor(array))
                is_param = isinstance(old, nn.Parameter)
                slots[key] = (
                    nn.Parameter(new, old.requires_grad)
                    if is_param
                    else new.requires_grad_(old.requires_grad)
                )
            filled += 1
    if filled != len(tensors):
        raise RuntimeError(f"the module has {filled} tensors, the IR declares {sorted(tensors)}")


def fill_arch(module: ArchParameters, arch: ArchWeights) -> None:
    """Copy the given groups (checked by ``check_loadable``) into the architecture parameters."""
    tensors = dict(module.named_tensors())
    with torch.no_grad():
        for group, array in arch.items():
            tensors[group].copy_(_to_tensor(array))

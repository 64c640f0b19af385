"""Paper 000's per-unit importance statistics, measured on a lowered network (needs torch).

For every unit of a hidden layer (a linear layer's output, a conv's channel):

- ``A = sum_i |sigma_i * d sigma_i|``: the activation times the gradient of the loss with
  respect to it, summed over the data (for a conv channel, ``sigma * d sigma`` is summed over
  the positions of one sample first — Molchanov et al.'s first-order Taylor importance);
- ``B = (1/N) sum_i 1[sigma_i > 0]``: the fraction of inputs on which the unit fires.

``sigma`` is the unit's activation: the first activation after the layer (through its batch
norm), or the layer's own output when no activation follows alone. The statistics come back
as plain numpy arrays keyed by the layer's node id — what ``prune_neurons.select`` takes.

``decay_then_prune`` is paper 000's gentler removal: the outgoing weights of the units about
to go are multiplied by a factor after each fine-tuning epoch, then the units are pruned.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from genomorph.ir import Graph, NodeId, NotApplicable, Weights
from genomorph.ir.rewrites import RewriteResult, prune_neurons
from genomorph.ir.rewrites._places import only_user
from genomorph.lower import lower
from pydantic import BaseModel, ConfigDict, Field
from torch import fx

Task = Literal["classification", "regression"]

#: in-place functions the lowering may emit, and their out-of-place forms: a value we read
#: the gradient of must not be overwritten later in the forward pass
_OUT_OF_PLACE: dict[Any, Any] = {torch.relu_: torch.relu, operator.iadd: operator.add}


@dataclass(frozen=True)
class UnitStats:
    a: np.ndarray
    """Sum over the data of |activation * gradient| per unit."""
    b: np.ndarray
    """Fraction of inputs on which each unit's activation is positive."""
    samples: int

    def importance(self) -> np.ndarray:
        return prune_neurons.importance(self.a, self.b)


def activation_of(graph: Graph, layer: NodeId) -> NodeId:
    """The node whose output is ``layer``'s units' activation (see the module docstring)."""
    node = layer
    while True:
        user = only_user(graph, node)
        if user is None:
            return node
        traits = graph.op(user).traits
        if traits.activation:
            return user
        if not traits.pointwise:  # batch norm, dropout and identity are looked through
            return node
        node = user


def prunable_layers(graph: Graph) -> list[NodeId]:
    """Layers whose units prune-neurons can remove."""
    out = []
    for nid in graph.order():
        try:
            prune_neurons.moves_at(graph, nid)
        except NotApplicable:
            continue
        out.append(nid)
    return out


class _Tap(fx.Interpreter):
    """Runs the lowered graph node by node, out of place, keeping the values of tapped nodes."""

    def __init__(self, module: fx.GraphModule, taps: set[str]) -> None:
        super().__init__(module)
        self.taps = taps
        self.values: dict[str, torch.Tensor] = {}

    def call_function(self, target: Any, args: Any, kwargs: Any) -> Any:
        return super().call_function(_OUT_OF_PLACE.get(target, target), args, kwargs)

    def run_node(self, n: fx.Node) -> Any:
        value = super().run_node(n)
        if n.name in self.taps:
            self.values[n.name] = value
        return value


#: memory the values and gradients of one statistics pass may take (`statistics_batch`)
STATISTICS_BYTES = 256 * 2**20


def statistics_batch(graph: Graph, budget: int = STATISTICS_BYTES) -> int:
    """Samples per statistics pass: as many as fit ``budget`` bytes of every node's float32
    value and gradient (the pass keeps all of them), between 16 and 4096. A small network on
    a small split then takes one pass (each pass costs the interpreter's overhead per node),
    a large convolutional one stays within memory."""
    floats = sum(math.prod(shape) for shape in graph.shapes().values())
    return max(16, min(4096, budget // max(1, 8 * floats)))


def _loss(task: Task, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if task == "classification":
        return torch.nn.functional.cross_entropy(out, y.long(), reduction="sum")
    return torch.nn.functional.mse_loss(out, y.float().view_as(out), reduction="sum")


def unit_statistics(
    graph: Graph,
    weights: Weights | None,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    task: Task = "classification",
    layers: Sequence[NodeId] | None = None,
    batch_size: int | None = None,
    module: fx.GraphModule | None = None,
) -> dict[NodeId, UnitStats]:
    """A and B of paper 000 for every unit of ``layers`` (default: every prunable layer).

    The network runs in eval mode (batch-norm statistics fixed, no dropout); gradients are of
    the summed task loss on ``(x, y)``. ``module``: the network already lowered with ``weights``
    (the worker's trained module: not lowered again; its gradients are cleared afterwards and
    its train/eval mode restored). ``batch_size``: samples per pass (default: `statistics_batch`).
    """
    layers = list(prunable_layers(graph) if layers is None else layers)
    taps = {layer: activation_of(graph, layer) for layer in layers}
    if module is not None and not any(p.requires_grad for p in module.parameters()):
        module = None  # nothing records a gradient in a frozen module: lower a fresh one
    was_training = module.training if module is not None else False
    module = lower(graph, weights).eval() if module is None else module.eval()
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    names = {f"n{n}" for n in taps.values()}
    missing = names - {node.name for node in module.graph.nodes}
    if missing:
        raise RuntimeError(f"the lowered module has no fx node(s) {sorted(missing)} to measure")
    batch_size = batch_size or statistics_batch(graph)
    sums_a: dict[NodeId, torch.Tensor] = {}
    sums_b: dict[NodeId, torch.Tensor] = {}
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size].to(device), y[start : start + batch_size].to(device)
        tap = _Tap(module, names)
        out = tap.run(xb)
        out = out[0] if isinstance(out, tuple) else out
        # the gradients of the tapped values only: no weight gradients (half a conv's backward)
        tapped = sorted(tap.values)
        grads = torch.autograd.grad(_loss(task, out, yb), [tap.values[k] for k in tapped], allow_unused=True)
        by_name = dict(zip(tapped, grads, strict=True))
        for layer, act in taps.items():
            value = tap.values[f"n{act}"]
            sigma, grad = value.detach(), by_name[f"n{act}"]
            if grad is None:  # the value does not reach the loss: no unit of it matters
                grad = torch.zeros_like(sigma)
            saliency = sigma * grad
            if sigma.dim() == 4:  # conv channels: one Taylor term per sample, then |.|
                a = saliency.sum(dim=(2, 3)).abs().sum(0)
                b = (sigma > 0).float().mean(dim=(2, 3)).sum(0)
            else:
                a = saliency.abs().sum(0)
                b = (sigma > 0).float().sum(0)
            sums_a[layer] = sums_a.get(layer, 0) + a  # type: ignore[operator]
            sums_b[layer] = sums_b.get(layer, 0) + b  # type: ignore[operator]
    module.zero_grad(set_to_none=True)  # training's last gradients are not handed on with the module
    module.train(was_training)
    n = len(x)
    return {
        layer: UnitStats(
            sums_a[layer].double().cpu().numpy(), (sums_b[layer] / max(n, 1)).double().cpu().numpy(), n
        )
        for layer in layers
    }


class DecaySchedule(BaseModel):
    """Paper 000's "decay the outgoing connections of the least important neurons" before removal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(default=3, ge=0)
    """Fine-tuning epochs while the doomed units fade."""
    factor: float = Field(default=0.5, ge=0.0, lt=1.0)
    """Their outgoing weights are multiplied by this after every epoch."""


def decay_then_prune(
    graph: Graph,
    weights: Weights,
    moves: Sequence[prune_neurons.Move],
    schedule: DecaySchedule,
    fine_tune: Callable[[Graph, Weights], Weights],
    rng: np.random.Generator,
) -> tuple[list[RewriteResult], Weights]:
    """Fade the units ``moves`` will remove for ``schedule.epochs`` epochs, then remove them.

    ``fine_tune(graph, weights) -> weights`` trains one epoch (the caller's trainer). Returns
    the prune results (the last holds the final graph and weights) and the faded weights just
    before removal, for comparison.
    """
    resolved = [m for m in moves if m.remove is not None]
    if len(resolved) != len(moves):
        raise ValueError(
            "decay_then_prune needs moves with explicit `remove` units (see prune_neurons.select)"
        )
    for _ in range(schedule.epochs):
        for move in resolved:
            weights = prune_neurons.fade(graph, weights, move.node, move.remove or (), schedule.factor, rng)
        weights = fine_tune(graph, weights)
    faded = weights
    results: list[RewriteResult] = []
    for move in resolved:
        result = prune_neurons.apply(graph, weights, move, rng)
        results.append(result)
        graph, weights = result.graph, result.weights
    return results, faded


def stats_arrays(stats: dict[NodeId, UnitStats]) -> dict[NodeId, tuple[np.ndarray, np.ndarray]]:
    """The ``(A, B)`` pairs ``prune_neurons.select`` takes."""
    return {nid: (s.a, s.b) for nid, s in stats.items()}

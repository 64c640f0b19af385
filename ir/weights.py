"""Weights that travel with an IR: plain numpy arrays keyed by node id and tensor name.

``Weights[node_id][name]`` holds both parameters and buffers under the names of
``op.param_shapes`` / ``op.buffer_shapes`` (the lowered module's ``state_dict`` names).
Architecture parameters of mixed ops live apart in ``ArchWeights[group]``.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import VerifyError
from .graph import Graph, NodeId

Weights = dict[NodeId, dict[str, np.ndarray]]
ArchWeights = dict[str, np.ndarray]


def expected_shapes(graph: Graph, nid: NodeId) -> dict[str, tuple[int, ...]]:
    ins = graph.input_shapes(nid)
    op = graph.op(nid)
    return {**op.param_shapes(ins), **op.buffer_shapes(ins)}


def check_weights(graph: Graph, weights: Weights) -> None:
    """Raise VerifyError if any tensor is missing, extra, or of the wrong shape."""
    for nid in graph.order():
        want = expected_shapes(graph, nid)
        have = weights.get(nid, {})
        if not want and not have:
            continue
        for name, shape in want.items():
            if name not in have:
                raise VerifyError(f"{graph.node(nid).describe()} has no weight '{name}'")
            if tuple(have[name].shape) != tuple(shape):
                raise VerifyError(
                    f"{graph.node(nid).describe()} weight '{name}' has shape {tuple(have[name].shape)}, expected {shape}"
                )
        extra = set(have) - set(want)
        if extra:
            raise VerifyError(f"{graph.node(nid).describe()} has unexpected weights {sorted(extra)}")
    stale = set(weights) - set(graph.order())
    if stale:
        raise VerifyError(f"weights given for nodes not in the graph: {sorted(stale)}")


def count(weights: Weights) -> int:
    return sum(math.prod(a.shape) for per in weights.values() for a in per.values())


def copy_weights(weights: Weights) -> Weights:
    return {nid: {k: v.copy() for k, v in per.items()} for nid, per in weights.items()}


def remap(weights: Weights, mapping: dict[NodeId, NodeId]) -> Weights:
    """Re-key weights after ``Graph.relabeled()``."""
    return {mapping[nid]: per for nid, per in weights.items() if nid in mapping}


__all__ = [
    "ArchWeights",
    "Weights",
    "check_weights",
    "copy_weights",
    "count",
    "expected_shapes",
    "remap",
    "np",
]

"""Weights for nodes that have none, drawn in numpy the way torch initialises its layers.

torch's ``Conv2d``/``Linear`` use ``kaiming_uniform_(a=sqrt(5))`` for the weight, which is
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, and the same bound for the bias; batch norm starts
at weight 1, bias 0, running mean 0, running variance 1. Tensors are recognised by the name
the op gives them (``weight``, ``pointwise.bias``, ``running_var``, ``lam``), so this module
has no per-op code: an op that declares its tensors gets them initialised.
"""

from __future__ import annotations

import math

import numpy as np
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import OpBase, Shape
from genomorph.ir.weights import Weights, expected_shapes

FLOAT = np.float32


def fan_in(shape: Shape) -> int:
    return max(1, math.prod(shape[1:]))


def uniform(rng: np.random.Generator, shape: Shape, bound: float) -> np.ndarray:
    return rng.uniform(-bound, bound, size=shape).astype(FLOAT)


def init_tensor(op: OpBase, name: str, shapes: dict[str, Shape], rng: np.random.Generator) -> np.ndarray:
    """One tensor of ``op`` as torch would create it."""
    shape = shapes[name]
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return np.zeros(shape, dtype=np.int64)
    if leaf == "running_mean":
        return np.zeros(shape, dtype=FLOAT)
    if leaf == "running_var":
        return np.ones(shape, dtype=FLOAT)
    if leaf == "lam":
        return np.full(shape, getattr(op, "init", 1.0), dtype=FLOAT)
    sibling = name[: -len("bias")] + "weight" if leaf == "bias" else name
    normalising = len(shapes.get(sibling, shape)) == 1  # batch norm's affine parameters
    if leaf == "weight":
        return (
            np.ones(shape, dtype=FLOAT) if normalising else uniform(rng, shape, 1 / math.sqrt(fan_in(shape)))
        )
    if leaf == "bias":
        if normalising:
            return np.zeros(shape, dtype=FLOAT)
        return uniform(rng, shape, 1 / math.sqrt(fan_in(shapes[sibling])))
    return np.zeros(shape, dtype=FLOAT)


def init_node(graph: Graph, nid: NodeId, rng: np.random.Generator) -> dict[str, np.ndarray]:
    shapes = expected_shapes(graph, nid)
    return {name: init_tensor(graph.op(nid), name, shapes, rng) for name in shapes}


def fill_missing(graph: Graph, weights: Weights | None, rng: np.random.Generator) -> Weights:
    """A new dict holding ``weights``' arrays (shared, not copied) plus fresh ones where absent."""
    out: Weights = {nid: dict(per) for nid, per in (weights or {}).items()}
    for nid in graph.order():
        if nid not in out and expected_shapes(graph, nid):
            out[nid] = init_node(graph, nid, rng)
    return out


def randomized(graph: Graph, weights: Weights | None, rng: np.random.Generator) -> Weights:
    """Weights as if trained a little: batch-norm statistics and affine parameters off identity.

    A check of function preservation on a fresh network would be too easy (an identity batch
    norm stays identity whatever a rewrite does to it); this gives every batch norm random
    running statistics and scale/shift, keeping activations of order one.
    """
    out = fill_missing(graph, weights, rng)
    for nid in graph.order():
        per = out.get(nid)
        if not per:
            continue
        new = dict(per)
        for name, array in per.items():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "running_mean":
                new[name] = rng.normal(0.0, 0.2, array.shape).astype(FLOAT)
            elif leaf == "running_var":
                new[name] = rng.uniform(0.5, 2.0, array.shape).astype(FLOAT)
            elif leaf == "num_batches_tracked":
                new[name] = np.asarray(100, dtype=np.int64)
            elif array.ndim == 1 and f"{name[: -len(leaf)]}running_mean" in per:
                scale = (
                    rng.uniform(0.5, 1.5, array.shape)
                    if leaf == "weight"
                    else rng.normal(0, 0.2, array.shape)
                )
                new[name] = scale.astype(FLOAT)
        out[nid] = new
    return out


def identity_conv(channels: int, kernel: int) -> np.ndarray:
    """A ``(C, C, k, k)`` kernel that copies every channel: 1 at the centre of the diagonal."""
    weight = np.zeros((channels, channels, kernel, kernel), dtype=FLOAT)
    centre = kernel // 2
    weight[np.arange(channels), np.arange(channels), centre, centre] = 1.0
    return weight


def identity_depthwise(channels: int, kernel: int) -> np.ndarray:
    """A ``(C, 1, k, k)`` depthwise kernel that copies every channel."""
    weight = np.zeros((channels, 1, kernel, kernel), dtype=FLOAT)
    weight[:, 0, kernel // 2, kernel // 2] = 1.0
    return weight


def identity_bn(channels: int, eps: float) -> dict[str, np.ndarray]:
    """Batch norm that is the identity in eval mode: gamma = sqrt(var + eps), beta = mean."""
    mean = np.zeros(channels, dtype=FLOAT)
    var = np.ones(channels, dtype=FLOAT)
    return {
        "weight": np.sqrt(var + eps).astype(FLOAT),
        "bias": mean.copy(),
        "running_mean": mean,
        "running_var": var,
        "num_batches_tracked": np.asarray(0, dtype=np.int64),
    }

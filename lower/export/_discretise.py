"""A supernet with its architecture weights -> the plain network of its strongest candidates.

Each ``mixed`` node is replaced by its candidate of largest softmax weight, ``zero`` ("none")
candidates left out as DARTS does when it derives a genotype; the branches no longer read are
removed with their weights. The result has no architecture parameters and exports like any
genome. (DARTS' cell rule, which also keeps only the two strongest edges per node, is
``genomorph convert --to darts`` on the supernet; this pass keeps every edge.)
"""

from __future__ import annotations

import numpy as np
from genomorph.ir.errors import ConfigError
from genomorph.ir.graph import Graph, NodeId
from genomorph.ir.ops import Mixed
from genomorph.ir.weights import ArchWeights, Weights, remap


def _strongest(graph: Graph, nid: NodeId, op: Mixed, arch: ArchWeights) -> NodeId:
    row = np.asarray(arch[op.group][op.row], dtype=np.float64)
    candidates = graph.inputs(nid)
    order = np.argsort(-row, kind="stable")  # ties: the first candidate, as DARTS' argmax
    for index in order:
        if graph.kind(candidates[index]) != "zero":
            return candidates[index]
    return candidates[int(order[0])]  # every candidate is "none": keep the zero


def discretise(graph: Graph, weights: Weights | None, arch: ArchWeights) -> tuple[Graph, Weights | None]:
    """The discretised graph (ids renumbered in order) and its weights."""
    out = graph.copy()
    # the outputs, read before the edit: removed candidates leave sinks that are not outputs
    sinks = [graph.output_node(), *graph.aux_outputs()]
    mixed = [nid for nid in out.order() if isinstance(out.op(nid), Mixed)]
    if not mixed:
        raise ConfigError("--discretise applies to supernets (genomes with mixed ops) only")
    for nid in mixed:
        op = out.op(nid)
        assert isinstance(op, Mixed)
        if op.group not in arch:
            raise ConfigError(
                f"no architecture weights for group '{op.group}'",
                hint="export the supernet with the checkpoint of a search that trained it (--weights)",
            )
        chosen = _strongest(out, nid, op, arch)
        out.replace_uses(nid, chosen)
        out.remove(nid)
        sinks = [chosen if s == nid else s for s in sinks]
    live = _live(out, sinks)
    for nid in sorted(set(out) - live, reverse=True):
        out.remove(nid)
    relabeled, mapping = out.relabeled()
    kept = None if weights is None else remap({k: v for k, v in weights.items() if k in live}, mapping)
    return relabeled, kept


def _live(graph: Graph, sinks: list[NodeId]) -> set[NodeId]:
    live = set(sinks)
    stack = list(sinks)
    while stack:
        for src in graph.inputs(stack.pop()):
            if src not in live:
                live.add(src)
                stack.append(src)
    return live

"""Supernet genomes as search spaces, on the IR alone (no torch): what belongs to which mixed op,
and how a trained supernet becomes a discrete genome.

- `candidate_nodes`: per architecture group, the nodes that compute a candidate of one of the
  group's mixed ops and nothing else (the op chain from the mixed node back to the first value
  something else also reads). In a DARTS cell that is every op on every edge; the stem, the
  cells' preprocessing and the classifier are outside. hyperDARTS generates exactly these
  weights from λ (paper 003 §5.2.1, method 1).
- `is_darts_supernet` / `discretise`: DARTS cells are discretised by the official
  ``genotype()`` rule (``grammar.darts.decode_genotype``); any other supernet by the argmax of
  each mixed node's softmax over its non-``none`` candidates (`argmax_genome`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from genomorph.ir import ArchWeights, Graph, NodeId, verify
from genomorph.ir.ops import Identity, Mixed, Zero

NONE_LABELS = frozenset({"none", "zero"})


def mixed_nodes(graph: Graph) -> list[NodeId]:
    return [nid for nid in graph.order() if isinstance(graph.op(nid), Mixed)]


def _chain(graph: Graph, start: NodeId) -> list[NodeId]:
    """``start`` and the nodes before it that feed only this chain (single input, single user)."""
    out: list[NodeId] = []
    nid = start
    while True:
        if graph.kind(nid) == "input" or len(graph.user_ids(nid)) != 1:
            return out
        out.append(nid)
        ins = graph.inputs(nid)
        if len(ins) != 1:
            return out
        nid = ins[0]


def candidate_nodes(graph: Graph) -> dict[str, list[NodeId]]:
    """Group -> ids of the nodes inside that group's candidate ops (in graph order)."""
    found: dict[str, set[NodeId]] = {}
    for m in mixed_nodes(graph):
        op = graph.op(m)
        assert isinstance(op, Mixed)
        nodes = found.setdefault(op.group, set())
        for cand in graph.inputs(m):
            nodes.update(_chain(graph, cand))
    order = {nid: i for i, nid in enumerate(graph.order())}
    return {g: sorted(ns, key=order.__getitem__) for g, ns in found.items()}


def _softmax(row: np.ndarray) -> np.ndarray:
    e = np.exp(row - row.max())
    return e / e.sum()


def _is_none(graph: Graph, cand: NodeId, label: str | None) -> bool:
    return (label in NONE_LABELS) if label is not None else isinstance(graph.op(cand), Zero)


def argmax_genome(graph: Graph, arch: Mapping[str, np.ndarray]) -> tuple[Graph, dict[NodeId, str]]:
    """Every mixed node replaced by its strongest non-``none`` candidate; the others pruned.

    Returns the new graph and, per former mixed node, the label (or op kind) that was kept.
    """
    out = graph.copy()
    chosen: dict[NodeId, str] = {}
    for m in mixed_nodes(graph):
        op = graph.op(m)
        assert isinstance(op, Mixed)
        cands = graph.inputs(m)
        weights = _softmax(np.asarray(arch[op.group][op.row], dtype=np.float64))
        labels = list(op.labels) if op.labels else [None] * len(cands)
        allowed = [i for i in range(len(cands)) if not _is_none(graph, cands[i], labels[i])] or list(
            range(len(cands))
        )
        best = max(allowed, key=lambda i: (weights[i], -i))
        chosen[m] = labels[best] or graph.kind(cands[best])
        out.set_op(m, Identity())
        out.set_inputs(m, [cands[best]])
    out.remove_unreachable([graph.output_node(), *graph.aux_outputs()])  # the candidates not chosen
    return verify(out), chosen


#: parameter-free unary kinds that still must not be shared: each node draws its own randomness
_RANDOM = frozenset({"dropout"})


def share_pure_ops(graph: Graph) -> tuple[Graph, int]:
    """Common-subexpression elimination of parameter-free unary ops that read the same value.

    In a DARTS cell the candidates of every edge start with their own ReLU (and the edges from
    one state repeat its pooling and ``zero``): 56 ReLUs per cell compute 5 different tensors.
    Sharing them keeps the function (the same inputs give the same outputs: no weights, no
    buffers, no randomness) and saves their time and the memory autograd keeps for them.
    Named nodes are left alone (their names carry meaning, e.g. the cell states). Returns the
    new graph and how many nodes were removed; α keeps its shape and rows.
    """
    out = graph.copy()
    shapes = graph.shapes()
    seen: dict[tuple[str, NodeId], NodeId] = {}
    removed = 0
    for nid in graph.order():
        node = out.node(nid)
        op = node.op
        ins = out.inputs(nid)
        if node.name is not None or len(ins) != 1 or op.kind in _RANDOM or op.is_merge:  # type: ignore[attr-defined]
            continue
        if op.kind in ("input", "aux", "identity"):  # type: ignore[attr-defined]
            continue
        in_shapes = [shapes[i] for i in graph.inputs(nid)]
        if op.param_shapes(in_shapes) or op.buffer_shapes(in_shapes):  # type: ignore[attr-defined]
            continue
        key = (op.model_dump_json(), ins[0])
        if key not in seen:
            seen[key] = nid
            continue
        out.replace_uses(nid, seen[key])
        out.remove(nid)
        removed += 1
    return verify(out), removed


def is_darts_supernet(graph: Graph) -> bool:
    """A supernet whose mixed ops sit in DARTS cells (named ``c<i>_n<k>``) in groups normal/reduce."""
    from genomorph.grammar._cells import find_cells

    groups = {graph.op(m).group for m in mixed_nodes(graph)}  # type: ignore[attr-defined]
    return bool(groups) and groups <= {"normal", "reduce"} and bool(find_cells(graph))


def op_counts(labels: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))


def arch_from_lists(arch: Mapping[str, object]) -> ArchWeights:
    return {g: np.asarray(v, dtype=np.float64) for g, v in arch.items()}


__all__ = [
    "argmax_genome",
    "arch_from_lists",
    "candidate_nodes",
    "is_darts_supernet",
    "mixed_nodes",
    "op_counts",
    "share_pure_ops",
]

"""Reading a DARTS genotype back from a network graph: the inverse of the DARTS builders.

A converted evaluation network is read edge by edge: each edge's op chain is compared with
the chains of the DARTS op table. A supernet is discretised as DARTS' ``Network.genotype()``
does: softmax over each row of architecture weights, then for every node the two incoming
edges whose strongest non-``none`` weight is largest (ties: lower input first), each with its
strongest non-``none`` op.
"""

from __future__ import annotations

import numpy as np
from genomorph.ir import ArchWeights, GenomeSemanticError, Graph, NodeId, OpBase, Shape
from genomorph.ir.ops import Mixed, beta_key
from genomorph.ir.stats import arch_param_shapes

from ._cells import CellNodes, edge_chain, find_cells, strip_identity
from ._darts_ops import OPS
from ._genotype import Edge, Genotype

_HINT = (
    "graph_to_genotype reads networks built by genotype_to_graph or darts_supernet; it finds the "
    "cells by their value names c<i>_s0, c<i>_s1, c<i>_n<k> and c<i>"
)

CellGene = tuple[tuple[Edge, ...], tuple[int, ...]]


def _error(message: str, graph: Graph | None = None, nid: NodeId | None = None) -> GenomeSemanticError:
    span = graph.node(nid).span if graph is not None and nid is not None else None
    return GenomeSemanticError(message, span=span, hint=_HINT)


def _is_reduction(graph: Graph, cell: CellNodes, shapes: dict[NodeId, Shape]) -> bool:
    inputs = [cell.states[k] for k in (0, 1) if k in cell.states]
    if not inputs or cell.output is None:
        raise _error(
            f"cell {cell.index} has no named inputs (c{cell.index}_s0/_s1) or no output c{cell.index}"
        )
    return shapes[cell.output][1] < shapes[inputs[0]][1]


def _match(ops: tuple[OpBase, ...], c: int, stride: int) -> str | None:
    ops = tuple(op for op in ops if op.kind != "stochastic_depth")  # type: ignore[attr-defined]  # drop-path
    for name, build in OPS.items():
        for affine in (True, False):
            if strip_identity(build(c, stride, affine)) == ops:
                return name
    return None


def _concat(graph: Graph, cell: CellNodes, index: dict[NodeId, int]) -> tuple[int, ...]:
    out = cell.output
    assert out is not None
    if graph.kind(out) not in ("concat", "identity"):
        raise _error(f"cell output c{cell.index} is a {graph.kind(out)}, expected concat", graph, out)
    picked = graph.inputs(out)
    if any(nid not in index for nid in picked):
        raise _error(
            f"cell output c{cell.index} concatenates values that are not states of its cell", graph, out
        )
    return tuple(index[nid] for nid in picked)


def _nodes(graph: Graph, cell: CellNodes) -> list[NodeId]:
    steps = sorted(k for k in cell.states if k >= 2)
    if steps != list(range(2, len(steps) + 2)) or not steps:
        raise _error(f"cell {cell.index} has intermediate nodes {steps}, expected c{cell.index}_n2, _n3, ...")
    return [cell.states[k] for k in steps]


def _fixed_cell(graph: Graph, cell: CellNodes, reduction: bool, shapes: dict[NodeId, Shape]) -> CellGene:
    index = {nid: k for k, nid in cell.states.items()}
    edges: list[Edge] = []
    for k, node in enumerate(_nodes(graph, cell), start=2):
        ends = graph.inputs(node)
        if graph.kind(node) != "add" or len(ends) != 2:
            raise _error(f"c{cell.index}_n{k} must be the sum of two edges", graph, node)
        for end in ends:
            j, ops = edge_chain(graph, end, index)
            stride = 2 if reduction and j < 2 else 1
            name = _match(ops, shapes[node][0], stride) if j < k else None
            if name is None:
                chain_text = " ".join(op.kind for op in ops) or "identity"  # type: ignore[attr-defined]
                raise _error(
                    f"the edge from state {j} into c{cell.index}_n{k} ({chain_text}) is not a DARTS operation",
                    graph,
                    end,
                )
            edges.append((name, j))
    return tuple(edges), _concat(graph, cell, index)


def _softmax(row: np.ndarray) -> np.ndarray:
    e = np.exp(row - row.max())
    return e / e.sum()


def _discretise(graph: Graph, cell: CellNodes, arch: ArchWeights | None) -> CellGene:
    """DARTS ``genotype()._parse`` on this cell's rows of the architecture weights."""
    index = {nid: k for k, nid in cell.states.items()}
    edges: list[Edge] = []
    for k, node in enumerate(_nodes(graph, cell), start=2):
        incoming, rows = [], []
        for m in graph.inputs(node) if graph.kind(node) == "add" else [node]:
            op = graph.op(m)
            if not isinstance(op, Mixed):
                raise _error(f"c{cell.index}_n{k} mixes fixed and mixed edges", graph, m)
            j, _ = edge_chain(graph, graph.inputs(m)[0], index)
            if arch is None or op.group not in arch:
                raise GenomeSemanticError(
                    f"discretising a supernet needs architecture weights for group '{op.group}'",
                    hint="pass the ArchWeights of the trained supernet (extract_weights gives them)",
                )
            incoming.append((j, op.labels, _softmax(np.asarray(arch[op.group][op.row], dtype=np.float64))))
            rows.append((j, op.row, beta_key(op.group)))
        incoming.sort(key=lambda item: item[0])
        incoming = _edge_normalised(incoming, sorted(rows), arch)
        strength = []
        for _, labels, w in incoming:
            allowed = [i for i, label in enumerate(labels) if label != "none"]
            strength.append(max(w[i] for i in allowed))
        # sorted() is stable: equal strengths keep the lower input first, as in DARTS
        for e in sorted(range(len(incoming)), key=lambda x: -strength[x])[:2]:
            j, labels, w = incoming[e]
            best = max((i for i, label in enumerate(labels) if label != "none"), key=lambda i: (w[i], -i))
            edges.append((labels[best], j))
    return tuple(edges), _concat(graph, cell, index)


def _edge_normalised(
    incoming: list[tuple[int, tuple[str, ...], np.ndarray]],
    rows: list[tuple[int, int, str]],
    arch: ArchWeights,
) -> list[tuple[int, tuple[str, ...], np.ndarray]]:
    """PC-DARTS' ``genotype()``: with edge parameters β (``{group}_beta``) in ``arch``, each edge's
    op weights are scaled by the softmax of β over the node's incoming edges, so the top-2 choice
    weighs the edges too (the op chosen on an edge is the same either way)."""
    keys = {key for _, _, key in rows}
    if len(keys) != 1 or next(iter(keys)) not in arch:
        return incoming
    beta = np.asarray(arch[keys.pop()], dtype=np.float64)[[row for _, row, _ in rows]]
    return [(j, labels, w * b) for (j, labels, w), b in zip(incoming, _softmax(beta), strict=True)]


def _check_arch(graph: Graph, arch: ArchWeights) -> None:
    for group, shape in arch_param_shapes(graph).items():
        if group in arch and tuple(np.shape(arch[group])) != tuple(shape):
            raise GenomeSemanticError(
                f"architecture weights of group '{group}' have shape {tuple(np.shape(arch[group]))}, "
                f"the supernet has {tuple(shape)} (edges x candidate operations)"
            )


def decode_genotype(graph: Graph, arch: ArchWeights | None = None) -> Genotype:
    """The genotype of a converted DARTS network, or the discretised genotype of a supernet."""
    cells = find_cells(graph)
    if not cells:
        raise _error("the graph has no DARTS cells")
    if arch is not None:
        _check_arch(graph, arch)
    shapes = graph.shapes()
    genes: dict[str, tuple[CellGene, int]] = {}
    for cell in cells.values():
        reduction = _is_reduction(graph, cell, shapes)
        steps = [k for k in cell.states if k >= 2]
        first = cell.states[min(steps)] if steps else None
        # a supernet node sums mixed ops; an evaluation network node sums op chains
        is_mixed = first is not None and any(
            isinstance(graph.op(m), Mixed) for m in [first, *graph.inputs(first)]
        )
        gene = _discretise(graph, cell, arch) if is_mixed else _fixed_cell(graph, cell, reduction, shapes)
        kind = "reduce" if reduction else "normal"
        if kind in genes and genes[kind][0] != gene:
            raise _error(f"cell {cell.index} differs from cell {genes[kind][1]}, another {kind} cell")
        genes.setdefault(kind, (gene, cell.index))
    missing = [kind for kind in ("normal", "reduce") if kind not in genes]
    if missing:
        raise _error(f"the network has no {' or '.join(missing)} cell, so its genotype is incomplete")
    (normal, normal_concat), _ = genes["normal"]
    (reduce, reduce_concat), _ = genes["reduce"]
    return Genotype(normal=normal, normal_concat=normal_concat, reduce=reduce, reduce_concat=reduce_concat)


def graph_to_genotype(graph: Graph, arch: ArchWeights | None = None) -> str:
    """DARTS ``Genotype(...)`` text of a network (see :func:`decode_genotype`)."""
    return decode_genotype(graph, arch).text()

"""Counting passes: parameters, MACs, depth and op histogram, per node and in total."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .ops import EdgeSum, Mixed, Shape

if TYPE_CHECKING:
    from .graph import Graph, NodeId


@dataclass(frozen=True)
class NodeStats:
    id: int
    kind: str
    name: str | None
    out_shape: Shape
    params: int
    macs: int


@dataclass(frozen=True)
class GraphStats:
    input_shape: Shape
    output_shape: Shape
    params: int
    arch_params: int
    macs: int
    depth: int
    histogram: dict[str, int]
    nodes: list[NodeStats] = field(default_factory=list)


def arch_param_shapes(graph: Graph) -> dict[str, Shape]:
    """Shape of each architecture-parameter group: ``(rows, candidates)`` over its mixed ops."""
    rows: dict[str, dict[int, int]] = {}
    for node in graph.nodes():
        if isinstance(node.op, Mixed):
            n = len(graph.inputs(node.id))
            seen = rows.setdefault(node.op.group, {})
            if seen.get(node.op.row, n) != n:
                from .errors import VerifyError

                raise VerifyError(
                    f"{node.describe()}: mixed ops sharing group '{node.op.group}' row {node.op.row} "
                    f"must have the same number of candidates ({seen[node.op.row]} vs {n})",
                    span=node.span,
                )
            seen[node.op.row] = n
    shapes: dict[str, Shape] = {}
    for group, by_row in sorted(rows.items()):
        widths = set(by_row.values())
        if len(widths) != 1 or sorted(by_row) != list(range(len(by_row))):
            from .errors import VerifyError

            raise VerifyError(
                f"architecture group '{group}' must use rows 0..k-1 with equal candidate counts, got rows "
                f"{sorted(by_row)} with counts {sorted(widths)}"
            )
        shapes[group] = (len(by_row), widths.pop())
    shapes.update(_edge_param_shapes(graph, shapes))
    return shapes


def _edge_param_shapes(graph: Graph, alphas: dict[str, Shape]) -> dict[str, Shape]:
    """PC-DARTS' edge parameters: ``{group}_beta`` of shape ``(rows,)`` per group an edge_sum reads."""
    from .errors import VerifyError

    shapes: dict[str, Shape] = {}
    for node in graph.nodes():
        if not isinstance(node.op, EdgeSum):
            continue
        key, rows = node.op.beta_key, alphas.get(node.op.group, (0,))[0]
        last = node.op.first + len(graph.inputs(node.id))
        if last > rows:
            raise VerifyError(
                f"{node.describe()} weights its inputs by rows {node.op.first}..{last - 1} of the edge "
                f"parameters of group '{node.op.group}', which has {rows} mixed rows",
                span=node.span,
                hint="edge_sum's group must be a group of mixed ops, with one row per edge it sums",
            )
        if key in alphas:
            raise VerifyError(
                f"architecture group '{key}' of mixed ops has the name of group '{node.op.group}''s edge parameters",
                span=node.span,
                hint="rename that mixed group",
            )
        shapes[key] = (rows,)
    return shapes


def param_count(graph: Graph, nid: NodeId) -> int:
    ins = graph.input_shapes(nid)
    return sum(math.prod(s) for s in graph.op(nid).param_shapes(ins).values())


def depth(graph: Graph) -> int:
    """Number of weight layers (conv, sep_conv, linear, ...) on the longest input -> output path.

    Batch norm and merges do not count, so ResNet-18 has depth 18, as its name says.
    """
    shapes = graph.shapes()
    best: dict[int, int] = {}
    for nid in graph.order():
        here = 1 if graph.op(nid).macs(graph.input_shapes(nid), shapes[nid]) > 0 else 0
        best[nid] = here + max((best[i] for i in graph.inputs(nid)), default=0)
    return best[graph.output_node()]


def compute_stats(graph: Graph) -> GraphStats:
    shapes = graph.shapes()
    nodes = []
    for node in graph.nodes():
        ins = [shapes[i] for i in graph.inputs(node.id)]
        params = sum(math.prod(s) for s in node.op.param_shapes(ins).values())
        macs = node.op.macs(ins, shapes[node.id])
        nodes.append(NodeStats(node.id, node.kind, node.name, shapes[node.id], params, macs))
    arch = sum(math.prod(s) for s in arch_param_shapes(graph).values())
    return GraphStats(
        input_shape=shapes[graph.input_node()],
        output_shape=shapes[graph.output_node()],
        params=sum(n.params for n in nodes),
        arch_params=arch,
        macs=sum(n.macs for n in nodes),
        depth=depth(graph),
        histogram=graph.histogram(),
        nodes=nodes,
    )

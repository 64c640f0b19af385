"""The genotype α gives now, as op counts per epoch: what a DARTS search's progress bar shows.

The strategy reads the layout off the search-space genome once (`genotype_layout`: per
architecture group, the candidates' labels of every α row and, in DARTS cells, which rows feed
which intermediate node); the worker's architecture step turns α into counts after every epoch
(`op_counts_record`) with the rule the final discretisation uses: in DARTS cells the two incoming
edges of each node whose strongest non-``none`` op is largest, each with that op (the official
``genotype()``); elsewhere the strongest non-``none`` candidate of every row. The counts go into
the epoch record as ``ops.<group>.<label>`` floats (records hold numbers only), and the CLI
prints them as ``normal sep3×5 skip×2 max×1  reduce ...`` (`format_op_counts`).

PC-DARTS' edge weights β are not applied here: the op chosen on each edge is the same, only the
top-2 choice of edges may differ from the final genotype.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from genomorph.ir import Graph
from genomorph.ir.ops import Mixed

from ._darts_options import GenotypeLayout

PREFIX = "ops."
NONE_LABELS = frozenset({"none", "zero"})

#: short names of the DARTS candidates for the progress line
SHORT: dict[str, str] = {
    "none": "none",
    "max_pool_3x3": "max",
    "avg_pool_3x3": "avg",
    "skip_connect": "skip",
    "sep_conv_3x3": "sep3",
    "sep_conv_5x5": "sep5",
    "sep_conv_7x7": "sep7",
    "dil_conv_3x3": "dil3",
    "dil_conv_5x5": "dil5",
    "conv_7x1_1x7": "c7x1",
}


def genotype_layout(graph: Graph) -> GenotypeLayout:
    """Labels per α row of every group and, for DARTS cells, the rows into each node (one cell per group)."""
    from genomorph.grammar._cells import edge_chain, find_cells

    labels: dict[str, dict[int, tuple[str, ...]]] = {}
    for nid in graph.order():
        op = graph.op(nid)
        if isinstance(op, Mixed):
            names = op.labels or tuple(graph.kind(c) for c in graph.inputs(nid))
            labels.setdefault(op.group, {})[op.row] = tuple(names)
    nodes: dict[str, tuple[tuple[int, ...], ...]] = {}
    groups = set(labels)
    if groups and groups <= {"normal", "reduce"}:
        for cell in find_cells(graph).values():
            index = {n: k for k, n in cell.states.items()}
            steps = sorted(k for k in cell.states if k >= 2)
            found: list[tuple[int, ...]] = []
            group = None
            for k in steps:
                node = cell.states[k]
                edges = graph.inputs(node) if graph.kind(node) == "add" else [node]
                mixed = [m for m in edges if isinstance(graph.op(m), Mixed)]
                if len(mixed) != len(edges) or not mixed:
                    found = []
                    break
                group = graph.op(mixed[0]).group  # type: ignore[attr-defined]
                ordered = sorted(mixed, key=lambda m: edge_chain(graph, graph.inputs(m)[0], index)[0])
                found.append(tuple(graph.op(m).row for m in ordered))  # type: ignore[attr-defined]
            if found and group is not None and group not in nodes:
                nodes[group] = tuple(found)
    return GenotypeLayout(
        labels={g: tuple(rows[r] for r in sorted(rows)) for g, rows in labels.items()}, nodes=nodes
    )


def _softmax(row: np.ndarray) -> np.ndarray:
    e = np.exp(row - row.max())
    return e / e.sum()


def _best(weights: np.ndarray, labels: Sequence[str]) -> tuple[int, float]:
    allowed = [i for i, label in enumerate(labels) if label not in NONE_LABELS] or list(range(len(labels)))
    best = max(allowed, key=lambda i: (weights[i], -i))
    return best, float(weights[best])


def current_op_counts(arch: Mapping[str, object], layout: GenotypeLayout) -> dict[str, dict[str, int]]:
    """Group -> label -> how often the genotype of ``arch`` (α per group, rows x candidates) uses it."""
    out: dict[str, dict[str, int]] = {}
    for group, row_labels in layout.labels.items():
        if group not in arch:
            continue
        alpha = np.asarray(arch[group], dtype=np.float64)
        choices = [_best(_softmax(alpha[r]), row_labels[r]) for r in range(min(len(alpha), len(row_labels)))]
        kept: list[int] = []
        if group in layout.nodes:
            for rows in layout.nodes[group]:
                # sorted() is stable: equal strengths keep the lower input first, as in DARTS
                kept.extend(sorted(rows, key=lambda r: -choices[r][1])[:2])
        else:
            kept = list(range(len(choices)))
        counts: dict[str, int] = {}
        for r in kept:
            label = row_labels[r][choices[r][0]]
            counts[label] = counts.get(label, 0) + 1
        out[group] = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    return out


def op_counts_record(arch: Mapping[str, object], layout: GenotypeLayout) -> dict[str, float]:
    """The counts as epoch-record entries ``ops.<group>.<label>``."""
    return {
        f"{PREFIX}{group}.{label}": float(n)
        for group, counts in current_op_counts(arch, layout).items()
        for label, n in counts.items()
    }


def format_op_counts(record: Mapping[str, float]) -> str:
    """``normal sep3×5 skip×2 max×1  reduce max×6 skip×2`` from an epoch record ('' without counts)."""
    groups: dict[str, list[tuple[str, int]]] = {}
    for key, value in record.items():
        if key.startswith(PREFIX) and "." in key[len(PREFIX) :]:
            group, label = key[len(PREFIX) :].split(".", 1)
            groups.setdefault(group, []).append((label, int(value)))
    parts = []
    for group, counts in groups.items():
        counts.sort(key=lambda item: (-item[1], item[0]))
        ops = " ".join(f"{SHORT.get(label, label)}×{n}" for label, n in counts)
        parts.append(ops if len(groups) == 1 else f"{group} {ops}")
    return "  ".join(parts)


__all__ = ["current_op_counts", "format_op_counts", "genotype_layout", "op_counts_record"]

"""Report views of DARTS / hyperDARTS runs: ``alphas.json`` and two pictures of α.

- ``alphas.json``: α of the chosen search after every epoch (``{"epochs": [{group: rows}, ...]}``,
  entry 0 is the initial α), plus the candidate labels per group; a PC-DARTS search also has
  its edge parameters β there, one list per group under ``{group}_beta``;
- ``alphas_heatmap.png``: the final softmax(α), one panel per group, edges x candidate ops;
- ``alphas_epochs.png``: per group, the softmax weight of every candidate op averaged over the
  edges, epoch by epoch (how the search drifted, e.g. towards skip connections).

Torch-free at import (numpy and matplotlib), as `report.register_plot` asks.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from genomorph.search.core.files import write_text
from genomorph.search.runtime.report import ReportContext, new_figure, register_plot, save_figure

HEATMAP = "alphas_heatmap.png"
EPOCHS = "alphas_epochs.png"
ALPHAS = "alphas.json"


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _labels(genome: str) -> dict[str, list[str]]:
    """Candidate labels per group (from the first mixed op of each group)."""
    from genomorph.grammar import parse
    from genomorph.ir.ops import Mixed

    graph = parse(genome, source_name="<search space>")
    out: dict[str, list[str]] = {}
    for nid in graph.order():
        op = graph.op(nid)
        if isinstance(op, Mixed) and op.group not in out:
            out[op.group] = list(op.labels) or [graph.kind(c) for c in graph.inputs(nid)]
    return out


def _chosen(context: ReportContext) -> tuple[list[dict[str, Any]], str] | None:
    summary = context.strategy.summary()
    path = summary.get("alphas_file")
    if not isinstance(path, str):
        return None
    source = context.run_dir / path
    if not source.is_file():
        return None
    epochs = json.loads(source.read_text())["epochs"]
    genome = context.strategy.space  # type: ignore[attr-defined]
    return epochs, genome


def plot_alphas(context: ReportContext) -> list[str]:
    found = _chosen(context)
    if found is None:
        return []
    epochs, genome = found
    labels = _labels(genome)
    write_text(context.run_dir / ALPHAS, json.dumps({"labels": labels, "epochs": epochs}) + "\n")
    # α groups are (edges, candidates); PC-DARTS' edge parameters β (1-D) stay in alphas.json only
    groups = [g for g, rows in epochs[-1].items() if np.ndim(rows) == 2]
    if not groups:
        return []
    # heat map of the final softmax(α)
    figure = new_figure(4.0 + 3.2 * len(groups), 5.0)
    for k, group in enumerate(groups):
        weights = _softmax(np.asarray(epochs[-1][group], dtype=np.float64))
        ax = figure.add_subplot(1, len(groups), k + 1)
        image = ax.imshow(weights, aspect="auto", cmap="viridis")
        names = labels.get(group, [str(i) for i in range(weights.shape[1])])
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(weights.shape[0]))
        ax.set_ylabel("edge (row)")
        ax.set_title(f"softmax(α) {group}")
        figure.colorbar(image, ax=ax, fraction=0.046)
    save_figure(figure, context.run_dir / HEATMAP)
    # mean weight per op over the edges, epoch by epoch
    figure = new_figure(4.0 + 3.2 * len(groups), 4.5)
    for k, group in enumerate(groups):
        series = np.stack([_softmax(np.asarray(e[group], dtype=np.float64)).mean(axis=0) for e in epochs])
        ax = figure.add_subplot(1, len(groups), k + 1)
        names = labels.get(group, [str(i) for i in range(series.shape[1])])
        for i, name in enumerate(names):
            ax.plot(range(len(series)), series[:, i], label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean softmax(α) over edges")
        ax.set_title(f"α over epochs: {group}")
        ax.legend(fontsize=6)
    save_figure(figure, context.run_dir / EPOCHS)
    return [HEATMAP, EPOCHS]


register_plot("darts")(plot_alphas)
register_plot("hyperdarts")(plot_alphas)

__all__ = ["ALPHAS", "EPOCHS", "HEATMAP", "plot_alphas"]

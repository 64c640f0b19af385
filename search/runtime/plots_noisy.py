"""The noisy strategy's pictures, from the iterations its state records (paper 000 Fig. 9).

- ``noisy_progress.png``: parameters and score against training epochs, with the meta-parameters
  of each iteration underneath (neurons to add, add-to-remove ratio, learning rate, max epochs);
- ``noisy_accuracy_vs_params.png``: the score of every saved iteration against its parameters,
  joined in iteration order;
- for 2-D inputs, ``decision_boundary.png`` (classification) or ``fitted_surface.png``
  (regression) of the answer network, with the training points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from genomorph.search.runtime.report import ReportContext, register_plot

META_PANELS = (
    ("neurons_to_add", "neurons to add"),
    ("add_to_remove_ratio", "add/remove ratio"),
    ("lr", "learning rate"),
    ("max_epochs", "max epochs"),
)


def _figure(height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: Path) -> None:
    import io

    from genomorph.search.core.files import atomic_write

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def _score(row: dict[str, Any], classification: bool) -> tuple[float | None, float | None]:
    if classification:
        return row.get("train_accuracy"), row.get("val_accuracy")
    return row.get("train_r2"), row.get("val_r2")


def plot_progress(rows: list[dict[str, Any]], classification: bool, title: str, path: Path) -> None:
    figure = _figure(7.5)
    grid = figure.add_gridspec(1 + len(META_PANELS), 1, height_ratios=[3] + [1] * len(META_PANELS))
    top = figure.add_subplot(grid[0])
    epochs = [r["total_epochs"] for r in rows]
    label = "accuracy" if classification else "R²"
    train = [_score(r, classification)[0] for r in rows]
    val = [_score(r, classification)[1] for r in rows]
    top.plot(
        epochs, [np.nan if v is None else v for v in train], "o-", color="tab:blue", label=f"train {label}"
    )
    top.plot(epochs, [np.nan if v is None else v for v in val], "s--", color="tab:cyan", label=f"val {label}")
    top.set_ylabel(label)
    top.grid(alpha=0.3)
    right = top.twinx()
    right.plot(epochs, [r["params"] for r in rows], "^-", color="tab:red", label="parameters")
    right.set_ylabel("parameters", color="tab:red")
    lines = top.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    top.legend(lines, [line.get_label() for line in lines], loc="lower right", fontsize=8)
    top.set_title(title)
    for i, (key, name) in enumerate(META_PANELS, start=1):
        ax = figure.add_subplot(grid[i], sharex=top)
        values = [r["meta"].get(key) for r in rows]
        ax.step(epochs, [np.nan if v is None else v for v in values], where="pre", color="tab:gray")
        ax.set_ylabel(name, fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    ax.set_xlabel("training epochs")
    _save(figure, path)


def plot_accuracy_vs_params(rows: list[dict[str, Any]], classification: bool, title: str, path: Path) -> None:
    figure = _figure(4.5)
    ax = figure.add_subplot(1, 1, 1)
    params = [r["params"] for r in rows]
    val = [_score(r, classification)[1] for r in rows]
    ax.plot(params, [np.nan if v is None else v for v in val], "o-", alpha=0.7)
    for r, x, y in zip(rows, params, val, strict=True):
        if y is not None:
            ax.annotate(str(r["iteration"]), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    scored = [r for r, y in zip(rows, val, strict=True) if y is not None]
    if scored:  # the answer: best validation score, then training fit, fewer parameters (as the strategy)
        best = max(scored, key=lambda r: (r["objective"], _score(r, classification)[0] or 0.0, -r["params"]))
        ax.scatter([best["params"]], [_score(best, classification)[1]], marker="*", s=220, color="tab:red",
                   zorder=5, label=f"answer (iteration {best['iteration']})")  # fmt: skip
        ax.legend(loc="lower right")
    ax.set_xlabel("parameters")
    ax.set_ylabel("validation accuracy" if classification else "validation R²")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _save(figure, path)


def plot_surface(genome: str, checkpoint: Path, data: Any, path: Path) -> None:
    """Decision boundary (classes) or fitted surface (regression) of a 2-D-input network."""
    import torch
    from genomorph.grammar import parse
    from genomorph.lower import lower
    from genomorph.search.runtime.checkpoint import load_checkpoint

    weights, arch, _ = load_checkpoint(checkpoint)
    module = lower(parse(genome), weights, arch).eval()
    x = data.train.x.float().numpy()
    lo, hi = x.min(0) - 0.1, x.max(0) + 0.1
    a, b = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = torch.from_numpy(np.stack([a.ravel(), b.ravel()], 1).astype(np.float32))
    with torch.no_grad():
        out = module(data.normalise(grid))
        out = out[0] if isinstance(out, tuple) else out
    figure = _figure(5.5)
    ax = figure.add_subplot(1, 1, 1)
    y = data.train.y.numpy()
    if data.info.task == "classification":
        ax.contourf(a, b, out.argmax(1).numpy().reshape(a.shape), alpha=0.3, cmap="coolwarm")
        ax.scatter(x[:, 0], x[:, 1], c=y, s=6, cmap="coolwarm", edgecolors="none")
        ax.set_title("decision boundary of the answer network (training points)")
    else:
        surface = ax.contourf(a, b, out[:, 0].numpy().reshape(a.shape), levels=30, cmap="viridis")
        figure.colorbar(surface, ax=ax)
        ax.scatter(x[:, 0], x[:, 1], c=y.reshape(-1), s=4, cmap="viridis", edgecolors="k", linewidths=0.1)
        ax.set_title("fitted surface of the answer network (training points)")
    ax.set_aspect("equal")
    _save(figure, path)


@register_plot("noisy")
def noisy_plots(context: ReportContext) -> list[str]:
    return write_noisy_plots(context.store, context.best)


def write_noisy_plots(store: Any, best: Any) -> list[str]:
    """Every picture above into the run directory; returns the file names written."""
    from genomorph.search.core.config import DataConfig
    from genomorph.search.runtime.data import cached_dataset

    state = store.strategy_state() or {}
    rows = list(state.get("records", []))
    config = store.get("config") or {}
    task = config.get("setup", {}).get("dataset", {}).get("task", "classification")
    classification = task == "classification"
    name = config.get("setup", {}).get("dataset", {}).get("name", "?")
    root = Path(store.run_dir)
    written = []
    if rows:
        plot_progress(
            rows, classification, f"noisy on {name}: {len(rows)} iterations", root / "noisy_progress.png"
        )
        plot_accuracy_vs_params(
            rows, classification, f"noisy on {name}", root / "noisy_accuracy_vs_params.png"
        )
        written += ["noisy_progress.png", "noisy_accuracy_vs_params.png"]
    shape = tuple(config.get("setup", {}).get("dataset", {}).get("input_shape", ()))
    if shape == (2,) and best is not None and best.checkpoint:
        data = cached_dataset(DataConfig.model_validate(config["data"]))
        picture = "decision_boundary.png" if classification else "fitted_surface.png"
        plot_surface(best.genome, root / best.checkpoint, data, root / picture)
        written.append(picture)
    return written


__all__ = ["noisy_plots", "plot_accuracy_vs_params", "plot_progress", "plot_surface", "write_noisy_plots"]

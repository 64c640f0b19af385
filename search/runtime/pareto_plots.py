"""Plots of a Pareto-NASH run (paper 002 Figures 3 and 4), drawn from the run store.

- ``front_generations.png``: validation error against parameters; every evaluated network in
  grey, the front after each generation as a staircase coloured by generation (the start
  front first, the last generation brightest);
- ``hypervolume.png``: the front's hypervolume after each generation (0 = the start front),
  against the reference point the run fixed from its start networks.

Both read the strategy's state (restored from the store, so an interrupted run plots too)
and the candidates' metrics; nothing is trained or evaluated here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genomorph.search.core.store import Candidate
from genomorph.search.runtime.report import ReportContext, new_figure, register_plot, save_figure

PARETO_PLOTS = ("front_generations.png", "hypervolume.png")


def _staircase(points: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """x/y of a minimisation front's staircase through ``(params, error)`` points."""
    points = sorted(points)
    xs, ys = [], []
    for x, y in points:
        if xs:
            xs.append(x)
            ys.append(ys[-1])
        xs.append(x)
        ys.append(y)
    return xs, ys


def front_ids_per_generation(strategy: Any, candidates: list[Candidate]) -> list[tuple[int, list[int]]]:
    """(generation, front member ids) for the start front (0) and every finished generation."""
    from genomorph.search.strategies._pareto import nondominated

    state = strategy.state
    start = [p for p in state.evaluated if p.id < len(strategy.starts)]
    out = [(0, [start[i].id for i in nondominated([p.values for p in start])])] if start else []
    out += [(int(h["generation"]), list(h["front"])) for h in state.history if "front" in h]
    return out


def plot_front_generations(strategy: Any, candidates: list[Candidate], title: str, path: Path) -> None:
    from matplotlib import colormaps

    by_id = {c.id: c for c in candidates if c.status == "finished" and c.metrics is not None}
    figure = new_figure()
    ax = figure.add_subplot(1, 1, 1)
    evaluated = [c for c in by_id.values() if c.request.budget.train_on == "train"]
    if evaluated:
        ax.scatter(
            [c.metrics.params for c in evaluated],  # type: ignore[union-attr]
            [1.0 - c.metrics.objective for c in evaluated],  # type: ignore[union-attr]
            s=12, color="0.7", label="evaluated", zorder=1,
        )  # fmt: skip
    fronts = front_ids_per_generation(strategy, candidates)
    cmap = colormaps["viridis"]
    last = max((g for g, _ in fronts), default=0) or 1
    for generation, ids in fronts:
        pts = [(float(by_id[i].metrics.params), 1.0 - by_id[i].metrics.objective) for i in ids if i in by_id]  # type: ignore[union-attr]
        if not pts:
            continue
        xs, ys = _staircase(pts)
        colour = cmap(generation / last)
        label = (
            "start front" if generation == 0 else (f"generation {generation}" if generation == last else None)
        )
        ax.plot(xs, ys, color=colour, linewidth=1.2, zorder=2, label=label)
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=colour, s=22, zorder=3)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("validation error")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if fronts:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        figure.colorbar(ScalarMappable(Normalize(0, last), cmap), ax=ax, label="generation")
        ax.legend(loc="best")
    save_figure(figure, path)


def plot_hypervolume(strategy: Any, title: str, path: Path) -> None:
    summary = strategy.summary()
    values = [summary["hypervolume_start"], *summary["hypervolume"]]
    points = [(g, v) for g, v in enumerate(values) if v is not None]
    figure = new_figure()
    ax = figure.add_subplot(1, 1, 1)
    if points:
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o")
    reference = summary.get("reference_point") or {}
    ax.set_xlabel("generation (0 = start front)")
    ax.set_ylabel("hypervolume")
    ref_text = ", ".join(f"{k} {v:.3g}" for k, v in reference.items())
    ax.set_title(f"{title}\nreference point: {ref_text}" if ref_text else title, fontsize=10)
    ax.grid(alpha=0.3)
    save_figure(figure, path)


@register_plot("pareto-nash")
def write_pareto_plots(context: ReportContext) -> list[str]:
    """Both plots into the run directory; returns their file names."""
    title = f"{context.summary.strategy} on {context.summary.dataset}"
    plot_front_generations(context.strategy, context.candidates, title, context.run_dir / PARETO_PLOTS[0])
    plot_hypervolume(context.strategy, title, context.run_dir / PARETO_PLOTS[1])
    return list(PARETO_PLOTS)


__all__ = ["PARETO_PLOTS", "front_ids_per_generation", "plot_front_generations", "plot_hypervolume",
           "write_pareto_plots"]  # fmt: skip

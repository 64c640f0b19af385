"""The picture of an SH / SHR / SHRsep run (paper 001 Figure 4), drawn from the run store.

``halving.png``: validation accuracy of every child after each rung against the epochs the
step has trained so far, one line per child (a survivor's line goes on into the next rung, a
discarded child's line stops), the winner of each step starred. Steps follow one another
along the x axis, so the picture reads as the whole search.
"""

from __future__ import annotations

from genomorph.search.runtime.report import ReportContext, new_figure, register_plot, save_figure

HALVING_PLOT = "halving.png"


def halving_points(context: ReportContext) -> list[dict]:
    """Per step: ``{"step", "points": {id: (x, accuracy)}, "parents": {id: parent}, "winner"}``."""
    by_id = {c.id: c for c in context.candidates if c.status == "finished" and c.metrics is not None}
    steps, offset = [], 0.0
    for record in context.strategy.state.history:
        rungs = record.get("rungs")
        if not rungs:
            continue
        points: dict[int, tuple[float, float]] = {}
        elapsed = 0.0
        for rung in rungs:
            elapsed += rung["epochs"]
            for cid in rung["trained"]:
                if cid in by_id:
                    points[cid] = (offset + elapsed, by_id[cid].metrics.objective)  # type: ignore[union-attr]
        parents = {cid: by_id[cid].parent for cid in points}
        steps.append(
            {"step": record["step"], "points": points, "parents": parents, "winner": record.get("winner")}
        )
        offset += elapsed
    return steps


@register_plot("sh")
@register_plot("shr")
@register_plot("shrsep")
def plot_halving(context: ReportContext) -> list[str]:
    figure = new_figure()
    ax = figure.add_subplot(1, 1, 1)
    steps = halving_points(context)
    for index, step in enumerate(steps):
        colour = f"C{index % 10}"
        points, parents = step["points"], step["parents"]
        for cid, (x, y) in points.items():
            parent = parents.get(cid)
            if parent in points:  # a survivor: continue its parent's line
                px, py = points[parent]
                ax.plot([px, x], [py, y], color=colour, linewidth=1, alpha=0.8)
        ax.scatter([p[0] for p in points.values()], [p[1] for p in points.values()], s=12, color=colour,
                   label=f"step {step['step']}")  # fmt: skip
        winner = step["winner"]
        if winner in points:
            ax.scatter([points[winner][0]], [points[winner][1]], marker="*", s=160, color=colour,
                       edgecolor="black", zorder=5)  # fmt: skip
    ax.set_xlabel("epochs of the search steps (each rung and the winner's extra training)")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"{context.summary.strategy} on {context.summary.dataset}: successive halving per step")
    ax.grid(alpha=0.3)
    if steps:
        ax.legend(loc="lower right")
    save_figure(figure, context.run_dir / HALVING_PLOT)
    return [HALVING_PLOT]


__all__ = ["HALVING_PLOT", "halving_points", "plot_halving"]

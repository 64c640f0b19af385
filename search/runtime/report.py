"""What a run directory ends with: summary.json, best.genome and PNG plots, all from the store.

- ``summary.json``: strategy, dataset, best genome and its validation/test scores, parameters,
  candidate counts and where the time went (wall, training, evaluation, everything else);
- ``best.genome``: the answer's genome text;
- ``accuracy_vs_params.png``: validation score against parameters for every finished candidate,
  the Pareto front (fewer parameters, higher score) and the best marked;
- ``progress.png``: every candidate's score over run time and the best so far;
- for a multi-result search (``Strategy.front()``): ``front.json``, ``front/cNNNNN.genome``,
  ``front.png`` and a ``front`` list in ``summary.json`` (`report_front`);
- the strategy's own keys in ``summary.json`` (``Strategy.summary()``) and its own plots,
  registered per strategy name with `register_plot`.

The strategy hooks are called on a strategy rebuilt from the run's stored config and state
(`restore_strategy`), so a report of an interrupted or finished run sees what the run saw.

The answer is the candidate the strategy named (``result_candidate``, e.g. the winner after its
final training), or else the finished candidate with the best validation objective. When the
answer has no test score yet, the report evaluates its checkpoint on the test split (no
training; the test split is never used to choose anything).
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genomorph.ir import GenomorphError
from genomorph.search.core.files import atomic_write
from genomorph.search.core.protocol import JSON, Strategy
from genomorph.search.core.store import Candidate, RunStore
from pydantic import BaseModel, ConfigDict

from .report_front import FRONT_PLOT, FrontEntry, plot_front, write_front

logger = logging.getLogger(__name__)

#: the plots every run gets
PLOTS = ("accuracy_vs_params.png", "progress.png")


class Summary(BaseModel):
    """What ``summary.json`` holds. A strategy's own keys (``Strategy.summary()``) come on top
    level beside these (extra fields)."""

    model_config = ConfigDict(extra="allow")

    strategy: str
    dataset: str
    task: str
    status: str
    seed: int
    best_candidate: int | None
    best_genome: str | None
    best_objective: float | None
    best_val_accuracy: float | None
    test_accuracy: float | None
    test_r2: float | None = None
    test_measured_by: str | None = None
    """``candidate`` (its own final evaluation) or ``report`` (checkpoint evaluated here)."""
    params: int | None
    macs: int | None
    candidates_total: int
    candidates_finished: int
    candidates_failed: int
    wall_s: float
    train_s: float
    eval_s: float
    setup_s: float
    executor: str
    workers: int
    front: list[FrontEntry] | None = None
    """A multi-result search's front (``Strategy.front()``): candidate, objectives, genome file."""
    plots: list[str] = []
    """The PNG files of this report, relative to the run directory."""


def _searched(c: Candidate) -> bool:
    """Finished and validated (final trainings on train+val have no honest validation score)."""
    return c.status == "finished" and c.metrics is not None and c.request.budget.train_on == "train"


def choose_best(store: RunStore, candidates: list[Candidate]) -> Candidate | None:
    by_id = {c.id: c for c in candidates}
    named = store.get("result_candidate")
    if named is not None and named in by_id and by_id[named].status == "finished":
        return by_id[named]
    searched = [c for c in candidates if _searched(c)]
    if not searched:
        return None
    # best objective; among equals the smaller network, then the earlier candidate
    return max(searched, key=lambda c: (c.metrics.objective, -c.metrics.params, -c.id))  # type: ignore[union-attr]


def _validated_score(best: Candidate, candidates: list[Candidate]) -> Candidate | None:
    """The candidate holding ``best``'s validation score: itself, or the ancestor it was retrained from."""
    by_id = {c.id: c for c in candidates}
    node: Candidate | None = best
    while node is not None:
        if _searched(node) and node.genome == best.genome:
            return node
        node = by_id.get(node.parent) if node.parent is not None else None
    same = [c for c in candidates if _searched(c) and c.genome == best.genome]
    return max(same, key=lambda c: c.metrics.objective) if same else None  # type: ignore[union-attr]


def pareto_front(points: list[tuple[int, float, int]]) -> list[tuple[int, float, int]]:
    """Non-dominated ``(params, score, id)`` points: no other has fewer params and a higher score."""
    front: list[tuple[int, float, int]] = []
    for params, score, cid in sorted(points, key=lambda p: (p[0], -p[1], p[2])):
        if not front or score > front[-1][1]:
            front.append((params, score, cid))
    return front


def _test_metrics(store: RunStore, best: Candidate) -> dict[str, float]:
    """Evaluate the best checkpoint on the test split (no training)."""
    import torch
    from genomorph.grammar import parse
    from genomorph.lower import lower
    from genomorph.search.core.config import DataConfig, TrainConfig
    from genomorph.search.runtime.checkpoint import load_checkpoint
    from genomorph.search.runtime.data import cached_dataset
    from genomorph.search.runtime.trainer import evaluate_split

    config = store.get("config")
    data = cached_dataset(DataConfig.model_validate(config["data"]))
    train = TrainConfig.model_validate(config["train"])
    # the run may have trained on a GPU this machine lacks: the report then evaluates on the CPU
    device = torch.device("cuda" if train.device != "cpu" and torch.cuda.is_available() else "cpu")
    weights, arch, _ = load_checkpoint(store.run_dir / str(best.checkpoint))
    module = lower(parse(best.genome), weights, arch).to(device)
    return evaluate_split(module, data, data.test, device, train.eval_batch_size)


def summarize(
    store: RunStore, *, measure_test: bool = True
) -> tuple[Summary, list[Candidate], Candidate | None]:
    config = store.get("config") or {}
    candidates = store.candidates()
    best = choose_best(store, candidates)
    validated = _validated_score(best, candidates) if best is not None else None
    metrics = best.metrics if best is not None else None
    test_accuracy = metrics.test_accuracy if metrics else None
    test_r2 = metrics.test_r2 if metrics else None
    measured_by = "candidate" if (test_accuracy is not None or test_r2 is not None) else None
    if measured_by is None and best is not None and best.checkpoint and measure_test:
        test = _test_metrics(store, best)
        test_accuracy, test_r2, measured_by = test.get("accuracy"), test.get("r2"), "report"
    setup = config.get("setup", {})
    summary = Summary(
        strategy=config.get("strategy", "?"),
        dataset=setup.get("dataset", {}).get("name", "?"),
        task=setup.get("dataset", {}).get("task", "?"),
        status=str(store.get("status", "?")),
        seed=int(setup.get("seed", 0)),
        best_candidate=best.id if best else None,
        best_genome=best.genome if best else None,
        best_objective=validated.metrics.objective if validated and validated.metrics else None,
        best_val_accuracy=validated.metrics.val_accuracy if validated and validated.metrics else None,
        test_accuracy=test_accuracy,
        test_r2=test_r2,
        test_measured_by=measured_by,
        params=metrics.params if metrics else None,
        macs=metrics.macs if metrics else None,
        candidates_total=len(candidates),
        candidates_finished=sum(c.status == "finished" for c in candidates),
        candidates_failed=sum(c.status == "failed" for c in candidates),
        wall_s=round(
            store.elapsed() if store.get("status") == "running" else float(store.get("elapsed_s", 0.0)), 3
        ),
        train_s=round(sum(c.train_s or 0.0 for c in candidates), 3),
        eval_s=round(sum(c.eval_s or 0.0 for c in candidates), 3),
        setup_s=round(sum(c.setup_s or 0.0 for c in candidates), 3),
        executor=config.get("executor", "?"),
        workers=int(config.get("workers", 1)),
    )
    return summary, candidates, best


# --------------------------------------------------------------------------- plots
def prewarm() -> threading.Thread:
    """Import matplotlib in a background thread while a search trains (torch releases the GIL
    in its kernels), so the report at the end does not add its import time to the run."""

    def load() -> None:
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401

    thread = threading.Thread(target=load, name="genomorph-report-prewarm", daemon=True)
    thread.start()
    return thread


def _figure(width: float = 7, height: float = 4.5) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)  # the Agg canvas: no display, no pyplot global state
    return figure


def _save(figure: Any, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def _score_label(summary: Summary) -> str:
    return "validation accuracy" if summary.task == "classification" else "validation R²"


def plot_accuracy_vs_params(
    summary: Summary, candidates: list[Candidate], best: Candidate | None, path: Path
) -> None:
    figure = _figure()
    ax = figure.add_subplot(1, 1, 1)
    points = [(c.metrics.params, c.metrics.objective, c.id) for c in candidates if _searched(c)]  # type: ignore[union-attr]
    if points:
        ax.scatter([p[0] for p in points], [p[1] for p in points], s=18, alpha=0.6, label="candidates")
        front = pareto_front(points)
        # carry the front's last level to the largest network so the staircase spans the plot
        xs = [p[0] for p in front] + [max(p[0] for p in points)]
        ys = [p[1] for p in front] + [front[-1][1]]
        ax.step(xs, ys, where="post", color="tab:green", label="Pareto front")
    if best is not None and best.metrics is not None:
        validated = _validated_score(best, candidates)
        score = validated.metrics.objective if validated and validated.metrics else best.metrics.objective
        ax.scatter([best.metrics.params], [score], marker="*", s=220, color="tab:red", zorder=5, label="best")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel(_score_label(summary))
    ax.set_title(f"{summary.strategy} on {summary.dataset}: {len(points)} candidates")
    ax.grid(alpha=0.3)
    if points:
        ax.legend(loc="best")
    _save(figure, path)


def plot_progress(summary: Summary, candidates: list[Candidate], path: Path) -> None:
    figure = _figure()
    ax = figure.add_subplot(1, 1, 1)
    done = sorted(
        (c for c in candidates if _searched(c) and c.finished_s is not None), key=lambda c: c.finished_s
    )
    times = [c.finished_s for c in done]
    scores = [c.metrics.objective for c in done]  # type: ignore[union-attr]
    if done:
        running, best_so_far = float("-inf"), []
        for s in scores:
            running = max(running, s)
            best_so_far.append(running)
        ax.scatter(times, scores, s=14, alpha=0.4, label="candidate")
        ax.step(times, best_so_far, where="post", color="tab:red", label="best so far")
        ax.legend(loc="best")
    failed = [c.finished_s for c in candidates if c.status == "failed" and c.finished_s is not None]
    if failed and done:
        ax.scatter(failed, [min(scores)] * len(failed), marker="x", color="gray", label="failed")
    ax.set_xlabel("run time (s)")
    ax.set_ylabel(_score_label(summary))
    ax.set_title(f"progress of {summary.strategy} on {summary.dataset}")
    ax.grid(alpha=0.3)
    _save(figure, path)


# --------------------------------------------------------------------------- strategy hooks
@dataclass(frozen=True)
class ReportContext:
    """What a per-strategy plot function gets."""

    store: RunStore
    summary: Summary
    candidates: list[Candidate]
    best: Candidate | None
    strategy: Strategy
    """The strategy rebuilt from the run's stored config and state."""

    @property
    def run_dir(self) -> Path:
        return self.store.run_dir


#: a per-strategy plot: draws from the report context, returns the files it wrote (relative names)
PlotFunction = Callable[[ReportContext], list[str]]
_PLOTTERS: dict[str, list[PlotFunction]] = {}
#: modules that register the plots of built-in strategies, imported when a run of theirs is reported
#: (strategy name -> module); a plug-in strategy registers its plots when its own module is imported
PLOT_MODULES: dict[str, str] = {
    "darts": "genomorph.search.runtime.darts_report",
    "hyperdarts": "genomorph.search.runtime.darts_report",
    "noisy": "genomorph.search.runtime.plots_noisy",
    "pareto-nash": "genomorph.search.runtime.pareto_plots",
    "sh": "genomorph.search.runtime.halving_plots",
    "shr": "genomorph.search.runtime.halving_plots",
    "shrsep": "genomorph.search.runtime.halving_plots",
}


def register_plot(strategy: str) -> Callable[[PlotFunction], PlotFunction]:
    """Decorator: ``function(context) -> [file names]`` draws extra plots for runs of ``strategy``.

    ```python
    @register_plot("pareto-nash")
    def plot_hypervolume(context: ReportContext) -> list[str]:
        figure = new_figure()
        ...
        save_figure(figure, context.run_dir / "hypervolume.png")
        return ["hypervolume.png"]
    ```

    Put the function in a torch-free-at-import module of ``search/runtime`` and name that module
    in `PLOT_MODULES`; a failing plot is logged and skipped, never fails the report.
    """

    def register(function: PlotFunction) -> PlotFunction:
        if function not in _PLOTTERS.setdefault(strategy, []):
            _PLOTTERS[strategy].append(function)
        return function

    return register


def plotters(strategy: Strategy) -> list[PlotFunction]:
    """The plot functions registered for a strategy (by its name), importing their module."""
    module = PLOT_MODULES.get(strategy.name)
    if module is not None:
        try:
            importlib.import_module(module)
        except ImportError as err:  # the extra pictures are lost, not the report
            logger.warning("plots of strategy %s unavailable: %s", strategy.name, err)
    return list(_PLOTTERS.get(strategy.name, []))


def restore_strategy(store: RunStore) -> Strategy | None:
    """The run's strategy rebuilt from its stored config and state; ``None`` (logged) if it cannot be."""
    from genomorph.search.core.driver import RunConfig, build_strategy

    try:
        strategy = build_strategy(RunConfig.model_validate(store.get("config")))
        strategy.load_state(store.strategy_state())
    except (GenomorphError, ValueError) as err:
        logger.warning("the report cannot rebuild the run's strategy, so it has no strategy views: %s", err)
        return None
    return strategy


def _strategy_keys(strategy: Strategy, summary: Summary) -> dict[str, JSON]:
    """``Strategy.summary()`` without the keys the engine already filled: its values win."""
    extra = strategy.summary()
    json.dumps(extra)  # a TypeError here names the value that is not JSON
    standard = summary.model_dump()
    kept = {}
    for key, value in extra.items():
        if key in Summary.model_fields and standard.get(key) is not None:
            if standard[key] != value:
                logger.warning(
                    "summary key %s of strategy %s ignored: the report's value wins", key, strategy.name
                )
            continue
        kept[key] = value
    return kept


def new_figure(width: float = 7, height: float = 4.5) -> Any:
    """A matplotlib figure on the Agg canvas (no display, no pyplot state), for report plots."""
    return _figure(width, height)


def save_figure(figure: Any, path: Path) -> None:
    """Write a figure as PNG atomically."""
    _save(figure, path)


def write_report(store: RunStore, *, measure_test: bool = True) -> Summary:
    """Write summary.json, best.genome, the plots and (for multi-result runs) the front into the
    run directory; return the summary."""
    summary, candidates, best = summarize(store, measure_test=measure_test)
    root = store.run_dir
    strategy = restore_strategy(store)
    plots = list(PLOTS)
    updates: dict[str, Any] = {}
    front = strategy.front() if strategy is not None else None
    if front is not None:
        updates["front"] = write_front(root, front, candidates)
        figure = new_figure(max(7.0, 5.0 * max(1, len(front.objectives) - 1)), 4.5)
        plot_front(figure, front, candidates, f"{summary.strategy} on {summary.dataset}: front")
        save_figure(figure, root / FRONT_PLOT)
        plots.append(FRONT_PLOT)
    extra = _strategy_keys(strategy, summary) if strategy is not None else {}
    genome = (summary.best_genome or "").rstrip("\n") + "\n" if summary.best_genome else ""
    atomic_write(root / "best.genome", lambda handle: handle.write(genome.encode()))
    plot_accuracy_vs_params(summary, candidates, best, root / PLOTS[0])
    plot_progress(summary, candidates, root / PLOTS[1])
    if strategy is not None:
        context = ReportContext(store, summary, candidates, best, strategy)
        for plot in plotters(strategy):
            try:
                plots.extend(plot(context))
            except Exception:  # a strategy's extra picture must not cost the user the report
                logger.exception(
                    "plot %s of strategy %s failed", getattr(plot, "__name__", plot), strategy.name
                )
    summary = Summary(**{**summary.model_dump(), **updates, "plots": plots, **extra})
    text = json.dumps(summary.model_dump(mode="json"), indent=2) + "\n"
    atomic_write(root / "summary.json", lambda handle: handle.write(text.encode()))
    return summary


__all__ = [
    "PLOTS",
    "PLOT_MODULES",
    "PlotFunction",
    "ReportContext",
    "Summary",
    "choose_best",
    "new_figure",
    "pareto_front",
    "plotters",
    "prewarm",
    "register_plot",
    "restore_strategy",
    "save_figure",
    "summarize",
    "write_report",
]

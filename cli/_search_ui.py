"""What the search commands show: progress bars, the run summary and the candidate table (rich).

Progress and messages go to standard error, results to standard output.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genomorph.search.core.protocol import EvalResult, Strategy
    from genomorph.search.core.store import RunStore
    from genomorph.search.runtime.report import Summary
    from rich.console import Console


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f} %" if percent else f"{value:.4g}"


def _op_counts(record: dict[str, float]) -> str:
    """A one-shot search's current genotype as op counts (``  sep3×5 skip×2 ...``), else ''."""
    if not any(key.startswith("ops.") for key in record):
        return ""
    from genomorph.search.strategies._darts_progress import format_op_counts

    text = format_op_counts(record)
    return f"  {text}" if text else ""


class epoch_progress:  # noqa: N801 - used as a context manager, reads like a function
    """A rich progress bar over epochs, as an ``on_epoch`` callback."""

    def __init__(self, console: Console, label: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task(label, total=None, status="")

    def __enter__(self) -> Callable[[int, int, dict[str, float]], None]:
        self.progress.start()
        return self.on_epoch

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_epoch(self, epoch: int, epochs: int, record: dict[str, float]) -> None:
        status = f"loss {record['train_loss']:.4f}"
        if "val_accuracy" in record:
            status += f"  val acc {100 * record['val_accuracy']:.2f} %"
        elif "val_r2" in record:
            status += f"  val R² {record['val_r2']:.4f}"
        status += _op_counts(record)
        self.progress.update(self.task, completed=epoch, total=epochs, status=status)


class RichSearchObserver:
    """Progress of a search: candidates done (with the best so far) and, in-process, the epochs."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.search_task = self.progress.add_task("search", total=None, status="")
        self.epoch_task = self.progress.add_task("candidate", total=None, status="", visible=False)
        self.finished_count = self.failed = 0
        self.best: float | None = None
        self.strategy: Strategy | None = None

    def started(self, store: RunStore, strategy: Strategy, resumed: bool) -> None:
        self.strategy = strategy
        done = [c for c in store.candidates() if c.status in ("finished", "failed")]
        self.finished_count = sum(c.status == "finished" for c in done)
        self.failed = len(done) - self.finished_count
        scores = [
            c.metrics.objective
            for c in done
            if c.metrics is not None and c.request.budget.train_on == "train"
        ]
        self.best = max(scores, default=None)
        self.progress.start()
        self._update()

    def _update(self) -> None:
        total = self.strategy.planned() if self.strategy is not None else None
        best = ""
        if self.best is not None:
            regression = self.strategy is not None and self.strategy.setup.dataset.task == "regression"
            best = f"best R² {self.best:.4f}" if regression else f"best {100 * self.best:.2f} %"
        failed = f"  {self.failed} failed" if self.failed else ""
        front = self.strategy.front() if self.strategy is not None else None
        size = f"  front {len(front.members)}" if front is not None else ""
        self.progress.update(
            self.search_task,
            completed=self.finished_count + self.failed,
            total=total,
            status=best + size + failed,
        )

    def submitted(self, job: Any) -> None:
        pass

    def finished(self, result: EvalResult) -> None:
        from rich.markup import escape

        if result.ok and result.metrics is not None:
            self.finished_count += 1
            if result.request.budget.train_on == "train":
                self.best = max(self.best or float("-inf"), result.metrics.objective)
        else:
            self.failed += 1
            reason = (result.reason or "").splitlines()[0] if result.reason else "?"
            self.console.print(f"[yellow]candidate {result.id} failed:[/] {escape(reason)}", soft_wrap=True)
        self.progress.update(self.epoch_task, visible=False)
        self._update()

    def epoch(self, epoch: int, epochs: int, record: dict[str, float]) -> None:
        status = f"loss {record['train_loss']:.4f}"
        if "val_accuracy" in record:
            status += f"  val {100 * record['val_accuracy']:.2f} %"
        status += _op_counts(record)
        self.progress.update(self.epoch_task, completed=epoch, total=epochs, status=status, visible=True)

    def stop(self) -> None:
        self.progress.stop()


def print_summary(summary: Summary, run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 120, highlight=False)
    table = Table(title=f"{summary.strategy} on {summary.dataset} ({summary.status})", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    classification = summary.task == "classification"
    rows = [
        ("best candidate", str(summary.best_candidate) if summary.best_candidate is not None else "-"),
        (
            "validation " + ("accuracy" if classification else "R²"),
            fmt(summary.best_val_accuracy if classification else summary.best_objective, classification),
        ),
        (
            "test " + ("accuracy" if classification else "R²"),
            fmt(summary.test_accuracy if classification else summary.test_r2, classification),
        ),
        ("parameters", f"{summary.params:,}" if summary.params is not None else "-"),
        ("MACs", f"{summary.macs:,}" if summary.macs is not None else "-"),
        ("candidates", f"{summary.candidates_finished} finished, {summary.candidates_failed} failed"),
        (
            "time",
            f"{summary.wall_s:.1f} s wall, {summary.train_s:.1f} s training, {summary.eval_s:.1f} s evaluation",
        ),
        ("run directory", str(run_dir)),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    if summary.front:
        console.print(front_table(summary))
    if summary.best_genome:
        console.print("best genome (best.genome):")
        console.print(summary.best_genome.rstrip("\n"), markup=False, soft_wrap=True)


def candidate_table(candidates: list[Any], top: int, classification: bool) -> Any:
    from rich.table import Table

    table = Table(title=f"top {top} candidates by validation score", header_style="bold")
    for name in ("id", "parent", "status", "val", "test", "params", "MACs", "epochs", "train s"):
        table.add_column(name, justify="right" if name not in ("status",) else "left")
    ranked = sorted(
        (c for c in candidates if c.metrics is not None),
        key=lambda c: (-(c.metrics.objective), c.id),
    )[:top]
    for c in ranked:
        m = c.metrics
        val = m.val_accuracy if classification else m.val_r2
        test = m.test_accuracy if classification else m.test_r2
        role = "final" if c.request.budget.train_on == "train+val" else c.status
        table.add_row(
            str(c.id),
            "" if c.parent is None else str(c.parent),
            role,
            fmt(val, classification),
            fmt(test, classification),
            f"{m.params:,}",
            f"{m.macs:,}",
            str(m.epochs),
            f"{c.train_s or 0:.1f}",
        )
    return table


def front_table(summary: Summary) -> Any:
    """The front of a multi-result search: one row per member, one column per objective."""
    from rich.table import Table

    front = summary.front or []
    names: list[str] = []
    for entry in front:
        names.extend(n for n in entry.objectives if n not in names)
    table = Table(title=f"front: {len(front)} candidates (every objective minimised)", header_style="bold")
    table.add_column("candidate", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("genome file")
    for entry in front:
        values = [_objective(name, entry.objectives.get(name)) for name in names]
        table.add_row(str(entry.candidate), *values, entry.genome_file)
    return table


def _objective(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    if name in ("params", "macs"):
        return f"{int(value):,}"
    if name == "val_error":
        return f"{100 * value:.2f} %"
    return f"{value:.4g}"

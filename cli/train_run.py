"""``genomorph train ... --out RUN_DIR``: the training as a resumable run (progress, Ctrl-C, JSON)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import click

from ._search_ui import epoch_progress, stderr_console

EXIT_INTERRUPTED = 130


class _EpochObserver:
    """A `SearchObserver` that only shows the one candidate's epochs."""

    def __init__(self, on_epoch: Any) -> None:
        self.on_epoch = on_epoch

    def started(self, store: Any, strategy: Any, resumed: bool) -> None:
        pass

    def submitted(self, job: Any) -> None:
        pass

    def finished(self, result: Any) -> None:
        pass

    def epoch(self, epoch: int, epochs: int, record: dict[str, float]) -> None:
        self.on_epoch(epoch, epochs, record)


def train_in_run_dir(config: Any, run_dir: Path, label: str, command: str) -> None:
    """Run (or continue) the training of ``config`` in ``run_dir`` and print its summary as JSON."""
    from genomorph.ir import GenomorphError
    from genomorph.search.core.driver import SearchInterrupted
    from genomorph.search.runtime.report import write_report
    from genomorph.search.runtime.train_run import is_run_dir, run_training

    console = stderr_console()
    if is_run_dir(run_dir):
        console.print(f"continuing the training in {run_dir}", soft_wrap=True, markup=False)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        with epoch_progress(console, label) as on_epoch:
            store = run_training(config, run_dir, _EpochObserver(on_epoch))
    except SearchInterrupted:
        console.print(
            f"[bold yellow]interrupted[/]: the last finished epoch is kept in {run_dir}", soft_wrap=True
        )
        console.print(
            f"continue with: {command}  (or genomorph resume {run_dir})", soft_wrap=True, markup=False
        )
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    write_report(store)
    summary = json.loads((run_dir / "summary.json").read_text())
    failed = [c for c in store.candidates() if c.status == "failed"]
    if failed:
        raise GenomorphError(
            f"training failed: {failed[0].reason}",
            hint="a NaN loss usually means the learning rate is too high: try a smaller --lr or --grad-clip",
        )
    keys = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "val_r2", "test_r2", "params", "macs")
    shown = {k: summary.get(k) for k in keys}
    best = store.candidates()[0]
    m = best.metrics
    if m is not None:  # from the candidate itself, whatever summary.json's keys are
        shown.update(
            {
                "val_accuracy": m.val_accuracy,
                "val_loss": m.val_loss,
                "test_accuracy": m.test_accuracy,
                "test_loss": m.test_loss,
                "val_r2": m.val_r2,
                "test_r2": m.test_r2,
                "epochs": m.epochs,
            }
        )
    shown.update({"train_s": round(best.train_s or 0.0, 3), "eval_s": round(best.eval_s or 0.0, 3)})
    shown["out"] = str(run_dir)
    click.echo(json.dumps(shown, indent=2))

"""``genomorph train ... --out RUN_DIR``: the training as a resumable run (progress, Ctrl-C, JSON).

The first thing ``train --out`` does — before torch is imported or the data is loaded, which
can take seconds — is write ``RUN_DIR/train.json``: the training's request (genome, data and
trainer config, budget, seed). A run killed before its run store exists can then still be
continued: ``genomorph resume RUN_DIR`` (or the same command) starts it from that file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import click

from ._search_ui import epoch_progress, stderr_console

EXIT_INTERRUPTED = 130
PENDING = "train.json"
PENDING_FORMAT = "genomorph-train/1"


class Pending:
    """A written ``train.json``, and whether its folder was made for it."""

    def __init__(self, run_dir: Path, created: bool) -> None:
        self.run_dir, self.created = run_dir, created

    def withdraw(self) -> None:
        """The training was refused before it started: remove the file (and the folder if new)."""
        (self.run_dir / PENDING).unlink(missing_ok=True)
        if self.created:
            with contextlib.suppress(OSError):  # not empty: something else is in there, keep it
                self.run_dir.rmdir()


def write_pending(run_dir: Path, genome: str, data: Any, train: Any, budget: Any, seed: int) -> Pending:
    """Record the training's request in ``run_dir`` (torch-free: runs before the heavy imports)."""
    from genomorph.search.core.files import write_text

    created = not run_dir.exists()

    request = {
        "format": PENDING_FORMAT,
        "genome": genome,
        "data": data.model_dump(mode="json"),
        "train": train.model_dump(mode="json"),
        "budget": budget.model_dump(mode="json"),
        "seed": seed,
    }
    write_text(run_dir / PENDING, json.dumps(request, indent=2) + "\n")
    return Pending(run_dir, created)


def pending_config(run_dir: Path) -> Any | None:
    """The `RunConfig` of a training recorded in ``run_dir/train.json`` (``None``: there is none)."""
    path = run_dir / PENDING
    if not path.is_file():
        return None
    from genomorph.ir import DataError
    from genomorph.search.core.config import DataConfig, TrainConfig
    from genomorph.search.core.protocol import Budget
    from genomorph.search.runtime.train_run import training_run_config

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != PENDING_FORMAT:
            raise ValueError(f"format {raw.get('format')!r}")
        data = DataConfig.model_validate(raw["data"])
        train = TrainConfig.model_validate(raw["train"])
        budget = Budget.model_validate(raw["budget"])
        genome, seed = str(raw["genome"]), int(raw["seed"])
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path} cannot be read as a genomorph training request: {err}") from None
    from genomorph.grammar import parse
    from genomorph.search.runtime.data import fit_to_genome

    return training_run_config(genome, fit_to_genome(data, parse(genome)), train, budget, seed)


def _write_classic_files(run_dir: Path, store: Any) -> None:
    """What ``train --out`` always wrote: ``model.pt`` (a link to the candidate's checkpoint),
    ``model.genome`` and ``metrics.json`` (the candidate's result)."""
    from genomorph.search.core.files import write_text

    (candidate,) = store.candidates()
    if candidate.status not in ("finished", "failed"):
        return
    result = candidate.result()
    write_text(run_dir / "metrics.json", result.model_dump_json(indent=2) + "\n")
    genome = candidate.genome if candidate.genome.endswith("\n") else candidate.genome + "\n"
    write_text(run_dir / "model.genome", genome)
    if result.checkpoint:
        target, link = run_dir / result.checkpoint, run_dir / "model.pt"
        link.unlink(missing_ok=True)
        try:
            os.link(target, link)  # the same file, not a second copy of the weights
        except OSError:
            shutil.copyfile(target, link)


def resume_pending_training(run_dir: Path) -> bool:
    """Start the training recorded in ``run_dir`` when no run store exists there yet (else False)."""
    from genomorph.search.runtime.train_run import is_run_dir

    if is_run_dir(run_dir):
        return False
    config = pending_config(run_dir)
    if config is None:
        return False
    train_in_run_dir(config, run_dir, run_dir.name, f"genomorph resume {run_dir}")
    return True


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
    _write_classic_files(run_dir, store)
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

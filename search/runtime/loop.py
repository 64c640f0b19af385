"""The one training loop: epochs of plug-in `Step`s, with everything steps share done once.

``run_epochs(ctx, steps)`` trains for ``ctx.epochs`` epochs. In each epoch every step's
updates are interleaved iteration by iteration, in list order (steps with fewer updates per
epoch simply stop earlier). The loop, not the steps, handles:

- **timing**: training and evaluation measured apart (CUDA synchronised before each reading);
- **divergence**: a non-finite number in an epoch's record raises `TrainingDiverged`;
- **validation** on ``ctx.splits["val"]`` every ``config.eval_every`` epochs and after the last;
- **early stopping** by paper 000's flattening rule (`FlattenStop`): after every epoch from
  ``min_epochs`` on, epochs and training losses so far are normalised to [0, 1] and
  ``y = exp(a x)(1 - x)`` is fitted by least squares (``scipy.optimize.curve_fit``); training
  stops once ``a < threshold``. ``stopped_early`` and ``flatten_a`` end up in the report;
- **per-epoch checkpoints** (an `EpochFile`): after every epoch that ends at least
  `CHECKPOINT_INTERVAL_S` after the last checkpoint, or after this session's training started
  (so after every epoch of any epoch longer than that), the module's ``state_dict``, each step's ``state_dict``, torch's global RNG
  state (``nn.Dropout`` draws from it), the history and the timers. Given a file from an
  interrupted run, the loop restores all of it and continues with the next epoch: the run ends
  exactly as an uninterrupted one would, whichever epoch the file was written after (a kill
  repeats at most `CHECKPOINT_INTERVAL_S` of training). The last epoch writes none: the caller
  writes the final weights right after, and a kill in between only repeats the epochs since the
  previous checkpoint, with the same result;
- **progress**: ``on_epoch(epoch, epochs, record)`` after each epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from genomorph.search.core.protocol import FlattenStop
from genomorph.search.runtime.data import Dataset, Split
from genomorph.search.runtime.steps import Step, TrainContext, main_output, task_loss

EpochCallback = Callable[[int, int, dict[str, float]], None]

#: seconds of training between two epoch checkpoints at least, and before the first: a toy-data
#: epoch of ~20 ms would otherwise spend a tenth of its time on snapshots and hand-overs, and a
#: candidate shorter than this (a kill repeats it whole) needs none
CHECKPOINT_INTERVAL_S = 0.25


class TrainingDiverged(Exception):
    """The training loss (or another number of an epoch's record) became NaN or infinite."""


@dataclass
class TrainReport:
    history: list[dict[str, float]] = field(default_factory=list)
    train_s: float = 0.0
    eval_s: float = 0.0
    train_loss: float | None = None
    train_accuracy: float | None = None
    stopped_early: bool = False
    flatten_a: float | None = None
    """The last fitted flattening exponent ``a`` (only with a `FlattenStop`)."""
    checkpoint_s: float = 0.0
    """Time the training thread spent on epoch checkpoints (snapshot and hand-over; the write
    itself runs in the background). Counted in neither ``train_s`` nor ``eval_s``."""
    resumed_from: int = 0
    """Epochs restored from an epoch checkpoint (0: trained from the first epoch)."""
    carry: dict[str, Any] = field(default_factory=dict)
    """What the caller stored with the epoch checkpoints (see ``run_epochs``' ``carry``)."""


class EpochFile(Protocol):
    """Where the loop keeps its per-epoch checkpoint (`checkpoint.EpochCheckpoint` on disk)."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any]) -> None: ...

    def wait(self) -> None: ...


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def evaluate_split(
    module: torch.nn.Module, data: Dataset, split: Split, device: torch.device, batch_size: int = 1024
) -> dict[str, float]:
    """Loss and accuracy (classification) or loss and R² (regression) of ``module`` on ``split``."""
    module.eval()
    task = data.info.task
    total_loss, correct, outs = 0.0, 0, []
    for start in range(0, len(split), batch_size):
        x = data.normalise(split.x[start : start + batch_size].to(device))
        y = split.y[start : start + batch_size].to(device)
        out, _ = main_output(module(x))
        total_loss += float(task_loss(task, out, y, 0.0)) * len(y)
        if task == "classification":
            correct += int((out.argmax(1) == y).sum())
        else:
            outs.append(out.float().cpu())
    n = max(len(split), 1)
    result = {"loss": total_loss / n}
    if task == "classification":
        result["accuracy"] = correct / n
    else:
        pred = torch.cat(outs) if outs else torch.zeros(0, 1)
        target = split.y.float()
        residual = float(((pred - target) ** 2).sum())
        spread = float(((target - target.mean(0)) ** 2).sum())
        result["r2"] = 1.0 - residual / spread if spread > 0 else 0.0
    return result


def flatten_exponent(losses: Sequence[float]) -> float | None:
    """Paper 000's ``a``: least-squares fit of ``y = exp(a x)(1 - x)`` to the normalised loss curve."""
    if len(losses) < 2:
        return None
    from scipy.optimize import leastsq

    # the normalisation in plain floats: the same IEEE operations as numpy's (the same a to the
    # last bit), without a dozen numpy calls that, right after an epoch of training has evicted
    # their code from the CPU caches, cost more than the fit itself
    low, n = min(losses), len(losses)
    spread = max(losses) - low
    y = np.array([(v - low) / spread for v in losses] if spread > 0 else [0.0] * n)
    step = 1.0 / (n - 1)
    steps = [i * step for i in range(n - 1)] + [1.0]  # np.linspace(0, 1, n), entry for entry
    x, one_minus_x = np.array(steps), np.array([1.0 - v for v in steps])
    # MINPACK's Levenberg-Marquardt directly, as ``curve_fit(f, x, y, p0=[0], maxfev=2000)`` calls
    # it (the same residuals, start and limits: the same a to the last bit), without curve_fit's
    # input checks and covariance estimate, which cost more than the fit on every epoch's call
    with np.errstate(over="ignore", invalid="ignore"):  # exp overflow while searching: a worse fit
        # full_output=False still returns the status, without the covariance estimate and the
        # info dict full_output=True adds afterwards (half the call's time; the same a and status)
        (a,), status = leastsq(
            lambda p: np.exp(p[0] * x) * one_minus_x - y, np.zeros(1), full_output=False, maxfev=2000
        )
    if status not in (1, 2, 3, 4):  # no convergence: a curve this odd is not "flattened"
        return None
    return float(a)


def _clone(value: Any) -> Any:
    """A deep copy of a state: tensors detached and copied to the CPU, containers rebuilt."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_clone(v) for v in value)
    return value


def seed_global(seed: int) -> None:
    """``torch.manual_seed`` for the devices genomorph trains on (CPU and CUDA): the same streams,
    without its calls into every other backend (mps, xpu, ...), which cost more than a small
    candidate's whole setup and are made twice per candidate."""
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _restore(ctx: TrainContext, steps: Sequence[Step], state: dict[str, Any], report: TrainReport) -> int:
    names = [s.name for s in steps]
    if state.get("steps_names") != names:
        raise ValueError(f"epoch checkpoint was written by steps {state.get('steps_names')}, not {names}")
    ctx.module.load_state_dict(state["module"])
    for step, saved in zip(steps, state["steps"], strict=True):
        step.load_state_dict(saved)
    _set_rng_state(state["rng"])
    report.history = [dict(r) for r in state["history"]]
    report.train_s, report.eval_s = float(state["train_s"]), float(state["eval_s"])
    report.carry = dict(state.get("carry", {}))
    report.resumed_from = int(state["epoch"])
    return report.resumed_from


def run_epochs(
    ctx: TrainContext,
    steps: Sequence[Step],
    *,
    validate: bool = True,
    stop: FlattenStop | None = None,
    checkpoints: EpochFile | None = None,
    phase: str = "train",
    carry: dict[str, Any] | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainReport:
    """Train ``ctx.module`` in place with ``steps`` for ``ctx.epochs`` epochs (see the module docstring).

    ``checkpoints`` resumes from and writes the per-epoch checkpoint; only a checkpoint of the
    same ``phase`` is resumed from (a worker runs a ``repair`` phase before ``train``).
    ``carry`` is stored with every checkpoint and comes back in ``TrainReport.carry`` on resume.
    """
    report = TrainReport(carry=dict(carry or {}))
    epochs, device, module = ctx.epochs, ctx.device, ctx.module
    if epochs == 0 or not any(s.tensors() for s in steps) or not any(s.steps_per_epoch() for s in steps):
        return report
    first = 0
    saved = checkpoints.load() if checkpoints is not None else None
    if saved is not None and saved.get("phase") == phase:
        first = _restore(ctx, steps, saved, report)
    config = ctx.config
    val = ctx.splits.get("val")
    saved_at = time.perf_counter()  # when the last epoch checkpoint was handed over (or training began)
    for epoch in range(first, epochs):
        sync(device)
        started = time.perf_counter()
        for s in steps:
            if module.training != s.train_mode:  # only on a change (validation left it in eval mode)
                module.train(s.train_mode)
            s.start_epoch(epoch)
        counts = [s.steps_per_epoch() for s in steps]
        for i in range(max(counts)):
            for s, count in zip(steps, counts, strict=True):
                if i < count:
                    # only on a change: train() walks every submodule, which on a small network
                    # costs as much as a tenth of its step
                    if module.training != s.train_mode:
                        module.train(s.train_mode)
                    s.step(epoch, i)
        record: dict[str, float] = {"epoch": float(epoch + 1)}
        for s in steps:
            record.update(s.end_epoch(epoch))
        sync(device)
        report.train_s += time.perf_counter() - started
        bad = [k for k, v in record.items() if not math.isfinite(v)]
        if bad:
            key = "train_loss" if "train_loss" in bad else bad[0]
            what = "training loss" if key == "train_loss" else key.replace("_", " ")
            raise TrainingDiverged(f"{what} became {record[key]} in epoch {epoch + 1}")
        last = epoch + 1 == epochs
        if stop is not None and "train_loss" in record and epoch + 1 >= stop.min_epochs:
            a = flatten_exponent([r["train_loss"] for r in report.history] + [record["train_loss"]])
            report.flatten_a = a
            if a is not None and a < stop.threshold and not last:
                report.stopped_early = last = True
        due = config.eval_every and ((epoch + 1) % config.eval_every == 0 or last)
        if validate and due and val is not None and len(val):
            started = time.perf_counter()
            measured = evaluate_split(module, ctx.data, val, device, config.eval_batch_size)
            sync(device)
            report.eval_s += time.perf_counter() - started
            record.update({f"val_{k}": v for k, v in measured.items()})
        report.history.append(record)
        due_checkpoint = time.perf_counter() - saved_at >= CHECKPOINT_INTERVAL_S
        if checkpoints is not None and not last and due_checkpoint:
            started = time.perf_counter()
            checkpoints.save(
                {
                    "phase": phase,
                    "epoch": epoch + 1,
                    "steps_names": [s.name for s in steps],
                    "module": _clone(module.state_dict()),
                    "steps": [_clone(s.state_dict()) for s in steps],
                    "rng": _clone(_rng_state()),
                    "history": [dict(r) for r in report.history],
                    "train_s": report.train_s,
                    "eval_s": report.eval_s,
                    "carry": _clone(report.carry),
                }
            )
            saved_at = time.perf_counter()
            report.checkpoint_s += saved_at - started
        if on_epoch is not None:
            on_epoch(epoch + 1, epochs, record)
        if last:
            break
    if checkpoints is not None:
        started = time.perf_counter()
        checkpoints.wait()
        report.checkpoint_s += time.perf_counter() - started
    for s in steps:
        s.finish()
    if report.history:
        final = report.history[-1]
        report.train_loss = final.get("train_loss")
        report.train_accuracy = final.get("train_accuracy")
    return report


__all__ = [
    "CHECKPOINT_INTERVAL_S",
    "EpochCallback",
    "EpochFile",
    "TrainReport",
    "TrainingDiverged",
    "evaluate_split",
    "flatten_exponent",
    "run_epochs",
    "seed_global",
    "sync",
]

"""Train one lowered network on whole-tensor data: the standard recipe as a plain function.

The work is done by the training loop (`loop.run_epochs`) and the weight step
(`weight_step.WeightStep`: SGD/Adam, constant/cosine/SGDR schedule, mixup, cutout, label
smoothing, clipping, auxiliary losses); this module keeps the function most callers want,
``train(module, data, config, seed=...)``, and the device and thread helpers. The names it
used to define (`TrainReport`, `TrainingDiverged`, `evaluate_split`, `NesterovSGD`) are
re-exported from their new homes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch
from genomorph.search.core.config import TrainConfig
from genomorph.search.runtime.data import Dataset, Split
from genomorph.search.runtime.loop import (
    EpochCallback,
    TrainingDiverged,
    TrainReport,
    evaluate_split,
    run_epochs,
)
from genomorph.search.runtime.optim import NesterovSGD
from genomorph.search.runtime.steps import TrainContext, schedule_lr
from genomorph.search.runtime.weight_step import WeightStep
from genomorph.search.runtime.weight_step import cutout as _cutout


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from genomorph.ir import ConfigError

        raise ConfigError(
            "--device cuda was asked for, but torch sees no CUDA device", hint="use --device cpu or auto"
        )
    return torch.device(name)


def auto_threads(requested: int | None, input_shape: tuple[int, ...], workers: int) -> int:
    """Threads each evaluation should use (see `TrainConfig.threads`)."""
    if requested is not None:
        return requested
    if math.prod(input_shape) < 4096:  # digits, toy sets: thread hand-offs cost more than they save
        return 1
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def lr_at(config: TrainConfig, epoch: float) -> float:
    """Learning rate after ``epoch`` (fractional) epochs of a schedule as long as the training."""
    return schedule_lr(config, config.lr, epoch, float(config.epochs))


def train(
    module: torch.nn.Module,
    data: Dataset,
    config: TrainConfig,
    *,
    seed: int,
    train_split: Split | None = None,
    aux_weights: Sequence[float] = (),
    train_only: Sequence[int] | None = None,
    device: torch.device | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainReport:
    """Train ``module`` in place for ``config.epochs`` epochs on ``train_split`` (default: train).

    The standard recipe (one `WeightStep`, and the drop-path schedule of a network with stochastic
    depth) run by the loop, without epoch checkpoints.
    """
    device = device or resolve_device(config.device)
    ctx = TrainContext(
        module=module,
        data=data,
        config=config,
        device=device,
        seed=seed,
        splits={"train": train_split or data.train, "val": data.val},
        aux_weights=tuple(aux_weights),
        train_only=tuple(train_only) if train_only is not None else None,
    )
    from genomorph.search.runtime.drop_path import drop_path_steps

    return run_epochs(ctx, [WeightStep(ctx), *drop_path_steps(ctx)], on_epoch=on_epoch)


def merge_splits(a: Split, b: Split) -> Split:
    """Train and validation together, for the final training of a winner."""
    return Split(torch.cat([a.x, b.x]), torch.cat([a.y, b.y]))


__all__ = [
    "NesterovSGD",
    "_cutout",
    "auto_threads",
    "TrainReport",
    "TrainingDiverged",
    "evaluate_split",
    "lr_at",
    "merge_splits",
    "resolve_device",
    "train",
]

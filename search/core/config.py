"""The plain-data configuration of a run, shared by the torch-free driver and the torch workers.

No torch here: the driver stores these models in the run database and sends them to workers;
the workers (``genomorph.search.runtime``) turn them into datasets, modules and optimizers.
"""

from __future__ import annotations

from typing import Literal

from genomorph.search.core.protocol import Budget, EvalRequest
from pydantic import BaseModel, ConfigDict, Field

DatasetName = Literal[
    "digits", "spirals", "regression2d", "mnist", "fashion-mnist", "cifar10", "cifar100", "folder", "csv"
]
DATASETS: tuple[str, ...] = DatasetName.__args__  # type: ignore[attr-defined]


class DataConfig(BaseModel):
    """Which data, where it lives, and how it is split."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: DatasetName = "digits"
    data_dir: str | None = None
    """Root folder in torchvision's layout (torchvision datasets), or an ImageFolder tree with one
    sub-folder of images per class (``folder``)."""
    data_file: str | None = None
    """A CSV table with a header row (``csv``)."""
    target: str | None = None
    """The CSV column to predict (``csv``); every other column is a numeric feature."""
    task: Literal["auto", "classification", "regression"] = "auto"
    """``csv``: ``auto`` treats a target as classes when any value is not a number, or when all
    are integers with at most ``MAX_AUTO_CLASSES`` distinct values; otherwise regression."""
    input_shape: tuple[int, ...] | None = None
    """``folder``: the C x H x W every image is converted to (1 channel: grayscale, 3: RGB) and
    resized to; ``None`` takes the genome's input shape where there is a genome."""
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    """Share of a ``folder`` tree or ``csv`` table held out for testing (stratified for classes)."""
    download: bool = False
    val_fraction: float = Field(default=0.1, gt=0, lt=1)
    """Share of the torchvision training set held out for validation."""
    seed: int = 0
    """Seed of the generated toy sets and of the torchvision train/val split (not of digits)."""


class TrainConfig(BaseModel):
    """The trainer's options; a candidate's `Budget` overrides epochs and the schedule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.05, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(default=5e-4, ge=0)
    batch_size: int = Field(default=64, ge=1)
    eval_batch_size: int = Field(default=1024, ge=1)
    epochs: int = Field(default=10, ge=0)
    schedule: Literal["cosine", "sgdr", "constant"] = "cosine"
    restart_period: int = Field(default=10, ge=1)
    """SGDR's T0: epochs of the first cycle."""
    restart_mult: int = Field(default=2, ge=1)
    """SGDR's T_mult: each cycle is this many times longer than the previous one."""
    min_lr: float = Field(default=0.0, ge=0)
    mixup_alpha: float = Field(default=0.0, ge=0)
    """Beta(α, α) mixing of sample pairs; 0 turns mixup off (classification only)."""
    cutout: int = Field(default=0, ge=0)
    """Side of the square zeroed at a random place in every training image; 0 turns it off."""
    drop_path: float | None = Field(default=None, ge=0, lt=1)
    """The rate of every ``stochastic_depth`` op of the genome (DARTS evaluation networks carry one
    after each edge's op, ``schedule=linear``: rising from 0 towards it); ``None``: the genome's."""
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    grad_clip: float | None = Field(default=5.0, gt=0)
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    threads: int | None = Field(default=None, ge=1)
    """torch CPU threads per evaluation; ``None``: 1 for small inputs (intra-op parallelism only
    costs there), else the cores shared out among the parallel workers."""
    eval_every: int = Field(default=1, ge=0)
    """Validate every this many epochs for the history (0: only at the end)."""

    def with_budget(self, budget: Budget) -> TrainConfig:
        changes: dict[str, object] = {"epochs": budget.epochs}
        for name in ("lr", "schedule", "restart_period", "restart_mult", "eval_every"):
            value = getattr(budget, name)
            if value is not None:
                changes[name] = value
        return self.model_copy(update=changes)


class WorkerSpec(BaseModel):
    """What every evaluation of a run shares; sent to each worker once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_dir: str
    data: DataConfig
    train: TrainConfig
    threads: int | None = None
    """torch CPU threads of the evaluating process (``None``: leave torch's setting)."""


class Job(BaseModel):
    """One candidate as the driver hands it to an executor."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    request: EvalRequest
    seed: int
    checkpoint: str
    """Where to write the trained weights, relative to the run directory."""


__all__ = ["DATASETS", "DataConfig", "DatasetName", "Job", "TrainConfig", "WorkerSpec"]

"""Training steps: the pieces one epoch of the training loop (`loop.run_epochs`) is made of.

A `Step` is one kind of update, done once per iteration of an epoch. It owns everything that
update needs and nothing else: its optimizer(s), its learning-rate schedule, the batches it
draws (from *its* split, with *its* generator), and any extra tensors it trains (a
hypernetwork, running unit statistics). The loop owns epochs, timing, NaN detection,
validation, checkpointing and progress; a recipe (`recipes.py`) decides which steps a
candidate trains with.

The contract, per epoch ``e`` (0-based within this run):

1. ``start_epoch(e)`` — shuffle its batches, reset its epoch sums;
2. ``step(e, i)`` for ``i in range(steps_per_epoch())`` — one update. When a recipe has
   several steps, the loop interleaves them iteration by iteration in list order (DARTS:
   ``[ArchitectureStep, WeightStep]`` gives α-update, w-update, α-update, ...);
3. ``end_epoch(e)`` — the epoch's numbers for the history record (floats). The weight step
   reports ``lr``, ``train_loss``, ``train_accuracy``; other steps prefix their keys with
   their own name (``arch_loss``, ``repair_distance``). Any non-finite value makes the loop
   raise `TrainingDiverged`.

``state_dict()`` / ``load_state_dict()`` must capture *everything* that makes the next epoch
of this step what it is: optimizer buffers, generator states, extra tensors (cloned). The
loop stores it in the per-epoch checkpoint, loaded with ``torch.load(weights_only=True)``, so
it may hold only tensors, numbers, strings, bools, None, lists, tuples and dicts. The module's
own ``state_dict()`` (weights, batch-norm statistics, architecture parameters) is saved by the
loop: a step stores only what it owns besides the module.

Randomness: every draw comes from a ``torch.Generator`` seeded from the candidate's seed (see
`TrainContext.generator`), never from torch's global generator. (Modules that can only use the
global one — ``nn.Dropout`` — are covered by the loop, which saves and restores its state with
each epoch checkpoint.)

Writing a new step — e.g. the DARTS architecture step (first order)::

    class ArchitectureStep(Step):
        name = "arch"
        split = "arch"                      # the recipe puts half of the training data here

        def __init__(self, ctx: TrainContext, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3):
            self.ctx = ctx
            self.alphas = ctx.module.arch_parameters()
            self.optimizer = torch.optim.Adam(self.alphas, lr, betas=betas, weight_decay=weight_decay)
            self.batches = Batches(ctx.splits[self.split], ctx.config.batch_size, ctx.device,
                                   ctx.generator("arch-batches"))
            self.losses = EpochMean(ctx.device)

        def tensors(self):
            return self.alphas

        def steps_per_epoch(self):
            return self.batches.steps

        def start_epoch(self, epoch):
            self.batches.shuffle()
            self.losses.reset()

        def step(self, epoch, i):
            x, y = self.batches.batch(i, self.ctx.data)
            loss = task_loss(self.ctx.task, main_output(self.ctx.module(x)), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.losses.add(loss, len(y))

        def end_epoch(self, epoch):
            return {"arch_loss": self.losses.mean()}

        def state_dict(self):
            return {"optimizer": self.optimizer.state_dict(), "batches": self.batches.state_dict()}

        def load_state_dict(self, state):
            self.optimizer.load_state_dict(state["optimizer"])
            self.batches.load_state_dict(state["batches"])

A hypernetwork step (hyperDARTS) is the same shape: it owns the hypernetwork (an
``nn.Module`` kept outside the lowered module), writes the generated weights into the cell
ops before each forward, and returns ``{"hypernet": self.hypernet.state_dict(), ...}`` from
``state_dict``. The weight step of such a recipe is told (``params=``) to leave the generated
weights alone.
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from genomorph.search.core.config import TrainConfig
from genomorph.search.core.protocol import Task
from genomorph.search.runtime.data import Dataset, Split

StepState = dict[str, Any]


# ============================================================================ shared pieces
@dataclass
class TrainContext:
    """What every step of one candidate's training shares."""

    module: torch.nn.Module
    data: Dataset
    config: TrainConfig
    """The run's trainer config with the candidate's budget applied (``epochs`` = this run's)."""
    device: torch.device
    seed: int
    splits: dict[str, Split]
    """Named splits: ``train`` (what the weights train on), ``val`` (validation, may be empty),
    and whatever a recipe adds (DARTS: ``arch``, half of the training data)."""
    aux_weights: tuple[float, ...] = ()
    """Loss weights of the module's auxiliary outputs, in output order."""
    train_only: tuple[int, ...] | None = None
    """Node ids whose weights the weight step trains (``Budget.train_only``); ``None``: all."""
    schedule_offset: float = 0.0
    """Epochs of the learning-rate schedule run before this candidate (successive halving)."""
    schedule_epochs: float | None = None
    """Length of the whole schedule in epochs; ``None``: this run's ``config.epochs``."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Recipe-specific objects (a teacher's outputs, a hypernetwork) shared between its steps."""

    @property
    def task(self) -> Task:
        return self.data.info.task

    @property
    def epochs(self) -> int:
        return self.config.epochs

    def generator(self, purpose: str, device: torch.device | None = None) -> torch.Generator:
        """A generator for one purpose, seeded from the candidate's seed and the purpose's name."""
        return torch.Generator(device=device or "cpu").manual_seed(derived_seed(self.seed, purpose))

    def lr(self, base: float, epoch: int, fraction: float = 0.0) -> float:
        """The schedule's learning rate at ``fraction`` of the way through epoch ``epoch`` of this run."""
        period = self.schedule_epochs if self.schedule_epochs is not None else float(self.config.epochs)
        return schedule_lr(self.config, base, self.schedule_offset + epoch + fraction, period)


def derived_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed from a candidate seed and a purpose (stable across processes and versions).

    The purposes ``batches`` and ``augment`` return ``seed`` and ``seed + 1``, the seeds the
    trainer always used, so a standard training gives the numbers it gave before steps existed.
    """
    legacy = {"batches": 0, "augment": 1}
    if purpose in legacy:
        return seed + legacy[purpose]
    digest = hashlib.sha256(f"{purpose}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def schedule_lr(config: TrainConfig, base: float, position: float, period: float) -> float:
    """Learning rate at ``position`` epochs into a schedule of ``period`` epochs starting at ``base``."""
    if config.schedule == "constant" or period == 0:
        return base
    if config.schedule == "cosine":
        t = position
    else:  # sgdr: find the cycle position falls in; cycle i lasts T0 * mult**i epochs
        period, t = float(config.restart_period), position
        while t >= period:
            t -= period
            period *= config.restart_mult
    return config.min_lr + 0.5 * (base - config.min_lr) * (1.0 + math.cos(math.pi * min(t / period, 1.0)))


def main_output(out: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``(main, aux outputs)`` of a module that returns a tensor or ``(main, *aux)``."""
    if isinstance(out, torch.Tensor):
        return out, []
    main, *aux = out
    return main, list(aux)


def task_loss(task: Task, out: torch.Tensor, y: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    if task == "regression":
        return F.mse_loss(out, y)
    return F.cross_entropy(out, y, label_smoothing=smoothing)


class Batches:
    """Shuffled mini-batches of one split, on the training device, from a generator of its own."""

    def __init__(
        self,
        split: Split,
        batch_size: int,
        device: torch.device,
        generator: torch.Generator,
        *,
        drop_single: bool = True,
    ) -> None:
        self.x, self.y = split.x.to(device), split.y.to(device)
        self.n = len(split)
        self.size = max(1, min(batch_size, self.n))
        self.device = device
        self.generator = generator
        # a last batch of one sample breaks batch norm in training mode: drop it
        rest = self.n % self.size
        self.steps = self.n // self.size + (1 if rest > 1 or (rest == 1 and not drop_single) else 0)
        self.order = torch.arange(self.n, device=device)

    def shuffle(self) -> None:
        self.order = torch.randperm(self.n, generator=self.generator).to(self.device)

    def indices(self, i: int) -> torch.Tensor:
        return self.order[i * self.size : (i + 1) * self.size]

    def batch(self, i: int, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``i`` of the current order: normalised inputs and targets."""
        idx = self.indices(i)
        return data.normalise(self.x[idx]), self.y[idx]

    def state_dict(self) -> StepState:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: StepState) -> None:
        self.generator.set_state(state["generator"])


class EpochMean:
    """A running sum kept on the device, read once per epoch (one sync, not one per batch)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.total = torch.zeros((), device=self.device)
        self.count = 0

    def add(self, value: torch.Tensor, weight: int) -> None:
        self.total += value.detach() * weight
        self.count += weight

    def mean(self) -> float:
        return float(self.total) / max(self.count, 1)


# ============================================================================ the base class
class Step(ABC):
    """One kind of update of a training loop; see the module docstring for the contract."""

    #: short name: key of this step's state in the epoch checkpoint, prefix of its history keys
    name: str = "step"
    #: the `TrainContext.splits` entry it draws its batches from
    split: str = "train"
    #: the module's mode while this step runs (the repair step trains in eval mode)
    train_mode: bool = True

    @abstractmethod
    def tensors(self) -> list[torch.Tensor]:
        """The tensors this step updates (its optimizers' parameters)."""

    @abstractmethod
    def steps_per_epoch(self) -> int:
        """Updates per epoch."""

    def start_epoch(self, epoch: int) -> None:  # noqa: B027 - an optional hook
        """Called before the epoch's first update."""

    @abstractmethod
    def step(self, epoch: int, i: int) -> None:
        """Update ``i`` of epoch ``epoch``."""

    def end_epoch(self, epoch: int) -> dict[str, float]:
        """This epoch's numbers for the history (floats); called after its last update."""
        return {}

    def finish(self) -> None:  # noqa: B027 - an optional hook
        """Called once after the last epoch (e.g. restore the best weights seen)."""

    @abstractmethod
    def state_dict(self) -> StepState:
        """Everything this step owns besides the module (see the module docstring)."""

    @abstractmethod
    def load_state_dict(self, state: StepState) -> None:
        """Restore what ``state_dict`` returned, on a step built afresh for the same candidate."""


__all__ = [
    "Batches",
    "EpochMean",
    "Step",
    "StepState",
    "TrainContext",
    "derived_seed",
    "main_output",
    "schedule_lr",
    "task_loss",
]

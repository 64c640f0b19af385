"""Repair after an approximate morphism (paper 002 §3.2): train only the affected layers.

The child inherits every weight of the parent except those of the affected layers (the
rewrite's ``repair`` list). Those are trained for a few epochs to bring the child's outputs
back to the parent's on the training inputs — knowledge distillation restricted to a few
layers — while every other weight stays frozen. The distance reported is paper 002's
surrogate: the mean over inputs of ``||N(x) - TN(x)||``, before and after; the weights of the
best epoch are kept, so the distance after is never larger than before.

Both networks run in eval mode: batch norms use (and keep) their running statistics, so
frozen layers really are frozen and the distance measured is the one inference sees.

`RepairStep` is this training as a step of the training loop: the worker runs it (with
epoch checkpoints) when an `EvalRequest` carries a `RepairRequest`; ``repair`` runs it on
in-memory weights for callers outside a search.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from genomorph.ir import Graph, NodeId, Weights
from genomorph.lower import extract_weights, lower
from genomorph.search.runtime.steps import Step, StepState
from pydantic import BaseModel, ConfigDict, Field


class RepairConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(default=5, ge=0)
    """Paper 002 §5.2 trains the affected layers for 5 epochs."""
    lr: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=64, ge=1)
    optimizer: str = Field(default="adam", pattern="^(adam|sgd)$")
    momentum: float = Field(default=0.9, ge=0, lt=1)


@dataclass(frozen=True)
class RepairReport:
    distance_before: float
    distance_after: float
    epochs: int
    trained: tuple[NodeId, ...]
    """The nodes whose parameters were trained."""
    parameters: int
    """How many scalars were trained."""


def _main(out: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@torch.no_grad()
def outputs(
    module: torch.nn.Module,
    x: torch.Tensor,
    batch_size: int,
    normalise: Callable[[torch.Tensor], torch.Tensor] = _identity,
) -> torch.Tensor:
    """The module's main output on ``x``, batch by batch (``normalise`` maps raw samples to inputs)."""
    return torch.cat([_main(module(normalise(x[i : i + batch_size]))) for i in range(0, len(x), batch_size)])


def distance(
    module: torch.nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int = 256,
    normalise: Callable[[torch.Tensor], torch.Tensor] = _identity,
) -> float:
    """Mean Euclidean distance between the module's outputs on ``x`` and ``targets``."""
    out = outputs(module, x, batch_size, normalise)
    return float((out - targets).flatten(1).norm(dim=1).mean())


def select_parameters(module: torch.nn.Module, nodes: Sequence[NodeId]) -> list[torch.nn.Parameter]:
    """The parameters of ``nodes``, which alone keep ``requires_grad``."""
    prefixes = tuple(f"n{nid}." for nid in nodes)
    chosen = []
    for name, p in module.named_parameters():
        p.requires_grad_(name.startswith(prefixes))
        if p.requires_grad:
            chosen.append(p)
    return chosen


class RepairStep(Step):
    """Train only ``nodes`` so the module's outputs on ``x`` approach ``targets`` (the teacher's).

    Runs in eval mode (batch-norm statistics fixed, see the module docstring); after every
    epoch the distance is measured and the best epoch's weights are kept (``finish`` restores
    them), so the distance after a repair is never larger than before. ``x`` holds raw
    samples, mapped to inputs batch by batch by ``normalise``.
    """

    name = "repair"
    train_mode = False

    def __init__(
        self,
        module: torch.nn.Module,
        nodes: Sequence[NodeId],
        x: torch.Tensor,
        targets: torch.Tensor,
        config: RepairConfig,
        generator: torch.Generator,
        *,
        normalise: Callable[[torch.Tensor], torch.Tensor] = _identity,
        before: float | None = None,
    ) -> None:
        self.module, self.x, self.targets, self.config = module, x, targets, config
        self.generator, self.normalise = generator, normalise
        self.params = select_parameters(module, nodes)
        self.optimizer: torch.optim.Optimizer | None = None  # torch refuses an empty parameter list
        if self.params and config.optimizer == "adam":
            self.optimizer = torch.optim.Adam(self.params, lr=config.lr)
        elif self.params:
            self.optimizer = torch.optim.SGD(self.params, lr=config.lr, momentum=config.momentum)
        self.best = before if before is not None else self.distance()
        self.kept = [p.detach().clone() for p in self.params]
        self.order = torch.arange(len(x))

    def distance(self) -> float:
        return distance(self.module, self.x, self.targets, self.config.batch_size, self.normalise)

    def tensors(self) -> list[torch.Tensor]:
        return list(self.params)

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.x) / self.config.batch_size) if self.params else 0

    def start_epoch(self, epoch: int) -> None:
        self.order = torch.randperm(len(self.x), generator=self.generator)

    def step(self, epoch: int, i: int) -> None:
        size = self.config.batch_size
        idx = self.order[i * size : (i + 1) * size].to(self.x.device)
        out = _main(self.module(self.normalise(self.x[idx])))
        loss = torch.nn.functional.mse_loss(out, self.targets[idx])
        assert self.optimizer is not None, "steps_per_epoch is 0 without parameters"
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def end_epoch(self, epoch: int) -> dict[str, float]:
        # keep the best epoch: a repair must never leave the child further from its parent
        now = self.distance()
        if now < self.best:
            self.best, self.kept = now, [p.detach().clone() for p in self.params]
        return {"repair_distance": now}

    def finish(self) -> None:
        with torch.no_grad():
            for p, value in zip(self.params, self.kept, strict=True):
                p.copy_(value)

    def state_dict(self) -> StepState:
        return {
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else {},
            "generator": self.generator.get_state(),
            "best": self.best,
            "kept": self.kept,
        }

    def load_state_dict(self, state: StepState) -> None:
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.best = float(state["best"])
        self.kept = [t.to(p.device).clone() for p, t in zip(self.params, state["kept"], strict=True)]


def repair(
    parent: tuple[Graph, Weights],
    child: tuple[Graph, Weights],
    nodes: Sequence[NodeId],
    x: torch.Tensor,
    config: RepairConfig | None = None,
    *,
    seed: int = 0,
) -> tuple[Weights, RepairReport]:
    """Train the parameters of ``nodes`` in ``child`` so its outputs on ``x`` approach ``parent``'s.

    Returns the child's new weights (all nodes, the untouched ones unchanged) and a report.
    """
    config = config or RepairConfig()
    teacher = lower(*parent).eval()
    targets = outputs(teacher, x, config.batch_size)
    student = lower(*child).eval()
    step = RepairStep(student, nodes, x, targets, config, torch.Generator().manual_seed(seed))
    before = step.best
    if step.params and config.epochs:
        for epoch in range(config.epochs):
            step.start_epoch(epoch)
            for i in range(step.steps_per_epoch()):
                step.step(epoch, i)
            step.end_epoch(epoch)
        step.finish()
    after = step.distance()
    weights, _ = extract_weights(student, child[0])
    names = [name for name, _ in student.named_parameters()]
    trained = tuple(sorted(nid for nid in set(nodes) if any(n.startswith(f"n{nid}.") for n in names)))
    report = RepairReport(before, after, config.epochs, trained, sum(p.numel() for p in step.params))
    return weights, report

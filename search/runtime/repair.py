"""Repair after an approximate morphism (paper 002 §3.2): train only the affected layers.

The child inherits every weight of the parent except those of the affected layers (the
rewrite's ``repair`` list). Those are trained for a few epochs to bring the child's outputs
back to the parent's on the training inputs — knowledge distillation restricted to a few
layers — while every other weight stays frozen. The distance reported is paper 002's
surrogate: the mean over inputs of ``||N(x) - TN(x)||``, before and after; the weights of the
best epoch are kept, so the distance after is never larger than before.

Both networks run in eval mode: batch norms use (and keep) their running statistics, so
frozen layers really are frozen and the distance measured is the one inference sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from genomorph.ir import Graph, NodeId, Weights
from genomorph.lower import extract_weights, lower
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


@torch.no_grad()
def _outputs(module: torch.nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([_main(module(x[i : i + batch_size])) for i in range(0, len(x), batch_size)])


def distance(module: torch.nn.Module, x: torch.Tensor, targets: torch.Tensor, batch_size: int = 256) -> float:
    """Mean Euclidean distance between the module's outputs on ``x`` and ``targets``."""
    out = _outputs(module, x, batch_size)
    return float((out - targets).flatten(1).norm(dim=1).mean())


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
    targets = _outputs(teacher, x, config.batch_size)
    student = lower(*child).eval()
    prefixes = tuple(f"n{nid}." for nid in nodes)
    trainable = []
    for name, p in student.named_parameters():
        p.requires_grad_(name.startswith(prefixes))
        if p.requires_grad:
            trainable.append(p)
    before = distance(student, x, targets, config.batch_size)
    if trainable and config.epochs:
        if config.optimizer == "adam":
            optimizer: torch.optim.Optimizer = torch.optim.Adam(trainable, lr=config.lr)
        else:
            optimizer = torch.optim.SGD(trainable, lr=config.lr, momentum=config.momentum)
        generator = torch.Generator().manual_seed(seed)
        best, kept = before, [p.detach().clone() for p in trainable]
        for _ in range(config.epochs):
            order = torch.randperm(len(x), generator=generator)
            for i in range(0, len(x), config.batch_size):
                idx = order[i : i + config.batch_size]
                loss = torch.nn.functional.mse_loss(_main(student(x[idx])), targets[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            # keep the best epoch: a repair must never leave the child further from its parent
            now = distance(student, x, targets, config.batch_size)
            if now < best:
                best, kept = now, [p.detach().clone() for p in trainable]
        with torch.no_grad():
            for p, value in zip(trainable, kept, strict=True):
                p.copy_(value)
    after = distance(student, x, targets, config.batch_size)
    weights, _ = extract_weights(student, child[0])
    names = [name for name, _ in student.named_parameters()]
    trained = tuple(sorted(nid for nid in set(nodes) if any(n.startswith(f"n{nid}.") for n in names)))
    report = RepairReport(before, after, config.epochs, trained, sum(p.numel() for p in trainable))
    return weights, report

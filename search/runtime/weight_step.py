"""The ordinary weight step: what genomorph's trainer always did, as one `Step`.

Per iteration: a shuffled batch of the ``train`` split, optional cutout (images) and mixup
(classification), the task loss with label smoothing plus the weighted losses of auxiliary
outputs, gradient clipping, and an SGD (momentum, Nesterov) or Adam update at the schedule's
learning rate for this point of the epoch (constant, cosine, SGDR; a window of a longer
schedule when the budget says so). ``train_only`` trains the parameters of some nodes only.

Random draws: batch order and mixup (pair permutation and λ) from the ``batches`` generator,
cutout from the ``augment`` generator on the training device — both seeded from the
candidate's seed (`TrainContext.generator`). λ ~ Beta(α, α) is drawn by inverting the Beta CDF
at a uniform from that generator (``scipy.special.betaincinv``), since
``torch.distributions.Beta`` can only use torch's global generator.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from genomorph.search.core.config import TrainConfig
from genomorph.search.runtime.optim import make_optimizer
from genomorph.search.runtime.steps import (
    Batches,
    EpochMean,
    Step,
    StepState,
    TrainContext,
    main_output,
    task_loss,
)


def trainable(module: torch.nn.Module, train_only: Sequence[int] | None) -> list[torch.nn.Parameter]:
    """Parameters to optimise: all, or only those of the nodes in ``train_only`` (the rest frozen)."""
    if train_only is None:
        return [p for p in module.parameters() if p.requires_grad]
    prefixes = tuple(f"n{nid}." for nid in train_only)
    chosen = []
    for name, p in module.named_parameters():
        keep = name.startswith(prefixes)
        p.requires_grad_(keep)
        if keep:
            chosen.append(p)
    return chosen


def cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero a ``size``×``size`` square (clipped at the border) at a random centre of each image."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n, 1, 1), generator=generator, device=x.device)
    cx = torch.randint(0, w, (n, 1, 1), generator=generator, device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    top, left = cy - size // 2, cx - size // 2
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def beta_sample(alpha: float, generator: torch.Generator) -> float:
    """One draw of Beta(α, α) from ``generator`` (inverse CDF of a seeded uniform)."""
    from scipy.special import betaincinv

    u = float(torch.rand((), generator=generator, dtype=torch.float64))
    return float(betaincinv(alpha, alpha, u))


class WeightStep(Step):
    """Train the module's weights on a split with the trainer config's optimizer and schedule.

    ``params`` overrides which tensors train (default: all, or the nodes of
    ``ctx.train_only``); ``config`` overrides the context's trainer config (a recipe's own
    optimizer settings, e.g. DARTS' weight SGD).
    """

    name = "weights"

    def __init__(
        self,
        ctx: TrainContext,
        *,
        params: list[torch.nn.Parameter] | None = None,
        split: str = "train",
        config: TrainConfig | None = None,
    ) -> None:
        self.ctx = ctx
        self.split = split
        self.config = config or ctx.config
        self.params = params if params is not None else trainable(ctx.module, ctx.train_only)
        self.optimizer = make_optimizer(self.config, self.params)
        self.batches = Batches(
            ctx.splits[split], self.config.batch_size, ctx.device, ctx.generator("batches")
        )
        self.augment = ctx.generator("augment", ctx.device)
        self.mixup = self.config.mixup_alpha > 0 and ctx.task == "classification"
        self.cutout = self.config.cutout if ctx.data.is_image else 0
        self.loss = EpochMean(ctx.device)
        self.correct = torch.zeros((), device=ctx.device, dtype=torch.long)
        self.last_lr = self.config.lr

    def tensors(self) -> list[torch.Tensor]:
        return list(self.params)

    def steps_per_epoch(self) -> int:
        return self.batches.steps if self.params else 0

    def start_epoch(self, epoch: int) -> None:
        self.batches.shuffle()
        self.loss.reset()
        self.correct = torch.zeros((), device=self.ctx.device, dtype=torch.long)

    def step(self, epoch: int, i: int) -> None:
        ctx, config = self.ctx, self.config
        lr = ctx.lr(config.lr, epoch, i / self.batches.steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.last_lr = lr
        x, y = self.batches.batch(i, ctx.data)
        if self.cutout:
            x = cutout(x, self.cutout, self.augment)
        smoothing = config.label_smoothing
        if self.mixup:
            lam = beta_sample(config.mixup_alpha, self.batches.generator)
            partner = torch.randperm(len(y), generator=self.batches.generator).to(ctx.device)
            x = lam * x + (1 - lam) * x[partner]
        main, aux = main_output(ctx.module(x))
        if self.mixup:
            loss = lam * task_loss(ctx.task, main, y, smoothing) + (1 - lam) * task_loss(
                ctx.task, main, y[partner], smoothing
            )
        else:
            loss = task_loss(ctx.task, main, y, smoothing)
        for weight, out in zip(ctx.aux_weights, aux, strict=False):
            loss = loss + weight * task_loss(ctx.task, out, y, smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, config.grad_clip)
        self.optimizer.step()
        self.loss.add(loss, len(y))
        if ctx.task == "classification":
            self.correct += (main.detach().argmax(1) == y).sum()

    def end_epoch(self, epoch: int) -> dict[str, float]:
        record = {"lr": self.last_lr, "train_loss": self.loss.mean()}  # one device sync per epoch
        if self.ctx.task == "classification" and not self.mixup:
            record["train_accuracy"] = int(self.correct) / max(self.loss.count, 1)
        return record

    def state_dict(self) -> StepState:
        return {
            "optimizer": self.optimizer.state_dict(),
            "batches": self.batches.state_dict(),
            "augment": self.augment.get_state(),
            "last_lr": self.last_lr,
        }

    def load_state_dict(self, state: StepState) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.batches.load_state_dict(state["batches"])
        self.augment.set_state(state["augment"])
        self.last_lr = state["last_lr"]


__all__ = ["WeightStep", "beta_sample", "cutout", "trainable"]

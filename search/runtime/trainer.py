"""Train and evaluate one lowered network on whole-tensor data.

SGD (momentum, Nesterov) or Adam; the learning rate follows a per-step schedule: constant,
cosine annealing to ``min_lr`` over the run, or SGDR warm restarts (Loshchilov & Hutter; paper
002 restarts it for every child). Optional mixup, cutout, label smoothing, weight decay and
gradient clipping. Auxiliary outputs (the module returns ``(main, *aux)``) add their weighted
loss during training only. Training and evaluation time are measured apart; a non-finite loss
raises `TrainingDiverged` so the caller can mark the candidate failed.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from genomorph.search.core.config import TrainConfig
from genomorph.search.core.protocol import Task
from genomorph.search.runtime.data import Dataset, Split


class TrainingDiverged(Exception):
    """The training loss became NaN or infinite."""


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
    """Learning rate after ``epoch`` (fractional) epochs of training."""
    if config.schedule == "constant" or config.epochs == 0:
        return config.lr
    if config.schedule == "cosine":
        period, t = float(config.epochs), epoch
    else:  # sgdr: find the cycle epoch falls in; cycle i lasts T0 * mult**i epochs
        period, t = float(config.restart_period), epoch
        while t >= period:
            t -= period
            period *= config.restart_mult
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (
        1.0 + math.cos(math.pi * min(t / period, 1.0))
    )


@dataclass
class TrainReport:
    history: list[dict[str, float]] = field(default_factory=list)
    train_s: float = 0.0
    eval_s: float = 0.0
    train_loss: float | None = None
    train_accuracy: float | None = None


def _split_output(out: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    if isinstance(out, torch.Tensor):
        return out, []
    main, *aux = out
    return main, list(aux)


def _loss(task: Task, out: torch.Tensor, y: torch.Tensor, smoothing: float) -> torch.Tensor:
    if task == "regression":
        return F.mse_loss(out, y)
    return F.cross_entropy(out, y, label_smoothing=smoothing)


def _cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero a ``size``×``size`` square (clipped at the border) at a random centre of each image."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n, 1, 1), generator=generator, device=x.device)
    cx = torch.randint(0, w, (n, 1, 1), generator=generator, device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    top, left = cy - size // 2, cx - size // 2
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def _sync(device: torch.device) -> None:
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
        out, _ = _split_output(module(x))
        total_loss += float(_loss(task, out, y, 0.0)) * len(y)
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


def _trainable(module: torch.nn.Module, train_only: Sequence[int] | None) -> list[torch.nn.Parameter]:
    """Parameters to optimise: all, or only those of the nodes in ``train_only`` (repair training)."""
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


class NesterovSGD:
    """SGD with momentum, Nesterov and weight decay: torch.optim.SGD's update, step for step.

    Written out because the first use of any ``torch.optim`` optimizer imports torch._dynamo,
    1.5-3 s in every process (driver and each worker) for a search that trains many small
    networks; the update itself is the same handful of foreach ops. ``tests/search`` checks it
    against torch.optim.SGD.
    """

    def __init__(
        self,
        params: list[torch.nn.Parameter],
        lr: float,
        momentum: float,
        nesterov: bool,
        weight_decay: float,
    ) -> None:
        self.params = params
        self.param_groups = [{"lr": lr}]
        self.momentum = momentum
        self.nesterov = nesterov and momentum > 0
        self.weight_decay = weight_decay
        self.state: dict[torch.nn.Parameter, torch.Tensor] = {}  # momentum buffer per parameter

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        live = [p for p in self.params if p.grad is not None]  # as torch: no gradient, no update
        if not live:
            return
        grads = [p.grad for p in live]
        if self.weight_decay:
            grads = torch._foreach_add(grads, live, alpha=self.weight_decay)
        if self.momentum:
            seen = [i for i, p in enumerate(live) if p in self.state]
            if seen:
                buffers = [self.state[live[i]] for i in seen]
                torch._foreach_mul_(buffers, self.momentum)
                torch._foreach_add_(buffers, [grads[i] for i in seen])
            for p, g in zip(live, grads, strict=True):
                if p not in self.state:  # the first step starts the buffer at the gradient (dampening 0)
                    self.state[p] = g.detach().clone()
            buffers = [self.state[p] for p in live]
            grads = torch._foreach_add(grads, buffers, alpha=self.momentum) if self.nesterov else buffers
        torch._foreach_add_(live, grads, alpha=-self.param_groups[0]["lr"])


def _optimizer(config: TrainConfig, params: list[torch.nn.Parameter]) -> NesterovSGD | torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return NesterovSGD(params, config.lr, config.momentum, config.nesterov, config.weight_decay)


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
    on_epoch: Callable[[int, int, dict[str, float]], None] | None = None,
) -> TrainReport:
    """Train ``module`` in place for ``config.epochs`` epochs on ``train_split`` (default: train)."""
    device = device or resolve_device(config.device)
    split = train_split or data.train
    task = data.info.task
    report = TrainReport()
    params = _trainable(module, train_only)
    if config.epochs == 0 or not params or len(split) == 0:
        return report
    generator = torch.Generator(device="cpu").manual_seed(seed)
    aug_generator = torch.Generator(device=device).manual_seed(seed + 1)
    optimizer = _optimizer(config, params)
    x_all, y_all = split.x.to(device), split.y.to(device)
    n = len(split)
    batch = min(config.batch_size, n)
    # a last batch of one sample breaks batch norm in training mode: drop it
    steps = n // batch + (1 if n % batch > 1 else 0)
    mixup = config.mixup_alpha > 0 and task == "classification"
    beta = torch.distributions.Beta(config.mixup_alpha, config.mixup_alpha) if mixup else None
    for epoch in range(config.epochs):
        _sync(device)
        started = time.perf_counter()
        module.train()
        order = torch.randperm(n, generator=generator).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for step in range(steps):
            lr = lr_at(config, epoch + step / steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            idx = order[step * batch : (step + 1) * batch]
            x, y = data.normalise(x_all[idx]), y_all[idx]
            if config.cutout and data.is_image:
                x = _cutout(x, config.cutout, aug_generator)
            if beta is not None:
                lam = float(beta.sample())
                partner = torch.randperm(len(y), generator=generator).to(device)
                x = lam * x + (1 - lam) * x[partner]
            main, aux = _split_output(module(x))
            if beta is not None:
                loss = lam * _loss(task, main, y, config.label_smoothing) + (1 - lam) * _loss(
                    task, main, y[partner], config.label_smoothing
                )
            else:
                loss = _loss(task, main, y, config.label_smoothing)
            for weight, out in zip(aux_weights, aux, strict=False):
                loss = loss + weight * _loss(task, out, y, config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            loss_sum += loss.detach() * len(y)
            if task == "classification":
                correct += (main.detach().argmax(1) == y).sum()
            seen += len(y)
        train_loss = float(loss_sum) / max(seen, 1)  # one device sync per epoch
        _sync(device)
        report.train_s += time.perf_counter() - started
        if not math.isfinite(train_loss):
            raise TrainingDiverged(f"training loss became {train_loss} in epoch {epoch + 1}")
        record = {"epoch": float(epoch + 1), "lr": lr, "train_loss": train_loss}
        report.train_loss = train_loss
        if task == "classification" and beta is None:
            report.train_accuracy = int(correct) / max(seen, 1)
            record["train_accuracy"] = report.train_accuracy
        last = epoch + 1 == config.epochs
        if config.eval_every and ((epoch + 1) % config.eval_every == 0 or last) and len(data.val):
            started = time.perf_counter()
            val = evaluate_split(module, data, data.val, device, config.eval_batch_size)
            _sync(device)
            report.eval_s += time.perf_counter() - started
            record.update({f"val_{k}": v for k, v in val.items()})
        report.history.append(record)
        if on_epoch is not None:
            on_epoch(epoch + 1, config.epochs, record)
    return report


def merge_splits(a: Split, b: Split) -> Split:
    """Train and validation together, for the final training of a winner."""
    return Split(torch.cat([a.x, b.x]), torch.cat([a.y, b.y]))


__all__ = [
    "auto_threads",
    "TrainReport",
    "TrainingDiverged",
    "evaluate_split",
    "lr_at",
    "merge_splits",
    "resolve_device",
    "train",
]

"""The steps of DARTS' bilevel optimisation (paper 003 Algorithm 1) on a lowered supernet.

- `SGDUpdate`: SGD with momentum on the ordinary weights (not α), gradient clipping, a learning
  rate set per epoch by a cosine schedule down to ``min_lr`` (as DARTS' ``CosineAnnealingLR``).
- `ArchUpdate`: Adam on α. First order descends ∇α L_val(w, α). Second order descends eq. (17):

      ∇α L_val(w', α) − ξ ∇²α,w L_train(w, α) ∇w' L_val(w', α),   w' = w − ξ ∇w L_train(w, α)

  where the unrolled w' uses the weight optimiser's own update (momentum buffer and weight
  decay, as the official ``_compute_unrolled_model``), and the Hessian-vector product is the
  central difference (∇α L_train(w⁺, α) − ∇α L_train(w⁻, α)) / 2ε with w± = w ± ε ∇w' L_val and
  ε = 0.01 / ‖∇w' L_val‖.

Unlike the official code, the unrolled step never copies the model: w' and w± are written into
the module's own parameters and w is restored from one saved copy of the weight tensors.

Data-parallel (``reduce``, `data_parallel.DataParallel.sum`): each rank's loss is its share of
the global batch's, so gradients are summed over the ranks before anything reads them: the
weight gradient before clipping, α's gradient, and in the unrolled step ∇w L_train (for w'),
∇w' L_val (for ε and w±) and, once, α's whole hypergradient (linear in the ranks' parts).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Batch = tuple[Tensor, Tensor]
LossFn = Callable[[Batch], Tensor]
#: sums tensors over the ranks of a data-parallel search; ``None``: one process
Reduce = Callable[[Sequence[Tensor]], list[Tensor]]

#: r of the official code: ε = R / ‖∇w' L_val‖
HESSIAN_R = 0.01


def cosine_lr(lr: float, min_lr: float, epoch: int, epochs: int) -> float:
    """DARTS' per-epoch ``CosineAnnealingLR(T_max=epochs, eta_min=min_lr)`` value at ``epoch``."""
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))


def classification_loss(module: nn.Module) -> LossFn:
    """Cross-entropy of the module's main output (auxiliary outputs are ignored in the search)."""

    def loss(batch: Batch) -> Tensor:
        out = module(batch[0])
        if not isinstance(out, Tensor):
            out = out[0]
        return F.cross_entropy(out, batch[1])

    return loss


class SGDUpdate:
    """One SGD update of ``params`` from the training loss of a batch (torch's SGD: its momentum
    buffers are what the unrolled step of the second order reads)."""

    def __init__(
        self,
        params: Sequence[nn.Parameter],
        lr: float,
        momentum: float,
        weight_decay: float,
        grad_clip: float,
        reduce: Reduce | None = None,
    ) -> None:
        self.params = list(params)
        self.reduce = reduce
        self.optimizer = torch.optim.SGD(self.params, lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.grad_clip = grad_clip

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self, loss_fn: LossFn, batch: Batch) -> Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(batch)
        loss.backward()
        if self.reduce is not None:
            live = [p for p in self.params if p.grad is not None]
            *summed, loss = self.reduce([*(p.grad for p in live), loss.detach()])  # type: ignore[misc]
            for p, g in zip(live, summed, strict=True):
                p.grad = g
        nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.optimizer.step()
        return loss.detach()

    def unrolled_direction(self) -> list[Tensor | None]:
        """The momentum part of the next update (μ·buffer), or ``None`` before the first step."""
        group = self.optimizer.param_groups[0]
        out: list[Tensor | None] = []
        for p in self.params:
            buf = self.optimizer.state.get(p, {}).get("momentum_buffer")
            out.append(None if buf is None else buf * group["momentum"])
        return out

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)


class ArchUpdate:
    """One Adam update of the architecture parameters ``alphas`` from the validation loss."""

    def __init__(
        self,
        alphas: Sequence[Tensor],
        lr: float,
        betas: tuple[float, float],
        weight_decay: float,
        order: int = 1,
        hessian_r: float = HESSIAN_R,
        reduce: Reduce | None = None,
    ) -> None:
        self.alphas = list(alphas)
        self.reduce = reduce
        self.hessian_r = hessian_r
        self.optimizer = torch.optim.Adam(self.alphas, lr=lr, betas=betas, weight_decay=weight_decay)
        self.order = order

    def step(
        self, loss_fn: LossFn, val: Batch, train: Batch | None = None, weights: SGDUpdate | None = None
    ) -> Tensor:
        """Update α; second order needs the training batch and the weight step (its lr, momentum, decay)."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.order == 1:
            loss = loss_fn(val)
            grads = torch.autograd.grad(loss, self.alphas)
            if self.reduce is not None:
                *grads, loss = self.reduce([*grads, loss.detach()])  # type: ignore[assignment]
        else:
            assert train is not None and weights is not None, "second order needs a training batch"
            loss, grads = unrolled_arch_grads(
                loss_fn, self.alphas, weights, train, val, self.hessian_r, self.reduce
            )
        for a, g in zip(self.alphas, grads, strict=True):
            a.grad = g
        self.optimizer.step()
        return loss.detach()

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)


def unrolled_arch_grads(
    loss_fn: LossFn,
    alphas: Sequence[Tensor],
    weights: SGDUpdate,
    train: Batch,
    val: Batch,
    r: float = HESSIAN_R,
    reduce: Reduce | None = None,
) -> tuple[Tensor, list[Tensor]]:
    """Eq. (17): the validation loss at w' and its approximate hypergradient with respect to α.

    ``r`` sets the finite difference's step, ε = r / ‖∇w' L_val‖ (the official code: 0.01).

    The module's parameters hold w on entry and on return (bit for bit: restored from a copy).
    ``reduce`` sums the ranks' parts of a data-parallel step (see the module docstring).
    """
    total = reduce if reduce is not None else list
    params = weights.params
    group = weights.optimizer.param_groups[0]
    xi, decay = float(group["lr"]), float(group["weight_decay"])
    saved = [p.detach().clone() for p in params]
    # w' = w - ξ (μ·buffer + ∇w L_train + decay·w): one step of the weight optimiser, unclipped
    grads_w = torch.autograd.grad(loss_fn(train), params, allow_unused=True)
    if reduce is not None:
        grads_w = _sum_present(reduce, grads_w)
    moments = weights.unrolled_direction()
    with torch.no_grad():
        for p, g, m in zip(params, grads_w, moments, strict=True):
            d = (g if g is not None else torch.zeros_like(p)) + decay * p
            if m is not None:
                d = d + m
            p.sub_(xi * d)
    try:
        val_loss = loss_fn(val)
        grads = torch.autograd.grad(val_loss, [*alphas, *params], allow_unused=True)
        d_alpha = [
            g if g is not None else torch.zeros_like(a)
            for g, a in zip(grads[: len(alphas)], alphas, strict=True)
        ]
        v = [
            g if g is not None else torch.zeros_like(p)
            for g, p in zip(grads[len(alphas) :], params, strict=True)
        ]
        v = total(v)  # ε and w± from the global ∇w' L_val: the same on every rank
        norm = torch.sqrt(sum((t * t).sum() for t in v))  # type: ignore[arg-type]
        eps = r / max(float(norm), 1e-12)
        hessian = _finite_difference(loss_fn, alphas, params, saved, v, eps, train)
    finally:
        with torch.no_grad():
            for p, w in zip(params, saved, strict=True):
                p.copy_(w)
    *hypergrad, loss = total(
        [*(d - xi * h for d, h in zip(d_alpha, hessian, strict=True)), val_loss.detach()]
    )
    return loss, hypergrad


def _sum_present(reduce: Reduce, grads: Sequence[Tensor | None]) -> list[Tensor | None]:
    """``grads`` summed over the ranks, ``None`` (unused on every rank alike) left as it is."""
    present = [i for i, g in enumerate(grads) if g is not None]
    summed = reduce([grads[i] for i in present])  # type: ignore[misc]
    out: list[Tensor | None] = list(grads)
    for i, g in zip(present, summed, strict=True):
        out[i] = g
    return out


def _finite_difference(
    loss_fn: LossFn,
    alphas: Sequence[Tensor],
    params: Sequence[Tensor],
    saved: Sequence[Tensor],
    v: Sequence[Tensor],
    eps: float,
    train: Batch,
) -> list[Tensor]:
    """(∇α L_train(w + εv) − ∇α L_train(w − εv)) / 2ε, the module's weights set in place."""
    sides = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            for p, w, d in zip(params, saved, v, strict=True):
                p.copy_(w).add_(d, alpha=sign * eps)
        grads = torch.autograd.grad(loss_fn(train), list(alphas), allow_unused=True)
        sides.append(
            [g if g is not None else torch.zeros_like(a) for g, a in zip(grads, alphas, strict=True)]
        )
    return [(gp - gm) / (2 * eps) for gp, gm in zip(*sides, strict=True)]


__all__ = [
    "HESSIAN_R",
    "ArchUpdate",
    "Reduce",
    "SGDUpdate",
    "classification_loss",
    "cosine_lr",
    "unrolled_arch_grads",
]

"""Optimizers the steps build: a dependency-light SGD and torch's Adam, both checkpointable."""

from __future__ import annotations

from typing import Any

import torch
from genomorph.search.core.config import TrainConfig


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

    def state_dict(self) -> dict[str, Any]:
        """Momentum buffers by parameter index (``None``: not started yet) and the current lr."""
        return {
            "lr": float(self.param_groups[0]["lr"]),
            "buffers": [self.state.get(p) for p in self.params],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        buffers = state["buffers"]
        if len(buffers) != len(self.params):
            raise ValueError(f"optimizer state has {len(buffers)} buffers for {len(self.params)} parameters")
        self.param_groups[0]["lr"] = state["lr"]
        self.state = {
            p: b.to(p.device).clone() for p, b in zip(self.params, buffers, strict=True) if b is not None
        }


Optimizer = NesterovSGD | torch.optim.Optimizer


def make_optimizer(config: TrainConfig, params: list[torch.nn.Parameter]) -> Optimizer:
    """The optimizer ``config`` asks for over ``params``."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return NesterovSGD(params, config.lr, config.momentum, config.nesterov, config.weight_decay)


__all__ = ["NesterovSGD", "Optimizer", "make_optimizer"]

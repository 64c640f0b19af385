"""The ``noisy-decay`` recipe: paper 000's gentle removal of the units about to be pruned.

"To make removal gradual, we decay the outgoing connection of least important neurons while
finetuning other neurons": every weight trains as usual (`WeightStep`), and after each of its
updates `DecayStep` scales the outgoing weights of the doomed units by ``(T − t) / (T − t + 1)``
at step ``t``, so they fall linearly to exactly zero at step ``T = decay_steps`` (or at the last
step of the fine-tuning, if that comes first) and stay zero. Pruning them afterwards
(``prune-neurons``, on the strategy side) then changes nothing.

The strategy names the outgoing weights itself, as input columns (axis 1) of the reading
layers' tensors (``"n12.weight": [3, 7]``), so the recipe needs no graph. After training the
recipe measures the training split in eval mode (``train_accuracy_eval``, or ``train_r2``):
the numbers of the final weights, not the running mean over the last epoch. With 0 epochs
that is all it does (the ``save`` evaluation of an iteration).
"""

from __future__ import annotations

from typing import Any

import torch
from genomorph.search.runtime.recipes import Recipe, register
from genomorph.search.runtime.steps import Step, StepState, TrainContext
from genomorph.search.runtime.weight_step import WeightStep
from pydantic import BaseModel, ConfigDict, Field


class DecayOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    outgoing: dict[str, list[int]] = Field(default_factory=dict)
    """Module tensor name (``n12.weight``) -> input columns (axis 1) to decay to zero."""
    decay_steps: int = Field(default=60, ge=1)
    measure_train: bool = True
    """Measure the final weights on the training split (``train_accuracy_eval``); the strategy
    turns it off where nothing reads the numbers (the shrink candidate: its pruned successor, the
    ``save`` evaluation, is measured)."""


class DecayStep(Step):
    """Scale the outgoing weights of doomed units after every weight update (no optimizer)."""

    name = "decay"

    def __init__(self, ctx: TrainContext, options: DecayOptions, steps_per_epoch: int) -> None:
        self.ctx = ctx
        named = dict(ctx.module.named_parameters())
        self.targets: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
        for name, cols in sorted(options.outgoing.items()):
            if name not in named:
                raise KeyError(f"the network has no tensor {name} to decay")
            index = torch.as_tensor(cols, dtype=torch.long, device=named[name].device)
            self.targets.append((named[name], index))
        self.per_epoch = steps_per_epoch
        # the fade ends at decay_steps, or at the last update if the fine-tuning is shorter
        self.total = max(1, min(options.decay_steps, steps_per_epoch * max(ctx.epochs, 1)))
        self.t = 0

    def tensors(self) -> list[torch.Tensor]:
        return []

    def steps_per_epoch(self) -> int:
        return self.per_epoch

    @torch.no_grad()
    def step(self, epoch: int, i: int) -> None:
        self.t += 1
        left = max(self.total - self.t, 0)
        factor = left / (left + 1)  # the product over t = 1..T is (T-1)/T ... 0/1: linear to zero
        for param, cols in self.targets:
            param.index_copy_(1, cols, param.index_select(1, cols) * factor)

    def end_epoch(self, epoch: int) -> dict[str, float]:
        return {"decay_factor": max(self.total - self.t, 0) / self.total}

    def state_dict(self) -> StepState:
        return {"t": self.t}

    def load_state_dict(self, state: StepState) -> None:
        self.t = int(state["t"])


@register
class NoisyDecay(Recipe):
    name = "noisy-decay"
    Options = DecayOptions

    def steps(self, ctx: TrainContext) -> list[Step]:
        weights = WeightStep(ctx)
        options: DecayOptions = self.options  # type: ignore[assignment]
        if not options.outgoing:
            return [weights]
        return [weights, DecayStep(ctx, options, weights.steps_per_epoch())]

    def extra(self, ctx: TrainContext, steps: list[Step], report: Any) -> dict[str, Any]:
        from genomorph.search.runtime.loop import evaluate_split

        if not self.options.measure_train:  # type: ignore[attr-defined]
            return {}
        measured = evaluate_split(
            ctx.module, ctx.data, ctx.splits["train"], ctx.device, ctx.config.eval_batch_size
        )
        if ctx.task == "classification":
            return {"train_accuracy_eval": measured["accuracy"], "train_loss_eval": measured["loss"]}
        return {"train_r2": measured["r2"], "train_loss_eval": measured["loss"]}


__all__ = ["DecayOptions", "DecayStep", "NoisyDecay"]

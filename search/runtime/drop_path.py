"""Drop-path (paper 003 §4.8.2, DARTS' ``train.py``): the rate of the genome's stochastic depth.

A DARTS evaluation network carries a ``stochastic_depth(p, schedule=linear)`` after the op of
every cell edge except the identity (the converter puts it there, ``grammar/darts.py``). The
official training sets ``model.drop_path_prob = P * epoch / epochs`` at the start of every
epoch (0-based): no drop in the first epoch, ``P (E-1)/E`` in the last. `DropPathSchedule` is
that assignment as a plug-in `Step` of the standard recipe: it updates nothing itself, it only
sets ``progress`` on the lowered `StochasticDepth` modules in ``start_epoch``. The rate is a pure
function of the epoch, so a resumed training sets the same rate for its next epoch and needs no
state; the per-sample masks come from torch's global generator, which the loop's epoch
checkpoints save and restore.

``TrainConfig.drop_path`` (``--drop-path P``) replaces the rate ``p`` of every stochastic_depth
op (each keeps its schedule); ``--drop-path 0`` turns drop-path off.
"""

from __future__ import annotations

import logging

from genomorph.lower.modules import StochasticDepth
from genomorph.search.runtime.steps import Step, StepState, TrainContext

log = logging.getLogger(__name__)


def stochastic_depth_modules(module: object) -> list[StochasticDepth]:
    """The lowered stochastic-depth modules of a network (in module order)."""
    modules = getattr(module, "modules", None)
    if modules is None:
        return []
    return [m for m in modules() if isinstance(m, StochasticDepth)]


class DropPathSchedule(Step):
    """Sets the drop-path rate of the epoch at its start; no updates, no state of its own."""

    name = "drop-path"

    def __init__(self, ctx: TrainContext, modules: list[StochasticDepth]) -> None:
        self.ctx = ctx
        self.modules = modules
        self.rate = ctx.config.drop_path
        if self.rate is not None:
            for m in modules:
                m.p = self.rate

    def tensors(self) -> list:
        return []

    def steps_per_epoch(self) -> int:
        return 0

    def progress(self, epoch: int) -> float:
        """``epoch / epochs`` of the whole schedule (a window of a longer one in successive halving)."""
        ctx = self.ctx
        period = ctx.schedule_epochs if ctx.schedule_epochs is not None else float(ctx.epochs)
        return (ctx.schedule_offset + epoch) / period if period > 0 else 0.0

    def start_epoch(self, epoch: int) -> None:
        progress = self.progress(epoch)
        for m in self.modules:
            m.progress = progress

    def step(self, epoch: int, i: int) -> None:  # pragma: no cover - steps_per_epoch() is 0
        raise AssertionError("DropPathSchedule makes no updates")

    def end_epoch(self, epoch: int) -> dict[str, float]:
        rates = [m.rate for m in self.modules]
        return {"drop_path": max(rates)} if rates else {}

    def finish(self) -> None:
        for m in self.modules:  # what an evaluation or a later fine-tune starts from: the full rate
            m.progress = 1.0

    def state_dict(self) -> StepState:
        return {}

    def load_state_dict(self, state: StepState) -> None:
        pass


def drop_path_steps(ctx: TrainContext) -> list[Step]:
    """``[DropPathSchedule]`` when the network has stochastic depth to schedule or to re-rate, else ``[]``.

    Networks without any keep the step list they always had (their epoch checkpoints name it)."""
    modules = stochastic_depth_modules(ctx.module)
    scheduled = [m for m in modules if m.schedule == "linear"]
    if ctx.config.drop_path is not None:
        if not modules:
            log.warning(
                "drop_path %.3g is set, but the network has no stochastic_depth op", ctx.config.drop_path
            )
            return []
        return [DropPathSchedule(ctx, modules)]
    return [DropPathSchedule(ctx, scheduled)] if scheduled else []


__all__ = ["DropPathSchedule", "drop_path_steps", "stochastic_depth_modules"]

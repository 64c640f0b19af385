"""``genomorph train ... --out RUN_DIR``: one genome trained once, as a run of the run store.

Not a search: a strategy with a single candidate, so a training gets everything a search has
for free — the run store, per-epoch checkpoints, ``genomorph resume RUN_DIR`` after a kill
(continuing mid-candidate from the last finished epoch), ``genomorph report`` and
``summary.json``. The candidate's request comes whole from the config, so the run needs
nothing but its store to resume.
"""

from __future__ import annotations

from typing import Any, ClassVar

from genomorph.search.core.protocol import (
    JSON,
    Budget,
    EvalRequest,
    EvalResult,
    Proposal,
    SearchContext,
    Strategy,
    StrategyState,
)
from pydantic import BaseModel, ConfigDict, Field


class TrainOnceConfig(BaseModel):
    """The one training: genome text, budget, seed and recipe (what ``genomorph train`` was given)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    genome: str
    budget: Budget = Budget()
    seed: int = 0
    recipe: str = "standard"
    recipe_options: dict[str, Any] = Field(default_factory=dict)


class TrainOnceState(StrategyState):
    proposed: bool = False
    observed: bool = False
    finished: bool = False
    metrics: dict[str, JSON] | None = None
    """The candidate's metrics (``Metrics.model_dump``), for ``summary.json``."""
    reason: str | None = None


class TrainOnce(Strategy[TrainOnceConfig, TrainOnceState]):
    name: ClassVar[str] = "train"

    def propose(self, ctx: SearchContext) -> list[Proposal]:
        if self.state.proposed:
            return []
        self.state.proposed = True
        c = self.config
        request = EvalRequest(
            genome=c.genome,
            budget=c.budget,
            seed=c.seed,
            recipe=c.recipe,
            recipe_options=c.recipe_options,
            meta={"role": "train"},
        )
        return [Proposal(request)]

    def observe(self, result: EvalResult) -> None:
        self.state.observed = True
        self.state.finished = result.ok
        self.state.reason = result.reason
        if result.metrics is not None:
            self.state.metrics = result.metrics.model_dump(mode="json", exclude={"history"})

    def done(self) -> bool:
        return self.state.observed

    def planned(self) -> int | None:
        return 1

    def result_candidate(self) -> int | None:
        return 0 if self.state.finished else None

    def summary(self) -> dict[str, JSON]:
        m = self.state.metrics or {}
        keys = ("val_accuracy", "val_loss", "val_r2", "test_loss", "train_loss", "train_accuracy")
        out: dict[str, JSON] = {k: m.get(k) for k in keys}
        out["epochs"] = m.get("epochs")
        out["final"] = self.config.budget.train_on == "train+val"
        if self.state.reason:
            out["failure"] = self.state.reason
        return out


__all__ = ["TrainOnce", "TrainOnceConfig", "TrainOnceState"]

"""Random search (paper 004's baseline): independent random genomes from a search space.

Every candidate is sampled uniformly from the space and trained from scratch; when all are in,
the one with the best validation accuracy gets a final training on train+val and a test
evaluation. ``--budget`` is the number of candidates.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from genomorph.search.core.protocol import (
    JSON,
    Budget,
    EvalRequest,
    EvalResult,
    Proposal,
    SearchContext,
    SearchSetup,
    Strategy,
)
from pydantic import BaseModel, Field

from ._common import (
    OTHER,
    Member,
    SpaceSearchOptions,
    better,
    final_proposal,
    pick,
    rng_from_state,
    rng_state,
    space_from_setup,
)
from .sequential import genes_to_json, genome_text, sample

#: defaults per dataset (see docs/strategies.md for the measurements behind them)
DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"candidates": 16, "epochs": 8, "final_epochs": 10},
    "mnist": {"candidates": 8, "epochs": 1, "final_epochs": 2},
    "fashion-mnist": {"candidates": 8, "epochs": 2, "final_epochs": 2},
    OTHER: {"candidates": 12, "epochs": 5, "final_epochs": 5},
}


class RandomConfig(SpaceSearchOptions):
    """Options of ``--strategy random`` (``None`` = the dataset's default)."""

    candidates: int | None = Field(default=None, ge=1)
    """How many random genomes to train (``--budget``)."""


class RandomSearch(Strategy):
    name: ClassVar[str] = "random"
    Config: ClassVar[type[BaseModel]] = RandomConfig

    def __init__(self, config: BaseModel, setup: SearchSetup) -> None:
        super().__init__(config, setup)
        cfg: RandomConfig = config  # type: ignore[assignment]
        data = setup.dataset.name
        self.space = space_from_setup(setup, self.name)
        self.candidates: int = pick("candidates", cfg.candidates, DEFAULTS, data, setup.budget, "--budget")
        self.epochs: int = pick("epochs", cfg.epochs, DEFAULTS, data, setup.epochs, "--epochs")
        self.final_epochs: int = pick("final_epochs", cfg.final_epochs, DEFAULTS, data)
        self.rng = np.random.default_rng(setup.seed)
        self.issued = 0
        self.observed = 0
        self.best: Member | None = None
        self.final_id: int | None = None
        self.final_issued = False
        self.finished = False

    # ------------------------------------------------------------------ protocol
    def propose(self, ctx: SearchContext) -> list[Proposal]:
        out: list[Proposal] = []
        if ctx.wrap_up:
            self.candidates = self.issued  # stop exploring; finish with what is in flight
        while self.issued < self.candidates and len(out) < max(1, ctx.slots):
            genes = sample(self.space, self.rng)
            request = EvalRequest(
                genome=genome_text(self.space, genes),
                budget=Budget(epochs=self.epochs, lr=self.config.lr, schedule="cosine"),  # type: ignore[attr-defined]
                meta={"role": "sample", "index": self.issued, "genes": genes_to_json(genes)},
            )
            out.append(Proposal(request))
            self.issued += 1
        if self.observed == self.issued == self.candidates and not self.final_issued:
            out.extend(self._finish())
        return out

    def _finish(self) -> list[Proposal]:
        self.final_issued = True
        if self.best is None:  # every candidate failed: nothing to train further
            self.finished = True
            return []
        return [final_proposal(self.best, self.final_epochs, self.config.lr)]  # type: ignore[attr-defined]

    def observe(self, result: EvalResult) -> None:
        if result.request.meta.get("role") == "final":
            self.final_id = result.id if result.ok else None
            self.finished = True
            return
        self.observed += 1
        if result.ok:
            self.best = better(self.best, Member.from_result(result, result.request.meta.get("genes")))

    def planned(self) -> int:
        """The random genomes and the final training of the best."""
        return self.candidates + 1

    def done(self) -> bool:
        return self.finished

    def result_candidate(self) -> int | None:
        return self.final_id if self.final_id is not None else (self.best.id if self.best else None)

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, JSON]:
        return {
            "rng": rng_state(self.rng),
            "candidates": self.candidates,
            "issued": self.issued,
            "observed": self.observed,
            "best": self.best.model_dump() if self.best else None,
            "final_id": self.final_id,
            "final_issued": self.final_issued,
            "finished": self.finished,
        }

    def load_state(self, state: dict[str, JSON]) -> None:
        self.rng = rng_from_state(state["rng"])
        self.candidates = state["candidates"]
        self.issued = state["issued"]
        self.observed = state["observed"]
        self.best = Member.model_validate(state["best"]) if state["best"] else None
        self.final_id = state["final_id"]
        self.final_issued = state["final_issued"]
        self.finished = state["finished"]

"""Random search (paper 004's baseline): independent random genomes from a search space.

Every candidate is sampled uniformly from the space and trained from scratch; when all are in,
the one with the best validation accuracy gets a final training on train+val and a test
evaluation. ``--budget`` is the number of candidates.
"""

from __future__ import annotations

from typing import ClassVar

from genomorph.search.core.protocol import (
    Budget,
    EvalRequest,
    EvalResult,
    Proposal,
    Rng,
    SearchContext,
    SearchSetup,
    Strategy,
    StrategyState,
    seeded,
)
from pydantic import Field

from ._common import Member, SpaceSearchOptions, better, final_proposal, space_from_setup
from .scale import DataScale, resolve
from .sequential import genes_to_json, genome_text, sample

#: the defaults on the reference data (digits), scaled to the data given by `scale.DataScale`
REFERENCE = {"candidates": 16, "epochs": 8, "final_epochs": 10}


class RandomConfig(SpaceSearchOptions):
    """Options of ``--strategy random`` (``None`` = scaled to the data)."""

    candidates: int | None = Field(default=None, ge=1)
    """How many random genomes to train (``--budget``)."""


class RandomState(StrategyState):
    rng: Rng
    stopped_at: int | None = None
    """Candidates issued when the run was told to wrap up (no more after them)."""
    issued: int = 0
    observed: int = 0
    best: Member | None = None
    final_id: int | None = None
    final_issued: bool = False
    finished: bool = False


class RandomSearch(Strategy[RandomConfig, RandomState]):
    name: ClassVar[str] = "random"

    def __init__(self, config: RandomConfig, setup: SearchSetup) -> None:
        super().__init__(config, setup)
        scale = DataScale.of(setup.dataset)
        self.space = space_from_setup(setup, self.name)
        self.epochs = resolve(
            "epochs", config.epochs, scale.epochs(REFERENCE["epochs"]), setup.epochs, "--epochs"
        )
        default_candidates = scale.count(REFERENCE["candidates"], REFERENCE["epochs"], minimum=4)
        self.candidates_planned = resolve(
            "candidates", config.candidates, default_candidates, setup.budget, "--budget"
        )
        self.final_epochs = resolve(
            "final_epochs", config.final_epochs, scale.epochs(REFERENCE["final_epochs"])
        )

    def initial_state(self) -> RandomState:
        return RandomState(rng=seeded(self.setup.seed))

    @property
    def candidates(self) -> int:
        """Genomes this run samples: the planned number, or fewer once told to wrap up."""
        stopped = self.state.stopped_at
        return self.candidates_planned if stopped is None else stopped

    # ------------------------------------------------------------------ protocol
    def propose(self, ctx: SearchContext) -> list[Proposal]:
        state = self.state
        out: list[Proposal] = []
        if ctx.wrap_up:
            state.stopped_at = state.issued  # stop exploring; finish with what is in flight
        while state.issued < self.candidates and len(out) < max(1, ctx.slots):
            genes = sample(self.space, state.rng)
            request = EvalRequest(
                genome=genome_text(self.space, genes),
                budget=Budget(epochs=self.epochs, lr=self.config.lr, schedule="cosine"),
                meta={"role": "sample", "index": state.issued, "genes": genes_to_json(genes)},
            )
            out.append(Proposal(request))
            state.issued += 1
        if state.observed == state.issued == self.candidates and not state.final_issued:
            out.extend(self._finish())
        return out

    def _finish(self) -> list[Proposal]:
        self.state.final_issued = True
        if self.state.best is None:  # every candidate failed: nothing to train further
            self.state.finished = True
            return []
        return [final_proposal(self.state.best, self.final_epochs, self.config.lr)]

    def observe(self, result: EvalResult) -> None:
        state = self.state
        if result.request.meta.get("role") == "final":
            state.final_id = result.id if result.ok else None
            state.finished = True
            return
        state.observed += 1
        if result.ok:
            state.best = better(state.best, Member.from_result(result, result.request.meta.get("genes")))

    def planned(self) -> int:
        """The random genomes and the final training of the best."""
        return self.candidates + 1

    def done(self) -> bool:
        return self.state.finished

    def retained(self) -> list[int]:
        """Candidates train from scratch: only the best's weights are used again (its final training)."""
        return [self.state.best.id] if self.state.best else []

    def result_candidate(self) -> int | None:
        state = self.state
        return state.final_id if state.final_id is not None else (state.best.id if state.best else None)

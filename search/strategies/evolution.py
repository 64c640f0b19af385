"""Aging (regularized) evolution, paper 004 Algorithm 1, over a sequential search space.

    population <- P random genomes, trained           (init)
    until |history| = C:                               (C counts the init genomes too)
        sample S members uniformly (with replacement), parent = the most accurate
        child = MUTATE(parent), trained
        add child to the right of the population, remove the oldest from the left
    return the most accurate genome of the history

MUTATE draws one of swap / inversion / filter / layer / add (`mutations`) and rejects mutants
outside the space. Children are trained from scratch (the genome changes, not the weights).

Parallel workers: with ``w = setup.max_parallel`` evaluations in flight, child number ``k`` is
bred right after observing evaluation ``max(P-1, k-w)``. Results are observed in candidate-id
order, so every choice depends only on the seed and ``w``, never on which worker was faster;
``w = 1`` is exactly Algorithm 1. A failed candidate counts towards C but never joins the
population; the population then refills to P before the oldest is removed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
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
from pydantic import BaseModel, Field, field_validator

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
from .mutations import MUTATIONS, mutate
from .sequential import Genes, genes_from_json, genes_to_json, genome_text, sample

#: defaults per dataset (see docs/strategies.md for the measurements behind them)
DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"population": 8, "cycles": 24, "sample_size": 3, "epochs": 8, "final_epochs": 10},
    "mnist": {"population": 6, "cycles": 12, "sample_size": 3, "epochs": 1, "final_epochs": 2},
    "fashion-mnist": {"population": 6, "cycles": 12, "sample_size": 3, "epochs": 2, "final_epochs": 2},
    OTHER: {"population": 10, "cycles": 40, "sample_size": 3, "epochs": 5, "final_epochs": 5},
}


class EvolutionConfig(SpaceSearchOptions):
    """Options of ``--strategy evolution`` (``None`` = the dataset's default)."""

    population: int | None = Field(default=None, ge=1)
    """P: population size (also the number of random initial genomes)."""
    cycles: int | None = Field(default=None, ge=1)
    """C: total candidates trained, the initial population included (``--budget``)."""
    sample_size: int | None = Field(default=None, ge=1)
    """S: tournament size; the parent is the most accurate of S uniformly drawn members."""
    mutations: tuple[str, ...] = ("swap", "inversion", "filter", "layer", "add")
    """Mutations drawn uniformly for every child."""

    @field_validator("mutations")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in v if m not in MUTATIONS]
        if unknown or not v:
            raise ValueError(f"unknown mutations {unknown}; choose from {sorted(MUTATIONS)}")
        return v


def tournament(members: Sequence[Member], rng: np.random.Generator, size: int) -> Member:
    """The most accurate of ``size`` members drawn uniformly with replacement (first drawn wins ties)."""
    picks = rng.integers(len(members), size=size)
    parent = members[int(picks[0])]
    for i in picks[1:]:
        if members[int(i)].objective > parent.objective:
            parent = members[int(i)]
    return parent


class AgingEvolution(Strategy):
    name: ClassVar[str] = "evolution"
    Config: ClassVar[type[BaseModel]] = EvolutionConfig

    def __init__(self, config: BaseModel, setup: SearchSetup) -> None:
        super().__init__(config, setup)
        cfg: EvolutionConfig = config  # type: ignore[assignment]
        data = setup.dataset.name
        self.space = space_from_setup(setup, self.name)
        self.population_size: int = pick("population", cfg.population, DEFAULTS, data)
        self.cycles: int = pick("cycles", cfg.cycles, DEFAULTS, data, setup.budget, "--budget")
        self.sample_size: int = pick("sample_size", cfg.sample_size, DEFAULTS, data)
        self.epochs: int = pick("epochs", cfg.epochs, DEFAULTS, data, setup.epochs, "--epochs")
        self.final_epochs: int = pick("final_epochs", cfg.final_epochs, DEFAULTS, data)
        self.width = max(1, setup.max_parallel)
        self.rng = np.random.default_rng(setup.seed)
        self.population: deque[Member] = deque()
        self.best: Member | None = None
        #: bred but not yet proposed: (genes, parent id, mutation description)
        self.queue: list[tuple[Genes, int | None, str]] = []
        self.bred = 0  # genomes created so far (= index of the next one)
        self.observed = 0
        self.final_id: int | None = None
        self.final_issued = False
        self.finished = False
        # the initial population does not depend on any result: breed it all now
        while self.bred < min(self.population_size, self.cycles):
            self._breed_random()

    # ------------------------------------------------------------------ breeding
    def _breed_random(self) -> None:
        self.queue.append((sample(self.space, self.rng), None, "random"))
        self.bred += 1

    def _breed_child(self) -> None:
        if not self.population:  # every genome so far failed: start over from random
            self._breed_random()
            return
        parent = tournament(list(self.population), self.rng, self.sample_size)
        assert parent.genes is not None
        made = mutate(self.space, genes_from_json(parent.genes), self.rng, self.config.mutations)  # type: ignore[attr-defined]
        if made is None:  # no mutation of this parent stays in the space
            self.queue.append((sample(self.space, self.rng), parent.id, "random (no valid mutant)"))
        else:
            genes, _, description = made
            self.queue.append((genes, parent.id, description))
        self.bred += 1

    def _request(self, index: int, genes: Genes, parent: int | None, how: str) -> Proposal:
        request = EvalRequest(
            genome=genome_text(self.space, genes),
            budget=Budget(epochs=self.epochs, lr=self.config.lr, schedule="cosine"),  # type: ignore[attr-defined]
            parent=parent,
            rewrites=() if parent is None else ({"mutation": how},),
            meta={"role": "init" if index < self.population_size else "child", "index": index,
                  "genes": genes_to_json(genes), "mutation": how},
        )  # fmt: skip
        return Proposal(request)

    # ------------------------------------------------------------------ protocol
    def propose(self, ctx: SearchContext) -> list[Proposal]:
        if ctx.wrap_up and self.cycles > self.bred:
            self.cycles = self.bred - len(self.queue)  # stop: nothing new beyond what is in flight
            self.queue.clear()
        out: list[Proposal] = []
        first = self.bred - len(self.queue)
        while self.queue and len(out) < max(1, ctx.slots):
            genes, parent, how = self.queue.pop(0)
            out.append(self._request(first + len(out), genes, parent, how))
        if self.observed >= self.cycles and not self.final_issued:
            self.final_issued = True
            if self.best is None:
                self.finished = True
            else:
                out.append(final_proposal(self.best, self.final_epochs, self.config.lr))  # type: ignore[attr-defined]
        return out

    def observe(self, result: EvalResult) -> None:
        if result.request.meta.get("role") == "final":
            self.final_id = result.id if result.ok else None
            self.finished = True
            return
        index = int(result.request.meta["index"])
        self.observed += 1
        if result.ok:
            member = Member.from_result(result, result.request.meta["genes"])
            self.population.append(member)
            if len(self.population) > self.population_size:
                self.population.popleft()  # aging: the oldest dies, however good it is
            self.best = better(self.best, member)
        # breed every child whose turn comes after this observation (see the module docstring)
        while self.bred < self.cycles and max(self.population_size - 1, self.bred - self.width) <= index:
            self._breed_child()

    def planned(self) -> int:
        """C candidates (initial population included) and the final training."""
        return self.cycles + 1

    def done(self) -> bool:
        return self.finished

    def result_candidate(self) -> int | None:
        return self.final_id if self.final_id is not None else (self.best.id if self.best else None)

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, JSON]:
        return {
            "rng": rng_state(self.rng),
            "cycles": self.cycles,
            "population": [m.model_dump() for m in self.population],
            "best": self.best.model_dump() if self.best else None,
            "queue": [[genes_to_json(g), p, how] for g, p, how in self.queue],
            "bred": self.bred,
            "observed": self.observed,
            "final_id": self.final_id,
            "final_issued": self.final_issued,
            "finished": self.finished,
        }

    def load_state(self, state: dict[str, JSON]) -> None:
        self.rng = rng_from_state(state["rng"])
        self.cycles = state["cycles"]
        self.population = deque(Member.model_validate(m) for m in state["population"])
        self.best = Member.model_validate(state["best"]) if state["best"] else None
        self.queue = [(genes_from_json(g), p, how) for g, p, how in state["queue"]]
        self.bred = state["bred"]
        self.observed = state["observed"]
        self.final_id = state["final_id"]
        self.final_issued = state["final_issued"]
        self.finished = state["finished"]

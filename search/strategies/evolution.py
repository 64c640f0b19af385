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

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
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
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._common import Member, SpaceSearchOptions, better, final_proposal, space_from_setup
from .mutations import MUTATIONS, mutate
from .scale import DataScale, resolve
from .sequential import ConvGene, Genes, genes_from_json, genes_to_json, genome_text, sample

#: the defaults on the reference data (digits), scaled to the data given by `scale.DataScale`
REFERENCE = {"population": 8, "cycles": 24, "epochs": 8, "final_epochs": 10}


class EvolutionConfig(SpaceSearchOptions):
    """Options of ``--strategy evolution`` (``None`` = scaled to the data)."""

    population: int | None = Field(default=None, ge=1)
    """P: population size (also the number of random initial genomes)."""
    cycles: int | None = Field(default=None, ge=1)
    """C: total candidates trained, the initial population included (``--budget``)."""
    sample_size: int = Field(default=3, ge=1)
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


class Bred(BaseModel):
    """A genome bred but not yet proposed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    genes: tuple[ConvGene, ...]
    parent: int | None
    how: str
    """The mutation that made it (``random`` for the initial population)."""


class EvolutionState(StrategyState):
    rng: Rng
    stopped_at: int | None = None
    """C once the run was told to wrap up: the genomes proposed by then."""
    population: list[Member] = Field(default_factory=list)
    """The living members, oldest first."""
    best: Member | None = None
    queue: list[Bred] = Field(default_factory=list)
    bred: int = 0
    """Genomes created so far (= index of the next one)."""
    observed: int = 0
    final_id: int | None = None
    final_issued: bool = False
    finished: bool = False


def tournament(members: Sequence[Member], rng: np.random.Generator, size: int) -> Member:
    """The most accurate of ``size`` members drawn uniformly with replacement (first drawn wins ties)."""
    picks = rng.integers(len(members), size=size)
    parent = members[int(picks[0])]
    for i in picks[1:]:
        if members[int(i)].objective > parent.objective:
            parent = members[int(i)]
    return parent


class AgingEvolution(Strategy[EvolutionConfig, EvolutionState]):
    name: ClassVar[str] = "evolution"

    def __init__(self, config: EvolutionConfig, setup: SearchSetup) -> None:
        super().__init__(config, setup)
        scale = DataScale.of(setup.dataset)
        self.space = space_from_setup(setup, self.name)
        self.epochs = resolve(
            "epochs", config.epochs, scale.epochs(REFERENCE["epochs"]), setup.epochs, "--epochs"
        )
        self.population_size = resolve(
            "population", config.population, scale.count(REFERENCE["population"], REFERENCE["epochs"], 4)
        )
        default_cycles = scale.count(REFERENCE["cycles"], REFERENCE["epochs"], minimum=8)
        self.cycles_planned = resolve("cycles", config.cycles, default_cycles, setup.budget, "--budget")
        self.sample_size = config.sample_size
        self.final_epochs = resolve(
            "final_epochs", config.final_epochs, scale.epochs(REFERENCE["final_epochs"])
        )
        self.width = max(1, setup.max_parallel)

    def initial_state(self) -> EvolutionState:
        state = EvolutionState(rng=seeded(self.setup.seed))
        # the initial population does not depend on any result: breed it all now
        while state.bred < min(self.population_size, self.cycles_planned):
            self._breed_random(state)
        return state

    @property
    def cycles(self) -> int:
        """C: the planned number, or the genomes proposed when the run was told to wrap up."""
        stopped = self.state.stopped_at
        return self.cycles_planned if stopped is None else stopped

    # ------------------------------------------------------------------ breeding
    def _breed_random(self, state: EvolutionState) -> None:
        state.queue.append(Bred(genes=sample(self.space, state.rng), parent=None, how="random"))
        state.bred += 1

    def _breed_child(self, state: EvolutionState) -> None:
        if not state.population:  # every genome so far failed: start over from random
            self._breed_random(state)
            return
        parent = tournament(state.population, state.rng, self.sample_size)
        assert parent.genes is not None
        made = mutate(self.space, genes_from_json(parent.genes), state.rng, self.config.mutations)
        if made is None:  # no mutation of this parent stays in the space
            bred = Bred(genes=sample(self.space, state.rng), parent=parent.id, how="random (no valid mutant)")
        else:
            genes, _, description = made
            bred = Bred(genes=genes, parent=parent.id, how=description)
        state.queue.append(bred)
        state.bred += 1

    def _request(self, index: int, genes: Genes, parent: int | None, how: str) -> Proposal:
        request = EvalRequest(
            genome=genome_text(self.space, genes),
            budget=Budget(epochs=self.epochs, lr=self.config.lr, schedule="cosine"),
            parent=parent,
            rewrites=() if parent is None else ({"mutation": how},),
            meta={"role": "init" if index < self.population_size else "child", "index": index,
                  "genes": genes_to_json(genes), "mutation": how},
        )  # fmt: skip
        return Proposal(request)

    # ------------------------------------------------------------------ protocol
    def propose(self, ctx: SearchContext) -> list[Proposal]:
        state = self.state
        if ctx.wrap_up and self.cycles > state.bred:
            state.stopped_at = state.bred - len(state.queue)  # stop: nothing new beyond what is in flight
            state.queue.clear()
        out: list[Proposal] = []
        first = state.bred - len(state.queue)
        while state.queue and len(out) < max(1, ctx.slots):
            bred = state.queue.pop(0)
            out.append(self._request(first + len(out), bred.genes, bred.parent, bred.how))
        if state.observed >= self.cycles and not state.final_issued:
            state.final_issued = True
            if state.best is None:
                state.finished = True
            else:
                out.append(final_proposal(state.best, self.final_epochs, self.config.lr))
        return out

    def observe(self, result: EvalResult) -> None:
        state = self.state
        if result.request.meta.get("role") == "final":
            state.final_id = result.id if result.ok else None
            state.finished = True
            return
        index = int(result.request.meta["index"])
        state.observed += 1
        if result.ok:
            member = Member.from_result(result, result.request.meta["genes"])
            state.population.append(member)
            if len(state.population) > self.population_size:
                state.population.pop(0)  # aging: the oldest dies, however good it is
            state.best = better(state.best, member)
        # breed every child whose turn comes after this observation (see the module docstring)
        while state.bred < self.cycles and max(self.population_size - 1, state.bred - self.width) <= index:
            self._breed_child(state)

    def planned(self) -> int:
        """C candidates (initial population included) and the final training."""
        return self.cycles + 1

    def done(self) -> bool:
        return self.state.finished

    def retained(self) -> list[int]:
        """Children train from scratch: only the best's weights are used again (its final training)."""
        return [self.state.best.id] if self.state.best else []

    def result_candidate(self) -> int | None:
        state = self.state
        return state.final_id if state.final_id is not None else (state.best.id if state.best else None)

"""Test helpers of the search engine (importable by name from tests/search).

`ChainStrategy` is a real, small `Strategy` built for the driver tests: it uses every part of
the protocol the engine must honour — several proposals at once, a seeded RNG kept in its
state, inheritance by checkpoint path and by in-memory weights, failed candidates, and a final
training on train+val whose candidate is the run's answer.
"""

from __future__ import annotations

from typing import ClassVar

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
from pydantic import BaseModel, ConfigDict, Field

TINY = "input 1x8x8\nconv(4, 3, padding=1) bn relu\ngap linear(10)\n"
SMALL = (
    "input 1x8x8\nconv(8, 3, padding=1) bn relu\nmaxpool(2)\nconv(8, 3, padding=1) bn relu\ngap linear(10)\n"
)
#: parses, but its output does not fit 10 classes: fails inside the worker
WRONG_OUTPUT = "input 1x8x8\nconv(4, 3, padding=1) bn relu\ngap linear(7)\n"


class ChainConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    genomes: list[str] = Field(default_factory=lambda: [TINY, SMALL])
    rounds: int = 2
    epochs: int = 1
    final_epochs: int = 1
    include_failure: bool = False


class ChainStrategy(Strategy):
    """Round 0: every configured genome from scratch. Each later round: two children of the best so
    far, one inheriting its checkpoint by path, one by weights loaded through the context, with a
    learning rate drawn from the RNG. Then the best is trained on train+val and tested."""

    name: ClassVar[str] = "chain"
    Config: ClassVar[type[BaseModel]] = ChainConfig

    def __init__(self, config: BaseModel, setup: SearchSetup) -> None:
        super().__init__(config, setup)
        self.cfg: ChainConfig = config  # type: ignore[assignment]
        self.rng = np.random.default_rng(setup.seed)
        self.round = 0
        self.waiting = 0
        self.best: dict[str, JSON] | None = None
        self.final_id: int | None = None
        self.final_sent = False
        self.seen: list[int] = []

    def planned(self) -> int | None:
        first = len(self.cfg.genomes) + int(self.cfg.include_failure)
        return first + 2 * (self.cfg.rounds - 1) + 1

    def propose(self, ctx: SearchContext) -> list[Proposal]:
        if self.waiting or self.final_sent:
            return []
        if self.round == 0:
            genomes = list(self.cfg.genomes) + ([WRONG_OUTPUT] if self.cfg.include_failure else [])
            out = [
                Proposal(EvalRequest(genome=g, budget=Budget(epochs=self.cfg.epochs), meta={"round": 0}))
                for g in genomes
            ]
        elif self.round < self.cfg.rounds and not ctx.wrap_up and self.best is not None:
            lr = float(self.rng.choice([0.01, 0.02, 0.05]))
            parent = int(self.best["id"])
            budget = Budget(epochs=self.cfg.epochs, lr=lr)
            by_path = EvalRequest(
                genome=str(self.best["genome"]),
                budget=budget,
                parent=parent,
                init_checkpoint=str(self.best["checkpoint"]),
                meta={"round": self.round, "how": "path"},
            )
            weights, arch = ctx.load_weights(str(self.best["checkpoint"]))
            by_weights = EvalRequest(
                genome=str(self.best["genome"]),
                budget=budget,
                parent=parent,
                meta={"round": self.round, "how": "weights"},
            )
            out = [Proposal(by_path), Proposal(by_weights, weights=weights, arch=arch)]
        else:
            self.final_sent = True
            if self.best is None:
                return []
            final = EvalRequest(
                genome=str(self.best["genome"]),
                budget=Budget(epochs=self.cfg.final_epochs, train_on="train+val", test=True),
                parent=int(self.best["id"]),
                init_checkpoint=str(self.best["checkpoint"]),
                meta={"role": "final"},
            )
            self.waiting = 1
            return [Proposal(final)]
        self.waiting = len(out)
        self.round += 1
        return out

    def observe(self, result: EvalResult) -> None:
        self.seen.append(result.id)
        self.waiting -= 1
        if result.request.meta.get("role") == "final":
            self.final_id = result.id if result.ok else None
            return
        if result.ok and result.metrics is not None:
            score = result.metrics.objective
            if self.best is None or score > float(self.best["score"]):
                self.best = {
                    "id": result.id,
                    "genome": result.request.genome,
                    "checkpoint": result.checkpoint,
                    "score": score,
                }

    def done(self) -> bool:
        return self.final_sent and self.waiting == 0

    def result_candidate(self) -> int | None:
        return self.final_id

    def state(self) -> dict[str, JSON]:
        return {
            "rng": self.rng.bit_generator.state,
            "round": self.round,
            "waiting": self.waiting,
            "best": self.best,
            "final_id": self.final_id,
            "final_sent": self.final_sent,
            "seen": self.seen,
        }

    def load_state(self, state: dict[str, JSON]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.round = int(state["round"])
        self.waiting = int(state["waiting"])
        self.best = state["best"]
        self.final_id = state["final_id"]
        self.final_sent = bool(state["final_sent"])
        self.seen = list(state["seen"])


#: what `--strategy` takes for this class in a subprocess (PYTHONPATH=tests/search)
CHAIN = "search_helpers:ChainStrategy"


class EagerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    candidates: int = 6
    slow_epochs: int = 4


class EagerStrategy(Strategy):
    """Proposes as many candidates as it has slots for, recording in each how many results it
    had observed; even candidates train ``slow_epochs``, odd ones 0, so results come back out of
    order on a pool. The driver must still only let it propose at points fixed by the id order."""

    name: ClassVar[str] = "eager"
    Config: ClassVar[type[BaseModel]] = EagerConfig

    def __init__(self, config: BaseModel, setup: SearchSetup) -> None:
        super().__init__(config, setup)
        self.cfg: EagerConfig = config  # type: ignore[assignment]
        self.proposed = 0
        self.observed = 0

    def propose(self, ctx: SearchContext) -> list[Proposal]:
        out = []
        while self.proposed < self.cfg.candidates and len(out) < ctx.slots:
            epochs = self.cfg.slow_epochs if self.proposed % 2 == 0 else 0
            meta = {"observed_before": self.observed, "slots": ctx.slots}
            out.append(Proposal(EvalRequest(genome=SMALL, budget=Budget(epochs=epochs), meta=meta)))
            self.proposed += 1
        return out

    def observe(self, result: EvalResult) -> None:
        self.observed += 1

    def done(self) -> bool:
        return self.observed == self.cfg.candidates

    def state(self) -> dict[str, JSON]:
        return {"proposed": self.proposed, "observed": self.observed}

    def load_state(self, state: dict[str, JSON]) -> None:
        self.proposed = int(state["proposed"])
        self.observed = int(state["observed"])


EAGER = "search_helpers:EagerStrategy"

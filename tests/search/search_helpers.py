"""Test helpers of the search engine (importable by name from tests/search).

`ChainStrategy` is a real, small `Strategy` built for the driver tests: it uses every part of
the protocol the engine must honour — several proposals at once, a seeded RNG kept in its
state, inheritance by checkpoint path and by in-memory weights, failed candidates, and a final
training on train+val whose candidate is the run's answer.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

from genomorph.search.core.protocol import (
    JSON,
    Budget,
    EvalRequest,
    EvalResult,
    Proposal,
    Rng,
    SearchContext,
    Strategy,
    StrategyState,
    seeded,
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
    #: a file the strategy waits for once it has seen ``gate_after`` results: a test that signals
    #: the run then finds it mid-search however fast the candidates train (bounded: 300 s)
    gate: str | None = None
    gate_after: int = 2


class ChainState(StrategyState):
    rng: Rng
    round: int = 0
    waiting: int = 0
    best: dict[str, JSON] | None = None
    final_id: int | None = None
    final_sent: bool = False
    seen: list[int] = Field(default_factory=list)


class ChainStrategy(Strategy[ChainConfig, ChainState]):
    """Round 0: every configured genome from scratch. Each later round: two children of the best so
    far, one inheriting its checkpoint by path, one by weights loaded through the context, with a
    learning rate drawn from the RNG. Then the best is trained on train+val and tested."""

    name: ClassVar[str] = "chain"

    def initial_state(self) -> ChainState:
        return ChainState(rng=seeded(self.setup.seed))

    def planned(self) -> int | None:
        first = len(self.config.genomes) + int(self.config.include_failure)
        return first + 2 * (self.config.rounds - 1) + 1

    def propose(self, ctx: SearchContext) -> list[Proposal]:
        cfg, state = self.config, self.state
        if cfg.gate is not None and len(state.seen) >= cfg.gate_after:
            _wait_for(Path(cfg.gate))
        if state.waiting or state.final_sent:
            return []
        if state.round == 0:
            genomes = list(cfg.genomes) + ([WRONG_OUTPUT] if cfg.include_failure else [])
            out = [
                Proposal(EvalRequest(genome=g, budget=Budget(epochs=cfg.epochs), meta={"round": 0}))
                for g in genomes
            ]
        elif state.round < cfg.rounds and not ctx.wrap_up and state.best is not None:
            lr = float(state.rng.choice([0.01, 0.02, 0.05]))
            parent = int(state.best["id"])
            budget = Budget(epochs=cfg.epochs, lr=lr)
            by_path = EvalRequest(
                genome=str(state.best["genome"]),
                budget=budget,
                parent=parent,
                init_checkpoint=str(state.best["checkpoint"]),
                meta={"round": state.round, "how": "path"},
            )
            weights, arch = ctx.load_weights(str(state.best["checkpoint"]))
            by_weights = EvalRequest(
                genome=str(state.best["genome"]),
                budget=budget,
                parent=parent,
                meta={"round": state.round, "how": "weights"},
            )
            out = [Proposal(by_path), Proposal(by_weights, weights=weights, arch=arch)]
        else:
            state.final_sent = True
            if state.best is None:
                return []
            final = EvalRequest(
                genome=str(state.best["genome"]),
                budget=Budget(epochs=cfg.final_epochs, train_on="train+val", test=True),
                parent=int(state.best["id"]),
                init_checkpoint=str(state.best["checkpoint"]),
                meta={"role": "final"},
            )
            state.waiting = 1
            return [Proposal(final)]
        state.waiting = len(out)
        state.round += 1
        return out

    def observe(self, result: EvalResult) -> None:
        state = self.state
        state.seen.append(result.id)
        state.waiting -= 1
        if result.request.meta.get("role") == "final":
            state.final_id = result.id if result.ok else None
            return
        if result.ok and result.metrics is not None:
            score = result.metrics.objective
            if state.best is None or score > float(state.best["score"]):
                state.best = {
                    "id": result.id,
                    "genome": result.request.genome,
                    "checkpoint": result.checkpoint,
                    "score": score,
                }

    def done(self) -> bool:
        return self.state.final_sent and self.state.waiting == 0

    def result_candidate(self) -> int | None:
        return self.state.final_id


def _wait_for(gate: Path, limit_s: float = 300.0) -> None:
    deadline = time.monotonic() + limit_s
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


#: what `--strategy` takes for this class in a subprocess (PYTHONPATH=tests/search)
CHAIN = "search_helpers:ChainStrategy"


class EagerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    candidates: int = 6
    slow_epochs: int = 4


class EagerState(StrategyState):
    proposed: int = 0
    observed: int = 0


class EagerStrategy(Strategy[EagerConfig, EagerState]):
    """Proposes as many candidates as it has slots for, recording in each how many results it
    had observed; even candidates train ``slow_epochs``, odd ones 0, so results come back out of
    order on a pool. The driver must still only let it propose at points fixed by the id order."""

    name: ClassVar[str] = "eager"

    def propose(self, ctx: SearchContext) -> list[Proposal]:
        out = []
        state = self.state
        while state.proposed < self.config.candidates and len(out) < ctx.slots:
            epochs = self.config.slow_epochs if state.proposed % 2 == 0 else 0
            meta = {"observed_before": state.observed, "slots": ctx.slots}
            out.append(Proposal(EvalRequest(genome=SMALL, budget=Budget(epochs=epochs), meta=meta)))
            state.proposed += 1
        return out

    def observe(self, result: EvalResult) -> None:
        self.state.observed += 1

    def done(self) -> bool:
        return self.state.observed == self.config.candidates


EAGER = "search_helpers:EagerStrategy"

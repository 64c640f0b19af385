"""Test helper (imported by the strategy tests): a tiny loop that drives a strategy the way the search driver does.

It assigns candidate ids in proposal order, keeps at most ``width`` evaluations in flight and
hands results back in id order. The evaluation is a cheap deterministic function of the genome
(``score``): a legitimate stand-in *only* for testing a strategy's selection logic; the real
trainer is exercised by the end-to-end tests.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from genomorph.ir import ArchWeights, Weights
from genomorph.search.core.protocol import (
    DatasetInfo,
    EvalRequest,
    EvalResult,
    Metrics,
    Proposal,
    SearchSetup,
    Strategy,
)

DIGITS = DatasetInfo(
    name="digits",
    task="classification",
    input_shape=(1, 8, 8),
    num_outputs=10,
    train_size=1149,
    val_size=288,
    test_size=360,
)


def score(genome: str) -> float:
    """A stable pseudo-accuracy in [0.5, 1) derived from the genome text."""
    digest = hashlib.sha256(genome.encode()).digest()
    return 0.5 + int.from_bytes(digest[:4], "little") / 2**33


Evaluate = Callable[[EvalRequest, int], "tuple[bool, float]"]


def hashed(request: EvalRequest, cid: int) -> tuple[bool, float]:
    return True, score(request.genome)


@dataclass
class Context:
    """The `SearchContext` the test driver offers."""

    slots: int = 1
    wrap_up: bool = False
    checkpoints: dict[str, Weights] = field(default_factory=dict)

    def load_weights(self, checkpoint: str) -> tuple[Weights, ArchWeights]:
        return self.checkpoints[checkpoint], {}

    def read_input(self, key: str, path: str | Path) -> str | None:
        file = Path(path)
        return file.read_text(encoding="utf-8") if file.is_file() else None


@dataclass
class Run:
    strategy: Strategy
    evaluate: Evaluate = hashed
    width: int = 1
    ctx: Context = field(default_factory=Context)
    results: list[EvalResult] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    in_flight: deque[EvalResult] = field(default_factory=deque)

    def _result(self, cid: int, proposal: Proposal) -> EvalResult:
        request = proposal.request
        ok, objective = self.evaluate(request, cid)
        checkpoint = f"c{cid}.pt"
        # "training" leaves the inherited weights as they were: enough for the morphisms to act on
        self.ctx.checkpoints[checkpoint] = proposal.weights or {}
        if not ok:
            return EvalResult(id=cid, request=request, status="failed", reason="fake failure")
        metrics = Metrics(
            objective=objective, val_accuracy=objective, params=len(request.genome), macs=0, epochs=1
        )
        return EvalResult(id=cid, request=request, status="finished", metrics=metrics, checkpoint=checkpoint)

    def step(self) -> bool:
        """Propose what fits, then observe the oldest result; False when the strategy is done."""
        if self.strategy.done():
            return False
        self.ctx.slots = max(1, self.width - len(self.in_flight))
        for proposal in self.strategy.propose(self.ctx):
            cid = len(self.proposals)
            self.proposals.append(proposal)
            self.in_flight.append(self._result(cid, proposal))
        if not self.in_flight:
            assert self.strategy.done(), "the strategy proposed nothing, expects nothing and is not done"
            return False
        result = self.in_flight.popleft()
        self.results.append(result)
        self.strategy.observe(result)
        # the driver stores the state after every observation: it must survive JSON
        json.dumps(self.strategy.dump_state())
        return True

    def run(self, max_steps: int = 10_000) -> Run:
        for _ in range(max_steps):
            if not self.step():
                return self
        raise AssertionError("the strategy did not finish")


def setup(
    seed: int = 0, space: str | None = None, budget: int | None = None, width: int = 1, **kw
) -> SearchSetup:  # type: ignore[no-untyped-def]
    return SearchSetup(
        seed=seed, dataset=kw.pop("dataset", DIGITS), space=space, budget=budget, max_parallel=width, **kw
    )

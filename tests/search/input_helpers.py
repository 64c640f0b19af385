"""Test helper (importable by name from tests/search): a strategy that reads a user-editable file.

`ReaderStrategy` reads its input file (``ctx.read_input``) before every proposal and writes
what it read, and how many reads it had made, into the candidate's ``meta``, the way Noisy
Heuristics NAS re-reads its meta-parameter file at every iteration.
"""

from __future__ import annotations

from typing import ClassVar

from genomorph.search.core.protocol import (
    Budget,
    EvalRequest,
    EvalResult,
    Proposal,
    SearchContext,
    Strategy,
    StrategyState,
)
from pydantic import BaseModel, ConfigDict
from search_helpers import TINY


class ReaderConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    candidates: int = 6


class ReaderState(StrategyState):
    reads: int = 0
    proposed: int = 0
    observed: int = 0
    last: str | None = None


class ReaderStrategy(Strategy[ReaderConfig, ReaderState]):
    name: ClassVar[str] = "reader"

    def propose(self, ctx: SearchContext) -> list[Proposal]:
        state = self.state
        if state.proposed >= self.config.candidates or state.proposed > state.observed:
            return []  # one candidate at a time, each made from a fresh read
        text = ctx.read_input("meta", self.config.path)
        state.reads += 1
        state.last = text
        meta = {"read": text, "read_seq": state.reads - 1}
        state.proposed += 1
        return [Proposal(EvalRequest(genome=TINY, budget=Budget(epochs=0), meta=meta))]

    def observe(self, result: EvalResult) -> None:
        self.state.observed += 1

    def done(self) -> bool:
        return self.state.observed >= self.config.candidates


READER = "input_helpers:ReaderStrategy"

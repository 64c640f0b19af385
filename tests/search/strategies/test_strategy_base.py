"""The Strategy base class: Config/State from the generic arguments, engine-owned state, Rng fields."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pytest
from genomorph.ir import DataError
from genomorph.search.core.protocol import (
    EvalResult,
    Proposal,
    Rng,
    SearchContext,
    Strategy,
    StrategyState,
    seeded,
)
from genomorph.search.strategies import STRATEGIES
from pydantic import BaseModel, ConfigDict
from strategy_harness import setup


class DiceConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    sides: int = 6


class DiceState(StrategyState):
    rng: Rng
    rolls: list[int] = []


class Dice(Strategy[DiceConfig, DiceState]):
    name: ClassVar[str] = "dice"

    def initial_state(self) -> DiceState:
        return DiceState(rng=seeded(self.setup.seed))

    def roll(self) -> int:
        value = int(self.state.rng.integers(self.config.sides))
        self.state.rolls.append(value)
        return value

    def propose(self, ctx: SearchContext) -> list[Proposal]:
        return []

    def observe(self, result: EvalResult) -> None:
        pass

    def done(self) -> bool:
        return True


def test_config_and_state_come_from_the_generic_arguments() -> None:
    assert Dice.Config is DiceConfig and Dice.State is DiceState
    for cls in STRATEGIES.values():  # every built-in strategy declares both
        assert issubclass(cls.Config, BaseModel) and issubclass(cls.State, StrategyState), cls


def test_a_restored_state_draws_what_the_original_would_have() -> None:
    seed = 11
    original = Dice(DiceConfig(sides=1000), setup(seed=seed))
    [original.roll() for _ in range(5)]
    stored = json.loads(json.dumps(original.dump_state()))  # what the run store holds
    assert stored["rolls"] == original.state.rolls and stored["rng"]["bit_generator"] == "PCG64"
    restored = Dice(DiceConfig(sides=1000), setup(seed=seed))
    restored.load_state(stored)
    assert [restored.roll() for _ in range(20)] == [original.roll() for _ in range(20)]
    reference = np.random.default_rng(seed).integers(1000, size=25).tolist()
    assert original.state.rolls == reference  # the same draws as numpy's seeded generator


def test_the_initial_state_is_made_once_and_lazily() -> None:
    dice = Dice(DiceConfig(), setup(seed=3))
    first = dice.state
    assert dice.state is first and first.rolls == []


def test_a_stored_state_of_another_shape_is_a_clear_error() -> None:
    dice = Dice(DiceConfig(), setup())
    with pytest.raises(DataError, match="rolls"):
        dice.load_state({"rng": dice.dump_state()["rng"], "rolls": "many"})
    with pytest.raises(DataError, match="does not fit DiceState"):
        dice.load_state({"rng": dice.dump_state()["rng"], "unknown": 1})

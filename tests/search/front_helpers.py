"""Test helper (importable by name from tests/search): a multi-result strategy with its own report data.

`FrontStrategy` trains a few genomes of different sizes and reports the Pareto front over
(validation error, parameters) through ``Strategy.front()``, the front size after every
result through ``Strategy.summary()``, and one extra plot registered for its name.
"""

from __future__ import annotations

from typing import ClassVar

from genomorph.search.core.protocol import (
    JSON,
    Budget,
    EvalRequest,
    EvalResult,
    Front,
    FrontMember,
    Proposal,
    SearchContext,
    Strategy,
    StrategyState,
)
from genomorph.search.runtime.report import ReportContext, new_figure, register_plot, save_figure
from pydantic import BaseModel, ConfigDict, Field
from search_helpers import SMALL, TINY

WIDE = "input 1x8x8\nconv(24, 3, padding=1) bn relu\ngap linear(10)\n"
DEEP = "input 1x8x8\nconv(16, 3, padding=1) bn relu\nconv(16, 3, padding=1) bn relu\ngap linear(10)\n"


class FrontConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    genomes: list[str] = Field(default_factory=lambda: [TINY, SMALL, WIDE, DEEP])
    epochs: int = 2
    clash: bool = False
    """Report a summary key the engine writes itself (must be refused)."""


class Point(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    val_error: float
    params: int


class FrontState(StrategyState):
    proposed: bool = False
    points: list[Point] = Field(default_factory=list)
    front_sizes: list[int] = Field(default_factory=list)
    observed: int = 0


def nondominated(points: list[Point]) -> list[Point]:
    def dominates(a: Point, b: Point) -> bool:
        return (
            a.val_error <= b.val_error
            and a.params <= b.params
            and (a.val_error, a.params)
            != (
                b.val_error,
                b.params,
            )
        )

    return [p for p in points if not any(dominates(q, p) for q in points)]


class FrontStrategy(Strategy[FrontConfig, FrontState]):
    name: ClassVar[str] = "front-test"

    def propose(self, ctx: SearchContext) -> list[Proposal]:
        if self.state.proposed:
            return []
        self.state.proposed = True
        budget = Budget(epochs=self.config.epochs)
        return [Proposal(EvalRequest(genome=g, budget=budget)) for g in self.config.genomes]

    def observe(self, result: EvalResult) -> None:
        self.state.observed += 1
        if result.ok and result.metrics is not None:
            m = result.metrics
            self.state.points.append(Point(id=result.id, val_error=1 - m.objective, params=m.params))
        self.state.front_sizes.append(len(nondominated(self.state.points)))

    def done(self) -> bool:
        return self.state.observed == len(self.config.genomes)

    def front(self) -> Front | None:
        members = sorted(nondominated(self.state.points), key=lambda p: p.params)
        return Front(
            objectives=("val_error", "params"),
            members=tuple(
                FrontMember(candidate=p.id, objectives={"val_error": p.val_error, "params": p.params})
                for p in members
            ),
        )

    def summary(self) -> dict[str, JSON]:
        extra: dict[str, JSON] = {"front_sizes": list(self.state.front_sizes)}
        if self.config.clash:
            extra["params"] = 1
        return extra


@register_plot("front-test")
def plot_front_sizes(context: ReportContext) -> list[str]:
    assert isinstance(context.strategy, FrontStrategy)
    figure = new_figure()
    ax = figure.add_subplot(1, 1, 1)
    ax.plot(context.strategy.state.front_sizes)
    save_figure(figure, context.run_dir / "front_sizes.png")
    return ["front_sizes.png"]


FRONT = "front_helpers:FrontStrategy"

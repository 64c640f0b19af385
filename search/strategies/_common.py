"""Small pieces shared by the strategies: the search space, members, final training."""

from __future__ import annotations

from genomorph.ir import ConfigError
from genomorph.search.core.protocol import Budget, EvalRequest, EvalResult, Proposal, SearchSetup
from pydantic import BaseModel, ConfigDict, Field

from .space import SearchSpace, parse_space


def space_from_setup(setup: SearchSetup, strategy: str) -> SearchSpace:
    """The run's search space (stored as text in the setup), bound to the dataset's shape."""
    if setup.space is None:
        raise ConfigError(
            f"the {strategy} strategy needs a search space",
            hint="pass one with --space FILE, e.g. --space examples/space_ga.toml",
        )
    space = parse_space(setup.space, source_name=setup.space_name or "<space>")
    info = setup.dataset
    if info.task != "classification":
        raise ConfigError(
            f"the {strategy} strategy searches classifiers, but dataset '{info.name}' is a {info.task} task",
            hint="use digits, mnist, fashion-mnist, cifar10 or cifar100",
        )
    return space.bind(info.input_shape, info.num_outputs)


class SpaceSearchOptions(BaseModel):
    """Training options shared by the strategies that sample a search space (``None`` = scaled to the data)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int | None = Field(default=None, ge=1)
    """Training epochs per candidate (``--epochs``), cosine-annealed from the run's learning rate."""
    lr: float | None = Field(default=None, gt=0)
    """Learning rate; ``None`` = the trainer's."""
    final_epochs: int | None = Field(default=None, ge=0)
    """Epochs of the winner's final training on train+val; 0 only evaluates it on the test split."""


class Member(BaseModel):
    """A finished candidate as the strategies remember it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    genome: str
    objective: float
    checkpoint: str | None = None
    params: int = 0
    genes: list[dict] | None = None
    """The space genes (sequential strategies), so mutations need not re-parse the genome."""

    @classmethod
    def from_result(cls, result: EvalResult, genes: list[dict] | None = None) -> Member:
        assert result.metrics is not None
        return cls(
            id=result.id,
            genome=result.request.genome,
            objective=result.metrics.objective,
            checkpoint=result.checkpoint,
            params=result.metrics.params,
            genes=genes,
        )


def better(a: Member | None, b: Member) -> Member:
    """The better of two members; on a tie the earlier (smaller id) one stays."""
    if a is None or b.objective > a.objective or (b.objective == a.objective and b.id < a.id):
        return b
    return a


def final_proposal(best: Member, epochs: int, lr: float | None) -> Proposal:
    """Train the winner on train+val from its own weights and measure the test split.

    With ``epochs = 0`` the winner's trained weights are only evaluated on the test split.
    """
    budget = (
        Budget(epochs=epochs, lr=lr, schedule="cosine", train_on="train+val", test=True)
        if epochs > 0
        else Budget(epochs=0, test=True)
    )
    request = EvalRequest(
        genome=best.genome,
        budget=budget,
        parent=best.id,
        init_checkpoint=best.checkpoint,
        meta={"role": "final"},
    )
    return Proposal(request)

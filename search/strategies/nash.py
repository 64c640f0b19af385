"""NASH: neural architecture search by hill climbing (paper 002, Algorithm 1; paper 001's budgets).

    N* <- N0, trained for `start_epochs` with cosine annealing
    for i in 1..n_steps:
        for j in 1..n_child:
            N_j <- GenerateChild(N*, n_op, T)      # n_op exact morphisms, each drawn uniformly
            train N_j for n_epochs, cosine-annealed from the full learning rate (SGDR: one
            restart per step), starting from the inherited weights (Lamarckian)
        N* <- the child with the best validation accuracy
    train N* on train+val for `final_epochs` and evaluate it on the test split

T is ``deepen`` (insert conv-bn-relu), ``widen`` (more filters in a conv) and ``skip`` (a skip
connection with an additive or a concatenating merge, each half the time). Morphisms are
applied here, on the IR and the parent's numpy weights; the child's function equals its
parent's, so every child starts where the parent ended. A morphism that would push the child
above ``max_params`` is refused and another is drawn (paper 001 stops growing at 20 M).
Every child's choices come from its own generator seeded with (run seed, step, child), so a
child does not depend on how many proposals the driver asked for at once.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from genomorph.ir import DataError, GenomeError, Graph, NotApplicable, Weights, verify
from genomorph.ir.ops import Input, Linear
from genomorph.search.core.protocol import (
    JSON,
    Budget,
    EvalRequest,
    EvalResult,
    Proposal,
    SearchContext,
    SearchSetup,
    Strategy,
    StrategyState,
    canonical,
)
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._common import Member, better, final_proposal
from .scale import DataScale, resolve

#: the vanilla start network of papers 001/002 (three conv-bn-relu blocks, max-pooling between
#: them, global average pooling and a linear classifier); the same network as
#: ``examples/vanilla.genome``. Its input shape and class count are fitted to the dataset.
VANILLA = """\
input 3x32x32
conv(64, 3, bias=false) bn relu
maxpool(2)
conv(128, 3, bias=false) bn relu
maxpool(2)
conv(256, 3, bias=false) bn relu
gap linear(10)
"""

#: operator name -> the rewrites (``genomorph.ir.rewrites.REWRITES`` names) it draws from
OPERATORS: dict[str, tuple[str, ...]] = {
    "deepen": ("deepen",),
    "widen": ("widen",),
    "skip": ("skip-add", "skip-concat"),
}

#: the defaults on the reference data (digits), scaled to the data given by `scale.DataScale`
REFERENCE = {"children": 6, "epochs": 3, "start_epochs": 6, "final_epochs": 4}

#: draws per morphism before a child gives up growing (nothing applies, or all exceed the cap)
DRAWS_PER_OP = 20


class NashConfig(BaseModel):
    """Options of ``--strategy nash`` (``None`` = scaled to the data, see `scale.DataScale`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: int | None = Field(default=None, ge=0)
    """n_steps: hill-climbing steps (``--budget``; default 3)."""
    children: int | None = Field(default=None, ge=1)
    """n_child: children per step (paper: 8)."""
    ops: int = Field(default=3, ge=1)
    """n_op: morphisms applied to make one child (paper: 5)."""
    epochs: int | None = Field(default=None, ge=1)
    """n_epochs: training epochs of every child (``--epochs``)."""
    start_epochs: int | None = Field(default=None, ge=0)
    """Training epochs of the start network N0 before the first step."""
    final_epochs: int | None = Field(default=None, ge=0)
    """Epochs of the winner's final training on train+val (0: only evaluate it on the test split)."""
    lr: float | None = Field(default=None, gt=0)
    """Learning rate every step restarts from; ``None`` = the trainer's."""
    final_lr: float | None = Field(default=None, gt=0)
    """Learning rate of the final training; ``None`` = ``lr``."""
    operators: tuple[str, ...] = ("deepen", "widen", "skip")
    """The operator set T, drawn uniformly (``skip`` = skip-add or skip-concat)."""
    max_params: int | None = Field(default=None, ge=0)
    """No child grows beyond this many parameters (paper 001: 20 M); 0 = no cap; ``None``: about
    400 per training sample, between 1 M and 20 M."""
    fit_start: bool = True
    """Set the start genome's input shape and class count from the dataset."""

    @field_validator("operators")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from genomorph.ir.rewrites import REWRITES

        known = set(OPERATORS) | set(REWRITES)
        unknown = [op for op in v if op not in known]
        if unknown or not v:
            raise ValueError(f"unknown operators {unknown}; choose from {sorted(known)}")
        return v


def adapt_to_data(graph: Graph, input_shape: tuple[int, ...], outputs: int) -> Graph:
    """The vanilla network resized to a dataset: its input shape and its last linear layer."""
    out = graph.copy()
    out.set_op(out.input_node(), Input(shape=tuple(input_shape)))
    last = out.output_node()
    op = out.op(last)
    if isinstance(op, Linear):
        out.set_op(last, op.model_copy(update={"features": outputs}))
    return verify(out)


def start_genome(setup: SearchSetup, fit: bool = True) -> str:
    """Canonical text of N0: the user's start genome or the vanilla one, fitted to the data.

    ``fit`` sets the input shape and the width of a final linear layer from the dataset (the
    vanilla network is written for CIFAR-10); without it a genome that does not fit is refused.
    """
    from genomorph.grammar import parse

    info = setup.dataset
    given = setup.start_genome is not None
    if not given and len(info.input_shape) != 3:
        raise DataError(
            f"nash's vanilla start network is a conv net, but dataset '{info.name}' has vector inputs",
            hint="give a start genome for vector data, e.g. `input 2` linear(32) relu linear(2)",
        )
    graph = parse(setup.start_genome or VANILLA, source_name="<start genome>" if given else "<vanilla>")
    if fit and len(info.input_shape) == len(graph.stats().input_shape):
        try:
            graph = adapt_to_data(graph, info.input_shape, info.num_outputs)
        except GenomeError as err:
            raise DataError(
                f"the start genome does not fit dataset '{info.name}' ({_fmt(info.input_shape)}): {err.message}",
                hint="give a start genome written for this input size",
            ) from None
    stats = graph.stats()
    if tuple(stats.input_shape) != tuple(info.input_shape) or stats.output_shape != (info.num_outputs,):
        raise DataError(
            f"the start genome maps {_fmt(stats.input_shape)} to {_fmt(stats.output_shape)}, but dataset "
            f"'{info.name}' has inputs of {_fmt(info.input_shape)} and {info.num_outputs} outputs",
            hint=f"start it with `input {_fmt(info.input_shape)}` and end it with linear({info.num_outputs})"
            + ("" if fit else ", or leave fit_start on"),
        )
    return canonical(graph)[0]


def _fmt(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


class NashState(StrategyState):
    phase: Literal["start", "start-issued", "steps", "final", "final-issued", "done"] = "start"
    step: int = 0
    """1-based index of the step whose children are in flight."""
    issued: int = 0
    """Children of this step proposed so far."""
    target: int = 0
    """Children this step will have (fewer on wrap-up)."""
    observed: int = 0
    """Children of this step observed."""
    parent: Member | None = None
    """N*, the current network."""
    best_child: Member | None = None
    final_id: int | None = None
    history: list[dict[str, JSON]] = Field(default_factory=list)
    """One line per step, for the report."""


#: the default number of hill-climbing steps (``--budget``)
STEPS = 3


class Nash(Strategy[NashConfig, NashState]):
    name: ClassVar[str] = "nash"

    def __init__(self, config: NashConfig, setup: SearchSetup) -> None:
        super().__init__(config, setup)
        scale = DataScale.of(setup.dataset)
        self.steps = resolve("steps", config.steps, STEPS, setup.budget, "--budget")
        self.epochs = resolve(
            "epochs", config.epochs, scale.epochs(REFERENCE["epochs"]), setup.epochs, "--epochs"
        )
        self.children = resolve(
            "children", config.children, scale.count(REFERENCE["children"], REFERENCE["epochs"], 2)
        )
        self.ops = config.ops
        self.start_epochs = resolve(
            "start_epochs", config.start_epochs, scale.epochs(REFERENCE["start_epochs"])
        )
        self.final_epochs = resolve(
            "final_epochs", config.final_epochs, scale.epochs(REFERENCE["final_epochs"])
        )
        cap = resolve("max_params", config.max_params, scale.max_params())
        self.max_params: int | None = cap or None
        self.start = start_genome(setup, config.fit_start)
        self._weights: tuple[str, Weights] | None = None  # parent weights cache (not state)

    def initial_state(self) -> NashState:
        # start -> start-issued -> steps -> final -> final-issued -> done
        return NashState(target=self.children)

    # ------------------------------------------------------------------ children
    def _child(self, ctx: SearchContext, index: int) -> Proposal:
        from genomorph.grammar import parse

        state = self.state
        assert state.parent is not None and state.parent.checkpoint is not None
        if self._weights is None or self._weights[0] != state.parent.checkpoint:
            self._weights = (state.parent.checkpoint, ctx.load_weights(state.parent.checkpoint)[0])
        graph, weights = parse(state.parent.genome, source_name="<parent>"), self._weights[1]
        rng = np.random.default_rng([self.setup.seed, state.step, index])
        graph, weights, records = grow(graph, weights, rng, self.ops, self.config.operators, self.max_params)
        text, weights = canonical(graph, weights)
        request = EvalRequest(
            genome=text,
            budget=Budget(epochs=self.epochs, lr=self.config.lr, schedule="cosine"),
            parent=state.parent.id,
            rewrites=tuple(records),
            meta={"role": "child", "step": state.step, "child": index},
        )
        return Proposal(request, weights=weights)

    def _conclude_step(self) -> None:
        """Hill climbing: move to the best child of the step (stay put if all of them failed)."""
        state = self.state
        assert state.parent is not None
        moved = state.best_child is not None
        if state.best_child is not None:
            state.parent = state.best_child
        state.history.append(
            {"step": state.step, "children": state.target, "moved": moved, "parent": state.parent.id,
             "objective": state.parent.objective, "params": state.parent.params}
        )  # fmt: skip
        state.best_child, state.issued, state.observed = None, 0, 0
        if state.step >= self.steps:
            state.phase = "final"
        else:
            state.step += 1
            state.target = self.children

    # ------------------------------------------------------------------ protocol
    def propose(self, ctx: SearchContext) -> list[Proposal]:
        state = self.state
        out: list[Proposal] = []
        if state.phase == "start":
            state.phase = "start-issued"
            budget = Budget(epochs=self.start_epochs, lr=self.config.lr, schedule="cosine")
            out.append(Proposal(EvalRequest(genome=self.start, budget=budget, meta={"role": "start"})))
        if state.phase == "steps" and ctx.wrap_up:
            # stop exploring: the step ends with the children in flight, then the final training
            state.target = state.issued
            if state.issued == 0:
                state.phase = "final"
            elif state.observed == state.target:
                self._conclude_step()
                state.phase = "final"
        if state.phase == "steps":
            while state.issued < state.target and len(out) < max(1, ctx.slots):
                out.append(self._child(ctx, state.issued))
                state.issued += 1
        if state.phase == "final":
            state.phase = "final-issued"
            out.append(self._final())
        return out

    def _final(self) -> Proposal:
        assert self.state.parent is not None
        return final_proposal(self.state.parent, self.final_epochs, self.config.final_lr or self.config.lr)

    def observe(self, result: EvalResult) -> None:
        state = self.state
        role = result.request.meta.get("role")
        if role == "start":
            if not result.ok:
                state.phase = "done"  # nothing to climb from; the run reports the failure
                state.history.append({"step": 0, "failed": result.reason})
                return
            state.parent = Member.from_result(result)
            state.history.append({"step": 0, "parent": result.id, "objective": state.parent.objective,
                                  "params": state.parent.params})  # fmt: skip
            state.phase, state.step, state.target = "steps", 1, self.children
            if self.steps == 0:
                state.phase = "final"
            return
        if role == "final":
            state.final_id = result.id if result.ok else None
            state.phase = "done"
            return
        state.observed += 1
        if result.ok:
            state.best_child = better(state.best_child, Member.from_result(result))
        if state.observed == state.target and state.issued == state.target:
            self._conclude_step()

    def planned(self) -> int:
        """The start network, n_steps x n_child children and the final training."""
        return 1 + self.steps * self.children + 1

    def done(self) -> bool:
        return self.state.phase == "done"

    def retained(self) -> list[int]:
        """N* (children are made from its weights, the final training starts from them) and the
        best child of the step in flight."""
        return [m.id for m in (self.state.parent, self.state.best_child) if m is not None]

    def result_candidate(self) -> int | None:
        state = self.state
        if state.final_id is not None:
            return state.final_id
        return state.parent.id if state.parent else None

    def summary(self) -> dict[str, JSON]:
        """``steps``: one line per hill-climbing step (parent, objective, parameters)."""
        return {"steps": list(self.state.history)}


# ---------------------------------------------------------------------------------- morphisms


def grow(
    graph: Graph,
    weights: Weights | None,
    rng: np.random.Generator,
    n_op: int,
    operators: tuple[str, ...],
    max_params: int | None,
) -> tuple[Graph, Weights | None, list[JSON]]:
    """GenerateChild: apply ``n_op`` exact morphisms, each operator drawn uniformly from T.

    Returns the child graph, its weights and the JSON records of the applied rewrites. Draws
    that find no place to apply, or that would exceed ``max_params``, are refused; after
    ``DRAWS_PER_OP * n_op`` refusals the child keeps the morphisms it has.
    """
    from genomorph.ir.rewrites import REWRITES

    records: list[JSON] = []
    applied, draws = 0, 0
    while applied < n_op and draws < DRAWS_PER_OP * n_op:
        draws += 1
        operator = operators[int(rng.integers(len(operators)))]
        variants = [name for name in OPERATORS.get(operator, (operator,)) if name in REWRITES]
        name = variants[int(rng.integers(len(variants)))]
        rewrite = REWRITES[name]
        moves = rewrite.candidates(graph, weights)
        if not moves:
            continue
        move = moves[int(rng.integers(len(moves)))]
        try:
            result = rewrite.apply(graph, weights, move, rng)
        except NotApplicable:
            continue
        if max_params is not None and result.graph.stats().params > max_params:
            continue
        graph, weights = result.graph, result.weights
        records.append(_record_json(name, result.record))
        applied += 1
    return graph, weights, records


def _record_json(name: str, record: Any) -> JSON:
    if isinstance(record, BaseModel):
        return record.model_dump(mode="json")
    return {"rewrite": name, "text": str(record)}


__all__ = [
    "OPERATORS",
    "REFERENCE",
    "VANILLA",
    "Nash",
    "NashConfig",
    "NashState",
    "adapt_to_data",
    "grow",
    "start_genome",
]

"""SH, SHR and SHRsep: NASH hill climbing with successive halving inside every step (paper 001).

    N* <- N0, trained for `start_epochs`
    for step in 1..n_steps:
        children <- n copies of N*, each grown by `ops` random exact morphisms (001 §3.2.1-3.2.5,
                    §3.2.6 for SHRsep), inheriting N*'s weights
        for rung i in 1..log2(n):                      # Algorithm 1, budget b per step
            train every child b / (log2(n) · n_i) epochs, each from its own weights
            keep the better half (validation accuracy), n_{i+1} = n_i / 2
        train the winner b / log2(n) epochs more; it becomes N*
    train N* on train+val for `final_epochs` and evaluate it on the test split

Every rung spends b / log2(n) child-epochs, so a step trains b + b / log2(n) epochs in all.
``sh`` runs one cosine schedule over the whole step (each rung continues where the previous
stopped: `Budget.schedule_offset`/`schedule_epochs`); ``shr`` restarts it at every rung and for
the winner's extra training (001 Figure 1); ``shrsep`` is ``shr`` with the sixth operator,
inserting a depthwise-separable conv. Survivors continue from their own trained weights
(the previous rung's checkpoint). Children are grown by NASH's `grow` (paper 001: 20 M cap).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from genomorph.ir import ConfigError, Weights
from genomorph.search.core.protocol import (
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

from ._common import Member, final_proposal
from .nash import OPERATORS, grow, start_genome
from .scale import DataScale, resolve

#: the five network operators of paper 001 §3.2.1-3.2.5, as ``REWRITES`` names
FIVE_OPERATORS = ("deepen", "widen", "merge-convex", "merge-concat", "split")
#: SHRsep's sixth operator (001 §3.2.6): insert a SepConv-BN-ReLU block with identity kernels
SIX_OPERATORS = (*FIVE_OPERATORS, "sepconv")

#: defaults on the reference data (digits), scaled to the data given by `scale.DataScale`; the
#: paper's CIFAR-10 values are 8 children, 5 mutations, b = 160 epochs per step, final 200 epochs
REFERENCE = {"steps": 2, "children": 8, "ops": 5, "step_epochs": 16, "start_epochs": 6, "final_epochs": 4}


@dataclass(frozen=True)
class Rung:
    population: int
    """Children trained in this rung (n_i)."""
    epochs: int
    """Epochs each of them trains in this rung: b / (steps · n_i), at least 1."""


def halving_plan(children: int, step_epochs: int) -> tuple[list[Rung], int]:
    """Algorithm 1 of paper 001 for ``n`` children and budget ``b``: the rungs and the winner's
    extra epochs (b / steps). ``steps = ceil(log2 n)``; a rung keeps the better ``ceil(n_i / 2)``."""
    if children < 2:
        raise ConfigError(
            f"successive halving needs at least 2 children per step, got {children}",
            hint="set --set children=8 (the paper's value)",
        )
    steps = math.ceil(math.log2(children))
    rungs, population = [], children
    for _ in range(steps):
        rungs.append(Rung(population, max(1, round(step_epochs / (steps * population)))))
        population = math.ceil(population / 2)
    return rungs, max(1, round(step_epochs / steps))


def survivors(results: list[Member], keep: int) -> list[Member]:
    """The better ``keep`` members (higher objective; on ties the earlier candidate), best first."""
    return sorted(results, key=lambda m: (-m.objective, m.id))[:keep]


class SuccessiveHalvingConfig(BaseModel):
    """Options of ``--strategy sh|shr|shrsep`` (``None`` = the dataset's default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: int | None = Field(default=None, ge=0)
    """Evolutionary (hill-climbing) steps (``--budget``)."""
    children: int | None = Field(default=None, ge=2)
    """n: children per step (paper 001: 8)."""
    ops: int | None = Field(default=None, ge=1)
    """Morphisms applied to make one child (paper 001: 5)."""
    step_epochs: int | None = Field(default=None, ge=1)
    """b: the successive-halving budget of one step in child-epochs (``--epochs``; paper: 160)."""
    start_epochs: int | None = Field(default=None, ge=0)
    final_epochs: int | None = Field(default=None, ge=0)
    lr: float | None = Field(default=None, gt=0)
    """Maximum learning rate of every schedule; ``None`` = the trainer's (paper: 0.01)."""
    final_lr: float | None = Field(default=None, gt=0)
    operators: tuple[str, ...] | None = None
    """The operator set (``None``: the five of paper 001; ``shrsep`` adds ``sepconv``)."""
    max_params: int | None = Field(default=None, ge=0)
    """No mutation pushes a child beyond this many parameters (paper 001: 20 M; the default
    scales with the training set, 1-20 M); 0 = no cap."""
    fit_start: bool = True

    @field_validator("operators")
    @classmethod
    def _known(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        from genomorph.ir.rewrites import EXACT

        if v is None:
            return v
        known = set(OPERATORS) | set(EXACT)
        unknown = [op for op in v if op not in known]
        if unknown or not v:
            raise ValueError(f"unknown or non-exact operators {unknown}; choose from {sorted(known)}")
        return v


class SuccessiveHalvingState(StrategyState):
    """Everything an SH run changes (stored by the engine after every proposal and observation)."""

    phase: Literal["start", "start-issued", "rung", "winner", "final", "final-issued", "done"] = "start"
    step: int = 0
    """1-based evolutionary step in progress."""
    rung: int = 0
    """0-based rung in progress; ``len(rungs)`` is the winner's extra training."""
    queue: list[Member] = []
    """What this rung trains: the survivors of the previous rung (empty in rung 0: new children)."""
    issued: int = 0
    observed: int = 0
    target: int = 0
    """Proposals of this rung (fewer once a time limit cut it short)."""
    wrapped: bool = False
    results: list[Member] = []
    """Finished members of this rung."""
    lineage: dict[int, int] = {}
    """Candidate id -> index of the child of this step it descends from (for the history)."""
    parent: Member | None = None
    """N*: the current parent."""
    final_id: int | None = None
    history: list[dict[str, Any]] = []
    """One entry per step: its rungs (epochs, candidates best first), winner, objective, params."""


class SuccessiveHalving(Strategy[SuccessiveHalvingConfig, SuccessiveHalvingState]):
    """``sh``: one cosine schedule over each whole step."""

    name: ClassVar[str] = "sh"
    restart: ClassVar[bool] = False
    default_operators: ClassVar[tuple[str, ...]] = FIVE_OPERATORS

    def __init__(self, config: SuccessiveHalvingConfig, setup: SearchSetup) -> None:
        super().__init__(config, setup)
        cfg = config
        scale, ref = DataScale.of(setup.dataset), REFERENCE
        self.steps = resolve("steps", cfg.steps, ref["steps"], setup.budget, "--budget")
        self.children = resolve("children", cfg.children, scale.count(ref["children"], 4, minimum=4))
        self.ops = resolve("ops", cfg.ops, ref["ops"])
        epochs = scale.epochs(ref["step_epochs"])
        self.step_epochs = resolve("step_epochs", cfg.step_epochs, epochs, setup.epochs, "--epochs")
        self.start_epochs = resolve("start_epochs", cfg.start_epochs, scale.epochs(ref["start_epochs"]))
        self.final_epochs = resolve("final_epochs", cfg.final_epochs, scale.epochs(ref["final_epochs"]))
        self.operators = cfg.operators or self.default_operators
        cap = resolve("max_params", cfg.max_params, scale.max_params())
        self.max_params = cap or None
        self.rungs, self.extra = halving_plan(self.children, self.step_epochs)
        self.start = start_genome(setup, cfg.fit_start)
        self._weights: tuple[str, Weights] | None = None  # parent weights cache (not state)

    # ------------------------------------------------------------------ budgets
    def _budget(self, rung: int) -> Budget:
        """Rung ``rung`` (``len(rungs)``: the winner's extra training) of the step's schedule."""
        lengths = [r.epochs for r in self.rungs] + [self.extra]
        lr = self.config.lr
        if self.restart:  # SHR: every rung anneals from the full learning rate to 0 on its own
            return Budget(epochs=lengths[rung], lr=lr, schedule="cosine")
        return Budget(
            epochs=lengths[rung],
            lr=lr,
            schedule="cosine",
            schedule_offset=float(sum(lengths[:rung])),
            schedule_epochs=float(sum(lengths)),
        )

    def _child(self, ctx: SearchContext, index: int) -> Proposal:
        from genomorph.grammar import parse

        assert self.state.parent is not None and self.state.parent.checkpoint is not None
        if self._weights is None or self._weights[0] != self.state.parent.checkpoint:
            self._weights = (self.state.parent.checkpoint, ctx.load_weights(self.state.parent.checkpoint)[0])
        graph = parse(self.state.parent.genome, source_name="<parent>")
        rng = np.random.default_rng([self.setup.seed, self.state.step, index])
        graph, weights, records = grow(
            graph, self._weights[1], rng, self.ops, self.operators, self.max_params
        )
        text, weights = canonical(graph, weights)
        request = EvalRequest(
            genome=text,
            budget=self._budget(0),
            parent=self.state.parent.id,
            rewrites=tuple(records),
            meta={"role": "child", "step": self.state.step, "rung": 0, "child": index},
        )
        return Proposal(request, weights=weights)

    def _continue(self, member: Member) -> Proposal:
        """A survivor's next rung (or the winner's extra training), from its own weights."""
        winner = self.state.rung == len(self.rungs)
        request = EvalRequest(
            genome=member.genome,
            budget=self._budget(self.state.rung),
            parent=member.id,
            init_checkpoint=member.checkpoint,
            meta={"role": "winner" if winner else "child", "step": self.state.step, "rung": self.state.rung,
                  "child": self.state.lineage.get(member.id, -1)},
        )  # fmt: skip
        return Proposal(request)

    # ------------------------------------------------------------------ protocol
    def propose(self, ctx: SearchContext) -> list[Proposal]:
        out: list[Proposal] = []
        if self.state.phase == "start":
            self.state.phase = "start-issued"
            budget = Budget(epochs=self.start_epochs, lr=self.config.lr, schedule="cosine")
            out.append(Proposal(EvalRequest(genome=self.start, budget=budget, meta={"role": "start"})))
        if self.state.phase in ("rung", "winner") and ctx.wrap_up and self.state.target > self.state.issued:
            # stop exploring: the rung ends with what is in flight, then the final training
            self.state.target = self.state.issued
            self.state.wrapped = True
            if self.state.observed == self.state.target:
                self._end_early()
        if self.state.phase in ("rung", "winner"):
            while self.state.issued < self.state.target and len(out) < max(1, ctx.slots):
                if self.state.rung == 0:
                    out.append(self._child(ctx, self.state.issued))
                else:
                    out.append(self._continue(self.state.queue[self.state.issued]))
                self.state.issued += 1
        if self.state.phase == "final":
            self.state.phase = "final-issued"
            cfg = self.config
            assert self.state.parent is not None
            out.append(final_proposal(self.state.parent, self.final_epochs, cfg.final_lr or cfg.lr))
        return out

    def _begin_rung(self, rung: int, queue: list[Member]) -> None:
        self.state.rung, self.state.queue = rung, queue
        self.state.issued = self.state.observed = 0
        self.state.results = []
        if rung == 0:
            self.state.lineage = {}
        self.state.target = self.children if rung == 0 else len(queue)
        self.state.phase = "winner" if rung == len(self.rungs) else "rung"

    def _begin_step(self) -> None:
        if self.state.step >= self.steps:
            self.state.phase = "final"
            return
        self.state.step += 1
        self._begin_rung(0, [])

    def _end_rung(self) -> None:
        """Keep the better half; after the last rung the single survivor trains on as the winner."""
        assert self.state.parent is not None
        record = (
            self.state.history[-1]
            if self.state.history and self.state.history[-1].get("step") == self.state.step
            else None
        )
        if record is None:
            record = {"step": self.state.step, "rungs": [], "parent": self.state.parent.id}
            self.state.history.append(record)
        ranked = survivors(self.state.results, len(self.state.results))
        record["rungs"].append(
            {"epochs": self._budget(self.state.rung).epochs, "trained": [m.id for m in ranked]}
        )  # fmt: skip
        if not ranked:  # every candidate of the rung failed: the step ends where it began
            record.update(
                {"moved": False, "objective": self.state.parent.objective, "params": self.state.parent.params}
            )
            self._begin_step()
            return
        if self.state.rung == len(self.rungs):  # the winner's extra training is done: move
            self.state.parent = ranked[0]
            winner = self.state.parent
            record.update(
                {"moved": True, "winner": winner.id, "objective": winner.objective, "params": winner.params}
            )
            self._begin_step()
            return
        keep = math.ceil(self.rungs[self.state.rung].population / 2)
        self._begin_rung(self.state.rung + 1, survivors(ranked, keep))

    def _end_early(self) -> None:
        """Wrap-up: the best finished member of the rung in flight (if any) becomes N*; then the final."""
        if self.state.results:
            self.state.parent = survivors(self.state.results, 1)[0]
        self.state.history.append(
            {
                "step": self.state.step,
                "wrapped_up": True,
                "parent": self.state.parent.id if self.state.parent else None,
            }
        )
        self.state.phase = "final"

    def observe(self, result: EvalResult) -> None:
        role = result.request.meta.get("role")
        if role == "start":
            if not result.ok:
                self.state.phase = "done"
                self.state.history.append({"step": 0, "failed": result.reason})
                return
            self.state.parent = Member.from_result(result)
            start = self.state.parent
            self.state.history.append(
                {"step": 0, "parent": result.id, "objective": start.objective, "params": start.params}
            )
            self._begin_step()
            return
        if role == "final":
            self.state.final_id = result.id if result.ok else None
            self.state.phase = "done"
            return
        self.state.observed += 1
        if result.ok:
            self.state.lineage[result.id] = int(result.request.meta.get("child", -1))
            self.state.results.append(Member.from_result(result))
        if self.state.observed == self.state.target and self.state.issued == self.state.target:
            if self.state.wrapped:
                self._end_early()
            else:
                self._end_rung()

    def planned(self) -> int:
        """The start network, every rung's trainings and the winner's per step, the final training."""
        per_step = sum(r.population for r in self.rungs) + 1
        return 1 + self.steps * per_step + 1

    def done(self) -> bool:
        return self.state.phase == "done"

    def summary(self) -> dict[str, Any]:
        """``steps``: per hill-climbing step its rungs (epochs, candidates best first) and winner."""
        return {
            "steps": self.state.history,
            "schedule": "restart per rung" if self.restart else "one per step",
        }

    def result_candidate(self) -> int | None:
        if self.state.final_id is not None:
            return self.state.final_id
        return self.state.parent.id if self.state.parent else None


class SuccessiveHalvingRestarts(SuccessiveHalving):
    """``shr``: the cosine schedule restarts at every halving step (paper 001 §4.2.3)."""

    name: ClassVar[str] = "shr"
    restart: ClassVar[bool] = True


class SuccessiveHalvingSeparable(SuccessiveHalvingRestarts):
    """``shrsep``: SHR with the insert-separable-conv operator (paper 001 §3.2.6, §4.2.4)."""

    name: ClassVar[str] = "shrsep"
    default_operators: ClassVar[tuple[str, ...]] = SIX_OPERATORS


__all__ = [
    "REFERENCE",
    "FIVE_OPERATORS",
    "SIX_OPERATORS",
    "Rung",
    "SuccessiveHalving",
    "SuccessiveHalvingConfig",
    "SuccessiveHalvingRestarts",
    "SuccessiveHalvingSeparable",
    "halving_plan",
    "survivors",
]

"""Pareto-NASH (paper 002 §4.2, Algorithm 2): a whole Pareto front of networks in one run.

    P <- P0: start networks of different widths, each trained `start_epochs`
    for generation 1..n_gen:
        p_KDE <- gaussian KDE of the cheap objectives f(N) of the front P
        n_pc proposal children: parent ~ 1 / p_KDE(f(parent))               (eq. 9)
                                1..ops_max operators, each drawn uniformly from T
        n_ac accepted children ~ 1 / p_KDE(f(child)), without replacement  (eq. 10)
        repair approximate children on their affected nodes, train them (SGD, cosine)
        P <- the non-dominated networks of P and the accepted children over (val error, f)

``f`` are the cheap objectives the user chooses (``objectives``): log(params), log(MACs) and
the measured CPU latency of the lowered module (``latency``, in ms; a proposal's latency is
estimated as its parent's scaled by their MACs, the only cheap proxy before it is built).
``sampling = "uniform"`` is the paper's baseline: parents and accepted children uniform.

T is NASH's exact morphisms (deepen, widen, skip) plus the approximate ones (remove a block
or a skip, prune 1/2 or 1/4 of a conv's filters, substitute a separable conv); a child with an
approximate rewrite asks the worker to repair its affected nodes against the parent first
(``EvalRequest.repair``, distances in ``Metrics.extra``). The start front is four vanilla nets
(two with separable convs), ~13 k to ~370 k parameters as the paper's 15 k-400 k.

With several workers, a generation starts as soon as the previous one is fully proposed and a
worker is free, from the front as it is then (the paper's asynchronous instances sharing one
front); with one worker the generations are strictly sequential, as in Algorithm 2. The
hypervolume of the front after each generation, against a reference point fixed from the
start networks, is kept in the state and reported.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
from genomorph.ir import Graph, Weights
from genomorph.search.core.protocol import (
    Budget,
    EvalRequest,
    EvalResult,
    Front,
    FrontMember,
    Proposal,
    RepairRequest,
    SearchContext,
    SearchSetup,
    Strategy,
    StrategyState,
    canonical,
)
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._pareto import (
    CHEAP_OBJECTIVES,
    Bandwidth,
    cheap_values,
    hypervolume,
    inverse_density_weights,
    kde_density,
    nondominated,
    reference_point,
    sample_indices,
)
from .nash import OPERATORS, grow, start_genome
from .scale import DataScale, resolve

#: paper 002 §5.2: NASH's three morphisms and the three approximate operators
PARETO_OPERATORS = ("deepen", "widen", "skip", "remove-block", "prune-channels", "substitute-sepconv")


def vanilla(width: int, conv: str) -> str:
    """Paper 002's start network at a width: three conv-bn-relu blocks (width, 2w, 4w), max-pooling
    between them, global average pooling and a linear classifier (fitted to the data later)."""
    blocks = [f"{conv}({width * 2**i}, 3, bias=false) bn relu" for i in range(3)]
    return "input 3x32x32\n" + "\nmaxpool(2)\n".join(blocks) + "\ngap linear(10)\n"


#: the four start networks (paper: ~15 k, 50 k, 100 k and 400 k parameters, two separable)
START_NETWORKS = (vanilla(32, "sep_conv"), vanilla(64, "sep_conv"), vanilla(32, "conv"), vanilla(64, "conv"))

#: defaults on the reference data (digits), scaled by `scale.DataScale` (paper, 8 GPUs:
#: n_pc = 200, n_ac = 40 per generation; 25 / 5 per instance)
REFERENCE = {
    "generations": 8,
    "proposals": 25,
    "accepted": 4,
    "epochs": 4,
    "start_epochs": 6,
    "repair_epochs": 2,
}


class ParetoNashConfig(BaseModel):
    """Options of ``--strategy pareto-nash`` (``None`` = scaled to the data)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generations: int | None = Field(default=None, ge=0)
    """n_gen (``--budget``)."""
    proposals: int | None = Field(default=None, ge=1)
    """n_pc: proposal children per generation (cheap objectives only, never trained)."""
    accepted: int | None = Field(default=None, ge=1)
    """n_ac: accepted children per generation (trained and merged into the front)."""
    ops_max: int = Field(default=3, ge=1)
    """Operators per child, drawn uniformly from 1..ops_max (paper: 3)."""
    epochs: int | None = Field(default=None, ge=1)
    """Training epochs of every accepted child (``--epochs``), cosine-annealed."""
    start_epochs: int | None = Field(default=None, ge=0)
    repair_epochs: int | None = Field(default=None, ge=0)
    """Repair training of an approximate child's affected nodes (paper: 5)."""
    repair_lr: float = Field(default=1e-3, gt=0)
    lr: float | None = Field(default=None, gt=0)
    objectives: tuple[Literal["params", "macs", "latency"], ...] = ("params",)
    """Cheap objectives besides the validation error (``params,macs``: log of each; ``latency``)."""
    sampling: Literal["density", "uniform"] = "density"
    """``density``: eqs. 9 and 10; ``uniform``: the paper's baseline."""
    bandwidth: Bandwidth = "scott"
    """KDE bandwidth rule (scipy's ``gaussian_kde``)."""
    operators: tuple[str, ...] = PARETO_OPERATORS
    max_params: int | None = Field(default=None, ge=0)
    """No child grows beyond this; the default scales with the training set (1-20 M); 0 = no cap."""
    start_genomes: tuple[str, ...] | None = None
    """Genome texts of the start front (``None``: the four vanilla nets, or the start genome given)."""
    fit_start: bool = True

    @field_validator("objectives", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):  # --set objectives=params,macs
            v = tuple(p.strip() for p in v.split(",") if p.strip())
        if not v or len(set(v)) != len(v):
            raise ValueError("give one or more distinct cheap objectives: params, macs, latency")
        return v

    @field_validator("operators")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from genomorph.ir.rewrites import REWRITES

        known = set(OPERATORS) | set(REWRITES)
        unknown = [op for op in v if op not in known]
        if unknown or not v:
            raise ValueError(f"unknown operators {unknown}; choose from {sorted(known)}")
        return v


class Point(BaseModel):
    """An evaluated network as the front knows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    genome: str
    checkpoint: str | None
    values: tuple[float, ...]
    """(validation error, cheap objectives...), all minimised."""
    latency_ms: float | None = None
    macs: int = 0


class Pending(BaseModel):
    """An accepted child not yet proposed: regenerated from its seed (weights are not state)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generation: int
    index: int
    """Its index among the generation's proposal children (its generator's seed)."""
    parent: Point


class ParetoNashState(StrategyState):
    phase: Literal["start", "search", "done"] = "start"
    started: int = 0
    """Start networks proposed."""
    observed_start: int = 0
    evaluated: list[Point] = []
    """Every finished network (for the reference point and the plots)."""
    front: list[Point] = []
    reference: list[float] | None = None
    generation: int = 0
    """Generations begun."""
    pending: list[Pending] = []
    open: dict[int, int] = {}
    """Generation -> children proposed and not yet observed."""
    history: list[dict[str, Any]] = []
    """Per generation: proposals, accepted, hypervolume, front size and ids."""
    hypervolume_start: float | None = None


class ParetoNash(Strategy[ParetoNashConfig, ParetoNashState]):
    name: ClassVar[str] = "pareto-nash"

    def __init__(self, config: ParetoNashConfig, setup: SearchSetup) -> None:
        super().__init__(config, setup)
        scale, ref = DataScale.of(setup.dataset), REFERENCE
        self.generations = resolve(
            "generations", config.generations, ref["generations"], setup.budget, "--budget"
        )
        self.epochs = resolve("epochs", config.epochs, scale.epochs(ref["epochs"]), setup.epochs, "--epochs")
        count = scale.count
        self.proposals = resolve("proposals", config.proposals, ref["proposals"])
        self.accepted = resolve("accepted", config.accepted, count(ref["accepted"], ref["epochs"], minimum=2))
        self.start_epochs = resolve("start_epochs", config.start_epochs, scale.epochs(ref["start_epochs"]))
        self.repair_epochs = resolve("repair_epochs", config.repair_epochs, ref["repair_epochs"])
        cap = resolve("max_params", config.max_params, scale.max_params())
        self.max_params = cap or None
        self.objectives = tuple(config.objectives)
        self.names = ("val_error", *(CHEAP_OBJECTIVES[o] for o in self.objectives))
        self.starts = self._start_genomes()
        self._weights: dict[str, Weights] = {}  # checkpoint -> weights (a cache, not state)
        self._made: dict[tuple[int, int], Proposal] = {}  # (generation, index) -> proposal (cache)
        self._graphs: dict[str, Graph] = {}  # parent genome -> parsed graph (a cache)

    def _start_genomes(self) -> list[str]:
        texts = self.config.start_genomes
        if texts is None:
            texts = (self.setup.start_genome,) if self.setup.start_genome else START_NETWORKS
        out = []
        for text in texts:
            setup = self.setup.model_copy(update={"start_genome": text})
            out.append(start_genome(setup, self.config.fit_start))
        return out

    # ------------------------------------------------------------------ cheap objectives
    def _cheap(self, params: int, macs: int, latency_ms: float | None) -> list[float]:
        return cheap_values(self.objectives, params, macs, latency_ms)

    def _point(self, result: EvalResult) -> Point | None:
        m = result.metrics
        assert m is not None
        latency = m.extra.get("latency_ms")
        latency = float(latency) if isinstance(latency, int | float) else None
        values = [1.0 - m.objective, *self._cheap(m.params, m.macs, latency)]
        if any(math.isnan(v) for v in values):
            return None  # latency asked for but not measured: the network cannot be placed
        return Point(id=result.id, genome=result.request.genome, checkpoint=result.checkpoint,
                     values=tuple(values), latency_ms=latency, macs=m.macs)  # fmt: skip

    def _sampling_weights(self, query: list[list[float]]) -> np.ndarray | None:
        """Probabilities ∝ 1 / p_KDE at ``query`` (KDE of the front's cheap objectives); ``None``: uniform."""
        if self.config.sampling == "uniform":
            return None
        data = [list(p.values[1:]) for p in self.state.front]
        return inverse_density_weights(kde_density(data, query, self.config.bandwidth))

    # ------------------------------------------------------------------ children
    def _load(self, ctx: SearchContext, checkpoint: str) -> Weights:
        if checkpoint not in self._weights:
            if len(self._weights) > 16:  # a front's worth of weights; drop the oldest
                self._weights.pop(next(iter(self._weights)))
            self._weights[checkpoint] = ctx.load_weights(checkpoint)[0]
        return self._weights[checkpoint]

    def make_child(
        self, parent: Point, weights: Weights, generation: int, index: int
    ) -> tuple[Proposal, int, int] | None:
        """Proposal child ``index`` of a generation and its parameters and MACs: 1..ops_max
        operators on the parent (None if nothing applied). Its generator is seeded by (run seed,
        generation, index) alone, so a resumed run regenerates exactly the same child."""
        from genomorph.grammar import parse

        rng = np.random.default_rng([self.setup.seed, generation, index])
        n_op = int(rng.integers(1, self.config.ops_max + 1))
        graph = self._graphs.get(parent.genome)
        if graph is None:  # rewrites never mutate their input: one parse per parent serves all its children
            if len(self._graphs) > 64:
                self._graphs.pop(next(iter(self._graphs)))
            graph = self._graphs[parent.genome] = parse(parent.genome, source_name="<parent>")
        graph, child_weights, records = grow(
            graph, weights, rng, n_op, self.config.operators, self.max_params
        )
        if not records:
            return None
        _, mapping = graph.relabeled()
        stats = graph.stats()
        text, child_weights = canonical(graph, child_weights)
        repair = None
        if any(not r.get("exact", True) for r in records):
            nodes = sorted({mapping[n] for r in records for n in r.get("repair", ()) if n in mapping})
            if nodes and parent.checkpoint is not None:
                repair = RepairRequest(nodes=tuple(nodes), teacher_genome=parent.genome,
                                       teacher_checkpoint=parent.checkpoint, epochs=self.repair_epochs,
                                       lr=self.config.repair_lr)  # fmt: skip
        request = EvalRequest(
            genome=text,
            budget=Budget(epochs=self.epochs, lr=self.config.lr, schedule="cosine"),
            parent=parent.id,
            rewrites=tuple(records),
            meta={"role": "child", "generation": generation, "index": index},
            repair=repair,
            collect=("latency",) if "latency" in self.objectives else (),
        )
        return Proposal(request, weights=child_weights), stats.params, stats.macs

    def _begin_generation(self, ctx: SearchContext) -> None:
        """Algorithm 2, lines 4-8: KDE, parents (eq. 9), proposal children, accepted ones (eq. 10)."""
        state = self.state
        state.generation += 1
        g = state.generation
        front = list(state.front)
        rng = np.random.default_rng([self.setup.seed, 1_000_003, g])  # parents and acceptance (salted)
        parent_weights = self._sampling_weights([list(p.values[1:]) for p in front])
        parents = sample_indices(rng, parent_weights, len(front), self.proposals, replace=True)
        made: list[tuple[int, Point, Proposal]] = []
        cheap: list[list[float]] = []
        for index, which in enumerate(parents):
            parent = front[which]
            assert parent.checkpoint is not None
            child = self.make_child(parent, self._load(ctx, parent.checkpoint), g, index)
            if child is None:
                continue
            proposal, params, macs = child
            made.append((index, parent, proposal))
            # a child's latency before it is built: its parent's, scaled by the MACs
            latency = parent.latency_ms * (macs + 1) / (parent.macs + 1) if parent.latency_ms else None
            cheap.append(self._cheap(params, macs, latency))
        child_weights = self._sampling_weights(cheap) if made else None
        accepted = sorted(sample_indices(rng, child_weights, len(made), self.accepted, replace=False))
        state.pending = [Pending(generation=g, index=made[a][0], parent=made[a][1]) for a in accepted]
        self._made = {(g, made[a][0]): made[a][2] for a in accepted}
        state.open[g] = 0
        state.history.append({"generation": g, "proposals": len(made), "accepted": len(accepted),
                              "parents": sorted({made[a][1].id for a in accepted})})  # fmt: skip
        if not accepted:
            self._end_generation(g)

    def _issue(self, ctx: SearchContext, pending: Pending) -> Proposal | None:
        proposal = self._made.pop((pending.generation, pending.index), None)
        if proposal is None:  # resumed: regenerate it from its seed and the parent's weights
            assert pending.parent.checkpoint is not None
            weights = self._load(ctx, pending.parent.checkpoint)
            child = self.make_child(pending.parent, weights, pending.generation, pending.index)
            proposal = child[0] if child is not None else None
        return proposal

    # ------------------------------------------------------------------ protocol
    def propose(self, ctx: SearchContext) -> list[Proposal]:
        state, out = self.state, []
        if state.phase == "start":
            while state.started < len(self.starts) and len(out) < max(1, ctx.slots):
                budget = Budget(epochs=self.start_epochs, lr=self.config.lr, schedule="cosine")
                request = EvalRequest(genome=self.starts[state.started], budget=budget,
                                      meta={"role": "start", "index": state.started},
                                      collect=("latency",) if "latency" in self.objectives else ())  # fmt: skip
                out.append(Proposal(request))
                state.started += 1
            return out
        if state.phase != "search":
            return out
        if ctx.wrap_up and state.pending:  # stop exploring: only what is in flight still counts
            state.pending = []
            for g in [g for g, n in state.open.items() if n == 0]:
                self._end_generation(g)
        while len(out) < max(1, ctx.slots):
            if not state.pending:
                # a new generation once the last is fully proposed: sequential with one worker,
                # overlapping (asynchronous, as the paper's instances) when workers are free
                overlap = self.setup.max_parallel > 1 or not state.open
                if ctx.wrap_up or state.generation >= self.generations or not overlap or not state.front:
                    break
                self._begin_generation(ctx)
                continue
            pending = state.pending.pop(0)
            proposal = self._issue(ctx, pending)
            if proposal is not None:
                state.open[pending.generation] = state.open.get(pending.generation, 0) + 1
                out.append(proposal)
        if not out and not state.open and not state.pending:
            state.phase = "done"
        return out

    def observe(self, result: EvalResult) -> None:
        state = self.state
        role = result.request.meta.get("role")
        point = self._point(result) if result.ok else None
        if point is not None:
            state.evaluated.append(point)
            merged = [*state.front, point]
            state.front = [merged[i] for i in nondominated([p.values for p in merged])]
        if role == "start":
            state.observed_start += 1
            if state.observed_start == len(self.starts):
                self._start_search()
            return
        g = int(result.request.meta["generation"])
        state.open[g] -= 1
        if state.open[g] == 0 and not any(p.generation == g for p in state.pending):
            self._end_generation(g)

    def _start_search(self) -> None:
        state = self.state
        if not state.front:
            state.phase = "done"  # no start network trained: nothing to search from
            return
        state.reference = reference_point([p.values for p in state.evaluated], self.objectives)
        state.hypervolume_start = hypervolume([p.values for p in state.front], state.reference)
        state.phase = "search" if self.generations > 0 else "done"

    def _end_generation(self, g: int) -> None:
        state = self.state
        state.open.pop(g, None)
        assert state.reference is not None
        entry = next(h for h in state.history if h["generation"] == g)
        entry.update({"hypervolume": hypervolume([p.values for p in state.front], state.reference),
                      "front": [p.id for p in state.front]})  # fmt: skip

    def done(self) -> bool:
        return self.state.phase == "done"

    def planned(self) -> int:
        return len(self.starts) + self.generations * self.accepted

    # ------------------------------------------------------------------ report hooks
    def front(self) -> Front | None:
        members = tuple(
            FrontMember(candidate=p.id, objectives=dict(zip(self.names, p.values, strict=True)))
            for p in sorted(self.state.front, key=lambda p: p.values[1:])
        )
        return Front(objectives=self.names, members=members)

    def result_candidate(self) -> int | None:
        """The front member with the lowest validation error (ties: the smaller network)."""
        if not self.state.front:
            return None
        return min(self.state.front, key=lambda p: (p.values, p.id)).id

    def summary(self) -> dict[str, Any]:
        state = self.state
        return {
            "hypervolume": [h.get("hypervolume") for h in state.history],
            "hypervolume_start": state.hypervolume_start,
            "reference_point": dict(zip(self.names, state.reference, strict=True))
            if state.reference
            else None,
            "generations": [{k: v for k, v in h.items() if k != "front"} for h in state.history],
            "sampling": self.config.sampling,
        }


__all__ = [
    "PARETO_OPERATORS",
    "REFERENCE",
    "START_NETWORKS",
    "ParetoNash",
    "ParetoNashConfig",
    "ParetoNashState",
    "vanilla",
]

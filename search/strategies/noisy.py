"""Noisy Heuristics NAS (paper 000, Figure 3): grow and prune units, nest and remove H-ResNet layers.

One network, whose weights are kept throughout, goes through iterations of

    read the meta-parameter file (a broken edit keeps the last good values)
    growth:  P new units over the hidden layers, 70 % placed ∝ the moving average of each
             layer's ΔN = P_i − M_i, the rest uniformly (zero outgoing weights: function kept)
    train:   until the loss curve flattens (fit y = exp(a x)(1 − x), stop at a < −5) or max_epochs;
             the worker measures A and B per unit (``collect=("importance",)``)
    shrink:  the M least important units (I = A·(1 − B^33)) have their outgoing weights decayed
             to zero over ``decay_steps`` steps while everything else fine-tunes (recipe
             ``noisy-decay``), then they are removed
    layers:  a residual layer left with ≤ 1 unit is removed (``hres-shrink``); one with linear inner
             layers and H > (I·O²)^(1/3) nests them (``hres-grow``)
    save:    the rewritten network, its weights, metrics and meta-parameters

The train and shrink phases are candidates of the run (``role`` = ``train``, ``shrink``), so the
store holds every iteration and a killed run resumes where it stopped. The save is folded into
the shrink candidate when the rewrite provably keeps the fine-tuned network's function (the
removed units' outgoing weights decayed to exactly zero, removed residuals output zero, nesting
starts at zero: `_noisy_save`): its measurements are then the iteration's, and the saved weights
are rebuilt from its checkpoint by replaying the rewrite. Otherwise (and when nothing was
pruned) the rewritten network is evaluated without training as a ``save`` candidate. The answer
is the saved network with the best validation score (ties: the better training fit, then fewer
parameters), evaluated on the test split and written as a readable nested-``hres`` genome.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import numpy as np
from genomorph.ir import Graph, Weights
from genomorph.search.core.protocol import (
    JSON,
    Budget,
    EvalRequest,
    EvalResult,
    FlattenStop,
    Proposal,
    SearchContext,
    SearchSetup,
    Strategy,
    StrategyState,
)
from genomorph.search.core.state import Rng, seeded
from pydantic import Field

from . import _noisy_rules as rules
from ._noisy_config import DEFAULTS, Iteration, NoisyConfig, kind_of, start_genome
from ._noisy_meta import NoisyMeta, reload
from ._noisy_save import Derivation, PruneMove, Saved, replay, rewrite

log = logging.getLogger(__name__)
#: what the user should see during a run without ``-v`` (a meta-parameter change taking effect):
#: children of ``genomorph.notice`` are shown at INFO by the CLI (cli/_console_log.py)
notice = logging.getLogger("genomorph.notice.noisy")


#: recipe of the shrink phase's fine-tuning (``genomorph.search.runtime.recipes_noisy``)
DECAY_RECIPE = "noisy-decay"
#: key under which the meta-parameter file is recorded in the run store
META_INPUT = "noisy-meta"
#: iterations that fail in a row before the search gives up
MAX_FAILURES = 3
#: ``Budget.eval_every`` of the train and shrink candidates: validated once, after their last
#: epoch. The strategy reads only the final numbers (the flattening test reads training losses),
#: and a validation pass every epoch cost 10-13 % of a digits epoch (bench/bench_noisy.py)
VALIDATE_EVERY = 0


class NoisyState(StrategyState):
    phase: str = "grow"
    """grow -> train-wait -> shrink -> shrink-wait -> save [-> save-wait] -> (grow | final) -> final-wait -> done"""
    iteration: int = 0
    genome: str = ""
    """The current (last saved) network."""
    checkpoint: str | None = None
    """Its weights (None: fresh initialisation, or rebuilt from `derived`)."""
    derived: Derivation | None = None
    """A folded save: how the current network's weights are rebuilt (`_noisy_save.replay`)."""
    meta: NoisyMeta = NoisyMeta()
    """The last good meta-parameters."""
    meta_text: str | None = None
    """The meta-parameter file's text they were read from."""
    pending: dict[str, JSON] = Field(default_factory=dict)
    """The iteration in progress: what growth added, the train and shrink candidates, the prune moves."""
    deltas: list[dict[str, int]] = Field(default_factory=list)
    """ΔN per hidden-layer group (keyed by its first layer's id in `genome`), per iteration."""
    records: list[Iteration] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    """Broken meta-parameter edits, as warned."""
    meta_broken: bool = False
    """The last read of the meta-parameter file was a broken edit."""
    meta_changes: list[dict[str, JSON]] = Field(default_factory=list)
    """Every change read from the meta-parameter file: iteration and field -> [old, new]."""
    failures: int = 0
    total_epochs: int = 0
    final_id: int | None = None
    rng: Rng


class Noisy(Strategy[NoisyConfig, NoisyState]):
    name: ClassVar[str] = "noisy"

    def __init__(self, config: NoisyConfig, setup: SearchSetup) -> None:
        super().__init__(config, setup)
        from .scale import resolve

        table = DEFAULTS[kind_of(setup.dataset)]
        self.iterations = resolve(
            "iterations", config.iterations, table["iterations"], setup.budget, "--budget"
        )
        self.base = config.base_meta(setup.dataset, setup.epochs)
        self.start = start_genome(setup, config.hidden or table["hidden"])
        self.classification = setup.dataset.task == "classification"
        self._weights: tuple[str, Weights] | None = None  # weights cache (not state)
        self._derived: tuple[str, Saved] | None = None  # the last folded save, rebuilt (not state)

    def initial_state(self) -> NoisyState:
        return NoisyState(genome=self.start, meta=self.base, rng=seeded([self.setup.seed, 0x0E15E]))

    # ------------------------------------------------------------------ meta-parameters
    def _read_meta(self, ctx: SearchContext) -> None:
        cfg = self.config
        if cfg.meta is None:
            return
        # recorded in the store with the proposals made from it: a resume replays this very text
        text = ctx.read_input(META_INPUT, cfg.meta)
        if text == self.state.meta_text and text is not None:
            self._meta_read_fine(cfg.meta, changed=False)
            return
        meta, warning = reload(text, cfg.meta, self.state.meta, self.base)
        if warning:
            # once per broken edit, not again every iteration while the file stays broken
            if not self.state.meta_broken or warning not in self.state.warnings[-1:]:
                log.warning("iteration %d: %s", self.state.iteration, warning)
                self.state.warnings.append(warning)
            self.state.meta_broken = True
            return
        self.state.meta_text = text
        changed = self.state.meta.changes(meta)
        self._meta_read_fine(cfg.meta, changed=bool(changed))
        if changed:
            self.state.meta_changes.append(
                {"iteration": self.state.iteration, "changes": {k: [a, b] for k, (a, b) in changed.items()}}
            )
            notice.info(
                "iteration %d: meta-parameters from %s: %s",
                self.state.iteration,
                cfg.meta,
                ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()),
            )
        self.state.meta = meta

    def _meta_read_fine(self, name: str, changed: bool) -> None:
        """After a broken edit, say when the file reads again (a change says so itself)."""
        if self.state.meta_broken and not changed:
            notice.info(
                "iteration %d: %s reads fine again; the meta-parameters are unchanged",
                self.state.iteration,
                name,
            )
        self.state.meta_broken = False

    # ------------------------------------------------------------------ phases
    def _load(
        self, ctx: SearchContext, checkpoint: str | None, derived: Derivation | None = None
    ) -> Weights | None:
        """Weights of a checkpoint, or of a folded save (rebuilt from its shrink checkpoint)."""
        if derived is not None:
            if self._derived is None or self._derived[0] != derived.key():
                source = self._load(ctx, derived.checkpoint)
                assert source is not None
                self._derived = (derived.key(), replay(derived, source))
            return self._derived[1].weights
        if checkpoint is None:
            return None
        if self._weights is None or self._weights[0] != checkpoint:
            self._weights = (checkpoint, ctx.load_weights(checkpoint)[0])
        return self._weights[1]

    def _grow(self, ctx: SearchContext) -> Proposal:

        self._read_meta(ctx)
        meta = self.state.meta
        graph = _parse(self.state.genome)
        weights = self._load(ctx, self.state.checkpoint, self.state.derived)
        # a folded save's rewrite reaches the store with the next candidate's request
        records: list[Any] = list(self.state.pending.pop("save_records", []))  # type: ignore[arg-type]
        if not rules.groups(graph) and total_of(meta, graph) > 0:
            # a network without hidden layers (paper 000 may start from one linear layer): its
            # linear connection first becomes an H-ResNet layer whose hidden units then grow
            graph, weights, opened = rules.open_residual(graph, weights, self.state.rng)
            records += opened
        found = list(rules.groups(graph))
        averages = {g: rules.moving_average(self.state.deltas, g, meta.average_window) for g in found}
        counts = rules.place_growth(
            total_of(meta, graph), found, averages, meta.guided_fraction, self.state.rng
        )
        graph, weights, grown = rules.grow(graph, weights, counts, self.state.rng)
        records += grown
        text, weights, mapping = _canonical(graph, weights)
        self.state.pending = {
            "added": {str(mapping[g]): c for g, c in counts.items()},
            "records": [rules.record_json(r) for r in records],
            "meta": meta.model_dump(mode="json"),
        }
        budget = Budget(
            epochs=meta.max_epochs,
            lr=meta.lr,
            schedule="constant",
            stop=FlattenStop(threshold=meta.flatten_threshold, min_epochs=meta.min_epochs),
            eval_every=VALIDATE_EVERY,
        )
        request = EvalRequest(
            genome=text,
            budget=budget,
            rewrites=tuple(self.state.pending["records"]),  # type: ignore[arg-type]
            collect=("importance",),
            meta={"role": "train", "iteration": self.state.iteration},
        )
        self.state.phase = "train-wait"
        return Proposal(request, weights=weights)

    def _shrink(self, ctx: SearchContext) -> Proposal | None:
        """The fine-tuning with decaying outgoing weights, or None when nothing is to go."""

        meta = NoisyMeta.model_validate(self.state.pending["meta"])
        trained = str(self.state.pending["trained"])
        graph = _parse(str(self.state.pending["genome"]))
        stats = _importance(ctx, self.state.pending.get("importance"))
        if not stats:  # no statistics measured: rank by the trained weights
            weights = self._load(ctx, trained)
            assert weights is not None
            stats = rules.fallback_stats(graph, weights)
        moves, fade = rules.plan_shrink(graph, stats, meta.removals(), meta.remove_layer_at)
        self.state.pending["prune"] = [
            {"node": m.node, "remove": list(m.remove or ()), "count": len(m.remove or ())} for m in moves
        ]
        if not fade:
            return None
        steps_per_epoch = max(1, math.ceil(self.setup.dataset.train_size / 64))
        outgoing = rules.outgoing_columns(graph, fade)
        self.state.pending["outgoing"] = outgoing  # type: ignore[assignment]
        request = EvalRequest(
            genome=str(self.state.pending["genome"]),
            budget=Budget(
                epochs=max(1, math.ceil(meta.decay_steps / steps_per_epoch)),
                lr=meta.lr,
                schedule="constant",
                eval_every=VALIDATE_EVERY,
            ),
            parent=int(self.state.pending["train_id"]),  # type: ignore[arg-type]
            init_checkpoint=trained,
            recipe=DECAY_RECIPE,
            # the recipe measures the final weights on the training split: with the save folded
            # into this candidate (the usual case) these are the iteration's numbers
            recipe_options={"outgoing": outgoing, "decay_steps": meta.decay_steps},
            meta={"role": "shrink", "iteration": self.state.iteration},
        )
        return Proposal(request)

    def _save(self, ctx: SearchContext) -> Proposal | None:
        """Remove the faded units and small layers, nest large ones. When that provably keeps the
        fine-tuned network's function the iteration is recorded from the shrink candidate's
        measurements (None: folded); otherwise the result is evaluated untrained (``save``)."""
        pending = self.state.pending
        meta = NoisyMeta.model_validate(pending["meta"])
        genome, tuned = str(pending["genome"]), str(pending["tuned"])
        weights = self._load(ctx, tuned)
        assert weights is not None
        prune = [PruneMove(node=p["node"], remove=p["remove"]) for p in pending["prune"]]  # type: ignore[index,union-attr]
        seed = int(self.state.rng.integers(2**63 - 1))
        # only a shrink candidate's weights had outgoing weights decayed to zero
        outgoing = pending.get("outgoing") if "tuned_scores" in pending else None
        saved = rewrite(_parse(genome), weights, prune, meta.remove_layer_at, meta.layer_rule, seed, outgoing)  # type: ignore[arg-type]
        # ΔN_i = P_i - M_i of every group that still exists, under its new id
        delta: dict[str, int] = {str(k): int(v) for k, v in pending["added"].items()}  # type: ignore[union-attr]
        for p in prune:
            delta[str(p.node)] = delta.get(str(p.node), 0) - len(p.remove)
        self.state.deltas = [_rekey(d, saved.mapping) for d in self.state.deltas] + [
            _rekey(delta, saved.mapping)
        ]
        pending.update(
            {
                "layers_removed": saved.layers_removed,
                "layers_added": saved.layers_added,
                "removed": saved.removed,
            }
        )
        if saved.exact:
            derived = Derivation(
                genome=genome,
                checkpoint=tuned,
                prune=prune,
                seed=seed,
                remove_layer_at=meta.remove_layer_at,
                layer_rule=meta.layer_rule,
            )
            self._derived = (derived.key(), saved)
            scores = dict(pending["tuned_scores"])  # type: ignore[arg-type]
            self._record(int(pending["tuned_id"]), saved.genome, None, derived, scores)  # type: ignore[arg-type]
            self.state.pending = {"save_records": saved.records}
            return None
        request = EvalRequest(
            genome=saved.genome,
            budget=Budget(epochs=0),
            parent=int(pending.get("tuned_id", pending["train_id"])),  # type: ignore[arg-type]
            rewrites=tuple(saved.records),
            recipe=DECAY_RECIPE,
            meta={"role": "save", "iteration": self.state.iteration},
        )
        return Proposal(request, weights=saved.weights)

    def _final(self, ctx: SearchContext) -> Proposal | None:
        """Evaluate the best saved network on the test split, written as a readable H-ResNet genome."""

        from ._noisy_print import readable_with_weights

        best = self.best()
        if best is None:
            return None
        request = EvalRequest(
            genome=best.genome,
            budget=Budget(epochs=0, test=True),
            parent=best.candidate,
            init_checkpoint=best.checkpoint,
            recipe=DECAY_RECIPE,
            meta={"role": "final", "iteration": best.iteration},
        )
        weights = self._load(ctx, best.checkpoint, best.derived)
        nested = readable_with_weights(_parse(best.genome), weights)
        if nested is None:  # not a plain H-ResNet chain: keep the canonical text
            return Proposal(request) if best.derived is None else Proposal(request, weights=weights)
        text, weights = nested
        return Proposal(request.model_copy(update={"genome": text, "init_checkpoint": None}), weights=weights)

    # ------------------------------------------------------------------ protocol
    def propose(self, ctx: SearchContext) -> list[Proposal]:
        if self.state.phase == "grow" and (ctx.wrap_up or self.state.iteration >= self.iterations):
            self.state.phase = "final"
        if self.state.phase == "grow":
            return [self._grow(ctx)]
        if self.state.phase == "shrink":
            proposal = self._shrink(ctx)
            if proposal is not None:
                self.state.phase = "shrink-wait"
                return [proposal]
            self.state.pending["tuned"], self.state.pending["tuned_id"] = (
                self.state.pending["trained"],
                self.state.pending["train_id"],
            )
            self.state.phase = "save"
        if self.state.phase == "save":
            self.state.phase = "save-wait"
            saved = self._save(ctx)
            if saved is not None:
                return [saved]
            # folded into the shrink candidate: the next iteration (or the answer) right away
            return self.propose(ctx)
        if self.state.phase == "final":
            proposal = self._final(ctx)
            self.state.phase = "final-wait" if proposal is not None else "done"
            return [proposal] if proposal is not None else []
        return []

    def observe(self, result: EvalResult) -> None:
        role = result.request.meta.get("role")
        if role == "final":
            self.state.final_id = result.id if result.ok else None
            self.state.phase = "done"
            return
        if not result.ok:
            self._failed(result)
            return
        assert result.metrics is not None
        if role == "train":
            self.state.pending.update(
                {
                    "genome": result.request.genome,
                    "trained": result.checkpoint,
                    "train_id": result.id,
                    "importance": result.artifacts.get("importance"),
                    "train_epochs": result.metrics.epochs,
                    "stopped_early": bool(result.metrics.extra.get("stopped_early", False)),
                }
            )
            self.state.phase = "shrink"
        elif role == "shrink":
            self.state.pending.update(
                {
                    "tuned": result.checkpoint,
                    "tuned_id": result.id,
                    "tune_epochs": result.metrics.epochs,
                    "tuned_scores": self._scores(result.metrics),
                }
            )
            self.state.phase = "save"
        elif role == "save":
            self._saved(result)

    def _failed(self, result: EvalResult) -> None:
        """A failed phase abandons the iteration: the next one starts from the last saved network."""
        log.warning(
            "iteration %d: %s candidate failed: %s",
            self.state.iteration,
            result.request.meta.get("role"),
            result.reason,
        )
        self.state.failures += 1
        self.state.pending = {}
        self.state.iteration += 1
        self.state.phase = "final" if self.state.failures >= MAX_FAILURES else "grow"

    def _scores(self, m: Any) -> dict[str, JSON]:
        """What an iteration reports of a candidate's metrics."""
        return {
            "objective": m.objective,
            # the recipe measures the final weights on the training split (not a running mean)
            "train_accuracy": m.extra.get("train_accuracy_eval", m.train_accuracy)
            if self.classification
            else None,
            "val_accuracy": m.val_accuracy,
            "train_r2": m.extra.get("train_r2"),
            "val_r2": m.val_r2,
        }

    def _saved(self, result: EvalResult) -> None:
        assert result.metrics is not None
        self._record(result.id, result.request.genome, result.checkpoint, None, self._scores(result.metrics))

    def _record(
        self,
        candidate: int,
        genome: str,
        checkpoint: str | None,
        derived: Derivation | None,
        scores: dict[str, JSON],
    ) -> None:
        """The iteration is done: record it; its network becomes the current one."""
        pending = self.state.pending
        graph = _parse(genome)
        stats = graph.stats()
        epochs = int(pending.get("train_epochs", 0)) + int(pending.get("tune_epochs", 0))  # type: ignore[arg-type]
        self.state.total_epochs += epochs
        record = Iteration(
            iteration=self.state.iteration,
            candidate=candidate,
            params=stats.params,
            depth=stats.depth,
            units=list(rules.units(graph).values()),
            layers=len(rules.residual_groups(graph)),
            **scores,  # type: ignore[arg-type]
            epochs=epochs,
            total_epochs=self.state.total_epochs,
            stopped_early=bool(pending.get("stopped_early", False)),
            added=sum(int(v) for v in pending["added"].values()),  # type: ignore[union-attr]
            removed=int(pending.get("removed", 0)),  # type: ignore[arg-type]
            layers_added=int(pending.get("layers_added", 0)),  # type: ignore[arg-type]
            layers_removed=int(pending.get("layers_removed", 0)),  # type: ignore[arg-type]
            meta=dict(pending["meta"]),  # type: ignore[arg-type]
            genome=genome,
            checkpoint=checkpoint,
            derived=derived,
        )
        self.state.records.append(record)
        log.info(
            "iteration %d: %d params, depth %d, units %s, score %.4f%s",
            self.state.iteration, record.params, record.depth, record.units, record.objective,
            " (save folded into the shrink candidate)" if derived is not None else "",
        )  # fmt: skip
        self.state.genome, self.state.checkpoint, self.state.derived = genome, checkpoint, derived
        self.state.pending, self.state.failures = {}, 0
        self.state.iteration += 1
        self.state.phase = "grow"

    def best(self) -> Iteration | None:
        """The saved iteration with the best validation score; on ties the better training fit,
        then fewer parameters, then the earlier one."""
        if not self.state.records:
            return None

        def key(r: Iteration) -> tuple[float, float, int, int]:
            fit = r.train_accuracy if r.train_accuracy is not None else r.train_r2
            return (r.objective, fit if fit is not None else float("-inf"), -r.params, -r.iteration)

        return max(self.state.records, key=key)

    def summary(self) -> dict[str, JSON]:
        """``summary.json`` extras: the answer's training score and every iteration."""
        best = self.best()
        # the genome texts are in best.genome and the store; a folded save's derivation repeats one
        rows = [r.model_dump(mode="json", exclude={"genome", "derived"}) for r in self.state.records]
        out: dict[str, JSON] = {
            "train_accuracy": best.train_accuracy if best else None,
            "train_r2": best.train_r2 if best else None,
            "best_iteration": best.iteration if best else None,
            "iterations": rows,
            "meta_changes": list(self.state.meta_changes),
            "meta_warnings": list(self.state.warnings),
        }
        return out

    def planned(self) -> int:
        # train and shrink per iteration (the save is folded into the shrink as a rule), the answer
        return 2 * self.iterations + 1

    def done(self) -> bool:
        return self.state.phase == "done"

    def result_candidate(self) -> int | None:
        if self.state.final_id is not None:
            return self.state.final_id
        best = self.best()
        return best.candidate if best else None


# ---------------------------------------------------------------------------------- helpers
def total_of(meta: NoisyMeta, graph: Graph) -> int:
    """P for this growth phase: ``neurons_to_add``, or 0 once the network reached ``max_params``."""
    if meta.max_params is not None and graph.stats().params >= meta.max_params:
        return 0
    return meta.neurons_to_add


def _parse(text: str) -> Graph:
    """The graph of a genome the strategy made or read: one graph object per text for the texts of
    the last few phases (graphs are never edited in place), so the rules' per-graph caches hold
    across the phases of an iteration and a text the strategy printed itself is never parsed."""
    from genomorph.search.core.parsed import parsed

    graph = _GRAPHS.get(text)
    if graph is None:
        graph = parsed(text, source_name="<noisy>")
        _known(text, graph)
    return graph


#: genome text -> graph (see `_parse`); an iteration reads 2-3 networks, a few times each
CACHED_GRAPHS = 8
_GRAPHS: dict[str, Graph] = {}


def _known(text: str, graph: Graph) -> None:
    _GRAPHS.pop(text, None)
    while len(_GRAPHS) >= CACHED_GRAPHS:  # the oldest goes (dicts keep insertion order)
        del _GRAPHS[next(iter(_GRAPHS))]
    _GRAPHS[text] = graph


def _canonical(graph: Graph, weights: Weights | None) -> tuple[str, Weights | None, dict[int, int]]:
    """Canonical text and weights; the relabeled graph is what ``parse`` of the text gives (the
    ids, ops and wiring; tests/search/strategies/test_noisy_rules.py), so it is remembered for
    the strategy and for the worker of this process instead of parsing the text again."""
    from genomorph.ir.printer import print_genome
    from genomorph.ir.weights import remap
    from genomorph.search.core.parsed import remember

    relabeled, mapping = graph.relabeled()
    text = print_genome(relabeled)
    _known(text, relabeled)
    remember(text, relabeled)
    return text, (remap(weights, mapping) if weights is not None else None), mapping


def _rekey(delta: dict[str, int], mapping: dict[int, int]) -> dict[str, int]:
    return {str(mapping[int(k)]): v for k, v in delta.items() if int(k) in mapping}


def _importance(ctx: SearchContext, artifact: Any) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """A and B per unit from the train candidate's importance artifact ({} when there is none)."""
    from pathlib import Path

    from genomorph.ir import DataError
    from genomorph.search.core.importance import read_importance

    if not artifact:
        return {}
    reader = getattr(ctx, "load_artifact", None)  # an engine that hands artifacts over itself
    if reader is not None:
        return reader(artifact)
    run_dir = getattr(ctx, "run_dir", None)
    path = Path(run_dir) / str(artifact) if run_dir is not None else Path(str(artifact))
    try:
        return read_importance(path)[0]
    except DataError as err:
        log.warning("%s; ranking units by their weights instead", err)
        return {}


__all__ = ["DEFAULTS", "Iteration", "Noisy", "NoisyConfig", "start_genome"]

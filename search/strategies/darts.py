"""DARTS and hyperDARTS (paper 003): one-shot search over a supernet genome, then discretisation.

    for r in 1..repeats:                       # one candidate each, run by the worker recipe
        search the supernet (recipe ``darts``: Algorithm 1, first or second order;
                             recipe ``hyperdarts``: Algorithm 2, linear or MLP hypernetworks)
        discretise its α: DARTS cells by the official genotype() rule (top-2 incoming edges per
        node by their strongest non-``none`` op), any other supernet by argmax per mixed node
    choose the run with the best validation accuracy (hyperDARTS, §4.7: ignoring runs whose
    normal cell has no skip connection, unless all lack one)
    build the evaluation network (DARTS cells: the converter, sized to the data) and train it
    from scratch (``final_epochs``; 0 only evaluates it) with the test split measured

The search space is the start genome (``genomorph search --strategy darts SPACE.genome``) or a
``--space`` genome file; without either, the DARTS cell space sized to the data. The whole
supernet search is one candidate, so the engine's per-epoch state files make it resumable.
Torch-free: discretisation reads the checkpoint's α as numpy. With ``partial_channels`` K > 1
(PC-DARTS) the searched supernet is ``ir.partial_channels`` of the space, whose edge parameters β
are in the checkpoint beside α; the genotype rule then weighs the edges by softmax(β) per node.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from genomorph.ir import ConfigError, GenomeError
from genomorph.search.core.protocol import (
    JSON,
    Budget,
    EvalRequest,
    EvalResult,
    Proposal,
    SearchContext,
    Strategy,
    StrategyState,
)
from pydantic import BaseModel, ConfigDict, Field

from ._darts_options import DartsRecipeOptions, GenotypeLayout
from ._darts_progress import genotype_layout
from ._darts_space import argmax_genome, is_darts_supernet, op_counts, share_pure_ops

#: drop-path of the evaluation network (its rate rises linearly to this over the training, §4.8.2):
#: DARTS' 0.2 on CIFAR shapes, and on small data too: a found digits network fits its training
#: set by epoch 8 of 10, and 0.2 gave the better test accuracy there (docs/darts.md)
DROP_PATH = 0.2
SMALL_DROP_PATH = 0.2

#: sizes and lengths per kind of data: ``small`` = images of at most 16x16 (digits), ``cifar`` =
#: 32x32 and up (paper 003 §4.8). Small-data values are chosen so a search on digits finishes in
#: minutes on 2 CPU cores (docs/strategies.md has the measurements).
DEFAULTS: dict[str, dict[str, Any]] = {
    "small": {"channels": 8, "cells": 5, "epochs": 10, "eval_channels": 16, "eval_cells": 8,
              "auxiliary": False, "final_epochs": 10, "arch_lr_scale": 10.0, "drop_path": SMALL_DROP_PATH},
    "cifar": {"channels": 16, "cells": 8, "epochs": 50, "eval_channels": 36, "eval_cells": 20,
              "auxiliary": True, "final_epochs": 600, "arch_lr_scale": 1.0, "drop_path": DROP_PATH},
}  # fmt: skip

#: hyperDARTS-1 / -2 settings that differ from DARTS' (paper 003 Table 1)
HYPER: dict[str, dict[str, Any]] = {
    "linear": {"batch_size": 48, "lr": 0.05, "arch_lr": 6e-4, "epochs_delta": -1},
    "mlp": {"batch_size": 64, "lr": 0.075, "arch_lr": 9e-4, "epochs_delta": 0},
}


class DartsConfig(BaseModel):
    """Options of ``--strategy darts`` / ``hyperdarts`` (``None`` = the default for the data)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    order: Literal[1, 2] = 1
    """DARTS: first- or second-order architecture gradient (ignored by hyperDARTS)."""
    hypernet: Literal["linear", "mlp"] = "linear"
    """hyperDARTS: the hypernetwork (ignored by DARTS)."""
    epochs: int | None = Field(default=None, ge=1)
    """Search epochs (``--epochs``); DARTS 50, hyperDARTS-1 49 on CIFAR."""
    batch_size: int | None = Field(default=None, ge=2)
    lr: float | None = Field(default=None, gt=0)
    arch_lr: float | None = Field(default=None, gt=0)
    channels: int | None = Field(default=None, ge=1)
    """C of the default DARTS search space (no genome given)."""
    cells: int | None = Field(default=None, ge=3)
    eval_channels: int | None = Field(default=None, ge=1)
    """C of the evaluation network built from the found genotype."""
    eval_cells: int | None = Field(default=None, ge=3)
    auxiliary: bool | None = None
    """Auxiliary tower (weight 0.4) in the evaluation network; needs 32x32 inputs."""
    repeats: int = Field(default=1, ge=1)
    """Independent searches (seeds); the best by validation accuracy is kept (paper: 4)."""
    require_skip: bool | None = None
    """Ignore runs whose normal cell has no skip connection (§4.7); default on for hyperDARTS."""
    final_epochs: int | None = Field(default=None, ge=0)
    """Training epochs of the found network from scratch; 0 only evaluates it."""
    drop_path: float | None = Field(default=None, ge=0, lt=1)
    """Drop-path of the evaluation network (``stochastic_depth(P, schedule=linear)`` after every
    edge op but the identity; the rate rises from 0 to P over its training); 0: none."""
    partial_channels: int = Field(default=1, ge=1)
    """PC-DARTS' K (``--partial-channels K``): 1/K of every edge's channels go through its
    candidate ops, and edge normalisation weights a node's edges (``ir/partial_channels.py``).
    1 = plain DARTS."""
    share_ops: bool = True
    """Search on the space with parameter-free ops that read the same value shared (the ReLUs,
    pools and zeros of a DARTS cell's edges): the same function, fewer ops (`share_pure_ops`)."""
    fuse: bool = True
    """Train through the fused supernet (`lower.fuse.fuse_mixed`): same function, fewer kernels."""
    channels_last: bool = True
    """On CPU, run the supernet in the NHWC memory format (faster depthwise convolutions)."""


class SearchRun(BaseModel):
    """One repeat's search as the strategy remembers it."""

    repeat: int
    candidate: int
    ok: bool
    reason: str | None = None
    checkpoint: str | None = None
    val_accuracy: float | None = None
    best_val_accuracy: float | None = None
    extra: dict[str, JSON] = Field(default_factory=dict)
    train_s: float = 0.0
    alphas: str | None = None
    genotype: str | None = None
    genome: str | None = None
    """The discretised evaluation network (set once the α were read)."""
    ops: dict[str, int] = Field(default_factory=dict)
    has_skip: bool = False


class DartsState(StrategyState):
    phase: Literal["search", "final", "final-issued", "done"] = "search"
    issued: int = 0
    runs: list[SearchRun] = Field(default_factory=list)
    chosen: int | None = None
    final_id: int | None = None


def _kind(shape: tuple[int, ...]) -> str:
    return "cifar" if len(shape) == 3 and min(shape[1:]) >= 32 else "small"


class Darts(Strategy[DartsConfig, DartsState]):
    name: ClassVar[str] = "darts"
    method: ClassVar[str] = "darts"

    def __init__(self, config: DartsConfig, setup: Any) -> None:
        super().__init__(config, setup)
        info = setup.dataset
        if info.task != "classification" or len(info.input_shape) != 3:
            raise ConfigError(
                f"{self.name} searches image classifiers, but dataset '{info.name}' is a "
                f"{info.task} task with inputs {info.input_shape}",
                hint="use digits, mnist, fashion-mnist, cifar10 or cifar100",
            )
        table = DEFAULTS[_kind(info.input_shape)]
        self.defaults = {k: (getattr(config, k, None) if getattr(config, k, None) is not None else v)
                         for k, v in table.items()}  # fmt: skip
        if setup.epochs is not None:
            if config.epochs is not None and config.epochs != setup.epochs:
                raise ConfigError(f"--epochs {setup.epochs} contradicts --set epochs={config.epochs}")
            self.defaults["epochs"] = setup.epochs
        self.space, self.plain_space = self._space_texts()
        self.recipe_options = self._recipe_options()

    # ------------------------------------------------------------------ setup
    def _space_texts(self) -> tuple[str, str]:
        """The supernet searched, and the one its α are discretised on (the same unless PC-DARTS)."""
        from genomorph.ir.partial_channels import partial_channels
        from genomorph.ir.printer import print_genome

        graph = self._space_graph()
        k = self.config.partial_channels
        searched = partial_channels(graph, k) if k > 1 else graph
        if self.config.share_ops:
            searched, _ = share_pure_ops(searched)
            graph = share_pure_ops(graph)[0] if k > 1 else searched
        text = print_genome(searched)
        # PC-DARTS keeps α's groups, rows and candidates: the plain supernet reads them as they are
        return text, (text if k == 1 else print_genome(graph))

    def _space_graph(self) -> Any:
        from genomorph.grammar import parse
        from genomorph.grammar.darts import darts_supernet

        info = self.setup.dataset
        text = self.setup.start_genome or self.setup.space
        if text is None:
            return darts_supernet(
                self.defaults["channels"],
                self.defaults["cells"],
                info.num_outputs,
                input_shape=info.input_shape,
            )
        try:
            graph = parse(text, source_name=self.setup.space_name or "<search space>")
        except GenomeError as err:
            raise ConfigError(
                f"the {self.name} search space must be a genome with mixed ops: {err.message}",
                hint="e.g. genomorph convert --from darts-search --channels 8 --cells 5 > space.genome",
            ) from None
        if not any(graph.kind(n) == "mixed" for n in graph.order()):
            raise ConfigError(
                "the search-space genome has no mixed ops, so there is nothing to search",
                hint="write candidates as mixed(a, b, ...) or use genomorph convert --from darts-search",
            )
        return graph

    def _recipe_options(self) -> dict[str, JSON]:
        cfg = self.config
        values: dict[str, Any] = {"method": self.method, "order": cfg.order, "hypernet": cfg.hypernet,
                                  "partial_channels": cfg.partial_channels}  # fmt: skip
        epochs = self.defaults["epochs"]
        arch_lr = DartsRecipeOptions().arch_lr
        if self.method == "hyperdarts":
            hyper = HYPER[cfg.hypernet]
            values.update(batch_size=hyper["batch_size"], lr=hyper["lr"])
            arch_lr = hyper["arch_lr"]
            if cfg.epochs is None and self.setup.epochs is None and epochs == 50:  # Table 1: 49 at CIFAR
                epochs = max(1, epochs + hyper["epochs_delta"])
        self.epochs = epochs
        # small data gives ~100 α steps instead of CIFAR's ~20 000: a larger step lets α move at all
        values["arch_lr"] = arch_lr * self.defaults["arch_lr_scale"]
        for key in ("batch_size", "lr", "arch_lr"):
            if getattr(cfg, key) is not None:
                values[key] = getattr(cfg, key)
        values["layout"] = self._layout()
        values.update(fuse=cfg.fuse, channels_last=cfg.channels_last)
        return DartsRecipeOptions(**values).model_dump(mode="json")

    def _layout(self) -> GenotypeLayout:
        """How the worker reads the current genotype's op counts off α (the epoch progress)."""
        from genomorph.grammar import parse

        # the space the α are discretised on (PC-DARTS keeps α's groups, rows and candidates)
        return genotype_layout(parse(self.plain_space, source_name="<search space>"))

    # ------------------------------------------------------------------ protocol
    def propose(self, ctx: SearchContext) -> list[Proposal]:
        st, out = self.state, []
        if st.phase == "search":
            while st.issued < self._repeats(ctx):
                out.append(self._search_proposal(st.issued))
                st.issued += 1
            for run in st.runs:
                if run.ok and run.genome is None and run.checkpoint is not None:
                    self._discretise(run, ctx.load_weights(run.checkpoint)[1])
            if len(st.runs) == st.issued and st.issued > 0 and not out:
                st.phase = "final"
                st.chosen = self._choose()
                if st.chosen is None:
                    st.phase = "done"
        if st.phase == "final":
            st.phase = "final-issued"
            out.append(self._final_proposal())
        return out

    def _repeats(self, ctx: SearchContext) -> int:
        return self.state.issued if ctx.wrap_up else self.config.repeats

    def _search_proposal(self, repeat: int) -> Proposal:
        request = EvalRequest(
            genome=self.space,
            budget=Budget(epochs=self.epochs, schedule="cosine"),
            recipe=self.method,
            recipe_options=self.recipe_options,
            meta={"role": "search", "repeat": repeat},
        )
        return Proposal(request)

    def _discretise(self, run: SearchRun, arch: dict) -> None:
        from genomorph.grammar import parse
        from genomorph.grammar.darts import decode_genotype, genotype_to_graph
        from genomorph.ir.printer import print_genome

        graph = parse(self.plain_space, source_name="<search space>")
        info = self.setup.dataset
        if is_darts_supernet(graph):
            genotype = decode_genotype(graph, arch)
            run.genotype = genotype.text()
            labels = [op for op, _ in genotype.normal] + [op for op, _ in genotype.reduce]
            run.has_skip = any(op == "skip_connect" for op, _ in genotype.normal)
            aux = bool(self.defaults["auxiliary"]) and tuple(info.input_shape[1:]) == (32, 32)
            found = genotype_to_graph(
                genotype,
                self.defaults["eval_channels"],
                self.defaults["eval_cells"],
                info.num_outputs,
                auxiliary=aux,
                input_shape=info.input_shape,
                drop_path=float(self.defaults["drop_path"]),
            )
        else:
            found, chosen = argmax_genome(graph, arch)
            labels = list(chosen.values())
            run.has_skip = any(label in ("skip", "skip_connect", "identity") for label in labels)
            run.genotype = "Genotype(mixed=[" + ", ".join(repr(v) for v in labels) + "])"
        run.ops = op_counts(labels)
        run.genome = print_genome(found)

    def _choose(self) -> int | None:
        done = [r for r in self.state.runs if r.ok and r.genome is not None]
        if not done:
            return None
        require = (
            self.config.require_skip if self.config.require_skip is not None else self.method == "hyperdarts"
        )
        pool = [r for r in done if r.has_skip] if require else done
        pool = pool or done  # every run lacks a skip: keep the rule from leaving nothing
        best = max(pool, key=lambda r: (r.best_val_accuracy or 0.0, -r.repeat))
        return best.repeat

    def _chosen_run(self) -> SearchRun | None:
        for run in self.state.runs:
            if run.repeat == self.state.chosen:
                return run
        return None

    def _final_proposal(self) -> Proposal:
        run = self._chosen_run()
        assert run is not None and run.genome is not None
        epochs = int(self.defaults["final_epochs"])
        budget = Budget(epochs=epochs, schedule="cosine", test=True)
        request = EvalRequest(
            genome=run.genome,
            budget=budget,
            parent=run.candidate,
            meta={"role": "final", "repeat": run.repeat},
        )
        return Proposal(request)

    def observe(self, result: EvalResult) -> None:
        st = self.state
        role = result.request.meta.get("role")
        if role == "final":
            st.final_id = result.id if result.ok else None
            st.phase = "done"
            return
        m = result.metrics
        extra = dict(m.extra) if m is not None else {}
        st.runs.append(
            SearchRun(
                repeat=int(result.request.meta.get("repeat", len(st.runs))),  # type: ignore[arg-type]
                candidate=result.id,
                ok=result.ok,
                reason=result.reason,
                checkpoint=result.checkpoint,
                val_accuracy=m.val_accuracy if m is not None else None,
                best_val_accuracy=extra.get("best_val_accuracy"),  # type: ignore[arg-type]
                extra=extra,
                train_s=result.train_s,
                alphas=result.artifacts.get("alphas"),
            )
        )

    def done(self) -> bool:
        return self.state.phase == "done"

    def planned(self) -> int:
        return self.config.repeats + 1

    def result_candidate(self) -> int | None:
        return self.state.final_id

    # ------------------------------------------------------------------ report
    def summary(self) -> dict[str, JSON]:
        run = self._chosen_run()
        runs = [
            {"repeat": r.repeat, "candidate": r.candidate, "ok": r.ok, "reason": r.reason,
             "best_val_accuracy": r.best_val_accuracy, "genotype": r.genotype, "ops": r.ops,
             "has_skip": r.has_skip, "search_s": round(r.train_s, 2),
             "peak_rss_mb": r.extra.get("peak_rss_mb")}
            for r in self.state.runs
        ]  # fmt: skip
        out: dict[str, JSON] = {"method": self._method_name(), "searches": runs}
        if self.config.partial_channels > 1:
            out["partial_channels"] = self.config.partial_channels
        if run is not None:
            out.update(
                genotype=run.genotype,
                found_genome=run.genome,
                search_val_accuracy=run.best_val_accuracy,
                weight_steps=run.extra.get("weight_steps"),
                arch_steps=run.extra.get("arch_steps"),
                search_s=round(run.train_s, 2),
                peak_rss_mb=run.extra.get("peak_rss_mb"),
                alphas_file=run.alphas,
            )
            if "hypernet_params" in run.extra:
                out["hypernet_params"] = run.extra["hypernet_params"]
        return out

    def _method_name(self) -> str:
        k = self.config.partial_channels
        pc = f", partial channels K={k}" if k > 1 else ""
        if self.method == "hyperdarts":
            return (
                f"hyperDARTS-{'1' if self.config.hypernet == 'linear' else '2'} ({self.config.hypernet}{pc})"
            )
        return f"DARTS ({'first' if self.config.order == 1 else 'second'} order{pc})"


class HyperDarts(Darts):
    name: ClassVar[str] = "hyperdarts"
    method: ClassVar[str] = "hyperdarts"


__all__ = ["DEFAULTS", "Darts", "DartsConfig", "DartsState", "HyperDarts", "SearchRun"]

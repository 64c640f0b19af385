"""The ``darts`` and ``hyperdarts`` recipes: one supernet search as one long candidate.

The engine's loop (`loop.run_epochs`) runs the steps; per iteration, as the official
``train_search.py``:

1. `ArchitectureStep` updates α on a batch of the ``arch`` split (half of the training split,
   ``train_portion``): first order, or second order with the unrolled weights (eq. 17), which
   reads the training batch the weight step is about to use;
2. `DartsWeightStep` (DARTS) or `hypernet.HypernetStep` (hyperDARTS) updates the weights, or the
   hypernetworks and the weights outside the cells, on a batch of the ``train`` split, with SGD
   (momentum, weight decay, clipping) at a learning rate cosine-annealed per epoch to ``min_lr``.

The loop validates after every epoch, writes the per-epoch checkpoint (the module's state,
every step's optimizer and generators, α so far) and resumes from it after a kill, ending with
the same numbers. ``Metrics.extra`` gets ``best_val_accuracy``, ``weight_steps``, ``arch_steps``,
``peak_rss_mb`` (and ``hypernet_params``); ``artifacts["alphas"]`` is α after every epoch (JSON).

Data-parallel (``genomorph search --nproc N``, `distributed.py`): when a `DataParallel` is current,
every rank builds the same steps, each loss is the rank's share of the global batch
(``ctx.extra[PARALLEL].shard_loss``) and the updates sum the ranks' gradients (``reduce``).
"""

from __future__ import annotations

import json
import resource
import sys
from typing import Any

import torch
from genomorph.ir import ConfigError
from genomorph.search.runtime.darts_steps import (
    ArchUpdate,
    LossFn,
    Reduce,
    SGDUpdate,
    classification_loss,
    cosine_lr,
)
from genomorph.search.runtime.data import Dataset, Split
from genomorph.search.runtime.recipes import ArtifactWriter, Recipe
from genomorph.search.runtime.steps import Batches, EpochMean, Step, StepState, TrainContext
from genomorph.search.strategies._darts_options import DartsRecipeOptions
from torch import nn

#: key of the network the steps forward through in ``TrainContext.extra`` (hyperDARTS: the
#: hypernetwork-driven supernet; DARTS: the lowered module itself)
NET = "darts_net"
#: key of the candidate's `data_parallel.DataParallel` in ``TrainContext.extra`` (absent: one process)
PARALLEL = "data_parallel"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _net(ctx: TrainContext) -> nn.Module:
    return ctx.extra.get(NET, ctx.module)


def _loss(ctx: TrainContext) -> LossFn:
    loss = classification_loss(_net(ctx))
    parallel = ctx.extra.get(PARALLEL)
    return loss if parallel is None else parallel.shard_loss(loss)


def _reduce(ctx: TrainContext) -> Reduce | None:
    parallel = ctx.extra.get(PARALLEL)
    return None if parallel is None else parallel.sum


class DartsWeightStep(Step):
    """SGD on the supernet's weights (not α) from batches of the ``train`` split."""

    name = "weights"
    split = "train"

    def __init__(self, ctx: TrainContext, opts: DartsRecipeOptions, params: list[nn.Parameter]) -> None:
        self.ctx, self.opts = ctx, opts
        self.update = SGDUpdate(
            params, opts.lr, opts.momentum, opts.weight_decay, opts.grad_clip, reduce=_reduce(ctx)
        )
        self.batches = Batches(ctx.splits["train"], opts.batch_size, ctx.device, ctx.generator("batches"))
        self.losses = EpochMean(ctx.device)
        self.count = 0  # updates so far (state)

    def tensors(self) -> list[torch.Tensor]:
        return list(self.update.params)

    def steps_per_epoch(self) -> int:
        return self.ctx.extra["darts_steps"]

    def start_epoch(self, epoch: int) -> None:
        self.update.set_lr(cosine_lr(self.opts.lr, self.opts.min_lr, epoch, self.ctx.epochs))
        self.batches.shuffle()
        self.losses.reset()

    def batch(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.batches.batch(i, self.ctx.data)

    def step(self, epoch: int, i: int) -> None:
        x, y = self.batch(i)
        self.losses.add(self.update.step(_loss(self.ctx), (x, y)), len(y))
        self.count += 1

    def end_epoch(self, epoch: int) -> dict[str, float]:
        return {"lr": self.update.lr, "train_loss": self.losses.mean()}

    def state_dict(self) -> StepState:
        return {
            "optimizer": self.update.state_dict(),
            "batches": self.batches.state_dict(),
            "count": self.count,
        }

    def load_state_dict(self, state: StepState) -> None:
        self.update.load_state_dict(state["optimizer"])
        self.batches.load_state_dict(state["batches"])
        self.count = int(state["count"])


class ArchitectureStep(Step):
    """Adam on α from batches of the ``arch`` split; second order unrolls the weight step."""

    name = "arch"
    split = "arch"

    def __init__(
        self, ctx: TrainContext, opts: DartsRecipeOptions, weights: DartsWeightStep, order: int
    ) -> None:
        self.ctx, self.weights = ctx, weights
        module: Any = ctx.module
        self.module = module
        self.update = ArchUpdate(
            module.arch_parameters(),
            opts.arch_lr,
            opts.arch_betas,
            opts.arch_weight_decay,
            order,
            reduce=_reduce(ctx),
        )
        self.batches = Batches(ctx.splits["arch"], opts.batch_size, ctx.device, ctx.generator("arch-batches"))
        self.losses = EpochMean(ctx.device)
        self.count = 0
        self.alphas: list[dict[str, list]] = [self._alphas()]  # α at the start and after every epoch
        self.layout = opts.layout  # for the op counts of the genotype α gives after each epoch

    def _alphas(self) -> dict[str, list]:
        return {g: t.detach().cpu().tolist() for g, t in self.module.named_arch_parameters()}

    def tensors(self) -> list[torch.Tensor]:
        return list(self.update.alphas)

    def steps_per_epoch(self) -> int:
        return self.ctx.extra["darts_steps"]

    def start_epoch(self, epoch: int) -> None:
        self.batches.shuffle()
        self.losses.reset()

    def step(self, epoch: int, i: int) -> None:
        val = self.batches.batch(i, self.ctx.data)
        # second order: the training batch the weight step uses next, at its current lr and momentum
        train = self.weights.batch(i) if self.update.order == 2 else None
        loss = self.update.step(_loss(self.ctx), val, train, self.weights.update)
        self.losses.add(loss, len(val[1]))
        self.count += 1

    def end_epoch(self, epoch: int) -> dict[str, float]:
        self.alphas.append(self._alphas())
        record = {"arch_loss": self.losses.mean()}
        if self.layout is not None:
            from genomorph.search.strategies._darts_progress import op_counts_record

            record.update(op_counts_record(self.alphas[-1], self.layout))
        return record

    def state_dict(self) -> StepState:
        return {
            "optimizer": self.update.state_dict(),
            "batches": self.batches.state_dict(),
            "count": self.count,
            "alphas": self.alphas,
        }

    def load_state_dict(self, state: StepState) -> None:
        self.update.load_state_dict(state["optimizer"])
        self.batches.load_state_dict(state["batches"])
        self.count = int(state["count"])
        self.alphas = list(state["alphas"])


class DartsRecipe(Recipe):
    """Paper 003 Algorithm 1 (``darts``) and Algorithm 2 (``hyperdarts``) on a supernet genome."""

    name = "darts"
    Options = DartsRecipeOptions

    @property
    def opts(self) -> DartsRecipeOptions:
        return self.options  # type: ignore[return-value]

    def splits(self, data: Dataset, train: Split) -> dict[str, Split]:
        # the official split: the first portion of the training indices for w, the rest for α
        cut = int(len(train) * self.opts.train_portion)
        if cut < 2 or len(train) - cut < 2:
            raise ConfigError(f"the training split ({len(train)} samples) is too small to halve for DARTS")
        return {
            "train": Split(train.x[:cut], train.y[:cut]),
            "arch": Split(train.x[cut:], train.y[cut:]),
            "val": data.val,
        }

    def steps(self, ctx: TrainContext) -> list[Step]:
        opts = self.opts
        module: Any = ctx.module
        if ctx.task != "classification":
            raise ConfigError("DARTS searches classifiers", hint="use a classification dataset")
        if not module.arch_parameters():
            raise ConfigError(
                "the search-space genome has no mixed ops, so there is nothing to search",
                hint="give a supernet genome, e.g. genomorph convert --from darts-search",
            )
        batch = max(1, min(opts.batch_size, len(ctx.splits["train"]), len(ctx.splits["arch"])))
        # as the official loop, which zips the two loaders: as many steps as the shorter has batches
        ctx.extra["darts_steps"] = min(len(ctx.splits["train"]), len(ctx.splits["arch"])) // batch
        from genomorph.search.runtime.data_parallel import current

        parallel = current()
        if parallel is not None:  # the same start on every rank, batch norm on the global batch
            parallel.check_batch(batch)
            parallel.prepare(module)
            ctx.extra[PARALLEL] = parallel
        from genomorph.search.runtime.darts_fusion import search_network

        # what the steps call: the supernet in channels_last (CPU) and fused, sharing its tensors
        ctx.extra[NET] = search_network(module, ctx.device, opts.fuse, opts.channels_last)
        if opts.method == "hyperdarts":
            from genomorph.search.runtime.hypernet import HypernetStep

            weights: DartsWeightStep = HypernetStep(ctx, opts)
            order = 1  # hyperDARTS' hypergradient is plain backpropagation through the hypernetwork
        else:
            weights = DartsWeightStep(ctx, opts, list(module.parameters()))
            order = opts.order
        steps: list[Step] = [ArchitectureStep(ctx, opts, weights, order), weights]
        if parallel is not None:  # what the steps own besides the module (hypernetworks)
            parallel.broadcast([t for s in steps for t in s.tensors()])
        return steps

    def extra(self, ctx: TrainContext, steps: list[Step], report: Any) -> dict[str, Any]:
        arch, weights = steps[0], steps[1]
        assert isinstance(arch, ArchitectureStep) and isinstance(weights, DartsWeightStep)
        vals = [r["val_accuracy"] for r in report.history if "val_accuracy" in r]
        out: dict[str, Any] = {
            "method": self.opts.method,
            "best_val_accuracy": max(vals) if vals else None,
            "weight_steps": weights.count,
            "arch_steps": arch.count,
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "partial_channels": self.opts.partial_channels,
        }
        size = getattr(weights, "hypernet_size", None)
        if size is not None:
            out["hypernet_params"] = size()
        parallel = ctx.extra.get(PARALLEL)
        if parallel is not None:
            parallel.record_final(ctx.module)
            out["nproc"] = parallel.size
        return out

    def artifacts(
        self, ctx: TrainContext, steps: list[Step], report: Any, files: ArtifactWriter
    ) -> dict[str, str]:
        arch = steps[0]
        assert isinstance(arch, ArchitectureStep)
        text = json.dumps({"epochs": arch.alphas}) + "\n"
        return {"alphas": files.write_bytes("alphas", ".json", text.encode())}


class HyperDartsRecipe(DartsRecipe):
    name = "hyperdarts"

    def __init__(self, options: DartsRecipeOptions) -> None:  # type: ignore[override]
        super().__init__(options.model_copy(update={"method": "hyperdarts"}))


__all__ = [
    "NET",
    "PARALLEL",
    "ArchitectureStep",
    "DartsRecipe",
    "DartsWeightStep",
    "HyperDartsRecipe",
    "peak_rss_mb",
]

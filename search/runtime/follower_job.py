"""A follower's share of a data-parallel candidate: `evaluate.evaluate_job` without the outputs.

The same preparation as rank 0's (recipe, data, genome, lowering from the job's seed, trainer
config with the budget, splits), then the recipe's steps in the engine's loop: the recipe sees
the current `DataParallel` and trains this rank's share of every batch. What the follower does
not do: validate, write epoch checkpoints, artifacts or weights, measure the test split.
Inherited weights are not read from the run directory (which another machine may not have):
the recipe broadcasts rank 0's module state before training.
"""

from __future__ import annotations

from typing import Any

import torch
from genomorph.lower import lower
from genomorph.search.core.config import Job, WorkerSpec
from genomorph.search.core.parsed import parsed
from genomorph.search.runtime.data import cached_dataset, check_fits
from genomorph.search.runtime.data_parallel import current
from genomorph.search.runtime.loop import run_epochs, seed_global
from genomorph.search.runtime.recipes import build_recipe
from genomorph.search.runtime.steps import TrainContext
from genomorph.search.runtime.trainer import merge_splits, resolve_device


class ReceivedEpochs:
    """`loop.EpochFile` of a follower: rank 0's epoch checkpoint to resume from; writes nothing."""

    def __init__(self, state: dict[str, Any] | None) -> None:
        self.state = state

    def load(self) -> dict[str, Any] | None:
        return self.state

    def save(self, state: dict[str, Any]) -> None:
        return None

    def wait(self) -> None:
        return None


def train_share(spec: WorkerSpec, job: Job, saved: dict[str, Any] | None) -> None:
    """Train this rank's share of ``job`` (resuming from rank 0's ``saved`` epoch checkpoint)."""
    if spec.threads is not None and torch.get_num_threads() != spec.threads:
        torch.set_num_threads(spec.threads)
    request, budget = job.request, job.request.budget
    recipe = build_recipe(request.recipe, request.recipe_options)
    data = cached_dataset(spec.data)
    graph = parsed(request.genome, source_name=f"candidate {job.id}")
    check_fits(graph, data.info)
    device = resolve_device(spec.train.device)
    seed_global(job.seed)  # as rank 0, so the global generator is where rank 0's is
    module = lower(graph).to(device)
    config = spec.train.with_budget(budget)
    final = budget.train_on == "train+val"
    split = merge_splits(data.train, data.val) if final else data.train
    if final:
        config = config.model_copy(update={"eval_every": 0})
    ctx = TrainContext(
        module=module,
        data=data,
        config=config,
        device=device,
        seed=job.seed,
        splits=recipe.splits(data, split),
        aux_weights=tuple(float(graph.op(n).weight) for n in graph.aux_outputs()),  # type: ignore[attr-defined]
        train_only=budget.train_only,
        schedule_offset=budget.schedule_offset,
        schedule_epochs=budget.schedule_epochs,
    )
    steps = recipe.steps(ctx)
    run_epochs(ctx, steps, validate=False, stop=budget.stop, checkpoints=ReceivedEpochs(saved))
    parallel = current()
    if parallel is not None:
        parallel.record_final(module)


__all__ = ["ReceivedEpochs", "train_share"]

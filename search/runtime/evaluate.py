"""The worker function every executor runs: genome text in, metrics and a checkpoint out.

genome text → parse → check it fits the data → lower (+ inherited weights) → [repair phase]
→ train with the request's recipe (per-epoch checkpoints; resumed from one when it exists)
→ measure (+ ``collect``: importance artifact, latency) → write the trained weights atomically
→ delete the epoch checkpoint. Whatever goes wrong inside one candidate — a genome
that does not parse, a shape that does not fit, a NaN loss, an exception in torch — becomes a
``failed`` result with the reason in words, so a search goes on past it.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from genomorph.grammar import parse
from genomorph.ir import GenomorphError
from genomorph.lower import extract_weights, load_weights, lower
from genomorph.search.core.config import Job, WorkerSpec
from genomorph.search.core.files import DurableBatch
from genomorph.search.core.parsed import parsed
from genomorph.search.core.protocol import EvalResult, Metrics, RepairRequest
from genomorph.search.runtime.checkpoint import (
    EpochCheckpoint,
    job_fingerprint,
    load_checkpoint,
    save_checkpoint,
)
from genomorph.search.runtime.collect import collect_importance, measure_latency_ms
from genomorph.search.runtime.data import cached_dataset, check_fits
from genomorph.search.runtime.loop import (
    EpochCallback,
    TrainingDiverged,
    TrainReport,
    evaluate_split,
    run_epochs,
    seed_global,
)
from genomorph.search.runtime.recipes import ArtifactWriter, build_recipe
from genomorph.search.runtime.repair import RepairConfig, RepairStep, outputs
from genomorph.search.runtime.steps import TrainContext, derived_seed
from genomorph.search.runtime.trainer import merge_splits, resolve_device

log = logging.getLogger(__name__)


class _Clock:
    """Accumulates wall time per phase; CUDA work is synchronised before reading the clock."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device
        self.last = time.perf_counter()

    def lap(self) -> float:
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        spent, self.last = now - self.last, now
        return spent


def _failure(job: Job, reason: str, setup_s: float, train_s: float = 0.0, eval_s: float = 0.0) -> EvalResult:
    return EvalResult(
        id=job.id,
        request=job.request,
        status="failed",
        reason=reason,
        setup_s=setup_s,
        train_s=train_s,
        eval_s=eval_s,
    )


def _describe(err: BaseException) -> str:
    """One line for the store: the message and where in genomorph/torch it came from."""
    frames = traceback.extract_tb(err.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(err).__name__}: {err}{where}"


def epoch_checkpoint_path(job: Job) -> str:
    """Where a job's per-epoch checkpoint lives: ``checkpoints/c00007.pt`` → ``checkpoints/c00007.epoch.pt``."""
    return str(Path(job.checkpoint).with_suffix(".epoch.pt"))


def _repair(
    ctx: TrainContext, repair: RepairRequest, run_dir: Path, epochs: EpochCheckpoint
) -> dict[str, float]:
    """The repair phase (paper 002 §3.2) in place on ``ctx.module``; returns the distances."""
    teacher_weights, teacher_arch, _ = load_checkpoint(run_dir / repair.teacher_checkpoint)
    teacher_graph = parse(repair.teacher_genome, source_name="repair teacher")
    teacher = lower(teacher_graph, teacher_weights, teacher_arch).to(ctx.device).eval()
    split = ctx.splits["train"]
    config = RepairConfig(epochs=repair.epochs, lr=repair.lr)
    x = split.x.to(ctx.device)
    targets = outputs(teacher, x, config.batch_size, ctx.data.normalise)
    del teacher
    ctx.module.eval()
    step = RepairStep(
        ctx.module,
        repair.nodes,
        x,
        targets,
        config,
        ctx.generator("repair"),
        normalise=ctx.data.normalise,
    )
    before = step.best
    repair_ctx = replace(ctx, config=ctx.config.model_copy(update={"epochs": repair.epochs}))
    run_epochs(repair_ctx, [step], validate=False, checkpoints=epochs, phase="repair")
    after = step.distance()
    for p in ctx.module.parameters():  # the repair froze everything else: the training needs it back
        p.requires_grad_(True)
    return {"repair_distance_before": before, "repair_distance_after": after}


def evaluate_job(spec: WorkerSpec, job: Job, on_epoch: EpochCallback | None = None) -> EvalResult:
    """Evaluate one candidate; never raises for a candidate's own faults (only KeyboardInterrupt).

    A job whose epoch checkpoint exists (its run was killed mid-candidate) continues after the
    last finished epoch and ends with exactly the metrics of an uninterrupted evaluation.
    """
    if spec.threads is not None and torch.get_num_threads() != spec.threads:
        torch.set_num_threads(spec.threads)
    clock = _Clock()
    setup_s = train_s = eval_s = 0.0
    request, budget = job.request, job.request.budget
    run_dir = Path(spec.run_dir)
    epochs: EpochCheckpoint | None = None
    try:
        recipe = build_recipe(request.recipe, request.recipe_options)
        data = cached_dataset(spec.data)
        # cached per process: a strategy often sends a text again (noisy: train, then shrink)
        graph = parsed(request.genome, source_name=f"candidate {job.id}")
        check_fits(graph, data.info)
        device = resolve_device(spec.train.device)
        clock.device = device
        weights = arch = None
        if request.init_checkpoint:
            weights, arch, _ = load_checkpoint(run_dir / request.init_checkpoint)
        seed_global(job.seed)  # fresh parameters are drawn from the global generator
        kept = _reuse(request, graph, weights, arch, device)
        if kept is None:
            _remember(None)  # the kept module (if any) is another network's: let it go
            module = lower(graph, weights, arch).to(device)
            attributes = _attributes(module)
        else:
            module, attributes = kept.module, kept.attributes
        # what trains next (dropout, drop-path) draws from a stream of its own, the same whether the
        # module was lowered now (drawing fresh parameters, or none) or reused
        seed_global(derived_seed(job.seed, "global"))
        stats = graph.stats()
        config = spec.train.with_budget(budget)
        final = budget.train_on == "train+val"
        split = merge_splits(data.train, data.val) if final else data.train
        if final:  # the validation split is inside the training data: don't pretend to validate
            config = config.model_copy(update={"eval_every": 0})
        aux_weights = tuple(float(graph.op(n).weight) for n in graph.aux_outputs())  # type: ignore[attr-defined]
        ctx = TrainContext(
            module=module,
            data=data,
            config=config,
            device=device,
            seed=job.seed,
            splits=recipe.splits(data, split),
            aux_weights=aux_weights,
            train_only=budget.train_only,
            schedule_offset=budget.schedule_offset,
            schedule_epochs=budget.schedule_epochs,
        )
        epochs = EpochCheckpoint(run_dir / epoch_checkpoint_path(job), job_fingerprint(job))
        saved = epochs.load()
        if saved is not None:
            log.info(
                "candidate %d continues after epoch %d of its %s phase (epoch checkpoint)",
                job.id,
                int(saved["epoch"]),
                saved.get("phase"),
            )
        extra: dict[str, Any] = {}
        setup_s = clock.lap()
        if request.repair is not None and (saved is None or saved.get("phase") == "repair"):
            extra.update(_repair(ctx, request.repair, run_dir, epochs))
        steps = recipe.steps(ctx)
        report = run_epochs(ctx, steps, stop=budget.stop, checkpoints=epochs, carry=extra, on_epoch=on_epoch)
        extra = dict(report.carry)  # on resume: what the repair phase measured before the kill
        clock.lap()
        train_s, eval_s = report.train_s, report.eval_s
        trained, trained_arch = extract_weights(module, graph)
        # the weights are written first: their fsync runs while the evaluation, the recipe's
        # measures and the artifacts are done, and all the files are durable (and in place)
        # together before the result reports them; a failed candidate aborts them all
        with DurableBatch() as batch:
            save_checkpoint(
                run_dir / job.checkpoint, trained, trained_arch, genome=request.genome, batch=batch
            )
            setup_s += clock.lap()
            last = report.history[-1] if report.history else {}
            val: dict[str, float] = {}
            if not final and len(data.val):
                # the loop validated after the last epoch already: same weights, same numbers
                val = {k[4:]: v for k, v in last.items() if k.startswith("val_")} or evaluate_split(
                    module, data, data.val, device, config.eval_batch_size
                )
            test = (
                evaluate_split(module, data, data.test, device, config.eval_batch_size) if budget.test else {}
            )
            eval_s += clock.lap()
            if budget.stop is not None:
                extra.update({"stopped_early": report.stopped_early, "flatten_a": report.flatten_a})
            extra.update(recipe.extra(ctx, steps, report))
            if "latency" in request.collect:
                extra["latency_ms"] = measure_latency_ms(module, data)
            metrics = _metrics(data.info.task, val, test, report, stats.params, stats.macs, final, extra)
            bad = [
                k for k, v in metrics.model_dump().items() if isinstance(v, float) and not math.isfinite(v)
            ]
            if bad:
                batch.abort()
                epochs.discard()
                return _failure(job, f"non-finite metrics: {', '.join(bad)}", setup_s, train_s, eval_s)
            files = ArtifactWriter(run_dir, job.id, batch)
            artifacts = recipe.artifacts(ctx, steps, report, files)
            if "importance" in request.collect:
                # the trained module itself (in eval mode, gradients cleared after): no second lowering
                artifacts["importance"] = collect_importance(graph, trained, data, split, files, module)
        epochs.discard()  # the final weights are on disk: the epoch checkpoint has done its job
        if request.repair is None:
            _remember(_Kept(request.genome, device, module, attributes))
        setup_s += clock.lap()
        return EvalResult(
            id=job.id,
            request=request,
            status="finished",
            metrics=metrics,
            checkpoint=job.checkpoint,
            artifacts=artifacts,
            setup_s=setup_s,
            train_s=train_s,
            eval_s=eval_s,
        )
    except TrainingDiverged as err:
        _forget(epochs)
        return _failure(job, str(err), setup_s, clock.lap() + train_s, eval_s)
    except GenomorphError as err:
        _forget(epochs)
        return _failure(job, str(err), setup_s + clock.lap(), train_s, eval_s)
    except Exception as err:  # any fault of this candidate (CUDA OOM, a lowering bug, ...) fails it alone
        _forget(epochs)
        return _failure(job, _describe(err), setup_s + clock.lap(), train_s, eval_s)


@dataclass
class _Kept:
    """The last finished candidate's trained module, for the next candidate of the same genome."""

    genome: str
    device: torch.device
    module: torch.nn.Module
    attributes: dict[str, dict[str, Any]]
    """Every submodule's plain attributes as lowering left them (`_attributes`)."""


_KEPT: _Kept | None = None


def _remember(kept: _Kept | None) -> None:
    global _KEPT
    _KEPT = kept


def _attributes(module: torch.nn.Module) -> dict[str, dict[str, Any]]:
    """The plain public attributes of every submodule (a drop-path rate, ``p``, ``inplace``, ...)."""
    out = {}
    for name, sub in module.named_modules():
        out[name] = {
            k: v
            for k, v in vars(sub).items()
            if not k.startswith("_") and k != "training" and isinstance(v, int | float | str | bool | None)
        }
    return out


def _reuse(request: Any, graph: Any, weights: Any, arch: Any, device: torch.device) -> _Kept | None:
    """The kept module with ``weights`` loaded, where that is exactly what lowering would build.

    A strategy often evaluates a genome right after the last candidate of the same genome (noisy:
    the shrink candidate fine-tunes the train candidate's network from its checkpoint). Lowering
    it again costs more than loading the weights into the module that is still here. Reused only
    when lowering would draw nothing at random: every tensor given (``load_weights`` is strict, as
    ``lower`` is), no architecture parameters, no repair phase, and the module left as lowering
    built it apart from its tensors: contiguous tensors, no hooks, the same plain attributes.
    Gradients are dropped and every submodule set back to training mode, as a new module is.
    """
    kept = _KEPT
    if (
        kept is None
        or weights is None
        or arch
        or request.repair is not None
        or kept.genome != request.genome
        or kept.device != device
        or graph.stats().arch_params
    ):
        return None
    module = kept.module
    for sub in module.modules():
        if sub._forward_hooks or sub._forward_pre_hooks or sub._backward_hooks:
            return None
    if _attributes(module) != kept.attributes:
        return None
    if not all(t.is_contiguous() for t in module.state_dict().values()):
        return None
    _remember(None)  # whatever happens next, this module is the new candidate's
    load_weights(module, graph, weights, arch)
    for p in module.parameters():
        p.grad = None
        p.requires_grad_(True)
    module.train()
    return kept


def _forget(epochs: EpochCheckpoint | None) -> None:
    """A failed candidate is done too: its epoch checkpoint must not outlive it."""
    if epochs is not None:
        try:
            epochs.discard()
        except Exception:  # noqa: S110 - the failure being reported matters more than this file
            (epochs.path).unlink(missing_ok=True)


def _metrics(
    task: str,
    val: dict[str, float],
    test: dict[str, float],
    report: TrainReport,
    params: int,
    macs: int,
    final: bool,
    extra: dict[str, Any] | None = None,
) -> Metrics:
    score = "accuracy" if task == "classification" else "r2"
    objective = test.get(score) if final else val.get(score)
    if objective is None:  # nothing held out was measured: fall back to the training fit
        objective = report.train_accuracy if task == "classification" else -(report.train_loss or 0.0)
    return Metrics(
        objective=float(objective if objective is not None else float("nan")),
        val_accuracy=val.get("accuracy"),
        val_loss=val.get("loss"),
        val_r2=val.get("r2"),
        test_accuracy=test.get("accuracy"),
        test_loss=test.get("loss"),
        test_r2=test.get("r2"),
        train_loss=report.train_loss,
        train_accuracy=report.train_accuracy,
        params=params,
        macs=macs,
        epochs=len(report.history),
        history=tuple(report.history),
        extra=extra or {},
    )


__all__ = ["evaluate_job"]

"""The worker function every executor runs: genome text in, metrics and a checkpoint out.

genome text → parse → check it fits the data → lower (+ inherited weights) → train → measure
→ write the trained weights atomically. Whatever goes wrong inside one candidate — a genome
that does not parse, a shape that does not fit, a NaN loss, an exception in torch — becomes a
``failed`` result with the reason in words, so a search goes on past it.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
from genomorph.grammar import parse
from genomorph.ir import GenomorphError
from genomorph.lower import extract_weights, lower
from genomorph.search.core.config import Job, WorkerSpec
from genomorph.search.core.protocol import EvalResult, Metrics
from genomorph.search.runtime.checkpoint import load_checkpoint, save_checkpoint
from genomorph.search.runtime.data import cached_dataset, check_fits
from genomorph.search.runtime.trainer import (
    TrainingDiverged,
    TrainReport,
    evaluate_split,
    merge_splits,
    resolve_device,
    train,
)

EpochCallback = Callable[[int, int, dict[str, float]], None]


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


def evaluate_job(spec: WorkerSpec, job: Job, on_epoch: EpochCallback | None = None) -> EvalResult:
    """Evaluate one candidate; never raises for a candidate's own faults (only KeyboardInterrupt)."""
    if spec.threads is not None and torch.get_num_threads() != spec.threads:
        torch.set_num_threads(spec.threads)
    clock = _Clock()
    setup_s = train_s = eval_s = 0.0
    request, budget = job.request, job.request.budget
    try:
        data = cached_dataset(spec.data)
        graph = parse(request.genome, source_name=f"candidate {job.id}")
        check_fits(graph, data.info)
        device = resolve_device(spec.train.device)
        clock.device = device
        weights = arch = None
        if request.init_checkpoint:
            weights, arch, _ = load_checkpoint(Path(spec.run_dir) / request.init_checkpoint)
        torch.manual_seed(job.seed)  # fresh parameters are drawn from the global generator
        module = lower(graph, weights, arch).to(device)
        stats = graph.stats()
        config = spec.train.with_budget(budget)
        final = budget.train_on == "train+val"
        split = merge_splits(data.train, data.val) if final else data.train
        if final:  # the validation split is inside the training data: don't pretend to validate
            config = config.model_copy(update={"eval_every": 0})
        aux_weights = [float(graph.op(n).weight) for n in graph.aux_outputs()]  # type: ignore[attr-defined]
        setup_s = clock.lap()
        report = train(
            module,
            data,
            config,
            seed=job.seed,
            train_split=split,
            aux_weights=aux_weights,
            train_only=budget.train_only,
            device=device,
            on_epoch=on_epoch,
        )
        clock.lap()
        train_s, eval_s = report.train_s, report.eval_s
        last = report.history[-1] if report.history else {}
        val: dict[str, float] = {}
        if not final and len(data.val):
            # the trainer validated after the last epoch already: same weights, same numbers
            val = {k[4:]: v for k, v in last.items() if k.startswith("val_")} or evaluate_split(
                module, data, data.val, device, config.eval_batch_size
            )
        test = evaluate_split(module, data, data.test, device, config.eval_batch_size) if budget.test else {}
        eval_s += clock.lap()
        metrics = _metrics(data.info.task, val, test, report, stats.params, stats.macs, final)
        bad = [k for k, v in metrics.model_dump().items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            return _failure(job, f"non-finite metrics: {', '.join(bad)}", setup_s, train_s, eval_s)
        trained, trained_arch = extract_weights(module, graph)
        save_checkpoint(Path(spec.run_dir) / job.checkpoint, trained, trained_arch, genome=request.genome)
        setup_s += clock.lap()
        return EvalResult(
            id=job.id,
            request=request,
            status="finished",
            metrics=metrics,
            checkpoint=job.checkpoint,
            setup_s=setup_s,
            train_s=train_s,
            eval_s=eval_s,
        )
    except TrainingDiverged as err:
        return _failure(job, str(err), setup_s, clock.lap() + train_s, eval_s)
    except GenomorphError as err:
        return _failure(job, str(err), setup_s + clock.lap(), train_s, eval_s)
    except Exception as err:  # any fault of this candidate (CUDA OOM, a lowering bug, ...) fails it alone
        return _failure(job, _describe(err), setup_s + clock.lap(), train_s, eval_s)


def _metrics(
    task: str,
    val: dict[str, float],
    test: dict[str, float],
    report: TrainReport,
    params: int,
    macs: int,
    final: bool,
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
    )


__all__ = ["evaluate_job"]

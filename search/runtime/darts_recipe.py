"""The ``darts`` and ``hyperdarts`` recipes: one supernet search as one long candidate.

Per epoch (paper 003 Algorithm 1 / 2, the official ``train_search.py`` loop): the training split
is cut once, by the candidate's seed, into the weights' part and α's validation part
(``train_portion``, half by default); both are shuffled by a generator seeded per epoch; every
step first updates α on a validation batch (`ArchStep`, first or second order), then the weights
or the hypernetworks on a training batch (`WeightStep`). After each epoch the supernet is
validated on the run's validation split, α is recorded, and the whole training state is written
atomically beside the candidate's checkpoint, so a killed worker's candidate continues from the
last finished epoch and ends with the same numbers.

The result's checkpoint holds the supernet's weights (hyperDARTS: generated at the final λ) and
α; ``artifacts["alphas"]`` is a JSON file of α per epoch; ``Metrics.extra`` has
``best_val_accuracy``, ``weight_steps``, ``arch_steps``, ``peak_rss_mb`` and, for hyperDARTS,
``hypernet_params``.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch
from genomorph.grammar import parse
from genomorph.ir import ConfigError
from genomorph.lower import extract_weights, lower
from genomorph.search.core.config import Job, WorkerSpec
from genomorph.search.core.files import atomic_write, write_text
from genomorph.search.core.protocol import EvalResult, Metrics
from genomorph.search.runtime.checkpoint import save_checkpoint
from genomorph.search.runtime.darts_steps import ArchStep, WeightStep, classification_loss, cosine_lr
from genomorph.search.runtime.data import cached_dataset, check_fits
from genomorph.search.runtime.hypernet import HyperSupernet
from genomorph.search.runtime.trainer import TrainingDiverged, evaluate_split, resolve_device
from genomorph.search.strategies._darts_options import DartsRecipeOptions
from torch import Tensor, nn

log = logging.getLogger(__name__)
STATE_FORMAT = "genomorph-darts-state/1"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _state_path(spec: WorkerSpec, job: Job) -> Path:
    return Path(spec.run_dir) / f"{job.checkpoint}.state"


def _alphas(module: Any) -> dict[str, list]:
    return {g: t.detach().cpu().tolist() for g, t in module.named_arch_parameters()}


class _Search:
    """The pieces of one supernet search, built the same way for a fresh start and a resume."""

    def __init__(self, spec: WorkerSpec, job: Job, opts: DartsRecipeOptions) -> None:
        self.spec, self.job, self.opts = spec, job, opts
        self.data = cached_dataset(spec.data)
        if self.data.info.task != "classification":
            raise ConfigError("DARTS searches classifiers", hint="use a classification dataset")
        self.graph = parse(job.request.genome, source_name=f"candidate {job.id}")
        check_fits(self.graph, self.data.info)
        self.device = resolve_device(spec.train.device)
        torch.manual_seed(job.seed)
        self.module = lower(self.graph).to(self.device)
        if not self.module.arch_parameters():
            raise ConfigError(
                "the search-space genome has no mixed ops, so there is nothing to search",
                hint="give a supernet genome, e.g. genomorph convert --from darts-search",
            )
        self.net: nn.Module = self.module
        if opts.method == "hyperdarts":
            self.net = HyperSupernet(self.module, self.graph, opts.hypernet).to(self.device)
            params = self.net.weight_parameters()  # type: ignore[operator]
        else:
            params = list(self.module.parameters())
        self.weights = WeightStep(params, opts.lr, opts.momentum, opts.weight_decay, opts.grad_clip)
        order = 1 if opts.method == "hyperdarts" else opts.order
        self.arch = ArchStep(
            self.module.arch_parameters(), opts.arch_lr, opts.arch_betas, opts.arch_weight_decay, order
        )
        self.loss = classification_loss(self.net)
        # the weights' and α's halves of the training split: fixed for the whole search
        n = len(self.data.train)
        cut = max(1, int(n * opts.train_portion))
        order_all = torch.randperm(n, generator=torch.Generator().manual_seed(job.seed))
        self.w_idx, self.a_idx = order_all[:cut], order_all[cut:]
        if len(self.a_idx) < 2 or len(self.w_idx) < 2:
            raise ConfigError(f"the training split ({n} samples) is too small to halve for DARTS")
        self.batch = min(opts.batch_size, len(self.w_idx), len(self.a_idx))
        self.steps = min(len(self.w_idx), len(self.a_idx)) // self.batch
        self.x, self.y = self.data.train.x.to(self.device), self.data.train.y.to(self.device)
        # progress, all of it in the state file
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.alpha_history: list[dict[str, list]] = [_alphas(self.module)]
        self.train_s = self.eval_s = 0.0

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "epoch": self.epoch,
            "net": self.net.state_dict(),
            "weights": self.weights.state_dict(),
            "arch": self.arch.state_dict(),
            "history": self.history,
            "alphas": self.alpha_history,
            "train_s": self.train_s,
            "eval_s": self.eval_s,
        }

    def load(self, path: Path) -> bool:
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as err:  # a foreign or damaged file: start over rather than fail the search
            log.warning("cannot read the search state %s (%s): starting the search again", path, err)
            return False
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            return False
        self.net.load_state_dict(state["net"])
        self.weights.load_state_dict(state["weights"])
        self.arch.load_state_dict(state["arch"])
        self.epoch = int(state["epoch"])
        self.history, self.alpha_history = list(state["history"]), list(state["alphas"])
        self.train_s, self.eval_s = float(state["train_s"]), float(state["eval_s"])
        return True

    # ------------------------------------------------------------------ one epoch
    def batch_of(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        return self.data.normalise(self.x[idx]), self.y[idx]

    def run_epoch(self) -> dict[str, float]:
        opts, epoch = self.opts, self.epoch
        self.weights.set_lr(cosine_lr(opts.lr, opts.min_lr, epoch, opts.epochs))
        gen = torch.Generator().manual_seed(self.job.seed * 1009 + epoch)
        w_order = self.w_idx[torch.randperm(len(self.w_idx), generator=gen)].to(self.device)
        a_order = self.a_idx[torch.randperm(len(self.a_idx), generator=gen)].to(self.device)
        started = time.perf_counter()
        self.net.train()
        loss_sum, arch_sum = torch.zeros(()), torch.zeros(())
        b = self.batch
        for s in range(self.steps):
            trn = self.batch_of(w_order[s * b : (s + 1) * b])
            val = self.batch_of(a_order[s * b : (s + 1) * b])
            arch_sum += self.arch.step(self.loss, val, trn, self.weights).cpu()
            loss_sum += self.weights.step(self.loss, trn).cpu()
        train_loss = float(loss_sum) / max(self.steps, 1)
        self.train_s += time.perf_counter() - started
        if train_loss != train_loss or train_loss in (float("inf"), float("-inf")):
            raise TrainingDiverged(f"training loss became {train_loss} in epoch {epoch + 1}")
        started = time.perf_counter()
        val = evaluate_split(self.net, self.data, self.data.val, self.device, self.spec.train.eval_batch_size)
        self.eval_s += time.perf_counter() - started
        record = {
            "epoch": float(epoch + 1),
            "lr": self.weights.lr,
            "train_loss": train_loss,
            "arch_loss": float(arch_sum) / max(self.steps, 1),
            **{f"val_{k}": v for k, v in val.items()},
        }
        self.epoch += 1
        self.history.append(record)
        self.alpha_history.append(_alphas(self.module))
        return record


def run_darts(spec: WorkerSpec, job: Job, on_epoch: Any = None) -> EvalResult:
    """Run (or continue) one supernet search; failures become a ``failed`` result."""
    started = time.perf_counter()
    try:
        opts = DartsRecipeOptions.model_validate(job.request.recipe_options)
        if opts.partial_channels != 1:
            raise ConfigError(
                "--partial-channels (PC-DARTS) is not implemented yet", hint="leave partial_channels at 1"
            )
        if spec.threads is not None and torch.get_num_threads() != spec.threads:
            torch.set_num_threads(spec.threads)
        search = _Search(spec, job, opts)
        path = _state_path(spec, job)
        if path.is_file() and search.load(path):
            log.info("candidate %d continues its search after epoch %d", job.id, search.epoch)
        setup_s = time.perf_counter() - started
        while search.epoch < opts.epochs:
            record = search.run_epoch()
            atomic_write(path, lambda handle: torch.save(search.state(), handle))
            if on_epoch is not None:
                on_epoch(search.epoch, opts.epochs, record)
        return _finish(search, setup_s)
    except BaseException as err:  # KeyboardInterrupt goes on up; candidate faults become results
        if isinstance(err, KeyboardInterrupt | SystemExit):
            raise
        return _failed(job, err, time.perf_counter() - started)


def _failed(job: Job, err: BaseException, spent: float) -> EvalResult:
    from genomorph.ir import GenomorphError
    from genomorph.search.runtime.evaluate import _describe

    reason = str(err) if isinstance(err, GenomorphError | TrainingDiverged) else _describe(err)
    return EvalResult(id=job.id, request=job.request, status="failed", reason=reason, setup_s=spent)


def _finish(search: _Search, setup_s: float) -> EvalResult:
    started = time.perf_counter()
    if isinstance(search.net, HyperSupernet):
        search.net.materialise()  # the checkpoint holds the weights generated at the final λ
    weights, arch = extract_weights(search.module, search.graph)
    spec, job = search.spec, search.job
    save_checkpoint(Path(spec.run_dir) / job.checkpoint, weights, arch, genome=job.request.genome)
    alphas_file = f"{Path(job.checkpoint).with_suffix('')}.alphas.json"
    write_text(Path(spec.run_dir) / alphas_file, json.dumps({"epochs": search.alpha_history}) + "\n")
    last = search.history[-1]
    stats = search.graph.stats()
    extra: dict[str, Any] = {
        "best_val_accuracy": max(h.get("val_accuracy", 0.0) for h in search.history),
        "weight_steps": search.steps * search.epoch,
        "arch_steps": search.steps * search.epoch,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "method": search.opts.method,
    }
    if isinstance(search.net, HyperSupernet):
        extra["hypernet_params"] = search.net.hypernet_size()
    metrics = Metrics(
        objective=float(last.get("val_accuracy", 0.0)),
        val_accuracy=last.get("val_accuracy"),
        val_loss=last.get("val_loss"),
        train_loss=last["train_loss"],
        params=stats.params,
        macs=stats.macs,
        epochs=search.epoch,
        history=tuple(search.history),
        extra=extra,
    )
    return EvalResult(
        id=job.id,
        request=job.request,
        status="finished",
        metrics=metrics,
        checkpoint=job.checkpoint,
        artifacts={"alphas": alphas_file},
        setup_s=setup_s + time.perf_counter() - started,
        train_s=search.train_s,
        eval_s=search.eval_s,
    )


__all__ = ["run_darts", "peak_rss_mb"]

"""The worker function: metrics and checkpoints, inherited weights, failures isolated with reasons."""

from __future__ import annotations

from pathlib import Path

import pytest
from genomorph.grammar import parse
from genomorph.lower import lower
from genomorph.search.core.config import DataConfig, Job, TrainConfig, WorkerSpec
from genomorph.search.core.protocol import Budget, EvalRequest
from genomorph.search.runtime.checkpoint import load_checkpoint
from genomorph.search.runtime.evaluate import evaluate_job
from search_helpers import SMALL, TINY, WRONG_OUTPUT


@pytest.fixture
def spec(tmp_path: Path) -> WorkerSpec:
    return WorkerSpec(run_dir=str(tmp_path), data=DataConfig(name="digits"), train=TrainConfig(), threads=1)


def _job(cid: int, genome: str, budget: Budget, seed: int = 0, init: str | None = None) -> Job:
    request = EvalRequest(genome=genome, budget=budget, init_checkpoint=init)
    return Job(id=cid, request=request, seed=seed, checkpoint=f"checkpoints/c{cid}.pt")


def test_finished_result_has_metrics_timings_and_a_checkpoint(spec: WorkerSpec) -> None:
    result = evaluate_job(spec, _job(0, SMALL, Budget(epochs=2, test=True)))
    assert result.ok, result.reason
    m = result.metrics
    assert m is not None and m.epochs == 2 and len(m.history) == 2
    assert m.objective == m.val_accuracy and 0.1 < m.val_accuracy <= 1
    assert m.test_accuracy is not None and m.test_loss is not None
    module = lower(parse(SMALL))
    assert m.params == sum(p.numel() for p in module.parameters()) and m.macs > 0
    assert result.train_s > 0 and result.eval_s > 0 and result.setup_s > 0
    weights, _, genome = load_checkpoint(Path(spec.run_dir) / result.checkpoint)
    assert genome == SMALL and weights


def test_same_seed_same_result_other_seed_other_result(spec: WorkerSpec) -> None:
    a = evaluate_job(spec, _job(0, TINY, Budget(epochs=1), seed=5))
    b = evaluate_job(spec, _job(1, TINY, Budget(epochs=1), seed=5))
    c = evaluate_job(spec, _job(2, TINY, Budget(epochs=1), seed=6))
    assert a.metrics.history == b.metrics.history
    assert a.metrics.history != c.metrics.history


def test_inherited_weights_reproduce_the_parent_exactly(spec: WorkerSpec) -> None:
    parent = evaluate_job(spec, _job(0, SMALL, Budget(epochs=2, test=True)))
    child = evaluate_job(spec, _job(1, SMALL, Budget(epochs=0, test=True), init=parent.checkpoint))
    assert child.ok, child.reason
    assert child.metrics.val_accuracy == parent.metrics.val_accuracy
    assert child.metrics.test_loss == pytest.approx(parent.metrics.test_loss, abs=1e-6)
    trained = evaluate_job(spec, _job(2, SMALL, Budget(epochs=1), init=parent.checkpoint))
    fresh = evaluate_job(spec, _job(3, SMALL, Budget(epochs=1)))
    assert trained.metrics.val_loss < fresh.metrics.val_loss  # training went on from the parent


def test_final_training_uses_train_and_val_and_reports_test(spec: WorkerSpec) -> None:
    result = evaluate_job(spec, _job(0, TINY, Budget(epochs=1, train_on="train+val", test=True)))
    m = result.metrics
    assert result.ok and m.val_accuracy is None and m.test_accuracy is not None
    assert m.objective == m.test_accuracy
    assert all("val_loss" not in record for record in m.history)


@pytest.mark.parametrize(
    ("genome", "budget", "reason"),
    [
        ("input 1x8x8\nconv(4, 3) bn frobnicate\n", Budget(epochs=1), "frobnicate"),
        (WRONG_OUTPUT, Budget(epochs=1), "10 classes"),
        (TINY, Budget(epochs=2, lr=1e12, schedule="constant"), "training loss became"),
        (TINY, Budget(epochs=1), "checkpoint"),
    ],
    ids=["syntax", "shape-mismatch", "diverged", "missing-init"],
)
def test_failures_are_results_with_reasons(
    spec: WorkerSpec, genome: str, budget: Budget, reason: str
) -> None:
    init = "checkpoints/nowhere.pt" if reason == "checkpoint" else None
    spec = spec.model_copy(update={"train": TrainConfig(grad_clip=None, momentum=0.0)})
    result = evaluate_job(spec, _job(0, genome, budget, init=init))
    assert result.status == "failed" and result.metrics is None and result.checkpoint is None
    assert reason in (result.reason or "")
    assert not (Path(spec.run_dir) / "checkpoints" / "c0.pt").exists()

"""The engine's cuts of per-candidate and per-epoch overhead change no result (issue 10's benchmark).

- genomes parsed once per process (`search.core.parsed`): equal graphs, each caller its own copy;
- checkpoints read back from memory while the file is unchanged (`checkpoint._RECENT`);
- epoch checkpoints at most every `CHECKPOINT_INTERVAL_S` (none before it), resumed exactly;
- the flattening fit through MINPACK directly: bit for bit what ``curve_fit`` gave;
- ``Budget.eval_every = 0``: one validation after training, the same final numbers.
"""

from __future__ import annotations

import logging
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from genomorph.grammar import parse
from genomorph.ir import GenomorphError
from genomorph.ir.printer import print_genome
from genomorph.search.core.config import DataConfig, Job, TrainConfig, WorkerSpec
from genomorph.search.core.files import atomic_write
from genomorph.search.core.parsed import parsed
from genomorph.search.core.protocol import Budget, EvalRequest
from genomorph.search.runtime import loop
from genomorph.search.runtime.checkpoint import (
    EpochCheckpoint,
    flush_epoch_writes,
    load_checkpoint,
    save_checkpoint,
)
from genomorph.search.runtime.evaluate import epoch_checkpoint_path, evaluate_job
from search_helpers import SMALL, TINY

log = logging.getLogger(__name__)


@pytest.fixture
def spec(tmp_path: Path) -> WorkerSpec:
    return WorkerSpec(run_dir=str(tmp_path), data=DataConfig(name="digits"), train=TrainConfig(), threads=1)


def _job(cid: int, budget: Budget, genome: str = TINY) -> Job:
    return Job(
        id=cid, request=EvalRequest(genome=genome, budget=budget), seed=3, checkpoint=f"checkpoints/c{cid}.pt"
    )


def test_parsed_gives_equal_graphs_that_callers_own() -> None:
    first = parsed(SMALL, source_name="a")
    assert print_genome(first) == print_genome(parse(SMALL)) and first.source_name == "a"
    node = first.order()[-1]
    first.remove(node)  # an edit of this copy must not reach the cache
    assert len(first) == len(parse(SMALL)) - 1 and node not in first.shapes()
    again = parsed(SMALL, source_name="b")
    assert print_genome(again) == print_genome(parse(SMALL)) and again.source_name == "b"
    with pytest.raises(GenomorphError, match="candidate 9"):
        parsed("input 2\nlinear(\n", source_name="candidate 9")


def test_checkpoints_read_back_from_memory_equal_the_file_and_see_replacements(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    log.info("seed %d", seed)
    rng = np.random.default_rng(seed)
    weights = {3: {"weight": rng.normal(size=(4, 3)).astype(np.float32), "n": np.array(7)}}
    path = tmp_path / "c.pt"
    save_checkpoint(path, weights, genome="g")
    got, _, genome = load_checkpoint(path)
    assert genome == "g" and got[3]["n"].shape == () and got[3]["weight"].dtype == np.float32
    np.testing.assert_array_equal(got[3]["weight"], weights[3]["weight"])
    got[3]["weight"][:] = 0  # the caller's copy: the next load is unaffected
    np.testing.assert_array_equal(load_checkpoint(path)[0][3]["weight"], weights[3]["weight"])
    # another writer replaces the file (a new inode): the new content is read, not the cached one
    other = {3: {"weight": np.ones((4, 3), np.float32), "n": np.array(1)}}
    payload = {
        "format": "genomorph-weights/1",
        "genome": "h",
        "weights": {3: {k: torch.as_tensor(v) for k, v in other[3].items()}},
        "arch": {},
    }
    atomic_write(path, lambda handle: torch.save(payload, handle))
    got, _, genome = load_checkpoint(path)
    assert genome == "h"
    np.testing.assert_array_equal(got[3]["weight"], other[3]["weight"])
    path.unlink()
    with pytest.raises(GenomorphError, match="does not exist"):
        load_checkpoint(path)


class _Stop(BaseException):
    """Stands in for a kill (not an Exception: nothing catches it)."""


@pytest.mark.parametrize("interval", [0.0, 1e9])
def test_epoch_checkpoints_follow_the_interval_and_resume_exactly(
    spec: WorkerSpec, monkeypatch: pytest.MonkeyPatch, interval: float
) -> None:
    monkeypatch.setattr(loop, "CHECKPOINT_INTERVAL_S", interval)
    budget = Budget(epochs=4)
    whole = evaluate_job(spec, _job(0, budget))
    saved: list[int] = []
    save = EpochCheckpoint.save

    def recording_save(self: EpochCheckpoint, state: dict) -> None:
        saved.append(int(state["epoch"]))
        save(self, state)

    monkeypatch.setattr(EpochCheckpoint, "save", recording_save)

    def stop_after_three(epoch: int, epochs: int, record: dict[str, float]) -> None:
        if epoch == 3:
            raise _Stop

    with pytest.raises(_Stop):
        evaluate_job(spec, _job(1, budget), stop_after_three)
    # every epoch's state at interval 0; at a huge interval none (the kill repeats those epochs)
    assert saved == ([1, 2, 3] if interval == 0 else [])
    flush_epoch_writes()  # the last epoch's file is written in the background
    path = Path(spec.run_dir) / epoch_checkpoint_path(_job(1, budget))
    if saved:
        assert int(torch.load(path, weights_only=True)["epoch"]) == saved[-1]
    else:
        assert not path.exists()
    resumed = evaluate_job(spec, _job(1, budget))
    assert whole.ok and resumed.ok, (whole.reason, resumed.reason)
    assert resumed.metrics == whole.metrics


def _curve_fit_exponent(losses: list[float]) -> float | None:
    """The flattening fit as it was written with ``scipy.optimize.curve_fit``."""
    from scipy.optimize import curve_fit

    y = np.asarray(losses, dtype=np.float64)
    spread = y.max() - y.min()
    y = (y - y.min()) / spread if spread > 0 else np.zeros_like(y)
    x = np.linspace(0.0, 1.0, len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            (a,), _ = curve_fit(lambda t, a: np.exp(a * t) * (1.0 - t), x, y, p0=[0.0], maxfev=2000)
        except RuntimeError:
            return None
    return float(a)


def test_the_flattening_fit_is_bit_for_bit_the_curve_fit_one() -> None:
    seed = random.randrange(2**32)
    log.info("seed %d", seed)
    rng = np.random.default_rng(seed)
    curves = []
    for k in range(2, 60):
        t = np.arange(k) / k
        curves += [
            np.exp(-rng.uniform(0, 12) * t) + rng.normal(0, rng.uniform(0, 0.2), k),
            rng.normal(size=k),
            t + rng.normal(0, 0.1, k),
            np.full(k, rng.normal()),
        ]
    assert curves
    for curve in curves:
        assert loop.flatten_exponent(list(curve)) == _curve_fit_exponent(list(curve)), f"seed {seed}"


def test_validation_once_after_training_gives_the_same_final_numbers(spec: WorkerSpec) -> None:
    every = evaluate_job(spec, _job(0, Budget(epochs=3)))
    once = evaluate_job(spec, _job(1, Budget(epochs=3, eval_every=0)))
    assert every.ok and once.ok, (every.reason, once.reason)
    assert all("val_accuracy" in r for r in every.metrics.history)
    assert not any("val_accuracy" in r for r in once.metrics.history)
    assert once.metrics.val_accuracy == every.metrics.val_accuracy
    assert once.metrics.val_loss == every.metrics.val_loss
    assert once.metrics.train_loss == every.metrics.train_loss


#: batch norm (buffers), dropout (the global generator during training) and more than one layer
DROPOUT = "input 1x8x8\nconv(4, 3, padding=1) bn relu\ngap dropout(0.3) linear(10)\n"


def test_a_reused_module_trains_exactly_as_a_freshly_lowered_one(
    spec: WorkerSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next candidate of the same genome from a checkpoint reuses the last trained module
    (noisy's shrink after its train candidate): the same metrics and weights as lowering it anew."""
    from genomorph.search.runtime import evaluate

    lowered: list[int] = []
    real_lower = evaluate.lower

    def counting_lower(*args: object, **kwargs: object) -> object:
        lowered.append(1)
        return real_lower(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(evaluate, "lower", counting_lower)
    first = evaluate_job(spec, _job(0, Budget(epochs=2), DROPOUT))
    assert first.ok, first.reason
    start = {"init_checkpoint": first.checkpoint}

    def tune(cid: int) -> Job:
        job = _job(cid, Budget(epochs=2), DROPOUT)
        return job.model_copy(update={"request": job.request.model_copy(update=start)})

    reused = evaluate_job(spec, tune(1))
    assert reused.ok, reused.reason
    assert len(lowered) == 1  # the second candidate did not lower its genome again
    evaluate._remember(None)  # a fresh worker: nothing kept
    fresh = evaluate_job(spec, tune(2))
    assert fresh.ok, fresh.reason
    assert len(lowered) == 2
    assert reused.metrics == fresh.metrics
    a, _, _ = load_checkpoint(Path(spec.run_dir) / reused.checkpoint)
    b, _, _ = load_checkpoint(Path(spec.run_dir) / fresh.checkpoint)
    assert a.keys() == b.keys() and a
    for nid in a:
        for name in a[nid]:
            np.testing.assert_array_equal(a[nid][name], b[nid][name])
    # another genome, or fresh parameters, lower as before
    assert evaluate_job(spec, _job(3, Budget(epochs=1))).ok and len(lowered) == 3


def test_a_durable_batch_puts_every_file_in_place_at_commit_or_none(tmp_path: Path) -> None:
    """A worker's weights and artifacts are fsynced together: each file appears complete at
    ``commit`` (in the order written), and an error in the block leaves the old files as they were."""
    from genomorph.search.core.files import DurableBatch

    old = tmp_path / "a.bin"
    old.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="half-way"), DurableBatch() as batch:
        batch.write(old, lambda handle: handle.write(b"new"))
        batch.write(tmp_path / "sub" / "b.bin", lambda handle: handle.write(b"b"))
        raise RuntimeError("half-way")
    assert old.read_bytes() == b"old" and not (tmp_path / "sub" / "b.bin").exists()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.bin"]  # no temporary left
    committed: list[str] = []
    with DurableBatch() as batch:
        batch.write(old, lambda handle: handle.write(b"new"), on_commit=lambda: committed.append("a"))
        save_checkpoint(tmp_path / "c.pt", {1: {"w": np.ones(3, np.float32)}}, genome="g", batch=batch)
        assert old.read_bytes() == b"old" and not (tmp_path / "c.pt").exists()  # nothing before commit
    assert old.read_bytes() == b"new" and committed == ["a"]
    weights, _, genome = load_checkpoint(tmp_path / "c.pt")
    assert genome == "g" and weights[1]["w"].tolist() == [1.0, 1.0, 1.0]

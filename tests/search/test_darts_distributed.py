"""Data-parallel DARTS / hyperDARTS for real: this test process is rank 0 of a gloo group of 2 CPU
processes (the follower is a spawned ``python -m genomorph.search.runtime.distributed``, on a port
the OS chose), trained on digits, compared with the same candidate trained by one process.

- 2 processes x B/2 equal 1 process x B (weights, batch-norm statistics, α; first and second
  order, hyperDARTS, a sequential supernet and a DARTS cell space) to 1e-5 of each tensor's
  scale, with the same argmax per mixed node, and both ranks end with bit-identical states;
- a data-parallel candidate killed after its first epoch resumes from rank 0's epoch checkpoint
  (broadcast to the follower) and ends bit for bit as the uninterrupted data-parallel run;
- a follower that died makes the candidate fail with a message naming it, instead of a hang.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from genomorph.grammar import parse
from genomorph.grammar.darts import darts_supernet
from genomorph.ir.printer import print_genome
from genomorph.search.core.config import DataConfig, Job, TrainConfig, WorkerSpec
from genomorph.search.core.protocol import Budget, EvalRequest, EvalResult
from genomorph.search.runtime import loop
from genomorph.search.runtime.checkpoint import load_checkpoint
from genomorph.search.runtime.distributed import DataParallelExecutor, World, launch
from genomorph.search.runtime.evaluate import evaluate_job

SEQ = """\
def layer(row) = mixed(conv(4, 3, bias=false) bn(affine=false), relu sep_conv(4, 3, bias=false) bn(affine=false), \
skip, zero, group=layers, row=row, labels=[conv_3x3, sep_conv_3x3, skip_connect, "none"])
input 1x8x8
conv(4, 3, bias=false) bn relu
layer(0) relu
layer(1)
gap linear(10)
"""
SEED = 20261202  # every random draw of these runs comes from it (the candidates' generators)


def _genome(space: str) -> str:
    if space == "cells":
        return print_genome(darts_supernet(2, 3, 10, input_shape=(1, 8, 8)))
    return print_genome(parse(SEQ))


def _job(space: str, recipe: str, epochs: int = 1, job_id: int = 0, **options: object) -> Job:
    request = EvalRequest(
        genome=_genome(space),
        budget=Budget(epochs=epochs, schedule="cosine"),
        recipe=recipe,
        recipe_options={"batch_size": 64, "arch_lr": 3e-3, **options},
    )
    return Job(id=job_id, request=request, seed=SEED, checkpoint=f"checkpoints/c{job_id:05d}.pt")


def _spec(run: Path) -> WorkerSpec:
    return WorkerSpec(run_dir=str(run), data=DataConfig(name="digits"), train=TrainConfig(), threads=1)


def _parallel(world: World, run: Path, job: Job, on_epoch: object = None) -> EvalResult:
    executor = DataParallelExecutor(_spec(run), world, on_epoch)  # type: ignore[arg-type]
    executor.submit(job)
    (result,) = executor.wait()
    return result


def _state(run: Path, result: EvalResult) -> dict[str, np.ndarray]:
    assert result.ok, result.reason
    weights, arch, _ = load_checkpoint(run / result.checkpoint)  # type: ignore[operator]
    flat = {f"n{nid}.{name}": a for nid, tensors in weights.items() for name, a in tensors.items()}
    flat.update({f"alpha.{group}": a for group, a in arch.items()})
    return flat


def _assert_close(one: dict[str, np.ndarray], two: dict[str, np.ndarray], rtol: float, floor: float) -> float:
    """Every tensor within ``rtol`` of its own scale, floored at ``floor``; returns the largest
    relative difference. (Some batch-norm means are 0 up to rounding, ~1e-9, where the space
    normalises twice; a bias after one step is ~1e-3.)"""
    assert one.keys() == two.keys() and one
    worst = 0.0
    for name, a in one.items():
        b = two[name].astype(np.float64)
        scale = max(float(np.abs(a).max()), floor)
        difference = float(np.abs(a.astype(np.float64) - b).max()) / scale
        assert difference <= rtol, f"{name}: relative difference {difference:.2e}"
        worst = max(worst, difference)
    return worst


CASES = [  # space, recipe, options, tolerance relative to each tensor's scale, floor of the scale
    ("seq", "darts", {"order": 1}, 1e-5, 1e-3),
    ("seq", "darts", {"order": 2}, 1e-5, 1e-3),
    ("seq", "hyperdarts", {"hypernet": "linear"}, 1e-5, 1e-3),
    # max pooling routes each gradient to the largest value of its window, and where two values
    # are equal up to rounding (the two runs' batch-norm statistics differ at 1e-7), rounding picks
    # one: a few gradient entries move, by up to 3 % of their tensor's largest. One update of 600
    # samples here, which moves the weights by up to 2e-5 (measured): checked to 1e-3 of max(0.1, scale).
    ("cells", "darts", {"order": 1, "batch_size": 600}, 1e-3, 0.1),
]


def test_two_processes_equal_one_process_on_the_same_global_batch(tmp_path: Path) -> None:
    print(f"seed {SEED}")
    with launch(2, "cpu") as world:
        for i, (space, recipe, options, rtol, floor) in enumerate(CASES):
            job = _job(space, recipe, **options)
            one = evaluate_job(_spec(tmp_path / f"one{i}"), job)
            two = _parallel(world, tmp_path / f"two{i}", job)
            assert two.ok, two.reason
            assert one.metrics is not None and two.metrics is not None
            extra = two.metrics.extra
            assert extra["nproc"] == 2 and extra["ranks_identical"] is True  # the follower's digest
            assert extra["weight_steps"] == one.metrics.extra["weight_steps"] > 0
            a, b = _state(tmp_path / f"one{i}", one), _state(tmp_path / f"two{i}", two)
            worst = _assert_close(a, b, rtol, floor)
            print(f"{space} {recipe} {options}: largest relative difference {worst:.2e}")
            for name in a:
                if name.startswith("alpha."):  # the genotype: the strongest candidate of every edge
                    np.testing.assert_array_equal(a[name].argmax(-1), b[name].argmax(-1))
            history_one, history_two = one.metrics.history[-1], two.metrics.history[-1]
            assert history_two["train_loss"] == pytest.approx(history_one["train_loss"], rel=1e-5)
            assert history_two["val_accuracy"] == pytest.approx(history_one["val_accuracy"], abs=2e-3)
        assert not world.broken


class _Kill(KeyboardInterrupt):
    """A Ctrl-C of rank 0 between two epochs."""


def _wait_for_epoch_file(path: Path, epoch: int) -> None:
    """The epoch checkpoint is written by a background thread: wait until it holds ``epoch``."""
    for _ in range(60_000):  # a bound, not a timing assertion: 10 minutes of 10 ms looks
        try:
            if int(torch.load(path, map_location="cpu", weights_only=True)["epoch"]) >= epoch:
                return
        except Exception:  # noqa: S110 - not written yet, or replaced while read
            pass
        time.sleep(0.01)
    raise AssertionError(f"{path} never reached epoch {epoch}")


def test_killed_data_parallel_search_resumes_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop, "CHECKPOINT_INTERVAL_S", 0.0)  # rank 0 writes one after every epoch
    job = _job("seq", "darts", epochs=2, order=2)

    def stop(epoch: int, total: int, record: dict[str, float]) -> None:
        raise _Kill

    with launch(2, "cpu") as world, pytest.raises(_Kill):
        _parallel(world, tmp_path / "killed", job, stop)
    epoch_file = tmp_path / "killed" / "checkpoints" / "c00000.epoch.pt"
    _wait_for_epoch_file(epoch_file, 1)
    with launch(2, "cpu") as world:
        reference = _parallel(world, tmp_path / "ref", job)
        epochs: list[int] = []
        resumed = _parallel(world, tmp_path / "killed", job, lambda e, t, r: epochs.append(e))
    assert epochs == [2]  # it continued after the first epoch, on both ranks
    assert resumed.metrics is not None and resumed.metrics.extra["ranks_identical"] is True
    a, b = _state(tmp_path / "ref", reference), _state(tmp_path / "killed", resumed)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert not epoch_file.exists()


def test_a_follower_that_died_fails_the_candidate_with_its_name(tmp_path: Path) -> None:
    with launch(2, "cpu") as world:
        world.children[0].kill()
        world.children[0].wait()
        result = _parallel(world, tmp_path / "run", _job("seq", "darts"))
        assert not result.ok
        assert "rank 1" in (result.reason or "") and "exited with status" in (result.reason or "")
        assert world.broken
        # the run goes on without it: the next DARTS candidate trains on rank 0 alone
        alone = _parallel(world, tmp_path / "run", _job("seq", "darts", job_id=1))
        assert alone.ok, alone.reason


RANK0 = """
import sys, time
from genomorph.search.runtime.distributed import launch
with launch(2, "cpu") as world:
    print(world.children[0].pid, flush=True)
    time.sleep(600)
"""


@pytest.mark.slow  # two interpreters start; the mechanism is the pool workers' (PR_SET_PDEATHSIG)
def test_followers_end_with_a_killed_rank_0(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    rank0 = subprocess.Popen([sys.executable, "-c", RANK0], stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert rank0.stdout is not None
        follower = int(rank0.stdout.readline())  # printed once the group stands
        os.kill(rank0.pid, signal.SIGKILL)
        rank0.wait()
        for _ in range(6000):  # a bound, not a timing assertion: 10 minutes of 0.1 s looks
            try:
                os.kill(follower, 0)
            except ProcessLookupError:
                return
            if (
                Path(f"/proc/{follower}/stat").is_file()
                and " Z " in Path(f"/proc/{follower}/stat").read_text()
            ):
                return  # ended, waiting for init to collect it
            time.sleep(0.1)
        raise AssertionError(f"follower {follower} outlived its rank 0")
    finally:
        if rank0.poll() is None:
            rank0.kill()

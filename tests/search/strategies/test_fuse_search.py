"""A DARTS search on digits steps through the fused supernet (the default) and ends where the
unfused search ends: the same weights, α and validation loss, up to float rounding.

α's learning rate is tiny here on purpose: Adam's first steps move every α by about ±lr whatever
the gradient's size, so gradients that are zero but for rounding would turn rounding into
differences of 2 lr per step. `tests/lower/test_fuse.py` checks the gradients themselves."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from genomorph.grammar.darts import darts_supernet
from genomorph.ir.printer import print_genome
from genomorph.search.core.config import DataConfig, Job, TrainConfig, WorkerSpec
from genomorph.search.core.protocol import Budget, EvalRequest
from genomorph.search.runtime.checkpoint import load_checkpoint
from genomorph.search.runtime.evaluate import evaluate_job
from genomorph.search.strategies._darts_space import share_pure_ops

SEED = 20261203
ARCH_LR = 1e-6


def _search(
    run: Path, order: int, **options: object
) -> tuple[dict, dict[str, np.ndarray], dict[str, float], int]:  # type: ignore[type-arg]
    # the DARTS cell space at its smallest (C=2, 3 cells: a normal and two reduction cells)
    space = share_pure_ops(darts_supernet(2, 3, 10, input_shape=(1, 8, 8)))[0]
    request = EvalRequest(
        genome=print_genome(space),
        budget=Budget(epochs=1, schedule="cosine"),
        recipe="darts",
        recipe_options={"order": order, "batch_size": 64, "arch_lr": ARCH_LR, **options},
    )
    spec = WorkerSpec(run_dir=str(run), data=DataConfig(name="digits"), train=TrainConfig(), threads=1)
    result = evaluate_job(spec, Job(id=0, request=request, seed=SEED, checkpoint="checkpoints/c00000.pt"))
    assert result.ok, result.reason
    assert result.metrics is not None and result.checkpoint is not None
    assert result.metrics.extra["arch_steps"] == result.metrics.extra["weight_steps"] > 0
    weights, arch, _ = load_checkpoint(run / result.checkpoint)
    return weights, arch, result.metrics.history[-1], int(result.metrics.extra["arch_steps"])


@pytest.mark.parametrize("order", [2])  # the second order runs every step and pass of the first
def test_fused_search_ends_where_the_unfused_one_does(tmp_path: Path, order: int, caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.INFO, logger="genomorph.search.runtime.darts_fusion"):
        fused_w, fused_arch, fused_last, steps = _search(tmp_path / "fused", order)
    assert any("fused supernet" in r.getMessage() for r in caplog.records)  # the default path fuses
    plain_w, plain_arch, plain_last, _ = _search(tmp_path / "plain", order, fuse=False, channels_last=False)
    assert sorted(fused_arch) == sorted(plain_arch) == ["normal", "reduce"]
    for group, values in plain_arch.items():
        np.testing.assert_allclose(fused_arch[group], values, rtol=0, atol=2 * steps * ARCH_LR)
    assert sorted(fused_w) == sorted(plain_w) and len(plain_w) > 10
    # rounding grows over eight second-order steps: on some CPUs the plain layout against
    # channels_last alone (no fusion, only the memory order changes) already differs by up to
    # 2e-3 in a weight whose entries reach 0.3, so each tensor is compared at 1 % of its own
    # largest entry; a fusion that computed anything else moves weights by the size of the
    # updates themselves (a tenth of that largest entry and more) and the validation loss with them
    for node, tensors in plain_w.items():
        for name, value in tensors.items():
            scale = float(np.abs(value).max()) if value.size else 0.0
            np.testing.assert_allclose(
                fused_w[node][name], value, rtol=1e-3, atol=1e-2 * scale + 1e-6, err_msg=f"{node}.{name}"
            )
    assert fused_last["val_loss"] == pytest.approx(plain_last["val_loss"], rel=1e-3)

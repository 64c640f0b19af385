"""DARTS and hyperDARTS for real: tiny searches on digits through the CLI, the driver, the
recipe's steps in the engine's loop, the store and the report; and a search killed between
epochs that resumes from its epoch checkpoint and ends bit for bit as the uninterrupted one."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from genomorph.cli.main import main
from genomorph.grammar import parse
from genomorph.grammar.darts import darts_supernet, parse_genotype
from genomorph.ir.printer import print_genome
from genomorph.search.core.config import DataConfig, Job, TrainConfig, WorkerSpec
from genomorph.search.core.protocol import Budget, EvalRequest
from genomorph.search.runtime import loop
from genomorph.search.runtime.checkpoint import load_checkpoint
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


def _search(out: Path, *args: str) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(main, ["search", "--dataset", "digits", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text())


def _check_outputs(out: Path, summary: dict) -> None:  # type: ignore[type-arg]
    for name in ("summary.json", "best.genome", "alphas.json", "alphas_heatmap.png", "alphas_epochs.png"):
        assert (out / name).is_file(), name
    found = parse((out / "best.genome").read_text())
    assert "mixed" not in found.histogram()
    for key in ("weight_steps", "arch_steps", "peak_rss_mb", "search_val_accuracy"):
        assert summary[key] is not None, key
    assert summary["weight_steps"] == summary["arch_steps"] > 0
    alphas = json.loads((out / "alphas.json").read_text())["epochs"]
    assert len(alphas) == 3  # the initial α and one entry per epoch (2 epochs)
    assert alphas[0] != alphas[-1]


def test_second_order_darts_on_a_sequential_supernet(tmp_path: Path) -> None:
    space = tmp_path / "space.genome"
    space.write_text(SEQ)
    out = tmp_path / "run"
    summary = _search(
        out, "--strategy", "darts", str(space), "--set", "order=2", "--set", "epochs=2",
        "--set", "final_epochs=1",
    )  # fmt: skip
    _check_outputs(out, summary)
    assert summary["genotype"].startswith("Genotype(mixed=[")
    assert summary["method"] == "DARTS (second order)"
    assert summary["candidates_finished"] == 2  # the supernet search, then the found network


def test_hyperdarts_linear_on_a_sequential_supernet(tmp_path: Path) -> None:
    space = tmp_path / "space.genome"
    space.write_text(SEQ)
    out = tmp_path / "run"
    summary = _search(
        out, "--strategy", "hyperdarts", str(space), "--set", "epochs=2", "--set", "final_epochs=1",
    )  # fmt: skip
    _check_outputs(out, summary)
    assert summary["hypernet_params"] > 0 and summary["method"] == "hyperDARTS-1 (linear)"


@pytest.mark.slow
def test_hyperdarts_mlp_on_darts_cells(tmp_path: Path) -> None:
    space = tmp_path / "cells.genome"
    space.write_text(print_genome(darts_supernet(2, 3, 10, input_shape=(1, 8, 8))))
    out = tmp_path / "run"
    summary = _search(
        out, "--strategy", "hyperdarts", "--space", str(space), "--set", "hypernet=mlp",
        "--set", "epochs=2", "--set", "eval_channels=4", "--set", "eval_cells=3", "--set", "final_epochs=1",
    )  # fmt: skip
    _check_outputs(out, summary)
    genotype = parse_genotype(summary["genotype"])  # the official text, parsed back
    assert len(genotype.normal) == len(genotype.reduce) == 8
    assert all(op != "none" for op, _ in genotype.normal + genotype.reduce)
    assert summary["hypernet_params"] > 0 and summary["method"].startswith("hyperDARTS-2")


def _job(seed: int, epochs: int) -> Job:
    request = EvalRequest(
        genome=print_genome(parse(SEQ)),
        budget=Budget(epochs=epochs, schedule="cosine"),
        recipe="darts",
        recipe_options={"order": 2, "batch_size": 64},
    )
    return Job(id=0, request=request, seed=seed, checkpoint="checkpoints/c00000.pt")


def _spec(run: Path) -> WorkerSpec:
    return WorkerSpec(run_dir=str(run), data=DataConfig(name="digits"), train=TrainConfig(), threads=1)


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


class _Kill(KeyboardInterrupt):
    """What a Ctrl-C between two epochs looks like to the worker."""


@pytest.mark.parametrize("kill_after", [1])
def test_killed_search_resumes_from_its_epoch_checkpoint_identically(
    tmp_path: Path, kill_after: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop, "CHECKPOINT_INTERVAL_S", 0.0)  # a checkpoint after every epoch, however short
    seed, epochs = 20261201 + kill_after, 3
    reference = evaluate_job(_spec(tmp_path / "ref"), _job(seed, epochs))
    assert reference.ok, reference.reason

    def stop(epoch: int, total: int, record: dict[str, float]) -> None:
        if epoch == kill_after:
            raise _Kill

    run = tmp_path / "killed"
    with pytest.raises(_Kill):
        evaluate_job(_spec(run), _job(seed, epochs), on_epoch=stop)
    _wait_for_epoch_file(run / "checkpoints" / "c00000.epoch.pt", kill_after)
    resumed_epochs: list[int] = []
    result = evaluate_job(_spec(run), _job(seed, epochs), on_epoch=lambda e, t, r: resumed_epochs.append(e))
    assert result.ok, result.reason
    assert resumed_epochs == list(range(kill_after + 1, epochs + 1))  # it did not start over
    assert result.metrics is not None and reference.metrics is not None
    assert result.metrics.history == reference.metrics.history
    assert result.metrics.extra["weight_steps"] == reference.metrics.extra["weight_steps"]
    _, arch_a, _ = load_checkpoint(tmp_path / "ref" / reference.checkpoint)  # type: ignore[operator]
    _, arch_b, _ = load_checkpoint(run / result.checkpoint)  # type: ignore[operator]
    np.testing.assert_array_equal(arch_a["layers"], arch_b["layers"])
    alphas_a = json.loads((tmp_path / "ref" / reference.artifacts["alphas"]).read_text())
    alphas_b = json.loads((run / result.artifacts["alphas"]).read_text())
    assert alphas_a == alphas_b and len(alphas_a["epochs"]) == epochs + 1

"""The trainer: schedules, training that learns, determinism, divergence, freezing, aux losses, augmentation."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from genomorph.grammar import parse
from genomorph.lower import lower
from genomorph.search.core.config import DataConfig, TrainConfig
from genomorph.search.core.protocol import Budget
from genomorph.search.runtime.data import Split, cached_dataset
from genomorph.search.runtime.trainer import TrainingDiverged, _cutout, evaluate_split, lr_at, train

SMALL = (
    "input 1x8x8\nconv(8, 3, padding=1) bn relu\nmaxpool(2)\nconv(8, 3, padding=1) bn relu\ngap linear(10)\n"
)
AUX = (
    "input 1x8x8\nx = conv(4, 3, padding=1) bn relu\n"
    "x gap linear(10) aux(0.5)\n"
    "x conv(4, 3, padding=1) relu gap linear(10)\n"
)
MLP = "input 2\nlinear(32) tanh linear(32) tanh linear(1)\n"


def _module(text: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return lower(parse(text))


@pytest.fixture(scope="module")
def digits():
    return cached_dataset(DataConfig(name="digits"))


def test_cosine_anneals_from_lr_to_min_over_the_run() -> None:
    c = TrainConfig(lr=0.1, epochs=10, schedule="cosine")
    assert lr_at(c, 0) == pytest.approx(0.1)
    assert lr_at(c, 5) == pytest.approx(0.05)
    assert lr_at(c, 10) == pytest.approx(0.0, abs=1e-12)
    assert lr_at(c.model_copy(update={"min_lr": 0.01}), 10) == pytest.approx(0.01)


def test_sgdr_restarts_with_growing_periods() -> None:
    c = TrainConfig(lr=0.1, epochs=14, schedule="sgdr", restart_period=2, restart_mult=2)
    # cycles: [0, 2), [2, 6), [6, 14)
    assert [lr_at(c, e) for e in (0, 1, 2, 4, 6, 10)] == pytest.approx([0.1, 0.05, 0.1, 0.05, 0.1, 0.05])
    assert lr_at(c, 1.999) < 1e-5 and lr_at(c, 5.999) < 1e-5


def test_budget_overrides_only_what_it_sets() -> None:
    base = TrainConfig(lr=0.1, epochs=10, schedule="cosine", restart_period=3)
    merged = base.with_budget(Budget(epochs=4, schedule="sgdr"))
    assert (merged.epochs, merged.lr, merged.schedule, merged.restart_period) == (4, 0.1, "sgdr", 3)


def test_training_learns_and_is_deterministic(digits) -> None:
    config = TrainConfig(epochs=3, lr=0.05)
    runs = []
    for _ in range(2):
        module = _module(SMALL, seed=3)
        report = train(module, digits, config, seed=7)
        runs.append(report.history)
    assert runs[0] == runs[1]
    first, last = runs[0][0], runs[0][-1]
    assert last["train_loss"] < first["train_loss"]
    assert last["val_accuracy"] > 0.5  # chance is 0.1
    assert report.train_s > 0 and report.eval_s > 0
    other = train(_module(SMALL, seed=3), digits, config, seed=8).history
    assert other != runs[0]  # the seed drives the batch order


def test_nan_loss_raises_training_diverged(digits) -> None:
    x = digits.train.x.clone()
    x[:] = float("nan")
    broken = dataclasses.replace(digits, train=Split(x, digits.train.y))
    with pytest.raises(TrainingDiverged, match="nan"):
        train(_module(SMALL), broken, TrainConfig(epochs=1), seed=0)


def test_train_only_freezes_every_other_node(digits) -> None:
    graph = parse(SMALL)
    torch.manual_seed(0)
    module = lower(graph)
    linear = [n for n in graph.order() if graph.kind(n) == "linear"][0]
    before = {k: v.clone() for k, v in module.state_dict().items()}
    train(module, digits, TrainConfig(epochs=1), seed=0, train_only=[linear])
    after = module.state_dict()
    changed = {k for k in before if k.endswith(("weight", "bias")) and not torch.equal(before[k], after[k])}
    assert changed == {f"n{linear}.weight", f"n{linear}.bias"}


def test_aux_loss_trains_the_aux_head_only_when_weighted(digits) -> None:
    graph = parse(AUX)
    aux_input = graph.inputs(graph.aux_outputs()[0])[0]  # the aux head's linear
    config = TrainConfig(epochs=1, weight_decay=0.0)
    deltas = []
    for weight in (0.0, 0.5):
        torch.manual_seed(0)
        module = lower(graph)
        before = module.state_dict()[f"n{aux_input}.weight"].clone()
        train(module, digits, config, seed=0, aux_weights=[weight])
        deltas.append(float((module.state_dict()[f"n{aux_input}.weight"] - before).abs().max()))
    assert deltas[0] == 0.0 and deltas[1] > 0.0


def test_cutout_zeroes_one_square_per_image() -> None:
    x = torch.ones(64, 3, 12, 12)
    out = _cutout(x, 4, torch.Generator().manual_seed(0))
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert int(zeros.max()) == 16 and int(zeros.min()) >= 4  # clipped at the border, never empty
    assert torch.equal(out[:, 0] == 0, out[:, 2] == 0)  # the same square in every channel


def test_mixup_and_cutout_change_training(digits) -> None:
    plain = train(_module(SMALL), digits, TrainConfig(epochs=1), seed=0)
    mixed = train(_module(SMALL), digits, TrainConfig(epochs=1, mixup_alpha=0.4, cutout=3), seed=0)
    assert math.isfinite(mixed.history[0]["train_loss"])
    assert mixed.history[0]["train_loss"] != plain.history[0]["train_loss"]
    assert mixed.train_accuracy is None and plain.train_accuracy is not None


def test_regression_reports_r2() -> None:
    data = cached_dataset(DataConfig(name="regression2d"))
    module = _module(MLP)
    report = train(module, data, TrainConfig(epochs=15, optimizer="adam", lr=0.01, weight_decay=0.0), seed=0)
    assert report.history[-1]["val_r2"] > 0.8
    test = evaluate_split(module, data, data.test, torch.device("cpu"))
    assert set(test) == {"loss", "r2"} and test["r2"] > 0.8


@pytest.mark.parametrize(
    ("momentum", "nesterov", "weight_decay"), [(0.9, True, 5e-4), (0.9, False, 0.0), (0.0, False, 1e-3)]
)
def test_our_sgd_matches_torch_sgd(momentum: float, nesterov: bool, weight_decay: float) -> None:
    from genomorph.search.runtime.trainer import NesterovSGD

    torch.manual_seed(0)
    ours, theirs = _module(SMALL, seed=1), _module(SMALL, seed=1)
    opt_a = NesterovSGD(list(ours.parameters()), 0.1, momentum, nesterov, weight_decay)
    opt_b = torch.optim.SGD(
        theirs.parameters(), lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay
    )
    for step in range(5):
        x = torch.randn(16, 1, 8, 8)
        for module, opt in ((ours, opt_a), (theirs, opt_b)):
            opt.zero_grad()
            module(x).square().mean().backward()
            for group in opt.param_groups:
                group["lr"] = 0.1 / (step + 1)
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)

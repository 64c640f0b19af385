"""The training loop and its steps: schedule windows, the flattening stop, recipes, seeded draws,
and what a worker does for repair and collect requests."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from genomorph.grammar import parse
from genomorph.lower import extract_weights, lower
from genomorph.search.core.config import DataConfig, Job, TrainConfig, WorkerSpec
from genomorph.search.core.importance import read_importance
from genomorph.search.core.protocol import Budget, EvalRequest, FlattenStop, RepairRequest
from genomorph.search.runtime import loop
from genomorph.search.runtime.checkpoint import load_checkpoint, save_checkpoint
from genomorph.search.runtime.data import cached_dataset
from genomorph.search.runtime.evaluate import evaluate_job
from genomorph.search.runtime.loop import flatten_exponent, run_epochs
from genomorph.search.runtime.recipes import Recipe, register
from genomorph.search.runtime.steps import Step, StepState, TrainContext
from genomorph.search.runtime.trainer import lr_at, train
from genomorph.search.runtime.weight_step import WeightStep

SMALL = (
    "input 1x8x8\nconv(8, 3, padding=1) bn relu\nmaxpool(2)\nconv(8, 3, padding=1) bn relu\ngap linear(10)\n"
)
MLP = "input 1x8x8\nflatten linear(32) relu linear(10)\n"


@pytest.fixture
def spec(tmp_path: Path) -> WorkerSpec:
    return WorkerSpec(run_dir=str(tmp_path), data=DataConfig(name="digits"), train=TrainConfig(), threads=1)


def _job(cid: int, request: EvalRequest, seed: int = 0) -> Job:
    return Job(id=cid, request=request, seed=seed, checkpoint=f"checkpoints/c{cid:05d}.pt")


def test_a_schedule_window_continues_one_cosine_over_two_candidates(spec: WorkerSpec) -> None:
    first = evaluate_job(spec, _job(0, EvalRequest(genome=SMALL, budget=Budget(epochs=2, schedule_epochs=4))))
    rest = Budget(epochs=2, schedule_offset=2, schedule_epochs=4)
    second = evaluate_job(
        spec, _job(1, EvalRequest(genome=SMALL, budget=rest, init_checkpoint=first.checkpoint))
    )
    assert first.ok and second.ok, (first.reason, second.reason)
    steps = math.ceil(1151 / 64)  # digits' training split, batch 64, last batch kept
    whole = TrainConfig(epochs=4)
    lrs = [r["lr"] for r in first.metrics.history + second.metrics.history]
    expected = [lr_at(whole, e + (steps - 1) / steps) for e in range(4)]
    assert lrs == pytest.approx(expected, rel=1e-12)
    assert lrs[1] > 0.01  # the first candidate stopped halfway down the cosine, not at its end


def test_flatten_exponent_tells_a_flattened_curve_from_a_falling_one() -> None:
    flattened = [2.0, 0.5, 0.2, 0.15, 0.14, 0.14, 0.13]
    falling = [2.0, 1.8, 1.6, 1.4, 1.2, 1.0, 0.8]
    assert flatten_exponent(flattened) < -5 < flatten_exponent(falling)
    assert flatten_exponent([1.0]) is None


def test_training_stops_once_the_loss_curve_flattens(spec: WorkerSpec) -> None:
    budget = Budget(epochs=40, lr=0.1, stop=FlattenStop(threshold=-5.0, min_epochs=4))
    result = evaluate_job(spec, _job(0, EvalRequest(genome=SMALL, budget=budget)))
    assert result.ok, result.reason
    extra = result.metrics.extra
    assert extra["stopped_early"] is True and extra["flatten_a"] < -5.0
    assert 4 <= result.metrics.epochs < 40
    assert "val_accuracy" in result.metrics.history[-1]  # validated at the epoch it stopped


def test_mixup_and_cutout_leave_torch_global_generator_alone() -> None:
    data = cached_dataset(DataConfig(name="digits"))
    torch.manual_seed(0)
    module = lower(parse(SMALL))
    before = torch.get_rng_state()
    train(module, data, TrainConfig(epochs=1, mixup_alpha=0.4, cutout=3), seed=1)
    assert torch.equal(before, torch.get_rng_state())


class _Counter(Step):
    """Counts its updates; owns one tensor it 'trains' (to check interleaving and state)."""

    name = "count"

    def __init__(self, ctx: TrainContext, per_epoch: int, log: list[str]) -> None:
        self.value = torch.zeros(())
        self.per_epoch, self.log = per_epoch, log

    def tensors(self) -> list[torch.Tensor]:
        return [self.value]

    def steps_per_epoch(self) -> int:
        return self.per_epoch

    def step(self, epoch: int, i: int) -> None:
        self.value += 1
        self.log.append(f"c{i}")

    def end_epoch(self, epoch: int) -> dict[str, float]:
        return {"count_total": float(self.value)}

    def state_dict(self) -> StepState:
        return {"value": self.value.clone()}

    def load_state_dict(self, state: StepState) -> None:
        self.value = state["value"].clone()


class _Logged(WeightStep):
    def __init__(self, ctx: TrainContext, log: list[str]) -> None:
        super().__init__(ctx)
        self.log = log

    def step(self, epoch: int, i: int) -> None:
        super().step(epoch, i)
        self.log.append(f"w{i}")


def test_steps_interleave_per_iteration_in_list_order() -> None:
    data = cached_dataset(DataConfig(name="digits"))
    torch.manual_seed(0)
    module = lower(parse(MLP))
    config = TrainConfig(epochs=1, batch_size=512)  # 1151 samples: 3 weight updates per epoch
    ctx = TrainContext(module, data, config, torch.device("cpu"), 0, {"train": data.train, "val": data.val})
    log: list[str] = []
    report = run_epochs(ctx, [_Counter(ctx, 2, log), _Logged(ctx, log)])
    assert log == ["c0", "w0", "c1", "w1", "w2"]
    assert report.history[0]["count_total"] == 2.0 and "train_loss" in report.history[0]


@register
class _CountingRecipe(Recipe):
    """A test recipe: a counter step before the weight step, an extra metric and an artifact."""

    name = "test-counting"

    def __init__(self, options) -> None:
        super().__init__(options)
        self.log: list[str] = []

    def steps(self, ctx: TrainContext) -> list[Step]:
        return [_Counter(ctx, 1, self.log), WeightStep(ctx)]

    def extra(self, ctx, steps, report):
        return {"updates": float(steps[0].value)}

    def artifacts(self, ctx, steps, report, files):
        return {"counts": files.write_bytes("counts", ".txt", ",".join(self.log).encode())}


def test_a_registered_recipe_trains_reports_and_writes_artifacts(spec: WorkerSpec) -> None:
    request = EvalRequest(genome=MLP, budget=Budget(epochs=3), recipe="test-counting")
    result = evaluate_job(spec, _job(0, request))
    assert result.ok, result.reason
    assert result.metrics.extra["updates"] == 3.0
    assert [r["count_total"] for r in result.metrics.history] == [1.0, 2.0, 3.0]
    assert (Path(spec.run_dir) / result.artifacts["counts"]).read_text() == "c0,c0,c0"


@pytest.mark.parametrize(
    ("recipe", "options", "message"),
    [
        ("no-such-recipe", {}, "unknown training recipe 'no-such-recipe'"),
        ("standard", {"lr": 0.1}, "invalid options for recipe 'standard': lr"),
    ],
)
def test_a_bad_recipe_or_option_fails_the_candidate_with_its_name(
    spec: WorkerSpec, recipe: str, options: dict, message: str
) -> None:
    request = EvalRequest(genome=MLP, budget=Budget(epochs=1), recipe=recipe, recipe_options=options)
    result = evaluate_job(spec, _job(0, request))
    assert not result.ok and message in (result.reason or "")


def test_repair_request_brings_a_damaged_child_back_towards_its_teacher(spec: WorkerSpec) -> None:
    run = Path(spec.run_dir)
    teacher = evaluate_job(spec, _job(0, EvalRequest(genome=SMALL, budget=Budget(epochs=2))))
    assert teacher.ok, teacher.reason
    graph = parse(SMALL)
    weights, arch, _ = load_checkpoint(run / teacher.checkpoint)
    conv = [n for n in graph.order() if graph.kind(n) == "conv"][1]
    rng = np.random.default_rng(0)
    weights[conv] = {k: rng.normal(0, 0.3, v.shape).astype(v.dtype) for k, v in weights[conv].items()}
    save_checkpoint(run / "checkpoints/damaged.pt", weights, arch, genome=SMALL)
    repair = RepairRequest(
        nodes=(conv,), teacher_genome=SMALL, teacher_checkpoint=teacher.checkpoint, epochs=3
    )
    request = EvalRequest(
        genome=SMALL, budget=Budget(epochs=0), init_checkpoint="checkpoints/damaged.pt", repair=repair
    )
    result = evaluate_job(spec, _job(1, request))
    assert result.ok, result.reason
    extra = result.metrics.extra
    assert 0 < extra["repair_distance_after"] < extra["repair_distance_before"]
    repaired, _, _ = load_checkpoint(run / result.checkpoint)
    others = [n for n in graph.order() if n != conv and weights.get(n)]
    assert others and all(
        np.array_equal(repaired[n][k], weights[n][k]) for n in others for k in weights[n] if k == "weight"
    )  # only the repaired node's weights moved
    assert not np.array_equal(repaired[conv]["weight"], weights[conv]["weight"])


def test_collect_importance_and_latency(spec: WorkerSpec) -> None:
    request = EvalRequest(genome=SMALL, budget=Budget(epochs=1), collect=("importance", "latency"))
    result = evaluate_job(spec, _job(0, request))
    assert result.ok, result.reason
    assert result.metrics.extra["latency_ms"] > 0
    stats, samples = read_importance(Path(spec.run_dir) / result.artifacts["importance"])
    graph = parse(SMALL)
    convs = [n for n in graph.order() if graph.kind(n) == "conv"]
    assert samples == 1151 and set(convs) <= set(stats)
    for nid in convs:
        a, b = stats[nid]
        assert a.shape == b.shape == (8,) and (a >= 0).all() and ((b >= 0) & (b <= 1)).all()


def test_canonical_ids_carry_a_repair_list_to_the_reparsed_genome() -> None:
    from genomorph.ir.rewrites import REWRITES
    from genomorph.search.core.protocol import canonical, canonical_nodes

    torch.manual_seed(0)
    graph = parse("input 1x8x8\nconv(8, 3, padding=1) bn relu conv(8, 3, padding=1) bn relu gap linear(10)\n")
    weights, _ = extract_weights(lower(graph), graph)
    rng = np.random.default_rng(3)
    deepen = REWRITES["deepen"]
    moves = deepen.candidates(graph, weights)
    assert moves
    grown = deepen.apply(graph, weights, moves[0], rng)  # new nodes get fresh ids in the middle
    prune = REWRITES["prune-channels"]
    cuts = prune.candidates(grown.graph, grown.weights)
    assert cuts
    results = [prune.apply(grown.graph, grown.weights, m, rng) for m in cuts]
    pruned = [r for r in results if r.repair]
    assert pruned
    moved = False
    for result in pruned:
        text, _ = canonical(result.graph, result.weights)
        reparsed = parse(text)
        ids = canonical_nodes(result.graph, result.repair)
        old_ops = sorted(result.graph.op(n).model_dump_json() for n in result.repair)
        assert sorted(reparsed.op(n).model_dump_json() for n in ids) == old_ops
        moved |= tuple(sorted(result.repair)) != ids
    assert moved, "no repair list needed re-keying: the test would not catch a dropped id map"


class _Stop(BaseException):
    """Stands in for a kill: nothing after it runs (KeyboardInterrupt-like, not an Exception)."""


def test_a_repaired_candidate_interrupted_in_training_resumes_with_its_repair_distances(
    spec: WorkerSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop, "CHECKPOINT_INTERVAL_S", 0.0)  # a checkpoint after every epoch, however short
    run = Path(spec.run_dir)
    teacher = evaluate_job(spec, _job(0, EvalRequest(genome=SMALL, budget=Budget(epochs=1))))
    graph = parse(SMALL)
    weights, arch, _ = load_checkpoint(run / teacher.checkpoint)
    conv = [n for n in graph.order() if graph.kind(n) == "conv"][0]
    weights[conv] = {k: np.zeros_like(v) for k, v in weights[conv].items()}
    save_checkpoint(run / "checkpoints/damaged.pt", weights, arch, genome=SMALL)
    repair = RepairRequest(
        nodes=(conv,), teacher_genome=SMALL, teacher_checkpoint=teacher.checkpoint, epochs=2
    )
    request = EvalRequest(
        genome=SMALL, budget=Budget(epochs=3), init_checkpoint="checkpoints/damaged.pt", repair=repair
    )
    whole = evaluate_job(spec, _job(1, request))

    def stop_after_two(epoch: int, epochs: int, record: dict[str, float]) -> None:
        if epoch == 2:
            raise _Stop

    with pytest.raises(_Stop):
        evaluate_job(spec, _job(2, request), stop_after_two)
    assert (run / "checkpoints/c00002.epoch.pt").is_file()
    resumed = evaluate_job(spec, _job(2, request))
    assert whole.ok and resumed.ok, (whole.reason, resumed.reason)
    assert resumed.metrics == whole.metrics  # history, losses, accuracies and repair distances
    assert "repair_distance_after" in resumed.metrics.extra
    assert not (run / "checkpoints/c00002.epoch.pt").exists()


def test_a_results_artifacts_survive_the_run_store(spec: WorkerSpec, tmp_path: Path) -> None:
    from genomorph.search.core.store import RunStore

    request = EvalRequest(genome=SMALL, budget=Budget(epochs=1), collect=("importance",))
    result = evaluate_job(spec, _job(0, request))
    assert result.ok and "importance" in result.artifacts
    store = RunStore.create(tmp_path / "run", {"config": {}}, {})
    store.add_candidates([(0, request, 0)], {})
    store.mark_running([0])
    store.record_result(result)
    store.close()
    (stored,) = RunStore.open(tmp_path / "run").candidates()
    assert stored.result().artifacts == result.artifacts  # what a resumed strategy observes

"""Reports: the Pareto front, the choice of the answer, summary.json, best.genome and the plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from genomorph.search.core.config import DataConfig, TrainConfig
from genomorph.search.core.driver import RunConfig
from genomorph.search.core.protocol import Budget, EvalRequest, EvalResult, Metrics
from genomorph.search.core.store import RunStore
from genomorph.search.runtime.report import PLOTS, choose_best, pareto_front, write_report
from genomorph.search.runtime.run import prepare_setup, start_search
from search_helpers import CHAIN, SMALL, TINY

REQUIRED = {
    "strategy",
    "dataset",
    "best_genome",
    "best_val_accuracy",
    "test_accuracy",
    "params",
    "candidates_finished",
    "candidates_failed",
    "wall_s",
    "train_s",
}


def test_pareto_front_keeps_only_non_dominated_points() -> None:
    points = [(100, 0.5, 0), (200, 0.7, 1), (150, 0.4, 2), (300, 0.7, 3), (400, 0.9, 4), (50, 0.3, 5)]
    assert pareto_front(points) == [(50, 0.3, 5), (100, 0.5, 0), (200, 0.7, 1), (400, 0.9, 4)]
    assert pareto_front([]) == []


def _store_with(tmp_path: Path, scores: list[tuple[float, int]]) -> RunStore:
    store = RunStore.create(tmp_path, {"config": {}}, {})
    requests = [EvalRequest(genome=f"g{i}", budget=Budget()) for i in range(len(scores))]
    store.add_candidates([(i, r, i) for i, r in enumerate(requests)], {})
    for i, (score, params) in enumerate(scores):
        metrics = Metrics(objective=score, val_accuracy=score, params=params, macs=1, epochs=1)
        store.record_result(EvalResult(id=i, request=requests[i], status="finished", metrics=metrics))
    return store


def test_without_a_named_answer_the_best_validated_candidate_wins(tmp_path: Path) -> None:
    store = _store_with(tmp_path, [(0.8, 500), (0.9, 900), (0.9, 300), (0.85, 100)])
    assert choose_best(store, store.candidates()).id == 2  # best score; the smaller of the two ties
    store.set("result_candidate", 3)
    assert choose_best(store, store.candidates()).id == 3


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    data = DataConfig(name="digits")
    config = RunConfig(
        strategy=CHAIN,
        strategy_config={"genomes": [TINY, SMALL], "rounds": 1, "final_epochs": 0},
        setup=prepare_setup(data, seed=0),
        data=data,
        train=TrainConfig(threads=1),
    )
    run = tmp_path_factory.mktemp("report") / "run"
    start_search(config, run)
    return run


def test_report_writes_every_required_file(run_dir: Path) -> None:
    store = RunStore.open(run_dir)
    summary = write_report(store)
    data = json.loads((run_dir / "summary.json").read_text())
    assert data.keys() >= REQUIRED
    final = store.candidates()[-1]
    assert data["best_candidate"] == final.id and data["test_accuracy"] == final.metrics.test_accuracy
    assert data["test_measured_by"] == "candidate"
    # the answer was retrained on train+val: its validation score is that of the candidate it came from
    parent = store.candidates()[final.parent]
    assert data["best_val_accuracy"] == parent.metrics.val_accuracy
    assert data["candidates_finished"] == len(store.candidates())
    assert data["train_s"] == pytest.approx(sum(c.train_s for c in store.candidates()), abs=1e-2)
    assert (run_dir / "best.genome").read_text() == summary.best_genome == final.genome
    for plot in PLOTS:
        assert (run_dir / plot).stat().st_size > 1000


def test_missing_test_score_is_measured_from_the_checkpoint(run_dir: Path, tmp_path: Path) -> None:
    store = RunStore.open(run_dir)
    best = store.candidates()[0]
    store.set("result_candidate", best.id)  # an answer that never saw the test split
    try:
        summary = write_report(store)
        assert summary.best_candidate == best.id and summary.test_measured_by == "report"
        assert 0.0 <= summary.test_accuracy <= 1.0
        # evaluating the same weights again gives the same number: no training happened
        assert write_report(store).test_accuracy == summary.test_accuracy
    finally:
        store.set("result_candidate", store.candidates()[-1].id)

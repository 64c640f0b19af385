"""The driver: a real strategy run end to end, in id order, deterministic, resumable after Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from genomorph.search.core.config import DataConfig, TrainConfig
from genomorph.search.core.driver import RunConfig, SearchInterrupted
from genomorph.search.core.store import RunStore
from genomorph.search.runtime.report import PLOTS, write_report
from genomorph.search.runtime.run import prepare_setup, resume_search, start_search
from search_helpers import CHAIN, SMALL, TINY


def _config(**changes) -> RunConfig:
    data = DataConfig(name="digits")
    fields = {
        "strategy": CHAIN,
        "strategy_config": {"genomes": [TINY, SMALL], "rounds": 3, "include_failure": True},
        "setup": prepare_setup(data, seed=4),
        "data": data,
        "train": TrainConfig(threads=1),
    }
    fields.update(changes)
    return RunConfig(**fields)


def _outcome(store: RunStore) -> list[tuple]:
    """What must not depend on how the run was executed or interrupted."""
    return [
        (
            c.id,
            c.genome,
            c.parent,
            c.status,
            c.seed,
            c.request.budget,
            c.metrics.history if c.metrics else None,
        )
        for c in store.candidates()
    ]


class _StopAfter:
    """An observer that presses Ctrl-C once ``n`` results have arrived."""

    def __init__(self, n: int) -> None:
        self.n = n

    def started(self, store, strategy, resumed) -> None:
        pass

    def submitted(self, job) -> None:
        pass

    def finished(self, result) -> None:
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt

    def epoch(self, epoch, epochs, record) -> None:
        pass


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[tuple]:
    run = tmp_path_factory.mktemp("reference") / "run"
    store = start_search(_config(), run)
    return _outcome(store)


def test_a_run_goes_to_the_end_and_keeps_everything(tmp_path: Path) -> None:
    store = start_search(_config(), tmp_path / "run")
    candidates = store.candidates()
    # round 0: two genomes and a failing one; rounds 1-2: two children each; then the final training
    assert len(candidates) == 3 + 2 + 2 + 1
    assert [c.status for c in candidates].count("failed") == 1
    assert all(c.observed for c in candidates) and store.get("status") == "finished"
    assert store.strategy_state()["seen"] == list(range(len(candidates)))  # observed in id order
    by_weights = [c for c in candidates if c.request.meta.get("how") == "weights"]
    assert by_weights and all(c.request.init_checkpoint.endswith(".init.pt") for c in by_weights)
    assert all((tmp_path / "run" / c.request.init_checkpoint).is_file() for c in by_weights)
    final = candidates[-1]
    assert store.get("result_candidate") == final.id and final.request.budget.train_on == "train+val"

    summary = write_report(store)
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["best_candidate"] == final.id and on_disk["test_accuracy"] == final.metrics.test_accuracy
    assert on_disk["candidates_finished"] == 7 and on_disk["candidates_failed"] == 1
    assert (tmp_path / "run" / "best.genome").read_text() == final.genome == summary.best_genome
    for plot in PLOTS:
        assert (tmp_path / "run" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_run(tmp_path: Path, reference: list[tuple]) -> None:
    assert _outcome(start_search(_config(), tmp_path / "again")) == reference


def test_other_seed_other_run(tmp_path: Path, reference: list[tuple]) -> None:
    config = _config(setup=prepare_setup(DataConfig(name="digits"), seed=5))
    assert _outcome(start_search(config, tmp_path / "other")) != reference


@pytest.mark.parametrize("stop_after", [1, 4, 7])
def test_interrupted_then_resumed_equals_uninterrupted(
    tmp_path: Path, reference: list[tuple], stop_after: int
) -> None:
    run = tmp_path / "run"
    with pytest.raises(SearchInterrupted):
        start_search(_config(), run, _StopAfter(stop_after))
    store = RunStore.open(run)
    assert store.get("status") == "interrupted"
    kept = {c.id: c.metrics for c in store.candidates() if c.status == "finished"}
    store.close()
    resumed = resume_search(run)
    assert _outcome(resumed) == reference
    # nothing finished before the interruption was trained again
    for c in resumed.candidates():
        if c.id in kept:
            assert c.attempts == 1 and c.metrics == kept[c.id]


def test_time_limit_makes_the_strategy_wrap_up(tmp_path: Path) -> None:
    store = start_search(_config(time_limit=1e-6), tmp_path / "run")
    metas = [c.request.meta for c in store.candidates()]
    assert [m.get("round", m.get("role")) for m in metas] == [0, 0, 0, "final"]


def test_resume_of_a_finished_run_changes_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    before = _outcome(start_search(_config(time_limit=1e-6), run))
    assert _outcome(resume_search(run)) == before

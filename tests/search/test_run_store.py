"""The run store: schema, transactions, status flow, crash recovery, errors a user can act on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from genomorph.ir import ConfigError, DataError
from genomorph.search.core.protocol import Budget, EvalRequest, EvalResult, Metrics
from genomorph.search.core.store import DB_NAME, RunStore


def _request(genome: str = "input 2\nlinear(1)\n", parent: int | None = None) -> EvalRequest:
    return EvalRequest(genome=genome, budget=Budget(epochs=3), parent=parent, rewrites=({"op": "widen"},))


def _finished(cid: int, request: EvalRequest, score: float) -> EvalResult:
    metrics = Metrics(objective=score, val_accuracy=score, params=10, macs=20, epochs=3)
    return EvalResult(
        id=cid, request=request, status="finished", metrics=metrics, checkpoint=f"c{cid}.pt", train_s=1.5
    )


def test_create_then_open_round_trips_meta_state_and_candidates(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", {"config": {"strategy": "x"}}, {"step": 0})
    r0, r1 = _request(), _request("input 2\nlinear(2)\n", parent=0)
    store.add_candidates([(0, r0, 11), (1, r1, 12)], {"step": 1})
    store.mark_running([0, 1])
    store.record_result(_finished(0, r0, 0.75))
    store.record_result(EvalResult(id=1, request=r1, status="failed", reason="NaN loss"))
    store.mark_observed(0, {"step": 2})
    store.close()

    again = RunStore.open(tmp_path / "run")
    assert again.get("config") == {"strategy": "x"} and again.get("status") == "running"
    assert again.strategy_state() == {"step": 2}
    c0, c1 = again.candidates()
    assert (c0.status, c0.seed, c0.observed, c0.attempts, c0.request) == ("finished", 11, True, 1, r0)
    assert c0.metrics.val_accuracy == 0.75 and c0.checkpoint == "c0.pt" and c0.train_s == 1.5
    assert (c1.status, c1.reason, c1.observed, c1.parent) == ("failed", "NaN loss", False, 0)
    assert c1.result() == EvalResult(id=1, request=r1, status="failed", reason="NaN loss")
    assert again.counts() == {"finished": 1, "failed": 1}
    assert [kind for _, kind, _ in again.events()] == ["started"]


def test_proposals_stored_with_the_observation_they_follow(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, {}, {"step": 0})
    r0 = _request()
    store.add_candidates([(0, r0, 1)], {"step": 1}, running=True)
    store.record_result(_finished(0, r0, 0.5))
    store.add_candidates([(1, _request(), 2)], {"step": 2}, running=True, observed=0)
    c0, c1 = store.candidates()
    assert (c0.observed, c1.observed, c1.status) == (True, False, "running")
    assert store.strategy_state() == {"step": 2}
    with pytest.raises(sqlite3.IntegrityError):  # a failed insert leaves the observation unstored too
        store.add_candidates([(1, _request(), 3)], {"step": 3}, observed=1)
    assert not store.candidates()[1].observed and store.strategy_state() == {"step": 2}


def test_database_is_in_wal_mode(tmp_path: Path) -> None:
    RunStore.create(tmp_path, {}, {}).close()
    db = sqlite3.connect(tmp_path / DB_NAME)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_requeue_puts_interrupted_candidates_back(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, {}, {})
    store.add_candidates([(i, _request(), i) for i in range(3)], {})
    store.mark_running([0, 1, 2])
    store.record_result(_finished(1, _request(), 0.5))
    assert store.requeue_unfinished() == [0, 2]
    assert [c.status for c in store.candidates()] == ["queued", "finished", "queued"]


def test_a_result_is_stored_once(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, {}, {"s": 1})
    store.add_candidates([(0, _request(), 0)], {"s": 1})
    store.record_result(_finished(0, _request(), 0.5))
    with pytest.raises(RuntimeError, match="not waiting"):
        store.record_result(_finished(0, _request(), 0.9))
    assert store.candidates()[0].metrics.objective == 0.5  # the failed transaction changed nothing


def test_a_failed_transaction_changes_nothing(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, {}, {"s": 1})
    store.add_candidates([(0, _request(), 0)], {"s": 1})
    with pytest.raises(sqlite3.IntegrityError):  # id 0 exists: the whole batch and its state roll back
        store.add_candidates([(1, _request(), 1), (0, _request(), 0)], {"s": 2})
    assert [c.id for c in store.candidates()] == [0] and store.strategy_state() == {"s": 1}


def test_elapsed_time_carries_over_sessions(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, {}, {})
    store.set("x", 1)
    first = store.get("elapsed_s")
    store.close()
    again = RunStore.open(tmp_path)
    assert again.elapsed() >= first > 0


def test_user_errors(tmp_path: Path) -> None:
    RunStore.create(tmp_path / "run", {}, {}).close()
    with pytest.raises(ConfigError, match="already holds a run") as exists:
        RunStore.create(tmp_path / "run", {}, {})
    assert "genomorph resume" in str(exists.value)
    with pytest.raises(DataError, match="not a run directory"):
        RunStore.open(tmp_path / "elsewhere")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DataError, match="cannot be read"):
        RunStore.open(tmp_path / "junk")

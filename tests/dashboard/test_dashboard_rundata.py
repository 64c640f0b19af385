"""Reading run directories read-only and incrementally, and failing with messages."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from dashboard_helpers import add, make_run
from genomorph.cli.dashboard.rundata import RunDir, RunUnreadable, run_dirs
from genomorph.search.core.store import RunStore


def test_page_of_a_real_search_matches_the_store(digits_run: Path) -> None:
    [run] = run_dirs([digits_run])
    page = run.page()
    store = RunStore.open(digits_run)
    try:
        stored = store.candidates()
    finally:
        store.close()
    assert stored, "the search stored no candidates"
    assert [c["id"] for c in page["candidates"]] == [c.id for c in stored]
    for row, cand in zip(page["candidates"], stored, strict=True):
        assert row["status"] == cand.status
        assert row["parent"] == cand.parent
        assert row["params"] == (cand.metrics.params if cand.metrics else None)
        assert row["rewrites"] == [r["rewrite"] for r in cand.request.rewrites]
        assert row["final"] == (cand.request.budget.train_on == "train+val")
        assert row["meta"] == cand.request.meta
    summary = json.loads((digits_run / "summary.json").read_text())
    assert page["summary"] == summary
    assert page["status"]["result_candidate"] == summary["best_candidate"]
    assert page["config"]["strategy"] == "nash" and page["config"]["dataset"] == "digits"
    json.dumps(page, allow_nan=False)  # what the browser's JSON.parse accepts


def test_candidate_detail_has_lineage_with_rewrite_records(digits_run: Path) -> None:
    [run] = run_dirs([digits_run])
    store = RunStore.open(digits_run)
    try:
        by_id = {c.id: c for c in store.candidates()}
    finally:
        store.close()
    children = [c for c in by_id.values() if c.request.rewrites]
    assert children, "the search made no rewritten child"
    for child in children:
        detail = run.candidate(child.id)
        assert detail is not None
        assert detail["genome"] == child.genome
        chain, node = [], child
        while node is not None:
            chain.append(node.id)
            node = by_id.get(node.parent) if node.parent is not None else None
        assert [step["id"] for step in detail["lineage"]] == list(reversed(chain))
        assert detail["lineage"][-1]["rewrites"] == [r["text"] for r in child.request.rewrites]
        assert detail["metrics"]["params"] == child.metrics.params
    assert run.candidate(10_000) is None


def test_polls_return_only_what_changed(tmp_path: Path) -> None:
    rng = random.Random(1)
    store = make_run(tmp_path / "run", 5)
    [run] = run_dirs([tmp_path / "run"])
    first = run.page()
    assert first["full"] and len(first["candidates"]) == 5
    again = run.page(first["cursor"])
    assert not again["full"]
    assert again["candidates"] == []
    add(store, range(5, 8), rng, finish=False)  # queued: always re-sent, their status changes untimed
    queued = run.page(again["cursor"])
    assert {c["id"] for c in queued["candidates"] if c["status"] == "queued"} == {5, 6, 7}
    store.mark_running([5])
    running = run.page(queued["cursor"])
    assert {c["id"]: c["status"] for c in running["candidates"] if c["id"] >= 5} == {
        5: "running",
        6: "queued",
        7: "queued",
    }
    store.close()


def test_the_connection_is_read_only(tmp_path: Path) -> None:
    make_run(tmp_path / "run", 2).close()
    [run] = run_dirs([tmp_path / "run"])
    db = run.connect()
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            db.execute("UPDATE candidates SET status = 'failed'")
    finally:
        db.close()


def test_a_polling_reader_never_locks_the_writer(tmp_path: Path) -> None:
    """The writer's transactions with no busy timeout at all succeed while pages are read."""
    seed = random.randrange(2**31)
    print("seed", seed)
    rng = random.Random(seed)
    make_run(tmp_path / "run", 200).close()
    [run] = run_dirs([tmp_path / "run"])
    stop = threading.Event()
    reads: list[int] = []
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            cursor = None
            while not stop.is_set():
                page = run.page(cursor)
                cursor = page["cursor"]
                run.candidate(rng.randrange(200))
                reads.append(1)
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    writer = sqlite3.connect(tmp_path / "run" / "run.db", isolation_level=None, timeout=0.0)
    thread = threading.Thread(target=poll)
    thread.start()
    try:
        for i in range(300):
            # the driver's transaction shape: BEGIN IMMEDIATE, update rows and the run table, COMMIT
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("UPDATE candidates SET train_s = ? WHERE id = ?", (float(i), i % 200))
            writer.execute("INSERT OR REPLACE INTO run (key, value) VALUES ('elapsed_s', ?)", (str(i),))
            writer.execute("COMMIT")
        # the WAL gets checkpointed while the page polls: no reader keeps an old snapshot for long
        # (a reader in the middle of one read may hold back the frames after it for a moment)
        for _ in range(500):
            checkpoint = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if checkpoint[2] > 0:
                break
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
        writer.close()
    assert not errors, errors
    assert reads, "the reader never completed a page"
    assert checkpoint[2] > 0, checkpoint


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d.mkdir(), "holds no run.db"),
        (
            lambda d: (d.mkdir(), (d / "run.db").write_bytes(b"not a database, just text" * 100)),
            "cannot be read",
        ),
        (
            lambda d: (
                d.mkdir(),
                sqlite3.connect(d / "run.db").execute("CREATE TABLE x (y)").connection.commit(),
            ),
            "not a genomorph run database",
        ),
        (lambda d: d.write_text("a file"), "is not a directory"),
        (lambda d: None, "is not a directory"),
    ],
    ids=["empty-dir", "garbage-db", "no-tables", "a-file", "missing"],
)
def test_unreadable_runs_raise_a_message(tmp_path: Path, make, message: str) -> None:
    target = tmp_path / "run"
    make(target)
    [run] = run_dirs([target])
    with pytest.raises(RunUnreadable, match=message):
        run.page()


def test_a_half_written_summary_is_ignored(tmp_path: Path) -> None:
    make_run(tmp_path / "run", 3).close()
    (tmp_path / "run" / "summary.json").write_text('{"strategy": "nash", "best_')
    page = RunDir(0, (tmp_path / "run").resolve()).page()
    assert page["summary"] is None and len(page["candidates"]) == 3


def test_failed_candidates_carry_their_reason(tmp_path: Path) -> None:
    make_run(tmp_path / "run", 6, failed_every=3).close()
    [run] = run_dirs([tmp_path / "run"])
    failed = [c for c in run.page()["candidates"] if c["status"] == "failed"]
    assert [c["id"] for c in failed] == [2, 5]
    assert all("nan" in c["reason"] for c in failed)
    assert run.page()["status"]["counts"] == {"finished": 4, "failed": 2}


def test_all_details_at_once_equal_one_by_one(tmp_path: Path) -> None:
    make_run(tmp_path / "run", 30, failed_every=7).close()
    [run] = run_dirs([tmp_path / "run"])
    details = run.details()
    assert sorted(details) == list(range(30))
    for cid, detail in details.items():
        assert detail == run.candidate(cid)

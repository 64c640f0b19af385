"""User-editable files read during a run: recorded with the state they led to, never re-read on resume."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from genomorph.ir import DataError
from genomorph.search.core.config import DataConfig, TrainConfig
from genomorph.search.core.driver import RunConfig, SearchInterrupted
from genomorph.search.core.store import SCHEMA_VERSION, RunStore
from genomorph.search.runtime.run import prepare_setup, resume_search, start_search
from input_helpers import READER


def _config(path: Path, candidates: int = 6) -> RunConfig:
    data = DataConfig(name="digits")
    return RunConfig(
        strategy=READER,
        strategy_config={"path": str(path), "candidates": candidates},
        setup=prepare_setup(data, seed=1),
        data=data,
        train=TrainConfig(threads=1),
    )


class _StopAfter:
    """Presses Ctrl-C once ``n`` results have arrived."""

    def __init__(self, n: int) -> None:
        self.n = n

    def started(self, store, strategy, resumed) -> None:  # type: ignore[no-untyped-def]
        pass

    def submitted(self, job) -> None:  # type: ignore[no-untyped-def]
        pass

    def finished(self, result) -> None:  # type: ignore[no-untyped-def]
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt

    def epoch(self, epoch, epochs, record) -> None:  # type: ignore[no-untyped-def]
        pass


def test_every_read_is_recorded_with_the_proposal_made_from_it(tmp_path: Path) -> None:
    meta = tmp_path / "meta.toml"
    meta.write_text("lr = 0.1\n")
    store = start_search(_config(meta, candidates=3), tmp_path / "run")
    reads, candidates = store.reads(), store.candidates()
    assert [r.seq for r in reads] == [0, 1, 2] and len(candidates) == 3
    for cand in candidates:
        read = reads[cand.request.meta["read_seq"]]
        assert read.key == "meta" and read.path == str(meta) and read.content == "lr = 0.1\n"
        assert read.content == cand.request.meta["read"]
    assert [r.at_s for r in reads] == sorted(r.at_s for r in reads)


def test_a_missing_file_is_recorded_as_missing(tmp_path: Path) -> None:
    store = start_search(_config(tmp_path / "absent.toml", candidates=2), tmp_path / "run")
    assert [r.content for r in store.reads()] == [None, None]
    with sqlite3.connect(tmp_path / "run" / "run.db") as db:
        assert db.execute("select count(*) from inputs where content is null").fetchone() == (2,)


def test_resume_replays_what_was_read_and_reads_only_what_comes_next(tmp_path: Path) -> None:
    meta, run = tmp_path / "meta.toml", tmp_path / "run"
    meta.write_text("neurons = 4\n")
    with pytest.raises(SearchInterrupted):
        start_search(_config(meta), run, observer=_StopAfter(3))
    stored = RunStore.open(run)
    before = stored.reads()
    proposed = stored.candidates()
    stored.close()
    # what was stored was made from the reads stored with it, and nothing else was recorded
    assert [r.seq for r in before] == list(range(len(before))) and len(before) == len(proposed) >= 3
    assert {r.content for r in before} == {"neurons = 4\n"}
    meta.write_text("neurons = 8\n")  # the user edits the file while the run is stopped
    store = resume_search(run)
    reads, candidates = store.reads(), store.candidates()
    assert len(candidates) == 6 and [r.seq for r in reads] == list(range(6))
    assert reads[: len(before)] == before  # never read again, never rewritten
    assert all(r.content == "neurons = 8\n" for r in reads[len(before) :])
    # every candidate carries exactly what its read returned, the old ones the old value
    assert [c.request.meta["read"] for c in candidates] == [r.content for r in reads]
    assert store.strategy_state()["reads"] == 6 and store.get("status") == "finished"


def test_an_old_run_database_is_migrated_and_a_newer_one_refused(tmp_path: Path) -> None:
    meta = tmp_path / "meta.toml"
    meta.write_text("x = 1\n")
    start_search(_config(meta, candidates=1), tmp_path / "run").close()
    db = sqlite3.connect(tmp_path / "run" / "run.db", isolation_level=None)
    db.execute("DROP TABLE inputs")  # what schema 1 looked like
    db.execute("UPDATE run SET value = '1' WHERE key = 'schema_version'")
    db.close()
    store = RunStore.open(tmp_path / "run")
    assert store.get("schema_version") == SCHEMA_VERSION and store.reads() == []
    assert len(store.candidates()) == 1
    store.close()
    db = sqlite3.connect(tmp_path / "run" / "run.db", isolation_level=None)
    db.execute("UPDATE run SET value = '99' WHERE key = 'schema_version'")
    db.close()
    with pytest.raises(DataError, match="run schema 99"):
        RunStore.open(tmp_path / "run")

"""The run store: one SQLite database per run directory, written only by the driver.

Tables:

- ``run``: key → JSON value (the run's configuration, setup, strategy name and config, status,
  elapsed time); what ``genomorph resume`` rebuilds everything from.
- ``candidates``: one row per proposed evaluation, with its request (genome, parent, rewrite
  records, budget, seed), status ``queued → running → finished | failed``, failure reason,
  metrics, timings, checkpoint path, and ``observed`` (the strategy has consumed the result).
- ``strategy``: the strategy's last committed state (one row).
- ``inputs``: every read of a user-editable file through ``SearchContext.read_input``:
  sequence number, key, path, content (``NULL`` = the file was missing) and run time; written
  in the same transaction as the strategy state that read led to (schema 2).
- ``events``: started / resumed / interrupted / finished, for the report and for debugging.

WAL mode lets ``genomorph report`` read while a search writes. Every change is one
transaction (``BEGIN IMMEDIATE`` … ``COMMIT``), so a ``kill -9`` leaves the database as it was
after the last complete change; ``synchronous=NORMAL`` keeps that guarantee for process kills.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from genomorph.ir import ConfigError, DataError
from genomorph.search.core.protocol import JSON, EvalRequest, EvalResult, Metrics

SCHEMA_VERSION = 3
DB_NAME = "run.db"
Status = Literal["queued", "running", "finished", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (
    id INTEGER PRIMARY KEY,
    genome TEXT NOT NULL,
    parent INTEGER,
    rewrites TEXT NOT NULL,
    budget TEXT NOT NULL,
    request TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'finished', 'failed')),
    reason TEXT,
    metrics TEXT,
    objective REAL,
    val_accuracy REAL,
    test_accuracy REAL,
    params INTEGER,
    macs INTEGER,
    setup_s REAL,
    train_s REAL,
    eval_s REAL,
    checkpoint TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    observed INTEGER NOT NULL DEFAULT 0,
    created_s REAL NOT NULL,
    finished_s REAL
);
CREATE TABLE IF NOT EXISTS strategy (id INTEGER PRIMARY KEY CHECK (id = 0), state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at_s REAL NOT NULL, kind TEXT NOT NULL, detail TEXT
);
CREATE TABLE IF NOT EXISTS inputs (
    seq INTEGER PRIMARY KEY, key TEXT NOT NULL, path TEXT NOT NULL, content TEXT, at_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS artifacts (id INTEGER PRIMARY KEY, files TEXT NOT NULL);
"""
#: what turns a database of schema version N into N + 1 (run by `RunStore.open`, in one transaction)
_MIGRATIONS: dict[int, str] = {
    1: """CREATE TABLE IF NOT EXISTS inputs (
        seq INTEGER PRIMARY KEY, key TEXT NOT NULL, path TEXT NOT NULL, content TEXT, at_s REAL NOT NULL
    )""",
    # a result's files besides its checkpoint (EvalResult.artifacts: importance statistics, α, ...)
    2: "CREATE TABLE IF NOT EXISTS artifacts (id INTEGER PRIMARY KEY, files TEXT NOT NULL)",
}


@dataclass(frozen=True)
class Candidate:
    """One row of ``candidates``, decoded."""

    id: int
    request: EvalRequest
    seed: int
    status: Status
    reason: str | None
    metrics: Metrics | None
    checkpoint: str | None
    setup_s: float | None
    train_s: float | None
    eval_s: float | None
    attempts: int
    observed: bool
    created_s: float
    finished_s: float | None
    artifacts: dict[str, str] = field(default_factory=dict)

    @property
    def genome(self) -> str:
        return self.request.genome

    @property
    def parent(self) -> int | None:
        return self.request.parent

    def result(self) -> EvalResult:
        """The stored outcome as the strategy saw (or will see) it."""
        if self.status not in ("finished", "failed"):
            raise ValueError(f"candidate {self.id} has no result yet ({self.status})")
        return EvalResult(
            id=self.id,
            request=self.request,
            status=self.status,  # type: ignore[arg-type]
            reason=self.reason,
            metrics=self.metrics,
            checkpoint=self.checkpoint,
            artifacts=self.artifacts,
            setup_s=self.setup_s or 0.0,
            train_s=self.train_s or 0.0,
            eval_s=self.eval_s or 0.0,
        )


@contextmanager
def _signals_held() -> Iterator[None]:
    """Block SIGINT and SIGTERM in the main thread for the duration (delivered right after)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@dataclass(frozen=True)
class InputRead:
    """One read of a user-editable file (``SearchContext.read_input``)."""

    seq: int
    key: str
    path: str
    content: str | None
    """The file's text; ``None``: the file did not exist (or could not be read)."""
    at_s: float
    """Run time of the read."""


def _dumps(value: JSON) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class RunStore:
    """Read and write one run's database. Create with `RunStore.create`, reopen with `RunStore.open`."""

    def __init__(self, run_dir: Path, connection: sqlite3.Connection) -> None:
        self.run_dir = run_dir
        self._db = connection
        self._session_start = time.monotonic()
        self._offset = float(self.get("elapsed_s", 0.0))

    # ------------------------------------------------------------------ opening
    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    @classmethod
    def create(cls, run_dir: str | Path, meta: dict[str, JSON], state: dict[str, JSON]) -> RunStore:
        """A new run in ``run_dir`` (made if needed); ConfigError if it already holds a run.

        The database is built under a temporary name and renamed into place, so a kill during
        creation leaves either no run or a complete one, never a database without its config.
        """
        root = Path(run_dir)
        target = root / DB_NAME
        if target.exists():
            raise ConfigError(
                f"{root} already holds a run",
                hint=f"continue it with `genomorph resume {root}`, or choose another --out",
            )
        root.mkdir(parents=True, exist_ok=True)
        (root / "checkpoints").mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{DB_NAME}.", suffix=".tmp", dir=root)
        os.close(fd)
        try:
            draft = sqlite3.connect(tmp, isolation_level=None)
            draft.executescript(_SCHEMA)
            draft.execute("BEGIN")
            for key, value in {
                "schema_version": SCHEMA_VERSION,
                "status": "running",
                "elapsed_s": 0.0,
                **meta,
            }.items():
                draft.execute("INSERT INTO run (key, value) VALUES (?, ?)", (key, _dumps(value)))
            draft.execute("INSERT INTO strategy (id, state) VALUES (0, ?)", (_dumps(state),))
            draft.execute("INSERT INTO events (at_s, kind, detail) VALUES (0.0, 'started', NULL)")
            draft.execute("COMMIT")
            draft.close()
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return cls(root, cls._connect(target))

    @classmethod
    def open(cls, run_dir: str | Path) -> RunStore:
        root = Path(run_dir)
        path = root / DB_NAME
        if not path.is_file():
            raise DataError(
                f"{root} is not a run directory: {path} does not exist",
                hint="give the --out directory of a `genomorph search`",
            )
        try:
            db = cls._connect(path)
            version = db.execute("SELECT value FROM run WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as err:
            raise DataError(f"{path} cannot be read as a run database: {err}") from None
        found = json.loads(version[0]) if version is not None else None
        if (
            isinstance(found, int)
            and found < SCHEMA_VERSION
            and all(v in _MIGRATIONS for v in range(found, SCHEMA_VERSION))
        ):
            cls._migrate(db, found)
        elif found != SCHEMA_VERSION:
            db.close()
            raise DataError(
                f"{path} was written by an incompatible genomorph (run schema {found}, this one reads "
                f"{SCHEMA_VERSION})",
                hint="report or resume it with the genomorph version that wrote it",
            )
        return cls(root, db)

    @staticmethod
    def _migrate(db: sqlite3.Connection, version: int) -> None:
        """Bring an older run database up to `SCHEMA_VERSION`, all steps in one transaction."""
        db.execute("BEGIN IMMEDIATE")
        try:
            for step in range(version, SCHEMA_VERSION):
                db.execute(_MIGRATIONS[step])
            db.execute(
                "INSERT OR REPLACE INTO run (key, value) VALUES ('schema_version', ?)",
                (_dumps(SCHEMA_VERSION),),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ plumbing
    def elapsed(self) -> float:
        """Run time in seconds, summed over every session of this run (resumes included)."""
        return self._offset + time.monotonic() - self._session_start

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # Ctrl-C (or SIGTERM) between BEGIN and the try, or just after COMMIT, would leave a
        # transaction open or roll back one that is gone: hold them until the transaction ends
        with _signals_held():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._put("elapsed_s", self.elapsed())
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _put(self, key: str, value: JSON) -> None:
        self._db.execute("INSERT OR REPLACE INTO run (key, value) VALUES (?, ?)", (key, _dumps(value)))

    def _event(self, kind: str, detail: JSON) -> None:
        self._db.execute(
            "INSERT INTO events (at_s, kind, detail) VALUES (?, ?, ?)",
            (self.elapsed(), kind, None if detail is None else _dumps(detail)),
        )

    # ------------------------------------------------------------------ run metadata
    def get(self, key: str, default: JSON = None) -> JSON:
        row = self._db.execute("SELECT value FROM run WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def meta(self) -> dict[str, JSON]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM run ORDER BY key")}

    def set(self, key: str, value: JSON, event: str | None = None, detail: JSON = None) -> None:
        with self._transaction():
            self._put(key, value)
            if event:
                self._event(event, detail)

    def event(self, kind: str, detail: JSON = None) -> None:
        with self._transaction():
            self._event(kind, detail)

    def events(self) -> list[tuple[float, str, JSON]]:
        rows = self._db.execute("SELECT at_s, kind, detail FROM events ORDER BY id")
        return [(at, kind, None if d is None else json.loads(d)) for at, kind, d in rows]

    # ------------------------------------------------------------------ strategy state
    def strategy_state(self) -> dict[str, JSON]:
        row = self._db.execute("SELECT state FROM strategy WHERE id = 0").fetchone()
        return json.loads(row[0]) if row else {}

    # ------------------------------------------------------------------ user-editable inputs
    def _insert_reads(self, reads: Sequence[InputRead]) -> None:
        self._db.executemany(
            "INSERT INTO inputs (seq, key, path, content, at_s) VALUES (?, ?, ?, ?, ?)",
            [(r.seq, r.key, r.path, r.content, r.at_s) for r in reads],
        )

    def reads(self, key: str | None = None) -> list[InputRead]:
        """The recorded file reads in sequence order (of one ``key``, if given)."""
        query = "SELECT seq, key, path, content, at_s FROM inputs"
        args: tuple = ()
        if key is not None:
            query, args = query + " WHERE key = ?", (key,)
        return [InputRead(*row) for row in self._db.execute(query + " ORDER BY seq", args)]

    def read_count(self) -> int:
        """The sequence number the next read gets."""
        row = self._db.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM inputs").fetchone()
        return int(row[0])

    # ------------------------------------------------------------------ candidates
    def next_id(self) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(id) + 1, 0) FROM candidates").fetchone()
        return int(row[0])

    def add_candidates(
        self,
        jobs: Sequence[tuple[int, EvalRequest, int]],
        state: dict[str, JSON],
        reads: Sequence[InputRead] = (),
        *,
        running: bool = False,
        observed: int | None = None,
    ) -> None:
        """Insert ``(id, request, seed)`` rows as ``queued``, the strategy state that proposed them
        and the file reads that state was made from, in one transaction. ``running``: they are
        submitted right away, stored as `mark_running` would leave them (one transaction less).
        ``observed``: the candidate whose observation this state follows, marked as `mark_observed`
        would (the driver proposes right after observing: one transaction for both)."""
        status, attempts = ("running", 1) if running else ("queued", 0)
        with self._transaction() as db:
            self._insert_reads(reads)
            if observed is not None:
                db.execute("UPDATE candidates SET observed = 1 WHERE id = ?", (observed,))
            for cid, request, seed in jobs:
                db.execute(
                    "INSERT INTO candidates (id, genome, parent, rewrites, budget, request, seed, status,"
                    " attempts, created_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        cid,
                        request.genome,
                        request.parent,
                        _dumps(list(request.rewrites)),
                        request.budget.model_dump_json(),
                        request.model_dump_json(),
                        seed,
                        status,
                        attempts,
                        self.elapsed(),
                    ),
                )
            db.execute("UPDATE strategy SET state = ? WHERE id = 0", (_dumps(state),))

    def mark_running(self, ids: Sequence[int]) -> None:
        with self._transaction() as db:
            db.executemany(
                "UPDATE candidates SET status = 'running', attempts = attempts + 1 WHERE id = ?",
                [(i,) for i in ids],
            )

    def record_result(self, result: EvalResult) -> None:
        """Store a finished or failed evaluation (not yet observed by the strategy)."""
        m = result.metrics
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE candidates SET status = ?, reason = ?, metrics = ?, objective = ?, val_accuracy = ?,"
                " test_accuracy = ?, params = ?, macs = ?, setup_s = ?, train_s = ?, eval_s = ?, checkpoint = ?,"
                " finished_s = ? WHERE id = ? AND status IN ('queued', 'running')",
                (
                    result.status,
                    result.reason,
                    m.model_dump_json() if m else None,
                    m.objective if m else None,
                    m.val_accuracy if m else None,
                    m.test_accuracy if m else None,
                    m.params if m else None,
                    m.macs if m else None,
                    result.setup_s,
                    result.train_s,
                    result.eval_s,
                    result.checkpoint,
                    self.elapsed(),
                    result.id,
                ),
            )
            if cursor.rowcount != 1:
                raise RuntimeError(f"candidate {result.id} is not waiting for a result")
            if result.artifacts:
                db.execute(
                    "INSERT OR REPLACE INTO artifacts (id, files) VALUES (?, ?)",
                    (result.id, _dumps(result.artifacts)),
                )

    def mark_observed(self, cid: int, state: dict[str, JSON], reads: Sequence[InputRead] = ()) -> None:
        """The strategy consumed candidate ``cid``'s result; store its new state with that fact
        (and the file reads made since the last stored state)."""
        with self._transaction() as db:
            self._insert_reads(reads)
            db.execute("UPDATE candidates SET observed = 1 WHERE id = ?", (cid,))
            db.execute("UPDATE strategy SET state = ? WHERE id = 0", (_dumps(state),))

    def set_state(self, state: dict[str, JSON], reads: Sequence[InputRead] = ()) -> None:
        """Store the strategy state on its own (the driver does this when a run ends)."""
        with self._transaction() as db:
            self._insert_reads(reads)
            db.execute("UPDATE strategy SET state = ? WHERE id = 0", (_dumps(state),))

    def requeue_unfinished(self) -> list[int]:
        """After a crash: candidates left ``running`` go back to ``queued``; returns all queued ids."""
        with self._transaction() as db:
            db.execute("UPDATE candidates SET status = 'queued' WHERE status = 'running'")
        return [
            r[0] for r in self._db.execute("SELECT id FROM candidates WHERE status = 'queued' ORDER BY id")
        ]

    def candidates(self, status: Status | None = None) -> list[Candidate]:
        query = (
            "SELECT id, request, seed, status, reason, metrics, checkpoint, setup_s, train_s, eval_s, attempts,"
            " observed, created_s, finished_s FROM candidates"
        )
        args: tuple = ()
        if status is not None:
            query += " WHERE status = ?"
            args = (status,)
        rows = self._db.execute(query + " ORDER BY id", args).fetchall()
        files = {cid: json.loads(f) for cid, f in self._db.execute("SELECT id, files FROM artifacts")}
        return [
            Candidate(
                id=r[0],
                request=EvalRequest.model_validate_json(r[1]),
                seed=r[2],
                status=r[3],
                reason=r[4],
                metrics=Metrics.model_validate_json(r[5]) if r[5] else None,
                checkpoint=r[6],
                setup_s=r[7],
                train_s=r[8],
                eval_s=r[9],
                attempts=r[10],
                observed=bool(r[11]),
                created_s=r[12],
                finished_s=r[13],
                artifacts=files.get(r[0], {}),
            )
            for r in rows
        ]

    def kept_checkpoints(self) -> list[tuple[int, str, float | None, float | None]]:
        """``(id, checkpoint, objective, val_accuracy)`` of observed finished candidates whose
        weight file has not been pruned."""
        rows = self._db.execute(
            "SELECT id, checkpoint, objective, val_accuracy FROM candidates"
            " WHERE status = 'finished' AND observed = 1 AND checkpoint IS NOT NULL ORDER BY id"
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def pending_init_checkpoints(self) -> set[str]:
        """Weight files that candidates not yet observed start from (they must stay)."""
        rows = self._db.execute(
            "SELECT json_extract(request, '$.init_checkpoint') FROM candidates WHERE observed = 0"
        )
        return {r[0] for r in rows if r[0]}

    def forget_checkpoints(self, ids: Sequence[int]) -> None:
        """The weight files of ``ids`` are about to be deleted: the rows stop pointing at them."""
        with self._transaction() as db:
            db.executemany("UPDATE candidates SET checkpoint = NULL WHERE id = ?", [(i,) for i in ids])

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT status, COUNT(*) FROM candidates GROUP BY status")
        return {status: n for status, n in rows}


__all__ = ["DB_NAME", "SCHEMA_VERSION", "Candidate", "InputRead", "RunStore", "Status"]

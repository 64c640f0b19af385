"""Reading a run directory for the dashboard: read-only, incremental, never a traceback.

The run store is SQLite in WAL mode, written by exactly one process (the search driver). The
dashboard opens its own connection with ``mode=ro`` for each request and closes it at once:

- WAL readers never block the writer, and the writer never blocks them; a reader only holds
  a snapshot for the duration of one statement (every cursor is drained with ``fetchall``),
  so an open page never keeps the WAL from being checkpointed, however long it stays open;
- a read-only connection cannot write by construction (``attempt to write a readonly
  database``), so no bug in the dashboard can corrupt a run;
- opening per request sees a database that appears later (a run that is just starting), and
  turns any damage (a half-written directory, a file that is not SQLite) into `RunUnreadable`
  with a message the page shows.

Candidate rows are decoded with SQLite's JSON functions rather than pydantic, so 10 000 rows
cost milliseconds (see ``bench/bench_dashboard.py``). Polls are incremental: ``since`` is the
largest ``created_s``/``finished_s`` the page already has (store times only grow, resumes
included); unfinished candidates are always resent because their status changes untimed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genomorph.search.core.store import DB_NAME

_ROW_SQL = """
SELECT id, parent, status, reason, objective, val_accuracy, test_accuracy,
       json_extract(metrics, '$.train_accuracy'), json_extract(metrics, '$.val_r2'),
       json_extract(metrics, '$.test_r2'), params, macs, json_extract(metrics, '$.epochs'),
       setup_s, train_s, eval_s, created_s, finished_s, attempts,
       json_extract(budget, '$.train_on'), json_extract(budget, '$.epochs'),
       json_extract(request, '$.meta'), rewrites, genome
FROM candidates
"""
_ROW_KEYS = [
    "id",
    "parent",
    "status",
    "reason",
    "objective",
    "val_accuracy",
    "test_accuracy",
    "train_accuracy",
    "val_r2",
    "test_r2",
    "params",
    "macs",
    "epochs",
    "setup_s",
    "train_s",
    "eval_s",
    "created_s",
    "finished_s",
    "attempts",
    "train_on",
    "budget_epochs",
]
#: characters of genome text in a table row; the full text comes with the candidate's detail
GENOME_PREVIEW = 96


class RunUnreadable(Exception):
    """A run directory the dashboard cannot read (yet): the message is shown on the page."""


def _finite(value: Any) -> Any:
    # JSON has no NaN/inf; the browser's JSON.parse would reject the whole poll
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _preview(genome: str) -> str:
    """The genome on one line, shortened: enough to tell candidates apart in the table."""
    lines = [
        line.strip() for line in genome.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    text = " ; ".join(lines)
    return text if len(text) <= GENOME_PREVIEW else text[: GENOME_PREVIEW - 1] + "…"


def _rewrite_names(raw: str | None) -> list[str]:
    try:
        records = json.loads(raw or "[]")
    except json.JSONDecodeError:
        return []
    return [str(r.get("rewrite", "?")) if isinstance(r, dict) else "?" for r in records]


def _loads(raw: str | None, default: Any = None) -> Any:
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return default


@dataclass(frozen=True)
class RunDir:
    """One run directory the dashboard was given; only these are ever read."""

    index: int
    root: Path
    """Resolved absolute path."""

    @property
    def name(self) -> str:
        return self.root.name or str(self.root)

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    # ------------------------------------------------------------------ connection
    def connect(self) -> sqlite3.Connection:
        """A fresh read-only connection; RunUnreadable when there is no readable run database."""
        if not self.root.is_dir():
            raise RunUnreadable(f"{self.root} is not a directory")
        if not self.db_path.is_file():
            raise RunUnreadable(
                f"{self.root} holds no {DB_NAME} (yet): not a run directory, or a run that has not started"
            )
        uri = self.db_path.resolve().as_uri()
        try:
            db = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None, timeout=5.0)
            db.execute("SELECT 1 FROM run LIMIT 1").fetchall()
        except sqlite3.OperationalError as err:
            if "no such table" in str(err):
                raise RunUnreadable(f"{self.db_path} is not a genomorph run database ({err})") from None
            # a run on read-only media: WAL readers need to create the -shm file; with no
            # writer possible there, an immutable open is exact
            try:
                db = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None)
                db.execute("SELECT 1 FROM run LIMIT 1").fetchall()
            except sqlite3.DatabaseError:
                raise RunUnreadable(f"{self.db_path} cannot be read: {err}") from None
        except sqlite3.DatabaseError as err:
            raise RunUnreadable(f"{self.db_path} cannot be read as a run database: {err}") from None
        return db

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        db = self.connect()
        try:
            return db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as err:
            raise RunUnreadable(f"{self.db_path} cannot be read as a run database: {err}") from None
        finally:
            db.close()

    # ------------------------------------------------------------------ reading
    def read_json_file(self, name: str) -> Any:
        """A JSON file the run wrote at its top level, or None (absent, half-written, not JSON)."""
        path = self.root / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def page(self, since: float | None = None) -> dict[str, Any]:
        """The run's state for the page: meta, summary, and candidate rows changed since ``since``."""
        db = self.connect()
        try:
            # one read transaction: rows, counts and sums come from the same snapshot
            db.execute("BEGIN")
            meta = {k: _loads(v) for k, v in db.execute("SELECT key, value FROM run").fetchall()}
            where, args = "", ()
            if since is not None:
                where = " WHERE created_s >= ? OR finished_s >= ? OR status IN ('queued', 'running')"
                args = (since, since)
            rows = db.execute(_ROW_SQL + where + " ORDER BY id", args).fetchall()
            counts = dict(db.execute("SELECT status, COUNT(*) FROM candidates GROUP BY status").fetchall())
            times = db.execute(
                "SELECT COALESCE(SUM(train_s), 0), COALESCE(SUM(eval_s), 0), COALESCE(SUM(setup_s), 0)"
                " FROM candidates"
            ).fetchone()
            events = db.execute("SELECT at_s, kind, detail FROM events ORDER BY id DESC LIMIT 20").fetchall()
            db.execute("COMMIT")
        except sqlite3.DatabaseError as err:
            raise RunUnreadable(f"{self.db_path} cannot be read as a run database: {err}") from None
        finally:
            db.close()
        candidates = [self._row(r) for r in rows]
        # the next poll asks for what changed after the newest time this one saw
        stamps = [t for c in candidates for t in (c["created_s"], c["finished_s"]) if t is not None]
        cursor = max([since or 0.0, *stamps]) if stamps or since is not None else None
        return {
            "run": self.describe(),
            "config": _config(meta),
            "status": {
                "status": meta.get("status", "?"),
                "elapsed_s": _finite(meta.get("elapsed_s")),
                "last_write_s_ago": round(self._last_write_age(), 1),
                "result_candidate": meta.get("result_candidate"),
                # multi-result strategies may keep these in the run table
                "hypervolume": meta.get("hypervolume"),
                "hypervolume_reference": meta.get("hypervolume_reference"),
                "counts": counts,
                "train_s": times[0],
                "eval_s": times[1],
                "setup_s": times[2],
                "events": [
                    {"at_s": round(at, 3), "kind": kind, "detail": _loads(detail, detail)}
                    for at, kind, detail in reversed(events)
                ],
            },
            "summary": self.read_json_file("summary.json"),
            "full": since is None,
            "cursor": cursor,
            "candidates": candidates,
        }

    @staticmethod
    def _row(r: tuple) -> dict[str, Any]:
        row = {k: _finite(v) for k, v in zip(_ROW_KEYS, r[: len(_ROW_KEYS)], strict=True)}
        meta = _loads(r[len(_ROW_KEYS)], {})
        row["final"] = row.pop("train_on") == "train+val"
        row["meta"] = meta if isinstance(meta, dict) else {}
        row["rewrites"] = _rewrite_names(r[len(_ROW_KEYS) + 1])
        row["genome"] = _preview(r[len(_ROW_KEYS) + 2] or "")
        return row

    def candidate(self, cid: int) -> dict[str, Any] | None:
        """Everything about one candidate, with its lineage (root first) and its children."""
        db = self.connect()
        try:
            by_id: dict[int, tuple] = {}
            lineage: list[dict[str, Any]] = []
            node: int | None = cid
            while node is not None and node not in by_id:
                row = db.execute(
                    "SELECT id, parent, status, reason, request, metrics, checkpoint, setup_s, train_s, eval_s,"
                    " attempts, created_s, finished_s, objective, params, rewrites FROM candidates WHERE id = ?",
                    (node,),
                ).fetchone()
                if row is None:
                    break
                by_id[node] = row
                lineage.append(
                    {
                        "id": row[0],
                        "parent": row[1],
                        "status": row[2],
                        "objective": _finite(row[13]),
                        "params": row[14],
                        "rewrites": [
                            r.get("text") or r.get("rewrite", "?") if isinstance(r, dict) else str(r)
                            for r in _loads(row[15], [])
                        ],
                    }
                )
                node = row[1]
            children = [
                r[0] for r in db.execute("SELECT id FROM candidates WHERE parent = ? ORDER BY id", (cid,))
            ]
        except sqlite3.DatabaseError as err:
            raise RunUnreadable(f"{self.db_path} cannot be read as a run database: {err}") from None
        finally:
            db.close()
        if cid not in by_id:
            return None
        r = by_id[cid]
        request = _loads(r[4], {})
        return {
            "id": r[0],
            "parent": r[1],
            "status": r[2],
            "reason": r[3],
            "genome": request.get("genome", ""),
            "budget": request.get("budget"),
            "meta": request.get("meta", {}),
            "recipe": request.get("recipe"),
            "rewrites": request.get("rewrites", []),
            "metrics": _finite_tree(_loads(r[5])),
            "checkpoint": r[6],
            "timings": {"setup_s": r[7], "train_s": r[8], "eval_s": r[9]},
            "attempts": r[10],
            "created_s": r[11],
            "finished_s": r[12],
            "lineage": list(reversed(lineage)),
            "children": children,
        }

    def candidate_genome(self, cid: int) -> str | None:
        rows = self._query("SELECT genome FROM candidates WHERE id = ?", (cid,))
        return rows[0][0] if rows else None

    def describe(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "path": str(self.root)}

    def _last_write_age(self) -> float:
        """Seconds since the run last wrote its database (the WAL file counts): a stale ``running``."""
        stamps = []
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                stamps.append(os.stat(f"{self.db_path}{suffix}").st_mtime)
        return max(0.0, time.time() - max(stamps)) if stamps else 0.0


def _finite_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_tree(v) for v in value]
    return _finite(value)


def _config(meta: dict[str, Any]) -> dict[str, Any]:
    """The parts of the stored run configuration a person looks at first."""
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    setup = config.get("setup") if isinstance(config.get("setup"), dict) else {}
    dataset = setup.get("dataset") if isinstance(setup.get("dataset"), dict) else {}
    return {
        "strategy": config.get("strategy", "?"),
        "strategy_config": config.get("strategy_config", {}),
        "dataset": dataset.get("name", "?"),
        "task": dataset.get("task", "classification"),
        "input_shape": dataset.get("input_shape"),
        "seed": setup.get("seed"),
        "budget": setup.get("budget"),
        "epochs": setup.get("epochs"),
        "executor": config.get("executor", "?"),
        "workers": config.get("workers", 1),
        "time_limit": config.get("time_limit"),
    }


def run_dirs(paths: list[Path]) -> list[RunDir]:
    """The run directories to serve, resolved once: the only paths the dashboard ever reads."""
    return [RunDir(index=i, root=Path(p).expanduser().resolve()) for i, p in enumerate(paths)]


__all__ = ["GENOME_PREVIEW", "RunDir", "RunUnreadable", "run_dirs"]

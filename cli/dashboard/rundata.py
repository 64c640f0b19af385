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

Table rows are built as JSON text by SQLite's JSON functions (C, no Python per row) and kept
in a per-run cache that each request brings up to date cheaply: finished and failed rows never
change again (the store only updates queued and running ones), so a refresh reads only rows
with a larger id than seen and the rows still unfinished, both by primary key, whatever the
size of the run. The page's polls are incremental: ``since`` is the cursor of its last answer
(``EPOCH:VERSION``); the answer has the rows changed after it. A cursor from another cache (a
restarted server, a run directory made anew) gets everything. See ``bench/bench_dashboard.py``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genomorph.search.core.store import DB_NAME

#: characters of genome text in a table row (its lines joined by " ; "); the detail has it all
GENOME_PREVIEW = 96
#: one table row as JSON text, plus what the cache keeps apart: id, status, times
_ROW_SQL = """
SELECT id, status, json_object(
    'id', id, 'parent', parent, 'status', status, 'reason', reason, 'objective', objective,
    'val_accuracy', val_accuracy, 'test_accuracy', test_accuracy,
    'train_accuracy', json_extract(metrics, '$.train_accuracy'),
    'val_r2', json_extract(metrics, '$.val_r2'), 'test_r2', json_extract(metrics, '$.test_r2'),
    'params', params, 'macs', macs, 'epochs', json_extract(metrics, '$.epochs'),
    'setup_s', setup_s, 'train_s', train_s, 'eval_s', eval_s,
    'created_s', created_s, 'finished_s', finished_s, 'attempts', attempts,
    'budget_epochs', json_extract(budget, '$.epochs'),
    'final', json(CASE json_extract(budget, '$.train_on') WHEN 'train+val' THEN 'true' ELSE 'false' END),
    'meta', json(COALESCE(json_extract(request, '$.meta'), '{}')),
    'rewrites', (SELECT json_group_array(COALESCE(json_extract(r.value, '$.rewrite'), '?'))
                 FROM json_each(c.rewrites) AS r),
    'genome', CASE WHEN length(c.preview) > :cut THEN substr(c.preview, 1, :cut - 1) || '…' ELSE c.preview END
), COALESCE(train_s, 0), COALESCE(eval_s, 0), COALESCE(setup_s, 0)
FROM (
    SELECT *, trim(replace(replace(genome, char(13), ''), char(10), ' ; '), ' ;') AS preview
    FROM candidates WHERE id > :after OR id IN (SELECT value FROM json_each(:pending))
) AS c ORDER BY id
"""
_UNFINISHED = ("queued", "running")


class _RowCache:
    """The table rows of one run as JSON text, each with the cache version it last changed in."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset(None)

    def reset(self, identity: tuple[int, int] | None) -> None:
        self.identity = identity
        self.epoch = secrets.token_hex(4)
        self.version = 0
        self.texts: dict[int, str] = {}
        self.decoded: dict[int, dict[str, Any]] = {}
        self.changed: dict[int, int] = {}
        self.status: dict[int, str] = {}
        self.times: dict[int, tuple[float, float, float]] = {}
        self.unfinished: set[int] = set()
        self.max_id = -1

    def refresh(self, db: sqlite3.Connection, identity: tuple[int, int]) -> None:
        """Read new rows and the rows still unfinished (inside the caller's read transaction)."""
        if identity != self.identity:
            self.reset(identity)  # another database file: a run made anew in the same directory
        rows = self._read(db, self.max_id, sorted(self.unfinished))
        if (
            rows
            and self.max_id >= 0
            and not db.execute("SELECT 1 FROM candidates WHERE id = ?", (self.max_id,)).fetchone()
        ):
            self.reset(identity)  # rows went missing: start over from this snapshot
            rows = self._read(db, -1, [])
        changed = [r for r in rows if self.texts.get(r[0]) != r[2]]
        if not changed:
            return
        self.version += 1
        for cid, status, text, train_s, eval_s, setup_s in changed:
            self.texts[cid] = text
            self.decoded.pop(cid, None)
            self.changed[cid] = self.version
            self.status[cid] = status
            self.times[cid] = (train_s, eval_s, setup_s)
            if status in _UNFINISHED:
                self.unfinished.add(cid)
            else:
                self.unfinished.discard(cid)
            self.max_id = max(self.max_id, cid)

    @staticmethod
    def _read(db: sqlite3.Connection, after: int, pending: list[int]) -> list[tuple]:
        args = {"after": after, "pending": json.dumps(pending), "cut": GENOME_PREVIEW}
        return db.execute(_ROW_SQL, args).fetchall()

    def since(self, cursor: str | None) -> list[int] | None:
        """Ids changed after ``cursor`` (unfinished ones always), or None: send everything."""
        epoch, _, version = (cursor or "").partition(":")
        if epoch != self.epoch or not version.isdigit() or int(version) > self.version:
            return None
        after = int(version)
        return sorted({cid for cid, v in self.changed.items() if v > after} | self.unfinished)

    def rows(self) -> list[dict[str, Any]]:
        """Every row decoded (for the panels); decoded once per change."""
        for cid in self.texts.keys() - self.decoded.keys():
            self.decoded[cid] = json.loads(self.texts[cid])
        return [self.decoded[cid] for cid in sorted(self.texts)]


class RunUnreadable(Exception):
    """A run directory the dashboard cannot read (yet): the message is shown on the page."""


def _finite(value: Any) -> Any:
    # JSON has no NaN/inf; the browser's JSON.parse would reject the whole poll
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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
    _cache: _RowCache = field(default_factory=_RowCache, compare=False, repr=False)

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

    def page(self, since: str | None = None) -> dict[str, Any]:
        """`page_json`, decoded."""
        return json.loads(self.page_json(since))

    def page_json(self, since: str | None = None) -> str:
        """The run's state for the page as JSON text: meta, summary, counts, and the candidate
        rows changed after the cursor ``since`` (all of them when None or another cache's)."""
        db = self.connect()
        cache = self._cache
        try:
            with cache.lock:
                # one read transaction: rows, meta and events come from the same snapshot
                db.execute("BEGIN")
                meta = {k: _loads(v) for k, v in db.execute("SELECT key, value FROM run").fetchall()}
                cache.refresh(db, self._identity())
                events = db.execute(
                    "SELECT at_s, kind, detail FROM events ORDER BY id DESC LIMIT 20"
                ).fetchall()
                db.execute("COMMIT")
                ids = cache.since(since)
                selected = sorted(cache.texts) if ids is None else ids
                rows = "[" + ",".join(cache.texts[i] for i in selected) + "]"
                counts: dict[str, int] = {}
                for status in cache.status.values():
                    counts[status] = counts.get(status, 0) + 1
                times = [sum(t[k] for t in cache.times.values()) for k in range(3)]
                cursor = f"{cache.epoch}:{cache.version}"
        except sqlite3.DatabaseError as err:
            raise RunUnreadable(f"{self.db_path} cannot be read as a run database: {err}") from None
        finally:
            db.close()
        head = {
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
            "summary": _finite_tree(self.read_json_file("summary.json")),
            "full": ids is None,
            "cursor": cursor,
        }
        # the rows are JSON text already: splice them in rather than decode and re-encode them
        text = json.dumps(head, separators=(",", ":"), allow_nan=False)
        return f'{text[:-1]},"candidates":{rows}}}'

    def rows(self) -> list[dict[str, Any]]:
        """Every candidate's table row, decoded, in id order (brought up to date first)."""
        self.page_json(f"{self._cache.epoch}:{self._cache.version}")
        with self._cache.lock:
            return self._cache.rows()

    def _identity(self) -> tuple[int, int]:
        stat = os.stat(self.db_path)
        return stat.st_dev, stat.st_ino

    def candidate(self, cid: int) -> dict[str, Any] | None:
        """Everything about one candidate, with its lineage (root first) and its children."""
        db = self.connect()
        try:
            by_id: dict[int, tuple] = {}
            node: int | None = cid
            while node is not None and node not in by_id:  # a parent cycle cannot loop forever
                row = db.execute(_DETAIL_SQL + " WHERE id = ?", (node,)).fetchone()
                if row is None:
                    break
                by_id[node] = row
                node = row[1]
            children = [
                r[0] for r in db.execute("SELECT id FROM candidates WHERE parent = ? ORDER BY id", (cid,))
            ]
        except sqlite3.DatabaseError as err:
            raise RunUnreadable(f"{self.db_path} cannot be read as a run database: {err}") from None
        finally:
            db.close()
        return _detail(cid, by_id, children) if cid in by_id else None

    def details(self) -> dict[int, dict[str, Any]]:
        """`candidate` of every candidate, from one read of the table (the HTML report)."""
        db = self.connect()
        try:
            by_id = {r[0]: r for r in db.execute(_DETAIL_SQL + " ORDER BY id").fetchall()}
        except sqlite3.DatabaseError as err:
            raise RunUnreadable(f"{self.db_path} cannot be read as a run database: {err}") from None
        finally:
            db.close()
        children: dict[int, list[int]] = {}
        for cid, row in by_id.items():
            if row[1] is not None:
                children.setdefault(row[1], []).append(cid)
        return {cid: _detail(cid, by_id, children.get(cid, [])) for cid in by_id}

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


_DETAIL_SQL = (
    "SELECT id, parent, status, reason, request, metrics, checkpoint, setup_s, train_s, eval_s,"
    " attempts, created_s, finished_s, objective, params, rewrites FROM candidates"
)


def _detail(cid: int, by_id: dict[int, tuple], children: list[int]) -> dict[str, Any]:
    """One candidate's detail from `_DETAIL_SQL` rows of it and its ancestors."""
    lineage: list[dict[str, Any]] = []
    node: int | None = cid
    seen: set[int] = set()
    while node is not None and node in by_id and node not in seen:
        seen.add(node)
        row = by_id[node]
        records = _loads(row[15], [])
        lineage.append(
            {
                "id": row[0],
                "parent": row[1],
                "status": row[2],
                "objective": _finite(row[13]),
                "params": row[14],
                "rewrites": [
                    r.get("text") or r.get("rewrite", "?") if isinstance(r, dict) else str(r) for r in records
                ],
            }
        )
        node = row[1]
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

"""Files a run directory holds, written so that a kill at any moment leaves the old or the new one."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import BinaryIO


def _write_temporary(target: Path, write: Callable[[BinaryIO], object]) -> tuple[str, int]:
    """``write(file)`` on a new temporary file beside ``target``: its path and its open descriptor."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(os.dup(fd), "wb") as handle:
            write(handle)
            handle.flush()
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp, fd


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object], *, durable: bool = True) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, and rename it over ``path``.

    ``durable=False`` skips the fsync, for files replaced again within seconds (epoch checkpoints):
    the rename still makes a process kill leave the old or the new file, only an OS crash may lose
    the newest one (and a lost epoch checkpoint only means retraining those epochs).
    """
    target = Path(path)
    tmp, fd = _write_temporary(target, write)
    try:
        if durable:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    """``atomic_write`` of UTF-8 text."""
    atomic_write(path, lambda handle: handle.write(text.encode()))


# ------------------------------------------------------------------ several files, durable together
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Long-lived fsync threads: starting a thread per file waits for it to be scheduled (ms on a
    busy machine); an idle pool thread takes the next fsync without that wait."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="genomorph-fsync")
        return _POOL


class DurableBatch:
    """Files that become durable together: ``atomic_write`` of each, with one wait for all.

    ``write`` puts a file's bytes into a temporary file beside its target at once and starts its
    fsync in a background thread, so the caller's next work (and the next file's fsync: the file
    system commits concurrent fsyncs together) overlaps it. ``commit`` waits until every file is
    on disk, then renames each over its target in the order written and runs its ``on_commit``;
    ``abort`` (or an exception in the ``with`` block) removes the temporary files and leaves every
    target as it was. The guarantee of ``atomic_write`` therefore holds for each file, and once
    ``commit`` returns all of them are durable: a caller that records them afterwards (a result
    in the run store) never points at a file an OS crash could still lose.
    """

    def __init__(self) -> None:
        self._items: list[tuple[Path, str, int, Future[None], Callable[[], None] | None]] = []

    def write(
        self,
        path: str | Path,
        write: Callable[[BinaryIO], object],
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        target = Path(path)
        tmp, fd = _write_temporary(target, write)
        self._items.append((target, tmp, fd, _pool().submit(os.fsync, fd), on_commit))

    def commit(self) -> None:
        items, self._items = self._items, []
        try:
            for _, _, _, synced, _ in items:
                synced.result()
        except BaseException:
            self._discard(items)
            raise
        for _, _, fd, _, _ in items:
            os.close(fd)
        for target, tmp, _, _, _ in items:
            os.replace(tmp, target)
        for *_, on_commit in items:
            if on_commit is not None:
                on_commit()

    def abort(self) -> None:
        items, self._items = self._items, []
        self._discard(items)

    @staticmethod
    def _discard(items: list[tuple[Path, str, int, Future[None], Callable[[], None] | None]]) -> None:
        for _, tmp, fd, synced, _ in items:
            try:
                synced.exception()  # the descriptor stays open until its fsync has returned
            finally:
                os.close(fd)
                Path(tmp).unlink(missing_ok=True)

    def __enter__(self) -> DurableBatch:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


__all__ = ["DurableBatch", "atomic_write", "write_text"]

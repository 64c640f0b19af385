"""Weight checkpoint files: written atomically, read without unpickling arbitrary objects.

A checkpoint holds the IR-level weights (``Weights``: node id → tensor name → array, and
``ArchWeights``), not a module's ``state_dict``, so a strategy can load it as numpy and a
rewritten child can start from it. Writes go to a temporary file in the same folder, are
flushed to disk, then renamed over the target: a reader (or a resumed run after ``kill -9``)
sees either the old file or the complete new one, never half of one.

Epoch checkpoints (`EpochCheckpoint`, ``checkpoints/cNNNNN.epoch.pt``) hold what the training
loop needs to continue a candidate after its last finished epoch: the module's state, every
step's optimizer/generator state, the RNG state and the history. One per running candidate;
deleted once the candidate's final weights are written.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from genomorph.ir import ArchWeights, DataError, Weights
from genomorph.search.core.config import Job
from genomorph.search.core.files import DurableBatch, atomic_write

FORMAT = "genomorph-weights/2"
#: the first format (one tensor per array), still read
FORMAT_1 = "genomorph-weights/1"
#: bytes of recently written or read checkpoints kept in memory per process (see `_Recent`)
RECENT_BYTES = 64 * 2**20


class _Recent:
    """The last checkpoints this process wrote or read, by path, valid while the file is unchanged.

    A search reads back what it just wrote: the driver writes a proposal's weights and the
    in-process worker loads them, the worker writes a candidate's weights and the strategy loads
    them (noisy: six loads per iteration, ~10 ms each on a small network). A hit needs the same
    inode, size, mtime and ctime as when the entry was made (every checkpoint write is a rename
    onto a new inode), and hands out copies, so callers own their arrays as with a file read.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: dict[str, tuple[tuple[int, ...], Weights, ArchWeights, str, int]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _signature(path: Path) -> tuple[int, ...] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def put(self, path: Path, weights: Weights, arch: ArchWeights, genome: str) -> None:
        size = sum(a.nbytes for per in weights.values() for a in per.values()) + sum(
            a.nbytes for a in arch.values()
        )
        signature = self._signature(path)
        key = str(path.resolve())
        with self._lock:
            self._entries.pop(key, None)
            if signature is None or size > self.limit:
                return
            self._entries[key] = (signature, weights, arch, genome, size)
            while sum(e[4] for e in self._entries.values()) > self.limit:
                self._entries.pop(next(iter(self._entries)))

    def get(self, path: Path) -> tuple[Weights, ArchWeights, str] | None:
        key = str(path.resolve())
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or self._signature(path) != entry[0]:
            return None
        _, weights, arch, genome, _ = entry
        return (
            {nid: {name: a.copy() for name, a in per.items()} for nid, per in weights.items()},
            {group: a.copy() for group, a in arch.items()},
            genome,
        )


_RECENT = _Recent(RECENT_BYTES)


def _pack(
    weights: Weights, arch: ArchWeights
) -> tuple[list[list[Any]], dict[str, torch.Tensor], Weights, ArchWeights]:
    """All arrays copied into one flat buffer per dtype: the index ``[kind, key, name, dtype,
    shape, offset]`` (kind ``w``: weights of node ``key``; ``a``: architecture group ``key``,
    name ``""``), the buffers as tensors, and the arrays again as views of the buffers.

    One storage per dtype instead of one per array: ``torch.save`` and ``torch.load`` cost per
    storage (3x faster for a small MLP, 10x for a DARTS supernet's 300 arrays). The buffers are
    the only copy made, so a large checkpoint (a hypernetwork) costs its size once."""
    entries = [
        ("w", int(nid), name, np.asarray(a)) for nid, per in weights.items() for name, a in per.items()
    ]
    entries += [("a", group, "", np.asarray(a)) for group, a in arch.items()]
    sizes: dict[str, int] = {}
    index: list[list[Any]] = []
    for kind, key, name, array in entries:
        dtype = array.dtype.str
        index.append([kind, key, name, dtype, list(array.shape), sizes.get(dtype, 0)])
        sizes[dtype] = sizes.get(dtype, 0) + array.size
    flats = {dtype: np.empty(size, dtype=np.dtype(dtype)) for dtype, size in sizes.items()}
    views: Weights = {}
    arch_views: ArchWeights = {}
    for (kind, key, name, array), (_, _, _, dtype, shape, offset) in zip(entries, index, strict=True):
        view = flats[dtype][offset : offset + array.size].reshape(shape)
        view[...] = array
        if kind == "w":
            views.setdefault(key, {})[name] = view
        else:
            arch_views[key] = view
    return index, {dtype: torch.from_numpy(flat) for dtype, flat in flats.items()}, views, arch_views


def _unpack(index: list[list[Any]], data: dict[str, torch.Tensor]) -> tuple[Weights, ArchWeights]:
    """`_pack` undone: arrays that are views of this load's own buffers (the caller owns them)."""
    flats = {dtype: t.numpy() for dtype, t in data.items()}
    weights: Weights = {}
    arch: ArchWeights = {}
    for kind, key, name, dtype, shape, offset in index:
        size = math.prod(shape)
        array = flats[dtype][offset : offset + size].reshape(shape)
        if kind == "w":
            weights.setdefault(int(key), {})[str(name)] = array
        else:
            arch[str(key)] = array
    return weights, arch


def save_checkpoint(
    path: str | Path,
    weights: Weights,
    arch: ArchWeights | None = None,
    *,
    genome: str | None = None,
    batch: DurableBatch | None = None,
) -> None:
    """Write IR weights (numpy or tensors) to ``path`` atomically.

    With ``batch`` the file is written now and renamed into place (durable) by ``batch.commit()``,
    together with the batch's other files (a worker's weights and artifacts: one wait for all)."""
    index, data, arrays, arch_arrays = _pack(weights, arch or {})
    payload = {"format": FORMAT, "genome": genome or "", "index": index, "data": data}

    # the arrays are views of this function's own buffers: the cache may keep them
    def remember() -> None:
        _RECENT.put(Path(path), arrays, arch_arrays, genome or "")

    if batch is not None:
        batch.write(path, lambda handle: torch.save(payload, handle), on_commit=remember)
        return
    atomic_write(path, lambda handle: torch.save(payload, handle))
    remember()


def load_checkpoint(path: str | Path) -> tuple[Weights, ArchWeights, str]:
    """Read a checkpoint: ``(weights, arch, genome text)`` with numpy arrays (also the first
    format's files, one tensor per array, which earlier versions wrote)."""
    source = Path(path)
    recent = _RECENT.get(source)
    if recent is not None:
        return recent
    if not source.is_file():
        raise DataError(f"checkpoint {source} does not exist", hint="was the run directory moved or cleaned?")
    try:
        payload = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: pickle, zip and torch errors alike
        raise DataError(f"checkpoint {source} cannot be read: {err}") from None
    version = payload.get("format") if isinstance(payload, dict) else None
    if version not in (FORMAT, FORMAT_1):
        raise DataError(
            f"{source} is not a genomorph weight checkpoint",
            hint=f"expected a file written by genomorph (format {FORMAT})",
        )
    if version == FORMAT:
        try:
            weights, arch = _unpack(payload["index"], payload["data"])
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"checkpoint {source} is damaged: {err}") from None
    else:
        weights = {
            int(nid): {name: t.detach().cpu().numpy().copy() for name, t in per.items()}
            for nid, per in payload["weights"].items()
        }
        arch = {group: t.detach().cpu().numpy().copy() for group, t in payload["arch"].items()}
    genome = str(payload.get("genome", ""))
    _RECENT.put(
        source,
        {nid: {name: a.copy() for name, a in per.items()} for nid, per in weights.items()},
        {group: a.copy() for group, a in arch.items()},
        genome,
    )
    return weights, arch, genome


__all__ = ["FORMAT", "atomic_write", "load_checkpoint", "save_checkpoint"]


# ============================================================================ epoch checkpoints
EPOCH_FORMAT = "genomorph-epoch/1"
log = logging.getLogger(__name__)


def job_fingerprint(job: Job) -> str:
    """What an epoch checkpoint must have been written for: this very job (id, request, seed)."""
    return hashlib.sha256(job.model_dump_json().encode()).hexdigest()


class _Writer:
    """One long-lived writer thread per process, fed by a queue.

    Starting a thread per checkpoint costs little on an idle machine but waits for the new
    thread to be scheduled, which took ~10 ms per epoch on a busy 2-core one; a queue hand-over
    does not wait. Daemon, so it never keeps a finished process alive; ``atexit`` lets queued
    writes finish first (a write cut short leaves only a temporary file: the target is renamed
    into place complete or not at all).
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Callable[[], None], threading.Event]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _run(self) -> None:
        while True:
            job, done = self._queue.get()
            try:
                job()
            finally:
                done.set()
                self._queue.task_done()

    def submit(self, job: Callable[[], None]) -> threading.Event:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="genomorph-epoch-writer", daemon=True)
                self._thread.start()
                atexit.register(self._queue.join)
        done = threading.Event()
        self._queue.put((job, done))
        return done


_WRITER = _Writer()


def flush_epoch_writes() -> None:
    """Wait until every epoch checkpoint handed to the background writer is on disk (e.g. before
    reading one back in the same process after an interruption)."""
    _WRITER._queue.join()


class EpochCheckpoint:
    """The per-epoch checkpoint of one running candidate (`loop.EpochFile` on disk).

    ``save`` snapshots are written by a background thread while the next epoch trains (the
    loop hands over copies, so the file holds exactly the state at the end of its epoch);
    a second ``save`` first waits for the previous write. Files are atomic and load with
    ``weights_only=True``. A file written for another job (a different request, seed or
    candidate) or in another format is ignored, never resumed from.
    """

    def __init__(self, path: str | Path, fingerprint: str, *, background: bool = True) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.background = background
        self._pending: threading.Event | None = None
        self._error: BaseException | None = None
        self._loaded: dict[str, Any] | None = None
        self._read = False
        self.writes = 0
        self.write_s = 0.0
        """Seconds spent writing, summed (in the background thread when ``background``)."""

    def load(self) -> dict[str, Any] | None:
        if self._read:
            return self._loaded
        self._read = True
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:  # a foreign or damaged file: train from the start instead
            log.warning("ignoring unreadable epoch checkpoint %s: %s", self.path, err)
            return None
        if not isinstance(state, dict) or state.get("format") != EPOCH_FORMAT:
            log.warning("ignoring %s: not a genomorph epoch checkpoint", self.path)
            return None
        if state.get("fingerprint") != self.fingerprint:
            log.warning("ignoring %s: written for another job", self.path)
            return None
        self._loaded = state
        return state

    def _write(self, payload: dict[str, Any]) -> None:
        started = time.perf_counter()
        try:
            # rewritten every few seconds and deleted when the candidate ends: no fsync (see atomic_write)
            atomic_write(self.path, lambda handle: torch.save(payload, handle), durable=False)
        except BaseException as err:  # re-raised by wait() in the training thread
            self._error = err
        self.write_s += time.perf_counter() - started
        self.writes += 1

    def save(self, state: dict[str, Any]) -> None:
        self.wait()
        payload = {"format": EPOCH_FORMAT, "fingerprint": self.fingerprint, **state}
        if not self.background:
            self._write(payload)
            self.wait()
            return
        self._pending = _WRITER.submit(lambda: self._write(payload))

    def wait(self) -> None:
        """Block until the last ``save`` is on disk; raise what it failed with."""
        if self._pending is not None:
            self._pending.wait()
            self._pending = None
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def discard(self) -> None:
        """The candidate finished: its epoch checkpoint is no longer needed."""
        self.wait()
        self.path.unlink(missing_ok=True)


__all__ += ["EPOCH_FORMAT", "EpochCheckpoint", "flush_epoch_writes", "job_fingerprint"]

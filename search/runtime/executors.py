"""Executors: where candidate evaluations run. All three look the same to the driver.

- `InProcessExecutor`: in the driver's own process, one at a time, torch on all cores.
- `PoolExecutor`: ``N`` spawned worker processes (spawn, not fork: torch and fork do not mix),
  the dataset loaded once per worker (threads per worker: `trainer.auto_threads`).
- `RayExecutor`: one Ray task per candidate on a local or remote Ray cluster (optional
  dependency: ``pip install genomorph[ray]``).

The driver ``submit``s `Job`s and ``wait``s for results; the worker function is always
`evaluate.evaluate_job`, so the same job gives the same result on every executor with the
same thread count.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from typing import Any

from genomorph.ir import ConfigError
from genomorph.search.core.config import Job, WorkerSpec
from genomorph.search.core.executor import MAX_CRASHES, Executor, ExecutorKind, failed_result
from genomorph.search.core.protocol import EvalResult
from genomorph.search.runtime.evaluate import EpochCallback, evaluate_job


class InProcessExecutor(Executor):
    kind: ExecutorKind = "inprocess"

    def __init__(self, spec: WorkerSpec, on_epoch: EpochCallback | None = None) -> None:
        super().__init__(spec)
        self.on_epoch = on_epoch
        self._queue: deque[Job] = deque()

    def submit(self, job: Job) -> None:
        self._queue.append(job)

    def wait(self, timeout: float | None = None) -> list[EvalResult]:
        if not self._queue:
            return []
        return [evaluate_job(self.spec, self._queue.popleft(), self.on_epoch)]

    def pending(self) -> int:
        return len(self._queue)


# --------------------------------------------------------------------------- process pool
_WORKER_SPEC: WorkerSpec | None = None


def _die_with(driver: int) -> None:
    """End this worker as soon as its driver is gone, however and whenever the driver died.

    A driver killed with ``kill -9`` cannot stop its workers, and an orphan would keep training
    (and writing checkpoints) beside a resumed run. The driver's pid comes from the driver
    itself: a worker whose driver died while it was still starting (spawn + ``import torch``
    take seconds) would otherwise record its new parent (init) and wait forever. On Linux the
    kernel also delivers SIGKILL when the parent dies (``PR_SET_PDEATHSIG``); the polling thread
    covers other systems and the moment before the signal was armed.
    """
    _arm_parent_death_signal()
    if os.getppid() != driver:  # the driver died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == driver:
            time.sleep(0.25)
        os._exit(1)

    threading.Thread(target=watch, name="genomorph-die-with-driver", daemon=True).start()


def _arm_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl here: the polling thread alone does the job
        pass


def _init_worker(spec: WorkerSpec, driver: int) -> None:
    """Runs once in each spawned worker."""
    global _WORKER_SPEC
    _die_with(driver)
    # Ctrl-C goes to the whole process group: the driver handles it, workers just get stopped
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_SPEC = spec
    try:
        from genomorph.search.runtime.data import cached_dataset

        cached_dataset(spec.data)
    except Exception:  # noqa: S110 - the first job reports the data error as its failure
        pass


def _run_in_worker(job: Job) -> EvalResult:
    assert _WORKER_SPEC is not None, "worker not initialised"
    return evaluate_job(_WORKER_SPEC, job)


class PoolExecutor(Executor):
    kind: ExecutorKind = "pool"

    def __init__(self, spec: WorkerSpec, workers: int) -> None:
        super().__init__(spec)
        if workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {workers}")
        self.width = workers
        self._futures: dict[cf.Future[EvalResult], Job] = {}
        self._crashes: dict[int, int] = {}
        self._pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            max_workers=self.width,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.spec, os.getpid()),
        )

    def submit(self, job: Job) -> None:
        self._futures[self._pool.submit(_run_in_worker, job)] = job

    def wait(self, timeout: float | None = None) -> list[EvalResult]:
        if not self._futures:
            return []
        done, _ = cf.wait(list(self._futures), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        results: list[EvalResult] = []
        broken: list[Job] = []
        for future in done:
            job = self._futures.pop(future)
            try:
                results.append(future.result())
            except cf.process.BrokenProcessPool:
                broken.append(job)
            except Exception as err:  # the job could not even be sent or returned (pickling, ...)
                results.append(failed_result(job, f"{type(err).__name__}: {err}"))
        if broken:
            results.extend(self._recover(broken))
        return results

    def _recover(self, broken: list[Job]) -> list[EvalResult]:
        """A worker died (killed, out of memory): every job in flight is lost; retry them in a new pool."""
        lost = broken + list(self._futures.values())
        self._futures.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        failed = []
        for job in sorted(lost, key=lambda j: j.id):
            self._crashes[job.id] = self._crashes.get(job.id, 0) + 1
            if self._crashes[job.id] >= MAX_CRASHES:
                failed.append(
                    failed_result(
                        job, "the worker process died while evaluating it (killed or out of memory)"
                    )
                )
            else:
                self.submit(job)
        return failed

    def pending(self) -> int:
        return len(self._futures)

    def close(self) -> None:
        for future in self._futures:
            future.cancel()
        self._futures.clear()
        # terminate rather than wait: a resumed run re-evaluates whatever was still running
        processes = list(getattr(self._pool, "_processes", {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)


# --------------------------------------------------------------------------- Ray
def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "the Ray executor needs the `ray` package",
            hint="install it with `pip install 'genomorph[ray]'`, or use --workers N for a local pool",
        ) from None
    return ray


def _ray_task(spec: WorkerSpec, job: Job) -> EvalResult:
    return evaluate_job(spec, job)


class RayExecutor(Executor):
    kind: ExecutorKind = "ray"

    def __init__(
        self,
        spec: WorkerSpec,
        address: str | None = None,
        num_cpus: int | None = None,
        width: int | None = None,
    ) -> None:
        super().__init__(spec)
        ray = self._ray = import_ray()
        self._owns = not ray.is_initialized()
        if self._owns:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kwargs["address"] = address
            elif num_cpus:
                kwargs["num_cpus"] = num_cpus
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise ConfigError(
                    f"cannot start or reach Ray{f' at {address}' if address else ''}: {err}",
                    hint="check --address (e.g. ray://HOST:10001 or HOST:6379), or drop --executor ray",
                ) from None
        self.width = width or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._spec_ref = ray.put(spec)
        self._remote = ray.remote(num_cpus=1)(_ray_task)
        self._refs: dict[Any, Job] = {}

    def submit(self, job: Job) -> None:
        self._refs[self._remote.remote(self._spec_ref, job)] = job

    def wait(self, timeout: float | None = None) -> list[EvalResult]:
        if not self._refs:
            return []
        ready, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        results = []
        for ref in ready:
            job = self._refs.pop(ref)
            try:
                results.append(self._ray.get(ref))
            except Exception as err:  # a crashed worker or node: this candidate fails, the search goes on
                results.append(failed_result(job, f"Ray task failed: {type(err).__name__}: {err}"))
        return results

    def pending(self) -> int:
        return len(self._refs)

    def close(self) -> None:
        for ref in self._refs:
            self._ray.cancel(ref, force=True)
        self._refs.clear()
        if self._owns:
            self._ray.shutdown()


def make_executor(
    kind: ExecutorKind,
    spec: WorkerSpec,
    *,
    workers: int = 1,
    address: str | None = None,
    on_epoch: EpochCallback | None = None,
) -> Executor:
    """The executor a run asked for: ``pool`` with one worker is the in-process one."""
    if kind == "ray":
        return RayExecutor(spec, address=address, num_cpus=workers if workers > 1 else None)
    if kind == "pool" and workers > 1:
        return PoolExecutor(spec, workers)
    return InProcessExecutor(spec, on_epoch)


__all__ = [
    "Executor",
    "ExecutorKind",
    "InProcessExecutor",
    "PoolExecutor",
    "RayExecutor",
    "import_ray",
    "make_executor",
]

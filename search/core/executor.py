"""What the driver needs of an executor: submit jobs, wait for results. No torch here.

The implementations (in-process, process pool, Ray) live in ``genomorph.search.runtime.executors``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

from genomorph.search.core.config import Job, WorkerSpec
from genomorph.search.core.protocol import EvalResult

ExecutorKind = Literal["inprocess", "pool", "ray"]
#: a job whose worker process died this many times is failed instead of retried
MAX_CRASHES = 2


def failed_result(job: Job, reason: str) -> EvalResult:
    """A job that could not run at all (its worker died, it could not be sent)."""
    return EvalResult(id=job.id, request=job.request, status="failed", reason=reason)


class Executor(ABC):
    """Runs jobs; ``wait`` returns the results that completed (in any order)."""

    kind: ExecutorKind
    #: how many jobs run at the same time
    width: int = 1

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec

    @abstractmethod
    def submit(self, job: Job) -> None: ...

    @abstractmethod
    def wait(self, timeout: float | None = None) -> list[EvalResult]:
        """Block until at least one result is ready (or ``timeout`` seconds pass) and return them."""

    @abstractmethod
    def pending(self) -> int:
        """Jobs submitted whose results were not returned yet."""

    def close(self) -> None:
        """Stop workers; jobs still running are abandoned (the store re-runs them on resume)."""
        return None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["MAX_CRASHES", "Executor", "ExecutorKind", "failed_result"]

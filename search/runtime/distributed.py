"""Data-parallel DARTS / hyperDARTS over N processes: ``genomorph search --nproc N`` or torchrun.

One process, rank 0, runs everything a search is made of: the driver, the run store, the epoch
checkpoints, the reports. The other ranks are **followers**: they wait for rank 0's word, train
their share of each DARTS / hyperDARTS candidate (`data_parallel.py`: every rank keeps the same
parameters), and leave when rank 0 says so. Every other candidate (the found network's final
training) runs on rank 0 alone.

- **Starting.** ``--nproc N`` (`launch`): rank 0 opens a ``TCPStore`` on a port the OS picks and
  spawns N-1 followers (``python -m genomorph.search.runtime.distributed``) with the environment
  torchrun would give them (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
  ``MASTER_PORT``). Under ``torchrun --nproc_per_node N genomorph search ...`` every rank runs
  the command; the CLI sends ranks above 0 to `follow_from_env`. Either way the process group
  is gloo on CPU and nccl on CUDA.
- **Control** goes through the store, never through a collective, so a follower waits for
  the next candidate for as long as rank 0 trains other ones: rank 0 writes ``cmd/K`` (the
  `WorkerSpec` and `Job` as JSON, or ``stop``); each follower answers ``done/K/RANK`` (``ok``
  with a digest of its trained state, or its error).
- **Resume.** Rank 0 reads the candidate's epoch checkpoint, if any, and broadcasts it
  (``broadcast_object_list``); the followers restore from it exactly as rank 0 does. Only rank
  0 writes checkpoints, artifacts and the final weights, and only rank 0 validates (the full
  validation split, after every epoch, while the followers wait at their next collective).
- **Failures.** A follower whose parent dies is killed (``PR_SET_PDEATHSIG``, as pool workers).
  A follower that fails reports its error and exits; rank 0's next collective then fails, the
  candidate fails with the follower's message, and the group is torn down (so no rank is left
  waiting inside a collective); the run's later DARTS candidates then train on rank 0 alone.
  A follower that died without a word is reported with its exit status.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from genomorph.ir import ConfigError, GenomorphError
from genomorph.search.core.config import Job, WorkerSpec
from genomorph.search.core.executor import Executor
from genomorph.search.core.protocol import EvalResult
from genomorph.search.runtime.checkpoint import EpochCheckpoint, job_fingerprint
from genomorph.search.runtime.data_parallel import DataParallel, active
from genomorph.search.runtime.evaluate import EpochCallback, epoch_checkpoint_path, evaluate_job
from genomorph.search.runtime.executors import InProcessExecutor, _die_with

log = logging.getLogger(__name__)

#: recipes whose candidates train data-parallel; all others run on rank 0 alone
RECIPES = ("darts", "hyperdarts")
ENV_DRIVER = "GENOMORPH_DRIVER_PID"
#: seconds between two looks at the store while waiting (followers idle, rank 0 collecting)
POLL_S = 0.05
_PREFIX = "genomorph/"

_WORLD: World | None = None


def backend_for(device: str) -> str:
    from genomorph.search.runtime.trainer import resolve_device

    return "nccl" if resolve_device(device).type == "cuda" else "gloo"


def torchrun_rank() -> int | None:
    """This process's rank when a launcher such as torchrun started several (else ``None``)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ:
        return int(os.environ["RANK"])
    return None


@dataclass
class World:
    """The ranks of one data-parallel search, as one of them sees it."""

    rank: int
    size: int
    store: Any  # a torch.distributed Store (PrefixStore) for genomorph's control keys
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    """Followers this process spawned (``--nproc``; none under torchrun)."""
    commands: int = 0
    broken: bool = False
    """A failed candidate tore the process group down: the followers are gone."""

    # ------------------------------------------------------------------ rank 0
    def announce(self, message: dict[str, Any]) -> int:
        index = self.commands
        self.store.set(f"cmd/{index}", json.dumps(message))
        self.commands += 1
        return index

    def collect(self, index: int) -> dict[int, dict[str, Any]]:
        """Every follower's answer to command ``index``; a follower that died answers with its exit."""
        answers: dict[int, dict[str, Any]] = {}
        pending = set(range(1, self.size))
        while pending:
            for rank in sorted(pending):
                answer = self._answer(index, rank)
                if answer is None:
                    code = self._exit_status(rank)
                    answer = self._answer(index, rank)  # it may have answered, then exited
                    if answer is None and code is not None:
                        answer = {"status": "error", "reason": f"the process exited with status {code}"}
                if answer is not None:
                    answers[rank] = answer
                    pending.discard(rank)
            if pending:
                time.sleep(POLL_S)
        return answers

    def _answer(self, index: int, rank: int) -> dict[str, Any] | None:
        key = f"done/{index}/{rank}"
        return json.loads(self.store.get(key)) if self.store.check([key]) else None

    def _exit_status(self, rank: int) -> int | None:
        if rank - 1 < len(self.children):
            return self.children[rank - 1].poll()
        return None

    def break_up(self) -> None:
        """Tear the process group down: a rank waiting inside a collective gets an error, not a hang."""
        self.broken = True
        if dist.is_initialized():
            dist.destroy_process_group()

    # ------------------------------------------------------------------ followers
    def receive(self) -> tuple[int, dict[str, Any]]:
        key = f"cmd/{self.commands}"
        while not self.store.check([key]):
            time.sleep(POLL_S)
        index = self.commands
        self.commands += 1
        return index, json.loads(self.store.get(key))

    def answer(self, index: int, answer: dict[str, Any]) -> None:
        self.store.set(f"done/{index}/{self.rank}", json.dumps(answer))

    # ------------------------------------------------------------------ both
    def close(self, abort: bool = False) -> None:
        """Rank 0: tell the followers to leave (or kill them when aborting) and wait for them."""
        if self.rank == 0 and not self.broken and not abort:
            try:
                self.announce({"kind": "stop"})
            except Exception as err:  # the store is gone with the followers: nothing to tell
                log.debug("could not send stop: %s", err)
        if dist.is_initialized():
            dist.destroy_process_group()
        for child in self.children:
            if abort:
                child.kill()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


# ---------------------------------------------------------------------------- starting
def _init_group(store: Any, rank: int, size: int, backend: str) -> None:
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
    dist.init_process_group(backend, store=store, rank=rank, world_size=size)


def spawn(nproc: int, backend: str) -> World:
    """Rank 0 of ``--nproc N``: a store on a free port, N-1 follower processes, the process group."""
    store = dist.TCPStore("127.0.0.1", 0, nproc, is_master=True, wait_for_workers=False)
    dist.PrefixStore(_PREFIX, store).set("backend", backend)
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(store.port),
        "WORLD_SIZE": str(nproc),
        ENV_DRIVER: str(os.getpid()),
    }
    children = [
        subprocess.Popen(  # noqa: S603 - this interpreter, this module
            [sys.executable, "-m", "genomorph.search.runtime.distributed"],
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
        )
        for r in range(1, nproc)
    ]
    world = World(0, nproc, dist.PrefixStore(_PREFIX, store), children)
    try:
        _wait_for_followers(world)
        _init_group(store, 0, nproc, backend)
    except BaseException:
        world.close(abort=True)
        raise
    return world


def _wait_for_followers(world: World) -> None:
    """Until every follower has joined the store; a follower that died first is an error, not a hang."""
    for rank in range(1, world.size):
        while not world.store.check([f"hello/{rank}"]):
            code = world._exit_status(rank)
            if code is not None:
                raise GenomorphError(
                    f"data-parallel follower {rank} of {world.size} exited with status {code} before it "
                    "joined (its message is above)"
                )
            time.sleep(POLL_S)


def join_from_env(backend: str | None = None) -> World:
    """Join the group from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ...).

    Rank 0 gives the ``backend`` and publishes it; the followers read it from the store."""
    store, rank, size = next(dist.rendezvous("env://"))
    world = World(rank, size, dist.PrefixStore(_PREFIX, store))
    if rank == 0:
        if backend is None:
            raise ValueError("rank 0 chooses the backend")
        world.store.set("backend", backend)
    world.store.set(f"hello/{rank}", "1")
    chosen = backend if rank == 0 else world.store.get("backend").decode()  # get waits for the key
    _init_group(store, rank, size, str(chosen))
    return world


@contextmanager
def launch(nproc: int | None, device: str) -> Iterator[World]:
    """Rank 0's world for a search: spawn ``nproc`` processes, or join torchrun's (``None``)."""
    global _WORLD
    backend = backend_for(device)
    world = spawn(nproc, backend) if nproc is not None else join_from_env(backend)
    if world.rank != 0:
        world.close()
        raise ConfigError(f"rank {world.rank} cannot run the search; only rank 0 does")
    _WORLD = world
    aborted = True
    try:
        yield world
        aborted = False
    finally:
        _WORLD = None
        world.close(abort=aborted)


# ---------------------------------------------------------------------------- rank 0's executor
class DataParallelExecutor(InProcessExecutor):
    """The in-process executor of rank 0: DARTS / hyperDARTS candidates train on every rank."""

    def __init__(self, spec: WorkerSpec, world: World, on_epoch: EpochCallback | None = None) -> None:
        super().__init__(spec, on_epoch)
        self.world = world

    def wait(self, timeout: float | None = None) -> list[EvalResult]:
        if not self._queue:
            return []
        job = self._queue.popleft()
        if job.request.recipe not in RECIPES:
            return [evaluate_job(self.spec, job, self.on_epoch)]
        if self.world.broken:
            log.warning("candidate %d trains on rank 0 alone: the data-parallel group is gone", job.id)
            return [evaluate_job(self.spec, job, self.on_epoch)]
        return [self._parallel(job)]

    def _parallel(self, job: Job) -> EvalResult:
        world, spec = self.world, self.spec
        saved = EpochCheckpoint(Path(spec.run_dir) / epoch_checkpoint_path(job), job_fingerprint(job)).load()
        index = world.announce(
            {
                "kind": "job",
                "spec": spec.model_dump(mode="json"),
                "job": job.model_dump(mode="json"),
                "resume": saved is not None,
            }
        )
        parallel = DataParallel(0, world.size)
        try:
            if saved is not None:
                dist.broadcast_object_list([saved], src=0)
            with active(parallel):
                result = evaluate_job(spec, job, self.on_epoch)
        except BaseException as err:
            if isinstance(err, KeyboardInterrupt):  # the search stops: end the followers quietly
                for child in world.children:
                    child.kill()
            world.break_up()
            raise
        if not result.ok:
            world.break_up()
        return _merge(result, parallel, world.collect(index), world)


def _merge(
    result: EvalResult, parallel: DataParallel, answers: dict[int, dict[str, Any]], world: World
) -> EvalResult:
    """Rank 0's result with what the followers said: their errors in the reason, whether all agree."""
    errors = {r: a["reason"] for r, a in sorted(answers.items()) if a["status"] != "ok"}
    if errors:
        world.break_up()  # the followers that failed have left
    if not result.ok:
        told = [f"rank {r}: {reason}" for r, reason in errors.items() if reason != result.reason]
        if told:
            reason = f"data-parallel rank {', '.join(told)} (rank 0: {result.reason})"
            return result.model_copy(update={"reason": reason})
        return result
    if errors:  # rank 0 has the complete result; a follower failed after the last collective
        log.warning("data-parallel followers failed after training: %s", errors)
        return result
    identical = all(a.get("digest") == parallel.digest for a in answers.values())
    if not identical:
        log.warning("candidate %d: the ranks ended with different parameters", result.id)
    if result.metrics is None:
        return result
    extra = {**result.metrics.extra, "nproc": world.size, "ranks_identical": identical}
    return result.model_copy(update={"metrics": result.metrics.model_copy(update={"extra": extra})})


def wrap_executor(executor: Executor) -> Executor:
    """``executor``, or rank 0's `DataParallelExecutor` while a data-parallel world is launched."""
    world = _WORLD
    if world is None:
        return executor
    if not isinstance(executor, InProcessExecutor):
        raise ConfigError("--nproc trains with one local worker", hint="drop --workers and --executor ray")
    spec = executor.spec
    if spec.train.threads is None and spec.threads is not None:  # the cores are shared by the ranks
        spec = spec.model_copy(update={"threads": max(1, spec.threads // world.size)})
    return DataParallelExecutor(spec, world, executor.on_epoch)


# ---------------------------------------------------------------------------- followers
def follow(world: World) -> None:
    """A follower's life: train each data-parallel candidate rank 0 announces, until ``stop``.

    Raises `FollowerFailed` after reporting a candidate's error to rank 0 (the process then exits).
    """
    from genomorph.search.runtime.follower_job import train_share

    while True:
        index, message = world.receive()
        if message["kind"] == "stop":
            return
        spec, job = WorkerSpec.model_validate(message["spec"]), Job.model_validate(message["job"])
        parallel = DataParallel(world.rank, world.size)
        try:
            box: list[Any] = [None]
            if message["resume"]:
                dist.broadcast_object_list(box, src=0)
            with active(parallel):
                train_share(spec, job, box[0])
        except Exception as err:
            reason = str(err) if isinstance(err, GenomorphError) else f"{type(err).__name__}: {err}"
            world.answer(index, {"status": "error", "reason": reason})
            raise FollowerFailed(f"rank {world.rank}: candidate {job.id} failed: {reason}") from err
        world.answer(index, {"status": "ok", "digest": parallel.digest})


class FollowerFailed(Exception):
    """A follower's candidate failed; rank 0 has been told, the follower leaves."""


def follow_from_env() -> int:
    """A follower started by torchrun (or by `spawn`): follow rank 0; the process's exit status."""
    logging.basicConfig(level=logging.WARNING, format="genomorph follower: %(message)s")
    driver = os.environ.get(ENV_DRIVER)
    _die_with(int(driver) if driver else os.getppid())  # spawned: rank 0; torchrun: its agent
    world = join_from_env()
    try:
        follow(world)
    except FollowerFailed as err:
        # rank 0 has the error and reports the candidate's failure; a non-zero status would make
        # torchrun stop rank 0 as well, before it can record it
        log.error("%s", err)
        return 0
    finally:
        world.close()
    return 0


def main() -> int:
    """``python -m genomorph.search.runtime.distributed``: a follower spawned by ``--nproc``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is rank 0's to handle; it ends the followers
    return follow_from_env()


__all__ = [
    "RECIPES",
    "DataParallelExecutor",
    "FollowerFailed",
    "World",
    "backend_for",
    "follow",
    "follow_from_env",
    "launch",
    "spawn",
    "torchrun_rank",
    "wrap_executor",
]

if __name__ == "__main__":
    sys.exit(main())

"""The driver: runs a strategy against an executor, keeping everything in the run store.

It is the only writer of the run database. The loop:

1. hand the strategy every stored result in candidate-id order (``observe``), storing the new
   strategy state with the "observed" mark in one transaction;
2. after each observation (and once when a session starts), while fewer than ``width``
   candidates are proposed but not yet observed, ask for proposals; give them ids and seeds,
   write their initial weights, and store candidates + strategy state in one transaction;
   submit them;
3. wait for results and store each as soon as it arrives.

Because results reach the strategy in id order whatever order they finish in, proposals are
asked for only at points fixed by that order, and every seed is derived from the run seed and
the candidate id, a run is reproducible for a given seed and executor width, and a resumed run
(`resume_search`) continues exactly where the last committed transaction left it: finished
candidates are never re-run, interrupted ones run again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from genomorph.ir import ArchWeights, ConfigError, Weights
from genomorph.search.core.config import DataConfig, Job, TrainConfig
from genomorph.search.core.executor import Executor, ExecutorKind
from genomorph.search.core.protocol import EvalResult, Proposal, SearchSetup, Strategy, derive_seed
from genomorph.search.core.store import InputRead, RunStore
from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

#: how often the driver wakes up while waiting, to check the time limit
POLL_S = 1.0


class RunConfig(BaseModel):
    """Everything a run is made from; stored in the run database so ``resume`` needs nothing else."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: str
    strategy_config: dict[str, Any] = Field(default_factory=dict)
    setup: SearchSetup
    data: DataConfig
    train: TrainConfig
    executor: ExecutorKind = "inprocess"
    workers: int = Field(default=1, ge=1)
    address: str | None = None
    time_limit: float | None = Field(default=None, gt=0)
    """Seconds of run time after which the strategy is told to wrap up."""


class SearchObserver(Protocol):
    """What a user interface gets told; every method is optional to act on."""

    def started(self, store: RunStore, strategy: Strategy, resumed: bool) -> None: ...
    def submitted(self, job: Job) -> None: ...
    def finished(self, result: EvalResult) -> None: ...
    def epoch(self, epoch: int, epochs: int, record: dict[str, float]) -> None: ...


class _Silent:
    def started(self, store: RunStore, strategy: Strategy, resumed: bool) -> None:
        pass

    def submitted(self, job: Job) -> None:
        pass

    def finished(self, result: EvalResult) -> None:
        pass

    def epoch(self, epoch: int, epochs: int, record: dict[str, float]) -> None:
        pass


class SearchInterrupted(Exception):
    """Ctrl-C during a search: what was finished is stored; ``genomorph resume`` continues."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(f"search interrupted; continue it with `genomorph resume {run_dir}`")
        self.run_dir = run_dir


class WeightFiles(Protocol):
    """How the driver reads and writes weight checkpoints (the torch side implements it)."""

    def save(self, path: Path, weights: Weights, arch: ArchWeights | None, genome: str) -> None: ...

    def load(self, path: Path) -> tuple[Weights, ArchWeights]: ...


class InputLog:
    """The reads of user-editable files (``SearchContext.read_input``) and their record.

    Every read gets the next sequence number and waits in ``pending`` until the next stored
    strategy state: the proposals made from it, or the next observation. It is written in that
    same transaction, so the store never holds a state, or a proposal, made from a read it does
    not record, nor a read that nothing stored came from. A resumed strategy continues from its
    last stored state, so what it read before is replayed through that state and the candidates
    it proposed (their requests carry what the strategy made of it); it never reads those again,
    and its next read gets the next number. Reads a killed session made after its last stored
    state left no trace and are simply made again.
    """

    def __init__(self, store: RunStore) -> None:
        self.next_seq = store.read_count()
        # relative paths are relative to where the search was started, also on resume
        self.base = Path(str(store.get("cwd") or "."))
        self.pending: list[InputRead] = []
        self._store = store

    def read(self, key: str, path: str | Path) -> str | None:
        file = Path(path) if Path(path).is_absolute() else self.base / path
        try:
            content: str | None = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            content = None
        except (OSError, UnicodeDecodeError) as err:
            logger.warning("cannot read %s (%s): %s; treated as missing", file, key, err)
            content = None
        self.pending.append(InputRead(self.next_seq, key, str(path), content, self._store.elapsed()))
        self.next_seq += 1
        return content

    def take(self) -> list[InputRead]:
        """The reads not yet stored; the caller stores them with the next strategy state."""
        taken, self.pending = self.pending, []
        return taken


@dataclass
class _Context:
    """The `SearchContext` a strategy sees during ``propose``."""

    run_dir: Path
    slots: int
    wrap_up: bool
    files: WeightFiles
    inputs: InputLog

    def load_weights(self, checkpoint: str) -> tuple[Weights, ArchWeights]:
        return self.files.load(self.run_dir / checkpoint)

    def read_input(self, key: str, path: str | Path) -> str | None:
        return self.inputs.read(key, path)


def strategy_class(name: str) -> type[Strategy]:
    """A registered strategy (``nash``), or any `Strategy` subclass given as ``package.module:Class``."""
    if ":" in name:
        import importlib

        module_name, _, attribute = name.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"cannot load strategy {name}: {err}") from None
        if not (isinstance(found, type) and issubclass(found, Strategy)):
            raise ConfigError(f"{name} is not a genomorph Strategy class")
        return found
    from genomorph.search.strategies import STRATEGIES

    if name not in STRATEGIES:
        known = ", ".join(sorted(STRATEGIES)) or "none"
        raise ConfigError(
            f"unknown strategy '{name}'", hint=f"choose one of: {known} (or give package.module:Class)"
        )
    return STRATEGIES[name]


def build_strategy(config: RunConfig) -> Strategy:
    """A fresh strategy from a run config; ConfigError when its options are invalid."""
    from pydantic import ValidationError

    cls = strategy_class(config.strategy)
    try:
        options = cls.Config.model_validate(config.strategy_config)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        raise ConfigError(
            f"invalid options for strategy '{config.strategy}': {problems}",
            hint=f"the options are: {', '.join(cls.Config.model_fields)}",
        ) from None
    return cls(options, config.setup)


def checkpoint_path(cid: int, kind: str = "") -> str:
    """Checkpoint file of a candidate, relative to the run directory."""
    return f"checkpoints/c{cid:05d}{'.' + kind if kind else ''}.pt"


class Driver:
    def __init__(
        self,
        store: RunStore,
        strategy: Strategy,
        executor: Executor,
        config: RunConfig,
        files: WeightFiles,
        observer: SearchObserver | None = None,
    ) -> None:
        self.files = files
        self.store = store
        self.strategy = strategy
        self.executor = executor
        self.config = config
        self.observer = observer or _Silent()
        self.inputs = InputLog(store)
        self.inflight: dict[int, Job] = {}
        self.ready: dict[int, EvalResult] = {}
        self.next_id = store.next_id()
        unobserved = [c.id for c in store.candidates() if not c.observed]
        self.next_to_observe = min(unobserved, default=self.next_id)

    # ------------------------------------------------------------------ steps
    def _job(self, cid: int, seed: int, request: Any) -> Job:
        return Job(id=cid, request=request, seed=seed, checkpoint=checkpoint_path(cid))

    def _submit(self, jobs: list[Job], *, marked: bool = False) -> None:
        """Hand ``jobs`` to the executor; ``marked``: the store has them as running already."""
        if not jobs:
            return
        if not marked:
            self.store.mark_running([j.id for j in jobs])
        for job in jobs:
            self.inflight[job.id] = job
            self.executor.submit(job)
            self.observer.submitted(job)

    def _accept(self, proposals: list[Proposal], observed: int | None = None) -> list[Job]:
        """Give proposals ids, seeds and initial checkpoints, and store them with the strategy state
        (and with the observation of candidate ``observed`` they follow, if any)."""
        jobs = []
        for offset, proposal in enumerate(proposals):
            cid = self.next_id + offset
            request = proposal.request
            if proposal.weights is not None or proposal.arch is not None:
                init = checkpoint_path(cid, "init")
                self.files.save(
                    self.store.run_dir / init, proposal.weights or {}, proposal.arch, request.genome
                )
                request = request.model_copy(update={"init_checkpoint": init})
            seed = request.seed if request.seed is not None else derive_seed(self.config.setup.seed, cid)
            jobs.append(self._job(cid, seed, request))
        # stored as running: they are submitted right after (a kill in between requeues them on resume)
        self.store.add_candidates(
            [(j.id, j.request, j.seed) for j in jobs],
            self.strategy.dump_state(),
            self.inputs.take(),
            running=True,
            observed=observed,
        )
        self.next_id += len(jobs)
        return jobs

    def _observe_in_order(self) -> None:
        """Observe the ready results in id order, asking for proposals after each one: the points
        where a strategy proposes are then fixed by the id order, not by finishing times."""
        while self.next_to_observe in self.ready:
            result = self.ready.pop(self.next_to_observe)
            self.strategy.observe(result)
            self.next_to_observe += 1
            # the observation is stored with the first proposals made after it (one transaction;
            # a kill before it observes the result again from the state before), else on its own
            if not self._propose(observed=result.id):
                self.store.mark_observed(result.id, self.strategy.dump_state(), self.inputs.take())
            self._prune()

    def _prune(self) -> None:
        """Delete the weight files nobody needs any more (see `Strategy.retained`)."""
        retained = self.strategy.retained()
        if retained is None:
            return
        kept = self.store.kept_checkpoints()
        keep = set(retained) | {self.strategy.result_candidate()}
        front = self.strategy.front()
        if front is not None:
            keep |= {m.candidate for m in front.members}
        for column in (
            2,
            3,
        ):  # the best by objective and by validation accuracy (ties too) stay for the report
            scores = [row[column] for row in kept if row[column] is not None]
            keep |= {row[0] for row in kept if scores and row[column] == max(scores)}
        needed = self.store.pending_init_checkpoints()
        drop = [(cid, path) for cid, path, _, _ in kept if cid not in keep and path not in needed]
        if not drop:
            return
        # forget first, then delete: a kill in between leaves a stray file, never a dangling row
        self.store.forget_checkpoints([cid for cid, _ in drop])
        for cid, path in drop:
            (self.store.run_dir / path).unlink(missing_ok=True)
            (self.store.run_dir / checkpoint_path(cid, "init")).unlink(missing_ok=True)

    def _wrap_up(self) -> bool:
        limit = self.config.time_limit
        return limit is not None and self.store.elapsed() >= limit

    def _propose(self, observed: int | None = None) -> bool:
        """Ask for proposals while there are free slots; whether any were stored. ``observed``: the
        candidate just observed, marked so with the first proposals."""
        stored = False
        while not self.strategy.done():
            # slots count candidates proposed but not yet *observed* (not: not yet finished), so what a
            # strategy sees when it proposes never depends on the order in which results came back
            slots = self.executor.width - (self.next_id - self.next_to_observe)
            if slots <= 0:
                break
            ctx = _Context(self.store.run_dir, slots, self._wrap_up(), self.files, self.inputs)
            proposals = self.strategy.propose(ctx)
            if not proposals:
                break
            self._submit(self._accept(proposals, None if stored else observed), marked=True)
            stored = True
        return stored

    # ------------------------------------------------------------------ the loop
    def resume_pending(self) -> None:
        """Re-submit candidates a previous session left queued or running; queue unobserved results."""
        queued = set(self.store.requeue_unfinished())
        jobs = []
        for cand in self.store.candidates():
            if cand.id in queued:
                jobs.append(self._job(cand.id, cand.seed, cand.request))
            elif not cand.observed:
                self.ready[cand.id] = cand.result()
        self._submit(jobs)

    def run(self) -> None:
        """Run until the strategy is done. Ctrl-C raises `SearchInterrupted` after closing the executor."""
        try:
            self.resume_pending()
            self._propose()
            while True:
                self._observe_in_order()
                if self.strategy.done() and not self.inflight and not self.ready:
                    break
                if not self.inflight:
                    if self.ready:
                        raise RuntimeError(
                            f"results {sorted(self.ready)} wait for candidate {self.next_to_observe}"
                        )
                    if self.strategy.done():
                        break
                    raise RuntimeError(
                        f"strategy '{self.strategy.name}' proposed nothing while nothing is running and it is not done"
                    )
                for result in self.executor.wait(timeout=POLL_S):
                    if self.inflight.pop(result.id, None) is None:
                        continue  # a stale result of a job abandoned earlier
                    self.store.record_result(result)
                    self.ready[result.id] = result
                    self.observer.finished(result)
        except KeyboardInterrupt:
            self.executor.close()
            self.store.set("status", "interrupted", event="interrupted")
            raise SearchInterrupted(self.store.run_dir) from None
        self.executor.close()
        # the state as it ended (a last propose may have changed it without proposing anything)
        self.store.set_state(self.strategy.dump_state(), self.inputs.take())
        self.store.set("result_candidate", self.strategy.result_candidate())
        self._prune()
        self.store.set("status", "finished", event="finished")


__all__ = [
    "Driver",
    "InputLog",
    "RunConfig",
    "SearchInterrupted",
    "SearchObserver",
    "WeightFiles",
    "build_strategy",
    "checkpoint_path",
    "strategy_class",
]

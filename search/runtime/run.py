"""Starting and resuming searches: the torch-free driver wired to torch executors and checkpoints."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from genomorph.ir import ArchWeights, GenomorphError, Weights
from genomorph.search.core.config import DataConfig, WorkerSpec
from genomorph.search.core.driver import Driver, RunConfig, SearchInterrupted, SearchObserver, build_strategy
from genomorph.search.core.executor import Executor
from genomorph.search.core.protocol import SearchSetup, Strategy
from genomorph.search.core.store import RunStore
from genomorph.search.runtime.checkpoint import load_checkpoint, save_checkpoint
from genomorph.search.runtime.data import cached_dataset
from genomorph.search.runtime.evaluate import EpochCallback
from genomorph.search.runtime.executors import make_executor
from genomorph.search.runtime.trainer import auto_threads


class _CheckpointFiles:
    """`WeightFiles` on genomorph's checkpoint format."""

    def save(self, path: Path, weights: Weights, arch: ArchWeights | None, genome: str) -> None:
        save_checkpoint(path, weights, arch, genome=genome)

    def load(self, path: Path) -> tuple[Weights, ArchWeights]:
        weights, arch, _ = load_checkpoint(path)
        return weights, arch


CHECKPOINT_FILES = _CheckpointFiles()


def _spec(config: RunConfig, run_dir: Path) -> WorkerSpec:
    width = config.workers if config.executor != "inprocess" else 1
    threads = auto_threads(config.train.threads, config.setup.dataset.input_shape, width)
    return WorkerSpec(run_dir=str(run_dir.resolve()), data=config.data, train=config.train, threads=threads)


def _executor(config: RunConfig, run_dir: Path, on_epoch: EpochCallback | None) -> Executor:
    from genomorph.search.runtime.distributed import wrap_executor

    executor = make_executor(
        config.executor,
        _spec(config, run_dir),
        workers=config.workers,
        address=config.address,
        on_epoch=on_epoch,
    )
    return wrap_executor(executor)  # rank 0 of a data-parallel search (--nproc, torchrun)


def prepare_setup(data: DataConfig, *, seed: int = 0, **fields: Any) -> SearchSetup:
    """The `SearchSetup` of a new run: loads the data once, so a DataError comes before any training."""
    return SearchSetup(seed=seed, dataset=cached_dataset(data).info, **fields)


def start_search(config: RunConfig, run_dir: str | Path, observer: SearchObserver | None = None) -> RunStore:
    """Create a run directory and run the search to its end; returns the (open) store."""
    root = Path(run_dir)
    strategy = build_strategy(config)  # invalid options fail before the run directory exists
    store = RunStore.create(
        root,
        # cwd: relative paths of the run's inputs (SearchContext.read_input) stay valid on resume
        {"config": config.model_dump(mode="json"), "host": platform.node(), "cwd": os.getcwd()},
        strategy.dump_state(),
    )
    return _run(store, strategy, config, observer, resumed=False)


def resume_search(run_dir: str | Path, observer: SearchObserver | None = None) -> RunStore:
    """Continue a run from its store; a run already finished only has its report rewritten."""
    store = RunStore.open(run_dir)
    config = RunConfig.model_validate(store.get("config"))
    strategy = build_strategy(config)
    strategy.load_state(store.strategy_state())
    if store.get("status") == "finished":
        return store
    store.set("status", "running", event="resumed")
    return _run(store, strategy, config, observer, resumed=True)


def _run(
    store: RunStore, strategy: Strategy, config: RunConfig, observer: SearchObserver | None, resumed: bool
) -> RunStore:
    on_epoch = observer.epoch if observer is not None else None
    executor = _executor(config, store.run_dir, on_epoch)
    driver = Driver(store, strategy, executor, config, CHECKPOINT_FILES, observer)
    if observer is not None:
        observer.started(store, strategy, resumed)
    try:
        driver.run()
    except GenomorphError:
        executor.close()
        store.set("status", "failed", event="failed")
        raise
    except SearchInterrupted:
        raise
    except BaseException:
        executor.close()
        raise
    return store


__all__ = ["CHECKPOINT_FILES", "prepare_setup", "resume_search", "start_search"]

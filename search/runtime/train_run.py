"""``genomorph train FILE --out RUN_DIR``: one training as a run of the run store.

The training is the single candidate of the ``train`` strategy (`strategies.train_once`), so
it is stored, checkpointed every epoch, resumable (``genomorph resume RUN_DIR``, or the same
``train`` command again) and reportable like any search. Running the command again on a run
directory that holds a *different* training is refused rather than mixing the two.
"""

from __future__ import annotations

from pathlib import Path

from genomorph.ir import ConfigError
from genomorph.search.core.config import DataConfig, TrainConfig
from genomorph.search.core.driver import RunConfig, SearchObserver
from genomorph.search.core.protocol import Budget
from genomorph.search.core.store import DB_NAME, RunStore
from genomorph.search.runtime.run import prepare_setup, resume_search, start_search


def training_run_config(
    genome: str, data: DataConfig, train: TrainConfig, budget: Budget, seed: int, threads: int | None = None
) -> RunConfig:
    """The `RunConfig` of one training (the ``train`` strategy with one candidate)."""
    from genomorph.search.strategies.train_once import TrainOnceConfig

    options = TrainOnceConfig(genome=genome, budget=budget, seed=seed)
    return RunConfig(
        strategy="train",
        strategy_config=options.model_dump(mode="json"),
        setup=prepare_setup(data, seed=seed, start_genome=genome, epochs=budget.epochs),
        data=data,
        train=train,
        executor="inprocess",
        workers=1,
    )


def _same_training(stored: RunConfig, wanted: RunConfig) -> bool:
    def key(c: RunConfig) -> tuple[object, ...]:
        return (c.strategy, c.strategy_config, c.data.model_dump(), c.train.model_dump())

    return key(RunConfig.model_validate(stored.model_dump(mode="json"))) == key(
        RunConfig.model_validate(wanted.model_dump(mode="json"))
    )


def is_run_dir(path: Path) -> bool:
    return (path / DB_NAME).is_file()


def run_training(config: RunConfig, run_dir: str | Path, observer: SearchObserver | None = None) -> RunStore:
    """Start the training in ``run_dir``, or continue it when ``run_dir`` already holds it."""
    root = Path(run_dir)
    if not is_run_dir(root):
        return start_search(config, root, observer)
    store = RunStore.open(root)
    try:
        stored = RunConfig.model_validate(store.get("config"))
    finally:
        store.close()
    if not _same_training(stored, config):
        what = "a different training" if stored.strategy == "train" else f"a '{stored.strategy}' search"
        raise ConfigError(
            f"{root} holds {what}, not this one (genome, data, trainer flags, epochs or seed differ)",
            hint="give the same genome, data and trainer flags to continue it, or choose another --out",
        )
    return resume_search(root, observer)


__all__ = ["is_run_dir", "run_training", "training_run_config"]

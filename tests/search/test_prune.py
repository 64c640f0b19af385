"""Weight files nobody needs any more are deleted as a run goes, so its directory stays bounded."""

from __future__ import annotations

from pathlib import Path

from genomorph.search.core.config import DataConfig, TrainConfig
from genomorph.search.core.driver import RunConfig
from genomorph.search.runtime.run import prepare_setup, start_search
from search_helpers import CHAIN, TINY


def _config(strategy: str, options: dict) -> RunConfig:
    data = DataConfig(name="digits")
    return RunConfig(
        strategy=strategy,
        strategy_config=options,
        setup=prepare_setup(data, seed=4),
        data=data,
        train=TrainConfig(threads=1),
    )


def test_nash_keeps_only_the_parent_the_best_and_the_answer(tmp_path: Path) -> None:
    options = {"steps": 2, "children": 3, "epochs": 1, "start_epochs": 1, "final_epochs": 1}
    store = start_search(_config("nash", options), tmp_path / "run")
    candidates = store.candidates()
    assert len(candidates) == 1 + 2 * 3 + 1 and all(c.status == "finished" for c in candidates)
    kept = {c.id for c in candidates if c.checkpoint is not None}
    on_disk = {int(p.name[1:6]) for p in (tmp_path / "run" / "checkpoints").glob("c?????.pt")}
    assert kept == on_disk, "rows and files disagree"
    answer = store.get("result_candidate")
    best = max(candidates[:-1], key=lambda c: (c.metrics.objective, -c.id))
    assert answer in kept and best.id in kept
    # the winner's parent chain is not kept: most of the run's weight files are gone
    assert len(kept) <= 4 < len(candidates)
    for c in candidates:
        if c.checkpoint is None:
            assert not (tmp_path / "run" / "checkpoints" / f"c{c.id:05d}.init.pt").exists()


def test_a_strategy_that_does_not_say_keeps_everything(tmp_path: Path) -> None:
    store = start_search(_config(CHAIN, {"genomes": [TINY], "rounds": 2}), tmp_path / "run")
    candidates = store.candidates()
    assert candidates and all(
        c.checkpoint and (tmp_path / "run" / c.checkpoint).is_file() for c in candidates
    )

"""``--nproc N`` of ``search`` and ``resume``, and the ranks above 0 of a torchrun launch.

``genomorph search --strategy darts --nproc 2 ...`` spawns one follower process and trains the
supernet data-parallel (`genomorph.search.runtime.distributed`); ``torchrun --nproc_per_node 2
$(which genomorph) search --strategy darts ...`` starts every rank itself: rank 0 runs the
search, the others only follow it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import click

#: strategies whose candidates train data-parallel (their recipes are `distributed.RECIPES`)
STRATEGIES = ("darts", "hyperdarts")

NPROC_HELP = (
    "darts/hyperdarts: train the supernet data-parallel over N processes with torch.distributed "
    "(gloo on CPU, nccl on CUDA); each batch of --set batch_size is split over them. "
    "Under torchrun leave it at 1."
)


def nproc_option(func: Any) -> Any:
    return click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True, help=NPROC_HELP)(
        func
    )


def follow_if_torchrun_rank() -> bool:
    """Under torchrun, a rank above 0 follows rank 0 here and the command ends; False elsewhere.

    It needs nothing of the command line: rank 0 sends the backend and every candidate."""
    from genomorph.search.runtime.distributed import follow_from_env, torchrun_rank

    rank = torchrun_rank()
    if rank is None or rank == 0:
        return False
    code = follow_from_env()
    if code:
        raise click.exceptions.Exit(code)
    return True


def data_parallel(
    nproc: int, device: str, strategy: str, workers: int = 1, executor: str = "local"
) -> AbstractContextManager[Any]:
    """The data-parallel world a search runs in (nothing for ``--nproc 1`` outside torchrun)."""
    from genomorph.search.runtime.distributed import launch, torchrun_rank

    under_torchrun = torchrun_rank() is not None
    if nproc == 1 and not under_torchrun:
        return nullcontext()
    if under_torchrun and nproc > 1:
        raise click.BadParameter(
            "torchrun started the processes already: leave --nproc out", param_hint="--nproc"
        )
    if strategy not in STRATEGIES:
        raise click.BadParameter(
            f"data-parallel training is for the supernet searches ({', '.join(STRATEGIES)}), "
            f"not --strategy {strategy}",
            param_hint="--nproc",
        )
    if workers > 1 or executor != "local":
        raise click.BadParameter(
            "the data-parallel search runs with one local worker: drop --workers / --executor",
            param_hint="--nproc",
        )
    return launch(None if under_torchrun else nproc, device)


def resume_data_parallel(nproc: int, run_dir: Path) -> AbstractContextManager[Any]:
    """`data_parallel` for ``genomorph resume``, with the strategy and device the run was started with."""
    from genomorph.search.runtime.distributed import torchrun_rank

    if nproc == 1 and torchrun_rank() is None:
        return nullcontext()
    from genomorph.search.core.store import RunStore

    if not (run_dir / "run.db").is_file():
        raise click.BadParameter(f"{run_dir} holds no search to resume", param_hint="RUN_DIR")
    config = RunStore.open(run_dir).get("config")
    train = config.get("train", {})
    return data_parallel(nproc, train.get("device", "cpu"), config["strategy"], config.get("workers", 1))


__all__ = ["STRATEGIES", "data_parallel", "follow_if_torchrun_rank", "nproc_option", "resume_data_parallel"]

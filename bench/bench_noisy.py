"""Benchmark of Noisy Heuristics NAS (issue 10): where the time of one iteration goes.

Runs the noisy strategy in this process (in-process executor, the run's defaults unless given)
and splits every iteration's wall time into

- growth:     placing and adding units (strategy side: rewrites, canonical text);
- training:   the train candidate's and the decay fine-tune's training epochs (``train_s``);
- statistics: A and B per unit after training (the worker's importance collection);
- shrink:     choosing the units to prune and their outgoing weights (strategy side);
- rewrite:    pruning, removing and nesting layers, canonical text (strategy side);
- other:      everything else, itself split into the worker's setup and saving (parse, lowering,
              checkpoint files, the recipe's training-split measure: ``setup_s`` less statistics),
              its evaluation (validation after training, test: ``eval_s``) and the rest (the
              driver, the store, proposal weight files, the strategy outside the phases above).

Candidates per iteration are shown too: three (train, shrink, save), two when nothing is pruned.

It prints one line per phase per dataset, the share outside training (target ≤ 10 %) and,
with ``--json``, one JSON object.

    python bench/bench_noisy.py                         # spirals and digits, default runs
    python bench/bench_noisy.py --dataset spirals --iterations 4
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

PHASES = ("growth", "training", "statistics", "shrink", "rewrite", "other")


def _timed(spent: dict[str, float], phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[phase] += time.perf_counter() - started

    return run


def measure(dataset: str, iterations: int | None, what_if: bool = False) -> dict[str, Any]:
    """One run's split; ``what_if`` measures the same run without epoch checkpoints (the noisy
    candidates validate once, after training, in either run: ``noisy.VALIDATE_EVERY``)."""
    import genomorph.search.runtime.evaluate as evaluate
    from genomorph.search.core.config import DataConfig, TrainConfig
    from genomorph.search.core.driver import RunConfig
    from genomorph.search.runtime.run import prepare_setup, start_search
    from genomorph.search.strategies.noisy import Noisy

    spent: dict[str, float] = defaultdict(float)
    # time the phases where they run: strategy methods and the worker's importance collection
    originals = {name: getattr(Noisy, name) for name in ("_grow", "_shrink", "_save")}
    collect = evaluate.collect_importance
    Noisy._grow = _timed(spent, "growth", originals["_grow"])  # type: ignore[method-assign]
    Noisy._shrink = _timed(spent, "shrink", originals["_shrink"])  # type: ignore[method-assign]
    Noisy._save = _timed(spent, "rewrite", originals["_save"])  # type: ignore[method-assign]
    evaluate.collect_importance = _timed(spent, "statistics", collect)  # type: ignore[assignment]
    from genomorph.search.runtime.checkpoint import EpochCheckpoint

    save = EpochCheckpoint.save
    if what_if:
        EpochCheckpoint.save = lambda self, state: None  # type: ignore[method-assign,assignment]
    try:
        data = DataConfig(name=dataset)  # type: ignore[arg-type]
        options = {"iterations": iterations} if iterations else {}
        config = RunConfig(
            strategy="noisy",
            strategy_config=options,
            setup=prepare_setup(data),
            data=data,
            train=TrainConfig(),
        )
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            store = start_search(config, Path(tmp) / "run")
            wall = time.perf_counter() - started
            candidates = store.candidates()
            rows = store.strategy_state()["records"]
    finally:
        for name, function in originals.items():
            setattr(Noisy, name, function)
        evaluate.collect_importance = collect
        EpochCheckpoint.save = save  # type: ignore[method-assign]
    spent["training"] = sum(c.train_s or 0.0 for c in candidates)
    spent["other"] = wall - sum(spent[p] for p in PHASES if p != "other")
    worker_setup = sum(c.setup_s or 0.0 for c in candidates) - spent["statistics"]
    worker_eval = sum(c.eval_s or 0.0 for c in candidates)
    other = {
        "worker setup and saving": worker_setup,
        "worker evaluation": worker_eval,
        "driver, store, strategy rest": spent["other"] - worker_setup - worker_eval,
    }
    n = max(len(rows), 1)
    best = max(rows, key=lambda r: (r["objective"], r["train_accuracy"] or 0.0)) if rows else {}
    return {
        "dataset": dataset + (" (what-if: no epoch checkpoints)" if what_if else ""),
        "iterations": len(rows),
        "wall_s": round(wall, 3),
        "candidates_per_iteration": round(len(candidates) / n, 2),
        "per_iteration_s": {p: round(spent[p] / n, 4) for p in PHASES},
        "other_per_iteration_s": {k: round(v / n, 4) for k, v in other.items()},
        "share": {p: round(spent[p] / wall, 4) for p in PHASES},
        "outside_training": round(1.0 - spent["training"] / wall, 4),
        "best": {k: best.get(k) for k in ("iteration", "params", "train_accuracy", "val_accuracy")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", action="append", choices=["spirals", "regression2d", "digits"])
    parser.add_argument("--iterations", type=int, help="iterations per run (default: the dataset's)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--what-if", action="store_true", help="also run without epoch checkpoints")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    # a one-iteration warm-up run: imports (scipy, matplotlib-free), dataset caches and first-call
    # costs belong to the process, not to an iteration
    measure("spirals", 1)
    results = []
    for name in args.dataset or ["spirals", "digits"]:
        results.append(measure(name, args.iterations))
        if args.what_if:
            results.append(measure(name, args.iterations, what_if=True))
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return
    for r in results:
        print(
            f"{r['dataset']}: {r['iterations']} iterations ({r['candidates_per_iteration']} candidates each),"
            f" {r['wall_s']:.1f} s wall, best {r['best']}"
        )
        for phase in PHASES:
            print(
                f"  {phase:<11} {r['per_iteration_s'][phase]:8.3f} s/iteration  {100 * r['share'][phase]:5.1f} %"
            )
        for part, seconds in r["other_per_iteration_s"].items():
            share = 100 * seconds * r["iterations"] / r["wall_s"]
            print(f"    {part:<29} {seconds:8.3f} s/iteration  {share:5.1f} %")
        print(f"  outside training: {100 * r['outside_training']:.1f} % (target <= 10 %)")


if __name__ == "__main__":
    main()

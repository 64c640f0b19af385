"""Benchmark of Noisy Heuristics NAS (issue 10): where the time of one iteration goes.

Runs the noisy strategy in this process (in-process executor, the run's defaults unless given)
and splits every iteration's wall time into

- growth:     placing and adding units (strategy side: rewrites, canonical text);
- training:   the train candidate's and the decay fine-tune's training epochs (``train_s``: the
              loop's forward, backward and optimizer steps, nothing between the epochs);
- statistics: A and B per unit after training (the worker's importance collection);
- shrink:     choosing the units to prune and their outgoing weights (strategy side);
- rewrite:    pruning, removing and nesting layers, canonical text, recording the iteration
              (strategy side; the save is folded into the shrink candidate when exact);
- other:      everything else, itself split into the worker's setup and saving (parse, lowering,
              checkpoint files, the recipe's training-split measure: ``setup_s`` less statistics),
              its evaluation (validation after training, test: ``eval_s``), the flattening test
              between epochs (the fit of y = exp(a x)(1 - x)), the epoch checkpoints' snapshots
              and hand-over to the writer thread, and the rest (the driver, the store, proposal
              weight files, the strategy outside the phases above, the loop between epochs).

All of it is wall time measured where it is spent, over the run's *iterations*: from the start
of the first growth to the start of the answer's proposal (the time the issue's target is
about: "time per iteration"); the shares add up to 100 % of that. The run's start (the run
store, the strategy and its start network) and its end (the answer's readable genome, its test
evaluation, the run's last records) belong to no iteration: they are reported apart, with the
share outside training over the whole run beside the per-iteration one.
Candidates per iteration are shown too: two (train, shrink: the save folded into the shrink),
three where an untrained ``save`` evaluation is needed (nothing pruned, or a rewrite that may
change the function), plus the final test evaluation.

Each dataset runs ``--repeats`` times (3; the machine is shared and noisy); the run with the
median share outside training is shown, with every run's share. It prints one line per phase
per dataset, the share outside training (target ≤ 10 %) and, with ``--json``, one JSON object.

    python bench/bench_noisy.py                         # spirals and digits, 3 default runs each
    python bench/bench_noisy.py --dataset spirals --iterations 4 --repeats 1
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
    """``function`` adding its wall time to ``spent[phase]``; a call inside another call of the same
    wrapper (a recursive ``_clone``) is not counted twice."""
    depth = [0]

    def run(*args: Any, **kwargs: Any) -> Any:
        depth[0] += 1
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                spent[phase] += time.perf_counter() - started

    return run


def measure(dataset: str, iterations: int | None, what_if: bool = False) -> dict[str, Any]:
    """One run's split; ``what_if`` measures the same run without epoch checkpoints (the noisy
    candidates validate once, after training, in either run: ``noisy.VALIDATE_EVERY``)."""
    import genomorph.search.runtime.evaluate as evaluate
    import genomorph.search.runtime.loop as loop
    from genomorph.search.core.config import DataConfig, TrainConfig
    from genomorph.search.core.driver import RunConfig
    from genomorph.search.runtime.run import prepare_setup, start_search
    from genomorph.search.strategies.noisy import Noisy

    spent: dict[str, float] = defaultdict(float)
    # time the phases where they run: strategy methods and the worker's importance collection
    originals = {name: getattr(Noisy, name) for name in ("_grow", "_shrink", "_save", "_final")}
    collect = evaluate.collect_importance
    # the iterations' window: from the first growth's start to the answer's proposal
    marks: dict[str, float] = {}

    def mark(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            marks.setdefault(name, time.perf_counter())
            return function(*args, **kwargs)

        return run

    grow = _timed(spent, "growth", originals["_grow"])
    Noisy._grow = mark("first growth", grow)  # type: ignore[method-assign]
    Noisy._final = mark("answer", originals["_final"])  # type: ignore[method-assign]
    Noisy._shrink = _timed(spent, "shrink", originals["_shrink"])  # type: ignore[method-assign]
    Noisy._save = _timed(spent, "rewrite", originals["_save"])  # type: ignore[method-assign]
    evaluate.collect_importance = _timed(spent, "statistics", collect)  # type: ignore[assignment]
    # inside the training loop but outside its epochs (not in train_s): timed apart from the rest
    fit, clone = loop.flatten_exponent, loop._clone
    loop.flatten_exponent = _timed(spent, "flattening test", fit)  # type: ignore[assignment]
    loop._clone = _timed(spent, "epoch checkpoints", clone)  # type: ignore[assignment]
    from genomorph.search.runtime.checkpoint import EpochCheckpoint

    save = EpochCheckpoint.save
    if what_if:
        EpochCheckpoint.save = lambda self, state: None  # type: ignore[method-assign,assignment]
    else:
        EpochCheckpoint.save = _timed(spent, "epoch checkpoints", save)  # type: ignore[method-assign]
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
        loop.flatten_exponent, loop._clone = fit, clone  # type: ignore[assignment]
        EpochCheckpoint.save = save  # type: ignore[method-assign]
    # every phase above ran inside the window (the answer's candidate trains no epoch)
    window = marks["answer"] - marks["first growth"]
    spent["training"] = sum(c.train_s or 0.0 for c in candidates)
    spent["other"] = window - sum(spent[p] for p in PHASES if p != "other")
    # the answer's candidate is evaluated after the window: its setup and test evaluation are not in it
    inside = [c for c in candidates if c.request.meta.get("role") != "final"]
    worker_setup = sum(c.setup_s or 0.0 for c in inside) - spent["statistics"]
    worker_eval = sum(c.eval_s or 0.0 for c in inside)
    between = spent["flattening test"] + spent["epoch checkpoints"]
    other = {
        "worker setup and saving": worker_setup,
        "worker evaluation": worker_eval,
        "flattening test": spent["flattening test"],
        "epoch checkpoints": spent["epoch checkpoints"],
        "driver, store, strategy rest": spent["other"] - worker_setup - worker_eval - between,
    }
    n = max(len(rows), 1)
    roles = [str(c.request.meta.get("role")) for c in candidates]
    best = max(rows, key=lambda r: (r["objective"], r["train_accuracy"] or 0.0)) if rows else {}
    return {
        "dataset": dataset + (" (what-if: no epoch checkpoints)" if what_if else ""),
        "iterations": len(rows),
        "wall_s": round(wall, 3),
        "iterations_s": round(window, 3),
        "run_start_s": round(marks["first growth"] - started, 4),
        "run_end_s": round(started + wall - marks["answer"], 4),
        "candidates_per_iteration": round(sum(r != "final" for r in roles) / n, 2),
        "save_candidates": roles.count("save"),
        "per_iteration_s": {p: round(spent[p] / n, 4) for p in PHASES},
        "other_per_iteration_s": {k: round(v / n, 4) for k, v in other.items()},
        "share": {p: round(spent[p] / window, 4) for p in PHASES},
        "outside_training": round(1.0 - spent["training"] / window, 4),
        "outside_training_whole_run": round(1.0 - spent["training"] / wall, 4),
        "best": {k: best.get(k) for k in ("iteration", "params", "train_accuracy", "val_accuracy")},
    }


def _share(result: dict[str, Any]) -> float:
    return float(result["outside_training"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", action="append", choices=["spirals", "regression2d", "digits"])
    parser.add_argument("--iterations", type=int, help="iterations per run (default: the dataset's)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--what-if", action="store_true", help="also run without epoch checkpoints")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per dataset; the one with the median share is shown"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    # a one-iteration warm-up run: imports (scipy, matplotlib-free), dataset caches and first-call
    # costs belong to the process, not to an iteration
    measure("spirals", 1)
    results = []
    for name in args.dataset or ["spirals", "digits"]:
        runs = sorted((measure(name, args.iterations) for _ in range(max(1, args.repeats))), key=_share)
        median = dict(runs[len(runs) // 2])
        median["runs_outside_training"] = [r["outside_training"] for r in runs]
        results.append(median)
        if args.what_if:
            results.append(measure(name, args.iterations, what_if=True))
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return
    for r in results:
        print(
            f"{r['dataset']}: {r['iterations']} iterations ({r['candidates_per_iteration']} candidates each,"
            f" {r['save_candidates']} save candidates in all), {r['iterations_s']:.2f} s of iterations"
            f" in {r['wall_s']:.2f} s wall, best {r['best']}"
        )
        for phase in PHASES:
            print(
                f"  {phase:<11} {r['per_iteration_s'][phase]:8.3f} s/iteration  {100 * r['share'][phase]:5.1f} %"
            )
        for part, seconds in r["other_per_iteration_s"].items():
            share = 100 * seconds * r["iterations"] / r["iterations_s"]
            print(f"    {part:<29} {seconds:8.3f} s/iteration  {share:5.1f} %")
        print(f"  outside training, per iteration: {100 * r['outside_training']:.1f} % (target <= 10 %)")
        if len(r.get("runs_outside_training", [])) > 1:
            shares = ", ".join(f"{100 * v:.1f}" for v in r["runs_outside_training"])
            print(f"  (the median of {len(r['runs_outside_training'])} runs: {shares} %)")
        print(
            f"  the whole run: {100 * r['outside_training_whole_run']:.1f} % outside training (also the run's"
            f" start, {r['run_start_s']:.3f} s, and end: the answer's test evaluation, {r['run_end_s']:.3f} s)"
        )
    print("training = the epochs' forward, backward and optimizer steps; everything else is outside it")


if __name__ == "__main__":
    main()

"""Benchmark of the search engine (issues 4 and 7). Prints:

1. For the main job (``genomorph search --strategy nash --dataset digits``), the share of wall
   time NOT spent inside candidate training and evaluation: parsing, rewriting, lowering,
   checkpoints (per-epoch ones included), store writes, scheduling, process start-up and the
   report. Target: <= 5 %.
2. The speed-up of ``--workers 2`` over in-process on a nash search with 8 children per step.
3. (``--part checkpoint``) The cost of per-epoch checkpoints as a share of an epoch, measured
   side by side with the same training without them: on ``resnet18_cifar`` (synthetic
   CIFAR-shaped data, a few batches per "epoch", the share then scaled to a real 45 000-image
   epoch; target <= 2 %) and on the digits main job's start network (target <= 3 %). Three
   numbers each: the time the training thread spends on the checkpoint (snapshot + hand-over +
   waiting for the previous write), and the difference of the whole training with and without
   checkpoints in wall time and in process CPU time (all threads: the background writer's
   pickling included; far less noisy than wall time on a busy machine).

Both searches run as a user runs them, through the ``genomorph`` command in a subprocess; the
time inside training/evaluation is the sum of the candidates' ``train_s + eval_s`` from the run
store.

    python bench/bench_search.py                 # both parts (about 5 minutes on 2 cores)
    python bench/bench_search.py --part overhead
    python bench/bench_search.py --part speedup --steps 1 --epochs 2
    python bench/bench_search.py --part checkpoint --batches 4
    python bench/bench_search.py --json          # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GENOMORPH = [sys.executable, "-m", "genomorph.cli.main"]


def _run(args: list[str], out: Path) -> float:
    """Run ``genomorph ARGS --out OUT`` and return its wall time in seconds."""
    started = time.perf_counter()
    done = subprocess.run([*GENOMORPH, *args, "--out", str(out)], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"genomorph {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return wall


def _times(run: Path) -> dict[str, float]:
    db = sqlite3.connect(run / "run.db")
    train, evaluate, setup, count = db.execute(
        "SELECT SUM(train_s), SUM(eval_s), SUM(setup_s), COUNT(*) FROM candidates"
    ).fetchone()
    elapsed = json.loads(db.execute("SELECT value FROM run WHERE key = 'elapsed_s'").fetchone()[0])
    db.close()
    return {
        "train_s": train or 0.0,
        "eval_s": evaluate or 0.0,
        "setup_s": setup or 0.0,
        "run_s": elapsed,
        "n": count,
    }


def overhead(workdir: Path, extra: list[str]) -> dict[str, float]:
    run = workdir / "main-job"
    wall = _run(["search", "--strategy", "nash", "--dataset", "digits", *extra], run)
    t = _times(run)
    inside = t["train_s"] + t["eval_s"]
    summary = json.loads((run / "summary.json").read_text())
    return {
        "wall_s": wall,
        "run_s": t["run_s"],
        "inside_s": inside,
        "worker_setup_s": t["setup_s"],
        "candidates": t["n"],
        "overhead_share": (wall - inside) / wall,
        "overhead_share_of_run": (t["run_s"] - inside) / t["run_s"],
        "test_accuracy": summary["test_accuracy"],
    }


def speedup(workdir: Path, steps: int, epochs: int) -> dict[str, float]:
    common = [
        "search",
        "--strategy",
        "nash",
        "--dataset",
        "digits",
        "--set",
        "children=8",
        "--set",
        f"steps={steps}",
        "--set",
        f"epochs={epochs}",
        "--set",
        "start_epochs=2",
        "--set",
        "final_epochs=1",
    ]
    serial = _run(common, workdir / "inprocess")
    parallel = _run([*common, "--workers", "2"], workdir / "workers2")
    same = _times(workdir / "inprocess")["n"] == _times(workdir / "workers2")["n"]
    return {
        "inprocess_s": serial,
        "workers2_s": parallel,
        "speedup": serial / parallel,
        "same_candidates": same,
    }


def _timed_training(genome: str, data, epochs: int, batch: int, directory: Path | None) -> dict[str, float]:
    """Train ``genome`` in-process as the worker does, with or without per-epoch checkpoints."""
    import torch
    from genomorph.grammar import parse
    from genomorph.lower import lower
    from genomorph.search.core.config import TrainConfig
    from genomorph.search.runtime.checkpoint import EpochCheckpoint
    from genomorph.search.runtime.loop import run_epochs
    from genomorph.search.runtime.steps import TrainContext
    from genomorph.search.runtime.weight_step import WeightStep

    torch.manual_seed(0)
    module = lower(parse(genome))
    config = TrainConfig(epochs=epochs, batch_size=batch, eval_every=0)
    ctx = TrainContext(module, data, config, torch.device("cpu"), 0, {"train": data.train})
    files = EpochCheckpoint(directory / "c00000.epoch.pt", "bench") if directory is not None else None
    started, cpu = time.perf_counter(), time.process_time()
    report = run_epochs(ctx, [WeightStep(ctx)], validate=False, checkpoints=files)
    wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "cpu_s": time.process_time() - cpu,
        "train_s": report.train_s,
        "checkpoint_s": report.checkpoint_s,
        "write_s": files.write_s if files is not None else 0.0,
        "writes": files.writes if files is not None else 0,
        "bytes": (directory / "c00000.epoch.pt").stat().st_size if files is not None else 0,
    }


def _side_by_side(genome: str, data, epochs: int, batch: int, work: Path, rounds: int) -> dict[str, float]:
    """Alternate runs without and with checkpoints; medians of each."""
    import statistics

    plain, saved = [], []
    for i in range(rounds):
        plain.append(_timed_training(genome, data, epochs, batch, None))
        directory = work / f"ckpt-{i}"
        directory.mkdir(parents=True, exist_ok=True)
        saved.append(_timed_training(genome, data, epochs, batch, directory))
    median = statistics.median
    epoch_s = median(r["train_s"] for r in plain) / epochs
    per_ckpt = median(r["checkpoint_s"] / max(r["writes"], 1) for r in saved)
    per = max(epochs - 1, 1)  # epochs that write a checkpoint
    extra_wall = (median(r["wall_s"] for r in saved) - median(r["wall_s"] for r in plain)) / per
    extra_cpu = (median(r["cpu_s"] for r in saved) - median(r["cpu_s"] for r in plain)) / per
    return {
        "epoch_s": epoch_s,
        "checkpoint_foreground_s": per_ckpt,
        "checkpoint_write_s": median(r["write_s"] / max(r["writes"], 1) for r in saved),
        "checkpoint_mb": saved[0]["bytes"] / 1e6,
        "wall_extra_per_epoch_s": extra_wall,
        "cpu_extra_per_epoch_s": extra_cpu,
        "epoch_cpu_s": median(r["cpu_s"] for r in plain) / epochs,
    }


def checkpoint_cost(work: Path, batches: int, rounds: int, models: list[str]) -> dict[str, object]:
    import torch
    from genomorph.search.core.config import DataConfig
    from genomorph.search.core.protocol import DatasetInfo
    from genomorph.search.runtime.data import Dataset, Split, cached_dataset

    out: dict[str, object] = {}
    if "digits" in models:
        torch.set_num_threads(1)  # as the main job's workers run on digits
        digits = cached_dataset(DataConfig(name="digits"))
        d = _side_by_side(_nash_start_genome(digits.info), digits, 6, 64, work / "digits", rounds)
        d["share_foreground"] = d["checkpoint_foreground_s"] / d["epoch_s"]
        d["share_wall"] = d["wall_extra_per_epoch_s"] / d["epoch_s"]
        d["share_cpu"] = d["cpu_extra_per_epoch_s"] / d["epoch_cpu_s"]
        out["digits_main_job"] = d
    if "resnet" not in models:
        return out
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    batch = 64
    n = batches * batch
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    empty = Split(x[:0], y[:0])
    info = DatasetInfo(
        name="synthetic-cifar", task="classification", input_shape=(3, 32, 32), num_outputs=10,
        train_size=n, val_size=0, test_size=0,
    )  # fmt: skip
    cifar = Dataset(info, Split(x, y), empty, empty, 255.0, torch.zeros(3, 1, 1), torch.ones(3, 1, 1))
    resnet = (Path(__file__).parent.parent / "examples" / "resnet18_cifar.genome").read_text()
    r = _side_by_side(resnet, cifar, 3, batch, work / "resnet", rounds)
    full_epoch_batches = 45_000 // batch
    r["batches_measured"] = batches
    r["full_epoch_s"] = r["epoch_s"] * full_epoch_batches / batches
    r["share_foreground"] = r["checkpoint_foreground_s"] / r["full_epoch_s"]
    r["share_wall"] = r["wall_extra_per_epoch_s"] / r["full_epoch_s"]
    r["share_cpu"] = r["cpu_extra_per_epoch_s"] / (r["epoch_cpu_s"] * full_epoch_batches / batches)
    r["share_foreground_of_measured"] = r["checkpoint_foreground_s"] / r["epoch_s"]
    out["resnet18_cifar"] = r
    return out


def _nash_start_genome(info) -> str:
    """The start network the digits main job (``search --strategy nash``) trains first."""
    from genomorph.search.core.config import DataConfig, TrainConfig
    from genomorph.search.core.driver import RunConfig, build_strategy
    from genomorph.search.core.protocol import SearchSetup

    setup = SearchSetup(seed=0, dataset=info)
    config = RunConfig(strategy="nash", setup=setup, data=DataConfig(), train=TrainConfig())
    strategy = build_strategy(config)

    class _Ctx:
        slots, wrap_up = 1, False

        def load_weights(self, checkpoint):  # noqa: ANN001, ANN202 - never called for N0
            raise AssertionError

        def read_input(self, key, path):  # noqa: ANN001, ANN202
            return None

    return strategy.propose(_Ctx())[0].request.genome


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--part", choices=["overhead", "speedup", "checkpoint", "both", "all"], default="both"
    )
    parser.add_argument(
        "--batches", type=int, default=4, help="batches per resnet18 'epoch' (checkpoint part)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="side-by-side repetitions (checkpoint part)")
    parser.add_argument(
        "--models", default="resnet,digits", help="checkpoint part: resnet and/or digits, comma-separated"
    )
    parser.add_argument("--steps", type=int, default=2, help="nash steps of the speed-up search")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per child of the speed-up search")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("extra", nargs="*", help="more flags for the main job (after --)")
    args = parser.parse_args()
    result: dict[str, object] = {"cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        work = Path(tmp)
        if args.part in ("overhead", "both", "all"):
            result["overhead"] = overhead(work, args.extra)
        if args.part in ("speedup", "both", "all"):
            result["speedup"] = speedup(work, args.steps, args.epochs)
        if args.part in ("checkpoint", "all"):
            result["checkpoint"] = checkpoint_cost(work, args.batches, args.rounds, args.models.split(","))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    if "overhead" in result:
        o = result["overhead"]
        print(
            f"main job (nash on digits): wall {o['wall_s']:.1f} s, inside training/evaluation {o['inside_s']:.1f} s"
            f" over {o['candidates']} candidates, test accuracy {o['test_accuracy']:.4f}"
        )
        print(
            f"  share of wall time outside training/evaluation: {100 * o['overhead_share']:.2f} %"
            f" (target <= 5 %; {100 * o['overhead_share_of_run']:.2f} % without process start-up and report)"
        )
    if "speedup" in result:
        s = result["speedup"]
        print(
            f"nash, 8 children per step: in-process {s['inprocess_s']:.1f} s, --workers 2 {s['workers2_s']:.1f} s"
        )
        print(f"  speed-up of --workers 2 over in-process: {s['speedup']:.2f}x")
    if "checkpoint" in result:
        c = result["checkpoint"]
    if "checkpoint" in result and "resnet18_cifar" in c:
        r = c["resnet18_cifar"]
        print(
            f"per-epoch checkpoint, resnet18_cifar ({r['checkpoint_mb']:.0f} MB): {1000 * r['checkpoint_foreground_s']:.0f} ms"
            f" in the training thread, {1000 * r['checkpoint_write_s']:.0f} ms written in the background;"
            f" epoch of {r['batches_measured']} synthetic batches {r['epoch_s']:.2f} s -> full CIFAR epoch"
            f" ~{r['full_epoch_s']:.0f} s"
        )
        print(
            f"  share of an epoch: {100 * r['share_foreground']:.3f} % (training thread),"
            f" {100 * r['share_wall']:.3f} % (wall, side by side), {100 * r['share_cpu']:.3f} % (CPU time, all"
            f" threads, side by side) (target <= 2 %;"
            f" {100 * r['share_foreground_of_measured']:.1f} % of the {r['batches_measured']}-batch epoch)"
        )
    if "checkpoint" in result and "digits_main_job" in c:
        d = c["digits_main_job"]
        print(
            f"per-epoch checkpoint, digits main job start network ({1000 * d['checkpoint_mb']:.0f} kB):"
            f" {1000 * d['checkpoint_foreground_s']:.2f} ms in the training thread,"
            f" {1000 * d['checkpoint_write_s']:.1f} ms written in the background; epoch {1000 * d['epoch_s']:.0f} ms"
        )
        print(
            f"  share of an epoch: {100 * d['share_foreground']:.2f} % (training thread),"
            f" {100 * d['share_wall']:.2f} % (wall, side by side), {100 * d['share_cpu']:.2f} % (CPU time, all"
            f" threads, side by side) (target <= 3 %)"
        )


if __name__ == "__main__":
    main()

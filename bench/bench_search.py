"""Benchmark of the search engine (issue 4, point 8). Prints two numbers:

1. For the main job (``genomorph search --strategy nash --dataset digits``), the share of wall
   time NOT spent inside candidate training and evaluation: parsing, rewriting, lowering,
   checkpoints, store writes, scheduling, process start-up and the report. Target: <= 5 %.
2. The speed-up of ``--workers 2`` over in-process on a nash search with 8 children per step.

Both searches run as a user runs them, through the ``genomorph`` command in a subprocess; the
time inside training/evaluation is the sum of the candidates' ``train_s + eval_s`` from the run
store.

    python bench/bench_search.py                 # both parts (about 5 minutes on 2 cores)
    python bench/bench_search.py --part overhead
    python bench/bench_search.py --part speedup --steps 1 --epochs 2
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["overhead", "speedup", "both"], default="both")
    parser.add_argument("--steps", type=int, default=2, help="nash steps of the speed-up search")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per child of the speed-up search")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("extra", nargs="*", help="more flags for the main job (after --)")
    args = parser.parse_args()
    result: dict[str, object] = {"cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        work = Path(tmp)
        if args.part in ("overhead", "both"):
            result["overhead"] = overhead(work, args.extra)
        if args.part in ("speedup", "both"):
            result["speedup"] = speedup(work, args.steps, args.epochs)
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


if __name__ == "__main__":
    main()

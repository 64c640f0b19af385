"""Small-scale reproduction of papers 001 and 002 on digits (issue 9). Prints three tables:

1. **SH vs NASH at equal training budget**, 3 seeds each: mean ± std of the final network's test
   accuracy and parameters (paper 001, Table 2: SH gives smaller models with less variance at
   about the same accuracy). Budgets: NASH with 8 children × 4 epochs per step = 32
   child-epochs; SH with 8 children and b = 24 (rungs 8×1, 4×2, 2×4, then the winner 8) = 32
   child-epochs per step. The table prints the child-epochs each run actually trained.
2. **Pareto-NASH vs uniform sampling**, same budget, 3 seeds: the front's hypervolume after
   every generation and the parameter range the final front covers (paper 002, Figure 4).
3. **Proposal throughput**: 1 000 cheap-objective proposals (mutate with 1-3 operators,
   shapes, params and MACs; no training) per second.

Every search runs as a user runs it, through the ``genomorph`` command in a subprocess.

    python bench/bench_sh_pareto.py                       # everything (about 1 hour on 2 cores)
    python bench/bench_sh_pareto.py --part throughput     # seconds
    python bench/bench_sh_pareto.py --part sh --steps 2 --seeds 0 1 2
    python bench/bench_sh_pareto.py --part pareto --generations 4
    python bench/bench_sh_pareto.py --json                # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GENOMORPH = [sys.executable, "-m", "genomorph.cli.main"]


def _search(args: list[str], out: Path) -> dict:
    started = time.perf_counter()
    done = subprocess.run([*GENOMORPH, "search", *args, "--out", str(out)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"genomorph search {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    summary["bench_wall_s"] = time.perf_counter() - started
    db = sqlite3.connect(out / "run.db")
    rows = db.execute("SELECT budget, request FROM candidates").fetchall()
    db.close()
    # child-epochs of the search proper: everything but the start network and the final training
    roles = [(json.loads(b)["epochs"], json.loads(r).get("meta", {}).get("role")) for b, r in rows]
    summary["search_epochs"] = sum(e for e, role in roles if role not in ("start", "final"))
    return summary


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4g} ± {std:.2g}"


def sh_vs_nash(workdir: Path, seeds: list[int], steps: int) -> dict:
    contenders = {
        "nash": ["--strategy", "nash", "--set", "children=8", "--set", "epochs=4", "--set", "ops=5"],
        "sh": ["--strategy", "sh", "--set", "children=8", "--set", "step_epochs=24", "--set", "ops=5"],
    }
    results: dict[str, list[dict]] = {name: [] for name in contenders}
    for seed in seeds:
        for name, args in contenders.items():  # alternate the two, seed by seed
            out = workdir / f"{name}-{seed}"
            summary = _search(
                [*args, "--dataset", "digits", "--budget", str(steps), "--seed", str(seed)], out
            )
            results[name].append(summary)
            print(f"  {name} seed {seed}: test {summary['test_accuracy']:.4f}, {summary['params']:,} params, "
                  f"{summary['search_epochs']} child-epochs, {summary['bench_wall_s']:.0f} s", file=sys.stderr)  # fmt: skip
    table = {}
    for name, runs in results.items():
        table[name] = {
            "test_accuracy": [r["test_accuracy"] for r in runs],
            "params": [r["params"] for r in runs],
            "search_epochs": [r["search_epochs"] for r in runs],
            "wall_s": [round(r["bench_wall_s"], 1) for r in runs],
        }
    return table


def pareto_vs_uniform(workdir: Path, seeds: list[int], generations: int) -> dict:
    table: dict[str, dict] = {}
    for sampling in ("density", "uniform"):
        table[sampling] = {"hypervolume": [], "params_range": [], "front_size": [], "wall_s": []}
    for seed in seeds:
        for sampling in ("density", "uniform"):
            out = workdir / f"pareto-{sampling}-{seed}"
            args = ["--strategy", "pareto-nash", "--set", f"sampling={sampling}", "--dataset", "digits",
                    "--budget", str(generations), "--seed", str(seed)]  # fmt: skip
            summary = _search(args, out)
            front = json.loads((out / "front.json").read_text())
            params = [_member_params(m) for m in _members(front)]
            row = table[sampling]
            row["hypervolume"].append([summary["hypervolume_start"], *summary["hypervolume"]])
            row["params_range"].append([min(params), max(params)])
            row["front_size"].append(len(params))
            row["wall_s"].append(round(summary["bench_wall_s"], 1))
            print(f"  pareto {sampling} seed {seed}: hypervolume {row['hypervolume'][-1]}, params "
                  f"{min(params):,}-{max(params):,}, {summary['bench_wall_s']:.0f} s", file=sys.stderr)  # fmt: skip
    return table


def _members(front: dict | list) -> list[dict]:
    return front["members"] if isinstance(front, dict) else front


def _member_params(member: dict) -> int:
    if "params" in member:
        return int(member["params"])
    return int(round(math.exp(member["objectives"]["log_params"])))


def throughput(count: int) -> dict:
    """Proposals per second: 1-3 random operators on a start network with real weights, then the
    genome text, shapes, params and MACs of the child (what Pareto-NASH does per proposal)."""
    import numpy as np
    from genomorph.grammar import parse
    from genomorph.lower import extract_weights, lower
    from genomorph.search.core.protocol import DatasetInfo, SearchSetup
    from genomorph.search.strategies.pareto_nash import ParetoNash, ParetoNashConfig, Point

    info = DatasetInfo(name="digits", task="classification", input_shape=(1, 8, 8), num_outputs=10,
                       train_size=1149, val_size=288, test_size=360)  # fmt: skip
    strategy = ParetoNash(ParetoNashConfig(), SearchSetup(seed=0, dataset=info))
    parents = []
    for i, text in enumerate(strategy.starts):
        graph = parse(text)
        weights, _ = extract_weights(lower(graph), graph)
        parents.append((Point(id=i, genome=text, checkpoint=f"c{i}.pt", values=(0.5, 0.0)), weights))
    rng = np.random.default_rng(0)
    made = 0
    started = time.perf_counter()
    for index in range(count):
        parent, weights = parents[int(rng.integers(len(parents)))]
        child = strategy.make_child(parent, weights, 1, index)
        if child is not None:
            made += 1
    seconds = time.perf_counter() - started
    return {"proposals": count, "with_a_change": made, "seconds": round(seconds, 2),
            "per_second": round(count / seconds, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["all", "sh", "pareto", "throughput"], default="all")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=3, help="hill-climbing steps of nash and sh")
    parser.add_argument("--generations", type=int, default=8, help="Pareto-NASH generations")
    parser.add_argument("--proposals", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, help="keep the run directories here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if args.part in ("all", "throughput"):
            report["throughput"] = throughput(args.proposals)
        if args.part in ("all", "sh"):
            report["sh_vs_nash"] = sh_vs_nash(workdir, args.seeds, args.steps)
        if args.part in ("all", "pareto"):
            report["pareto_vs_uniform"] = pareto_vs_uniform(workdir, args.seeds, args.generations)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    if "throughput" in report:
        t = report["throughput"]
        print(f"proposal throughput: {t['proposals']} proposals in {t['seconds']} s = {t['per_second']} / s "
              f"({t['with_a_change']} changed their parent)")  # fmt: skip
    if "sh_vs_nash" in report:
        print(f"\nSH vs NASH on digits, {len(args.seeds)} seeds, {args.steps} steps (mean ± std)")
        print(f"{'':6} {'test accuracy':>18} {'params':>22} {'child-epochs':>14} {'wall s':>10}")
        for name, row in report["sh_vs_nash"].items():
            print(f"{name:6} {_mean_std(row['test_accuracy']):>18} {_mean_std(row['params']):>22} "
                  f"{_mean_std(row['search_epochs']):>14} {_mean_std(row['wall_s']):>10}")  # fmt: skip
    if "pareto_vs_uniform" in report:
        print(f"\nPareto-NASH vs uniform sampling on digits, {len(args.seeds)} seeds")
        for sampling, row in report["pareto_vs_uniform"].items():
            curves = row["hypervolume"]
            mean_curve = [
                statistics.mean(v for v in gen if v is not None) for gen in zip(*curves, strict=False)
            ]
            spans = [math.log10(hi / lo) for lo, hi in row["params_range"]]
            print(f"{sampling:8} hypervolume per generation (0 = start): {[round(v, 4) for v in mean_curve]}")
            print(f"{'':8} front params ranges {row['params_range']}, decades covered {_mean_std(spans)}, "
                  f"front sizes {row['front_size']}, wall {_mean_std(row['wall_s'])} s")  # fmt: skip


if __name__ == "__main__":
    main()

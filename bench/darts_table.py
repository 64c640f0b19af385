"""The 3-seed table of issue 8 point 9: DARTS (1st, 2nd order) and hyperDARTS (linear, MLP) on digits.

For every variant and seed, as a user runs it (the CLI, the defaults):

    genomorph search --strategy S [--set ...] --dataset digits --seed SEED --out OUT/V-sSEED
    genomorph train OUT/V-sSEED/best.genome --dataset digits --out OUT/V-sSEED/final

and one row: the found genotype (op counts of the normal and reduction cell; the full text is in
``rows.jsonl``), the search's wall time, its CPU time (user + sys of the search process, read
with ``os.wait4``: on a shared machine the wall time also measures the others' load), the load
average when it finished, peak memory (``summary.json`` ``peak_rss_mb`` of the supernet search)
and the test accuracy of the found network trained from scratch with the default ``train``.

Rows are appended to ``OUT/rows.jsonl`` and ``OUT/table.md`` as they finish, so a partial run
keeps what it measured; running it again skips the (variant, seed) pairs already there.
``--jobs 2`` runs two pairs at a time. Run:

    python bench/darts_table.py --out /tmp/darts_table --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

VARIANTS: dict[str, list[str]] = {
    "DARTS-1st": ["--strategy", "darts", "--set", "order=1"],
    "DARTS-2nd": ["--strategy", "darts", "--set", "order=2"],
    "hyperDARTS-linear": ["--strategy", "hyperdarts", "--set", "hypernet=linear"],
    "hyperDARTS-mlp": ["--strategy", "hyperdarts", "--set", "hypernet=mlp"],
}
SHORT = {"none": "none", "max_pool_3x3": "max", "avg_pool_3x3": "avg", "skip_connect": "skip",
         "sep_conv_3x3": "sep3", "sep_conv_5x5": "sep5", "dil_conv_3x3": "dil3", "dil_conv_5x5": "dil5"}  # fmt: skip
HEADER = (
    "| variant | seed | genotype (normal / reduce) | search wall s | search CPU s | load | peak MB "
    "| test acc | train wall s |\n|---|---|---|---|---|---|---|---|---|\n"
)
_lock = threading.Lock()


def _genomorph() -> str:
    here = Path(sys.executable).parent / "genomorph"
    return str(here) if here.exists() else "genomorph"


def run(args: list[str], log: Path) -> tuple[int, float, float]:
    """Run a command with its output in ``log``; (exit code, wall s, user+sys CPU s of it)."""
    started = time.perf_counter()
    with log.open("w") as out:
        pid = os.posix_spawn(args[0] if "/" in args[0] else _which(args[0]), args, os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                                           (os.POSIX_SPAWN_DUP2, out.fileno(), 2)])  # fmt: skip
        _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def _which(name: str) -> str:
    import shutil

    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not on PATH")
    return found


def counts(genotype: str) -> str:
    from genomorph.grammar.darts import parse_genotype

    g = parse_genotype(genotype)
    parts = []
    for edges in (g.normal, g.reduce):
        n: dict[str, int] = {}
        for op, _ in edges:
            n[op] = n.get(op, 0) + 1
        parts.append(
            " ".join(f"{SHORT.get(k, k)}×{v}" for k, v in sorted(n.items(), key=lambda i: (-i[1], i[0])))
        )
    return " / ".join(parts)


def one(variant: str, seed: int, out: Path) -> dict:
    run_dir = out / f"{variant}-s{seed}"
    if run_dir.exists():
        # left by an interrupted table run (its row was never written): a row times a whole search
        shutil.rmtree(run_dir)
    exe = _genomorph()
    search = [
        exe,
        "search",
        *VARIANTS[variant],
        "--dataset",
        "digits",
        "--seed",
        str(seed),
        "--out",
        str(run_dir),
    ]
    code, wall, cpu = run(search, out / f"{variant}-s{seed}.search.log")
    row: dict = {"variant": variant, "seed": seed, "search_wall_s": round(wall, 1), "search_cpu_s": round(cpu, 1),
                 "load": round(os.getloadavg()[0], 2), "ok": code == 0}  # fmt: skip
    if code == 0:
        summary = json.loads((run_dir / "summary.json").read_text())
        row.update(genotype=summary.get("genotype"), peak_rss_mb=summary.get("peak_rss_mb"),
                   search_s=summary.get("search_s"), search_test_accuracy=summary.get("test_accuracy"))  # fmt: skip
        train = [
            exe,
            "train",
            str(run_dir / "best.genome"),
            "--dataset",
            "digits",
            "--out",
            str(run_dir / "final"),
        ]
        code, wall, cpu = run(train, out / f"{variant}-s{seed}.train.log")
        row.update(train_wall_s=round(wall, 1), train_cpu_s=round(cpu, 1), train_ok=code == 0)
        if code == 0:
            row["test_accuracy"] = json.loads((run_dir / "final" / "summary.json").read_text()).get(
                "test_accuracy"
            )
    _append(out, row)
    return row


def _cell(value: object, fmt: str = "{}") -> str:
    return "-" if value is None else fmt.format(value)


def line(row: dict) -> str:
    genotype = counts(row["genotype"]) if row.get("genotype") else ("search failed" if not row["ok"] else "-")
    acc = row.get("test_accuracy")
    return (
        f"| {row['variant']} | {row['seed']} | {genotype} | {row['search_wall_s']} | {row['search_cpu_s']} "
        f"| {row['load']} | {_cell(row.get('peak_rss_mb'))} | {_cell(acc and 100 * acc, '{:.2f} %')} "
        f"| {_cell(row.get('train_wall_s'))} |"
    )


def _append(out: Path, row: dict) -> None:
    with _lock:
        with (out / "rows.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")
        table = out / "table.md"
        with table.open("a") as f:
            if table.stat().st_size == 0:
                f.write(HEADER)
            f.write(line(row) + "\n")
        print(line(row), flush=True)


def done_rows(out: Path) -> list[dict]:
    path = out / "rows.jsonl"
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("runs/darts_table"))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"from {', '.join(VARIANTS)}")
    parser.add_argument("--jobs", type=int, default=1, help="pairs run at the same time")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    # failed pairs are run again; their old rows stay in rows.jsonl as a record
    have = {(r["variant"], r["seed"]) for r in done_rows(args.out) if r["ok"]}
    todo = [(v, int(s)) for s in args.seeds.split(",") for v in variants if (v, int(s)) not in have]
    print(f"{len(todo)} runs to do ({len(have)} already in {args.out}), {args.jobs} at a time", flush=True)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(lambda vs: one(vs[0], vs[1], args.out), todo))
    rows = sorted(done_rows(args.out), key=lambda r: (list(VARIANTS).index(r["variant"]), r["seed"]))
    print("\n" + HEADER + "\n".join(line(r) for r in rows))
    print("\nfound genotypes:")
    for r in rows:
        print(f"- {r['variant']} seed {r['seed']}: {r.get('genotype')}")


if __name__ == "__main__":
    main()

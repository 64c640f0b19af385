"""sh / shr / shrsep / pareto-nash through the CLI on digits, with real training (tiny budgets).

Checks what only a real run shows: the worker follows SH's one schedule per step (a survivor's
next rung starts where the last stopped) and SHR's restarts (every rung starts at the full
learning rate), the winner's final training has a test score, approximate Pareto-NASH children
come back repaired with their distances, the report writes the front, the hypervolume per
generation and the plots, and `--objectives`/`--sampling` reach the strategy.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from genomorph.cli.main import main

SMALL = (
    "input 1x8x8\nconv(8, 3, bias=false) bn relu maxpool(2) conv(16, 3, bias=false) bn relu gap linear(10)\n"
)
SH_TINY = ["--budget", "1", "--set", "children=4", "--set", "step_epochs=8", "--set", "ops=2",
           "--set", "start_epochs=1", "--set", "final_epochs=1", "--lr", "0.05"]  # fmt: skip


def _search(args: list[str]) -> None:
    result = CliRunner().invoke(main, ["search", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _candidates(run: Path) -> list[dict]:
    db = sqlite3.connect(run / "run.db")
    rows = db.execute("SELECT id, request, metrics, status FROM candidates ORDER BY id").fetchall()
    db.close()
    return [
        {"id": i, "request": json.loads(r), "metrics": json.loads(m) if m else None, "status": s}
        for i, r, m, s in rows
    ]


@pytest.mark.parametrize("strategy", ["sh", "shr"])
def test_halving_runs_one_schedule_per_step_or_restarts_per_rung(tmp_path: Path, strategy: str) -> None:
    start = tmp_path / "small.genome"
    start.write_text(SMALL)
    run = tmp_path / strategy
    _search(["--strategy", strategy, str(start), "--dataset", "digits", *SH_TINY, "--out", str(run)])
    rows = _candidates(run)
    roles = [r["request"]["meta"]["role"] for r in rows]
    assert roles == ["start"] + ["child"] * 6 + ["winner", "final"]
    assert all(r["status"] == "finished" for r in rows)
    later = [r for r in rows if r["request"]["meta"].get("rung", 0) > 0]  # rung 2 and the winner
    assert len(later) == 3
    # sh: rungs of 1 and 2 epochs and the winner's 4 are one cosine schedule of 7 epochs;
    # shr: each anneals on its own. The trainer logs the learning rate at the end of each epoch.
    for row in later:
        budget = row["request"]["budget"]
        offset = budget["schedule_offset"] if strategy == "sh" else 0.0
        length = budget["schedule_epochs"] if strategy == "sh" else budget["epochs"]
        assert (strategy == "sh") == (length == 7)
        for k, epoch in enumerate(row["metrics"]["history"], start=1):
            expected = 0.05 * 0.5 * (1 + math.cos(math.pi * (offset + k) / length))
            assert epoch["lr"] == pytest.approx(expected, abs=0.005), (
                row["id"],
                k,
                row["metrics"]["history"],
            )
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.5 and summary["params"] > 0
    assert summary["best_candidate"] == rows[-1]["id"]


@pytest.mark.slow  # shr's code path is tested above; this adds the sixth operator through a real run
def test_shrsep_grows_children_with_separable_convs(tmp_path: Path) -> None:
    start = tmp_path / "small.genome"
    start.write_text(SMALL)
    run = tmp_path / "shrsep"
    args = ["--strategy", "shrsep", str(start), "--dataset", "digits", *SH_TINY, "--set", "ops=4",
            "--set", 'operators=["sepconv", "widen"]', "--out", str(run)]  # fmt: skip
    _search(args)
    rows = _candidates(run)
    children = [r for r in rows if r["request"]["meta"]["role"] == "child" and r["request"]["rewrites"]]
    assert children, "no grown children"
    assert any(rec["rewrite"] == "sepconv" for r in children for rec in r["request"]["rewrites"])
    assert any("sep_conv" in r["request"]["genome"] for r in children)
    assert json.loads((run / "summary.json").read_text())["test_accuracy"] > 0.5


def test_pareto_nash_reports_front_hypervolume_repairs_and_plots(tmp_path: Path) -> None:
    run = tmp_path / "pareto"
    starts = json.dumps([SMALL, SMALL.replace("conv(8", "sep_conv(16").replace("conv(16", "conv(32")])
    args = ["--strategy", "pareto-nash", "--dataset", "digits", "--budget", "2", "--objectives", "params,latency",
            "--set", "proposals=8", "--set", "accepted=3", "--set", "epochs=1", "--set", "start_epochs=2",
            "--set", "repair_epochs=1", "--set", "ops_max=2", "--set", f"start_genomes={starts}",
            "--out", str(run)]  # fmt: skip
    _search(args)
    rows = _candidates(run)
    assert [r["request"]["meta"]["role"] for r in rows] == ["start"] * 2 + ["child"] * 6
    assert all(r["metrics"]["extra"]["latency_ms"] > 0 for r in rows)
    repaired = [r for r in rows if r["request"].get("repair")]
    assert repaired, "no approximate child in this run (seed 0)"
    for row in repaired:
        extra = row["metrics"]["extra"]
        assert extra["repair_distance_after"] <= extra["repair_distance_before"] + 1e-9
    summary = json.loads((run / "summary.json").read_text())
    assert len(summary["hypervolume"]) == 2 and all(v > 0 for v in summary["hypervolume"])
    assert summary["hypervolume"][-1] >= summary["hypervolume_start"]
    assert set(summary["reference_point"]) == {"val_error", "log_params", "latency_ms"}
    front = json.loads((run / "front.json").read_text())
    genomes = sorted((run / "front").glob("*.genome"))
    assert len(summary["front"]) == len(genomes) >= 1
    assert front["objectives"] == ["val_error", "log_params", "latency_ms"]
    for name in ("front_generations.png", "hypervolume.png"):
        assert (run / name).stat().st_size > 1000
    report = CliRunner().invoke(main, ["report", str(run)], catch_exceptions=False)
    assert report.exit_code == 0, report.output
    assert "front" in report.output.lower()


def test_strategy_flags_are_checked(tmp_path: Path) -> None:
    bad = CliRunner().invoke(main, ["search", "--strategy", "pareto-nash", "--dataset", "digits",
                                    "--objectives", "params,flops", "--out", str(tmp_path / "bad")])  # fmt: skip
    assert bad.exit_code == 2 and "objectives" in bad.output
    wrong = CliRunner().invoke(main, ["search", "--strategy", "sh", "--dataset", "digits",
                                      "--sampling", "uniform", "--out", str(tmp_path / "wrong")])  # fmt: skip
    assert wrong.exit_code == 2 and "sampling" in wrong.output

"""`genomorph train --out RUN_DIR`: a run of the run store that the same command continues."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result
from genomorph.cli.main import main
from search_helpers import TINY


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _train(genome: Path, out: Path, *more: str) -> Result:
    return invoke(
        "train",
        str(genome),
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--threads",
        "1",
        "--out",
        str(out),
        *more,
    )


def test_train_out_is_a_run_with_a_summary_and_the_same_command_only_reports_it(tmp_path: Path) -> None:
    genome = tmp_path / "tiny.genome"
    genome.write_text(TINY)
    out = tmp_path / "run"
    first = _train(genome, out)
    assert first.exit_code == 0, first.output
    summary = json.loads((out / "summary.json").read_text())
    for key in ("val_accuracy", "test_accuracy", "params", "train_s"):
        assert summary[key] is not None, key
    assert summary["strategy"] == "train" and (out / "best.genome").read_text() == TINY
    assert (out / "run.db").is_file() and (out / "checkpoints" / "c00000.pt").is_file()
    assert not list((out / "checkpoints").glob("*.epoch.pt"))
    again = _train(genome, out)  # finished: prints the same summary, trains nothing
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == json.loads(first.stdout)
    report = invoke("report", str(out), "--json")
    assert report.exit_code == 0 and json.loads(report.stdout)["val_accuracy"] == summary["val_accuracy"]


def test_train_out_refuses_a_different_training_in_the_same_run_dir(tmp_path: Path) -> None:
    genome = tmp_path / "tiny.genome"
    genome.write_text(TINY)
    out = tmp_path / "run"
    assert _train(genome, out).exit_code == 0
    other = _train(genome, out, "--seed", "5")
    assert other.exit_code == 2 and "holds a different training" in other.stderr


def test_resume_starts_a_training_killed_before_its_run_store_existed(tmp_path: Path) -> None:
    from genomorph.cli.train_run import write_pending
    from genomorph.search.core.config import DataConfig, TrainConfig
    from genomorph.search.core.protocol import Budget

    out = tmp_path / "run"
    config = TrainConfig(epochs=1, threads=1)
    write_pending(out, TINY, DataConfig(name="digits"), config, Budget(epochs=1, test=True), 0)
    assert not (out / "run.db").exists()
    result = invoke("resume", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["test_accuracy"] is not None

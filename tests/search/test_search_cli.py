"""The train, search, resume and report commands, through click as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from genomorph.cli.main import main
from search_helpers import CHAIN, TINY


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.genome"
    path.write_text(TINY)
    return path


def test_train_prints_and_stores_metrics(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "trained"
    result = invoke(
        "train", str(tiny), "--dataset", "digits", "--epochs", "2", "--threads", "1", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    stored = json.loads((out / "metrics.json").read_text())
    assert printed["val_accuracy"] == stored["metrics"]["val_accuracy"] and printed["epochs"] == 2
    assert printed["test_accuracy"] is not None
    assert (out / "model.genome").read_text() == TINY and (out / "model.pt").is_file()


def test_train_refuses_a_genome_that_does_not_fit_before_training(tiny: Path, tmp_path: Path) -> None:
    result = invoke("train", str(tiny), "--dataset", "spirals", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2
    assert "does not match dataset 'spirals'" in result.stderr and "input 2" in result.stderr
    assert not (tmp_path / "x").exists()


def test_train_missing_torchvision_data_is_exit_2(tiny: Path, tmp_path: Path) -> None:
    result = invoke("train", str(tiny), "--dataset", "fashion-mnist", "--data-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "FashionMNIST/raw/train-images-idx3-ubyte" in result.stderr


def test_search_report_and_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    settings = ["--set", f"genomes={json.dumps([TINY])}", "--set", "rounds=2"]
    result = invoke(
        "search", "--strategy", CHAIN, "--dataset", "digits", *settings, "--seed", "2", "--out", str(run)
    )
    assert result.exit_code == 0, result.output
    assert "best genome" in result.stdout
    for name in ("summary.json", "best.genome", "accuracy_vs_params.png", "progress.png", "run.db"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["strategy"] == CHAIN and summary["candidates_finished"] == 4

    report = invoke("report", str(run), "--json")
    assert report.exit_code == 0 and json.loads(report.stdout) == summary
    table = invoke("report", str(run))
    assert table.exit_code == 0 and "top 10 candidates" in table.stdout
    again = invoke("resume", str(run))  # a finished run: nothing to do but the report
    assert again.exit_code == 0 and json.loads((run / "summary.json").read_text())["candidates_finished"] == 4

    exists = invoke("search", "--strategy", CHAIN, "--dataset", "digits", "--out", str(run))
    assert exists.exit_code == 2 and "already holds a run" in exists.stderr


def test_search_refuses_a_start_genome_that_does_not_fit(tiny: Path, tmp_path: Path) -> None:
    result = invoke(
        "search", "--strategy", CHAIN, str(tiny), "--dataset", "spirals", "--out", str(tmp_path / "r")
    )
    assert result.exit_code == 2 and "does not match dataset" in result.stderr
    assert not (tmp_path / "r" / "run.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["search", "--strategy", "no-such-strategy", "--out", "{tmp}/o"],
            "unknown strategy 'no-such-strategy'",
        ),
        (["search", "--strategy", CHAIN, "--set", "rounds", "--out", "{tmp}/o"], "expected KEY=VALUE"),
        (
            ["search", "--strategy", CHAIN, "--set", "bogus=1", "--out", "{tmp}/o"],
            "invalid options for strategy",
        ),
        (
            ["search", "--strategy", CHAIN, "--address", "x:1", "--out", "{tmp}/o"],
            "only applies with --executor ray",
        ),
        (["resume", "{tmp}/nowhere"], "not a run directory"),
        (["report", "{tmp}/nowhere"], "not a run directory"),
    ],
)
def test_user_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke(*[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not (tmp_path / "o" / "run.db").exists()


def test_ctrl_c_keeps_what_finished_and_resume_completes(tmp_path: Path) -> None:
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable,
        "-m",
        "genomorph.cli.main",
        "search",
        "--strategy",
        CHAIN,
        "--dataset",
        "digits",
    ]
    # the strategy holds after two results until the gate exists: signalled then, the run is
    # mid-search whatever the machine's speed (the whole search takes under a second when idle)
    gate = tmp_path / "gate"
    settings = ["--set", f"genomes={json.dumps([TINY])}", "--set", "rounds=8", "--set", "epochs=2"]
    settings += ["--set", f"gate={gate}"]
    process = subprocess.Popen(
        [*command, *settings, "--out", str(run)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as in a terminal: a test run started in the background (`cmd &` in a script)
        # hands its children SIGINT ignored, and Python then never turns it into KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )

    def finished() -> int:
        try:
            db = sqlite3.connect(f"file:{run / 'run.db'}?mode=ro", uri=True)
            return db.execute("SELECT COUNT(*) FROM candidates WHERE status = 'finished'").fetchone()[0]
        except sqlite3.Error:
            return 0

    deadline = time.monotonic() + 120
    while finished() < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    still_running = process.poll() is None
    process.send_signal(signal.SIGINT)
    try:
        stdout, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()  # it would wait at the gate for minutes
        stdout, stderr = process.communicate()
        raise AssertionError(f"the run did not stop on SIGINT\nstderr:\n{stderr}") from None
    # everything a rare failure needs for diagnosis: did the run end first, what did it print
    assert process.returncode == 130, (
        f"exit {process.returncode}, running when signalled: {still_running}, "
        f"candidates finished: {finished()}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    )
    assert f"genomorph resume {run}" in stderr
    interrupted = json.loads((run / "summary.json").read_text())
    assert interrupted["status"] == "interrupted" and interrupted["candidates_finished"] >= 2

    gate.touch()
    done = subprocess.run([*command[:3], "resume", str(run)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["candidates_finished"] == 1 + 2 * 7 + 1

"""Noisy Heuristics NAS end to end: real training on the 2-spiral set, the live meta-parameter
file steering capacity mid-run, the outputs, and kill -9 + resume losing nothing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from genomorph.grammar import parse
from genomorph.search.core.config import DataConfig, TrainConfig
from genomorph.search.core.driver import RunConfig
from genomorph.search.core.store import RunStore
from genomorph.search.runtime.report import write_report
from genomorph.search.runtime.run import prepare_setup, start_search

#: small iterations: a few epochs of training and fine-tuning each
SMALL = {"max_epochs": 8, "min_epochs": 3, "decay_steps": 20, "neurons_to_add": 8}


class _Silent:
    def started(self, *args: Any) -> None: ...
    def submitted(self, *args: Any) -> None: ...
    def epoch(self, *args: Any) -> None: ...
    def finished(self, result: Any) -> None: ...


def _run(out: Path, options: dict[str, Any], observer: Any = None, dataset: str = "spirals") -> RunStore:
    data = DataConfig(name=dataset)  # type: ignore[arg-type]
    config = RunConfig(
        strategy="noisy",
        strategy_config=options,
        setup=prepare_setup(data, seed=0),
        data=data,
        train=TrainConfig(),
    )
    return start_search(config, out, observer)


def _roles(store: RunStore) -> list[str]:
    return [str(c.request.meta["role"]) for c in store.candidates()]


def test_spirals_iterations_are_stored_and_reported(tmp_path: Path) -> None:
    store = _run(tmp_path / "run", {**SMALL, "iterations": 3})
    roles = _roles(store)
    # the save is folded into the shrink candidate: its network keeps the shrink's function
    assert roles.count("train") == 3 and roles.count("shrink") == 3 and roles[-1] == "final", roles
    assert roles.count("save") == 0 and len(roles) == 7, roles
    candidates = store.candidates()
    assert all(c.status == "finished" for c in candidates)
    # one network throughout: every train candidate after the first starts from saved weights
    trains = [c for c in candidates if c.request.meta["role"] == "train"]
    assert all(c.request.init_checkpoint for c in trains)
    summary = write_report(store)
    assert summary.strategy == "noisy"
    state = store.strategy_state()
    rows = state["records"]
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    for row in rows:
        assert row["params"] > 0 and row["depth"] > 0 and row["units"]
        assert row["train_accuracy"] is not None and row["val_accuracy"] is not None
        assert row["meta"]["neurons_to_add"] == 8 and row["added"] == 8
    assert rows[-1]["total_epochs"] == sum(r["epochs"] for r in rows)
    _check_folded_saves(tmp_path / "run", rows)
    best = (tmp_path / "run" / "best.genome").read_text()
    assert "hres(" in best  # the readable H-ResNet form
    graph = parse(best)
    assert graph.stats().params == summary.params  # the answer's network, as evaluated

    from genomorph.search.runtime.plots_noisy import write_noisy_plots
    from genomorph.search.runtime.report import summarize

    _, _, answer = summarize(store)
    written = write_noisy_plots(store, answer)
    assert "decision_boundary.png" in written and "noisy_progress.png" in written
    for name in written:
        assert (tmp_path / "run" / name).stat().st_size > 1000


def _check_folded_saves(run: Path, rows: list[dict[str, Any]]) -> None:
    """A folded iteration reports the shrink candidate's numbers: rebuilding its saved network and
    evaluating it gives the same accuracies."""
    import torch
    from genomorph.lower import lower
    from genomorph.search.runtime.checkpoint import load_checkpoint
    from genomorph.search.runtime.data import cached_dataset
    from genomorph.search.runtime.loop import evaluate_split
    from genomorph.search.strategies._noisy_save import Derivation, replay

    data = cached_dataset(DataConfig(name="spirals"))  # type: ignore[arg-type]
    folded = [r for r in rows if r["derived"] is not None]
    assert folded, "the save is folded into the shrink candidate"
    for row in folded:
        derivation = Derivation.model_validate(row["derived"])
        saved = replay(derivation, load_checkpoint(run / derivation.checkpoint)[0])
        assert saved.genome == row["genome"]
        module = lower(parse(saved.genome), saved.weights).eval()
        train = evaluate_split(module, data, data.train, torch.device("cpu"))["accuracy"]
        val = evaluate_split(module, data, data.val, torch.device("cpu"))["accuracy"]
        assert abs(train - row["train_accuracy"]) <= 1 / len(data.train) + 1e-9, (train, row)
        assert abs(val - row["val_accuracy"]) <= 1 / len(data.val) + 1e-9, (val, row)


class _Steer(_Silent):
    """Edits the meta-parameter file when an iteration's last candidate finishes (before the next is read)."""

    def __init__(self, path: Path, edits: dict[int, str]) -> None:
        self.path, self.edits = path, edits

    def finished(self, result: Any) -> None:
        meta = result.request.meta
        if meta.get("role") in ("shrink", "save") and meta["iteration"] in self.edits:
            self.path.write_text(self.edits[meta["iteration"]])


def test_capacity_on_command_from_the_meta_file(tmp_path: Path) -> None:
    """Raising neurons_to_add grows the network, a ratio below 1 shrinks it, a broken edit is
    warned about and ignored; accuracy is reported for every iteration (paper 000 Fig. 9)."""
    meta = tmp_path / "meta.toml"
    meta.write_text("neurons_to_add = 4\nadd_to_remove_ratio = 2.0\n")
    edits = {
        0: "neurons_to_add = 32\nadd_to_remove_ratio = 4.0\n",
        2: "neurons_to_add = 8\nadd_to_remove_ratio = 0.2\n",
        3: "neurons_to_add = [8\n",  # broken: the last good values stay
    }
    options = {**SMALL, "iterations": 6, "meta": str(meta)}
    options.pop("neurons_to_add")
    store = _run(tmp_path / "run", options, _Steer(meta, edits))
    state = store.strategy_state()
    rows = state["records"]
    assert len(rows) == 6
    assert [r["meta"]["neurons_to_add"] for r in rows] == [4, 32, 32, 8, 8, 8]
    assert [r["meta"]["add_to_remove_ratio"] for r in rows] == [2.0, 4.0, 4.0, 0.2, 0.2, 0.2]
    params = [r["params"] for r in rows]
    assert params[1] - params[0] > 0 and params[2] > params[0], params  # growing
    assert params[5] < params[2], params  # shrinking after the ratio went below 1
    assert all(r["removed"] > r["added"] for r in rows[3:]), rows
    assert all(r["val_accuracy"] is not None and r["train_accuracy"] is not None for r in rows)
    warnings = state["warnings"]
    assert any("meta.toml:1:" in w and "keeping the last good" in w for w in warnings), warnings
    changes = {c["iteration"]: c["changes"] for c in state["meta_changes"]}
    assert changes[1] == {"neurons_to_add": [4, 32], "add_to_remove_ratio": [2.0, 4.0]}
    assert changes[3] == {"neurons_to_add": [32, 8], "add_to_remove_ratio": [4.0, 0.2]}
    assert set(changes) == {0, 1, 3}  # 0: the file's first values over the defaults


GENOMORPH = [sys.executable, "-m", "genomorph.cli.main"]


def _rows(run: Path) -> list[tuple]:
    db = sqlite3.connect(run / "run.db")
    rows = db.execute(
        "SELECT id, genome, parent, status, seed, metrics, checkpoint FROM candidates ORDER BY id"
    ).fetchall()
    db.close()
    return rows


def _finished(run: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{run / 'run.db'}?mode=ro", uri=True, timeout=5)
        try:
            return int(db.execute("SELECT COUNT(*) FROM candidates WHERE status = 'finished'").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return -1


def test_kill_and_resume_loses_nothing(tmp_path: Path) -> None:
    sets = [f"{k}={v}" for k, v in {**SMALL, "iterations": 3}.items()]
    command = [*GENOMORPH, "search", "--strategy", "noisy", "--dataset", "spirals", "--seed", "1"]
    for item in sets:
        command += ["--set", item]
    subprocess.run([*command, "--out", str(tmp_path / "reference")], check=True, capture_output=True)
    reference = _rows(tmp_path / "reference")
    run = tmp_path / "killed"
    kills = 0
    for finished in (2, 5):  # mid-iteration: after a train candidate, after a shrink
        process = subprocess.Popen(
            [*command, "--out", str(run)] if kills == 0 else [*GENOMORPH, "resume", str(run)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 300
        while _finished(run) < finished and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait()
        rows = [r for r in _rows(run) if r[3] == "finished"]
        assert len({r[0] for r in rows}) == len(rows) >= finished
    assert kills == 2
    done = subprocess.run([*GENOMORPH, "resume", str(run)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _rows(run) == reference
    summary = json.loads((run / "summary.json").read_text())
    expected = json.loads((tmp_path / "reference" / "summary.json").read_text())
    for key in ("best_candidate", "best_genome", "test_accuracy", "params"):
        assert summary[key] == expected[key]


def test_resume_keeps_the_meta_parameters_an_iteration_started_with(tmp_path: Path) -> None:
    """Killed mid-iteration with the meta file edited before the resume: the interrupted iteration
    finishes with the values it read, the next one reads the edit."""
    meta = tmp_path / "meta.toml"
    meta.write_text("neurons_to_add = 6\n")
    # a long shrink (60 epochs of decay) keeps the run inside iteration 0 for about a second after
    # its first candidate: the kill lands there even on a loaded machine
    options = {**SMALL, "iterations": 2, "meta": str(meta), "decay_steps": 600}
    options.pop("neurons_to_add")
    command = [
        *GENOMORPH,
        "search",
        "--strategy",
        "noisy",
        "--dataset",
        "spirals",
        "--out",
        str(tmp_path / "run"),
    ]
    for key, value in options.items():
        command += ["--set", f"{key}={value}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while _finished(tmp_path / "run") < 1 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    meta.write_text("neurons_to_add = 10\n")
    done = subprocess.run([*GENOMORPH, "resume", str(tmp_path / "run")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = RunStore.open(tmp_path / "run").strategy_state()["records"]
    assert [(r["meta"]["neurons_to_add"], r["added"]) for r in rows] == [(6, 6), (10, 10)]


def _search(out: Path, meta: Path) -> subprocess.CompletedProcess[str]:
    command = [*GENOMORPH, "search", "--strategy", "noisy", "--dataset", "spirals", "--out", str(out)]
    for item in (f"meta={meta}", "iterations=1", "max_epochs=3", "min_epochs=2", "decay_steps=10"):
        command += ["--set", item]
    return subprocess.run(command, capture_output=True, text=True)


def test_the_terminal_shows_meta_changes_and_broken_edits(tmp_path: Path) -> None:
    """On the CLI without -v: a change read from the meta file is shown, a broken edit is warned
    about with FILE:LINE:COL and the run goes on."""
    good = tmp_path / "good.toml"
    good.write_text("neurons_to_add = 4\n")
    done = _search(tmp_path / "good", good)
    assert done.returncode == 0, done.stderr
    assert f"iteration 0: meta-parameters from {good}: neurons_to_add 16 -> 4" in done.stderr, done.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("neurons_to_add = 4\nlr = -1\n")
    done = _search(tmp_path / "bad", bad)
    assert done.returncode == 0, done.stderr
    assert f"warning: iteration 0: {bad}:2:6: meta-parameter 'lr'" in done.stderr, done.stderr
    assert "keeping the last good meta-parameters" in done.stderr and "    lr = -1" in done.stderr
    assert (tmp_path / "bad" / "best.genome").is_file()


def test_console_logging_prints_through_the_console_and_restores_the_handlers() -> None:
    import io
    import logging

    from genomorph.cli._console_log import console_logging
    from rich.console import Console
    from rich.progress import Progress

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100)
    root = logging.getLogger()
    before = list(root.handlers)
    with Progress(console=console) as progress, console_logging(console):
        progress.add_task("search", total=3)
        assert not [h for h in root.handlers if type(h) is logging.StreamHandler]
        logging.getLogger("genomorph.search.strategies.noisy").warning("m.toml:2:6: bad value")
        logging.getLogger("genomorph.notice.noisy").warning("a notice")
    assert root.handlers == before
    import re

    # printed by the console above the live display, each on a line of its own, not into it
    lines = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buffer.getvalue()).replace("\r", "\n").splitlines()
    assert "warning: m.toml:2:6: bad value" in lines and "a notice" in lines, lines

"""Killed in the middle of a candidate, resumed, and bit for bit the uninterrupted run.

Real processes: `genomorph train --out` and `genomorph search` are SIGKILLed once their running
candidate has written its epoch checkpoint for a randomly chosen epoch, then continued to the end
(the same `train` command again, or `genomorph resume`). The uninterrupted reference run of the
same command runs beside them. Every stored metric (history,
losses, accuracies, parameters) must be identical, and the log must show that the candidate
really continued from its epoch checkpoint rather than starting over.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import torch

GENOMORPH = [sys.executable, "-m", "genomorph.cli.main"]
NET = "input 1x8x8\nconv(8, 3) bn relu dropout(0.1)\nmaxpool(2)\nconv(16, 3) bn relu\ngap linear(10)\n"
SPACE = """
name = "tiny"
[layers]
min = 2
max = 2
filters = [8]
kernels = [3]
activations = ["relu"]
[reductions]
count = 1
[head]
hidden = [8]
"""
#: small batches make every epoch long enough (>= 0.25 s) that the loop's minimum interval between
#: epoch checkpoints (`loop.CHECKPOINT_INTERVAL_S`, if any) still leaves one after each target epoch
BATCH = 8
#: kill moments come from this seed (override with GENOMORPH_KILL_SEED); assertion messages name it
DEFAULT_KILL_SEED = 7


def kill_seed() -> int:
    return int(os.environ.get("GENOMORPH_KILL_SEED", DEFAULT_KILL_SEED))


def _epoch_of(path: Path) -> int | None:
    """The epoch an epoch checkpoint was written after (None: no complete file there now)."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])
    except Exception:  # absent, or replaced while we read it
        return None


def _kill_at(cmd: list[str], run: Path, cid: int, epoch: int, log: Path) -> tuple[int | None, str]:
    """Start ``cmd``; SIGKILL it once candidate ``cid``'s epoch checkpoint reaches ``epoch`` (or
    candidate ``cid`` is already past). Returns the epoch seen at the kill and the process log."""
    path = run / "checkpoints" / f"c{cid:05d}.epoch.pt"
    final = run / "checkpoints" / f"c{cid:05d}.pt"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        seen = None
        try:
            while proc.poll() is None:
                seen = _epoch_of(path)
                if (seen is not None and seen >= epoch) or final.exists():
                    break
                time.sleep(0.02)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    return seen, log.read_text()


def _metrics(run: Path) -> list[tuple]:
    db = sqlite3.connect(run / "run.db")
    try:
        return db.execute("SELECT id, genome, seed, status, metrics FROM candidates ORDER BY id").fetchall()
    finally:
        db.close()


def _check_same(reference: Path, run: Path, seed: int, kills: list[tuple[int, int | None]]) -> None:
    ref, got = _metrics(reference), _metrics(run)
    assert ref and all(r[3] == "finished" for r in ref), f"kill seed {seed}: reference run incomplete"
    assert got == ref, f"kill seed {seed}, kills (candidate, epoch seen) {kills}: metrics differ"
    assert not list((run / "checkpoints").glob("*.epoch.pt")), "epoch checkpoints left behind"


def test_train_out_killed_mid_training_resumes_bit_for_bit(tmp_path: Path) -> None:
    seed = kill_seed()
    rng = random.Random(seed)
    genome = tmp_path / "net.genome"
    genome.write_text(NET)
    epochs = 6
    train = [
        *GENOMORPH,
        "-v",
        "train",
        str(genome),
        "--dataset",
        "digits",
        "--epochs",
        str(epochs),
        "--seed",
        "1",
    ]
    train += ["--mixup", "0.2", "--cutout", "2", "--batch-size", str(BATCH)]
    reference = subprocess.Popen(
        [*train, "--out", str(tmp_path / "ref")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    run = tmp_path / "run"
    target = rng.randrange(1, epochs - 1)
    seen, _ = _kill_at([*train, "--out", str(run)], run, 0, target, tmp_path / "a.log")
    kills = [(0, seen)]
    done = subprocess.run(
        [*train, "--out", str(run)], capture_output=True, text=True, timeout=300
    )  # the same command
    assert done.returncode == 0, f"kill seed {seed}: the second train failed: {done.stderr[-2000:]}"
    _, ref_err = reference.communicate(timeout=300)
    assert reference.returncode == 0, ref_err.decode()[-2000:]
    assert seen is not None, f"kill seed {seed}: the kill did not land mid-training ({kills})"
    assert f"continues after epoch {seen}" in done.stderr, (
        f"kill seed {seed}: not resumed mid-candidate {kills}"
    )
    _check_same(tmp_path / "ref", run, seed, kills)
    (history,) = [r[4] for r in _metrics(run)]
    assert f'"epochs":{epochs}' in history


def test_search_killed_mid_candidate_resumes_bit_for_bit(tmp_path: Path) -> None:
    seed = kill_seed()
    rng = random.Random(seed + 1)
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    epochs = 6
    search = [
        *GENOMORPH,
        "-v",
        "search",
        "--strategy",
        "random",
        "--space",
        str(space),
        "--dataset",
        "digits",
    ]
    search += ["--seed", "2", "--set", "candidates=2", "--set", f"epochs={epochs}", "--set", "final_epochs=4"]
    search += ["--batch-size", str(BATCH)]
    reference = subprocess.Popen(
        [*search, "--out", str(tmp_path / "ref")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    run = tmp_path / "run"
    # one kill in candidate 0 or 1 at a random epoch, then resumed to the end
    cid = rng.randrange(2)
    seen, _ = _kill_at(
        [*search, "--out", str(run)], run, cid, rng.randrange(1, epochs - 1), tmp_path / "a.log"
    )
    kills = [(cid, seen)]
    done = subprocess.run([*GENOMORPH, "-v", "resume", str(run)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"kill seed {seed}: resume failed: {done.stderr[-2000:]}"
    _, ref_err = reference.communicate(timeout=300)
    assert reference.returncode == 0, ref_err.decode()[-2000:]
    assert seen is not None, f"kill seed {seed}: the kill did not land mid-candidate ({kills})"
    assert f"candidate {cid} continues after epoch {seen}" in done.stderr, f"kill seed {seed}: {kills}"
    _check_same(tmp_path / "ref", run, seed, kills)
    assert len(_metrics(run)) == 3  # two searched candidates and the final training

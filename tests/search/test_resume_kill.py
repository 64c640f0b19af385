"""`genomorph resume` after `kill -9` at random moments ends exactly as an uninterrupted run.

A real `genomorph search` process (aging evolution over a tiny paper-004 space on digits) is
killed with SIGKILL several times at random moments, each time resumed, and finally resumed to
the end. Every finished candidate must be kept exactly once, and the run must end with the same
candidates, seeds and metrics as the same search run without interruption.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SPACE = """
name = "tiny"
[layers]
min = 2
max = 3
filters = [4, 8]
kernels = [3]
activations = ["relu", "tanh"]
[reductions]
count = 1
[head]
hidden = [8]
"""
GENOMORPH = [sys.executable, "-m", "genomorph.cli.main"]


def _search(space: Path, out: Path, workers: int) -> list[str]:
    return [
        *GENOMORPH,
        "search",
        "--strategy",
        "evolution",
        "--space",
        str(space),
        "--dataset",
        "digits",
        "--seed",
        "3",
        "--set",
        "population=3",
        "--set",
        "cycles=8",
        "--set",
        "epochs=3",
        "--set",
        "final_epochs=1",
        "--workers",
        str(workers),
        "--out",
        str(out),
    ]


#: kill moments come from this seed (override with GENOMORPH_KILL_SEED to explore others); every
#: assertion message names it, so a failure can be replayed exactly
DEFAULT_KILL_SEED = 20261201


def kill_seed() -> int:
    return int(os.environ.get("GENOMORPH_KILL_SEED", DEFAULT_KILL_SEED))


def _rows(run: Path) -> list[tuple]:
    db = sqlite3.connect(run / "run.db")
    rows = db.execute(
        "SELECT id, genome, parent, status, seed, metrics, checkpoint, observed FROM candidates ORDER BY id"
    ).fetchall()
    db.close()
    return rows


def _attempts(run: Path) -> dict[int, int]:
    db = sqlite3.connect(run / "run.db")
    found = dict(db.execute("SELECT id, attempts FROM candidates"))
    db.close()
    return found


def _finished(run: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{run / 'run.db'}?mode=ro", uri=True, timeout=5)
        try:
            return int(db.execute("SELECT COUNT(*) FROM candidates WHERE status = 'finished'").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:  # not created yet
        return -1


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _kill_when(command: list[str], run: Path, finished: int, delay: float) -> bool:
    """Start ``command``; once ``finished`` candidates are finished, wait ``delay`` s and SIGKILL it.
    Its worker processes, if any, must end by themselves. Returns False if the process ended first."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while _finished(run) < finished and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(delay)
    if process.poll() is not None:
        return False
    workers = _children(process.pid)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 15
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphans = [w for w in workers if _alive(w)]
    for w in orphans:
        os.kill(w, signal.SIGKILL)
    assert not orphans, "worker processes outlived their killed driver"
    return True


def kill_and_resume(command: list[str], run: Path, points: list[tuple[int, float]]) -> tuple[int, list[str]]:
    """Run ``command`` and SIGKILL it at each ``(finished candidates, delay)`` point, resuming
    after each kill; returns how many kills landed and the command that finishes the run."""
    kills = 0
    for finished, delay in points:
        kills += _kill_when(command, run, finished, delay)
        if (run / "run.db").exists():
            command = [*GENOMORPH, "resume", str(run)]
            # whatever was finished before the kill is still there, exactly once
            rows = [r for r in _rows(run) if r[3] == "finished"]
            assert len({r[0] for r in rows}) == len(rows)
    return kills, command


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "pool"])
def test_sigkill_at_random_moments_then_resume(tmp_path: Path, workers: int) -> None:
    space = tmp_path / "tiny.toml"
    space.write_text(SPACE)
    subprocess.run(_search(space, tmp_path / "reference", workers), check=True, capture_output=True)
    reference = _rows(tmp_path / "reference")
    assert len(reference) >= 5 and all(r[3] == "finished" for r in reference)

    run = tmp_path / "killed"
    seed = kill_seed()
    rng = random.Random(seed)
    # kill points: as soon as the run database exists, then after a random number of finished
    # candidates plus a random part of a candidate's time (mid-training, mid-write, ...)
    points = [
        (0, 0.0),
        *sorted((rng.randrange(0, len(reference) - 2), rng.uniform(0.0, 0.3)) for _ in range(4)),
    ]
    kills, command = kill_and_resume(_search(space, run, workers), run, points)
    assert kills >= 3, f"the run ended before it could be killed (GENOMORPH_KILL_SEED={seed})"
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, f"GENOMORPH_KILL_SEED={seed}: {done.stderr}"
    assert _rows(run) == [(*r[:7], 1) for r in reference], f"GENOMORPH_KILL_SEED={seed}"
    assert max(_attempts(run).values()) <= kills + 1, f"GENOMORPH_KILL_SEED={seed}"
    summary = json.loads((run / "summary.json").read_text())
    expected = json.loads((tmp_path / "reference" / "summary.json").read_text())
    for key in ("best_candidate", "best_genome", "best_val_accuracy", "test_accuracy", "params"):
        assert summary[key] == expected[key]
    assert (run / "best.genome").is_file() and list(run.glob("*.png"))


#: Ray's own per-node agents poll their raylet and leave about a minute after it; they run no
#: candidate, so the check below leaves them out (and kills them at the end)
RAY_AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        children = [c for p in frontier for c in _children(p)]
        found.extend(children)
        frontier = children
    return found


def test_ray_workers_end_when_their_driver_is_killed(tmp_path: Path) -> None:
    import ray  # noqa: F401 - a dev dependency: its absence is a failure, not a skip

    space = tmp_path / "tiny.toml"
    space.write_text(SPACE)
    run = tmp_path / "ray"
    process = subprocess.Popen(
        [*_search(space, run, 2), "--executor", "ray"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while _finished(run) < 1 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the search ended (or failed) before it could be killed"
    tree = _descendants(process.pid)
    agents = [p for p in tree if any(a in _cmdline(p) for a in RAY_AGENTS)]
    workers = [p for p in tree if p not in agents]
    assert any("raylet" in _cmdline(p) for p in workers), [_cmdline(p) for p in tree]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 30
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    orphans = {w: _cmdline(w) for w in workers if _alive(w)}
    for pid in [*orphans, *agents]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not orphans, f"Ray processes outlived their killed driver by 30 s: {orphans}"

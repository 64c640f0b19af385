"""`genomorph resume` after `kill -9` of an sh / pareto-nash search ends exactly as an uninterrupted run.

The same procedure as the engine's test (tests/search/test_resume_kill.py, whose helpers this
reuses): a real search process is SIGKILLed at seeded random moments, resumed each time, and
finally resumed to the end; every finished candidate is kept exactly once and the run ends
with the same candidates, seeds, metrics and summary as the run without interruption. For SH
a kill can fall between rungs (survivors continue from checkpoints of an earlier session);
for Pareto-NASH between a generation's proposal and its accepted children (regenerated from
their seeds on resume).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_resume_kill import GENOMORPH, _attempts, _rows, kill_and_resume, kill_seed  # noqa: E402

SMALL = (
    "input 1x8x8\nconv(8, 3, bias=false) bn relu maxpool(2) conv(16, 3, bias=false) bn relu gap linear(10)\n"
)
WIDE = "input 1x8x8\nsep_conv(16, 3, bias=false) bn relu maxpool(2) conv(24, 3, bias=false) bn relu gap linear(10)\n"

ARGS = {
    "sh": ["--budget", "1", "--set", "children=4", "--set", "step_epochs=4", "--set", "ops=2",
           "--set", "start_epochs=1", "--set", "final_epochs=1"],
    "pareto-nash": ["--budget", "2", "--set", "proposals=6", "--set", "accepted=2", "--set", "epochs=1",
                    "--set", "start_epochs=1", "--set", "repair_epochs=1",
                    "--set", "start_genomes=" + json.dumps([SMALL, WIDE])],
}  # fmt: skip


def _command(strategy: str, start: Path, out: Path) -> list[str]:
    extra = [str(start)] if strategy == "sh" else []
    return [*GENOMORPH, "search", "--strategy", strategy, *extra, "--dataset", "digits", "--seed", "1",
            *ARGS[strategy], "--out", str(out)]  # fmt: skip


# a reference run and four killed sessions each: ~30 s of CPU (in the default suite: issue 9 asks for it)
@pytest.mark.parametrize("strategy", ["sh", "pareto-nash"])
def test_sigkill_then_resume_loses_nothing(tmp_path: Path, strategy: str) -> None:
    start = tmp_path / "small.genome"
    start.write_text(SMALL)
    subprocess.run(_command(strategy, start, tmp_path / "reference"), check=True, capture_output=True)
    reference = _rows(tmp_path / "reference")
    assert len(reference) >= 6 and all(r[3] == "finished" for r in reference)

    run = tmp_path / "killed"
    seed = kill_seed()
    rng = random.Random(f"{seed}:{strategy}")
    points = [
        (0, 0.0),
        *sorted((rng.randrange(1, len(reference) - 2), rng.uniform(0.0, 0.3)) for _ in range(3)),
    ]
    kills, command = kill_and_resume(_command(strategy, start, run), run, points)
    assert kills >= 2, f"the run ended before it could be killed (GENOMORPH_KILL_SEED={seed})"
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, f"GENOMORPH_KILL_SEED={seed}: {done.stderr}"
    assert _rows(run) == [(*r[:7], 1) for r in reference], f"GENOMORPH_KILL_SEED={seed}"
    assert max(_attempts(run).values()) <= kills + 1, f"GENOMORPH_KILL_SEED={seed}"
    summary = json.loads((run / "summary.json").read_text())
    expected = json.loads((tmp_path / "reference" / "summary.json").read_text())
    keys = ["best_candidate", "best_genome", "test_accuracy", "params"]
    keys += ["hypervolume", "front"] if strategy == "pareto-nash" else []
    for key in keys:
        assert summary[key] == expected[key], (key, f"GENOMORPH_KILL_SEED={seed}")

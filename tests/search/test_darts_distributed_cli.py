"""``genomorph search --nproc 2`` end to end (this process is rank 0, one follower is spawned),
its refusals, and the same search launched by ``torchrun`` (slow: three interpreters start)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from genomorph.cli.main import main
from genomorph.search.core.store import RunStore

SEQ = """\
def layer(row) = mixed(conv(4, 3, bias=false) bn(affine=false), relu sep_conv(4, 3, bias=false) bn(affine=false), \
skip, zero, group=layers, row=row, labels=[conv_3x3, sep_conv_3x3, skip_connect, "none"])
input 1x8x8
conv(4, 3, bias=false) bn relu
layer(0) relu
layer(1)
gap linear(10)
"""
ARGS = ["--strategy", "darts", "--dataset", "digits", "--set", "epochs=1", "--set", "final_epochs=0"]


def _space(tmp_path: Path) -> Path:
    space = tmp_path / "space.genome"
    space.write_text(SEQ)
    return space


def _search_candidate(run: Path) -> dict:  # type: ignore[type-arg]
    store = RunStore.open(run)
    searches = [c for c in store.candidates() if c.request.recipe == "darts"]
    assert len(searches) == 1 and searches[0].metrics is not None
    return dict(searches[0].metrics.extra)


def test_search_with_two_processes_through_the_cli(tmp_path: Path) -> None:
    space = _space(tmp_path)
    runner = CliRunner()
    two = runner.invoke(main, ["search", str(space), *ARGS, "--nproc", "2", "--out", str(tmp_path / "two")])
    assert two.exit_code == 0, two.output
    one = runner.invoke(main, ["search", str(space), *ARGS, "--out", str(tmp_path / "one")])
    assert one.exit_code == 0, one.output
    summary_two = json.loads((tmp_path / "two" / "summary.json").read_text())
    summary_one = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert summary_two["genotype"] == summary_one["genotype"]
    assert (tmp_path / "two" / "best.genome").read_text() == (tmp_path / "one" / "best.genome").read_text()
    extra = _search_candidate(tmp_path / "two")
    assert extra["nproc"] == 2 and extra["ranks_identical"] is True
    assert "nproc" not in _search_candidate(tmp_path / "one")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "nash", "--nproc", "2"], "supernet searches"),
        (["--strategy", "darts", "--nproc", "2", "--workers", "2"], "one local worker"),
    ],
)
def test_nproc_refusals(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["search", "--dataset", "digits", *args, "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_search_launched_by_torchrun(tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    genomorph = shutil.which("genomorph", path=str(Path(sys.executable).parent))
    assert torchrun is not None and genomorph is not None
    run = tmp_path / "run"
    command = [torchrun, "--standalone", "--nproc_per_node", "2"]  # standalone: a free port
    command += [genomorph, "search", str(_space(tmp_path)), *ARGS, "--out", str(run)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)  # noqa: S603
    assert done.returncode == 0, done.stderr[-3000:]
    extra = _search_candidate(run)
    assert extra["nproc"] == 2 and extra["ranks_identical"] is True

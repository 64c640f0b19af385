"""Fixtures of the dashboard tests: one real digits search per test session, shared read-only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: a NASH step with two children, one epoch each: 4 candidates (start, 2 children, final training)
SEARCH = ["search", "--strategy", "nash", "--dataset", "digits", "--set", "steps=1", "--set", "children=2"]
SEARCH += ["--set", "epochs=1", "--set", "start_epochs=1", "--set", "final_epochs=1"]


def genomorph(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genomorph.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished real search on digits; tests must not write into it."""
    out = tmp_path_factory.mktemp("dashboard") / "nash-run"
    done = genomorph(*SEARCH, "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def digits_report(digits_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``genomorph report RUN --html`` of `digits_run`, made once per session."""
    out = tmp_path_factory.mktemp("dashboard-report") / "report.html"
    done = genomorph("report", str(digits_run), "--html", str(out), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"wrote {out}" in done.stderr
    return out

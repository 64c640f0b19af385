"""Helpers of the CLI tests: a runner, the examples and the installed console script."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from genomorph.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.genome"))

#: a small genome with a named value, a residual add and a head
SMALL = """\
# a tiny residual net
input 3x8x8
conv(4, 3) bn relu
x = maxpool(2)
add(_, conv(4, 3, bias=false) bn relu) relu
gap linear(10)
"""


def invoke(*args: str, input: str | None = None) -> Result:
    """Run ``genomorph ARGS`` in-process, stdout and stderr kept apart."""
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def console_script() -> str:
    """The installed ``genomorph`` executable next to this interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / "genomorph"
    found = str(beside) if beside.exists() else shutil.which("genomorph")
    if found is None:
        pytest.fail("the genomorph console script is not installed (pip install -e .)")
    return found


def run_script(
    *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [console_script(), *args],
        input=input,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )

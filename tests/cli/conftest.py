"""Fixtures of the CLI tests (helpers live in cli_helpers.py, importable by name)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import SMALL


@pytest.fixture
def small_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.genome"
    path.write_text(SMALL)
    return path

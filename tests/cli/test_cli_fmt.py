"""`genomorph fmt`: canonical text, idempotent on every example, with --check and --in-place."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import EXAMPLES, SMALL, invoke


def _fmt(*args: str, input: str | None = None) -> str:
    result = invoke("fmt", *args, input=input)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_fmt_is_idempotent_and_keeps_the_network(path: Path) -> None:
    once = _fmt(str(path))
    twice = _fmt("-", input=once)
    assert once == twice
    # the canonical text describes the same network
    before = invoke("validate", str(path)).stdout
    after = invoke("validate", "-", input=once).stdout
    assert before == after


def test_fmt_expands_definitions_and_drops_comments() -> None:
    text = "# comment\ninput 3x8x8\ndef block(c) = conv(c, 3) relu\nblock(4) block(8)\ngap linear(2)\n"
    out = _fmt("-", input=text)
    assert "def " not in out and "#" not in out
    assert "conv(4, 3)" in out and "conv(8, 3)" in out
    assert out.endswith("\n") and not out.endswith("\n\n")


def test_check_fails_on_non_canonical_text() -> None:
    result = invoke("fmt", "--check", "-", input=SMALL)  # SMALL has a comment: not canonical
    assert result.exit_code == 1
    assert result.stdout == "" and "not canonical" in result.stderr


def test_in_place_rewrites_the_file(tmp_path: Path) -> None:
    path = tmp_path / "net.genome"
    path.write_text(SMALL)
    result = invoke("fmt", "--in-place", str(path))
    assert result.exit_code == 0
    assert path.read_text() == _fmt("-", input=SMALL)
    assert invoke("fmt", "--check", str(path)).exit_code == 0


def test_in_place_needs_a_file_and_excludes_check() -> None:
    assert invoke("fmt", "--in-place", "-", input=SMALL).exit_code == 2
    assert invoke("fmt", "--in-place", "--check", "-", input=SMALL).exit_code == 2

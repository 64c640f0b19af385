"""Drawing DOT text as SVG or PNG with Graphviz's ``dot`` program, when it is installed."""

from __future__ import annotations

import shutil
import subprocess

from genomorph.ir.errors import GenomorphError

INSTALL_HINT = (
    "install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) "
    "or `conda install graphviz`; DOT, JSON and Mermaid output work without it "
    "(e.g. `genomorph render FILE -o graph.dot`)"
)
#: a generous ceiling: even the 20-cell DARTS network lays out in a few seconds
TIMEOUT_S = 300


class MissingToolError(GenomorphError):
    """An external program genomorph needs for this request is not installed."""


def find_dot() -> str:
    dot = shutil.which("dot")
    if dot is None:
        raise MissingToolError(
            "rendering SVG or PNG needs Graphviz's `dot` program, which is not on PATH", hint=INSTALL_HINT
        )
    return dot


def draw(dot_text: str, image_format: str) -> bytes:
    """Run ``dot -T<format>`` on ``dot_text`` and return the image bytes."""
    dot = find_dot()
    done = subprocess.run(
        [dot, f"-T{image_format}"],
        input=dot_text.encode("utf-8"),
        capture_output=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        # genomorph wrote the DOT text, so Graphviz rejecting it is our bug, not the user's
        raise RuntimeError(
            f"Graphviz `dot -T{image_format}` failed ({done.returncode}): {done.stderr.decode(errors='replace')}"
        )
    return done.stdout

"""`genomorph render`: text formats always, SVG/PNG through Graphviz when it is installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cli_helpers import EXAMPLES, SMALL, invoke, run_script

#: CI installs Graphviz (.ci/run), so there a missing `dot` fails these tests instead of skipping them
needs_graphviz = pytest.mark.skipif(
    shutil.which("dot") is None and not os.environ.get("CI"), reason="Graphviz `dot` not installed"
)


def test_dot_to_stdout_by_default() -> None:
    result = invoke("render", "-", input=SMALL)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("digraph genome {")
    assert "conv(4, 3, bias=false)" in result.stdout and "4x4x4" in result.stdout
    assert re.search(r'label="n\d+ x\\nmaxpool\(2\)\\n4x4x4"', result.stdout)  # `x` shows its name


@pytest.mark.parametrize(
    ("suffix", "check"),
    [
        (".dot", lambda text: text.startswith("digraph genome {")),
        (".gv", lambda text: text.startswith("digraph genome {")),
        (".mmd", lambda text: text.startswith("flowchart TB\n")),
        (".json", lambda text: json.loads(text)["multigraph"] is True),
    ],
)
def test_text_format_from_suffix(tmp_path: Path, suffix: str, check) -> None:
    out = tmp_path / "sub" / f"graph{suffix}"
    result = invoke("render", "-", "-o", str(out), input=SMALL)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert check(out.read_text())


def test_json_nodes_match_info(tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    assert invoke("render", "-", "-o", str(out), input=SMALL).exit_code == 0
    data = json.loads(out.read_text())
    info = json.loads(invoke("info", "-", "--json", input=SMALL).stdout)
    assert [n["id"] for n in data["nodes"]] == [n["id"] for n in info["nodes"]]
    assert sum(n["params"] for n in data["nodes"]) == info["params"]
    assert len(data["links"]) == sum(len(n["inputs"]) for n in info["nodes"])


def test_explicit_format_beats_suffix_and_direction(tmp_path: Path) -> None:
    out = tmp_path / "graph.txt"
    result = invoke("render", "-", "--format", "mermaid", "--direction", "LR", "-o", str(out), input=SMALL)
    assert result.exit_code == 0
    assert out.read_text().startswith("flowchart LR\n")


def test_unknown_suffix_without_format_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("render", "-", "-o", str(tmp_path / "graph.gif"), input=SMALL)
    assert result.exit_code == 2
    assert "--format" in result.stderr


@pytest.mark.skipif(not EXAMPLES, reason="no examples yet")
@pytest.mark.parametrize("fmt", ["dot", "mermaid", "json"])
def test_every_example_renders_as_text(fmt: str) -> None:
    for path in EXAMPLES:
        result = invoke("render", str(path), "--format", fmt)
        assert result.exit_code == 0, (path, result.output)
        assert result.stdout.count("n0") >= 1


@needs_graphviz
def test_png_is_a_real_image(tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "small.png"
    result = invoke("render", "-", "-o", str(out), input=SMALL)
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        assert image.format == "PNG"
        width, height = image.size
    # a top-to-bottom chain of ten nodes: taller than wide, and far from a blank stub
    assert height > width > 50
    assert height > 400


@needs_graphviz
def test_svg_contains_the_labels(tmp_path: Path) -> None:
    out = tmp_path / "small.svg"
    result = invoke("render", "-", "--format", "svg", "-o", str(out), input=SMALL)
    assert result.exit_code == 0, result.output
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    texts = {el.text for el in root.iter() if el.tag.endswith("text")}
    assert {"conv(4, 3)", "conv(4, 3, bias=false)", "linear(10)", "add"} <= texts


def test_images_without_graphviz_say_what_to_install(tmp_path: Path) -> None:
    """Run the real console script with a PATH on which there is no `dot`."""
    bare = tmp_path / "bin"
    bare.mkdir()
    env = {**os.environ, "PATH": str(bare)}
    source = tmp_path / "small.genome"
    source.write_text(SMALL)
    for fmt in ("png", "svg"):
        out = tmp_path / f"graph.{fmt}"
        done = run_script("render", str(source), "-o", str(out), env=env)
        assert done.returncode == 2, done.stderr
        assert "apt-get install graphviz" in done.stderr and "Traceback" not in done.stderr
        assert not out.exists()
    # text formats still work there
    done = run_script("render", str(source), "-o", str(tmp_path / "graph.dot"), env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "graph.dot").read_text().startswith("digraph genome {")

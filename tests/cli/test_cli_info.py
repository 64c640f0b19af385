"""`genomorph info`: the JSON keys, and counts equal to what torch reports for the lowered module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import EXAMPLES, SMALL, invoke

REQUIRED_KEYS = {
    "params",
    "arch_params",
    "macs",
    "depth",
    "input_shape",
    "output_shape",
    "nodes",
    "histogram",
}


def _info(path_or_dash: str, text: str | None = None) -> dict:
    result = invoke("info", path_or_dash, "--json", input=text)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_keys_and_consistency() -> None:
    data = _info("-", SMALL)
    assert data.keys() >= REQUIRED_KEYS
    assert data["input_shape"] == [3, 8, 8] and data["output_shape"] == [10]
    assert data["source"] == "<stdin>"
    assert len(data["nodes"]) == data["num_nodes"] == sum(data["histogram"].values())
    assert sum(n["params"] for n in data["nodes"]) == data["params"]
    assert sum(n["macs"] for n in data["nodes"]) == data["macs"]
    kinds = [n["kind"] for n in data["nodes"]]
    assert kinds[0] == "input" and kinds[-1] == "linear"
    assert data["histogram"]["conv"] == 2 and data["histogram"]["add"] == 1
    named = [n for n in data["nodes"] if n["name"] == "x"]
    assert len(named) == 1 and named[0]["kind"] == "maxpool" and named[0]["out_shape"] == [4, 4, 4]
    conv = next(n for n in data["nodes"] if n["kind"] == "conv")
    assert conv["op"] == "conv(4, 3)" and conv["args"]["channels"] == 4
    # every node's inputs are earlier nodes
    seen: set[int] = set()
    for node in data["nodes"]:
        assert set(node["inputs"]) <= seen
        seen.add(node["id"])


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_params_equal_the_lowered_module(path: Path) -> None:
    from genomorph.grammar import parse_file
    from genomorph.lower import lower

    data = _info(str(path))
    module = lower(parse_file(path))
    assert data["params"] == sum(p.numel() for p in module.parameters())
    assert data["arch_params"] == sum(p.numel() for p in module.arch_parameters())


def test_table_shows_nodes_and_totals() -> None:
    data = _info("-", SMALL)
    result = invoke("info", "-", input=SMALL)
    assert result.exit_code == 0
    out = result.stdout
    for node in data["nodes"]:
        assert node["ref"] in out
    assert "conv(4, 3, bias=false)" in out
    assert f"{data['params']:,}" in out and f"{data['macs']:,}" in out
    assert "input 3x8x8 -> output 10" in out
    summary = invoke("info", "-", "--summary", input=SMALL).stdout
    assert "conv(4, 3, bias=false)" not in summary and f"params {data['params']:,}" in summary

"""The hand-written example genomes: what each must contain, and that it lowers and runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from genomorph.grammar import parse, parse_file
from genomorph.ir.graph import Graph
from genomorph.ir.ops import ACTIVATIONS
from genomorph.ir.printer import print_genome
from genomorph.lower import lower

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MINE = ["vanilla", "ga_sequential", "hresnet_mlp"]


def load(name: str) -> Graph:
    return parse_file(EXAMPLES / f"{name}.genome")


def kinds(graph: Graph) -> list[str]:
    return [n.kind for n in graph.nodes()]


def test_vanilla_is_three_conv_bn_relu_blocks_with_pooling_between() -> None:
    graph = load("vanilla")
    assert graph.stats().input_shape == (3, 32, 32)
    assert graph.stats().output_shape == (10,)
    assert kinds(graph) == [
        "input",
        *["conv", "bn", "relu", "maxpool"] * 2,
        "conv", "bn", "relu",
        "gap", "linear",
    ]  # fmt: skip


def test_ga_sequential_follows_the_paper_004_space() -> None:
    graph = load("ga_sequential")
    nodes = graph.nodes()
    assert graph.stats().input_shape == (1, 28, 28)
    convs = [n.op for n in nodes if n.kind == "conv"]
    assert sum(c.stride == 2 for c in convs) == 2  # exactly two reduction convs
    assert all(c.stride in (1, 2) for c in convs)
    # every conv is followed by one of the five activations, and more than one kind is used
    acts = [nodes[i + 1].kind for i, n in enumerate(nodes) if n.kind == "conv"]
    assert set(acts) <= {"relu", "sigmoid", "tanh", "swish", "gelu"} and len(set(acts)) >= 3
    # sequential: every node but the input has exactly one input, no merges
    assert all(len(graph.inputs(n.id)) == 1 for n in nodes[1:])
    # fixed head GAP -> FC64 -> FC10
    head = [n for n in nodes if n.kind in ("gap", "linear")]
    assert [n.kind for n in head] == ["gap", "linear", "linear"]
    assert [n.op.features for n in head[1:]] == [64, 10]


def hres_depth(graph: Graph, nid: int) -> int:
    """Nesting depth of the H-ResNet layer ending at add node ``nid`` (0 for a plain linear)."""
    if graph.kind(nid) != "add":
        return 0
    _, outer = graph.inputs(nid)  # add(W, f2(act(f1(x))))
    act = graph.inputs(_first_node_of(graph, outer, stop_kinds=ACTIVATIONS))[0]
    inner = graph.inputs(act)[0]
    return 1 + max(hres_depth(graph, inner), hres_depth(graph, outer))


def _first_node_of(graph: Graph, nid: int, stop_kinds: frozenset[str]) -> int:
    """Walk back from the end of f2 to its first node (the one reading the activation)."""
    while graph.kind(graph.inputs(nid)[0]) not in stop_kinds:
        nid = graph.inputs(nid)[0]
    return nid


def test_hresnet_mlp_nests_at_least_two_levels() -> None:
    graph = load("hresnet_mlp")
    assert graph.stats().input_shape == (2,)
    assert graph.stats().output_shape == (2,)
    assert set(graph.histogram()) == {"input", "linear", "relu", "add"}
    assert hres_depth(graph, graph.output_node()) >= 3  # the file writes three levels


@pytest.mark.parametrize("name", MINE)
def test_example_round_trips_and_runs(name: str) -> None:
    graph = load(name)
    text = print_genome(graph)
    assert parse(text).structure() == graph.structure()
    module = lower(graph).eval()
    assert sum(p.numel() for p in module.parameters()) == graph.stats().params
    x = torch.randn(2, *graph.stats().input_shape)
    with torch.no_grad():
        out = module(x)
    assert out.shape == (2, *graph.stats().output_shape)
    assert torch.isfinite(out).all()

"""NAS-Bench-201 networks reproduce xautodl's ``TinyNetwork`` exactly.

Reference figures were computed by running the official code (github.com/D-X-Y/AutoDL-Projects,
``xautodl/models/cell_infers/tiny_network.py`` with ``CellStructure.str2structure``) on CPU and
summing ``p.numel() for p in model.parameters()``. With the official state_dict copied in through
the node-id weight mapping, the lowered IR gave the same logits (max abs difference 0.0, eval
mode); that comparison needs the official code and is not repeated here.
"""

from __future__ import annotations

import pytest
import torch
from genomorph.grammar.nb201 import graph_to_nb201, nb201_to_graph
from genomorph.ir import Graph
from genomorph.ir.stats import param_count
from genomorph.lower import lower

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
MIXED = "|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.mark.parametrize(
    ("arch", "want"),
    [
        (BEST, 1288506),  # TinyNetwork(16, 5, str2structure(BEST), 10)
        (MIXED, 101306),  # TinyNetwork(16, 5, str2structure(MIXED), 10)
    ],
)
def test_parameter_count(arch: str, want: int) -> None:
    assert nb201_to_graph(arch, channels=16, cells=5, classes=10).stats().params == want


def test_stages_and_residual_reductions() -> None:
    graph = nb201_to_graph(BEST, channels=8, cells=2)
    shapes = graph.shapes()
    # TinyNetwork.cells: N cells at C, ResNetBasicblock, N at 2C, ResNetBasicblock, N at 4C
    want = [(8, 32, 32)] * 2 + [(16, 16, 16)] * 3 + [(32, 8, 8)] * 3
    names = [f"res{i}" if i in (2, 5) else f"c{i}" for i in range(8)]
    assert [shapes[graph.find(name)] for name in names] == want
    for block in (2, 5):
        shortcut, body = graph.inputs(graph.find(f"res{block}"))
        assert graph.kind(shortcut) == "conv" and graph.kind(graph.inputs(shortcut)[0]) == "avgpool"
        assert graph.kind(body) == "bn"


def test_edge_weights_follow_relu_conv_bn() -> None:
    # nor_conv_kxk = ReLU, conv kxk without bias (affine=True), BN: C*C*k*k + 2C weights
    graph = nb201_to_graph("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|", channels=4, cells=1)
    node1 = graph.find("c0_n1")
    conv3 = graph.inputs(node1)[0]
    assert param_count(graph, conv3) + param_count(graph, node1) == 4 * 4 * 9 + 2 * 4
    conv1, identity = graph.inputs(graph.inputs(graph.find("c0"))[0])[0], graph.inputs(graph.find("c0"))[1]
    assert param_count(graph, conv1) == 4 * 4
    assert graph.kind(identity) == "identity"


@pytest.fixture(scope="module")
def small() -> Graph:
    return nb201_to_graph(BEST, channels=4, cells=1, classes=10)


def test_lowered_network(small: Graph) -> None:
    torch.manual_seed(0)
    module = lower(small)
    assert sum(p.numel() for p in module.parameters()) == small.stats().params
    assert module(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_none_everywhere_cuts_the_input_off() -> None:
    # every cell outputs zeros; the residual blocks see zeros; the logits no longer depend on x
    torch.manual_seed(0)
    module = lower(nb201_to_graph(ALL_NONE, channels=4, cells=1)).eval()
    with torch.no_grad():
        assert torch.equal(module(torch.randn(1, 3, 32, 32)), module(torch.randn(1, 3, 32, 32)))


class _Recorder(torch.fx.Interpreter):
    """Runs a lowered module and keeps a copy of every fx value (fx nodes are named ``n{id}``)."""

    def __init__(self, module: torch.fx.GraphModule) -> None:
        super().__init__(module)
        self.values: dict[str, torch.Tensor] = {}

    def run_node(self, n: torch.fx.Node) -> object:
        out = super().run_node(n)
        if isinstance(out, torch.Tensor):
            self.values[n.name] = out.clone()
        return out


def test_skip_only_cell_multiplies_by_four() -> None:
    # InferCell sums its edges: node1 = x, node2 = x + node1 = 2x, node3 = x + node1 + node2 = 4x
    skip = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    graph = nb201_to_graph(skip, channels=4, cells=1)
    torch.manual_seed(0)
    recorder = _Recorder(lower(graph).eval())
    with torch.no_grad():
        recorder.run(torch.randn(2, 3, 32, 32))
    stem, cell = recorder.values[f"n{graph.find('stem')}"], recorder.values[f"n{graph.find('c0')}"]
    torch.testing.assert_close(cell, 4 * stem)


# Cells with nodes no later node reads: InferCell computes them and drops them, so their weights
# count. Figures by hand from the ops (nor_conv_kxk = C*C*k*k + 2C; stem, the two residual blocks,
# last BN and classifier of TinyNetwork(16, 5, ., 10) hold 73,306): node 1 unread -> 5 cells of
# one nor_conv_3x3 per stage; node 2 unread -> its nor_conv_1x1 and nor_conv_3x3 still count.
@pytest.mark.parametrize(
    ("arch", "want"),
    [
        ("|nor_conv_3x3~0|+|skip_connect~0|", 73306 + 5 * (2336 + 9280 + 36992)),
        (
            "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~0|+|skip_connect~0|none~1|",
            73306 + 5 * (2 * 2336 + 288 + 2 * 9280 + 1088 + 2 * 36992 + 4224),
        ),
        (ALL_NONE, 73306),
    ],
)
def test_unread_nodes_keep_their_weights(arch: str, want: int) -> None:
    graph = nb201_to_graph(arch)
    assert graph.stats().params == want
    assert graph_to_nb201(graph) == arch  # the zero-weighted keepers are not edges of the string


def test_unread_nodes_do_not_change_the_function() -> None:
    # the unread node joins the output sum multiplied by zero: the cell is its edge from node 0
    graph = nb201_to_graph("|skip_connect~0|+|skip_connect~0|", channels=4, cells=1)
    torch.manual_seed(0)
    recorder = _Recorder(lower(graph).eval())
    with torch.no_grad():
        recorder.run(torch.randn(2, 3, 32, 32))
    stem, cell = recorder.values[f"n{graph.find('stem')}"], recorder.values[f"n{graph.find('c0')}"]
    torch.testing.assert_close(cell, stem)


@pytest.mark.parametrize(
    "arch", [BEST, MIXED, ALL_NONE, "|nor_conv_1x1~0|", "|skip_connect~0|+|avg_pool_3x3~1|"]
)
def test_round_trip(arch: str) -> None:
    assert graph_to_nb201(nb201_to_graph(arch, channels=4, cells=1)) == arch

"""DARTS networks reproduce quark0/darts exactly.

Reference figures were computed by running the official code (github.com/quark0/darts, commit
f276dd3, ``cnn/model.py`` and ``cnn/model_search.py``) on CPU and summing
``p.numel() for p in model.parameters()``; the genotypes are quoted from ``cnn/genotypes.py``
(DARTS_V1, DARTS_V2) and from github.com/yuhuixu1993/PC-DARTS ``genotypes.py`` (PC_DARTS_cifar).
With the official state_dict copied in through the node-id weight mapping, the lowered IR gave
the same logits as the official modules (max abs difference 0.0, eval and train mode, auxiliary
logits included); that comparison needs the official code and is not repeated here.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from genomorph.grammar.darts import (
    PRIMITIVES,
    darts_supernet,
    genotype_to_graph,
    graph_to_genotype,
    parse_genotype,
)
from genomorph.ir import GenomeSemanticError, Graph
from genomorph.ir.ops import Conv
from genomorph.ir.stats import arch_param_shapes, param_count
from genomorph.lower import lower

DARTS_V1 = "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"
DARTS_V2 = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
PC_DARTS = "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))"


def _module_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------- parameter counts (official code)


@pytest.mark.parametrize(
    ("genotype", "auxiliary", "want"),
    [
        (DARTS_V2, True, 3825768),  # NetworkCIFAR(36, 10, 20, True, DARTS_V2)
        (DARTS_V2, False, 3349342),  # NetworkCIFAR(36, 10, 20, False, DARTS_V2)
        (DARTS_V1, True, 3645840),  # NetworkCIFAR(36, 10, 20, True, DARTS_V1)
        (PC_DARTS, False, 3634678),  # NetworkCIFAR(36, 10, 20, False, PC_DARTS_cifar): "3.6M" in its paper
        (PC_DARTS, True, 4111104),  # NetworkCIFAR(36, 10, 20, True, PC_DARTS_cifar)
    ],
)
def test_evaluation_network_parameter_count(genotype: str, auxiliary: bool, want: int) -> None:
    graph = genotype_to_graph(genotype, channels=36, cells=20, classes=10, auxiliary=auxiliary)
    assert graph.stats().params == want


def test_search_network_parameter_count() -> None:
    # model_search.Network(16, 10, 8, criterion): 1930618 weights; alphas_normal + alphas_reduce 14 x 8 each
    graph = darts_supernet(channels=16, cells=8, classes=10)
    stats = graph.stats()
    assert (stats.params, stats.arch_params) == (1930618, 224)
    assert arch_param_shapes(graph) == {"normal": (14, 8), "reduce": (14, 8)}


def test_search_network_other_steps_and_multiplier() -> None:
    # model_search.Network(8, 10, 5, criterion, steps=3, multiplier=3): 256498 weights, 2 x 9 x 8 alphas
    stats = darts_supernet(channels=8, cells=5, classes=10, steps=3, multiplier=3).stats()
    assert (stats.params, stats.arch_params) == (256498, 144)


# ---------------------------------------------------------------- op semantics in the IR


def _edge_params(op: str, c: int, stride: int) -> int:
    """Weights of one edge: sum over the op chain the converter emits into a 1-edge probe cell."""
    text = f"Genotype(normal=[('{op}', 0), ('{op}', 1)], normal_concat=[2], reduce=[('{op}', 0), ('{op}', 1)], reduce_concat=[2])"
    graph = genotype_to_graph(text, channels=c, cells=1, classes=2)  # one cell, a reduction cell
    node = graph.find("c0_n2")
    total = 0
    for end in graph.inputs(node)[:1]:
        while graph.node(end).name is None:
            total += param_count(graph, end)
            end = graph.inputs(end)[0]
    assert stride == 2  # cells=1 makes cell 0 a reduction cell: edges from inputs run at stride 2
    return total


@pytest.mark.parametrize(
    ("op", "want"),
    [
        # operations.py: SepConv = 2 x (ReLU, depthwise kxk, pointwise 1x1, BN); DilConv = once
        ("sep_conv_3x3", lambda c: 2 * (c * 9 + c * c + 2 * c)),
        ("sep_conv_5x5", lambda c: 2 * (c * 25 + c * c + 2 * c)),
        ("dil_conv_3x3", lambda c: c * 9 + c * c + 2 * c),
        ("dil_conv_5x5", lambda c: c * 25 + c * c + 2 * c),
        # FactorizedReduce at stride 2: two 1x1 convs to C/2 each, BN over C
        ("skip_connect", lambda c: 2 * (c * c // 2) + 2 * c),
        ("max_pool_3x3", lambda c: 0),
        ("avg_pool_3x3", lambda c: 0),
        ("none", lambda c: 0),
    ],
)
def test_edge_operation_weights(op: str, want) -> None:  # type: ignore[no-untyped-def]
    # the only cell reduces, so its channels are doubled: C = 2 * 6
    assert _edge_params(op, 6, stride=2) == want(12)


def test_reduction_cells_halve_size_and_double_channels() -> None:
    graph = genotype_to_graph(DARTS_V2, channels=8, cells=8, classes=10)
    shapes = graph.shapes()
    size, c = 32, 8
    for i in range(8):
        if i in (8 // 3, 2 * 8 // 3):
            size, c = size // 2, c * 2
        assert shapes[graph.find(f"c{i}")] == (4 * c, size, size), f"cell {i}"
        # preprocessing: FactorizedReduce after a reduction cell, ReLU-conv1x1-BN otherwise
        first = graph.kind(graph.find(f"c{i}_s0"))
        assert first == ("factorized_reduce" if i - 1 in (8 // 3, 2 * 8 // 3) else "bn"), f"cell {i}"


def test_auxiliary_head_reads_cell_two_thirds_down() -> None:
    graph = genotype_to_graph(DARTS_V2, channels=8, cells=8, classes=7, auxiliary=True)
    (aux,) = graph.aux_outputs()
    assert graph.op(aux).weight == pytest.approx(0.4)  # type: ignore[attr-defined]
    node = aux
    while graph.node(node).name in (None, "logits_aux"):
        node = graph.inputs(node)[0]
    assert graph.node(node).name == f"c{2 * 8 // 3}"
    assert graph.shapes()[node][1:] == (8, 8)
    assert graph.shapes()[aux] == (7,)


def test_auxiliary_head_needs_eight_by_eight_maps() -> None:
    with pytest.raises(GenomeSemanticError, match="8x8"):
        genotype_to_graph(DARTS_V2, channels=4, cells=3, auxiliary=True, input_shape=(3, 64, 64))


def test_search_cells_are_not_affine_and_every_edge_is_mixed() -> None:
    graph = darts_supernet(channels=4, cells=3)
    affine = [n.name for n in graph.nodes() if n.kind == "bn" and n.op.affine]  # type: ignore[attr-defined]
    assert affine == ["stem"]
    mixed = [n for n in graph.nodes() if n.kind == "mixed"]
    assert len(mixed) == 3 * 14
    for cell in range(3):
        group = "normal" if cell == 0 else "reduce"  # cells // 3 == 1 and 2 * cells // 3 == 2 reduce
        rows = sorted(
            n.op.row  # type: ignore[attr-defined]
            for n in mixed
            if n.op.group == group and _cell_of(graph, n.id) == cell  # type: ignore[attr-defined]
        )
        assert rows == list(range(14))
    assert {n.op.labels for n in mixed} == {PRIMITIVES}  # type: ignore[attr-defined]


def _cell_of(graph: Graph, nid: int) -> int:
    """Cell index of a mixed node: the name of the node it feeds, ``c<i>_n<k>``."""
    (user,) = graph.user_ids(nid)
    return int(graph.node(user).name.split("_")[0][1:])  # type: ignore[union-attr]


# ---------------------------------------------------------------- lowered networks


@pytest.fixture(scope="module")
def v2_small() -> Graph:
    return genotype_to_graph(DARTS_V2, channels=8, cells=5, classes=10, auxiliary=True)


def test_lowered_evaluation_network(v2_small: Graph) -> None:
    torch.manual_seed(0)
    module = lower(v2_small)
    assert _module_params(module) == v2_small.stats().params
    assert module.aux_weights == (0.4,)
    module.train()
    logits, aux = module(torch.randn(2, 3, 32, 32))
    assert logits.shape == aux.shape == (2, 10)
    assert not torch.allclose(logits, aux)


def test_all_none_cells_cut_the_input_off() -> None:
    # 'none' is Zero: with it on every edge no information from the input reaches the classifier
    none = "Genotype(normal=[('none', 0), ('none', 1)], normal_concat=[2], reduce=[('none', 0), ('none', 1)], reduce_concat=[2])"
    torch.manual_seed(0)
    module = lower(genotype_to_graph(none, channels=4, cells=3)).eval()
    with torch.no_grad():
        a, b = module(torch.randn(1, 3, 32, 32)), module(torch.randn(1, 3, 32, 32))
    assert torch.equal(a, b)
    torch.manual_seed(0)
    skip = none.replace("none", "skip_connect")
    module = lower(genotype_to_graph(skip, channels=4, cells=3)).eval()
    with torch.no_grad():
        assert not torch.equal(module(torch.randn(1, 3, 32, 32)), module(torch.randn(1, 3, 32, 32)))


def test_lowered_supernet_keeps_architecture_parameters_apart() -> None:
    graph = darts_supernet(channels=4, cells=3, input_shape=(3, 8, 8))  # small input: a quick forward
    torch.manual_seed(0)
    module = lower(graph)
    assert _module_params(module) == graph.stats().params
    assert sum(p.numel() for p in module.arch_parameters()) == 224
    ids = {id(p) for p in module.parameters()}
    assert not any(id(p) in ids for p in module.arch_parameters())
    assert module(torch.randn(2, 3, 8, 8)).shape == (2, 10)


# ---------------------------------------------------------------- discretisation (Network.genotype)


def _arch_for(genotype_text: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Architecture weights whose DARTS discretisation is ``genotype_text`` (concat 2..5).

    'none' gets the largest weight everywhere, as DARTS must ignore it; the chosen edges get the
    next largest, the first listed edge of each node more than the second (DARTS lists the
    stronger first); every other weight is small noise.
    """
    genotype = parse_genotype(genotype_text)
    arch = {}
    for group, edges in (("normal", genotype.normal), ("reduce", genotype.reduce)):
        weights = rng.uniform(0, 1, size=(14, len(PRIMITIVES)))
        weights[:, PRIMITIVES.index("none")] = 10.0
        offset = 0
        for node in range(4):
            for rank, (op, j) in enumerate(edges[2 * node : 2 * node + 2]):
                weights[offset + j, PRIMITIVES.index(op)] = 6.0 - rank
            offset += node + 2
        arch[group] = weights
    return arch


@pytest.mark.parametrize("genotype", [DARTS_V2, DARTS_V1])
def test_discretisation_recovers_the_encoded_genotype(genotype: str) -> None:
    graph = darts_supernet(channels=4, cells=3)
    arch = _arch_for(genotype, np.random.default_rng(0))
    assert graph_to_genotype(graph, arch) == genotype


def test_discretisation_ties_prefer_the_lower_input_and_the_first_op() -> None:
    # equal weights: Python's stable sort in DARTS keeps inputs 0, 1; the first non-none op wins
    graph = darts_supernet(channels=4, cells=3)
    arch = {group: np.zeros((14, 8)) for group in ("normal", "reduce")}
    edges = ", ".join("('max_pool_3x3', 0), ('max_pool_3x3', 1)" for _ in range(4))
    want = f"Genotype(normal=[{edges}], normal_concat=[2, 3, 4, 5], reduce=[{edges}], reduce_concat=[2, 3, 4, 5])"
    assert graph_to_genotype(graph, arch) == want


def test_discretising_a_supernet_needs_architecture_weights() -> None:
    with pytest.raises(GenomeSemanticError, match="architecture weights"):
        graph_to_genotype(darts_supernet(channels=4, cells=3))


# ---------------------------------------------------------------- values that never reach the output


def test_unused_cell_input_is_left_out_and_the_genotype_survives(caplog: pytest.LogCaptureFixture) -> None:
    # no normal edge reads state 0, so the normal cells' preprocess0 computes a discarded value
    text = (
        "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 1), ('sep_conv_3x3', 2), ('avg_pool_3x3', 1)], "
        "normal_concat=[2, 3], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
        "('max_pool_3x3', 0)], reduce_concat=[2, 3])"
    )
    with caplog.at_level(logging.WARNING):
        graph = genotype_to_graph(text, channels=4, cells=6)
    assert "never reach" in caplog.text
    named = {n.name for n in graph.nodes()}
    assert [i for i in range(6) if f"c{i}_s0" in named] == [2, 4]  # only the reduction cells read state 0
    assert graph_to_genotype(graph) == text
    # official NetworkCIFAR(4, 10, 6, False, genotype): 5494 weights, of which the preprocess0 of
    # the normal cells 0, 1, 3, 5 hold 56 + 56 + 80 + 288 = 480
    assert graph.stats().params == 5494 - 480


def test_cell_preprocessing_is_relu_conv1x1_bn() -> None:
    graph = genotype_to_graph(DARTS_V2, channels=4, cells=3)
    pre = graph.find("c0_s1")
    node, ops = pre, [graph.op(pre)]
    while graph.node(node).name != "stem":
        node = graph.inputs(node)[0]
        ops.insert(0, graph.op(node))
    assert [op.kind for op in ops] == ["bn", "relu", "conv", "bn"]  # stem BN, then ReLU-conv-BN  # type: ignore[attr-defined]
    conv = graph.inputs(pre)[0]
    assert graph.op(conv) == Conv(channels=4, kernel=1, bias=False)
    # cell 0 reads the 3C = 12 channel stem: conv 1x1 12 -> 4 and an affine BN(4)
    assert param_count(graph, conv) + param_count(graph, pre) == 12 * 4 + 2 * 4

"""The PC-DARTS pass on the IR: what it builds, that the result is a genome like any other, and
the genotype rule with edge normalisation (torch-free)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from genomorph.grammar import parse
from genomorph.grammar.darts import darts_supernet, decode_genotype
from genomorph.ir import ConfigError, GenomeError, Graph
from genomorph.ir.ops import ChannelShuffle, ChannelSlice, EdgeSum, Mixed
from genomorph.ir.partial_channels import edge_input, partial_channels
from genomorph.ir.printer import print_genome
from genomorph.ir.stats import arch_param_shapes
from genomorph.search.strategies._darts_space import candidate_nodes

SEQ = """\
def layer(row) = mixed(conv(8, 3, bias=false) bn(affine=false), relu sep_conv(8, 3, bias=false) bn(affine=false), \
skip, zero, group=layers, row=row, labels=[conv_3x3, sep_conv_3x3, skip_connect, "none"])
input 1x8x8
conv(8, 3, bias=false) bn relu
layer(0) relu
layer(1)
gap linear(10)
"""


def _cells(channels: int = 4, cells: int = 3) -> Graph:
    return darts_supernet(channels, cells, 10, input_shape=(1, 8, 8))


def _candidate_params(graph: Graph) -> int:
    nodes = [nid for group in candidate_nodes(graph).values() for nid in group]
    assert nodes
    shapes = graph.shapes()
    return sum(
        math.prod(s)
        for nid in nodes
        for s in graph.op(nid).param_shapes([shapes[i] for i in graph.inputs(nid)]).values()
    )


@pytest.mark.parametrize("k", [2, 4])
def test_the_pass_output_validates_prints_and_reparses(k: int) -> None:
    graph = _cells()
    pc = partial_channels(graph, k)
    text = print_genome(pc)
    again = parse(text)
    assert again.same_structure(pc)
    assert print_genome(again) == text  # canonical
    assert "channel_slice(0, " in text and f"channel_shuffle({k})" in text and "edge_sum(" in text
    assert again.stats().params == pc.stats().params


def test_with_k_1_the_graph_is_unchanged() -> None:
    graph = _cells()
    same = partial_channels(graph, 1)
    assert same is not graph and print_genome(same) == print_genome(graph)
    assert len(same) == len(graph)


def test_the_input_graph_is_left_alone() -> None:
    graph = _cells()
    before = print_genome(graph)
    partial_channels(graph, 2)
    assert print_genome(graph) == before


def test_every_edge_is_split_and_every_node_edge_normalised() -> None:
    graph = _cells(channels=4, cells=3)
    pc = partial_channels(graph, 2)
    hist, plain = pc.histogram(), graph.histogram()
    edges = plain["mixed"]  # 14 edges per cell
    assert edges == 3 * 14 and hist["mixed"] == edges
    assert hist["channel_shuffle"] == hist["concat"] - plain["concat"] == edges
    assert hist["channel_slice"] == 2 * edges
    assert hist["edge_sum"] == 3 * 4 and plain["add"] - hist.get("add", 0) == 3 * 4  # 4 nodes a cell
    # the two reduction cells pool the bypassed channels of their 2 x 2 stride-2 edges... per cell:
    # edges from the cell inputs are strided, 2 inputs x 4 nodes = 8 of them
    assert hist["maxpool"] - plain["maxpool"] == 2 * 8
    for nid in pc.order():
        op = pc.op(nid)
        if isinstance(op, Mixed):  # the candidates see C/K channels and give C/K
            x, _ = edge_input(pc, nid)
            assert isinstance(pc.op(x), ChannelSlice) and pc.op(x).start == 0
            assert pc.shape(nid)[0] * 2 == pc.shape(pc.inputs(x)[0])[0]
        if isinstance(op, ChannelShuffle):
            assert op.groups == 2


def test_edge_parameters_are_one_per_row_of_each_group() -> None:
    graph = _cells()
    pc = partial_channels(graph, 2)
    assert arch_param_shapes(pc) == {**arch_param_shapes(graph), "normal_beta": (14,), "reduce_beta": (14,)}
    firsts = sorted({op.first for op in map(pc.op, pc.order()) if isinstance(op, EdgeSum)})
    assert firsts == [0, 2, 5, 9]  # nodes 2..5 of a cell read rows 0-1, 2-4, 5-8, 9-13


@pytest.mark.parametrize("k", [2, 4])
def test_candidate_op_parameters_shrink_by_at_least_k(k: int) -> None:
    graph = _cells(channels=8, cells=3)
    plain, pc = _candidate_params(graph), _candidate_params(partial_channels(graph, k))
    # depthwise filters and factorized_reduce shrink by K, pointwise convs by K^2
    assert plain / k**2 <= pc <= plain / k


def test_a_sequential_supernet_is_split_too() -> None:
    pc = partial_channels(parse(SEQ), 4)
    assert pc.histogram()["channel_shuffle"] == 2 and "edge_sum" not in pc.histogram()
    assert "layers_beta" not in arch_param_shapes(pc)  # no node sums several edges
    assert print_genome(parse(print_genome(pc))) == print_genome(pc)


def test_an_edge_reading_another_edge_reads_its_split_form() -> None:
    text = (
        "input 1x8x8\nconv(8, 3) bn\n"
        "mixed(skip, relu conv(8, 3), group=g) mixed(skip, relu conv(8, 5), group=g, row=1)\n"
        "gap linear(10)\n"
    )
    pc = partial_channels(parse(text), 2)
    assert pc.histogram()["mixed"] == 2 and pc.histogram()["channel_shuffle"] == 2
    second = [nid for nid in pc.order() if isinstance(pc.op(nid), Mixed)][1]
    x, _ = edge_input(pc, second)  # the slice of the first edge's shuffled output
    assert isinstance(pc.op(pc.inputs(x)[0]), ChannelShuffle)
    convs = [pc.op(nid) for nid in pc.order() if pc.kind(nid) == "conv"]
    assert [c.channels for c in convs] == [8, 4, 4]  # the stem, then both candidates narrowed


def test_channels_not_divisible_by_k_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"K=3 needs the channels of every edge divisible by 3.*reads 4"):
        partial_channels(_cells(channels=4), 3)


def test_edges_that_change_the_channel_count_are_refused() -> None:
    text = "input 1x8x8\nmixed(conv(8, 3), conv(8, 5), group=g)\ngap linear(10)\n"
    with pytest.raises(ConfigError, match="keep their channel count.*map 1 channels to 8"):
        partial_channels(parse(text), 2)


def test_a_genome_without_mixed_ops_is_refused() -> None:
    with pytest.raises(ConfigError, match="no mixed ops"):
        partial_channels(parse("input 1x8x8\nconv(8, 3) gap linear(10)\n"), 2)
    with pytest.raises(ConfigError, match="positive integer"):
        partial_channels(_cells(), 0)


def test_the_new_ops_check_their_inputs_in_genome_text() -> None:
    text = "input 4x8x8\nchannel_slice(1, 3) channel_shuffle(2) gap linear(2)\n"
    assert parse(text).shape(2) == (2, 8, 8)
    with pytest.raises(GenomeError, match="reads past the 4 channels"):
        parse("input 4x8x8\nchannel_slice(2, 6)\n")
    with pytest.raises(GenomeError, match="larger than start"):
        parse("input 4x8x8\nchannel_slice(2, 2)\n")
    with pytest.raises(GenomeError, match="divisible by 3"):
        parse("input 4x8x8\nchannel_shuffle(3)\n")
    with pytest.raises(GenomeError, match="edge parameters of group 'g'"):
        parse("input 4x8x8\na = relu\nb = a tanh\nedge_sum(a, b, group=g)\n").stats()


def _genotype(graph: Graph, arch: dict[str, np.ndarray]) -> list[tuple[str, int]]:
    return list(decode_genotype(graph, arch).normal)


def test_the_genotype_weighs_each_nodes_edges_by_softmax_beta() -> None:
    graph = _cells()
    # α: every edge prefers sep_conv_3x3 equally, so without β the lower inputs win the ties
    alpha = np.zeros((14, 8))
    alpha[:, 4] = 1.0
    arch = {"normal": alpha, "reduce": alpha}
    plain = _genotype(graph, arch)
    assert plain[:2] == [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)]
    assert plain[6:] == [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)]
    # β favouring the edges from states 3 and 4 into node 5 (rows 12 and 13) changes its choice
    beta = np.zeros(14)
    beta[[12, 13]] = 2.0
    weighted = _genotype(graph, {**arch, "normal_beta": beta, "reduce_beta": np.zeros(14)})
    assert weighted[:6] == plain[:6]
    assert sorted(weighted[6:], key=lambda e: e[1]) == [("sep_conv_3x3", 3), ("sep_conv_3x3", 4)]
    # the op chosen on an edge follows α alone
    alpha2 = alpha.copy()
    alpha2[13] = 0.0
    alpha2[13, 6] = 1.0
    got = _genotype(graph, {"normal": alpha2, "reduce": alpha, "normal_beta": beta, "reduce_beta": beta})
    assert ("dil_conv_3x3", 4) in got[6:]

"""Interchange completeness: every genotype of the official DARTS ``genotypes.py`` form, and
every NAS-Bench-201 string the official API accepts, convert and read back unchanged.

NASNet and AmoebaNet are copied from quark0/darts ``cnn/genotypes.py``: five steps, concat
lists that skip states, and AmoebaNet's ``conv_7x1_1x7`` (rectangular kernels).
"""

from __future__ import annotations

import logging

import pytest
import torch
from click.testing import CliRunner
from genomorph.cli.main import main
from genomorph.grammar import parse
from genomorph.grammar.darts import genotype_to_graph, graph_to_genotype
from genomorph.grammar.nb201 import graph_to_nb201, nb201_to_graph
from genomorph.ir.printer import print_genome
from genomorph.lower import lower

NASNET = (
    "Genotype(normal=[('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 0), ('sep_conv_3x3', 0), "
    "('avg_pool_3x3', 1), ('skip_connect', 0), ('avg_pool_3x3', 0), ('avg_pool_3x3', 0), ('sep_conv_3x3', 1), "
    "('skip_connect', 1)], normal_concat=[2, 3, 4, 5, 6], reduce=[('sep_conv_5x5', 1), ('sep_conv_7x7', 0), "
    "('max_pool_3x3', 1), ('sep_conv_7x7', 0), ('avg_pool_3x3', 1), ('sep_conv_5x5', 0), ('skip_connect', 3), "
    "('avg_pool_3x3', 2), ('sep_conv_3x3', 2), ('max_pool_3x3', 1)], reduce_concat=[4, 5, 6])"
)
AMOEBANET = (
    "Genotype(normal=[('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 2), "
    "('sep_conv_3x3', 0), ('avg_pool_3x3', 3), ('sep_conv_3x3', 1), ('skip_connect', 1), ('skip_connect', 0), "
    "('avg_pool_3x3', 1)], normal_concat=[4, 5, 6], reduce=[('avg_pool_3x3', 0), ('sep_conv_3x3', 1), "
    "('max_pool_3x3', 0), ('sep_conv_7x7', 2), ('sep_conv_7x7', 0), ('avg_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('conv_7x1_1x7', 0), ('sep_conv_3x3', 5)], reduce_concat=[3, 4, 6])"
)


@pytest.mark.parametrize("genotype", [NASNET, AMOEBANET], ids=["nasnet", "amoebanet"])
def test_official_genotypes_convert_and_read_back(genotype: str) -> None:
    graph = genotype_to_graph(genotype, channels=8, cells=5)
    text = print_genome(graph)
    assert graph_to_genotype(parse(text)) == genotype  # through genome text, as a user has it
    module = lower(graph).eval()
    with torch.no_grad():
        assert module(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert graph.stats().params == sum(p.numel() for p in module.parameters())


def test_conv_7x1_1x7_is_the_reference_pair_of_rectangular_convs() -> None:
    # operations.py: ReLU, Conv2d(C, C, (1, 7), stride=(1, s), padding=(0, 3)), Conv2d(C, C, (7, 1),
    # stride=(s, 1), padding=(3, 0)), BatchNorm2d(C): 2 * 7 * C * C + 2 * C weights
    one = "Genotype(normal=[('conv_7x1_1x7', 0), ('skip_connect', 1)], normal_concat=[2], reduce=[('skip_connect', 0), ('skip_connect', 1)], reduce_concat=[2])"
    base = "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1)], normal_concat=[2], reduce=[('skip_connect', 0), ('skip_connect', 1)], reduce_concat=[2])"
    c = 4  # 3 cells: one normal cell at C, then two reductions; the normal cell's edge differs
    with_pair = genotype_to_graph(one, channels=c, cells=3).stats().params
    assert with_pair - genotype_to_graph(base, channels=c, cells=3).stats().params == 2 * 7 * c * c + 2 * c
    text = print_genome(genotype_to_graph(one, channels=c, cells=3))
    assert f"conv({c}, 1x7, bias=false) conv({c}, 7x1, bias=false) bn" in text


def test_unread_darts_values_are_counted_in_the_message(caplog: pytest.LogCaptureFixture) -> None:
    # node 2 is neither concatenated nor read: the reference computes it, the genome leaves it out
    genotype = (
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1)], "
        "normal_concat=[3], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 0), "
        "('max_pool_3x3', 1)], reduce_concat=[2, 3])"
    )
    with caplog.at_level(logging.WARNING):
        graph = genotype_to_graph(genotype, channels=16, cells=8)
    message = " ".join(r.getMessage() for r in caplog.records)
    genome = graph.stats().params
    assert (
        f"the genome {genome:,}" in message and "The reference network computes and discards them" in message
    )


@pytest.mark.parametrize(
    "arch",
    [
        "|nor_conv_3x3~0|+|skip_connect~0|",  # node 1 unread
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # all none
        "|nor_conv_1x1~0|+|avg_pool_3x3~0|+|nor_conv_3x3~0|",  # nodes 1 and 2 unread
        "|nor_conv_3x3~0|nor_conv_3x3~0|+|skip_connect~1|",  # a repeated edge
    ],
)
def test_nb201_strings_the_api_accepts_read_back_through_the_cli(arch: str) -> None:
    runner = CliRunner()
    genome = runner.invoke(main, ["convert", "--from", "nb201", arch], catch_exceptions=False)
    assert genome.exit_code == 0, genome.output
    back = runner.invoke(main, ["convert", "--to", "nb201", "-"], input=genome.output, catch_exceptions=False)
    assert back.exit_code == 0 and back.output.strip() == arch
    graph = nb201_to_graph(arch, channels=4, cells=1)
    assert graph_to_nb201(graph) == arch

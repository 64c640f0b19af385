"""Interchange with published architectures: DARTS Genotype text and NAS-Bench-201 arch strings.

Reading (any text of the published form, clear errors with positions), round trips through the
IR and through genome text, and the example files generated from the published figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from genomorph.grammar import parse, parse_file
from genomorph.grammar.darts import (
    Genotype,
    darts_supernet,
    genotype_to_graph,
    graph_to_genotype,
    parse_genotype,
)
from genomorph.grammar.nb201 import NB201_OPS, graph_to_nb201, nb201_to_graph, parse_nb201
from genomorph.ir import GenomeError, GenomeSemanticError, GenomeSyntaxError
from genomorph.ir.printer import print_genome
from hypothesis import given, settings
from hypothesis import strategies as st

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# quark0/darts cnn/genotypes.py
DARTS_V2 = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
# quark0/darts cnn/genotypes.py, as written there (5 nodes, partial reduce concat, sep_conv_7x7)
NASNET = """NASNet = Genotype(
  normal = [
    ('sep_conv_5x5', 1),
    ('sep_conv_3x3', 0),
    ('sep_conv_5x5', 0),
    ('sep_conv_3x3', 0),
    ('avg_pool_3x3', 1),
    ('skip_connect', 0),
    ('avg_pool_3x3', 0),
    ('avg_pool_3x3', 0),
    ('sep_conv_3x3', 1),
    ('skip_connect', 1),
  ],
  normal_concat = [2, 3, 4, 5, 6],
  reduce = [
    ('sep_conv_5x5', 1),
    ('sep_conv_7x7', 0),
    ('max_pool_3x3', 1),
    ('sep_conv_7x7', 0),
    ('avg_pool_3x3', 1),
    ('sep_conv_5x5', 0),
    ('skip_connect', 3),
    ('avg_pool_3x3', 2),
    ('sep_conv_3x3', 2),
    ('max_pool_3x3', 1),
  ],
  reduce_concat = [4, 5, 6],
)"""
NB201_BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


# ---------------------------------------------------------------- reading Genotype text


def test_genotype_text_forms_are_equivalent() -> None:
    want = parse_genotype(DARTS_V2)
    lists = DARTS_V2.replace("[2, 3, 4, 5]", "range(2, 6)")
    positional = DARTS_V2.replace("normal=", "").replace("normal_concat=", "").replace("reduce=", "")
    positional = positional.replace("reduce_concat=", "")
    tuples = DARTS_V2.replace("[", "(").replace("]", ")")
    spread = "\n  DARTS_V2 = genotypes.Genotype(\n" + DARTS_V2.removeprefix("Genotype(").replace(
        ", ", ",\n    "
    )
    for text in (lists, positional, tuples, spread):
        assert parse_genotype(text) == want, text
    assert want.normal_concat == (2, 3, 4, 5)
    assert want.normal[7] == ("dil_conv_3x3", 2)


def test_genotype_text_is_never_evaluated(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = f"Genotype(normal=__import__('pathlib').Path('{marker}').touch(), normal_concat=[2], reduce=[], reduce_concat=[2])"
    with pytest.raises(GenomeSyntaxError, match="normal must be a list"):
        parse_genotype(text)
    assert not marker.exists()


V2_ONE_LINE = DARTS_V2


@pytest.mark.parametrize(
    ("text", "error", "message", "line", "column"),
    [
        ("Genotype(normal=[", GenomeSyntaxError, "cannot read the Genotype text", 1, 17),
        ("Network(normal=[])", GenomeSyntaxError, "expected a call Genotype", 1, 1),
        (
            "Genotype(normal=[('sep_conv_3x3', 0), ('conv_3x3', 1)], normal_concat=[2], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])",
            GenomeSemanticError,
            "unknown DARTS operation 'conv_3x3'",
            1,
            40,
        ),
        (
            "Genotype(normal=[('sep_conv_3x3', 0),\n  ('sep_conv_3x3', 2)], normal_concat=[2], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])",
            GenomeSemanticError,
            "feeds node 2, which can only read states 0..1",
            2,
            3,
        ),
        (
            "Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])",
            GenomeSemanticError,
            "two edges per intermediate node",
            1,
            17,
        ),
        (
            "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2, 7], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])",
            GenomeSemanticError,
            "normal_concat names state 7",
            1,
            79,
        ),
        (
            "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2], reduce=[])",
            GenomeSyntaxError,
            "missing the field(s) reduce_concat",
            1,
            1,
        ),
        (
            "Genotype(normal=[('sep_conv_3x3', '0'), ('sep_conv_3x3', 1)], normal_concat=[2], reduce=[], reduce_concat=[2])",
            GenomeSyntaxError,
            "must be a pair ('op_name', input_index)",
            1,
            18,
        ),
    ],
)
def test_genotype_errors_point_at_the_problem(
    text: str, error: type[GenomeError], message: str, line: int, column: int
) -> None:
    with pytest.raises(error) as info:
        parse_genotype(text)
    err = info.value
    assert message in err.message
    assert err.span is not None and (err.span.line, err.span.column) == (line, column)
    assert "^" in str(err)  # the source line with a caret


@pytest.mark.parametrize(
    "text", ["", "   ", "1 +", "Genotype()", "x = 1; y = 2", "(" * 300, "Genotype(\x00)"]
)
def test_bad_genotype_text_raises_only_genome_errors(text: str) -> None:
    with pytest.raises(GenomeError):
        genotype_to_graph(text)


def test_bad_network_sizes() -> None:
    with pytest.raises(GenomeSemanticError, match="channels must be a positive integer"):
        genotype_to_graph(DARTS_V2, channels=0)
    with pytest.raises(GenomeSemanticError, match="multiples of 4"):
        genotype_to_graph(DARTS_V2, input_shape=(3, 30, 30))
    with pytest.raises(GenomeSemanticError, match="multiplier 7"):
        darts_supernet(steps=4, multiplier=7)


# ---------------------------------------------------------------- DARTS round trips


@pytest.mark.parametrize("text", [DARTS_V2, NASNET])
def test_genotype_round_trip(text: str) -> None:
    graph = genotype_to_graph(text, channels=4, cells=5)
    assert graph_to_genotype(graph) == parse_genotype(text).text()
    assert parse_genotype(graph_to_genotype(graph)) == parse_genotype(text)


def test_single_state_concat_is_the_state_itself() -> None:
    text = "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1)], normal_concat=[2], reduce=[('max_pool_3x3', 0), ('avg_pool_3x3', 1)], reduce_concat=[2])"
    graph = genotype_to_graph(text, channels=4, cells=3)
    assert graph.kind(graph.find("c0")) == "identity"
    assert graph.shapes()[graph.find("c0")] == (4, 32, 32)
    assert graph_to_genotype(graph) == text


_OPS = [
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
]


@st.composite
def genotypes(draw: st.DrawFn) -> Genotype:
    """Random genotypes whose every node reaches the output (concat lists every node)."""

    def cell() -> tuple[tuple[tuple[str, int], ...], tuple[int, ...]]:
        steps = draw(st.integers(1, 3))
        edges = tuple(
            (draw(st.sampled_from(_OPS)), draw(st.integers(0, k + 1))) for k in range(steps) for _ in range(2)
        )
        return edges, tuple(range(2, steps + 2))

    normal, normal_concat = cell()
    reduce, reduce_concat = cell()
    return Genotype(normal=normal, normal_concat=normal_concat, reduce=reduce, reduce_concat=reduce_concat)


@settings(max_examples=25, deadline=None)
@given(genotypes())
def test_random_genotypes_round_trip_through_graph_and_genome_text(genotype: Genotype) -> None:
    graph = genotype_to_graph(genotype.text(), channels=2, cells=3, classes=3)
    assert graph_to_genotype(graph) == genotype.text()
    reparsed = parse(print_genome(graph))
    assert reparsed.same_structure(graph)
    assert graph_to_genotype(reparsed) == genotype.text()


def test_supernet_survives_genome_text() -> None:
    graph = darts_supernet(channels=2, cells=3)
    reparsed = parse(print_genome(graph))
    assert reparsed.same_structure(graph)
    assert reparsed.stats().arch_params == 224


# ---------------------------------------------------------------- NAS-Bench-201 strings


@pytest.mark.parametrize(
    ("text", "error", "message", "column"),
    [
        ("", GenomeSyntaxError, "empty", 1),
        ("|nor_conv_3x3~0|+", GenomeSyntaxError, "node 2 is missing", 18),
        ("nor_conv_3x3~0|", GenomeSyntaxError, "node 1 must be written between bars", 1),
        (
            "|nor_conv_3x3~0|+|conv_3x3~0|",
            GenomeSemanticError,
            "unknown NAS-Bench-201 operation 'conv_3x3'",
            19,
        ),
        ("|nor_conv_3x3~0|+|none~0|none~2|", GenomeSemanticError, "node 2 can only read nodes 0..1", 31),
        ("|nor_conv_3x3|", GenomeSyntaxError, "needs '~input'", 2),
        ("|none~0|+|none~a|", GenomeSyntaxError, "must be a node number", 16),
        ("|none~0||none~0|", GenomeSyntaxError, "empty edge", 9),
    ],
)
def test_nb201_errors_point_at_the_column(
    text: str, error: type[GenomeError], message: str, column: int
) -> None:
    with pytest.raises(error) as info:
        parse_nb201(text)
    err = info.value
    assert message in err.message
    assert err.span is not None and (err.span.line, err.span.column) == (1, column)


@st.composite
def nb201_strings(draw: st.DrawFn) -> str:
    """NAS-Bench-201 style strings: every node reads every earlier node (any of the five ops)."""
    nodes = draw(st.integers(1, 3))
    parts = [
        "|" + "|".join(f"{draw(st.sampled_from(NB201_OPS))}~{j}" for j in range(k)) + "|"
        for k in range(1, nodes + 1)
    ]
    return "+".join(parts)


@settings(max_examples=25, deadline=None)
@given(nb201_strings())
def test_random_nb201_strings_round_trip(arch: str) -> None:
    assert parse_nb201(arch).text() == arch
    graph = nb201_to_graph(arch, channels=2, cells=1, classes=3)
    assert graph_to_nb201(graph) == arch
    assert graph_to_nb201(parse(print_genome(graph))) == arch


# ---------------------------------------------------------------- example files


def test_darts_v2_example() -> None:
    graph = parse_file(EXAMPLES / "darts_v2.genome")
    assert graph.same_structure(
        genotype_to_graph(DARTS_V2, channels=36, cells=20, classes=10, auxiliary=True)
    )
    assert graph_to_genotype(graph) == DARTS_V2
    assert graph.stats().params == 3825768  # quark0/darts NetworkCIFAR(36, 10, 20, True, DARTS_V2)


def test_darts_search_example() -> None:
    graph = parse_file(EXAMPLES / "darts_search.genome")
    assert graph.same_structure(darts_supernet(channels=16, cells=8, classes=10))
    stats = graph.stats()
    assert (stats.params, stats.arch_params) == (1930618, 224)  # quark0/darts model_search.Network(16, 10, 8)


def test_nb201_example() -> None:
    graph = parse_file(EXAMPLES / "nb201_best.genome")
    assert graph.same_structure(nb201_to_graph(NB201_BEST, channels=16, cells=5, classes=10))
    assert graph_to_nb201(graph) == NB201_BEST
    assert graph.stats().params == 1288506  # xautodl TinyNetwork(16, 5, NB201_BEST, 10)


# ---------------------------------------------------------------- reading networks back: errors


def test_reading_back_other_networks_is_a_clear_error() -> None:
    with pytest.raises(GenomeSemanticError, match="no DARTS cells"):
        graph_to_genotype(parse("input 3x8x8\nconv(4, 3) bn relu gap linear(2)"))
    with pytest.raises(GenomeSemanticError, match="no named inputs"):
        graph_to_genotype(nb201_to_graph(NB201_BEST, channels=2, cells=1))
    with pytest.raises(GenomeSemanticError, match="expected c0_n1"):
        graph_to_nb201(genotype_to_graph(DARTS_V2, channels=2, cells=3))


def test_a_cell_that_differs_from_its_kind_is_reported() -> None:
    graph = genotype_to_graph(DARTS_V2, channels=2, cells=5)  # normal cells 0, 2, 4
    edge = next(n for n in graph.nodes() if n.kind == "sep_conv" and n.op.dilation == 2)  # type: ignore[attr-defined]
    graph.set_op(edge.id, edge.op.model_copy(update={"kernel": 5}))
    with pytest.raises(GenomeSemanticError, match="cell 2 differs from cell 0"):
        graph_to_genotype(graph)
    nb = nb201_to_graph(NB201_BEST, channels=2, cells=2)
    # the first conv after the stem's is cell 0's nor_conv_3x3 into node 1: make it a nor_conv_1x1
    _stem_conv, first_edge_conv = [n for n in nb.nodes() if n.kind == "conv"][:2]
    nb.set_op(first_edge_conv.id, first_edge_conv.op.model_copy(update={"kernel": 1}))
    with pytest.raises(GenomeSemanticError, match="cells that differ"):
        graph_to_nb201(nb)


def test_an_edge_that_is_no_darts_operation_is_reported() -> None:
    graph = genotype_to_graph(DARTS_V2, channels=2, cells=3)
    pool = next(n for n in graph.nodes() if n.kind == "maxpool")
    graph.set_op(pool.id, pool.op.model_copy(update={"kernel": 5, "padding": 2}))
    with pytest.raises(GenomeSemanticError, match="is not a DARTS operation") as info:
        graph_to_genotype(graph)
    assert "maxpool" in info.value.message

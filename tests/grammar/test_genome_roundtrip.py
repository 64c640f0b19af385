"""Round trip and canonical printing on generated valid graphs (hypothesis) and on rewritten graphs."""

from __future__ import annotations

from genome_strategies import genome_settings, valid_graphs
from genomorph.grammar import parse
from genomorph.ir.graph import Graph
from genomorph.ir.printer import print_genome
from hypothesis import given


def assert_round_trip(graph: Graph) -> str:
    text = print_genome(graph)
    again = parse(text)
    assert again.structure() == graph.structure(), text
    assert print_genome(again) == text
    assert [again.shapes()[n] for n in again.order()] == [graph.shapes()[n] for n in graph.order()]
    # the parser numbers nodes in text order, which is the printed graph's order
    assert again.order() == list(range(len(graph)))
    return text


@genome_settings(max_examples=300)
@given(valid_graphs())
def test_print_then_parse_is_the_same_graph(graph: Graph) -> None:
    assert_round_trip(graph)

"""The canonical printer on hand-built graphs: layout, names, argument formatting, edits by rewrites."""

from __future__ import annotations

import pytest
from genomorph.grammar import parse
from genomorph.ir import VerifyError
from genomorph.ir.graph import Graph
from genomorph.ir.ops import (
    Add,
    Aux,
    BatchNorm,
    Concat,
    Conv,
    Convex,
    Identity,
    Input,
    Linear,
    MaxPool,
    Mixed,
    Relu,
)
from genomorph.ir.printer import format_value, print_genome


def round_trip(graph: Graph) -> str:
    text = print_genome(graph)
    again = parse(text)
    assert again.structure() == graph.structure()
    assert print_genome(again) == text
    return text


def test_linear_flow_is_one_chain_per_line_and_defaults_are_left_out() -> None:
    g = Graph()
    x = g.add(Input(shape=(3, 8, 8)), [])
    x = g.add(Conv(channels=4, kernel=3, stride=2, bias=False), [x])
    x = g.add(BatchNorm(), [x])
    x = g.add(Relu(), [x])
    x = g.add(MaxPool(kernel=2, stride=1, padding=0), [x])
    assert round_trip(g) == "input 3x8x8\nconv(4, 3, stride=2, bias=false) bn relu maxpool(2, stride=1)\n"


def test_arbitrary_ids_print_in_graph_order_with_positional_anonymous_names() -> None:
    g = Graph()
    # ids deliberately out of text order, as after rewrites; no names
    inp = g.add(Input(shape=(4,)), [], node_id=40)
    a = g.add(Linear(features=4), [inp], node_id=7)
    b = g.add(Relu(), [inp], node_id=3)
    g.add(Add(), [a, b], node_id=12)
    assert g.order() == [40, 3, 7, 12]
    # %0 is read by two nodes; %1 (relu) is read by the add, which is not next to it
    assert round_trip(g) == "%0 = input 4\n%1 = relu\n%0 linear(4) add(_, %1)\n"


def test_user_names_are_kept_and_end_their_statement() -> None:
    g = Graph()
    inp = g.add(Input(shape=(3, 8, 8)), [], name="image")
    stem = g.add(Conv(channels=3, kernel=1), [inp], name="stem")
    r = g.add(Relu(), [stem])
    g.add(Add(), [stem, r], name="out")
    assert round_trip(g) == "image = input 3x8x8\nstem = conv(3, 1)\nout = relu add(stem, _)\n"


def test_merge_settings_and_value_formatting() -> None:
    g = Graph()
    x = g.add(Input(shape=(2, 8, 8)), [])
    p = g.add(MaxPool(kernel=2), [x])
    c = g.add(Concat(downsample=True), [x, p])
    i = g.add(Identity(), [c])
    m = g.add(Mixed(group='a "b"\n', row=0, labels=("none", "3x3")), [c, i])
    g.add(Convex(init=-0.5), [m, m])
    text = round_trip(g)
    assert "concat(%0, _, downsample=true)" in text
    assert 'mixed(%2, _, group="a \\"b\\"\\n", labels=["none", "3x3"])' in text
    assert "convex(_, _, init=-0.5)" in text


def test_aux_outputs_and_graphs_edited_like_rewrites_do() -> None:
    g = parse("input 3x8x8\nx = conv(4, 3) bn relu\nx gap linear(2) aux(0.3)\nx conv(4, 3) gap linear(2)")
    # a rewrite inserts a node with a fresh id between two old ones and removes another
    conv2 = g.find("n7")
    assert g.kind(conv2) == "conv"
    new = g.add(Relu(), [g.inputs(conv2)[0]])
    g.set_inputs(conv2, [new])
    bn = g.find("n2")
    g.replace_uses(bn, g.inputs(bn)[0])
    g.remove(bn)
    text = round_trip(g)
    assert "aux(0.3)" in text and "bn" not in text


def test_floats_keep_their_exact_value() -> None:
    g = Graph()
    x = g.add(Input(shape=(3,)), [])
    g.add(Aux(weight=0.1 + 0.2), [x])
    g.add(BatchNorm(eps=1e-300, momentum=123456789.125), [x])
    text = round_trip(g)
    assert "aux(0.30000000000000004)" in text and "eps=1e-300" in text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (None, "none"),
        (-3, "-3"),
        (2.5e-07, "2.5e-07"),
        ("normal", "normal"),
        ("true", '"true"'),
        ("input", '"input"'),
        ("two words", '"two words"'),
        ("é", '"\\u00e9"'),
        (("a", 1), "[a, 1]"),
    ],
)
def test_format_value(value: object, text: str) -> None:
    assert format_value(value) == text


def test_names_genome_text_cannot_hold_are_refused() -> None:
    g = Graph()
    x = g.add(Input(shape=(2,)), [])
    y = g.add(Relu(), [x], name="relu")
    with pytest.raises(VerifyError, match="cannot use"):
        print_genome(g)
    g.set_name(y, "x")
    g.set_name(x, "x")
    with pytest.raises(VerifyError, match="share the name 'x'"):
        print_genome(g)


def test_non_finite_values_are_refused() -> None:
    g = Graph()
    x = g.add(Input(shape=(2,)), [])
    g.add(Aux(weight=float("inf")), [x])
    with pytest.raises(VerifyError, match="finite"):
        print_genome(g)

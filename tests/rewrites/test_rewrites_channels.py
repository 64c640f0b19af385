"""Channel propagation, written once for widen, the prunes and the concatenating merges."""

from __future__ import annotations

import numpy as np
import pytest
from genomorph.grammar import parse
from genomorph.ir import NotApplicable
from genomorph.ir.rewrites._base import Work
from genomorph.ir.rewrites._channels import kept, plan, realise, remap, widened
from genomorph.ir.rewrites._init import fill_missing
from rewrite_helpers import net


def _ids(graph, kind: str) -> list[int]:
    return [n.id for n in graph.nodes() if n.kind == kind]


def test_widening_through_bn_and_pooling_stops_at_the_reading_layer() -> None:
    graph = net("cnn")
    conv = _ids(graph, "conv")[0]
    change = plan(graph, conv, widened(4, 2))
    bn = _ids(graph, "bn")[0]
    assert change.layers == {conv}
    assert change.weighted_pass == {bn}
    assert set(change.readers) == {_ids(graph, "conv")[1]}
    np.testing.assert_array_equal(change.maps[_ids(graph, "maxpool")[0]], [0, 1, 2, 3, -1, -1])


def test_an_add_pulls_its_other_inputs_along() -> None:
    graph = net("cnn")
    second, third = _ids(graph, "conv")[1:3]
    change = plan(graph, third, widened(6, 3))
    assert change.layers == {second, third}  # both feed the add (one through its block's relu)
    # the last conv also reads the widened relu (the add's shortcut): it is producer and reader
    assert set(change.readers) == {third, _ids(graph, "linear")[0]}


def test_concat_offsets_and_flatten_expands() -> None:
    graph = net("branches")
    shapes = graph.shapes()
    concat, flatten = _ids(graph, "concat")[0], _ids(graph, "flatten")[0]
    second_input = graph.inputs(concat)[1]
    producer = graph.inputs(second_input)[0]  # conv(4, 3) of the concat's second branch
    change = plan(graph, producer, kept(4, [1]))
    np.testing.assert_array_equal(change.maps[concat], [0, 1, 2, 3, 4, 6, 7])
    spatial = shapes[flatten][0] // shapes[graph.inputs(flatten)[0]][0]
    assert len(change.maps[flatten]) == 7 * spatial
    np.testing.assert_array_equal(
        change.maps[flatten][5 * spatial : 6 * spatial], np.arange(6, 7) * spatial + np.arange(spatial)
    )


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("input 4\nlinear(3)", "output"),
        ("input 3x4x4\nconv(4, 3) relu conv(4, 3, groups=2) gap linear(2)", "cannot follow"),
        ("input 4\nx = linear(4)\nadd(x, concat(linear(2), linear(2))) linear(1)", "cannot"),
    ],
)
def test_changes_that_cannot_propagate(text: str, match: str) -> None:
    graph = parse(text)
    layer = _ids(graph, "conv")[0] if _ids(graph, "conv") else _ids(graph, "linear")[0]
    with pytest.raises(NotApplicable, match=match):
        plan(graph, layer, widened(graph.shapes()[layer][0], 1))


def test_depthwise_conv_follows_the_change() -> None:
    graph = parse("input 3x6x6\nconv(4, 3) relu conv(4, 3, groups=4) relu conv(5, 1) gap linear(2)")
    first, depthwise, pointwise = _ids(graph, "conv")
    change = plan(graph, first, widened(4, 2))
    assert depthwise in change.weighted_pass and set(change.readers) == {pointwise}
    work = Work(graph.copy(), fill_missing(graph, None, np.random.default_rng(0)), np.random.default_rng(0))
    realise(work, change)
    assert work.graph.op(depthwise).groups == 6 and work.weights[depthwise]["weight"].shape == (6, 1, 3, 3)
    assert work.weights[pointwise]["weight"].shape == (5, 6, 1, 1)


def test_remap_mixing_columns_divides_copies_and_zeroes_fresh() -> None:
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = remap(array, 1, np.array([0, 1, 2, 1, -1]), "mix", np.random.default_rng(0), array.shape)
    np.testing.assert_allclose(out, [[0, 0.5, 2, 0.5, 0], [3, 2, 5, 2, 0]])
    rows = remap(array, 0, np.array([1, -1]), "one", np.random.default_rng(0), array.shape)
    np.testing.assert_array_equal(rows, [[3, 4, 5], [1, 1, 1]])
    assert array[0, 1] == 1  # the input array is never written into


def test_plans_kept_in_the_graph_cache_equal_fresh_ones_and_go_with_an_edit() -> None:
    """What a change reaches is cached per graph and seed (the map is not): a second plan with
    another map, a copy's plan and a refusal raised again match a graph planned afresh."""
    graph = net("cnn")
    third = _ids(graph, "conv")[2]
    first = plan(graph, third, widened(6, 3))
    again = plan(graph, third, kept(6, [1, 4]))
    fresh = plan(net("cnn"), third, kept(6, [1, 4]))
    assert again.layers == first.layers == fresh.layers and again.readers == fresh.readers
    assert again.maps.keys() == fresh.maps.keys() and again.layouts == fresh.layouts
    for n, m in fresh.maps.items():
        np.testing.assert_array_equal(again.maps[n], m)
    copy = graph.copy()
    np.testing.assert_array_equal(plan(copy, third, kept(6, [0])).maps[third], [1, 2, 3, 4, 5])
    output = graph.output_node()
    for _ in range(2):  # the cached refusal is a new exception each time, with the same words
        with pytest.raises(NotApplicable, match="output of the network"):
            plan(graph, output, widened(10, 1))
    # an edit clears the cache: the copy's plan now sees the changed graph
    stem = _ids(graph, "conv")[0]
    assert plan(graph, stem, widened(4, 1)).maps[stem].shape == (5,)
    copy.set_op(stem, copy.op(stem).resized(9))
    assert plan(copy, stem, widened(9, 1)).maps[stem].shape == (10,)
    assert plan(graph, stem, widened(4, 1)).maps[stem].shape == (5,)

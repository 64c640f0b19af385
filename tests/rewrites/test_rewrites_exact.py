"""Exact morphisms keep the function of the lowered network, and IR counts stay torch's."""

from __future__ import annotations

import numpy as np
import pytest
from genomorph.ir import NotApplicable
from genomorph.ir.rewrites import EXACT, REWRITES, deepen, hres_grow, skip_add, split, widen
from genomorph.ir.rewrites._hres import layer_at
from rewrite_helpers import APPLICABLE, TOLERANCE, max_diff, net, torch_counts, trained


def _check_places(name: str, net_name: str, limit: int | None) -> None:
    graph = net(net_name)
    weights = trained(graph, seed=2)
    rng = np.random.default_rng(0)
    moves = REWRITES[name].candidates(graph, weights)
    assert moves, f"{name} has no candidates on {net_name}"
    if limit is not None and len(moves) > limit:  # spread over the graph, first and last included
        moves = [moves[i] for i in np.linspace(0, len(moves) - 1, limit).round().astype(int)]
    for move in moves:
        result = REWRITES[name].apply(graph, weights, move, rng)
        diff = max_diff((graph, weights), (result.graph, result.weights))
        assert diff <= TOLERANCE, f"{result.record.text}: max abs diff {diff:.2e}"
        stats = result.graph.stats()
        assert torch_counts(result.graph, result.weights) == (stats.params, stats.macs), result.record.text
        assert result.record.exact and not result.repair


EXACT_PAIRS = [(name, n) for name, n in APPLICABLE if name in EXACT]


@pytest.mark.parametrize(("name", "net_name"), EXACT_PAIRS)
def test_places_keep_function_and_counts(name: str, net_name: str) -> None:
    _check_places(name, net_name, limit=3)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "net_name"), EXACT_PAIRS)
def test_every_place_keeps_function_and_counts(name: str, net_name: str) -> None:
    _check_places(name, net_name, limit=None)


def test_deepen_inserts_identity_conv_and_identity_bn() -> None:
    graph = net("cnn")
    weights = trained(graph)
    place = next(m for m in deepen.candidates(graph) if m.kernel == 5)
    result = deepen.apply(graph, weights, place, np.random.default_rng(0))
    conv, bn, relu = result.record.created
    assert (
        result.graph.kind(conv) == "conv"
        and result.graph.kind(bn) == "bn"
        and result.graph.kind(relu) == "relu"
    )
    kernel = result.weights[conv]["weight"]
    channels = kernel.shape[0]
    assert kernel.shape == (channels, channels, 5, 5)
    assert kernel.sum() == channels and np.all(kernel[np.arange(channels), np.arange(channels), 2, 2] == 1)
    norm = result.weights[bn]
    np.testing.assert_allclose(norm["weight"], np.sqrt(norm["running_var"] + 1e-5))
    np.testing.assert_array_equal(norm["bias"], norm["running_mean"])
    assert result.graph.inputs(conv) == [place.node]
    assert result.graph.users(place.node) == [(conv, 0)]


def test_deepen_refuses_places_that_can_be_negative() -> None:
    graph = net("cnn")
    conv = next(n.id for n in graph.nodes() if n.kind == "bn")  # inside a block: before its relu
    with pytest.raises(NotApplicable, match="between blocks"):
        deepen.moves_at(graph, conv)
    tanh_net = net("thin")
    tanh = next(n.id for n in tanh_net.nodes() if n.kind == "tanh")
    (move,) = deepen.moves_at(tanh_net, tanh)  # vectors: a linear layer without relu is still exact
    result = deepen.apply(tanh_net, None, move, np.random.default_rng(0))
    assert [result.graph.kind(n) for n in result.record.created] == ["linear"]


def test_widen_zero_mode_pads_outgoing_weights_with_zeros() -> None:
    graph = net("mlp")
    weights = trained(graph)
    first = graph.order()[1]
    reader = graph.user_ids(graph.user_ids(first)[0])[0]
    result = widen.apply(graph, weights, widen.Move(first, factor=1.5), np.random.default_rng(0))
    assert result.graph.op(first).features == 12
    new_cols = result.weights[reader]["weight"][:, 8:]
    assert new_cols.shape == (6, 4) and not new_cols.any()
    np.testing.assert_array_equal(result.weights[reader]["weight"][:, :8], weights[reader]["weight"])
    assert result.weights[first]["weight"][8:].any()  # fresh incoming weights are random


def test_widen_net2net_copies_units_and_divides_their_outgoing_weights() -> None:
    graph = net("mlp")
    weights = trained(graph)
    first = graph.order()[1]
    reader = graph.user_ids(graph.user_ids(first)[0])[0]
    move = widen.Move(first, mode="net2net", width=16)
    result = widen.apply(graph, weights, move, np.random.default_rng(0))
    incoming, outgoing = result.weights[first]["weight"], result.weights[reader]["weight"]
    copies = [next(i for i in range(8) if np.array_equal(incoming[j], incoming[i])) for j in range(8, 16)]
    counts = np.bincount(copies, minlength=8) + 1
    np.testing.assert_allclose(outgoing[:, :8] * counts, weights[reader]["weight"], rtol=1e-6)
    assert max_diff((graph, weights), (result.graph, result.weights)) <= TOLERANCE
    noisy = widen.apply(
        graph, weights, widen.Move(first, mode="net2net", noise=0.1), np.random.default_rng(0)
    )
    assert not noisy.record.exact
    assert max_diff((graph, weights), (noisy.graph, noisy.weights)) > TOLERANCE


def test_widen_in_a_residual_stage_resizes_every_layer_of_the_sum() -> None:
    graph = net("cnn")
    convs = [n.id for n in graph.nodes() if n.kind == "conv"]
    result = widen.apply(graph, trained(graph), widen.Move(convs[-1], width=9), np.random.default_rng(0))
    # the last conv feeds an add whose other input is the second conv's block: both grow
    assert graph.op(convs[1]).channels == 6 and result.graph.op(convs[1]).channels == 9
    assert result.graph.op(convs[0]).channels == graph.op(convs[0]).channels


def test_widen_refuses_the_output_layer() -> None:
    graph = net("mlp")
    with pytest.raises(NotApplicable, match="output"):
        widen.moves_at(graph, graph.output_node())


def test_skip_add_branch_projects_with_zero_weights() -> None:
    graph = net("cnn")
    move = next(m for m in skip_add.candidates(graph) if m.mode == "branch")
    result = skip_add.apply(graph, trained(graph), move, np.random.default_rng(0))
    proj = next(n for n in result.record.created if result.graph.kind(n) == "conv")
    assert not result.weights[proj]["weight"].any()
    convex = next(m for m in skip_add.candidates(graph) if m.mode == "convex")
    merged = skip_add.apply(graph, None, convex, np.random.default_rng(0))
    (lam_node,) = merged.record.created
    assert float(merged.weights[lam_node]["lam"]) == 1.0


def test_split_scales_the_two_copies_by_alpha_and_one_minus_alpha() -> None:
    graph = net("cnn")
    weights = trained(graph)
    move = split.candidates(graph)[0]
    result = split.apply(graph, weights, move, np.random.default_rng(0))
    bn = graph.user_ids(move.node)[0]
    copy_bn = next(n for n in result.record.created if result.graph.kind(n) == "bn")
    np.testing.assert_allclose(result.weights[bn]["weight"], 0.3 * weights[bn]["weight"], rtol=1e-6)
    np.testing.assert_allclose(result.weights[copy_bn]["weight"], 0.7 * weights[bn]["weight"], rtol=1e-6)
    np.testing.assert_array_equal(result.weights[bn]["running_var"], weights[bn]["running_var"])


def test_hres_grow_nests_inside_a_residual() -> None:
    graph = net("thin")
    weights = trained(graph)
    outer = next(n.id for n in graph.nodes() if n.kind == "add")
    layer = layer_at(graph, outer)
    assert layer is not None and layer.width == 1
    inner_f1 = layer.hidden  # W1 of the residual becomes an H-ResNet layer itself
    result = hres_grow.apply(graph, weights, hres_grow.Move(inner_f1, hidden=3), np.random.default_rng(0))
    grown = result.graph
    outer_layer = layer_at(grown, outer)
    assert outer_layer is not None
    nested = layer_at(grown, outer_layer.hidden)
    assert nested is not None and nested.width == 3 and nested.shortcut == inner_f1
    second = next(
        n for n in result.record.created if grown.kind(n) == "linear" and grown.users(n) == [(nested.add, 1)]
    )
    assert not result.weights[second]["weight"].any()
    assert max_diff((graph, weights), (grown, result.weights)) <= TOLERANCE

"""Approximate morphisms: valid smaller networks, the right units removed, repair that helps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from genomorph.grammar import parse
from genomorph.ir import NotApplicable
from genomorph.ir.rewrites import (
    APPROXIMATE,
    REWRITES,
    deepen,
    hres_shrink,
    prune_channels,
    prune_neurons,
    remove_block,
    substitute_sepconv,
)
from genomorph.ir.rewrites._hres import layer_at
from genomorph.lower import lower
from genomorph.search.runtime.repair import RepairConfig, repair
from rewrite_helpers import APPLIES, TOLERANCE, inputs, max_diff, net, torch_counts, trained

#: (rewrite, net) pairs where the approximate rewrite applies somewhere (the contract tests check
#: the table both ways)
APPLICABLE = [(name, n) for name in APPROXIMATE for n in APPLIES[name]]


def test_every_approximate_rewrite_applies_to_some_small_net() -> None:
    assert {name for name, _ in APPLICABLE} == set(APPROXIMATE)
    assert {n for name, n in APPLICABLE if name == "prune-channels"} == {"cnn", "branches"}


@pytest.mark.parametrize(("name", "net_name"), APPLICABLE)
def test_counts_stay_torch_and_repair_brings_the_child_back(name: str, net_name: str) -> None:
    graph = net(net_name)
    weights = trained(graph, seed=4)
    moves = REWRITES[name].candidates(graph, weights)
    assert moves, f"{name} has no candidates on {net_name}"
    x = inputs(graph, batch=64, seed=5)
    for move in (moves[0], moves[-1]):
        result = REWRITES[name].apply(graph, weights, move, np.random.default_rng(0))
        stats = result.graph.stats()
        assert torch_counts(result.graph, result.weights) == (stats.params, stats.macs)
        repaired, report = repair(
            (graph, weights),
            (result.graph, result.weights),
            result.repair,
            x,
            RepairConfig(epochs=8, lr=3e-3),
        )
        assert report.trained and report.parameters > 0
        assert report.distance_after <= report.distance_before
        if report.distance_before > 1e-4:
            assert report.distance_after < report.distance_before, result.record.text
        # only the repaired nodes changed
        for nid, arrays in result.weights.items():
            if nid not in report.trained:
                for key, array in arrays.items():
                    np.testing.assert_array_equal(repaired[nid][key], array)


def test_prune_channels_removes_the_smallest_filters() -> None:
    graph = net("cnn")
    weights = trained(graph)
    conv = next(n.id for n in graph.nodes() if n.kind == "conv" and graph.op(n.id).channels == 6)
    norms = np.abs(weights[conv]["weight"]).reshape(6, -1).sum(1)
    result = prune_channels.apply(graph, weights, prune_channels.Move(conv, 0.5), np.random.default_rng(0))
    removed = result.record.move["remove"]
    assert len(removed) == 3 and set(removed) == set(np.argsort(norms)[:3].tolist())
    kept = [c for c in range(6) if c not in removed]
    np.testing.assert_array_equal(result.weights[conv]["weight"], weights[conv]["weight"][kept])
    assert result.graph.op(conv).channels == 3
    assert conv in result.repair


def test_prune_neurons_by_importance_scores() -> None:
    graph = net("mlp")
    weights = trained(graph)
    first = graph.order()[1]
    scores = (5.0, 0.1, 3.0, 0.2, 4.0, 9.0, 0.3, 7.0)
    move = prune_neurons.Move(first, count=3, scores=scores)
    result = prune_neurons.apply(graph, weights, move, np.random.default_rng(0))
    assert result.record.move["remove"] == [1, 3, 6]
    assert result.graph.op(first).features == 5


def test_importance_score_and_global_selection() -> None:
    a, b = np.array([1.0, 1.0, 2.0]), np.array([1.0, 0.5, 0.0])
    np.testing.assert_allclose(prune_neurons.importance(a, b), [0.0, 1.0 - 0.5**33, 2.0])
    graph = net("mlp")
    first, second = (n.id for n in graph.nodes() if n.kind == "linear" and n.id != graph.output_node())
    stats = {
        first: (np.arange(8, dtype=float), np.zeros(8)),
        second: (np.array([0.5, 10, 10, 10, 10, 0.25]), np.zeros(6)),
    }
    moves = prune_neurons.select(graph, stats, total=3)
    chosen = {m.node: m.remove for m in moves}
    assert chosen == {first: (0,), second: (0, 5)}  # scores 0, 0.25 and 0.5 are the lowest
    keep_all_but_one = prune_neurons.select(graph, stats, total=100)
    assert {m.node: len(m.remove) for m in keep_all_but_one} == {first: 7, second: 5}


def test_fade_scales_only_the_outgoing_weights_of_the_chosen_units() -> None:
    graph = net("mlp")
    weights = trained(graph)
    first = graph.order()[1]
    reader = graph.user_ids(graph.user_ids(first)[0])[0]
    faded = prune_neurons.fade(graph, weights, first, [2, 5], 0.5)
    expected = weights[reader]["weight"].copy()
    expected[:, [2, 5]] *= 0.5
    np.testing.assert_allclose(faded[reader]["weight"], expected)
    np.testing.assert_array_equal(faded[first]["weight"], weights[first]["weight"])
    assert not np.array_equal(weights[reader]["weight"], expected)  # input untouched


def test_substitute_sepconv_is_exact_for_separable_kernels() -> None:
    graph = net("cnn")
    weights = trained(graph)
    conv = next(n.id for n in graph.nodes() if n.kind == "conv")
    rng = np.random.default_rng(0)
    out_c, in_c = weights[conv]["weight"].shape[:2]
    pointwise, depthwise = rng.normal(size=(out_c, in_c)), rng.normal(size=(in_c, 3, 3))
    separable = np.einsum("oi,ihw->oihw", pointwise, depthwise).astype(np.float32)
    weights = {**weights, conv: {**weights[conv], "weight": separable}}
    result = substitute_sepconv.apply(graph, weights, substitute_sepconv.Move(conv), rng)
    assert result.graph.kind(conv) == "sep_conv" and result.repair == (conv,)
    assert max_diff((graph, weights), (result.graph, result.weights)) <= TOLERANCE


def test_removing_an_inserted_identity_block_restores_the_function() -> None:
    graph = net("cnn")
    weights = trained(graph)
    grown = deepen.apply(graph, weights, deepen.candidates(graph)[0], np.random.default_rng(0))
    block_conv = grown.record.created[0]
    shrunk = remove_block.apply(
        grown.graph, grown.weights, remove_block.Move(block_conv), np.random.default_rng(0)
    )
    assert shrunk.graph.structure() == graph.structure()
    assert max_diff((graph, weights), (shrunk.graph, shrunk.weights)) <= TOLERANCE


def test_cutting_a_residual_branch_removes_what_only_fed_it() -> None:
    graph = net("cnn")
    add = next(n.id for n in graph.nodes() if n.kind == "add")
    branch_port = next(p for p, i in enumerate(graph.inputs(add)) if graph.kind(i) == "bn")
    result = remove_block.apply(
        graph, trained(graph), remove_block.Move(add, branch_port), np.random.default_rng(0)
    )
    assert "add" not in result.graph.histogram()
    assert len(result.record.removed) == 3  # the add, and the conv-bn that only fed it


def test_remove_block_refuses_a_block_that_downsamples() -> None:
    graph = parse("input 3x8x8\nconv(4, 3, stride=2) bn relu conv(4, 3) bn relu gap linear(2)")
    with pytest.raises(NotApplicable, match="spatial size"):
        remove_block.moves_at(graph, graph.order()[1])


def test_hres_shrink_after_pruning_the_residual_to_one_unit() -> None:
    graph = net("hres")
    weights = trained(graph)
    layers = [n.id for n in graph.nodes() if layer_at(graph, n.id)]
    inner = layers[0]
    hidden = layer_at(graph, inner).hidden
    assert not hres_shrink.candidates(graph)
    pruned = prune_neurons.apply(
        graph, weights, prune_neurons.Move(hidden, count=2), np.random.default_rng(0)
    )
    assert layer_at(pruned.graph, inner).width == 1
    assert [m.node for m in hres_shrink.candidates(pruned.graph)] == [inner]
    shrunk = hres_shrink.apply(
        pruned.graph, pruned.weights, hres_shrink.Move(inner), np.random.default_rng(0)
    )
    shortcut = layer_at(graph, inner).shortcut
    assert inner not in shrunk.graph and shortcut in shrunk.graph
    assert shortcut in shrunk.repair
    assert len(shrunk.record.removed) == 4  # add, W1, its activation, W2
    module = lower(shrunk.graph, shrunk.weights).eval()
    assert torch.isfinite(module(inputs(graph))).all()

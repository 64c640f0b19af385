"""search.importance (paper 000's A and B, decay before removal) and search.repair (paper 002 §3.2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from genomorph.grammar import parse
from genomorph.ir import Graph, Weights
from genomorph.ir.rewrites import prune_neurons
from genomorph.search.runtime.importance import (
    DecaySchedule,
    activation_of,
    decay_then_prune,
    prunable_layers,
    stats_arrays,
    unit_statistics,
)
from genomorph.search.runtime.repair import RepairConfig, distance, repair
from rewrite_helpers import inputs, net, trained


def _labels(graph: Graph, n: int, seed: int = 0) -> torch.Tensor:
    classes = graph.shapes()[graph.output_node()][0]
    return torch.randint(0, classes, (n,), generator=torch.Generator().manual_seed(seed))


def _reference_stats(graph: Graph, weights: Weights, layer: int, x: torch.Tensor, y: torch.Tensor) -> tuple:
    """A and B computed by hand for the MLP: sigma = relu(W x + b), gradient by autograd."""
    w, b = (torch.as_tensor(weights[layer][k]) for k in ("weight", "bias"))
    hidden = torch.relu(x @ w.T + b).requires_grad_()
    reader = graph.user_ids(graph.user_ids(layer)[0])[0]
    w2, b2 = (torch.as_tensor(weights[reader][k]) for k in ("weight", "bias"))
    rest = torch.tanh(hidden @ w2.T + b2)
    w3, b3 = (torch.as_tensor(weights[graph.output_node()][k]) for k in ("weight", "bias"))
    loss = torch.nn.functional.cross_entropy(rest @ w3.T + b3, y, reduction="sum")
    loss.backward()
    a = (hidden * hidden.grad).abs().sum(0)
    fires = (hidden > 0).float().mean(0)
    return a.detach().double().numpy(), fires.double().numpy()


def test_unit_statistics_match_a_hand_computation() -> None:
    graph = net("mlp")
    weights = trained(graph)
    x, y = inputs(graph, batch=50, seed=2), _labels(graph, 50)
    stats = unit_statistics(graph, weights, x, y, batch_size=16)
    first = graph.order()[1]
    assert set(stats) == set(prunable_layers(graph)) and first in stats
    a, b = _reference_stats(graph, weights, first, x, y)
    np.testing.assert_allclose(stats[first].a, a, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stats[first].b, b)
    assert stats[first].samples == 50
    np.testing.assert_allclose(stats[first].importance(), a * (1 - b**33), rtol=1e-4, atol=1e-6)


def test_unit_statistics_for_conv_channels_and_regression() -> None:
    graph = parse("input 3x6x6\nconv(5, 3) bn relu gap linear(1)")
    weights = trained(graph)
    x = inputs(graph, batch=8)
    stats = unit_statistics(graph, weights, x, torch.randn(8, 1), task="regression")
    (layer,) = stats
    assert activation_of(graph, layer) == graph.order()[3]  # through bn to the relu
    assert stats[layer].a.shape == (5,) and np.all(stats[layer].a >= 0)
    assert np.all((stats[layer].b >= 0) & (stats[layer].b <= 1))


def test_global_pruning_from_measured_statistics_removes_the_least_important() -> None:
    graph = net("mlp")
    weights = trained(graph)
    x, y = inputs(graph, batch=40), _labels(graph, 40)
    stats = unit_statistics(graph, weights, x, y)
    moves = prune_neurons.select(graph, stats_arrays(stats), total=4)
    scores = sorted((s, nid) for nid, st in stats.items() for s in st.importance())
    assert sum(len(m.remove) for m in moves) == 4
    threshold = scores[3][0]
    for move in moves:
        assert all(stats[move.node].importance()[u] <= threshold for u in move.remove)


def test_decay_then_prune_fades_before_removing() -> None:
    graph = net("mlp")
    weights = trained(graph)
    first = graph.order()[1]
    reader = graph.user_ids(graph.user_ids(first)[0])[0]
    move = prune_neurons.Move(first, remove=(2, 5))
    seen: list[np.ndarray] = []

    def fine_tune(g: Graph, w: Weights) -> Weights:  # records what a trainer would receive
        seen.append(w[reader]["weight"][:, [2, 5]].copy())
        return w

    results, faded = decay_then_prune(
        graph, weights, [move], DecaySchedule(epochs=3, factor=0.5), fine_tune, np.random.default_rng(0)
    )
    original = weights[reader]["weight"][:, [2, 5]]
    for epoch, cols in enumerate(seen, start=1):
        np.testing.assert_allclose(cols, original * 0.5**epoch, rtol=1e-6)
    assert results[-1].graph.op(first).features == 6
    np.testing.assert_allclose(faded[reader]["weight"][:, [2, 5]], original / 8, rtol=1e-6)
    with pytest.raises(ValueError, match="explicit"):
        decay_then_prune(
            graph, weights, [prune_neurons.Move(first)], DecaySchedule(), fine_tune, np.random.default_rng(0)
        )


def test_repair_trains_only_the_listed_nodes_and_lowers_the_distance() -> None:
    graph = net("mlp")
    weights = trained(graph)
    first = graph.order()[1]
    pruned = prune_neurons.apply(graph, weights, prune_neurons.Move(first, count=3), np.random.default_rng(0))
    x = inputs(graph, batch=128, seed=3)
    new, report = repair(
        (graph, weights), (pruned.graph, pruned.weights), pruned.repair, x, RepairConfig(epochs=20, lr=1e-2)
    )
    assert report.trained == tuple(sorted(pruned.repair))
    assert report.distance_after < 0.8 * report.distance_before
    for nid in set(new) - set(pruned.repair):
        for key, array in new[nid].items():
            np.testing.assert_array_equal(array, pruned.weights[nid][key])
    from genomorph.lower import lower

    teacher = lower(graph, weights).eval()
    with torch.no_grad():
        targets = teacher(x)
    assert distance(lower(pruned.graph, new).eval(), x, targets) == pytest.approx(
        report.distance_after, rel=1e-5
    )


def test_repair_with_nothing_to_train_reports_an_unchanged_distance() -> None:
    graph = net("mlp")
    weights = trained(graph)
    x = inputs(graph, batch=16)
    _, report = repair((graph, weights), (graph, weights), [], x)
    assert report.parameters == 0 and report.distance_before == report.distance_after == 0.0

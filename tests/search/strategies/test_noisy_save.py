"""The noisy save phase and the overhead cuts around it, on real IR, weights and lowered networks:

- `rewrite` is exact exactly when the faded units' outgoing weights are zero and every removed
  residual outputs zero; `replay` rebuilds the same network and weights from a derivation;
- `rules.apply_all` gives what applying the moves one by one gives (seeds, graphs, weights, records);
- the canonical graph the strategy remembers is what parsing its text gives;
- importance statistics from the trained module equal those of a freshly lowered one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from genomorph.grammar import parse
from genomorph.ir.rewrites import add_neurons, fill_missing, prune_neurons
from genomorph.lower import extract_weights, lower
from genomorph.search.runtime.importance import unit_statistics
from genomorph.search.strategies import _noisy_rules as rules
from genomorph.search.strategies._noisy_save import Derivation, PruneMove, replay, rewrite
from genomorph.search.strategies.noisy import _canonical

NESTED = (
    "input 2\nhres(linear(2), hres(linear(12), linear(4), linear(12, bias=false)), linear(2, bias=false))\n"
)
#: a residual whose last layer has a bias: removing it changes the function
BIASED = "input 2\nhres(linear(2), linear(6), linear(2))\n"


def _outputs(graph, weights, x):  # type: ignore[no-untyped-def]
    with torch.no_grad():
        return lower(graph, weights).eval()(x)


def _faded(text: str, seed: int, total: int, remove_at: int = 1):  # type: ignore[no-untyped-def]
    """A network, the prune plan for ``total`` units and its weights with those units faded."""
    graph = parse(text)
    weights = fill_missing(graph, None, np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1)
    stats = {g: (rng.random(graph.shape(g)[0]), rng.random(graph.shape(g)[0])) for g in rules.groups(graph)}
    moves, fade = rules.plan_shrink(graph, stats, total, remove_at)
    outgoing = rules.outgoing_columns(graph, fade)
    faded = {n: {k: v.copy() for k, v in arrays.items()} for n, arrays in weights.items()}
    for name, cols in outgoing.items():
        node, tensor = name[1:].split(".", 1)
        faded[int(node)][tensor][:, cols] = 0.0
    prune = [PruneMove(node=m.node, remove=list(m.remove or ())) for m in moves]
    return graph, weights, faded, prune, outgoing


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(64, 2, generator=torch.Generator().manual_seed(1))


def test_rewrite_of_faded_units_is_exact_and_keeps_the_function(x: torch.Tensor) -> None:
    graph, weights, faded, prune, outgoing = _faded(NESTED, 0, 5)
    assert prune and outgoing
    saved = rewrite(graph, faded, prune, 1, "paper", seed=7, outgoing=outgoing)
    assert saved.exact and saved.removed == 5
    out = parse(saved.genome)
    assert out.stats().params < graph.stats().params
    torch.testing.assert_close(_outputs(out, saved.weights, x), _outputs(graph, faded, x), atol=1e-5, rtol=0)
    # the same rewrite before the decay (outgoing weights not zero) is not exact
    assert not rewrite(graph, weights, prune, 1, "paper", seed=7, outgoing=outgoing).exact
    assert not rewrite(graph, faded, prune, 1, "paper", seed=7, outgoing=None).exact


def test_removing_a_residual_is_exact_only_without_a_bias(x: torch.Tensor) -> None:
    graph, _, faded, prune, outgoing = _faded(BIASED, 3, 5)  # 6 units, 5 go: the layer goes
    assert sum(len(p.remove) for p in prune) == 5
    saved = rewrite(graph, faded, prune, 1, "paper", seed=1, outgoing=outgoing)
    assert saved.layers_removed == 1
    assert not saved.exact  # the residual's bias still reaches the output
    residual = max(faded)  # the residual's last layer: its bias made zero, the removal is exact
    faded[residual]["bias"] = np.zeros_like(faded[residual]["bias"])
    exact = rewrite(graph, faded, prune, 1, "paper", seed=1, outgoing=outgoing)
    assert exact.exact and exact.layers_removed == 1
    torch.testing.assert_close(
        _outputs(parse(exact.genome), exact.weights, x), _outputs(graph, faded, x), atol=1e-5, rtol=0
    )


def test_replay_rebuilds_the_same_network_and_weights() -> None:
    graph, _, faded, prune, outgoing = _faded(NESTED, 2, 3)
    text = _canonical(graph, None)[0]
    saved = rewrite(parse(text), faded, prune, 1, "authors", seed=11, outgoing=outgoing)
    derivation = Derivation(
        genome=text, checkpoint="c.pt", prune=prune, seed=11, remove_layer_at=1, layer_rule="authors"
    )
    again = replay(Derivation.model_validate(derivation.model_dump(mode="json")), faded)
    assert again.genome == saved.genome and again.records == saved.records
    assert again.weights.keys() == saved.weights.keys()
    for nid, arrays in saved.weights.items():
        for name, array in arrays.items():
            np.testing.assert_array_equal(again.weights[nid][name], array)


@pytest.mark.parametrize("rewrite_name", ["add-neurons", "prune-neurons"])
def test_apply_all_equals_applying_one_move_at_a_time(rewrite_name: str) -> None:
    graph = parse(NESTED)
    weights = fill_missing(graph, None, np.random.default_rng(0))
    groups = sorted(rules.groups(graph))
    assert len(groups) >= 2
    if rewrite_name == "add-neurons":
        module = add_neurons
        moves = [add_neurons.Move(g, 3 + i) for i, g in enumerate(groups)]
    else:
        module = prune_neurons  # type: ignore[assignment]
        moves = [prune_neurons.Move(g, 2, None, (0, 1)) for g in groups]  # type: ignore[misc]
    one, one_weights, one_records = graph, weights, []
    rng = np.random.default_rng(5)
    for move in moves:
        result = module.apply(one, one_weights, move, rng)
        one, one_weights = result.graph, result.weights
        one_records.append(result.record)
    batched, batched_weights, records = rules.apply_all(
        module.REWRITE, graph, weights, moves, np.random.default_rng(5)
    )
    assert batched.structure() == one.structure() and records == one_records
    assert batched_weights is not None and batched_weights.keys() == one_weights.keys()
    for nid, arrays in one_weights.items():
        for name, array in arrays.items():
            np.testing.assert_array_equal(batched_weights[nid][name], array)


def test_the_remembered_canonical_graph_is_what_parsing_gives() -> None:
    from genomorph.search.core.parsed import _REMEMBERED

    graph = parse(NESTED)
    weights = fill_missing(graph, None, np.random.default_rng(0))
    counts = {g: 2 for g in rules.groups(graph)}
    grown, _, _ = rules.grow(graph, weights, counts, np.random.default_rng(1))
    flat = parse("input 2\nhres(linear(2), linear(8), linear(2, bias=false))\n")
    flat_weights = fill_missing(flat, None, np.random.default_rng(0))
    nested, _, records = rules.nest_layers(flat, flat_weights, "paper", np.random.default_rng(2))
    assert records, "8 hidden units exceed the threshold: the layer nests"
    for candidate in (grown, nested):
        text, _, _ = _canonical(candidate, None)
        assert _REMEMBERED[text].structure() == parse(text).structure()
        assert sorted(_REMEMBERED[text].order()) == sorted(parse(text).order())


def test_importance_from_the_trained_module_equals_a_fresh_lowering() -> None:
    torch.manual_seed(0)
    graph = parse(NESTED)
    module = lower(graph)
    x = torch.randn(300, 2)
    y = (x[:, 0] * x[:, 1] > 0).long()
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    for _ in range(5):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(module(x), y).backward()
        optimizer.step()
    module.train()
    weights, _ = extract_weights(module, graph)
    fresh = unit_statistics(graph, weights, x, y)
    reused = unit_statistics(graph, weights, x, y, module=module)
    assert fresh and fresh.keys() == reused.keys()
    for layer, stats in fresh.items():
        np.testing.assert_array_equal(reused[layer].a, stats.a)
        np.testing.assert_array_equal(reused[layer].b, stats.b)
    assert module.training and all(p.grad is None for p in module.parameters())

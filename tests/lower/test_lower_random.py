"""Varied random graphs: IR counts equal torch's, and in-place ops change no value or gradient."""

from __future__ import annotations

import operator

import pytest
import torch
from genomorph.lower import GenomeModule, extract_weights, lower
from lower_cases import example_input, flops, random_graph

SEEDS = range(24)


@pytest.mark.parametrize("seed", SEEDS)
def test_counts_equal_torch(seed: int) -> None:
    graph = random_graph(seed)
    module = lower(graph)
    stats = graph.stats()
    assert stats.params == sum(p.numel() for p in module.parameters())
    assert stats.arch_params == sum(p.numel() for p in module.arch_parameters())
    assert flops(module, example_input(graph, batch=2)) == 2 * 2 * stats.macs


def _outputs_and_grads(module: GenomeModule, x: torch.Tensor) -> list[torch.Tensor]:
    x = x.clone().requires_grad_()
    outs = module(x)
    outs = list(outs) if isinstance(outs, tuple) else [outs]
    sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in outs).backward()
    tensors = [x, *module.parameters(), *module.arch_parameters()]
    return [o.detach() for o in outs] + [t.grad for t in tensors if t.grad is not None]


@pytest.mark.parametrize("seed", SEEDS[:16])
def test_in_place_ops_change_nothing(seed: int) -> None:
    graph = random_graph(seed)
    module = lower(graph).train()
    reference = lower(graph, *extract_weights(module, graph), inplace=False).train()
    assert not _in_place_targets(reference)
    x = example_input(graph, batch=3, seed=seed)
    torch.manual_seed(seed)  # same dropout masks in both
    got = _outputs_and_grads(module, x)
    torch.manual_seed(seed)
    want = _outputs_and_grads(reference, x)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def _in_place_targets(module: GenomeModule) -> set[object]:
    return {n.target for n in module.graph.nodes} & {torch.relu_, operator.iadd}


def test_random_graphs_use_in_place_ops_somewhere() -> None:
    # Guard for the test above: it checks nothing if no graph ever runs an op in place.
    found = set().union(*(_in_place_targets(lower(random_graph(seed))) for seed in SEEDS[:16]))
    assert found == {torch.relu_, operator.iadd}

"""Properties over generated genomes and the examples: long chains of exact morphisms keep the
function and torch's counts after every step; approximate rewrites stay valid and repairable."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from genomorph.grammar import parse
from genomorph.ir import Graph, Weights, verify
from genomorph.ir.rewrites import APPROXIMATE, EXACT, REWRITES, RewriteResult, random_chain, sample
from genomorph.lower import lower
from genomorph.search.runtime.repair import RepairConfig, repair
from hypothesis import given, settings
from hypothesis import strategies as st
from rewrite_helpers import (
    TOLERANCE,
    example,
    inputs,
    outputs,
    same_snapshot,
    snapshot,
    torch_counts,
    trained,
)

CHAIN = 20


@dataclass
class _Shape:
    channels: int
    size: int


def _image_block(draw: st.DrawFn, shape: _Shape) -> str:
    options = ["conv", "res", "cat", "sep", "tanh"] + (["pool"] if shape.size >= 4 else [])
    kind = draw(st.sampled_from(options))
    c = draw(st.integers(2, 6))
    if kind == "conv":
        shape.channels = c
        return f"conv({c}, {draw(st.sampled_from([1, 3]))}, bias=false) bn relu"
    if kind == "res":
        k = shape.channels
        return f"add(conv({k}, 3, bias=false) bn relu conv({k}, 3, bias=false) bn, _) relu"
    if kind == "cat":
        shape.channels += c
        return f"concat(_, conv({c}, 1) relu)"
    if kind == "sep":
        shape.channels = c
        return f"sep_conv({c}, 3) bn relu"
    if kind == "tanh":
        shape.channels = c
        return f"conv({c}, 3) tanh"
    shape.size //= 2
    return "maxpool(2)"


def _vector_block(draw: st.DrawFn, width: int) -> tuple[str, int]:
    kind = draw(st.sampled_from(["relu", "tanh", "hres"]))
    h = draw(st.integers(2, 6))
    if kind == "hres":
        o = draw(st.integers(2, 5))
        return f"add(linear({o}), linear({h}) relu linear({o}))", o
    return f"linear({h}) {kind}", h


@st.composite
def genomes(draw: st.DrawFn) -> str:
    """Valid genome text: a small CNN or MLP built from blocks every rewrite has places in."""
    lines = []
    if draw(st.booleans()):
        shape = _Shape(3, 8)
        lines.append("input 3x8x8")
        for _ in range(draw(st.integers(2, 5))):
            lines.append(_image_block(draw, shape))
        lines.append(draw(st.sampled_from(["gap", "flatten"])))
    else:
        width = draw(st.integers(2, 5))
        lines.append(f"input {width}")
        for _ in range(draw(st.integers(1, 4))):
            text, width = _vector_block(draw, width)
            lines.append(text)
    lines.append(f"linear({draw(st.integers(2, 4))})")
    return "\n".join(lines) + "\n"


def _check_chain(graph: Graph, weights: Weights, seed: int, steps: int = CHAIN) -> None:
    x = inputs(graph, batch=3, seed=seed)
    reference = outputs(graph, weights, x)
    rng = np.random.default_rng(seed)
    for step in range(steps):
        before = snapshot(graph, weights)
        name, move = sample(graph, rng, EXACT)
        result = REWRITES[name].apply(graph, weights, move, rng)
        assert same_snapshot(before, snapshot(graph, weights)), f"step {step}: {name} changed its input"
        graph, weights = verify(result.graph), result.weights
        diff = float((outputs(graph, weights, x) - reference).abs().max())
        assert diff <= TOLERANCE, f"step {step}: {result.record.text}: max abs diff {diff:.2e}"
        stats = graph.stats()
        assert torch_counts(graph, weights) == (stats.params, stats.macs), (
            f"step {step}: {result.record.text}"
        )


@settings(settings.get_profile("rewrites"), max_examples=3, derandomize=True)
@given(text=genomes(), seed=st.integers(0, 2**16))
def test_generated_genomes_keep_their_function_over_a_chain(text: str, seed: int) -> None:
    graph = parse(text)
    _check_chain(graph, trained(graph, seed), seed)


@pytest.mark.slow
@settings(settings.get_profile("rewrites"), max_examples=40, derandomize=True)
@given(text=genomes(), seed=st.integers(0, 2**16))
def test_generated_genomes_keep_their_function_over_a_chain_thoroughly(text: str, seed: int) -> None:
    graph = parse(text)
    _check_chain(graph, trained(graph, seed), seed, steps=2 * CHAIN)


@pytest.mark.parametrize("name", ["vanilla.genome", "hresnet_mlp.genome"])
def test_examples_keep_their_function_over_a_chain(name: str) -> None:
    graph = example(name)
    _check_chain(graph, trained(graph, 1), seed=1)


@pytest.mark.slow
def test_resnet18_keeps_its_function_over_a_chain() -> None:
    graph = example("resnet18_cifar.genome")
    _check_chain(graph, trained(graph, 1), seed=1)


def _check_approximate(graph: Graph, seed: int) -> None:
    weights = trained(graph, seed)
    rng = np.random.default_rng(seed)
    options = [name for name in APPROXIMATE if REWRITES[name].candidates(graph, weights)]
    assert options, "the generated genomes have places for every rewrite, approximate ones too"
    name, move = sample(graph, rng, options, weights)
    result = REWRITES[name].apply(graph, weights, move, rng)
    verify(result.graph)
    assert result.repair and not result.record.exact
    stats = result.graph.stats()
    assert torch_counts(result.graph, result.weights) == (stats.params, stats.macs)
    x = inputs(graph, batch=32, seed=seed)
    _, report = repair(
        (graph, weights), (result.graph, result.weights), result.repair, x, RepairConfig(epochs=6, lr=3e-3)
    )
    assert report.distance_after <= report.distance_before
    if report.distance_before > 1e-3 and _can_move(graph, weights, result, x):
        assert report.distance_after < report.distance_before, result.record.text


def _can_move(graph: Graph, weights: Weights, result: RewriteResult, x: torch.Tensor) -> bool:
    """Does the distance to the parent have a non-zero gradient in the repaired parameters?

    A repair cannot lower it otherwise (e.g. the units it may train are dead ReLUs on x).
    """
    target = outputs(graph, weights, x)
    child = lower(result.graph, result.weights).eval()
    torch.nn.functional.mse_loss(child(x), target).backward()
    prefixes = tuple(f"n{nid}." for nid in result.repair)
    grads = [
        p.grad for name, p in child.named_parameters() if name.startswith(prefixes) and p.grad is not None
    ]
    return any(float(g.abs().max()) > 1e-7 for g in grads)


@settings(settings.get_profile("rewrites"), max_examples=6, derandomize=True)
@given(text=genomes(), seed=st.integers(0, 2**16))
def test_approximate_rewrites_leave_a_valid_repairable_network(text: str, seed: int) -> None:
    _check_approximate(parse(text), seed)


@pytest.mark.slow
@settings(settings.get_profile("rewrites"), max_examples=60, derandomize=True)
@given(text=genomes(), seed=st.integers(0, 2**16))
def test_approximate_rewrites_leave_a_valid_repairable_network_thoroughly(text: str, seed: int) -> None:
    _check_approximate(parse(text), seed)


@settings(settings.get_profile("rewrites"), max_examples=5, derandomize=True)
@given(text=genomes(), seed=st.integers(0, 2**16))
def test_mixed_chains_replay_exactly(text: str, seed: int) -> None:
    from genomorph.ir.rewrites import replay

    graph = parse(text)
    results = random_chain(graph, None, 8, np.random.default_rng(seed), names=[*EXACT, *APPROXIMATE])
    again = replay(graph, None, [r.record for r in results])
    assert again is not None and again.graph.structure() == results[-1].graph.structure()
    for nid, arrays in results[-1].weights.items():
        for key, array in arrays.items():
            np.testing.assert_array_equal(again.weights[nid][key], array)

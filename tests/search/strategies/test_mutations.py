"""Genomes of a paper-004 space: sampling, membership, mutations (property tests)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from genomorph.ir import ConfigError
from genomorph.ir.ops import Add, BatchNorm, Conv, Relu
from genomorph.search.strategies.mutations import (
    MUTATIONS,
    add_layer,
    filter_change,
    inversion,
    layer_change,
    mutate,
    swap,
)
from genomorph.search.strategies.sequential import (
    ConvGene,
    OutsideSpace,
    build_graph,
    decode,
    sample,
    violations,
)
from genomorph.search.strategies.space import load_space, parse_space
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[3]
SPACE = load_space(ROOT / "examples" / "space_ga.toml").bind((1, 8, 8), 10)
MNIST_SPACE = load_space(ROOT / "examples" / "space_ga.toml").bind((1, 28, 28), 10)

seeds = st.integers(min_value=0, max_value=2**32 - 1)


def _normal(filters: int = 16, kernel: int = 3, act: str = "relu") -> ConvGene:
    return ConvGene(filters=filters, kernel=kernel, stride=1, activation=act)


def _reduction(filters: int = 32) -> ConvGene:
    return ConvGene(filters=filters, kernel=3, stride=2, activation="relu")


def _assert_in_space(space, genes) -> None:  # type: ignore[no-untyped-def]
    assert violations(space, genes) == []
    graph = build_graph(space, genes)
    assert decode(space, graph) == tuple(genes)
    # the reductions are the only strided convs, and there are exactly two
    strides = [op.stride for op in (graph.op(n) for n in graph.order()) if isinstance(op, Conv)]
    assert sorted(strides)[-2:] == [2, 2] and strides.count(2) == 2 and set(strides) <= {1, 2}


@settings(max_examples=60, deadline=None)
@given(seed=seeds)
def test_random_genomes_are_in_the_space(seed: int) -> None:
    genes = sample(SPACE, np.random.default_rng(seed))
    _assert_in_space(SPACE, genes)
    _assert_in_space(MNIST_SPACE, genes)  # genes do not depend on the input size


@settings(max_examples=80, deadline=None)
@given(seed=seeds, kind=st.sampled_from(sorted(MUTATIONS)))
def test_every_mutation_result_is_in_the_space(seed: int, kind: str) -> None:
    rng = np.random.default_rng(seed)
    genes = sample(SPACE, rng)
    made = MUTATIONS[kind](SPACE, genes, rng)
    if made is None:
        assert kind in ("add", "swap", "inversion")  # only these can find nothing to do
        return
    mutant, description = made
    assert mutant != genes and description
    # the mutations keep the space by construction, max_params aside
    _assert_in_space(SPACE, mutant)


@settings(max_examples=60, deadline=None)
@given(seed=seeds)
def test_mutate_with_a_parameter_cap_rejects_mutants_outside(seed: int) -> None:
    capped = SPACE.model_copy(update={"max_params": 60_000})
    rng = np.random.default_rng(seed)
    genes = sample(capped, rng)
    made = mutate(capped, genes, rng, tuple(MUTATIONS))
    if made is not None:
        mutant, kind, _ = made
        assert kind in MUTATIONS
        _assert_in_space(capped, mutant)


def test_swap_exchanges_two_different_layers() -> None:
    genes = (_normal(16), _reduction(), _normal(64), _reduction())
    mutant, text = swap(SPACE, genes, np.random.default_rng(0))  # type: ignore[misc]
    assert Counter(mutant) == Counter(genes)
    changed = [i for i in range(len(genes)) if genes[i] != mutant[i]]
    assert len(changed) == 2 and text == f"swap layers {changed[0]} and {changed[1]}"
    assert swap(SPACE, (_reduction(), _reduction()), np.random.default_rng(0)) is None


def test_inversion_reverses_a_contiguous_run() -> None:
    genes = (_normal(16), _reduction(), _normal(64), _normal(128), _reduction())
    for seed in range(20):
        mutant, _ = inversion(SPACE, genes, np.random.default_rng(seed))  # type: ignore[misc]
        changed = [i for i in range(len(genes)) if genes[i] != mutant[i]]
        i, j = changed[0], changed[-1] + 1
        assert mutant[i:j] == genes[i:j][::-1] and mutant[:i] == genes[:i] and mutant[j:] == genes[j:]
    assert inversion(SPACE, (_reduction(), _reduction()), np.random.default_rng(0)) is None


def test_filter_change_touches_only_one_filter_count() -> None:
    genes = (_normal(16), _reduction(32), _reduction(32))
    for seed in range(20):
        mutant, _ = filter_change(SPACE, genes, np.random.default_rng(seed))  # type: ignore[misc]
        diffs = [(a, b) for a, b in zip(genes, mutant, strict=True) if a != b]
        assert len(diffs) == 1
        old, new = diffs[0]
        assert old.filters != new.filters and new.filters in SPACE.layers.filters
        assert old.model_copy(update={"filters": new.filters}) == new


def test_layer_change_keeps_the_role_of_the_layer() -> None:
    genes = (_normal(16), _reduction(32), _reduction(32))
    for seed in range(20):
        mutant, _ = layer_change(SPACE, genes, np.random.default_rng(seed))  # type: ignore[misc]
        diffs = [(a, b) for a, b in zip(genes, mutant, strict=True) if a != b]
        assert len(diffs) == 1 and diffs[0][0].stride == diffs[0][1].stride


def test_add_layer_inserts_a_normal_layer_until_the_maximum() -> None:
    genes = (_normal(16), _reduction(32), _reduction(32))
    mutant, _ = add_layer(SPACE, genes, np.random.default_rng(3))  # type: ignore[misc]
    assert len(mutant) == len(genes) + 1
    assert sum(g.stride == 2 for g in mutant) == 2
    full = genes + (_normal(),) * (SPACE.layers.max - len(genes))
    assert add_layer(SPACE, full, np.random.default_rng(3)) is None


def test_mutate_gives_up_with_none_when_nothing_fits() -> None:
    # one layer kind only and no room to grow: no mutation can change the genome
    space = parse_space(
        "[layers]\nmin = 2\nmax = 2\nfilters = [8]\nkernels = [3]\nactivations = ['relu']\n"
    ).bind((1, 8, 8), 10)
    genes = (ConvGene(filters=8, kernel=3, stride=2, activation="relu"),) * 2
    assert mutate(space, genes, np.random.default_rng(0), tuple(MUTATIONS)) is None


def test_violations_name_each_broken_constraint() -> None:
    genes = (_normal(16), _reduction(32), ConvGene(filters=24, kernel=7, stride=3, activation="elu"))
    problems = " | ".join(violations(SPACE, genes))
    for words in ("1 reduction convs", "stride 3", "24 filters", "kernel 7", "uses elu"):
        assert words in problems


def test_sample_reports_an_impossible_parameter_cap() -> None:
    with pytest.raises(ConfigError, match="max_params"):
        sample(SPACE.model_copy(update={"max_params": 10}), np.random.default_rng(0))


def test_decode_rejects_a_skip_connection() -> None:
    genes = (_normal(16), _reduction(32), _reduction(32))
    graph = build_graph(SPACE, genes)
    order = graph.order()
    # add(x, relu) after the first block: valid IR, but not sequential
    relu = order[3]
    assert isinstance(graph.op(relu), Relu)
    conv = graph.add(Conv(channels=16, kernel=3, bias=False), [relu])
    bn = graph.add(BatchNorm(), [conv])
    merge = graph.add(Add(), [relu, bn])
    graph.replace_uses(relu, merge, keep=[conv, merge])
    with pytest.raises(OutsideSpace, match="sequential"):
        decode(SPACE, graph)
